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

/// Runs the service until SIGTERM or Ctrl-C.
///
/// # Errors
/// serve.toml is refused, the store cannot be opened, or a listener cannot start.
pub fn run(home: &Home, args: &ServeArgs) -> Result<u8, Error> {
    let config = ServeConfig::load(home).map_err(|e| Error::Usage(e.to_string()))?;
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
    ready(&format!(
        "mailhost serve: delivery engine running with {workers} workers on {}",
        home.path().display()
    ))?;
    log::info!("mailhost serve: ready");
    runtime.block_on(shutdown_signal());
    log::info!("mailhost serve: stopping; sends in flight may take up to {grace:?} to finish");
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
