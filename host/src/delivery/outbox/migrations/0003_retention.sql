-- mail.db schema 3: retention (see delivery/retention.rs).
--
-- `body_dropped_at`: when the body and spooled attachments of an email were dropped after
-- RetainBodyDays; the record (who, to whom, when, status, receipt, errors) stays until RetainDays.
-- The age of an email is COALESCE(sent_at, updated_at): when it was sent, or its last change.
-- `retention_totals`: running totals of every purge, for `/metrics`.
-- Incremental vacuum (PRAGMA auto_vacuum = INCREMENTAL) cannot be switched on inside a
-- transaction; schema.rs sets it on a fresh file before migration 1, and on an older file with
-- a one-time VACUUM after the migrations.
ALTER TABLE emails ADD COLUMN body_dropped_at INTEGER;

CREATE INDEX emails_by_age ON emails (status, COALESCE(sent_at, updated_at));

CREATE TABLE retention_totals (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    runs            INTEGER NOT NULL DEFAULT 0,
    records_deleted INTEGER NOT NULL DEFAULT 0,
    bodies_dropped  INTEGER NOT NULL DEFAULT 0,
    bytes_reclaimed INTEGER NOT NULL DEFAULT 0,
    last_run_at     INTEGER
);

INSERT INTO retention_totals (id) VALUES (1);
