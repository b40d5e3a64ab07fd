//! Microsoft Graph error responses (`GRAPH.md` §3).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::time::{graph_inner_date, now_unix};

/// The ids every Graph response carries, set by the request middleware.
#[derive(Debug, Clone)]
pub(crate) struct RequestIds {
    pub(crate) request_id: String,
    pub(crate) client_request_id: String,
}

/// The `WWW-Authenticate` value Graph sends with 401s.
pub(crate) const WWW_AUTHENTICATE: &str = "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"";

/// One Graph error.
#[derive(Debug, Clone)]
pub(crate) struct GraphError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
}

impl GraphError {
    /// A new error.
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Adds `Retry-After`.
    pub(crate) fn with_retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after = secs;
        self
    }

    /// The response, with `innerError` carrying the request ids.
    pub(crate) fn into_response_with(self, ids: &RequestIds) -> Response {
        let body = json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {
                "date": graph_inner_date(now_unix()),
                "request-id": ids.request_id,
                "client-request-id": ids.client_request_id,
            }
        }});
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            );
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }

    // ---------------------------------------------------------------- the catalogue

    pub(crate) fn token_empty() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        )
    }

    pub(crate) fn token_invalid() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "CompactToken parsing failed with error code: 80049217",
        )
    }

    pub(crate) fn token_expired() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        )
    }

    pub(crate) fn access_denied() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        )
    }

    pub(crate) fn no_permissions() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "NoPermissionsInAccessToken",
            "The token contains no permissions, or permissions can not be understood.",
        )
    }

    pub(crate) fn me_with_app_token() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        )
    }

    pub(crate) fn invalid_user(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            format!("The requested user '{id}' is invalid."),
        )
    }

    pub(crate) fn send_as_denied() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ErrorSendAsDenied",
            "The user account which was used to submit this request does not have the right to send mail on \
             behalf of the specified sending account., Cannot submit message.",
        )
    }

    pub(crate) fn invalid_recipient(address: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRecipients",
            format!(
                "At least one recipient isn't valid., Recipient '{address}' isn't resolved. All recipients must \
                 be resolved before a message can be submitted."
            ),
        )
    }

    pub(crate) fn no_recipients() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ErrorInvalidRecipients",
            "At least one recipient isn't valid., A message can't be sent because it contains no recipients.",
        )
    }

    pub(crate) fn body_read(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "RequestBodyRead", message)
    }

    pub(crate) fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "RequestBodyRead",
            "A supported MIME type could not be found that matches the content type of the request. \
             Use 'application/json', or 'text/plain' for MIME content.",
        )
    }

    pub(crate) fn entity_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "The request entity is too large. The maximum request size is 4 MB.",
        )
    }

    pub(crate) fn message_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "ErrorMessageSizeExceeded",
            "The message exceeds the maximum supported size.",
        )
    }

    pub(crate) fn item_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }

    pub(crate) fn segment_not_found(segment: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("Resource not found for the segment '{segment}'."),
        )
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "The HTTP method is not allowed for this resource.",
        )
    }
}
