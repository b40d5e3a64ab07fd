-- mail.db schema 2: the delivery engine.
--
-- emails gains when it may next be tried (not_before), the mailbox the sending limits count it
-- against, how many recipients it has, where it came in (door), its Message-ID header, the
-- whole message for emails that came in as MIME (sendmail, the SMTP relay) with their
-- envelope, an idempotency key (HTTP API), when its first attempt began and when the engine
-- should next ask the provider about it while it is `unknown`.
ALTER TABLE emails ADD COLUMN not_before INTEGER NOT NULL DEFAULT 0;
ALTER TABLE emails ADD COLUMN mailbox TEXT;
ALTER TABLE emails ADD COLUMN recipient_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE emails ADD COLUMN door TEXT NOT NULL DEFAULT 'cli';
ALTER TABLE emails ADD COLUMN message_id TEXT NOT NULL DEFAULT '';
ALTER TABLE emails ADD COLUMN mime_path TEXT;
ALTER TABLE emails ADD COLUMN envelope_from TEXT;
ALTER TABLE emails ADD COLUMN envelope_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE emails ADD COLUMN idempotency_key TEXT;
ALTER TABLE emails ADD COLUMN first_attempt_at INTEGER;
ALTER TABLE emails ADD COLUMN reconcile_after INTEGER;

UPDATE emails SET recipient_count =
    json_array_length(to_json) + json_array_length(cc_json) + json_array_length(bcc_json);

CREATE UNIQUE INDEX emails_by_idempotency_key ON emails (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX emails_due ON emails (status, not_before);

-- One row per submission to a provider: the sliding windows of the sending limits are sums
-- over it, per mailbox, shared by every process on the home.
CREATE TABLE send_ledger (
    mailbox    TEXT NOT NULL,
    at         INTEGER NOT NULL,     -- ms since the epoch
    recipients INTEGER NOT NULL,
    email_id   TEXT NOT NULL
);
CREATE INDEX send_ledger_by_mailbox ON send_ledger (mailbox, at);

-- Every attempt of every email, with its outcome and error.
CREATE TABLE attempts (
    email_id      TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    outcome       TEXT NOT NULL,     -- sent, failed, retry, unknown, interrupted, reconciled
    error_kind    TEXT,
    error_code    TEXT,
    error_message TEXT,
    PRIMARY KEY (email_id, attempt)
);
