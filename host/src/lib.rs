//! # mailhost
//!
//! The host behind the `mailhost` binary: it keeps a registry of provider plugins
//! (`plugins.toml`), loads them as stable-ABI libraries after checking their pinned SHA-256 and
//! API version, stores the system configuration each plugin declares (`settings.toml`), the staff
//! members who send (`staff.toml`) and the secrets both need (`secrets.toml`, mode 0600), and
//! sends email through the provider a staff member uses.
//!
//! The layers, from the files up:
//! - [`home`] and [`files`]: where the files live, atomic writes and locks.
//! - [`registry`], [`settings`], [`staff`], [`secrets`]: one file each.
//! - [`loader`], [`quarantine`], [`services`], [`provider`]: opening libraries safely and
//!   calling them.
//! - [`compose`] (CLI input to a [`Message`](mailhost_plugin_api::Message)) and [`dispatch`]
//!   (staff member to provider, settings and a send).
//! - [`cli`] and [`commands`]: the command line; [`error`]: errors and exit codes.

// Tests may unwrap: a failed step should stop the test loudly.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod batch;
pub mod check;
pub mod cli;
pub mod commands;
pub mod compose;
pub mod demo;
pub mod dispatch;
pub mod error;
pub mod files;
pub mod front;
pub mod home;
pub mod loader;
pub mod outbox;
pub mod provider;
pub mod quarantine;
pub mod registry;
pub mod report;
pub mod secrets;
pub mod services;
pub mod settings;
pub mod staff;
pub mod time;

pub use error::Error;
pub use home::Home;
