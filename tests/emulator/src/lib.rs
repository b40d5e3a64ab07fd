//! A local Microsoft 365 emulator: Entra ID v2.0 token endpoints (login.microsoftonline.com)
//! and Microsoft Graph mail (graph.microsoft.com), on loopback only, for tests, `mailhost demo`
//! and third-party provider authors. Request shapes, error bodies and status codes follow
//! `shared/GRAPH.md`; the seed directory and the admin API are documented in this crate's
//! `README.md`.
//!
//! ```no_run
//! use mailhost_emulator::{Emulator, seed};
//! let emulator = Emulator::start()?;
//! // point the provider's Authority and GraphEndpoint at emulator.base_url() ...
//! let arrived = emulator.inbox(seed::RECIPIENT_UPN);
//! # Ok::<(), mailhost_emulator::Error>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod admin;
mod config;
mod directory;
mod error;
mod faults;
pub mod fixtures;
mod graph;
mod identity;
mod mailbox;
pub mod seed;
mod sending;
mod server;
mod state;
mod time;
mod tls;
mod tokens;

pub use admin::{AdminError, PendingDeviceCode};
pub use config::Config;
pub use error::Error;
pub use faults::{CountedFault, Counters, Faults, TokenRequestCounters};
pub use mailbox::{
    AttachmentInfo, EmailAddress, ExtendedProperty, ItemBody, MessageHeader, Recipient,
    StoredMessage,
};
pub use sending::SendingLimits;
pub use server::Emulator;
pub use tls::CA_FILE;
