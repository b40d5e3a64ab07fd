//! API tokens: `mh_` followed by 32 random bytes in unpadded base64url, shown once when made
//! and stored only as their SHA-256 (see `delivery::outbox::tokens`). A presented token is
//! hashed and compared with every stored hash in constant time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::delivery::outbox::{ApiTokenRecord, Outbox, OutboxError, Timestamp};

/// Every token starts with this, so a leaked one is easy to recognise (secret scanners).
pub const TOKEN_PREFIX: &str = "mh_";

/// How often a token's `last_used_at` is written while it is in use.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// What is wrong with a token name or with creating or revoking a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The name is not usable.
    #[error("API token name '{0}' is not valid: use 1 to 64 letters, digits, '.', '_' and '-'")]
    BadName(String),
    /// A token of that name exists.
    #[error(
        "an API token named '{0}' already exists: revoke it first (`mailhost api-token revoke {0}`) or choose another name"
    )]
    Exists(String),
    /// No token of that name.
    #[error("no API token named '{0}': run `mailhost api-token list` to see the names")]
    Unknown(String),
    /// mail.db.
    #[error(transparent)]
    Store(#[from] OutboxError),
}

/// Checks a token name: 1 to 64 of `[A-Za-z0-9._-]`.
///
/// # Errors
/// [`TokenError::BadName`].
pub fn validate_name(name: &str) -> Result<(), TokenError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(TokenError::BadName(name.to_string()))
    }
}

/// A new random token (not stored).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The lower-case hex SHA-256 of `token`, as stored.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes and stores token `name`; returns the token, which is not kept anywhere.
///
/// # Errors
/// A bad or taken name; a store error.
pub fn create(outbox: &Outbox, name: &str) -> Result<(String, ApiTokenRecord), TokenError> {
    validate_name(name)?;
    let token = generate();
    match outbox.insert_api_token(name, &hash(&token), Timestamp::now())? {
        Some(record) => Ok((token, record)),
        None => Err(TokenError::Exists(name.to_string())),
    }
}

/// Deletes token `name`.
///
/// # Errors
/// [`TokenError::Unknown`]; a store error.
pub fn revoke(outbox: &Outbox, name: &str) -> Result<(), TokenError> {
    if outbox.revoke_api_token(name)? {
        Ok(())
    } else {
        Err(TokenError::Unknown(name.to_string()))
    }
}

/// Checks presented tokens against mail.db and notes their use.
#[derive(Debug, Default)]
pub struct TokenChecker {
    /// When each token's `last_used_at` was last written by this process.
    touched: Mutex<HashMap<String, Instant>>,
}

impl TokenChecker {
    /// The name of the stored token equal to `presented`, or `None`. Reads mail.db each time,
    /// so a token revoked by another process stops working at once. Every stored hash is
    /// compared, in constant time, whatever matches.
    ///
    /// # Errors
    /// A store error (mail.db unreadable or locked).
    pub fn check(&self, outbox: &Outbox, presented: &str) -> Result<Option<String>, OutboxError> {
        let digest = Sha256::digest(presented.as_bytes());
        let mut found = None;
        for stored in outbox.api_token_hashes()? {
            let Ok(stored_bytes) = hex::decode(&stored.sha256) else {
                continue;
            };
            if bool::from(stored_bytes.as_slice().ct_eq(digest.as_slice())) {
                found = Some(stored.name);
            }
        }
        if let Some(name) = &found {
            self.touch(outbox, name);
        }
        Ok(found)
    }

    /// Writes `last_used_at` for `name` if this process has not in the last minute.
    fn touch(&self, outbox: &Outbox, name: &str) {
        let now = Instant::now();
        {
            let mut touched = self
                .touched
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if touched
                .get(name)
                .is_some_and(|at| now.duration_since(*at) < TOUCH_EVERY)
            {
                return;
            }
            touched.insert(name.to_string(), now);
        }
        if let Err(e) = outbox.touch_api_token(name, Timestamp::now()) {
            log::warn!("cannot record the use of API token '{name}': {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_checked_by_hash() {
        let outbox = Outbox::in_memory().unwrap();
        let (token, record) = create(&outbox, "erp").unwrap();
        assert!(token.starts_with("mh_") && token.len() == 3 + 43, "{token}");
        assert_eq!(record.name, "erp");
        let (other, _) = create(&outbox, "billing").unwrap();
        assert_ne!(token, other);
        let stored = outbox.api_token_hashes().unwrap();
        assert!(
            stored
                .iter()
                .all(|s| s.sha256 != token && s.sha256.len() == 64)
        );
        let checker = TokenChecker::default();
        assert_eq!(
            checker.check(&outbox, &token).unwrap().as_deref(),
            Some("erp")
        );
        assert_eq!(
            checker.check(&outbox, &other).unwrap().as_deref(),
            Some("billing")
        );
        assert_eq!(checker.check(&outbox, "mh_wrong").unwrap(), None);
        assert!(
            outbox
                .api_token("erp")
                .unwrap()
                .unwrap()
                .last_used_at
                .is_some()
        );
        revoke(&outbox, "erp").unwrap();
        assert_eq!(checker.check(&outbox, &token).unwrap(), None);
    }

    #[test]
    fn names_are_checked_and_unique() {
        let outbox = Outbox::in_memory().unwrap();
        assert!(matches!(
            create(&outbox, "a b"),
            Err(TokenError::BadName(_))
        ));
        assert!(matches!(create(&outbox, ""), Err(TokenError::BadName(_))));
        create(&outbox, "erp").unwrap();
        let taken = create(&outbox, "erp").unwrap_err().to_string();
        assert!(
            taken.contains("'erp'") && taken.contains("revoke"),
            "{taken}"
        );
        let missing = revoke(&outbox, "nope").unwrap_err().to_string();
        assert!(missing.contains("'nope'"), "{missing}");
    }
}
