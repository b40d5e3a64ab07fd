-- mail.db: HTTP API tokens (`mailhost api-token create|list|revoke`).
--
-- Only the SHA-256 of a token is kept (hex); the token itself is shown once, when created.
-- Timestamps are milliseconds since the Unix epoch (UTC).
CREATE TABLE api_tokens (
    name         TEXT PRIMARY KEY NOT NULL,
    sha256       TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
