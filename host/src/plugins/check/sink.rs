//! The capture sink: the [`HostServices`] a library under check receives instead of the
//! host's. It records every log record (at every level), every message to the user and every
//! secret-store call, keeps secrets in memory only, and writes nothing anywhere.
//!
//! These methods run inside abi_stable vtable shims, where a panic ends the process: nothing
//! here panics (a poisoned lock is recovered).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString};
use mailhost_plugin_api::{HostServices, HostServices_TO, HostServicesBox, LogLevel};

/// One thing the plugin said through the host: a log record or a message to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// `log ERROR from TARGET` or `notify`.
    pub channel: String,
    /// The text.
    pub text: String,
}

/// Everything captured so far.
#[derive(Debug, Default)]
pub struct Captured {
    /// Log records and user messages, in order.
    pub said: Vec<Said>,
    /// Secret-store calls: (`get`/`put`/`delete`, key).
    pub secret_calls: Vec<(&'static str, String)>,
    secrets: HashMap<String, String>,
}

/// The sink; clones share what they capture.
#[derive(Debug, Clone, Default)]
pub struct CaptureSink {
    captured: Arc<Mutex<Captured>>,
}

impl CaptureSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// What was captured so far.
    pub fn captured(&self) -> MutexGuard<'_, Captured> {
        self.captured
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The FFI handle to lend the library.
    pub fn into_box(self) -> HostServicesBox {
        HostServices_TO::from_value(self, TD_Opaque)
    }

    fn said(&self, channel: String, text: &str) {
        self.captured().said.push(Said {
            channel,
            text: text.to_string(),
        });
    }

    fn secret_call(&self, call: &'static str, key: &str) -> MutexGuard<'_, Captured> {
        let mut captured = self.captured();
        captured.secret_calls.push((call, key.to_string()));
        captured
    }
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Off => "OFF",
        LogLevel::Error => "ERROR",
        LogLevel::Warn => "WARN",
        LogLevel::Info => "INFO",
        LogLevel::Debug => "DEBUG",
        LogLevel::Trace => "TRACE",
    }
}

impl HostServices for CaptureSink {
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        self.said(
            format!(
                "log record at {} from {}",
                level_name(level),
                target.as_str()
            ),
            message.as_str(),
        );
    }

    fn notify(&self, message: RStr<'_>) {
        self.said("message to the user (notify)".into(), message.as_str());
    }

    fn secret_get(&self, key: RStr<'_>) -> RResult<ROption<RString>, RString> {
        let captured = self.secret_call("get", key.as_str());
        let value = captured
            .secrets
            .get(key.as_str())
            .map(|v| RString::from(v.as_str()));
        RResult::ROk(value.into())
    }

    fn secret_put(&self, key: RStr<'_>, value: RStr<'_>) -> RResult<(), RString> {
        let mut captured = self.secret_call("put", key.as_str());
        captured
            .secrets
            .insert(key.as_str().to_string(), value.as_str().to_string());
        RResult::ROk(())
    }

    fn secret_delete(&self, key: RStr<'_>) -> RResult<(), RString> {
        let mut captured = self.secret_call("delete", key.as_str());
        captured.secrets.remove(key.as_str());
        RResult::ROk(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_is_captured_and_secrets_stay_in_memory() {
        let sink = CaptureSink::new();
        let boxed = sink.clone().into_box();
        boxed.log(LogLevel::Trace, "t".into(), "hello".into());
        boxed.notify("go to https://example".into());
        assert!(boxed.secret_put("k".into(), "v".into()).is_ok());
        let got = boxed
            .secret_get("k".into())
            .into_result()
            .unwrap()
            .into_option();
        assert_eq!(got.map(|s| s.to_string()), Some("v".into()));
        assert!(boxed.secret_delete("k".into()).is_ok());
        let captured = sink.captured();
        assert_eq!(captured.said.len(), 2);
        assert_eq!(captured.said[0].channel, "log record at TRACE from t");
        assert_eq!(captured.secret_calls.len(), 3);
    }
}
