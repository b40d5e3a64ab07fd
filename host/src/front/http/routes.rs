//! The handlers, one per route of DESIGN.md's table, and the middleware around them: bearer
//! authentication for `/v1`, request counting for `/metrics`, and panics turned into a JSON 500.

use std::any::Any;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;

use super::HttpState;
use super::backend::BackendError;
use super::body::{parse_json, read_limited, require_json};
use super::errors::ApiError;
use super::request::{EmailRequest, idempotency_key};
use crate::delivery::outbox::{EmailRecord, Status};

/// The header a client sets to make a POST safe to repeat.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// `limit` when `GET /v1/emails` gives none.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// The largest `limit` of `GET /v1/emails`.
pub const MAX_LIST_LIMIT: usize = 1000;

/// The whole API.
pub fn router(state: HttpState) -> Router {
    let authenticated = Router::new()
        .route("/v1/emails", post(submit).get(list))
        .route("/v1/emails/{id}", get(show))
        .route("/v1/emails/{id}/retry", post(retry))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(authenticated)
        .merge(super::page::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn(super::page::security_headers))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn metrics(State(state): State<HttpState>) -> Result<Response, ApiError> {
    let engine = state.blocking(|backend| backend.metrics()).await?;
    let text = super::metrics::render(&engine, &state.inner.metrics);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(super::metrics::CONTENT_TYPE),
        )],
        text,
    )
        .into_response())
}

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        super::openapi::document_text(),
    )
        .into_response()
}

/// `POST /v1/emails`.
async fn submit(
    State(state): State<HttpState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    state.refuse_when_stopping()?;
    require_json(&headers)?;
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| idempotency_key(v.as_bytes()))
        .transpose()?;
    let bytes = read_limited(&headers, body, state.inner.max_body_bytes).await?;
    let request: EmailRequest = parse_json(&bytes)?;
    drop(bytes);
    let submission = request.into_submission(key.clone())?;
    let asked = (
        submission.staff_id.clone(),
        submission.draft.subject.clone(),
    );
    // Concurrent requests with the same key take turns, so the second finds the first's email.
    let _turn = match &key {
        Some(key) => Some(state.key_lock(key).lock().await),
        None => None,
    };
    let record = state
        .blocking(move |backend| backend.submit(submission))
        .await?;
    if key.is_some() && (record.staff_id != asked.0 || record.subject != asked.1) {
        return Err(ApiError::invalid(
            "idempotency_key_reused",
            format!(
                "this Idempotency-Key was already used for another email ({}): use a new key for a new email",
                record.id
            ),
        ));
    }
    Ok(accepted(&record))
}

/// 202 `{"id", "status"}` with the record's address.
fn accepted(record: &EmailRecord) -> Response {
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({"id": record.id, "status": record.status})),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/emails/{}", record.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// `GET /v1/emails/{id}`: the record with its attempt log, as `email show --json` prints it.
async fn show(
    State(state): State<HttpState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    let shown = state
        .blocking(move |backend| {
            let record = backend.get(&id)?;
            let attempts = backend
                .outbox()
                .attempts(&record.id)
                .map_err(|e| super::store_error(&e))?;
            let mut value = serde_json::to_value(&record)
                .map_err(|e| BackendError::Internal(format!("cannot show email {id}: {e}")))?;
            if let Some(object) = value.as_object_mut() {
                object.insert("attempt_log".into(), json!(attempts));
            }
            Ok(value)
        })
        .await?;
    Ok(Json(shown))
}

/// The query of `GET /v1/emails`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/emails?status=&limit=`.
async fn list(
    State(state): State<HttpState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let status = match query.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<Status>()
                .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))?,
        ),
    };
    let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit={limit} is out of range: use 1 to {MAX_LIST_LIMIT}"),
        ));
    }
    let emails = state
        .blocking(move |backend| backend.list(status, limit))
        .await?;
    Ok(Json(json!({ "emails": emails })))
}

/// The query of `POST /v1/emails/{id}/retry`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryQuery {
    #[serde(default)]
    force: bool,
}

/// `POST /v1/emails/{id}/retry[?force=true]`.
async fn retry(
    State(state): State<HttpState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<RetryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    state.refuse_when_stopping()?;
    let Path(id) = id.map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let record = state
        .blocking(move |backend| backend.retry(&id, query.force))
        .await?;
    Ok(accepted(&record))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "there is no {} here: see /openapi.json for the routes",
        uri.path().escape_debug()
    ))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}: see /openapi.json for the routes",
            uri.path().escape_debug()
        ),
    )
}

/// Lets a request through to `/v1` only with `Authorization: Bearer <a stored token>`.
async fn authenticate(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    let Some(presented) = presented.filter(|t| !t.is_empty()) else {
        return ApiError::unauthorized(
            "this route needs `Authorization: Bearer <token>`: make a token with `mailhost api-token create NAME`",
        )
        .into_response();
    };
    let checked = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            state
                .inner
                .tokens
                .check(state.inner.backend.outbox(), &presented)
        })
        .await
    };
    match checked {
        Ok(Ok(Some(_name))) => next.run(request).await,
        Ok(Ok(None)) => ApiError::unauthorized(
            "the bearer token is not valid (mistyped, or revoked): check it, or make a new one with `mailhost api-token create NAME`",
        )
        .into_response(),
        Ok(Err(e)) => ApiError::from(super::store_error(&e)).into_response(),
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Counts every answered request by route pattern, method and status.
async fn count(State(state): State<HttpState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    state
        .inner
        .metrics
        .count(&route, &method, response.status().as_u16());
    response
}

/// A handler panicked: log it and answer a JSON 500 (the details stay in the log).
fn panicked(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    log::error!("HTTP API: a request handler panicked: {detail}");
    ApiError::internal(
        "the server failed while handling this request; it was logged: try again, and report it if it persists",
    )
    .into_response()
}
