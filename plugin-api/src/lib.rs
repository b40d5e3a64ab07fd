//! # mailhost-plugin-api
//!
//! The versioned, stable-ABI interface between the `mailhost` host and the email provider
//! plugins it loads at run time. A provider is a `cdylib` that implements [`Provider`] and
//! exports it with one [`export_provider!`] line; the host loads it with abi_stable's checked
//! loader, so a library built with another compiler version still loads, and one built against
//! an incompatible API is refused with a clear message before any of its code runs.
//!
//! ```no_run
//! use mailhost_plugin_api::{
//!     export_provider, Provider, ProviderError, ProviderInfo, Receipt, SendRequest,
//!     SettingKind, SettingSpec,
//! };
//!
//! struct Hello;
//!
//! impl Provider for Hello {
//!     fn describe(&self) -> Result<ProviderInfo, ProviderError> {
//!         Ok(ProviderInfo {
//!             name: "hello".into(),
//!             display_name: "Hello".into(),
//!             version: env!("CARGO_PKG_VERSION").into(),
//!             description: "Logs each email instead of sending it".into(),
//!             settings: vec![SettingSpec::new("Greeting", SettingKind::STRING, "Text to log")
//!                 .default_value("hello")]
//!             .into(),
//!             staff_fields: Default::default(),
//!             capabilities: Default::default(),
//!         })
//!     }
//!
//!     fn send(&self, request: &SendRequest) -> Result<Receipt, ProviderError> {
//!         let greeting = request.setting("Greeting").unwrap_or("hello");
//!         log::info!("{greeting}: {}", request.message.subject);
//!         Ok(Receipt::default())
//!     }
//! }
//!
//! export_provider!(|| Hello);
//! # fn main() {}
//! ```
//!
//! ## What crosses the boundary
//! - [`ProviderModule`]: the root module (init, describe, send, and since 1.1 the optional
//!   sign-in and sign-out). It is a prefix type: see [`module`] for how it grows.
//! - [`ProviderInfo`] and [`SettingSpec`]: the provider's self-description and the settings it
//!   declares; the host validates what users configure against them.
//! - [`SendRequest`]: the [`Message`] with the system settings and the [`StaffMember`].
//! - [`Receipt`] or [`ProviderError`] (a [`ErrorKind`], the provider's code, a message, and
//!   for throttling a retry-after).
//! - [`HostServices`]: the host's logger, user messages and secret store, see [`host`].
//!
//! ## Versions
//! [`API_VERSION`] is this crate's version. A host of API `1.n` loads plugins built against any
//! `1.k` with `k <= n`; see [`version`].
//!
//! ## Rules for providers
//! - Calls arrive on any thread, possibly several at once; own any async runtime you use.
//! - Do not build with `panic = "abort"`: the export helpers catch panics and report them as
//!   errors only when the panic can unwind.
//! - Never log secrets (passwords, tokens, client secrets).

#![deny(missing_docs)]
// abi_stable's derive and export macros expand to unsafe code.
#![allow(unsafe_code)]

pub mod error;
pub mod export;
pub mod host;
pub mod module;
pub mod types;
pub mod version;

#[doc(hidden)]
pub use abi_stable;

pub use error::{ErrorKind, ProviderError};
pub use export::Provider;
pub use host::{HostServices, HostServices_TO, HostServicesBox, LogLevel};
pub use module::{ProviderModule, ProviderModule_Ref};
pub use types::{
    Attachment, Header, Mailbox, Message, ProviderInfo, Receipt, SendRequest, Setting,
    SettingKind, SettingSpec, SignInRequest, StaffMember, capability, find_setting,
    is_plausible_address,
};
pub use version::{API_VERSION, ApiVersion, Incompatibility};
