//! The SMTP relay's door (`mailhost serve --smtp`): business software, printers and scripts
//! submit with SMTP and mailhost sends through each staff member's provider.
//!
//! Cut as Stalwart cuts its mail server: the protocol is a state machine with no I/O
//! ([`session`], over [`data`], [`sasl`], [`reply`] and Stalwart's `smtp-proto` parser), the
//! listener ([`listener`]) drives it over tokio sockets and TLS, and everything it needs from
//! mailhost comes through one trait ([`backend::RelayBackend`]). Settings come from serve.toml's
//! `[smtp]` table ([`config`]); failed sign-ins are slowed and locked out ([`lockout`]).

pub mod backend;
pub mod config;
pub mod credentials;
pub mod data;
pub mod dsn;
pub mod envelope;
pub mod group_commit;
pub mod home_backend;
pub mod intake;
pub mod listener;
pub mod lockout;
pub mod network;
pub mod reply;
pub mod sasl;
pub mod service;
pub mod session;
pub mod tls;

pub use backend::{AcceptError, RelayBackend};
pub use envelope::{Envelope, Identity, Recipient};
pub use reply::Reply;
pub use session::{Action, AuthAnswer, Session, SessionConfig};
