//! Entra ID (AADSTS) OAuth error responses, shaped as `GRAPH.md` §1.4 describes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::time::{aad_timestamp, now_unix};

/// One OAuth error from the token or device-code endpoint.
#[derive(Debug, Clone)]
pub(crate) struct AadError {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    /// The AADSTS number; 0 for RFC-only errors that carry no AADSTS code.
    pub(crate) code: u32,
    pub(crate) message: String,
    pub(crate) suberror: Option<&'static str>,
    pub(crate) claims: Option<String>,
}

impl AadError {
    /// An error answered with HTTP 400 (401 for `invalid_client`).
    pub(crate) fn new(error: &'static str, code: u32, message: impl Into<String>) -> Self {
        let status = if error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        Self {
            status,
            error,
            code,
            message: message.into(),
            suberror: None,
            claims: None,
        }
    }

    /// Adds a `suberror`.
    pub(crate) fn with_suberror(mut self, suberror: &'static str) -> Self {
        self.suberror = Some(suberror);
        self
    }

    /// Adds a `claims` challenge.
    pub(crate) fn with_claims(mut self, claims: impl Into<String>) -> Self {
        self.claims = Some(claims.into());
        self
    }

    /// Sets the HTTP status.
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The JSON body, with `correlation_id` (the client's `client-request-id`, or new).
    pub(crate) fn body(&self, correlation_id: &str) -> Value {
        let now = now_unix();
        let timestamp = aad_timestamp(now);
        let trace_id = uuid::Uuid::new_v4().to_string();
        let prefix = if self.code == 0 {
            String::new()
        } else {
            format!("AADSTS{}: ", self.code)
        };
        let description = format!(
            "{prefix}{}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            self.message
        );
        let mut body = json!({
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        if let Value::Object(map) = &mut body {
            if let Some(suberror) = self.suberror {
                map.insert("suberror".into(), json!(suberror));
            }
            if let Some(claims) = &self.claims {
                map.insert("claims".into(), json!(claims));
            }
        }
        body
    }

    /// The HTTP response.
    pub(crate) fn into_response_with(self, correlation_id: &str) -> Response {
        let body = self.body(correlation_id);
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"login.microsoftonline.com\""),
            );
        }
        response
    }

    // ---------------------------------------------------------------- the catalogue

    pub(crate) fn missing_parameter(name: &str) -> Self {
        Self::new(
            "invalid_request",
            900_144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    pub(crate) fn unknown_tenant(tenant: &str) -> Self {
        Self::new(
            "invalid_tenant",
            90_002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are \
                 signing into the correct cloud. Check with your subscription administrator, this may \
                 happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    pub(crate) fn unknown_client(client_id: &str, directory: &str) -> Self {
        Self::new(
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{directory}'. \
                 This can happen if the application has not been installed by the administrator of the \
                 tenant or consented to by any user in the tenant. You may have sent your authentication \
                 request to the wrong tenant."
            ),
        )
    }

    pub(crate) fn public_client_flows_disabled() -> Self {
        Self::new(
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    }

    pub(crate) fn public_client_sent_secret() -> Self {
        Self::new(
            "invalid_client",
            700_025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        )
    }

    pub(crate) fn bad_secret(client_id: &str) -> Self {
        Self::new(
            "invalid_client",
            7_000_215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client \
                 secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }

    pub(crate) fn ropc_not_on_common() -> Self {
        Self::new(
            "invalid_request",
            9_001_023,
            "The grant type is not supported over the /common or /consumers endpoints. Please use the \
             /organizations or tenant-specific endpoint.",
        )
    }

    pub(crate) fn no_tenant_info() -> Self {
        Self::new(
            "invalid_request",
            50_059,
            "No tenant-identifying information found in either the request or implied by any provided \
             credentials.",
        )
    }

    pub(crate) fn wrong_password() -> Self {
        Self::new(
            "invalid_grant",
            50_126,
            "Error validating credentials due to invalid username or password.",
        )
    }

    pub(crate) fn unknown_user(tenant_name: &str) -> Self {
        Self::new(
            "invalid_grant",
            50_034,
            format!(
                "The user account {{EUII Hidden}} does not exist in the {tenant_name} directory. To sign \
                 into this application, the account must be added to the directory."
            ),
        )
    }

    pub(crate) fn user_disabled() -> Self {
        Self::new("invalid_grant", 50_057, "The user account is disabled.")
    }

    pub(crate) fn mfa_required() -> Self {
        Self::new(
            "interaction_required",
            50_076,
            format!(
                "Due to a configuration change made by your administrator, or because you moved to a new \
                 location, you must use multi-factor authentication to access '{}'.",
                crate::seed::GRAPH_APP_ID
            ),
        )
        .with_claims(
            r#"{"access_token":{"capolids":{"essential":true,"values":["8a1c2f9e-5b7d-4e3a-9c61-0d2b4f6e8a10"]}}}"#,
        )
    }

    pub(crate) fn consent_missing(client_id: &str, app_name: &str) -> Self {
        Self::new(
            "invalid_grant",
            65_001,
            format!(
                "The user or administrator has not consented to use the application with ID \
                 '{client_id}' named '{app_name}'. Send an interactive authorization request for this \
                 user and resource."
            ),
        )
        .with_suberror("consent_required")
    }

    pub(crate) fn invalid_scope(message: impl Into<String>) -> Self {
        Self::new("invalid_scope", 70_011, message)
    }

    pub(crate) fn invalid_resource(resource: &str) -> Self {
        Self::new(
            "invalid_resource",
            500_011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {}. This can \
                 happen if the application has not been installed by the administrator of the tenant or \
                 consented to by any user in the tenant. You might have sent your authentication request \
                 to the wrong tenant.",
                crate::seed::TENANT_NAME
            ),
        )
    }

    pub(crate) fn refresh_token_inactive(issued: u64) -> Self {
        Self::new(
            "invalid_grant",
            700_082,
            format!(
                "The refresh token has expired due to inactivity. The token was issued on {} and was \
                 inactive for 90.00:00:00.",
                crate::time::iso8601(issued)
            ),
        )
    }

    pub(crate) fn refresh_token_revoked(issued: u64, valid_from: u64) -> Self {
        Self::new(
            "invalid_grant",
            50_173,
            format!(
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. \
                 The user might have changed or reset their password. The grant was issued on '{}' and \
                 the TokensValidFrom date (before which tokens are not valid) for this user is '{}'.",
                crate::time::iso8601(issued),
                crate::time::iso8601(valid_from)
            ),
        )
    }

    pub(crate) fn malformed_grant() -> Self {
        Self::new(
            "invalid_grant",
            9_002_313,
            "Invalid request. Request is malformed or invalid.",
        )
    }

    pub(crate) fn grant_client_mismatch() -> Self {
        Self::new(
            "invalid_grant",
            70_000,
            "Provided grant is invalid or malformed. The grant was issued to a different client.",
        )
    }

    pub(crate) fn code_redeemed() -> Self {
        Self::new(
            "invalid_grant",
            54_005,
            "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use \
             an existing refresh token.",
        )
    }

    pub(crate) fn code_expired() -> Self {
        Self::new(
            "invalid_grant",
            70_008,
            "The provided authorization code or refresh token has expired due to inactivity. Send a new \
             interactive authorization request for this user and resource.",
        )
    }

    pub(crate) fn pkce_mismatch() -> Self {
        Self::new(
            "invalid_grant",
            501_481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        )
    }

    pub(crate) fn redirect_uri_mismatch(uri: &str) -> Self {
        Self::new(
            "invalid_grant",
            50_011,
            format!(
                "The redirect URI '{uri}' specified in the request does not match the redirect URI used \
                 to obtain the authorization code."
            ),
        )
    }

    pub(crate) fn unsupported_grant(grant: &str) -> Self {
        Self::new(
            "unsupported_grant_type",
            70_003,
            format!("The app requested an unsupported grant type '{grant}'."),
        )
    }

    // device flow (RFC 8628 names, as Entra answers them)

    pub(crate) fn authorization_pending() -> Self {
        Self::new(
            "authorization_pending",
            70_016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )
    }

    pub(crate) fn slow_down() -> Self {
        Self::new(
            "slow_down",
            70_016,
            "OAuth 2.0 device flow error. The client is polling too quickly; add 5 seconds to the \
             polling interval.",
        )
    }

    pub(crate) fn authorization_declined() -> Self {
        Self::new(
            "authorization_declined",
            70_000,
            "The user declined the authorization request.",
        )
    }

    pub(crate) fn device_code_expired() -> Self {
        Self::new("expired_token", 70_019, "Verification code expired.")
    }

    pub(crate) fn bad_verification_code() -> Self {
        Self::new(
            "bad_verification_code",
            70_018,
            "Invalid verification code. The device_code was not recognised or was already used.",
        )
    }

    pub(crate) fn throttled() -> Self {
        Self::new(
            "temporarily_unavailable",
            90_055,
            "The request has been throttled. Please retry after the time given in Retry-After.",
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
    }

    pub(crate) fn unavailable(status: StatusCode) -> Self {
        Self::new(
            "temporarily_unavailable",
            90_033,
            "A transient error has occurred. Please try again.",
        )
        .with_status(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_documented_shape() {
        let error = AadError::consent_missing("id", "app");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        let body = error.body("c0ffee00-0000-0000-0000-000000000000");
        assert_eq!(body["error"], "invalid_grant");
        assert_eq!(body["error_codes"], json!([65001]));
        assert_eq!(body["suberror"], "consent_required");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(description.starts_with("AADSTS65001: "));
        assert!(description.contains("\r\nTrace ID: "));
        assert!(
            description.contains(
                "\r\nCorrelation ID: c0ffee00-0000-0000-0000-000000000000\r\nTimestamp: "
            )
        );
        assert_eq!(
            body["error_uri"],
            "https://login.microsoftonline.com/error?code=65001"
        );
        assert_eq!(
            AadError::public_client_flows_disabled().status,
            StatusCode::UNAUTHORIZED
        );
        let mfa = AadError::mfa_required().body("x");
        assert_eq!(mfa["error"], "interaction_required");
        assert!(mfa["claims"].as_str().is_some());
    }
}
