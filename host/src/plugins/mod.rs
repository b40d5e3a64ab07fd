//! Plugins: the registry of provider libraries (`plugins.toml`), opening them safely
//! ([`loader`], [`quarantine`]), the services the host lends them ([`services`]), calling a
//! loaded one ([`provider`]) and the conformance run for authors ([`check`]).

pub mod check;
pub mod isolation;
pub mod loader;
pub mod provider;
pub mod quarantine;
pub mod redaction;
pub mod registry;
pub mod services;

pub use provider::Provider;
