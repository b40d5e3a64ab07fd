//! Start-up configuration of an emulator instance.

use std::path::PathBuf;

use crate::seed;

/// How to start an emulator. `Config::default()` is what [`crate::Emulator::start`] uses.
#[derive(Debug, Clone)]
pub struct Config {
    /// The loopback port (0: any free port).
    pub port: u16,
    /// Serve HTTPS: generate a test CA and a server certificate for 127.0.0.1/localhost and write
    /// the CA to `DIR/ca.pem`.
    pub tls_dir: Option<PathBuf>,
    /// Added latency on every non-admin request, in milliseconds.
    pub latency_ms: u64,
    /// Access-token lifetime (`expires_in`), in seconds.
    pub access_token_lifetime_secs: u64,
    /// Enforce Outlook's 4-concurrent-requests-per-app-and-mailbox limit.
    pub concurrency_limit: bool,
    /// Device-code lifetime, in seconds.
    pub device_code_lifetime_secs: u64,
    /// Device-code polling interval, in seconds (tests may lower it to 1).
    pub device_code_interval_secs: u64,
    /// Maximum message size (Exchange counts attachments base64-inflated), in bytes.
    pub max_message_bytes: u64,
    /// Refuse a client assertion whose `jti` was presented before (default off, as the
    /// service accepts MSAL's reuse of an assertion while it is valid).
    pub reject_replayed_assertions: bool,
    /// Seconds a sent message takes to appear in the sender's Sent Items (0: at once).
    pub sent_items_delay_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 0,
            tls_dir: None,
            latency_ms: 0,
            access_token_lifetime_secs: seed::DEFAULT_ACCESS_TOKEN_LIFETIME_SECS,
            concurrency_limit: true,
            device_code_lifetime_secs: seed::DEVICE_CODE_LIFETIME_SECS,
            device_code_interval_secs: seed::DEVICE_CODE_INTERVAL_SECS,
            max_message_bytes: seed::MAX_MESSAGE_BYTES,
            reject_replayed_assertions: false,
            sent_items_delay_secs: 0,
        }
    }
}

/// The settings that can change while running (admin API / `Emulator` setters).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RuntimeConfig {
    pub(crate) access_token_lifetime_secs: u64,
    pub(crate) concurrency_limit: bool,
    pub(crate) device_code_lifetime_secs: u64,
    pub(crate) device_code_interval_secs: u64,
    pub(crate) max_message_bytes: u64,
    pub(crate) reject_replayed_assertions: bool,
    pub(crate) sent_items_delay_secs: u64,
}

impl From<&Config> for RuntimeConfig {
    fn from(config: &Config) -> Self {
        Self {
            access_token_lifetime_secs: config.access_token_lifetime_secs,
            concurrency_limit: config.concurrency_limit,
            device_code_lifetime_secs: config.device_code_lifetime_secs,
            device_code_interval_secs: config.device_code_interval_secs.max(1),
            max_message_bytes: config.max_message_bytes,
            reject_replayed_assertions: config.reject_replayed_assertions,
            sent_items_delay_secs: config.sent_items_delay_secs,
        }
    }
}
