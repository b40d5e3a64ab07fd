//! Issued credentials held in server state: access tokens, refresh tokens (rotation,
//! revocation, inactivity expiry, MFA re-authentication) and authorization codes. Tokens are
//! opaque random strings; clients must not parse them (as with Microsoft's compact tokens).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;

/// A random opaque credential with a recognisable prefix.
pub(crate) fn random_token(prefix: &str, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(buf))
}

/// An issued access token.
#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub(crate) client_id: String,
    /// The signed-in user's UPN; `None` for app-only tokens.
    pub(crate) user: Option<String>,
    /// Delegated Graph permissions (`scp`).
    pub(crate) scopes: Vec<String>,
    /// Application permissions (`roles`).
    pub(crate) roles: Vec<String>,
    pub(crate) expires_at: u64,
}

/// Why a refresh token no longer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshState {
    Active,
    /// Revoked (password reset, admin revoke): AADSTS50173.
    Revoked {
        valid_from: u64,
    },
    /// Expired by inactivity: AADSTS700082.
    Inactive,
    /// Conditional Access asks for MFA again: AADSTS50076.
    NeedsMfa,
}

/// An issued refresh token.
#[derive(Debug, Clone)]
pub(crate) struct RefreshToken {
    pub(crate) client_id: String,
    pub(crate) user: String,
    /// The scope string the grant was made for (permissions + OIDC), re-used when the client
    /// sends no `scope` on refresh.
    pub(crate) scope: String,
    pub(crate) issued_at: u64,
    pub(crate) state: RefreshState,
}

/// An authorization code (single use, ~10 minutes).
#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub(crate) client_id: String,
    pub(crate) user: String,
    pub(crate) scope: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: Option<String>,
    pub(crate) code_challenge_method: String,
    pub(crate) nonce: Option<String>,
    pub(crate) expires_at: u64,
    pub(crate) redeemed: bool,
}

/// Lifetime of an authorization code, in seconds.
pub(crate) const AUTH_CODE_LIFETIME_SECS: u64 = 600;

/// All issued credentials.
#[derive(Debug, Default)]
pub(crate) struct TokenStore {
    pub(crate) access: HashMap<String, AccessToken>,
    pub(crate) refresh: HashMap<String, RefreshToken>,
    pub(crate) codes: HashMap<String, AuthCode>,
    /// Client-assertion `jti`s already presented.
    pub(crate) used_assertions: crate::identity::assertion::UsedAssertions,
}

impl TokenStore {
    /// Stores a new access token and returns it.
    pub(crate) fn issue_access(&mut self, token: AccessToken, now: u64) -> String {
        if self.access.len() > 50_000 {
            self.access.retain(|_, t| t.expires_at > now);
        }
        let value = random_token("EwA", 96);
        self.access.insert(value.clone(), token);
        value
    }

    /// Stores a new refresh token and returns it.
    pub(crate) fn issue_refresh(
        &mut self,
        client_id: &str,
        user: &str,
        scope: &str,
        now: u64,
    ) -> String {
        let value = random_token("M.C5", 128);
        self.refresh.insert(
            value.clone(),
            RefreshToken {
                client_id: client_id.to_string(),
                user: user.to_ascii_lowercase(),
                scope: scope.to_string(),
                issued_at: now,
                state: RefreshState::Active,
            },
        );
        value
    }

    /// Marks every refresh token of `user` with `state`; returns how many.
    pub(crate) fn mark_user_refresh_tokens(&mut self, user: &str, state: RefreshState) -> usize {
        let mut count = 0;
        for token in self
            .refresh
            .values_mut()
            .filter(|t| t.user.eq_ignore_ascii_case(user))
        {
            token.state = state;
            count += 1;
        }
        count
    }

    /// Issues an authorization code.
    pub(crate) fn issue_code(&mut self, code: AuthCode) -> String {
        let value = random_token("1.AQ", 160);
        self.codes.insert(value.clone(), code);
        value
    }
}

/// Checks a PKCE `code_verifier` against the stored challenge (`S256` or `plain`).
pub(crate) fn pkce_matches(challenge: &str, method: &str, verifier: &str) -> bool {
    use sha2::{Digest as _, Sha256};
    if method.eq_ignore_ascii_case("S256") {
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
    } else {
        verifier == challenge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_rotate_and_revoke() {
        let mut store = TokenStore::default();
        let first = store.issue_refresh("c", "Alex@x", "Mail.Send", 1);
        let second = store.issue_refresh("c", "alex@x", "Mail.Send", 2);
        assert_ne!(first, second);
        assert_eq!(
            store.mark_user_refresh_tokens("ALEX@X", RefreshState::Inactive),
            2
        );
        assert_eq!(store.refresh[&first].state, RefreshState::Inactive);
    }

    #[test]
    fn pkce_s256_and_plain() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(challenge, "S256", verifier));
        assert!(!pkce_matches(challenge, "S256", "other"));
        assert!(pkce_matches("abc", "plain", "abc"));
    }
}
