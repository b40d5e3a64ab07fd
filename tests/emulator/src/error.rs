//! Errors starting or running an emulator.

use std::net::IpAddr;
use std::path::PathBuf;

/// Why an emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The emulator only ever listens on loopback.
    #[error(
        "refusing to listen on {0}: mailhost-emulator binds loopback addresses only (127.0.0.1)"
    )]
    NotLoopback(IpAddr),
    /// The port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The tokio runtime or server thread could not start.
    #[error("cannot start the emulator's runtime: {0}")]
    Runtime(std::io::Error),
    /// The TLS directory could not be written.
    #[error("cannot write the test CA to {dir}: {source}")]
    TlsFiles {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Certificate generation or TLS set-up failed.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}
