//! Requests to the Microsoft identity platform's `/token` and `/devicecode` endpoints, and
//! their success and OAuth error bodies.

use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;

use crate::Context;
use crate::http::{Body, HttpError, Request, Response, Safety};
use crate::security::Secret;

/// A token the endpoint issued.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The refresh token, if one was issued (`offline_access`).
    pub refresh_token: Option<Secret>,
    /// The signed-in account (`preferred_username` of the ID token), if known.
    pub account: Option<String>,
    /// The permissions granted (`scope`, space separated), when the endpoint says (delegated
    /// tokens carry every consented permission of the resource).
    pub scope: Option<String>,
}

/// An OAuth error body (§1.4 of the contract).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OAuthError {
    /// The HTTP status it came with.
    #[serde(skip)]
    pub status: u16,
    /// `error`, such as `invalid_grant`.
    #[serde(default)]
    pub error: String,
    /// `error_description` (starts `AADSTSnnnn:`).
    #[serde(default)]
    pub error_description: String,
    /// `error_codes`.
    #[serde(default)]
    pub error_codes: Vec<u64>,
    /// `suberror`, such as `consent_required`.
    #[serde(default)]
    pub suberror: Option<String>,
    /// `correlation_id`, for support cases.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

impl OAuthError {
    /// The AADSTS number: `error_codes[0]`, else the one in the description.
    pub fn aadsts(&self) -> Option<u64> {
        self.error_codes.first().copied().or_else(|| {
            let start = self.error_description.find("AADSTS")? + "AADSTS".len();
            let digits: String = self.error_description[start..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
    }

    /// The provider code for errors: `AADSTS50126`, else the OAuth `error`.
    pub fn code(&self) -> String {
        match self.aadsts() {
            Some(number) => format!("AADSTS{number}"),
            None if self.error.is_empty() => format!("HTTP{}", self.status),
            None => self.error.clone(),
        }
    }

    /// The first line of the description, for messages.
    pub fn summary(&self) -> &str {
        let first = self.error_description.lines().next().unwrap_or("").trim();
        if first.is_empty() { &self.error } else { first }
    }
}

/// Why a token request produced no token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The endpoint answered with an OAuth error.
    #[error("{} ({})", .0.summary(), .0.code())]
    OAuth(Box<OAuthError>),
    /// The request did not get an answer.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The answer was not a token.
    #[error(
        "the sign-in endpoint answered HTTP {status} with a body that is not a token: {detail}"
    )]
    Malformed {
        /// The status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
}

/// POSTs `form` to `{Authority}/{tenant}/oauth2/v2.0/{endpoint}`.
///
/// # Errors
/// The request got no usable answer.
pub async fn post(
    ctx: &Context<'_>,
    endpoint: &str,
    form: Vec<(&'static str, Secret)>,
) -> Result<Response, HttpError> {
    let url = ctx.settings.authority_endpoint(endpoint);
    let request = Request::new(Method::POST, url, Safety::Idempotent).body(Body::Form(form));
    let client = ctx.http.client(ctx.settings.connect_timeout)?;
    ctx.http.execute(&client, &request, &ctx.policy()).await
}

/// Reads a token response, or the OAuth error it carries.
///
/// # Errors
/// See [`TokenError`].
pub fn token_from(response: &Response) -> Result<TokenResponse, TokenError> {
    let status = response.status.as_u16();
    if !response.status.is_success() {
        return Err(oauth_error(response));
    }
    #[derive(Deserialize)]
    struct Raw {
        access_token: Option<String>,
        expires_in: Option<serde_json::Value>,
        refresh_token: Option<String>,
        id_token: Option<String>,
        scope: Option<String>,
    }
    let raw: Raw = serde_json::from_slice(&response.body).map_err(|e| TokenError::Malformed {
        status,
        detail: e.to_string(),
    })?;
    let access_token =
        raw.access_token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| TokenError::Malformed {
                status,
                detail: "no access_token".into(),
            })?;
    // v2 sends a number; the v1 endpoint sent a string.
    let expires_in = match raw.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 3599,
    };
    log::trace!(
        "token issued: expires_in {expires_in} s, refresh token {}",
        if raw.refresh_token.is_some() {
            "issued"
        } else {
            "not issued"
        }
    );
    Ok(TokenResponse {
        access_token: Secret::new(access_token),
        expires_in,
        refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
        account: raw.id_token.as_deref().and_then(id_token_username),
        scope: raw.scope.filter(|s| !s.trim().is_empty()),
    })
}

/// The OAuth error a failed response carries (an empty one if the body is not JSON).
pub fn oauth_error(response: &Response) -> TokenError {
    let status = response.status.as_u16();
    match serde_json::from_slice::<OAuthError>(&response.body) {
        Ok(mut error) if !error.error.is_empty() || !error.error_codes.is_empty() => {
            error.status = status;
            TokenError::OAuth(Box::new(error))
        }
        _ => TokenError::OAuth(Box::new(OAuthError {
            status,
            error: match status {
                500..=599 => "temporarily_unavailable".into(),
                _ => format!("http_{status}"),
            },
            error_description: format!(
                "the sign-in endpoint answered HTTP {status}{}",
                response
                    .request_id()
                    .map(|id| format!(" (request-id {id})"))
                    .unwrap_or_default()
            ),
            ..OAuthError::default()
        })),
    }
}

/// `preferred_username` from an ID token's payload. The ID token is for this client; access
/// tokens are opaque and never parsed.
fn id_token_username(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims
        .get("preferred_username")
        .or_else(|| claims.get("upn"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// The response of `/devicecode`.
#[derive(Deserialize)]
pub struct DeviceCode {
    /// The code the client polls with (a credential: never logged).
    pub device_code: String,
    /// The code the user types.
    pub user_code: String,
    /// Where the user types it.
    pub verification_uri: String,
    /// Seconds until the codes expire.
    #[serde(default = "default_expires_in")]
    pub expires_in: u64,
    /// Seconds between polls.
    #[serde(default = "default_interval")]
    pub interval: u64,
    /// The instructions to show the user.
    #[serde(default)]
    pub message: String,
}

impl std::fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCode")
            .field("device_code", &"***")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

fn default_expires_in() -> u64 {
    900
}

fn default_interval() -> u64 {
    5
}

impl DeviceCode {
    /// The polling interval (at least one second).
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval.max(1))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_from_codes_or_description() {
        let error = OAuthError {
            error: "invalid_grant".into(),
            error_description: "AADSTS50126: Error validating credentials.\r\nTrace ID: x".into(),
            ..OAuthError::default()
        };
        assert_eq!(error.aadsts(), Some(50126));
        assert_eq!(error.code(), "AADSTS50126");
        assert_eq!(
            error.summary(),
            "AADSTS50126: Error validating credentials."
        );
        let coded = OAuthError {
            error_codes: vec![700082],
            ..OAuthError::default()
        };
        assert_eq!(coded.code(), "AADSTS700082");
    }

    #[test]
    fn id_token_names_the_account() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"preferred_username":"alex@contoso.com"}"#);
        assert_eq!(
            id_token_username(&format!("h.{payload}.s")).as_deref(),
            Some("alex@contoso.com")
        );
        assert_eq!(id_token_username("garbage"), None);
    }
}
