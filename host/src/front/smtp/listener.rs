//! The relay's sockets: plain listeners (STARTTLS offered when a certificate is set) and
//! implicit-TLS listeners, the client-network check and connection limits at connect, timeouts,
//! and the loop that drives a [`Session`] and performs its [`Action`]s, calling the
//! [`RelayBackend`] on tokio's blocking pool.
//!
//! ```no_run
//! # async fn run(config: mailhost::front::smtp::config::SmtpConfig,
//! #              backend: std::sync::Arc<dyn mailhost::front::smtp::RelayBackend>) {
//! use mailhost::front::smtp::listener::Relay;
//! let relay = Relay::bind(config, backend).await.unwrap();
//! for bound in relay.local_addrs() {
//!     println!("mailhost serve: smtp listening on {}", bound.addr);
//! }
//! relay.serve(async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;

use super::backend::{AcceptError, RelayBackend};
use super::config::SmtpConfig;
use super::lockout::{AuthGuard, RelayMetrics};
use super::network;
use super::reply::Reply;
use super::session::{Action, AuthAnswer, Session, SessionConfig};
use super::tls::{TlsError, TlsState};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long sessions get to finish when the service stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Refused commands before a session is closed.
const MAX_ERRORS: u32 = 20;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The certificate or key.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A listener address could not be bound.
    #[error(
        "smtp: cannot listen on {addr}: {source}; choose a free address in serve.toml [smtp] or --smtp"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Nothing to listen on.
    #[error(
        "smtp: no listener: set listen or tls_listen in serve.toml [smtp], or pass --smtp ADDR:PORT"
    )]
    NoListeners,
}

/// A bound listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundAddr {
    /// The address (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Implicit TLS (`tls_listen`); else plain with STARTTLS when a certificate is set.
    pub implicit_tls: bool,
}

struct Shared {
    config: SmtpConfig,
    backend: Arc<dyn RelayBackend>,
    tls: Option<TlsState>,
    guard: AuthGuard,
    metrics: Arc<RelayMetrics>,
    connections: Arc<Semaphore>,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

/// The relay: bound listeners, ready to serve.
pub struct Relay {
    shared: Arc<Shared>,
    listeners: Vec<(TcpListener, bool)>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("listeners", &self.local_addrs())
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// Loads the certificate and binds every listener.
    ///
    /// # Errors
    /// See [`RelayError`].
    pub async fn bind(
        config: SmtpConfig,
        backend: Arc<dyn RelayBackend>,
    ) -> Result<Self, RelayError> {
        if config.listen.is_empty() && config.tls_listen.is_empty() {
            return Err(RelayError::NoListeners);
        }
        let tls = config.tls.clone().map(TlsState::new).transpose()?;
        let mut listeners = Vec::new();
        for (addr, implicit) in config
            .listen
            .iter()
            .map(|a| (*a, false))
            .chain(config.tls_listen.iter().map(|a| (*a, true)))
        {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| RelayError::Bind { addr, source })?;
            listeners.push((listener, implicit));
        }
        let guard = AuthGuard::new(
            config.auth_failures_before_lockout,
            config.lockout,
            config.auth_failure_delay,
        );
        Ok(Self {
            shared: Arc::new(Shared {
                connections: Arc::new(Semaphore::new(config.max_connections)),
                config,
                backend,
                tls,
                guard,
                metrics: Arc::new(RelayMetrics::default()),
                per_client: Mutex::new(HashMap::new()),
            }),
            listeners,
        })
    }

    /// The bound addresses, for the "listening on" lines.
    pub fn local_addrs(&self) -> Vec<BoundAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, implicit)| {
                l.local_addr().ok().map(|addr| BoundAddr {
                    addr,
                    implicit_tls: *implicit,
                })
            })
            .collect()
    }

    /// The relay's counters (for `/metrics`).
    pub fn metrics(&self) -> Arc<RelayMetrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Reads the certificate and key again (also done on SIGHUP).
    ///
    /// # Errors
    /// The files are unusable; the old certificate stays in use.
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        match &self.shared.tls {
            Some(tls) => tls.reload(),
            None => Ok(()),
        }
    }

    /// Serves until `shutdown` completes, then refuses new connections, tells idle sessions
    /// `421` and waits (bounded) for sessions recording a message.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut loops = JoinSet::new();
        for (listener, implicit) in self.listeners {
            loops.spawn(accept_loop(
                listener,
                implicit,
                Arc::clone(&self.shared),
                stop_rx.clone(),
            ));
        }
        if self.shared.tls.is_some() {
            let shared = Arc::clone(&self.shared);
            let mut stop = stop_rx.clone();
            loops.spawn(async move {
                let Ok(mut hup) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = hup.recv() => {
                            if let Some(tls) = &shared.tls {
                                match tls.reload() {
                                    Ok(()) => log::info!("smtp: certificate reloaded"),
                                    Err(e) => log::error!("smtp: certificate reload failed, keeping the old one: {e}"),
                                }
                            }
                        }
                        _ = stop.changed() => return,
                    }
                }
            });
        }
        shutdown.await;
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), async {
            while loops.join_next().await.is_some() {}
        })
        .await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    implicit: bool,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let shared = Arc::clone(&shared);
                    let stop = stop.clone();
                    sessions.spawn(async move {
                        connection(shared, tcp, peer, implicit, stop).await;
                    });
                }
                Err(e) => {
                    log::warn!("smtp: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Gone,
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
            Conn::Gone => Ok(0),
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.write_all(bytes).await,
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Gone => Ok(()),
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            Conn::Plain(s) => s.shutdown().await,
            Conn::Tls(s) => s.shutdown().await,
            Conn::Gone => Ok(()),
        };
    }
}

/// A connection slot: releases the per-client count when dropped.
struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self
            .shared
            .per_client
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

fn admit(shared: &Arc<Shared>, ip: IpAddr) -> Result<Slot, Reply> {
    let host = &shared.config.hostname;
    if !network::contains(&shared.config.allow, ip) {
        RelayMetrics::count(&shared.metrics.refused_network);
        log::info!("smtp: refused {ip}: not in smtp.allow");
        return Err(Reply::new(
            554,
            "5.7.1",
            format!("{host} Access denied: your network is not allowed to use this relay"),
        ));
    }
    if let Some(minutes) = shared.guard.locked_out(ip, Instant::now()) {
        RelayMetrics::count(&shared.metrics.refused_locked_out);
        return Err(Reply::new(
            421,
            "4.7.0",
            format!(
                "{host} Too many failed authentications from your address; try again in {minutes} minutes"
            ),
        ));
    }
    let Ok(permit) = Arc::clone(&shared.connections).try_acquire_owned() else {
        RelayMetrics::count(&shared.metrics.refused_limit);
        return Err(Reply::new(
            421,
            "4.7.0",
            format!("{host} Too many connections; try again later"),
        ));
    };
    let ip = network::canonical(ip);
    let mut map = shared.per_client.lock().unwrap_or_else(|p| p.into_inner());
    let n = map.entry(ip).or_insert(0);
    if *n >= shared.config.max_connections_per_client {
        drop(map);
        RelayMetrics::count(&shared.metrics.refused_limit);
        return Err(Reply::new(
            421,
            "4.7.0",
            format!("{host} Too many connections from your address; try again later"),
        ));
    }
    *n += 1;
    drop(map);
    Ok(Slot {
        shared: Arc::clone(shared),
        ip,
        _permit: permit,
    })
}

async fn connection(
    shared: Arc<Shared>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    implicit: bool,
    mut stop: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let ip = network::canonical(peer.ip());
    let _slot = match admit(&shared, ip) {
        Ok(slot) => slot,
        Err(reply) => {
            let _ = tcp.write_all(&reply.to_bytes()).await;
            let _ = tcp.shutdown().await;
            return;
        }
    };
    RelayMetrics::count(&shared.metrics.connections);
    let mut conn = if implicit {
        let Some(tls) = &shared.tls else { return };
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(tcp)).await {
            Ok(Ok(stream)) => Conn::Tls(Box::new(stream)),
            Ok(Err(e)) => {
                log::info!("smtp: TLS handshake with {peer} failed: {e}");
                return;
            }
            Err(_) => return,
        }
    } else {
        Conn::Plain(tcp)
    };
    let backend = Arc::clone(&shared.backend);
    let trusted = tokio::task::spawn_blocking(move || {
        // Only the listed networks are trusted; see [[smtp.trusted]].
        backend.trusted(ip)
    })
    .await
    .ok()
    .flatten();
    let config = SessionConfig {
        hostname: shared.config.hostname.clone(),
        max_message_bytes: shared.config.max_message_bytes,
        max_recipients: shared.config.max_recipients,
        starttls: shared.tls.is_some(),
        auth_without_tls: ip.is_loopback(),
        max_errors: MAX_ERRORS,
    };
    let mut session = Session::new(config, implicit, trusted);
    if conn
        .write_all(&session.greeting().to_bytes())
        .await
        .is_err()
    {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let limit = if session.in_data() {
            shared.config.data_timeout
        } else {
            shared.config.command_timeout
        };
        let actions = tokio::select! {
            read = tokio::time::timeout(limit, conn.read(&mut buf)) => match read {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => session.feed(&buf[..n]),
                Err(_) => {
                    RelayMetrics::count(&shared.metrics.timeouts);
                    log::info!("smtp: {peer} timed out");
                    session.timed_out()
                }
            },
            _ = stop.changed() => session.shutting_down(),
        };
        if !perform(&shared, &mut conn, &mut session, ip, actions).await {
            break;
        }
    }
    conn.shutdown().await;
}

/// Performs actions in order; `false` once the connection is to close.
async fn perform(
    shared: &Arc<Shared>,
    conn: &mut Conn,
    session: &mut Session,
    ip: IpAddr,
    actions: Vec<Action>,
) -> bool {
    let mut queue: VecDeque<Action> = actions.into();
    let mut out = Vec::new();
    while let Some(action) = queue.pop_front() {
        match action {
            Action::Reply(reply) => out.extend_from_slice(&reply.to_bytes()),
            Action::Close => {
                let _ = conn.write_all(&out).await;
                return false;
            }
            Action::StartTls => {
                if conn.write_all(&std::mem::take(&mut out)).await.is_err() {
                    return false;
                }
                let (Conn::Plain(tcp), Some(tls)) =
                    (std::mem::replace(conn, Conn::Gone), &shared.tls)
                else {
                    return false;
                };
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(tcp)).await {
                    Ok(Ok(stream)) => *conn = Conn::Tls(Box::new(stream)),
                    _ => return false,
                }
                queue.extend(session.tls_started());
            }
            Action::Authenticate(credentials) => {
                let answer = authenticate(shared, ip, credentials).await;
                queue.extend(session.auth_answer(answer));
            }
            Action::Accept {
                identity,
                envelope,
                message,
            } => {
                let backend = Arc::clone(&shared.backend);
                let result = tokio::task::spawn_blocking(move || {
                    backend.accept(&identity, &envelope, &message)
                })
                .await
                .unwrap_or_else(|_| {
                    Err(AcceptError::Temporary(
                        "internal error while recording the message; try again".into(),
                    ))
                });
                match &result {
                    Ok(id) => {
                        RelayMetrics::count(&shared.metrics.messages_accepted);
                        log::info!("smtp: accepted email {id} from {ip}");
                    }
                    Err(e) => {
                        RelayMetrics::count(&shared.metrics.messages_failed);
                        log::warn!("smtp: could not record a message from {ip}: {e}");
                    }
                }
                queue.extend(session.accept_answer(result));
            }
        }
    }
    conn.write_all(&out).await.is_ok()
}

async fn authenticate(
    shared: &Arc<Shared>,
    ip: IpAddr,
    credentials: super::sasl::Credentials,
) -> AuthAnswer {
    if let Some(minutes) = shared.guard.locked_out(ip, Instant::now()) {
        return AuthAnswer::LockedOut(minutes);
    }
    let backend = Arc::clone(&shared.backend);
    let identity = tokio::task::spawn_blocking(move || {
        backend.authenticate(&credentials.user, &credentials.password)
    })
    .await
    .ok()
    .flatten();
    match identity {
        Some(identity) => {
            shared.guard.success(ip, &shared.metrics);
            log::info!(
                "smtp: {ip} authenticated as staff member '{}'",
                identity.staff
            );
            AuthAnswer::Accepted(identity)
        }
        None => {
            let failure = shared.guard.failure(ip, Instant::now(), &shared.metrics);
            tokio::time::sleep(failure.delay).await;
            match failure.locked_out_minutes {
                Some(minutes) => AuthAnswer::LockedOut(minutes),
                None => AuthAnswer::Refused,
            }
        }
    }
}

#[cfg(test)]
mod tests;
