//! Services the host lends a plugin: its logger, a way to show the user a message, and a secret
//! store for token caches.
//!
//! The host hands a [`HostServicesBox`] to the plugin once, when it loads it. Plugin code reaches
//! it through the free functions here ([`notify`], [`secret_get`], ...), and the `log` macros
//! work as usual: the export helpers install a logger in the plugin's own copy of `log`'s statics
//! that forwards every record to the host's logger, so `RUST_LOG` controls plugin logs too.

// sabi_trait expands to impls inside a const block.
#![allow(non_local_definitions)]

use std::sync::OnceLock;

use abi_stable::StableAbi;
use abi_stable::sabi_trait;
use abi_stable::std_types::{RBox, ROption, RResult, RStr, RString};

/// A log level, crossing the boundary as a byte.
#[repr(u8)]
#[derive(StableAbi, Debug, Copy, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Logging is off.
    Off = 0,
    /// `log::Level::Error`.
    Error = 1,
    /// `log::Level::Warn`.
    Warn = 2,
    /// `log::Level::Info`.
    Info = 3,
    /// `log::Level::Debug`.
    Debug = 4,
    /// `log::Level::Trace`.
    Trace = 5,
}

impl LogLevel {
    /// The `log` crate's level, or `None` for [`LogLevel::Off`].
    pub fn to_level(self) -> Option<log::Level> {
        match self {
            Self::Off => None,
            Self::Error => Some(log::Level::Error),
            Self::Warn => Some(log::Level::Warn),
            Self::Info => Some(log::Level::Info),
            Self::Debug => Some(log::Level::Debug),
            Self::Trace => Some(log::Level::Trace),
        }
    }

    /// The `log` crate's level filter.
    pub fn to_filter(self) -> log::LevelFilter {
        self.to_level()
            .map_or(log::LevelFilter::Off, |level| level.to_level_filter())
    }

    /// From the `log` crate's level.
    pub fn from_level(level: log::Level) -> Self {
        match level {
            log::Level::Error => Self::Error,
            log::Level::Warn => Self::Warn,
            log::Level::Info => Self::Info,
            log::Level::Debug => Self::Debug,
            log::Level::Trace => Self::Trace,
        }
    }

    /// From the `log` crate's level filter.
    pub fn from_filter(filter: log::LevelFilter) -> Self {
        filter.to_level().map_or(Self::Off, Self::from_level)
    }
}

/// What the host offers a plugin. The host implements it; plugins call it through the free
/// functions of this module.
///
/// Implementations must not panic: a panic in a vtable shim ends the process.
#[sabi_trait]
pub trait HostServices: Send + Sync {
    /// Passes one log record to the host's logger.
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);

    /// Shows a message to the user (device-code sign-in instructions, progress).
    fn notify(&self, message: RStr<'_>);

    /// Reads a secret this plugin stored earlier, or `None`.
    fn secret_get(&self, key: RStr<'_>) -> RResult<ROption<RString>, RString>;

    /// Stores a secret (file mode 0600, never printed). Keys are private to the plugin.
    fn secret_put(&self, key: RStr<'_>, value: RStr<'_>) -> RResult<(), RString>;

    /// Deletes a secret; deleting a missing one is not an error.
    #[sabi(last_prefix_field)]
    fn secret_delete(&self, key: RStr<'_>) -> RResult<(), RString>;
}

/// The owned, FFI-safe handle to the host's services that a plugin receives at load time.
pub type HostServicesBox = HostServices_TO<'static, RBox<()>>;

static HOST: OnceLock<HostServicesBox> = OnceLock::new();

/// Stores the host's services and routes this library's `log` records to the host. Called by
/// the export helpers at load time; a second call keeps the first services.
pub fn install(host: HostServicesBox, max_level: LogLevel) {
    if HOST.set(host).is_ok() {
        // The plugin has its own copy of `log`'s statics; point them at the host.
        if log::set_logger(&FORWARDER).is_ok() {
            log::set_max_level(max_level.to_filter());
        }
        // And its own copy of std's panic hook: report panics through the host's logger (the
        // export helpers turn them into errors) instead of printing over the host's output.
        std::panic::set_hook(Box::new(|info| {
            log::debug!("provider panic: {info}");
        }));
    }
}

/// The host's services, once the host has loaded the plugin.
pub fn services() -> Option<&'static HostServicesBox> {
    HOST.get()
}

/// Shows `message` to the user through the host. Without a host (unit tests) it goes to stderr.
pub fn notify(message: &str) {
    match HOST.get() {
        Some(host) => host.notify(message.into()),
        None => eprintln!("{message}"),
    }
}

/// The error a secret-store call returns when the host has not lent its services.
fn no_host() -> String {
    "the host's secret store is not available (the plugin was not loaded by mailhost)".into()
}

/// Reads a secret stored earlier under `key`.
///
/// # Errors
/// The host could not read its secret store; the message says why.
pub fn secret_get(key: &str) -> Result<Option<String>, String> {
    let host = HOST.get().ok_or_else(no_host)?;
    host.secret_get(key.into())
        .into_result()
        .map(|v| v.into_option().map(String::from))
        .map_err(String::from)
}

/// Stores `value` under `key` in the host's secret store.
///
/// # Errors
/// The host could not write its secret store; the message says why.
pub fn secret_put(key: &str, value: &str) -> Result<(), String> {
    let host = HOST.get().ok_or_else(no_host)?;
    host.secret_put(key.into(), value.into())
        .into_result()
        .map_err(String::from)
}

/// Deletes the secret stored under `key`.
///
/// # Errors
/// The host could not write its secret store; the message says why.
pub fn secret_delete(key: &str) -> Result<(), String> {
    let host = HOST.get().ok_or_else(no_host)?;
    host.secret_delete(key.into())
        .into_result()
        .map_err(String::from)
}

/// Forwards the plugin's `log` records to the host.
struct Forwarder;

static FORWARDER: Forwarder = Forwarder;

impl log::Log for Forwarder {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if let Some(host) = HOST.get() {
            let message = record.args().to_string();
            host.log(
                LogLevel::from_level(record.level()),
                record.target().into(),
                message.as_str().into(),
            );
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip() {
        for level in [
            log::Level::Error,
            log::Level::Warn,
            log::Level::Info,
            log::Level::Debug,
            log::Level::Trace,
        ] {
            assert_eq!(LogLevel::from_level(level).to_level(), Some(level));
        }
        assert_eq!(LogLevel::from_filter(log::LevelFilter::Off), LogLevel::Off);
    }

    #[test]
    fn secrets_without_host_fail_clearly() {
        let error = secret_get("k").expect_err("no host is installed");
        assert!(error.contains("not loaded by mailhost"), "{error}");
    }
}
