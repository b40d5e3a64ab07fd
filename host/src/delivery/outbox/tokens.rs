//! The HTTP API's bearer tokens in `mail.db` (table `api_tokens`, migration 4): a name, the
//! SHA-256 of the token (never the token), when it was created and last used. Making, checking
//! and printing tokens is the HTTP door's business (`front::http::tokens`); this file only
//! stores them.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::record::Timestamp;
use super::{Outbox, OutboxError};

/// One stored API token, without its hash: what `mailhost api-token list` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiTokenRecord {
    /// The name given at creation.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When a request last presented it (updated at most once a minute); `None` if never.
    pub last_used_at: Option<Timestamp>,
}

/// A token's name and the hex SHA-256 it is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenHash {
    /// The token's name.
    pub name: String,
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
}

impl Outbox {
    /// Stores a new token `name` with the hash `sha256`; `Ok(None)` when a token of that name
    /// already exists (nothing changed).
    ///
    /// # Errors
    /// A database error (locked, disk full).
    pub fn insert_api_token(
        &self,
        name: &str,
        sha256: &str,
        created_at: Timestamp,
    ) -> Result<Option<ApiTokenRecord>, OutboxError> {
        let inserted = self
            .conn()
            .execute(
                "INSERT INTO api_tokens (name, sha256, created_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO NOTHING",
                params![name, sha256, created_at.millis()],
            )
            .map_err(|e| self.sql(e))?;
        Ok((inserted == 1).then(|| ApiTokenRecord {
            name: name.to_string(),
            created_at,
            last_used_at: None,
        }))
    }

    /// Every token, by name.
    ///
    /// # Errors
    /// A database error.
    pub fn api_tokens(&self) -> Result<Vec<ApiTokenRecord>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT name, created_at, last_used_at FROM api_tokens ORDER BY name")
            .map_err(|e| self.sql(e))?;
        stmt.query_map([], |row| {
            Ok(ApiTokenRecord {
                name: row.get(0)?,
                created_at: Timestamp(row.get(1)?),
                last_used_at: row.get::<_, Option<i64>>(2)?.map(Timestamp),
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| self.sql(e))
    }

    /// Every token's name and hash, for checking a presented token.
    ///
    /// # Errors
    /// A database error.
    pub fn api_token_hashes(&self) -> Result<Vec<ApiTokenHash>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT name, sha256 FROM api_tokens")
            .map_err(|e| self.sql(e))?;
        stmt.query_map([], |row| {
            Ok(ApiTokenHash {
                name: row.get(0)?,
                sha256: row.get(1)?,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| self.sql(e))
    }

    /// Deletes token `name`; `false` when there was none.
    ///
    /// # Errors
    /// A database error.
    pub fn revoke_api_token(&self, name: &str) -> Result<bool, OutboxError> {
        let deleted = self
            .conn()
            .execute("DELETE FROM api_tokens WHERE name = ?1", [name])
            .map_err(|e| self.sql(e))?;
        Ok(deleted == 1)
    }

    /// Records that token `name` was presented at `at`.
    ///
    /// # Errors
    /// A database error.
    pub fn touch_api_token(&self, name: &str, at: Timestamp) -> Result<(), OutboxError> {
        self.conn()
            .execute(
                "UPDATE api_tokens SET last_used_at = ?2 WHERE name = ?1",
                params![name, at.millis()],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// The token `name`, if stored.
    ///
    /// # Errors
    /// A database error.
    pub fn api_token(&self, name: &str) -> Result<Option<ApiTokenRecord>, OutboxError> {
        self.conn()
            .query_row(
                "SELECT name, created_at, last_used_at FROM api_tokens WHERE name = ?1",
                [name],
                |row| {
                    Ok(ApiTokenRecord {
                        name: row.get(0)?,
                        created_at: Timestamp(row.get(1)?),
                        last_used_at: row.get::<_, Option<i64>>(2)?.map(Timestamp),
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_stored_listed_touched_and_revoked() {
        let outbox = Outbox::in_memory().unwrap();
        let made = outbox
            .insert_api_token("erp", "ab", Timestamp(1000))
            .unwrap()
            .unwrap();
        assert_eq!(made.name, "erp");
        assert!(
            outbox
                .insert_api_token("erp", "cd", Timestamp(2000))
                .unwrap()
                .is_none(),
            "a second token of the same name is refused"
        );
        outbox.touch_api_token("erp", Timestamp(5000)).unwrap();
        let listed = outbox.api_tokens().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].last_used_at, Some(Timestamp(5000)));
        assert_eq!(
            outbox.api_token_hashes().unwrap(),
            vec![ApiTokenHash {
                name: "erp".into(),
                sha256: "ab".into()
            }]
        );
        assert!(outbox.revoke_api_token("erp").unwrap());
        assert!(!outbox.revoke_api_token("erp").unwrap());
        assert!(outbox.api_tokens().unwrap().is_empty());
        assert!(outbox.api_token("erp").unwrap().is_none());
    }
}
