-- mail.db schema 1: one row per email.
--
-- Deliberately one flat table: recipients, attachments and headers are small JSON arrays that
-- are only ever read back whole, so they need no tables of their own. Timestamps are
-- milliseconds since the Unix epoch (UTC).
CREATE TABLE emails (
    id                   TEXT PRIMARY KEY NOT NULL,
    staff_id             TEXT NOT NULL,
    provider             TEXT NOT NULL,
    from_address         TEXT NOT NULL,
    from_name            TEXT NOT NULL DEFAULT '',
    to_json              TEXT NOT NULL DEFAULT '[]',    -- [{"address": .., "name": ..}]
    cc_json              TEXT NOT NULL DEFAULT '[]',
    bcc_json             TEXT NOT NULL DEFAULT '[]',
    reply_to_json        TEXT NOT NULL DEFAULT '[]',
    subject              TEXT NOT NULL DEFAULT '',
    body                 TEXT NOT NULL DEFAULT '',
    html                 INTEGER NOT NULL DEFAULT 0 CHECK (html IN (0, 1)),
    attachments_json     TEXT NOT NULL DEFAULT '[]',    -- [{"path", "name", "content_type", "size"}]
    headers_json         TEXT NOT NULL DEFAULT '[]',    -- [{"name", "value"}]
    status               TEXT NOT NULL
                         CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'unknown')),
    attempts             INTEGER NOT NULL DEFAULT 0,
    error_kind           TEXT,
    error_code           TEXT,
    error_message        TEXT,
    error_retry_after_ms INTEGER,
    receipt_message_id   TEXT,
    receipt_request_id   TEXT,
    receipt_detail       TEXT,
    -- The process that claimed the email while it is `sending` (see outbox/owner.rs).
    claim_owner          TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    sent_at              INTEGER,
    -- send-batch: hash of the file path, line number and hash of the line.
    source_key           TEXT UNIQUE
);

CREATE INDEX emails_by_status ON emails (status, created_at);
