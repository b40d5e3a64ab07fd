//! The HTTP(S) server: routing, the per-request middleware (ids, `Date`, faults, latency, the
//! mailbox-concurrency limit) and the [`Emulator`] handle that runs it on its own thread.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::admin::{AdminError, PendingDeviceCode};
use crate::config::{Config, RuntimeConfig};
use crate::error::Error;
use crate::faults::{CountedFault, Counters};
use crate::graph::auth::{Target, bearer};
use crate::graph::error::{GraphError, RequestIds};
use crate::identity::error::AadError;
use crate::mailbox::StoredMessage;
use crate::state::Shared;
use crate::time::{http_date, now_unix};

fn is_graph_path(path: &str) -> bool {
    path.starts_with("/v1.0/") || path.starts_with("/api/v2.0/")
}

/// The (client id, mailbox) a Graph request counts against for the concurrency limit.
fn concurrency_key(shared: &Shared, request: &Request) -> Option<(String, String)> {
    let path = request.uri().path();
    let inner = shared.lock();
    if path.starts_with("/api/v2.0/") {
        let id = crate::graph::session_id(path)?;
        return inner.uploads.owner(&id);
    }
    let token = bearer(request.headers())?;
    let stored = inner.tokens.access.get(token)?;
    let (target, _) = crate::graph::split_target(path)?;
    let mailbox = match target {
        Target::Me => stored.user.clone()?,
        Target::User(id) => inner
            .directory
            .mailbox(&id)
            .map(|m| m.upn.to_ascii_lowercase())
            .unwrap_or_else(|| id.to_ascii_lowercase()),
    };
    Some((stored.client_id.clone(), mailbox))
}

/// Leaves the concurrency slot when the request finishes (or is dropped).
struct Slot {
    shared: Arc<Shared>,
    key: (String, String),
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared
            .lock()
            .concurrency
            .leave(&self.key.0, &self.key.1);
    }
}

fn fault_response(path: &str, fault: &CountedFault, ids: &RequestIds) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = if is_graph_path(path) {
        let (code, message) = match fault.status {
            429 => (
                "TooManyRequests",
                "Too many requests. Please try again later.",
            ),
            504 => (
                "gatewayTimeout",
                "The gateway did not receive a timely response. Please try again later.",
            ),
            _ => (
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please try again later.",
            ),
        };
        GraphError::new(status, code, message).into_response_with(ids)
    } else if fault.status == 429 {
        AadError::throttled().into_response_with(&ids.client_request_id)
    } else {
        AadError::unavailable(status).into_response_with(&ids.client_request_id)
    };
    if let Some(secs) = fault.retry_after_secs {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

async fn common(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = request
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let ids = RequestIds {
        request_id,
        client_request_id,
    };
    request.extensions_mut().insert(ids.clone());
    let mut response = if path.starts_with("/_emulator") {
        next.run(request).await
    } else {
        let (fault, deliver_then, latency) = {
            let mut inner = shared.lock();
            inner.counters.total_requests += 1;
            let fault = inner.faults.take(&path);
            if fault.as_ref().is_some_and(|f| f.status == 429) {
                inner.counters.throttled += 1;
            }
            let deliver_then = if fault.is_none() {
                inner.faults.take_deliver_then(&path)
            } else {
                None
            };
            (fault, deliver_then, inner.faults.latency_ms)
        };
        let delay = Duration::from_millis(latency);
        if let Some(fault) = fault {
            tokio::time::sleep(delay).await;
            fault_response(&path, &fault, &ids)
        } else {
            let mut slot = None;
            let mut refused = false;
            let key = if is_graph_path(&path) {
                concurrency_key(&shared, &request)
            } else {
                None
            };
            {
                if let Some(key) = key {
                    let mut inner = shared.lock();
                    let limit = inner
                        .config
                        .concurrency_limit
                        .then_some(crate::seed::MAILBOX_CONCURRENCY_LIMIT);
                    let inner = &mut *inner;
                    if inner
                        .concurrency
                        .enter(&key.0, &key.1, limit, &mut inner.counters)
                        .is_ok()
                    {
                        slot = Some(Slot {
                            shared: shared.clone(),
                            key,
                        });
                    } else {
                        inner.counters.throttled += 1;
                        refused = true;
                    }
                }
            }
            if refused {
                GraphError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "ApplicationThrottled",
                    "Application is over its MailboxConcurrency limit.",
                )
                .with_retry_after(Some(1))
                .into_response_with(&ids)
            } else {
                tokio::time::sleep(delay).await;
                let response = next.run(request).await;
                drop(slot);
                match deliver_then {
                    Some(fault) if response.status().is_success() => {
                        shared.lock().counters.delivered_then_faulted += 1;
                        if fault.status == 202 {
                            let mut accepted = (
                                StatusCode::ACCEPTED,
                                [(
                                    axum::http::header::CONTENT_LENGTH,
                                    HeaderValue::from_static("0"),
                                )],
                            )
                                .into_response();
                            if let Some(secs) = fault.retry_after_secs {
                                accepted.headers_mut().insert(
                                    axum::http::header::RETRY_AFTER,
                                    HeaderValue::from(secs),
                                );
                            }
                            accepted
                        } else {
                            fault_response(&path, &fault, &ids)
                        }
                    }
                    _ => response,
                }
            }
        }
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ids.request_id) {
        headers.insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ids.client_request_id) {
        headers.insert("client-request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(now_unix())) {
        headers.insert(axum::http::header::DATE, v);
    }
    if is_graph_path(&path) {
        let diagnostic = r#"{"ServerInfo":{"DataCenter":"Loopback","Slice":"E","Ring":"5","ScaleUnit":"000","RoleInstance":"mailhost-emulator"}}"#;
        headers.insert("x-ms-ags-diagnostic", HeaderValue::from_static(diagnostic));
    }
    if shared.base_url.starts_with("https://") {
        headers.insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

async fn not_found(
    axum::extract::Extension(ids): axum::extract::Extension<RequestIds>,
    uri: axum::http::Uri,
) -> Response {
    GraphError::new(
        StatusCode::NOT_FOUND,
        "UnknownPath",
        format!("The emulator does not serve '{}'.", uri.path()),
    )
    .into_response_with(&ids)
}

/// The whole application.
pub(crate) fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(crate::identity::routes())
        .merge(crate::graph::routes())
        .merge(crate::admin::routes())
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(shared.clone(), common))
        .with_state(shared)
}

/// Serves `app` on `listener` until `shutdown` fires.
async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let tls = tls.clone();
        tokio::spawn(async move {
            let builder = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(stream).await {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}

/// A running emulator. It serves on its own thread with its own tokio runtime and stops when
/// dropped.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    ca_pem: Option<PathBuf>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Emulator {
    /// Starts an emulator with the default configuration on `127.0.0.1:0` (plain HTTP).
    pub fn start() -> Result<Self, Error> {
        Self::start_with(Config::default())
    }

    /// Starts an emulator with `config`.
    pub fn start_with(config: Config) -> Result<Self, Error> {
        Self::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST), config)
    }

    /// Starts an emulator on a given address, which must be loopback.
    pub fn start_on(host: IpAddr, config: Config) -> Result<Self, Error> {
        if !host.is_loopback() {
            return Err(Error::NotLoopback(host));
        }
        let addr = SocketAddr::new(host, config.port);
        let std_listener = std::net::TcpListener::bind(addr).map_err(|source| Error::Bind {
            addr: addr.to_string(),
            source,
        })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|source| Error::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let local = std_listener.local_addr().map_err(|source| Error::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let (tls, ca_pem) = match &config.tls_dir {
            Some(dir) => {
                let (acceptor, ca) = crate::tls::acceptor(dir)?;
                (Some(acceptor), Some(ca))
            }
            None => (None, None),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host_text = match local.ip() {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let base_url = format!("{scheme}://{host_text}:{}", local.port());
        let shared = Arc::new(Shared::new(
            base_url,
            RuntimeConfig::from(&config),
            config.latency_ms,
        ));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mailhost-emulator")
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener).map_err(|source| Error::Bind {
                addr: addr.to_string(),
                source,
            })?
        };
        let app = app(shared.clone());
        let (tx, rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("mailhost-emulator".into())
            .spawn(move || {
                runtime.block_on(serve(listener, app, tls, rx));
                runtime.shutdown_timeout(Duration::from_millis(500));
            })
            .map_err(Error::Runtime)?;
        Ok(Self {
            shared,
            ca_pem,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Blocks until the server stops (it stops only when the handle is dropped elsewhere or the
    /// process ends); used by the binary.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// `http://127.0.0.1:PORT` (or `https://…`), no trailing slash.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The provider's `Authority` setting: the base URL.
    pub fn authority(&self) -> &str {
        self.base_url()
    }

    /// The provider's `GraphEndpoint` setting: the base URL.
    pub fn graph_endpoint(&self) -> &str {
        self.base_url()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.base_url()
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// With TLS: the test CA certificate (`DIR/ca.pem`) clients must trust.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_pem.as_deref()
    }

    /// Messages received by `address` (oldest first).
    pub fn inbox(&self, address: &str) -> Vec<StoredMessage> {
        self.shared.inbox(address)
    }

    /// The Sent Items of `address`.
    pub fn sent_items(&self, address: &str) -> Vec<StoredMessage> {
        self.shared.sent_items(address)
    }

    /// The drafts of `address`.
    pub fn drafts(&self, address: &str) -> Vec<StoredMessage> {
        self.shared.drafts(address)
    }

    /// Messages to recipients outside the tenant (one entry per external recipient).
    pub fn external(&self) -> Vec<StoredMessage> {
        self.shared.external()
    }

    /// The counters.
    pub fn counters(&self) -> Counters {
        self.shared.counters()
    }

    /// Zeroes the counters.
    pub fn reset_counters(&self) {
        self.shared.reset_counters();
    }

    /// Empties mailboxes, tokens, sessions, counters and faults (keeps the seed and config).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// The next `count` non-admin requests (only those under `path_prefix`, if given) get
    /// `429` with `Retry-After: retry_after_secs`.
    pub fn fault_throttle(&self, count: u64, retry_after_secs: u64, path_prefix: Option<&str>) {
        self.shared
            .fault_throttle(count, retry_after_secs, path_prefix.map(str::to_string));
    }

    /// The next `count` non-admin requests get `status` (503 or 504), with `Retry-After` if given.
    pub fn fault_unavailable(
        &self,
        count: u64,
        status: u16,
        retry_after_secs: Option<u64>,
        path_prefix: Option<&str>,
    ) -> Result<(), AdminError> {
        self.shared.fault_unavailable(
            count,
            status,
            retry_after_secs,
            path_prefix.map(str::to_string),
        )
    }

    /// Added latency on every non-admin request.
    pub fn set_latency(&self, ms: u64) {
        self.shared.set_latency(ms);
    }

    /// Clears throttle, unavailable and latency faults.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Lifetime of access tokens issued from now on (`expires_in`); 0 issues already-expired
    /// tokens.
    pub fn set_access_token_lifetime(&self, secs: u64) {
        self.shared.set_access_token_lifetime(secs);
    }

    /// Adds a user mailbox `upn` in the tenant (load tests that need many mailboxes; app-only
    /// sends from it work like from the seeded users').
    pub fn add_user_mailbox(&self, upn: &str, name: &str) {
        self.shared.add_user_mailbox(upn, name);
    }

    /// Watches Exchange's per-mailbox sending limits: every submission past one is counted in
    /// [`Counters::limit_breaches`](crate::Counters).
    pub fn set_sending_limits(&self, limits: crate::SendingLimits) {
        self.shared.set_sending_limits(limits);
    }

    /// Turns the 4-concurrent-requests-per-app-and-mailbox limit on or off.
    pub fn set_concurrency_limit(&self, enabled: bool) {
        self.shared.set_concurrency_limit(enabled);
    }

    /// The maximum message size (attachments counted base64-inflated).
    pub fn set_max_message_size(&self, bytes: u64) {
        self.shared.set_max_message_size(bytes);
    }

    /// The device-code polling interval handed out from now on (seconds, at least 1).
    pub fn set_device_code_interval(&self, secs: u64) {
        self.shared.set_device_code_interval(secs);
    }

    /// Revokes every refresh token of `upn` (later redemptions: AADSTS50173). Returns how many.
    pub fn revoke_refresh_tokens(&self, upn: &str) -> usize {
        self.shared.revoke_refresh_tokens(upn)
    }

    /// Expires every refresh token of `upn` by inactivity (AADSTS700082). Returns how many.
    pub fn expire_refresh_tokens(&self, upn: &str) -> usize {
        self.shared.expire_refresh_tokens(upn)
    }

    /// Conditional Access demands MFA again: redeeming any current refresh token of `upn`
    /// answers AADSTS50076 `interaction_required`. Returns how many.
    pub fn require_mfa_on_refresh(&self, upn: &str) -> usize {
        self.shared.require_mfa_on_refresh(upn)
    }

    /// Device codes waiting for the user.
    pub fn pending_device_codes(&self) -> Vec<PendingDeviceCode> {
        self.shared.pending_device_codes()
    }

    /// The user `upn` enters `user_code` and signs in (MFA satisfied).
    pub fn approve_device_code(&self, user_code: &str, upn: &str) -> Result<(), AdminError> {
        self.shared.approve_device_code(user_code, upn)
    }

    /// The user declines `user_code`.
    pub fn decline_device_code(&self, user_code: &str) -> Result<(), AdminError> {
        self.shared.decline_device_code(user_code)
    }

    /// Uploads a certificate (PEM or base64 DER, public part) to the app `client_id`, as the
    /// portal's "Certificates & secrets > Upload certificate" does; returns its thumbprint.
    ///
    /// # Errors
    /// No such app, or the text is not a certificate.
    pub fn add_app_certificate(
        &self,
        client_id: &str,
        certificate: &str,
    ) -> Result<String, AdminError> {
        self.shared.add_app_certificate(client_id, certificate)
    }

    /// Removes every certificate of the app `client_id`; returns how many.
    ///
    /// # Errors
    /// No such app.
    pub fn remove_app_certificates(&self, client_id: &str) -> Result<usize, AdminError> {
        self.shared.remove_app_certificates(client_id)
    }

    /// The next `count` requests whose path starts with `path_prefix` are carried out (the mail
    /// is delivered) and then answered `status`: 503 or 504 (Graph's error body), or 202 with
    /// `Retry-After: retry_after_secs`, as Graph has answered for mail it delivered.
    ///
    /// # Errors
    /// A status other than 202, 503 or 504.
    pub fn fault_deliver_then(
        &self,
        count: u64,
        status: u16,
        retry_after_secs: Option<u64>,
        path_prefix: Option<&str>,
    ) -> Result<(), AdminError> {
        self.shared.fault_deliver_then(
            count,
            status,
            retry_after_secs,
            path_prefix.map(str::to_string),
        )
    }

    /// Refuse (or accept, the default) a client assertion whose `jti` was presented before.
    pub fn set_reject_replayed_assertions(&self, enabled: bool) {
        self.shared.lock().config.reject_replayed_assertions = enabled;
    }

    /// Seconds a sent message takes to appear in the sender's Sent Items (0: at once, the
    /// default); Exchange files the copy asynchronously.
    pub fn set_sent_items_delay(&self, secs: u64) {
        self.shared.lock().config.sent_items_delay_secs = secs;
    }

    /// Approves the next authorization-code sign-in as `upn` (its `login_hint`, if any, must
    /// match).
    pub fn approve_sign_in(&self, upn: &str) -> Result<(), AdminError> {
        self.shared.approve_sign_in(upn)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
