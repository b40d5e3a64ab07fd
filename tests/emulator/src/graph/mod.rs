//! Microsoft Graph (graph.microsoft.com) mail endpoints, and the Outlook upload-session URLs.

pub(crate) mod auth;
pub(crate) mod drafts;
pub(crate) mod error;
pub(crate) mod message;
pub(crate) mod mime;
pub(crate) mod query;
pub(crate) mod send;
pub(crate) mod upload;

use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, put};
use axum::{Json, Router};
use serde_json::json;

use crate::graph::auth::{Need, Target, authenticate, authorized_mailbox, resolve_target};
use crate::graph::error::{GraphError, RequestIds};
use crate::graph::upload::{Progress, UploadError};
use crate::seed;
use crate::state::Shared;
use crate::time::{iso8601, now_unix};

/// The Graph and upload routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1.0/{*rest}", any(dispatch))
        .route("/api/v2.0/{*rest}", put(upload_put).delete(upload_delete))
}

/// Percent-decodes one path segment.
fn decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Splits `/v1.0/me/...` or `/v1.0/users/{id}/...` into the target and the rest.
pub(crate) fn split_target(path: &str) -> Option<(Target, Vec<String>)> {
    let rest = path.strip_prefix("/v1.0/")?;
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let (first, tail) = segments.split_first()?;
    if first.eq_ignore_ascii_case("me") {
        Some((Target::Me, tail.to_vec()))
    } else if first.eq_ignore_ascii_case("users") {
        let (id, tail) = tail.split_first()?;
        Some((Target::User(id.clone()), tail.to_vec()))
    } else {
        None
    }
}

/// Reads a request body of at most 4 MB; larger → 413.
async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, GraphError> {
    /// How much of an oversized body is read and discarded before answering 413, so a client
    /// that is still writing gets the status instead of a broken pipe.
    const DRAIN_CAP: usize = 256 * 1024 * 1024;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut too_large = declared.is_some_and(|n| n > limit as u64);
    let mut body = body;
    let mut collected = Vec::new();
    let mut drained = 0usize;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame
            .map_err(|_| GraphError::entity_too_large())?
            .into_data()
        else {
            continue;
        };
        if too_large {
            drained += data.len();
            if drained > DRAIN_CAP {
                break;
            }
        } else if collected.len() + data.len() > limit {
            too_large = true;
            drained = collected.len() + data.len();
            collected = Vec::new();
        } else {
            collected.extend_from_slice(&data);
        }
    }
    if too_large {
        Err(GraphError::entity_too_large())
    } else {
        Ok(Bytes::from(collected))
    }
}

async fn dispatch(
    State(shared): State<Arc<Shared>>,
    Extension(ids): Extension<RequestIds>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match route(&shared, &method, uri.path(), uri.query(), &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response_with(&ids),
    }
}

async fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, GraphError> {
    let Some((target, rest)) = split_target(path) else {
        let segment = path
            .trim_start_matches("/v1.0/")
            .split('/')
            .next()
            .unwrap_or("");
        return Err(GraphError::segment_not_found(segment));
    };
    let base = shared.base_url.as_str();
    let rest_ref: Vec<&str> = rest.iter().map(String::as_str).collect();
    let post = *method == Method::POST;
    let get = *method == Method::GET;
    match rest_ref.as_slice() {
        [] if get => {
            let inner = shared.lock();
            let principal = authenticate(&inner, headers)?;
            let m = resolve_target(&inner.directory, &principal, &target)?;
            Ok(Json(json!({
                "@odata.context": format!("{base}/v1.0/$metadata#users/$entity"),
                "id": m.id, "displayName": m.name, "mail": m.upn, "userPrincipalName": m.upn,
            }))
            .into_response())
        }
        [s] if s.eq_ignore_ascii_case("sendMail") && post => {
            let body = read_limited(headers, body, seed::MAX_REQUEST_BODY_BYTES).await?;
            send::send_mail(&mut shared.lock(), headers, &target, &body)?;
            Ok(accepted())
        }
        [s] if s.eq_ignore_ascii_case("messages") && post => {
            let body = read_limited(headers, body, seed::MAX_REQUEST_BODY_BYTES).await?;
            let resource = drafts::create_draft(&mut shared.lock(), base, headers, &target, &body)?;
            Ok((StatusCode::CREATED, Json(resource)).into_response())
        }
        [m, id, s]
            if m.eq_ignore_ascii_case("messages") && s.eq_ignore_ascii_case("send") && post =>
        {
            let id = (*id).to_string();
            drafts::send_draft(&mut shared.lock(), headers, &target, &id)?;
            Ok(accepted())
        }
        [m, id, a]
            if m.eq_ignore_ascii_case("messages")
                && a.eq_ignore_ascii_case("attachments")
                && post =>
        {
            let id = (*id).to_string();
            let body = read_limited(headers, body, seed::MAX_REQUEST_BODY_BYTES).await?;
            let resource =
                drafts::add_attachment(&mut shared.lock(), base, headers, &target, &id, &body)?;
            Ok((StatusCode::CREATED, Json(resource)).into_response())
        }
        [m, id, a, c]
            if m.eq_ignore_ascii_case("messages")
                && a.eq_ignore_ascii_case("attachments")
                && c.eq_ignore_ascii_case("createUploadSession")
                && post =>
        {
            let id = (*id).to_string();
            let body = read_limited(headers, body, seed::MAX_REQUEST_BODY_BYTES).await?;
            let resource = drafts::create_upload_session(
                &mut shared.lock(),
                base,
                headers,
                &target,
                &id,
                &body,
            )?;
            Ok((StatusCode::CREATED, Json(resource)).into_response())
        }
        [f, folder, m]
            if f.eq_ignore_ascii_case("mailFolders")
                && m.eq_ignore_ascii_case("messages")
                && get =>
        {
            let mut inner = shared.lock();
            let (_, mailbox) = authorized_mailbox(&inner, headers, &target, Need::Read)?;
            let list = query::ListQuery::parse(query)?;
            let folders = inner.mail.folders(mailbox.upn);
            let items: Vec<crate::mailbox::StoredMessage> =
                match folder.to_ascii_lowercase().as_str() {
                    "inbox" => folders.inbox.clone(),
                    "sentitems" => folders.sent_now().to_vec(),
                    "drafts" => folders.drafts.values().cloned().collect(),
                    _ => return Err(GraphError::item_not_found()),
                };
            let value = list.apply(&items)?;
            Ok(Json(json!({
                "@odata.context": format!("{base}/v1.0/$metadata#users('{}')/mailFolders('{folder}')/messages", mailbox.id),
                "value": value,
            }))
            .into_response())
        }
        [] | [_] | [_, _] | [_, _, _] | [_, _, _, _] if !post && !get => {
            Err(GraphError::method_not_allowed())
        }
        other => Err(GraphError::segment_not_found(
            other.first().copied().unwrap_or(""),
        )),
    }
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_LENGTH, HeaderValue::from_static("0"))],
    )
        .into_response()
}

/// The session id inside `…/AttachmentSessions('{id}')`.
pub(crate) fn session_id(path: &str) -> Option<String> {
    let decoded = decode(path);
    let start = decoded.find("AttachmentSessions('")? + "AttachmentSessions('".len();
    let end = decoded[start..].find("')")?;
    Some(decoded[start..start + end].to_string())
}

fn auth_token(query: Option<&str>) -> String {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case("authtoken"))
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn upload_error(error: UploadError) -> GraphError {
    match error {
        UploadError::NotFound => GraphError::item_not_found(),
        UploadError::BadRange(message) => {
            GraphError::new(StatusCode::BAD_REQUEST, "InvalidContentRange", message)
        }
        UploadError::OutOfOrder { next } => GraphError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "InvalidRange",
            format!(
                "The uploaded bytes are not in order. The next expected range starts at {next}."
            ),
        ),
        UploadError::ChunkTooLarge => GraphError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "At most 4 MB may be uploaded in one PUT request.",
        ),
        UploadError::LengthMismatch => GraphError::new(
            StatusCode::BAD_REQUEST,
            "InvalidContentRange",
            "The request body length does not match the Content-Range header.",
        ),
        UploadError::Busy => GraphError::new(
            StatusCode::CONFLICT,
            "Conflict",
            "Another upload request for this session is in progress.",
        ),
    }
}

async fn upload_put(
    State(shared): State<Arc<Shared>>,
    Extension(ids): Extension<RequestIds>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match put_chunk(&shared, &uri, query.as_deref(), &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response_with(&ids),
    }
}

async fn put_chunk(
    shared: &Shared,
    uri: &Uri,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, GraphError> {
    shared.lock().counters.upload_puts += 1;
    if headers.contains_key(header::AUTHORIZATION) {
        return Err(GraphError::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            format!(
                "The audience claim value is invalid for current resource. Audience claim is '{}', request url is \
                 '{}' and resource type is 'Exchange'. Send upload-session PUTs without an Authorization header.",
                seed::GRAPH_RESOURCE,
                uri
            ),
        ));
    }
    let id = session_id(uri.path()).ok_or_else(GraphError::item_not_found)?;
    let token = auth_token(query);
    let body = match read_limited(headers, body, seed::MAX_UPLOAD_CHUNK_BYTES as usize).await {
        Ok(body) => body,
        Err(_) => return Err(upload_error(UploadError::ChunkTooLarge)),
    };
    let range = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok());
    let now = now_unix();
    let (range, mut hasher) = shared
        .lock()
        .uploads
        .begin_put(&id, &token, range, body.len() as u64, now)
        .map_err(upload_error)?;
    let hashed = tokio::task::spawn_blocking(move || {
        sha2::Digest::update(&mut hasher, &body);
        hasher
    })
    .await;
    let mut inner = shared.lock();
    let hasher = match hashed {
        Ok(h) => h,
        Err(_) => {
            inner.uploads.release(&id);
            return Err(GraphError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "generalException",
                "Hashing failed.",
            ));
        }
    };
    match inner
        .uploads
        .finish_put(&id, range, hasher)
        .map_err(upload_error)?
    {
        Progress::Partial { next, expires_at } => {
            let expires = iso8601(expires_at);
            Ok(Json(json!({
                "@odata.context": format!("{}/api/v2.0/$metadata#Microsoft.OutlookServices.UploadSession", shared.base_url),
                "ExpirationDateTime": expires,
                "NextExpectedRanges": [next.to_string()],
                "nextExpectedRanges": [next.to_string()],
            }))
            .into_response())
        }
        Progress::Complete {
            attachment,
            mailbox,
            mailbox_id,
            message_id,
        } => {
            let location = format!(
                "{}/api/v2.0/Users('{mailbox_id}@{}')/Messages('{message_id}')/Attachments('{}')",
                shared.base_url,
                seed::TENANT_ID,
                attachment.id
            );
            let draft = inner
                .mail
                .folders(&mailbox)
                .drafts
                .get_mut(&message_id)
                .ok_or_else(GraphError::item_not_found)?;
            draft.attachments.push(attachment);
            let mut response = (
                StatusCode::CREATED,
                [(header::CONTENT_LENGTH, HeaderValue::from_static("0"))],
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            Ok(response)
        }
    }
}

async fn upload_delete(
    State(shared): State<Arc<Shared>>,
    Extension(ids): Extension<RequestIds>,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    let id = session_id(uri.path()).unwrap_or_default();
    let token = auth_token(query.as_deref());
    if shared.lock().uploads.remove(&id, &token, now_unix()) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        GraphError::item_not_found().into_response_with(&ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let (t, rest) =
            split_target("/v1.0/users/alex%40contoso.onmicrosoft.com/sendMail").unwrap();
        assert_eq!(t, Target::User("alex@contoso.onmicrosoft.com".into()));
        assert_eq!(rest, vec!["sendMail"]);
        assert_eq!(
            split_target("/v1.0/me/messages/abc/send").unwrap().1.len(),
            3
        );
        assert!(split_target("/v1.0/groups/x").is_none());
        let url = "/api/v2.0/Users('a@b')/Messages('m')/AttachmentSessions('s1')";
        assert_eq!(session_id(url).as_deref(), Some("s1"));
        assert_eq!(
            session_id("/api/v2.0/Users(%27a%27)/AttachmentSessions(%27s2%27)").as_deref(),
            Some("s2")
        );
    }
}
