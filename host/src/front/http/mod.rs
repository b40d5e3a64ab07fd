//! The HTTP door: the JSON API of `mailhost serve --http` (DESIGN.md, "The HTTP API").
//!
//! - [`routes`]: the router, its handlers and middleware (bearer auth, request counts, panics
//!   to JSON 500);
//! - [`backend`]: what the door needs from the delivery engine, as a trait;
//! - [`request`] and [`body`]: the `POST /v1/emails` body, read under the size limit;
//! - [`errors`]: `{"error": {"code", "message"}}` answers;
//! - [`tokens`]: API tokens (made, hashed, checked in constant time);
//! - [`metrics`]: the Prometheus text of `/metrics`; [`openapi`]: `/openapi.json`;
//! - [`page`]: the Email Maintenance page at `/` (HTML, signed in with an API token);
//! - [`config`]: the `[http]` section of serve.toml; [`tls`]: its certificate and key.
//!
//! [`serve_http`] runs the listener until a shutdown future fires; the serve command binds,
//! prints the ready line and starts it beside the engine.

pub mod backend;
pub mod body;
pub mod config;
pub mod errors;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod request;
pub mod routes;
pub mod tls;
pub mod tokens;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Semaphore};

pub use backend::{ApiSubmission, Backend, BackendError, EngineMetrics, InlineAttachment};
pub use config::{HttpConfig, HttpSettings};
pub use tls::TlsConfig;

use crate::delivery::outbox::OutboxError;
use errors::ApiError;
use metrics::HttpMetrics;
use tokens::TokenChecker;

/// How many engine calls run at once on the blocking pool; more wait their turn.
const ENGINE_CALLS: usize = 64;
/// How many connections are served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 4096;
/// How many locks the `Idempotency-Key`s are spread over.
const KEY_STRIPES: usize = 64;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long requests in flight may take to finish once shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What the handlers share: the engine, the token checker, the request counters.
#[derive(Clone)]
pub struct HttpState {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn Backend>,
    tokens: TokenChecker,
    metrics: HttpMetrics,
    max_body_bytes: usize,
    engine_calls: Semaphore,
    key_locks: Vec<Mutex<()>>,
    stopping: AtomicBool,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("max_body_bytes", &self.inner.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl HttpState {
    /// The state for `backend` (the engine) with a request body limit of `max_body_bytes`.
    pub fn new(backend: Arc<dyn Backend>, max_body_bytes: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                tokens: TokenChecker::default(),
                metrics: HttpMetrics::default(),
                max_body_bytes,
                engine_calls: Semaphore::new(ENGINE_CALLS),
                key_locks: (0..KEY_STRIPES).map(|_| Mutex::new(())).collect(),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// Marks the service as stopping: new submissions and retries get 503.
    pub fn stop_accepting(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
    }

    fn refuse_when_stopping(&self) -> Result<(), ApiError> {
        if self.inner.stopping.load(Ordering::SeqCst) {
            Err(ApiError::from(BackendError::Unavailable(
                "mailhost serve is shutting down and accepts no new emails: send again once it is back".into(),
            )))
        } else {
            Ok(())
        }
    }

    /// The lock of `key`'s stripe.
    fn key_lock(&self, key: &str) -> &Mutex<()> {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % KEY_STRIPES as u64).unwrap_or(0);
        &self.inner.key_locks[index]
    }

    /// Runs a blocking engine call on tokio's blocking pool, at most [`ENGINE_CALLS`] at once.
    /// A panic in it is resumed here, so the panic layer answers 500.
    async fn blocking<T, F>(&self, call: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Backend) -> Result<T, BackendError> + Send + 'static,
    {
        let _slot = self
            .inner
            .engine_calls
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the engine call queue is closed"))?;
        let backend = Arc::clone(&self.inner.backend);
        match tokio::task::spawn_blocking(move || call(backend.as_ref())).await {
            Ok(result) => result.map_err(ApiError::from),
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(ApiError::internal("the engine call was cancelled")),
        }
    }
}

/// Sorts a store error for the API: locked is 503 (try again), a missing email 404, an
/// ambiguous id prefix 409, anything else 500.
pub fn store_error(error: &OutboxError) -> BackendError {
    match error {
        OutboxError::Locked { .. } => BackendError::Unavailable(error.to_string()),
        OutboxError::NotFound { .. } => BackendError::NotFound(error.to_string()),
        OutboxError::AmbiguousId { .. } | OutboxError::NotClaimable { .. } => {
            BackendError::Conflict(error.to_string())
        }
        _ => BackendError::Internal(error.to_string()),
    }
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpServeError {
    /// The address could not be bound.
    #[error(
        "cannot listen for HTTP on {addr}: {source}; choose another address or port with --http or [http] listen in serve.toml"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Binds the API's listener.
///
/// # Errors
/// [`HttpServeError::Bind`] naming the address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, HttpServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| HttpServeError::Bind { addr, source })
}

/// Serves the API on `listener` (over TLS when `tls` is given) until `shutdown` completes;
/// then stops accepting connections, answers 503 to new submissions on open ones, and waits up
/// to [`SHUTDOWN_GRACE`] for requests in flight (each committed before its 202) to finish.
///
/// # Errors
/// None today: a failed accept (out of file descriptors) is logged and retried.
pub async fn serve_http(
    listener: TcpListener,
    tls: Option<TlsConfig>,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), HttpServeError> {
    let app = routes::router(state.clone());
    // Over TLS the page marks its session cookie `Secure`.
    let tls_app = app.clone().layer(axum::Extension(page::session::OverTls));
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                log::warn!("HTTP API: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(if tls.is_some() {
            tls_app.clone()
        } else {
            app.clone()
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        match &tls {
            None => {
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = watched.await;
                    drop(permit);
                });
            }
            Some(tls) => {
                let acceptor = tls.acceptor().clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    if let Ok(Ok(stream)) = handshake {
                        let connection = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(connection).await;
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    state.stop_accepting();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        log::warn!(
            "HTTP API: requests still open after {} s of shutdown were cut off",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}
