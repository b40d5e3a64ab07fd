//! The Email Maintenance page at `/` of `mailhost serve --http` (DESIGN.md, "The HTTP API and
//! the Email Maintenance page"): server-rendered HTML with one small script for live refresh,
//! both files compiled into the binary, nothing fetched from anywhere else.
//!
//! - `GET /`: sign-in, or the emails (status filter, search, pages), the sending limits in use
//!   and the plugins;
//! - `GET /emails/{id}`: one email with its attempts, error and what to do, receipt,
//!   attachments and headers; `POST /emails/{id}/retry` (CSRF token; `force` for an `unknown`
//!   email, after the confirmation at `GET /emails/{id}/force`);
//! - `POST /signin`, `POST /signout`; `GET /assets/page.css`, `/assets/page.js`, `/assets/icon.svg`.
//!
//! [`html`] escapes; [`session`] keeps the token in an `HttpOnly; SameSite=Strict` cookie and
//! checks CSRF tokens and origins; [`render`] builds the pages. [`security_headers`] puts the
//! Content-Security-Policy (no inline script or style) and its companions on every answer.

pub mod html;
pub mod render;
pub mod session;

#[cfg(test)]
mod tests;

use axum::Form;
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::HttpState;
use super::backend::BackendError;
use super::errors::ApiError;
use crate::delivery::outbox::{Browse, Cursor, PageAt, Status};
use render::{EmailView, Filter, ListView, Session};

/// Emails on one page of the list.
pub const PAGE_SIZE: usize = 50;

/// The policy every answer carries: only this server's own script and style files.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

/// The page's style sheet (the demo's mailbox viewer uses it too).
pub(crate) const CSS: &str = include_str!("assets/page.css");
const JS: &str = include_str!("assets/page.js");
/// The page's icon.
pub(crate) const ICON: &str = include_str!("assets/icon.svg");

/// The page's routes.
pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/", get(list_page))
        .route("/signin", post(sign_in))
        .route("/signout", post(sign_out))
        .route("/emails/{id}", get(email_page))
        .route("/emails/{id}/force", get(force_page))
        .route("/emails/{id}/retry", post(retry))
        .route("/assets/page.css", get(css))
        .route("/assets/page.js", get(js))
        .route("/assets/icon.svg", get(icon))
}

/// Puts the Content-Security-Policy and its companions on every answer.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// The session of the request's cookie, with its token, if the token is valid.
async fn session(
    state: &HttpState,
    headers: &HeaderMap,
) -> Result<Option<(Session, String)>, ApiError> {
    let Some(token) = session::presented(headers) else {
        return Ok(None);
    };
    check(state, token).await
}

/// The session `token` signs in to, if it is a valid token.
async fn check(state: &HttpState, token: String) -> Result<Option<(Session, String)>, ApiError> {
    let checker = state.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let name = checker
            .inner
            .tokens
            .check(checker.inner.backend.outbox(), &token);
        (name, token)
    })
    .await;
    match checked {
        Ok((Ok(Some(name)), token)) => Ok(Some((
            Session {
                name,
                csrf: session::csrf_token(&token),
            },
            token,
        ))),
        Ok((Ok(None), _)) => Ok(None),
        Ok((Err(e), _)) => Err(ApiError::from(super::store_error(&e))),
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(_) => Err(ApiError::internal("the token check was cancelled")),
    }
}

fn failure(session: Option<&Session>, error: &ApiError) -> Response {
    let title = match error.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Not possible now",
        StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
        StatusCode::BAD_REQUEST => "Bad request",
        StatusCode::FORBIDDEN => "Refused",
        _ => "Something went wrong",
    };
    html(
        error.status,
        render::problem(session, title, &error.message),
    )
}

fn signed_out() -> Response {
    html(StatusCode::UNAUTHORIZED, render::sign_in(None))
}

fn cross_site() -> Response {
    failure(
        None,
        &ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            "this form was sent from another site, so it was refused: use the page itself",
        ),
    )
}

/// The list page's query.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

/// `GET /`: the sign-in form, or the emails.
async fn list_page(
    State(state): State<HttpState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let (session, _token) = match session(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return html(StatusCode::OK, render::sign_in(None)),
        Err(e) => return failure(None, &e),
    };
    let mut notices = Vec::new();
    let query = query.map_or_else(
        |e| {
            notices.push(format!(
                "the address's query was not understood ({}): showing all emails",
                e.body_text()
            ));
            ListQuery::default()
        },
        |Query(q)| q,
    );
    let status = match query.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match text.parse::<Status>() {
            Ok(status) => Some(status),
            Err(e) => {
                notices.push(e.to_string());
                None
            }
        },
    };
    let search: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(200)
        .collect();
    let cursor = |text: Option<String>| -> Option<Cursor> {
        text.filter(|t| !t.is_empty()).and_then(|t| t.parse().ok())
    };
    let at = match (cursor(query.before), cursor(query.after)) {
        (Some(before), _) => PageAt::Before(before),
        (None, Some(after)) => PageAt::After(after),
        (None, None) => PageAt::Newest,
    };
    let browse = Browse {
        status,
        search: Some(search.clone()).filter(|s| !s.is_empty()),
        at,
        limit: PAGE_SIZE,
    };
    let loaded = state
        .blocking(move |backend| {
            let outbox = backend.outbox();
            let page = outbox.browse(&browse).map_err(|e| super::store_error(&e))?;
            let counts = outbox.counts().map_err(|e| super::store_error(&e))?;
            let plugins = backend.plugins()?;
            let mailboxes = backend.mailboxes()?;
            Ok::<_, BackendError>((page, counts, plugins, mailboxes))
        })
        .await;
    let (page, counts, plugins, mailboxes) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return failure(Some(&session), &e),
    };
    let filter = Filter { status, search };
    let notice = notices.join("; ");
    let view = ListView {
        filter: &filter,
        page: &page,
        counts: &counts,
        plugins: &plugins,
        mailboxes: &mailboxes,
        notice: Some(notice.as_str()).filter(|n| !n.is_empty()),
    };
    html(StatusCode::OK, render::list(&session, &view))
}

/// The email page's query.
#[derive(Debug, Default, Deserialize)]
struct EmailQuery {
    done: Option<String>,
}

/// `GET /emails/{id}`.
async fn email_page(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<EmailQuery>, QueryRejection>,
) -> Response {
    let (session, _token) = match session(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return signed_out(),
        Err(e) => return failure(None, &e),
    };
    let done = match query.ok().and_then(|Query(q)| q.done).as_deref() {
        Some("retried") => {
            Some("Retry asked: the email is queued and goes as soon as its sending limits allow.")
        }
        Some("forced") => Some("Forced retry asked: the email is queued to be sent again."),
        _ => None,
    };
    show_email(&state, &session, id, done, None, StatusCode::OK).await
}

async fn show_email(
    state: &HttpState,
    session: &Session,
    id: String,
    done: Option<&str>,
    problem: Option<&str>,
    status: StatusCode,
) -> Response {
    let loaded = state
        .blocking(move |backend| {
            let record = backend.get(&id)?;
            let attempts = backend
                .outbox()
                .attempts(&record.id)
                .map_err(|e| super::store_error(&e))?;
            Ok((record, attempts))
        })
        .await;
    match loaded {
        Ok((record, attempts)) => html(
            status,
            render::email(
                session,
                &EmailView {
                    record: &record,
                    attempts: &attempts,
                    done,
                    problem,
                },
            ),
        ),
        Err(e) => failure(Some(session), &e),
    }
}

/// `GET /emails/{id}/force`: asks before sending an `unknown` email again.
async fn force_page(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let (session, _token) = match session(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return signed_out(),
        Err(e) => return failure(None, &e),
    };
    match state.blocking(move |backend| backend.get(&id)).await {
        Ok(record) => html(StatusCode::OK, render::confirm_force(&session, &record)),
        Err(e) => failure(Some(&session), &e),
    }
}

/// The retry form.
#[derive(Debug, Deserialize)]
struct RetryForm {
    csrf: String,
    #[serde(default)]
    force: Option<String>,
}

/// `POST /emails/{id}/retry`.
async fn retry(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<Form<RetryForm>, FormRejection>,
) -> Response {
    if !session::same_origin(&headers) {
        return cross_site();
    }
    let (session, token) = match session(&state, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return signed_out(),
        Err(e) => return failure(None, &e),
    };
    let form = match form {
        Ok(Form(form)) if session::csrf_matches(&token, &form.csrf) => form,
        _ => {
            return failure(
                Some(&session),
                &ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "the form was stale or not from this page (its CSRF token did not match): open the email again and retry from there",
                ),
            );
        }
    };
    if let Err(e) = state.refuse_when_stopping() {
        return failure(Some(&session), &e);
    }
    let force = form.force.as_deref() == Some("true");
    let asked = id.clone();
    match state
        .blocking(move |backend| backend.retry(&asked, force))
        .await
    {
        Ok(record) => see_other(&format!(
            "/emails/{}?done={}",
            html::component(&record.id),
            if force { "forced" } else { "retried" }
        )),
        Err(e) if e.status == StatusCode::CONFLICT => {
            let message = e.message.clone();
            show_email(&state, &session, id, None, Some(&message), e.status).await
        }
        Err(e) => failure(Some(&session), &e),
    }
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
struct SignInForm {
    token: String,
}

/// `POST /signin`: a valid token sets the session cookie.
async fn sign_in(
    State(state): State<HttpState>,
    over_tls: Option<axum::Extension<session::OverTls>>,
    headers: HeaderMap,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    if !session::same_origin(&headers) {
        return cross_site();
    }
    let token = match form {
        Ok(Form(form)) => form.token.trim().to_string(),
        Err(_) => String::new(),
    };
    let invalid = || {
        html(
            StatusCode::UNAUTHORIZED,
            render::sign_in(Some(
                "that API token is not valid (mistyped, or revoked): check it, or make a new one on the server with `mailhost api-token create NAME`",
            )),
        )
    };
    if !session::token_shaped(&token) {
        return invalid();
    }
    match check(&state, token).await {
        Ok(Some((_, token))) => {
            let mut response = see_other("/");
            if let Some(cookie) = session::sign_in_cookie(&token, over_tls.is_some()) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            response
        }
        Ok(None) => invalid(),
        Err(e) => failure(None, &e),
    }
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /signout`: clears the session cookie.
async fn sign_out(
    over_tls: Option<axum::Extension<session::OverTls>>,
    headers: HeaderMap,
    form: Result<Form<SignOutForm>, FormRejection>,
) -> Response {
    if !session::same_origin(&headers) {
        return cross_site();
    }
    // Signing out another person's session is the only harm a forged sign-out could do, so
    // the CSRF token is required when there is a session.
    if let Some(token) = session::presented(&headers) {
        let csrf = form.map(|Form(f)| f.csrf).unwrap_or_default();
        if !session::csrf_matches(&token, &csrf) {
            return failure(
                None,
                &ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "the sign-out form was not from this page: sign out with the page's own button",
                ),
            );
        }
    }
    let mut response = see_other("/");
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::sign_out_cookie(over_tls.is_some()),
    );
    response
}
