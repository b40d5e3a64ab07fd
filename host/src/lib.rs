//! # mailhost
//!
//! The host behind the `mailhost` binary: it keeps a registry of provider plugins
//! (`plugins.toml`), loads them as stable-ABI libraries after checking their pinned SHA-256 and
//! API version, stores the system configuration each plugin declares (`settings.toml`), the staff
//! members who send (`staff.toml`) and the secrets both need (`secrets.toml`, mode 0600), and
//! sends email through the provider a staff member uses.
//!
//! The layers, from the files up (each a folder):
//! - [`config`]: the home and its files: settings, staff, secrets, atomic writes, the clock.
//! - [`plugins`]: the registry, loading libraries safely, quarantine, host services, calling a
//!   provider, and the conformance check.
//! - [`delivery`]: the email store (`mail.db`), composing messages, dispatch to a provider and
//!   the engine that sends.
//! - [`front`]: the doors people and programs come in by (the command line, the demo).
//! - [`error`] and [`report`]: errors, exit codes, and what the binary prints.

// Tests may unwrap: a failed step should stop the test loudly.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod config;
pub mod delivery;
pub mod error;
pub mod front;
pub mod plugins;
pub mod report;

pub use config::home::Home;
pub use error::Error;
