//! `mailhost serve`: the always-on service. It runs the delivery engine continuously (every
//! staff member's queued emails sent when due, under the sending limits; retries; `unknown`
//! emails reconciled) and the listeners serve.toml and the flags ask for. It prints one line per
//! listener when it is ready, logs to stderr (journald-friendly), and on SIGTERM or Ctrl-C stops
//! taking new work, lets sends in flight finish within the grace period and exits with nothing
//! lost: an email is committed before anyone is told it was accepted, and a send cut short is
//! `unknown` and reconciled at the next start.

pub mod config;

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

pub use config::{ServeConfig, ServeConfigError};

use crate::config::home::Home;
use crate::delivery::engine::{Engine, EngineOptions, StopSignal};
use crate::error::{EXIT_OK, Error};
use crate::front::cli::ServeArgs;
use crate::front::commands::email;
use crate::front::http;
use crate::front::smtp::{self, config::SmtpConfig};

/// Runs the service until SIGTERM or Ctrl-C.
///
/// # Errors
/// serve.toml is refused, the store cannot be opened, or a listener cannot start.
pub fn run(home: &Home, args: &ServeArgs) -> Result<u8, Error> {
    let config = ServeConfig::load(home).map_err(|e| Error::Usage(e.to_string()))?;
    let http = http_settings(home, &config, args)?;
    let workers = args
        .workers
        .map_or(config.engine.workers, usize::from)
        .max(1);
    let grace = args
        .grace
        .unwrap_or(Duration::from_secs(config.engine.grace_seconds));
    let outbox = email::open_store(home)?;
    let engine = Arc::new(Engine::new(
        home,
        Arc::new(outbox),
        EngineOptions {
            workers,
            ..EngineOptions::default()
        },
    )?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("mailhost-serve")
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the service's runtime: {e}")))?;
    let http_listener = match &http {
        Some((settings, _)) => Some(
            runtime
                .block_on(http::bind(settings.listen))
                .map_err(|e| Error::Failed(e.to_string()))?,
        ),
        None => None,
    };
    let stop = StopSignal::new();
    let (done_tx, done_rx) = mpsc::channel();
    {
        let engine = Arc::clone(&engine);
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("mailhost-engine".into())
            .spawn(move || {
                let result = engine.run(&stop, grace);
                let _ = done_tx.send(result);
            })
            .map_err(|e| Error::Failed(format!("cannot start the delivery engine: {e}")))?;
    }
    let smtp = SmtpConfig::for_serve(&home.path().join("serve.toml"), &args.smtp)
        .map_err(|e| Error::Usage(e.to_string()))?;
    let (relay_stop, relay_stopped) = tokio::sync::watch::channel(false);
    let relay = match smtp {
        Some(config) => {
            let (relay, lines) = runtime.block_on(smtp::service::start(home, &engine, config))?;
            for line in lines {
                ready(&line)?;
            }
            let mut stopped = relay_stopped.clone();
            Some(runtime.spawn(relay.serve(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })))
        }
        None => None,
    };
    ready(&format!(
        "mailhost serve: delivery engine running with {workers} workers on {}",
        home.path().display()
    ))?;
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http_task = match (http, http_listener) {
        (Some((settings, tls)), Some(listener)) => {
            let addr = listener.local_addr().map_err(|e| {
                Error::Failed(format!("cannot read the HTTP listener's address: {e}"))
            })?;
            let state = http::HttpState::new(engine.clone(), settings.max_body_bytes);
            let task = runtime.spawn(http::serve_http(listener, tls, state, async {
                let _ = http_stopped.await;
            }));
            ready(&format!("mailhost serve: http listening on {addr}"))?;
            Some(task)
        }
        _ => None,
    };
    log::info!("mailhost serve: ready");
    runtime.block_on(shutdown_signal());
    if let Some(task) = http_task {
        // No new emails from here on; requests in flight finish (each committed before its 202).
        let _ = http_stop.send(());
        let bound = http::SHUTDOWN_GRACE + Duration::from_secs(1);
        match runtime.block_on(async { tokio::time::timeout(bound, task).await }) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => log::warn!("the HTTP API stopped with an error: {error}"),
            Ok(Err(error)) => log::warn!("the HTTP API task failed: {error}"),
            Err(_) => log::warn!("the HTTP API did not stop within {bound:?}"),
        }
    }
    log::info!("mailhost serve: stopping; sends in flight may take up to {grace:?} to finish");
    // The doors close first (the relay answers 421 and lets messages being recorded finish),
    // then the engine stops.
    let _ = relay_stop.send(true);
    if let Some(relay) = relay {
        let _ = runtime.block_on(async { tokio::time::timeout(grace, relay).await });
    }
    stop.stop();
    engine.wake();
    match done_rx.recv_timeout(grace + Duration::from_secs(5)) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(error),
        Err(_) => log::warn!(
            "the delivery engine did not stop in time; emails still being sent are reconciled at the next start"
        ),
    }
    runtime.shutdown_timeout(Duration::from_secs(2));
    Ok(EXIT_OK)
}

/// The HTTP API's settings and TLS, when `--http` or an `[http]` section in serve.toml asks
/// for the API; checked before anything starts.
///
/// # Errors
/// A refused `[http]` section or flag (with file and line), or a certificate or key that
/// cannot be used: exit 2.
fn http_settings(
    home: &Home,
    config: &ServeConfig,
    args: &ServeArgs,
) -> Result<Option<(http::HttpSettings, Option<http::TlsConfig>)>, Error> {
    if args.http.is_none() && config.http.is_none() {
        return Ok(None);
    }
    let settings =
        http::config::load(home, args.http.as_deref()).map_err(|e| Error::Usage(e.to_string()))?;
    let tls = settings
        .tls
        .as_ref()
        .map(http::TlsConfig::load)
        .transpose()
        .map_err(|e| Error::Usage(e.to_string()))?;
    Ok(Some((settings, tls)))
}

/// Prints a ready line on stdout at once (a supervisor or test may be waiting for it).
fn ready(line: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            log::warn!("cannot listen for Ctrl-C: {error}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                log::warn!("cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
