//! The token cache: an in-memory map in front of the host's secret store, keyed by authority,
//! tenant, client, account and scopes, with one in-flight token request per key (single-flight)
//! so concurrent sends make one token request per expiry, not one per email.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::security::Secret;

/// How early an access token counts as expired (MSAL's 5 minutes; at most half its lifetime,
/// so a short-lived token is still reused).
const EXPIRY_MARGIN: Duration = Duration::from_secs(5 * 60);

/// What identifies one cached token: never shared between authorities, tenants, apps,
/// accounts or scope sets.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    text: String,
}

impl CacheKey {
    /// The key for `account` (a staff member's sign-in, or `app` for app-only) of `client_id` in
    /// `tenant` at `authority`, for `scopes`.
    pub fn new(
        authority: &str,
        tenant: &str,
        client_id: &str,
        account: &str,
        scopes: &str,
    ) -> Self {
        let mut scopes: Vec<String> = scopes
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        scopes.sort();
        let text = format!(
            "{}|{}|{}|{}|{}",
            authority.trim_end_matches('/').to_ascii_lowercase(),
            tenant.to_ascii_lowercase(),
            client_id.to_ascii_lowercase(),
            account.to_ascii_lowercase(),
            scopes.join(" ")
        );
        Self { text }
    }

    /// The secret-store key: a digest of the key, so the store holds no addresses in key names.
    pub fn store_key(&self) -> String {
        let digest = Sha256::digest(self.text.as_bytes());
        format!("token-cache/{}", hex::encode(&digest[..16]))
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.text)
    }
}

/// One cached sign-in: the access token and, for delegated flows, the refresh token.
#[derive(Clone, Serialize, Deserialize)]
pub struct CachedToken {
    /// The access token.
    pub access_token: String,
    /// Unix seconds when the access token expires.
    pub expires_at: u64,
    /// Unix seconds when it was obtained.
    #[serde(default)]
    pub obtained_at: u64,
    /// The refresh token, if the flow returned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Who signed in (from the ID token or the username), for messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The permissions granted with the access token (`scope` of the token response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("access_token", &"***")
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("account", &self.account)
            .finish()
    }
}

impl CachedToken {
    /// Whether the access token can still be used (with the early-expiry margin).
    pub fn is_fresh(&self) -> bool {
        if self.access_token.is_empty() {
            return false;
        }
        let lifetime = self.expires_at.saturating_sub(self.obtained_at);
        let margin = EXPIRY_MARGIN.as_secs().min(lifetime / 2);
        now_secs() + margin < self.expires_at
    }

    /// The access token as a [`Secret`].
    pub fn access(&self) -> Secret {
        Secret::new(self.access_token.clone())
    }

    /// The refresh token as a [`Secret`].
    pub fn refresh(&self) -> Option<Secret> {
        self.refresh_token.clone().map(Secret::new)
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The in-memory cache and the per-key locks that make token requests single-flight.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<CacheKey, CachedToken>>,
    flights: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl TokenCache {
    /// The cached entry in memory, fresh or not.
    pub fn memory(&self, key: &CacheKey) -> Option<CachedToken> {
        self.entries.lock().ok()?.get(key).cloned()
    }

    /// The lock held while a token for `key` is being obtained.
    pub fn flight(&self, key: &CacheKey) -> Arc<tokio::sync::Mutex<()>> {
        match self.flights.lock() {
            Ok(mut flights) => flights.entry(key.clone()).or_default().clone(),
            // A poisoned map only loses single-flight, never correctness.
            Err(_) => Arc::default(),
        }
    }

    /// Reads the entry from the host's secret store (another process, such as an earlier
    /// `mailhost` command, may have refreshed it), else from memory. Called only when the
    /// memory entry is missing or stale.
    pub fn load(&self, key: &CacheKey) -> Option<CachedToken> {
        let stored = match mailhost_plugin_api::host::secret_get(&key.store_key()) {
            Ok(stored) => stored,
            Err(error) => {
                log::warn!(
                    "graph-email: could not read the token cache from the secret store: {error}"
                );
                None
            }
        };
        match stored.map(|text| serde_json::from_str::<CachedToken>(&text)) {
            Some(Ok(entry)) => {
                self.remember(key, &entry);
                Some(entry)
            }
            Some(Err(error)) => {
                log::warn!("graph-email: ignoring an unreadable token cache entry ({error})");
                self.memory(key)
            }
            None => self.memory(key),
        }
    }

    /// Stores `entry` in memory and in the secret store.
    ///
    /// # Errors
    /// The secret store refused the write (the entry stays in memory for this process).
    pub fn save(&self, key: &CacheKey, entry: &CachedToken) -> Result<(), String> {
        self.remember(key, entry);
        let text = serde_json::to_string(entry).map_err(|e| e.to_string())?;
        mailhost_plugin_api::host::secret_put(&key.store_key(), &text)
    }

    fn remember(&self, key: &CacheKey, entry: &CachedToken) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(key.clone(), entry.clone());
        }
    }

    /// Forgets the access token `rejected` (Graph answered 401 with it) but keeps the refresh
    /// token. Another thread may already have replaced it: then nothing changes.
    pub fn reject_access_token(&self, key: &CacheKey, rejected: &Secret) {
        let Some(mut entry) = self.load(key) else {
            return;
        };
        if entry.access_token != rejected.expose() {
            return;
        }
        entry.access_token.clear();
        entry.expires_at = 0;
        if let Err(error) = self.save(key, &entry) {
            log::warn!(
                "graph-email: could not update the token cache in the secret store: {error}"
            );
        }
    }

    /// Forgets `key` in memory and in the secret store.
    ///
    /// # Errors
    /// The secret store refused the delete.
    pub fn forget(&self, key: &CacheKey) -> Result<(), String> {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
        mailhost_plugin_api::host::secret_delete(&key.store_key())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_accounts_tenants_apps_and_scopes() {
        let a = CacheKey::new("https://login", "t1", "app", "alice", "Mail.Send openid");
        assert_eq!(
            a,
            CacheKey::new("https://login/", "T1", "APP", "Alice", "openid Mail.Send")
        );
        assert_ne!(
            a,
            CacheKey::new("https://login", "t2", "app", "alice", "Mail.Send openid")
        );
        assert_ne!(
            a,
            CacheKey::new("https://login", "t1", "app2", "alice", "Mail.Send openid")
        );
        assert_ne!(
            a,
            CacheKey::new("https://login", "t1", "app", "bob", "Mail.Send openid")
        );
        assert_ne!(
            a,
            CacheKey::new("https://login", "t1", "app", "alice", "Mail.Send")
        );
        assert_ne!(
            a,
            CacheKey::new("https://other", "t1", "app", "alice", "Mail.Send openid")
        );
        assert_ne!(
            a.store_key(),
            CacheKey::new("https://login", "t2", "app", "alice", "x").store_key()
        );
    }

    #[test]
    fn tokens_expire_five_minutes_early() {
        let now = now_secs();
        let token = |expires_in: u64| CachedToken {
            access_token: "at".into(),
            expires_at: now + expires_in,
            obtained_at: now,
            refresh_token: None,
            account: None,
            scope: None,
        };
        assert!(token(3599).is_fresh());
        let mut old = token(3599);
        old.obtained_at = now - 3300;
        old.expires_at = now + 299;
        assert!(!old.is_fresh());
        // A short-lived token is reused for half its life.
        assert!(token(60).is_fresh());
        assert!(!token(0).is_fresh());
    }

    #[test]
    fn debug_hides_tokens() {
        let entry = CachedToken {
            access_token: "secret-at".into(),
            expires_at: 1,
            obtained_at: 0,
            refresh_token: Some("secret-rt".into()),
            account: None,
            scope: None,
        };
        let shown = format!("{entry:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
