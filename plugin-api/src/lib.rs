#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
// abi_stable's derive and export macros expand to unsafe code.
#![allow(unsafe_code)]

pub mod error;
pub mod export;
pub mod host;
pub mod module;
pub mod secret;
pub mod service;
pub mod testing;
pub mod types;
pub mod version;

#[doc(hidden)]
pub use abi_stable;

pub use error::{ErrorKind, ProviderError};
pub use export::Provider;
pub use host::{HostServices, HostServices_TO, HostServicesBox, LogLevel};
pub use module::{ProviderModule, ProviderModule_Ref};
pub use secret::Secret;
pub use service::{
    DiagnoseRequest, Finding, FindingLevel, LimitKind, LimitSpec, MimeSendRequest,
    ReconcileOutcome, ReconcileRequest, ReconcileState,
};
pub use types::{
    Attachment, Header, Mailbox, Message, ProviderInfo, Receipt, SendRequest, Setting, SettingKind,
    SettingSpec, SignInRequest, StaffMember, capability, find_setting, is_plausible_address,
    is_valid_plugin_name,
};
pub use version::{API_VERSION, ApiVersion, Incompatibility};
