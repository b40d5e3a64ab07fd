//! The [`HostServices`] each loaded plugin receives: the host's logger (target
//! `plugin::<name>::<target>`, so `RUST_LOG` controls plugin logs), user messages on stderr, and
//! the secret store namespaced `plugin.<name>.<key>`. Log records and user messages have every
//! secret of the store masked first ([`crate::plugins::redaction`]).
//!
//! These methods run inside abi_stable vtable shims, where a panic ends the process; every path
//! here is written not to panic and the secret calls are additionally wrapped in
//! `catch_unwind`.

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString};
use mailhost_plugin_api::{HostServices, HostServices_TO, HostServicesBox, LogLevel};

use crate::config::secrets::{self, SecretStore};
use crate::plugins::redaction::Redactor;

/// The services lent to one plugin.
#[derive(Debug, Clone)]
pub struct PluginServices {
    name: Arc<OnceLock<String>>,
    secrets: Arc<SecretStore>,
    redactor: Arc<Redactor>,
}

impl PluginServices {
    /// Services for a plugin whose name is known (a registered plugin).
    pub fn named(name: &str, secrets: Arc<SecretStore>) -> Self {
        let services = Self::unnamed(secrets);
        let _ = services.name.set(name.to_string());
        services
    }

    /// Services for a library being inspected before its name is known; call
    /// [`PluginServices::set_name`] once it has described itself.
    pub fn unnamed(secrets: Arc<SecretStore>) -> Self {
        Self {
            name: Arc::new(OnceLock::new()),
            redactor: Arc::new(Redactor::new(secrets.clone())),
            secrets,
        }
    }

    /// Sets the plugin's name (the first call wins).
    pub fn set_name(&self, name: &str) {
        let _ = self.name.set(name.to_string());
    }

    /// The FFI handle to give the plugin.
    pub fn into_box(self) -> HostServicesBox {
        HostServices_TO::from_value(self, TD_Opaque)
    }

    fn plugin(&self) -> &str {
        self.name.get().map_or("unnamed", String::as_str)
    }

    fn secret_call<T>(
        &self,
        key: RStr<'_>,
        f: impl FnOnce(&SecretStore, &str) -> Result<T, String>,
    ) -> RResult<T, RString> {
        let Some(name) = self.name.get() else {
            return RResult::RErr(
                "the secret store is not available while the plugin is being inspected".into(),
            );
        };
        let full = secrets::plugin_key(name, key.as_str());
        match catch_unwind(AssertUnwindSafe(|| f(&self.secrets, &full))) {
            Ok(Ok(value)) => RResult::ROk(value),
            Ok(Err(message)) => RResult::RErr(message.into()),
            Err(_) => RResult::RErr("the host's secret store failed unexpectedly".into()),
        }
    }
}

impl HostServices for PluginServices {
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        let Some(mut level) = level.to_level() else {
            return;
        };
        // The export helpers log a caught panic and also return it as an error, which the
        // host shows; keep the log copy for debugging so the user reads it once.
        if target.as_str().starts_with("mailhost_plugin_api::export") {
            level = level.max(log::Level::Debug);
        }
        let target = format!("plugin::{}::{}", self.plugin(), target.as_str());
        let logger = log::logger();
        let metadata = log::Metadata::builder()
            .level(level)
            .target(&target)
            .build();
        if logger.enabled(&metadata) {
            // Every secret the host holds is masked, whichever crate in the plugin wrote it.
            let message = catch_unwind(AssertUnwindSafe(|| {
                self.redactor.redact(message.as_str()).into_owned()
            }))
            .unwrap_or_else(|_| "[a log record that could not be checked for secrets]".into());
            logger.log(
                &log::Record::builder()
                    .metadata(metadata)
                    .args(format_args!("{message}"))
                    .build(),
            );
        }
    }

    fn notify(&self, message: RStr<'_>) {
        let message = catch_unwind(AssertUnwindSafe(|| {
            self.redactor.redact(message.as_str()).into_owned()
        }))
        .unwrap_or_default();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "{}",
            crate::front::terminal::escape_keeping_lines(&message)
        );
        let _ = err.flush();
    }

    fn secret_get(&self, key: RStr<'_>) -> RResult<ROption<RString>, RString> {
        self.secret_call(key, |store, full| {
            store
                .get(full)
                .map(|v| v.map(|s| RString::from(s.expose())).into())
                .map_err(|e| e.to_string())
        })
    }

    fn secret_put(&self, key: RStr<'_>, value: RStr<'_>) -> RResult<(), RString> {
        self.secret_call(key, |store, full| {
            store.put(full, value.as_str()).map_err(|e| e.to_string())
        })
    }

    fn secret_delete(&self, key: RStr<'_>) -> RResult<(), RString> {
        self.secret_call(key, |store, full| {
            store.delete(full).map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_namespaced_by_plugin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SecretStore::at(&dir.path().join("s.toml")).expect("store"));
        let services = PluginServices::named("graph-email", store.clone()).into_box();
        assert!(services.secret_put("token".into(), "abc".into()).is_ok());
        assert!(
            store
                .contains("plugin.graph-email.token")
                .expect("contains")
        );
        let got = services
            .secret_get("token".into())
            .into_result()
            .expect("get");
        assert_eq!(got.into_option().map(|s| s.to_string()), Some("abc".into()));
        assert!(services.secret_delete("token".into()).is_ok());
        assert!(
            !store
                .contains("plugin.graph-email.token")
                .expect("contains")
        );
        services.log(LogLevel::Info, "x".into(), "hello".into());
    }

    #[test]
    fn unnamed_plugins_get_no_secrets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SecretStore::at(&dir.path().join("s.toml")).expect("store"));
        let services = PluginServices::unnamed(store);
        let boxed = services.clone().into_box();
        assert!(boxed.secret_get("k".into()).is_err());
        services.set_name("p");
        assert!(boxed.secret_put("k".into(), "v".into()).is_ok());
    }
}
