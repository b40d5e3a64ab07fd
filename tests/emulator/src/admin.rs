//! Test-control operations on the shared state, and the HTTP admin API under `/_emulator/…`
//! that exposes them to the standalone binary's users (documented in `README.md`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::faults::{CountedFault, Counters, Faults};
use crate::mailbox::StoredMessage;
use crate::state::Shared;
use crate::time::now_unix;
use crate::tokens::RefreshState;

/// A device code waiting for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingDeviceCode {
    /// The code the user types.
    pub user_code: String,
    /// The app that asked.
    pub client_id: String,
    /// The requested scope string.
    pub scope: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// Why an admin operation did nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No pending device code has that user code.
    #[error("no pending device code '{0}'")]
    NoSuchDeviceCode(String),
    /// The directory has no such user (or it cannot sign in).
    #[error("no user '{0}' who can sign in")]
    NoSuchUser(String),
    /// No app has that client id.
    #[error("no app '{0}'")]
    NoSuchApp(String),
    /// The text is not a certificate.
    #[error("not a certificate: {0}")]
    BadCertificate(String),
    /// A fault's status is not one the emulator injects.
    #[error("unsupported fault status {0} (use 503 or 504; 202 for deliver-then)")]
    BadStatus(u16),
}

impl Shared {
    /// Messages in `address`'s Inbox (oldest first).
    pub(crate) fn inbox(&self, address: &str) -> Vec<StoredMessage> {
        self.lock().mail.folders(address).inbox.clone()
    }

    /// Messages in `address`'s Sent Items.
    pub(crate) fn sent_items(&self, address: &str) -> Vec<StoredMessage> {
        self.lock().mail.folders(address).sent_now().to_vec()
    }

    /// Drafts of `address`.
    pub(crate) fn drafts(&self, address: &str) -> Vec<StoredMessage> {
        self.lock()
            .mail
            .folders(address)
            .drafts
            .values()
            .cloned()
            .collect()
    }

    /// Messages to recipients outside the tenant.
    pub(crate) fn external(&self) -> Vec<StoredMessage> {
        self.lock().mail.external.clone()
    }

    pub(crate) fn counters(&self) -> Counters {
        self.lock().counters.clone()
    }

    pub(crate) fn reset_counters(&self) {
        self.lock().counters = Counters::default();
    }

    pub(crate) fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    pub(crate) fn fault_throttle(
        &self,
        count: u64,
        retry_after_secs: u64,
        path_prefix: Option<String>,
    ) {
        self.lock().faults.throttle = (count > 0).then_some(CountedFault {
            remaining: count,
            status: 429,
            retry_after_secs: Some(retry_after_secs),
            path_prefix,
        });
    }

    pub(crate) fn fault_unavailable(
        &self,
        count: u64,
        status: u16,
        retry_after_secs: Option<u64>,
        path_prefix: Option<String>,
    ) -> Result<(), AdminError> {
        if status != 503 && status != 504 {
            return Err(AdminError::BadStatus(status));
        }
        self.lock().faults.unavailable = (count > 0).then_some(CountedFault {
            remaining: count,
            status,
            retry_after_secs,
            path_prefix,
        });
        Ok(())
    }

    pub(crate) fn fault_deliver_then(
        &self,
        count: u64,
        status: u16,
        retry_after_secs: Option<u64>,
        path_prefix: Option<String>,
    ) -> Result<(), AdminError> {
        if !matches!(status, 202 | 503 | 504) {
            return Err(AdminError::BadStatus(status));
        }
        self.lock().faults.deliver_then = (count > 0).then_some(CountedFault {
            remaining: count,
            status,
            retry_after_secs,
            path_prefix,
        });
        Ok(())
    }

    pub(crate) fn set_latency(&self, ms: u64) {
        self.lock().faults.latency_ms = ms;
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().faults = Faults::default();
    }

    pub(crate) fn set_access_token_lifetime(&self, secs: u64) {
        self.lock().config.access_token_lifetime_secs = secs;
    }

    pub(crate) fn add_user_mailbox(&self, upn: &str, name: &str) {
        self.lock().directory.add_user_mailbox(upn, name);
    }

    pub(crate) fn set_sending_limits(&self, limits: crate::sending::SendingLimits) {
        self.lock().sending.limits = limits;
    }

    pub(crate) fn set_concurrency_limit(&self, enabled: bool) {
        self.lock().config.concurrency_limit = enabled;
    }

    pub(crate) fn set_max_message_size(&self, bytes: u64) {
        self.lock().config.max_message_bytes = bytes;
    }

    pub(crate) fn set_device_code_interval(&self, secs: u64) {
        self.lock().config.device_code_interval_secs = secs.max(1);
    }

    fn mark_refresh_tokens(&self, upn: &str, state: RefreshState) -> usize {
        self.lock().tokens.mark_user_refresh_tokens(upn, state)
    }

    pub(crate) fn revoke_refresh_tokens(&self, upn: &str) -> usize {
        self.mark_refresh_tokens(
            upn,
            RefreshState::Revoked {
                valid_from: now_unix(),
            },
        )
    }

    pub(crate) fn expire_refresh_tokens(&self, upn: &str) -> usize {
        self.mark_refresh_tokens(upn, RefreshState::Inactive)
    }

    pub(crate) fn require_mfa_on_refresh(&self, upn: &str) -> usize {
        self.mark_refresh_tokens(upn, RefreshState::NeedsMfa)
    }

    pub(crate) fn pending_device_codes(&self) -> Vec<PendingDeviceCode> {
        let now = Instant::now();
        self.lock()
            .devices
            .pending(now)
            .into_iter()
            .map(|c| PendingDeviceCode {
                user_code: c.user_code.clone(),
                client_id: c.client_id.clone(),
                scope: c.scope.clone(),
                expires_in: c.expires_at.saturating_duration_since(now).as_secs(),
            })
            .collect()
    }

    fn sign_in_user(&self, upn: &str) -> Result<String, AdminError> {
        let inner = self.lock();
        match inner.directory.mailbox(upn) {
            Some(m) if m.kind == crate::directory::MailboxKind::User => Ok(m.upn.to_string()),
            _ => Err(AdminError::NoSuchUser(upn.to_string())),
        }
    }

    pub(crate) fn approve_device_code(&self, user_code: &str, upn: &str) -> Result<(), AdminError> {
        let user = self.sign_in_user(upn)?;
        if self
            .lock()
            .devices
            .approve(user_code, &user, Instant::now())
        {
            Ok(())
        } else {
            Err(AdminError::NoSuchDeviceCode(user_code.to_string()))
        }
    }

    pub(crate) fn decline_device_code(&self, user_code: &str) -> Result<(), AdminError> {
        if self.lock().devices.decline(user_code, Instant::now()) {
            Ok(())
        } else {
            Err(AdminError::NoSuchDeviceCode(user_code.to_string()))
        }
    }

    /// Uploads a certificate (PEM or base64 DER) to an app; returns its SHA-1 thumbprint.
    pub(crate) fn add_app_certificate(
        &self,
        client_id: &str,
        certificate: &str,
    ) -> Result<String, AdminError> {
        let certificate = crate::identity::assertion::RegisteredCertificate::parse(certificate)
            .map_err(AdminError::BadCertificate)?;
        let thumbprint = certificate.thumbprint();
        let mut inner = self.lock();
        let app = inner
            .directory
            .apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
            .ok_or_else(|| AdminError::NoSuchApp(client_id.to_string()))?;
        app.confidential = true;
        if !app.certificates.contains(&certificate) {
            app.certificates.push(certificate);
        }
        Ok(thumbprint)
    }

    /// Removes every certificate of an app; returns how many.
    pub(crate) fn remove_app_certificates(&self, client_id: &str) -> Result<usize, AdminError> {
        let mut inner = self.lock();
        let app = inner
            .directory
            .apps
            .iter_mut()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
            .ok_or_else(|| AdminError::NoSuchApp(client_id.to_string()))?;
        Ok(std::mem::take(&mut app.certificates).len())
    }

    pub(crate) fn approve_sign_in(&self, upn: &str) -> Result<(), AdminError> {
        let user = self.sign_in_user(upn)?;
        self.lock().sign_in_approvals.push(user);
        Ok(())
    }
}

/// The admin routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/_emulator/health",
            get(|| async { Json(json!({"status": "ok"})) }),
        )
        .route("/_emulator/seed", get(seed))
        .route("/_emulator/mailboxes/{addr}/inbox", get(inbox))
        .route("/_emulator/mailboxes/{addr}/sent", get(sent))
        .route("/_emulator/mailboxes/{addr}/drafts", get(drafts))
        .route("/_emulator/external", get(external))
        .route("/_emulator/counters", get(counters))
        .route("/_emulator/counters/reset", post(reset_counters))
        .route("/_emulator/device-codes", get(device_codes))
        .route(
            "/_emulator/device-codes/{code}/approve",
            post(approve_device),
        )
        .route(
            "/_emulator/device-codes/{code}/decline",
            post(decline_device),
        )
        .route("/_emulator/sign-ins", post(sign_in))
        .route(
            "/_emulator/apps/{client_id}/certificates",
            post(add_certificate).delete(remove_certificates),
        )
        .route("/_emulator/users/{upn}/revoke-refresh-tokens", post(revoke))
        .route("/_emulator/users/{upn}/expire-refresh-tokens", post(expire))
        .route("/_emulator/users/{upn}/require-mfa", post(require_mfa))
        .route("/_emulator/faults", get(faults))
        .route("/_emulator/faults/throttle", post(throttle))
        .route("/_emulator/faults/unavailable", post(unavailable))
        .route("/_emulator/faults/deliver-then", post(deliver_then))
        .route("/_emulator/faults/latency", post(latency))
        .route("/_emulator/faults/clear", post(clear))
        .route("/_emulator/sending-limits", post(sending_limits))
        .route("/_emulator/config", get(get_config).post(set_config))
        .route("/_emulator/reset", post(reset))
}

type S = State<Arc<Shared>>;

fn bad_request(message: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": message.to_string()})),
    )
        .into_response()
}

fn ok() -> Response {
    Json(json!({"ok": true})).into_response()
}

async fn seed(State(shared): S) -> Response {
    let inner = shared.lock();
    let dir = &inner.directory;
    Json(json!({
        "tenant": {"id": crate::seed::TENANT_ID, "domain": crate::seed::TENANT_DOMAIN, "name": crate::seed::TENANT_NAME},
        "apps": dir.apps.iter().map(|a| json!({
            "client_id": a.client_id, "name": a.name, "public_client": a.public_client, "client_secret": a.secret,
            "delegated": a.delegated, "application": a.application, "redirect_uris": a.redirect_uris,
            "confidential": a.confidential,
            "certificates": a.certificates.iter().map(|c| json!({
                "thumbprint": c.thumbprint(), "subject": c.subject, "not_after": crate::time::iso8601(u64::try_from(c.not_after).unwrap_or(0)),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "mailboxes": dir.mailboxes.iter().map(|m| json!({
            "id": m.id, "upn": m.upn, "name": m.name, "password": m.password, "mfa_required": m.mfa_required,
            "kind": if m.kind == crate::directory::MailboxKind::User { "user" } else { "shared" },
        })).collect::<Vec<_>>(),
        "rights": dir.rights.iter().map(|(t, m, r)| json!({"trustee": t, "mailbox": m, "right": format!("{r:?}")})).collect::<Vec<_>>(),
        "base_url": shared.base_url,
    }))
    .into_response()
}

async fn inbox(State(shared): S, Path(addr): Path<String>) -> Response {
    Json(shared.inbox(&addr)).into_response()
}

async fn sent(State(shared): S, Path(addr): Path<String>) -> Response {
    Json(shared.sent_items(&addr)).into_response()
}

async fn drafts(State(shared): S, Path(addr): Path<String>) -> Response {
    Json(shared.drafts(&addr)).into_response()
}

async fn external(State(shared): S) -> Response {
    Json(shared.external()).into_response()
}

async fn counters(State(shared): S) -> Response {
    Json(shared.counters()).into_response()
}

async fn reset_counters(State(shared): S) -> Response {
    shared.reset_counters();
    ok()
}

async fn device_codes(State(shared): S) -> Response {
    Json(shared.pending_device_codes()).into_response()
}

#[derive(Debug, Deserialize)]
struct UpnBody {
    upn: String,
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

async fn approve_device(
    State(shared): S,
    Path(code): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let body: UpnBody = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    match shared.approve_device_code(&code, &body.upn) {
        Ok(()) => ok(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

async fn decline_device(State(shared): S, Path(code): Path<String>) -> Response {
    match shared.decline_device_code(&code) {
        Ok(()) => ok(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

async fn sign_in(State(shared): S, body: axum::body::Bytes) -> Response {
    let body: UpnBody = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    match shared.approve_sign_in(&body.upn) {
        Ok(()) => ok(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct CertificateBody {
    certificate: String,
}

async fn add_certificate(
    State(shared): S,
    Path(client_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let body: CertificateBody = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    match shared.add_app_certificate(&client_id, &body.certificate) {
        Ok(thumbprint) => Json(json!({"ok": true, "thumbprint": thumbprint})).into_response(),
        Err(e @ AdminError::NoSuchApp(_)) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn remove_certificates(State(shared): S, Path(client_id): Path<String>) -> Response {
    match shared.remove_app_certificates(&client_id) {
        Ok(n) => Json(json!({"ok": true, "removed": n})).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

async fn revoke(State(shared): S, Path(upn): Path<String>) -> Response {
    Json(json!({"ok": true, "refresh_tokens": shared.revoke_refresh_tokens(&upn)})).into_response()
}

async fn expire(State(shared): S, Path(upn): Path<String>) -> Response {
    Json(json!({"ok": true, "refresh_tokens": shared.expire_refresh_tokens(&upn)})).into_response()
}

async fn require_mfa(State(shared): S, Path(upn): Path<String>) -> Response {
    Json(json!({"ok": true, "refresh_tokens": shared.require_mfa_on_refresh(&upn)})).into_response()
}

async fn faults(State(shared): S) -> Response {
    let config = shared.lock().config.clone();
    Json(json!({"faults": shared.faults(), "config": config})).into_response()
}

#[derive(Debug, Deserialize)]
struct FaultBody {
    count: u64,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    retry_after_secs: Option<u64>,
    #[serde(default)]
    path_prefix: Option<String>,
}

async fn throttle(State(shared): S, body: axum::body::Bytes) -> Response {
    let body: FaultBody = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    shared.fault_throttle(
        body.count,
        body.retry_after_secs.unwrap_or(1),
        body.path_prefix,
    );
    ok()
}

async fn unavailable(State(shared): S, body: axum::body::Bytes) -> Response {
    let body: FaultBody = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    match shared.fault_unavailable(
        body.count,
        body.status.unwrap_or(503),
        body.retry_after_secs,
        body.path_prefix,
    ) {
        Ok(()) => ok(),
        Err(e) => bad_request(e),
    }
}

async fn deliver_then(State(shared): S, body: axum::body::Bytes) -> Response {
    let body: FaultBody = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    match shared.fault_deliver_then(
        body.count,
        body.status.unwrap_or(503),
        body.retry_after_secs,
        body.path_prefix,
    ) {
        Ok(()) => ok(),
        Err(e) => bad_request(e),
    }
}

async fn sending_limits(State(shared): S, body: axum::body::Bytes) -> Response {
    let body: crate::sending::SendingLimits = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    shared.set_sending_limits(body);
    ok()
}

#[derive(Debug, Deserialize)]
struct LatencyBody {
    ms: u64,
}

async fn latency(State(shared): S, body: axum::body::Bytes) -> Response {
    let body: LatencyBody = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    shared.set_latency(body.ms);
    ok()
}

async fn clear(State(shared): S) -> Response {
    shared.clear_faults();
    ok()
}

async fn get_config(State(shared): S) -> Response {
    let config = shared.lock().config.clone();
    Json(config).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    access_token_lifetime_secs: Option<u64>,
    concurrency_limit: Option<bool>,
    max_message_bytes: Option<u64>,
    device_code_interval_secs: Option<u64>,
    reject_replayed_assertions: Option<bool>,
    sent_items_delay_secs: Option<u64>,
}

async fn set_config(State(shared): S, body: axum::body::Bytes) -> Response {
    let body: ConfigBody = match json_body(&body) {
        Ok(b) => b,
        Err(e) => return bad_request(e),
    };
    if let Some(v) = body.access_token_lifetime_secs {
        shared.set_access_token_lifetime(v);
    }
    if let Some(v) = body.concurrency_limit {
        shared.set_concurrency_limit(v);
    }
    if let Some(v) = body.max_message_bytes {
        shared.set_max_message_size(v);
    }
    if let Some(v) = body.device_code_interval_secs {
        shared.set_device_code_interval(v);
    }
    if let Some(v) = body.reject_replayed_assertions {
        shared.lock().config.reject_replayed_assertions = v;
    }
    if let Some(v) = body.sent_items_delay_secs {
        shared.lock().config.sent_items_delay_secs = v;
    }
    let config: Value = serde_json::to_value(shared.lock().config.clone()).unwrap_or(Value::Null);
    Json(config).into_response()
}

async fn reset(State(shared): S) -> Response {
    shared.reset();
    ok()
}
