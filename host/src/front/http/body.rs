//! Reading a JSON request body under the size limit. A body over the limit is answered 413;
//! what the client is still sending is read and dropped first (up to a bound), so the client
//! sees the 413 instead of a connection reset in the middle of its upload.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;

use super::errors::ApiError;

/// How much of an oversized body is read and dropped before answering 413.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
/// How long draining may take.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Reads the whole body, at most `limit` bytes.
///
/// # Errors
/// 413 over the limit; 400 when the connection broke mid-body.
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = body;
    if declared.is_some_and(|n| n > limit as u64) {
        drain(body, 0).await;
        return Err(ApiError::too_large(limit));
    }
    let mut data = Vec::with_capacity(declared.map_or(8192, |n| n as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_request(
                "body_unreadable",
                format!("the request body could not be read: {e}"),
            )
        })?;
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > limit {
                let seen = data.len() + chunk.len();
                drop(data);
                drain(body, seen).await;
                return Err(ApiError::too_large(limit));
            }
            data.extend_from_slice(&chunk);
        }
    }
    Ok(data)
}

/// Reads and drops the rest of `body`, up to [`DRAIN_LIMIT`] bytes in all and [`DRAIN_TIME`].
async fn drain(mut body: Body, mut seen: usize) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while seen < DRAIN_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => {
                    seen += frame.data_ref().map_or(0, |d| d.len());
                }
                _ => break,
            }
        }
    })
    .await;
}

/// Checks that the body is declared as JSON (or not declared at all).
///
/// # Errors
/// 415 for another media type.
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/json"
        || (media.starts_with("application/") && media.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the body must be JSON: send `Content-Type: application/json` (got '{media}')"),
        ))
    }
}

/// Parses `bytes` as JSON into `T`.
///
/// # Errors
/// 400 with serde's message (what is wrong, with line and column).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let code = if e.is_data() {
            "invalid_field"
        } else {
            "invalid_json"
        };
        ApiError::bad_request(
            code,
            format!("the request body is not a valid email request: {e}"),
        )
    })
}
