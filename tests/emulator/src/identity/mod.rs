//! Entra ID v2.0 (login.microsoftonline.com) endpoints.

pub(crate) mod assertion;
pub(crate) mod authorize;
pub(crate) mod device;
pub(crate) mod discovery;
pub(crate) mod error;
pub(crate) mod jwt;
pub(crate) mod scope;
pub(crate) mod token;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::directory::{MailboxKind, TenantSegment};
use crate::graph::error::RequestIds;
use crate::identity::authorize::escape;
use crate::identity::error::AadError;
use crate::identity::token::parse_form;
use crate::state::Shared;

/// The identity routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token::token))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(device_code))
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/common/discovery/instance",
            get(discovery::instance_discovery),
        )
        .route("/common/userrealm/{username}", get(discovery::user_realm))
        .route(
            "/devicelogin",
            get(device_login_page).post(device_login_submit),
        )
}

/// `POST /{tenant}/oauth2/v2.0/devicecode`.
async fn device_code(
    State(shared): State<Arc<Shared>>,
    Extension(ids): Extension<RequestIds>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let correlation = ids.client_request_id;
    let form = parse_form(&body);
    let result = (|| {
        let mut inner = shared.lock();
        inner.counters.device_code_starts += 1;
        let segment = inner.directory.tenant(&tenant);
        if segment == TenantSegment::Unknown {
            return Err(AadError::unknown_tenant(&tenant));
        }
        let auth = token::client_auth(&form, &headers, &shared.base_url, &tenant);
        let app = token::requesting_app(&inner.directory, segment, &auth)?;
        let raw_scope = form
            .get("scope")
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| AadError::missing_parameter("scope"))?;
        scope::parse(raw_scope)?;
        token::check_client(&mut inner, &app, &auth)?;
        let lifetime = Duration::from_secs(inner.config.device_code_lifetime_secs);
        let interval = Duration::from_secs(inner.config.device_code_interval_secs);
        let code =
            inner
                .devices
                .start(app.client_id, raw_scope, lifetime, interval, Instant::now());
        let uri = format!("{}/devicelogin", shared.base_url);
        Ok(json!({
            "user_code": code.user_code,
            "device_code": code.device_code,
            "verification_uri": uri,
            "expires_in": lifetime.as_secs(),
            "interval": interval.as_secs(),
            "message": format!(
                "To sign in, use a web browser to open the page {uri} and enter the code {} to authenticate.",
                code.user_code
            ),
        }))
    })();
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response_with(&correlation),
    }
}

fn device_page(message: Option<&str>) -> Response {
    let message = message
        .map(|m| format!("<p><strong>{}</strong></p>", escape(m)))
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html><head><title>Enter code</title></head><body><h1>Enter code</h1>\
         <p>mailhost-emulator (stands in for microsoft.com/devicelogin)</p>{message}\
         <form method=\"post\" action=\"/devicelogin\">\
         <p><label>Code <input name=\"otc\"></label></p>\
         <p><label>Email <input name=\"login\"></label></p>\
         <p><label>Password <input type=\"password\" name=\"passwd\"></label></p>\
         <p><button name=\"action\" value=\"approve\">Sign in and allow</button> \
         <button name=\"action\" value=\"decline\">Decline</button></p></form></body></html>"
    ))
    .into_response()
}

async fn device_login_page() -> Response {
    device_page(None)
}

async fn device_login_submit(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let form = parse_form(&body);
    let code = form.get("otc").cloned().unwrap_or_default();
    let now = Instant::now();
    let mut inner = shared.lock();
    if form.get("action").map(String::as_str) == Some("decline") {
        return if inner.devices.decline(&code, now) {
            device_page(Some("You declined the sign-in. You can close this window."))
        } else {
            device_page(Some("That code is not valid or has expired."))
        };
    }
    let login = form.get("login").cloned().unwrap_or_default();
    let password = form.get("passwd").cloned().unwrap_or_default();
    let user = match inner.directory.mailbox(&login) {
        Some(m) if m.kind == MailboxKind::User && m.password == Some(password.as_str()) => m.upn,
        _ => return device_page(Some("Your account or password is incorrect.")),
    };
    if inner.devices.approve(&code, user, now) {
        device_page(Some("You have signed in. You can close this window."))
    } else {
        device_page(Some("That code is not valid or has expired."))
    }
}
