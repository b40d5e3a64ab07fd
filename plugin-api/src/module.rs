//! The root module every provider library exports, and the rules for growing it.
//!
//! `ProviderModule` is an abi_stable *prefix type*: the fields up to and including the one marked
//! `#[sabi(last_prefix_field)]` existed in API 1.0 and every 1.x library has them. Fields after it
//! were added in later minor versions; the host reads them through accessors that return
//! `Option`, so a library built against 1.0 loads in a 1.1 host and the host can tell that it
//! lacks them. New fields may only be appended, at the end, in a minor version. Removing,
//! reordering or retyping a field is a major version.

// abi_stable names the generated reference type with an underscore.
#![allow(non_camel_case_types)]

use abi_stable::StableAbi;
use abi_stable::library::RootModule;
use abi_stable::package_version_strings;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RString, RVec};

use crate::error::ProviderError;
use crate::host::{HostServicesBox, LogLevel};
use crate::service::{
    DiagnoseRequest, Finding, LimitSpec, MimeSendRequest, ReconcileOutcome, ReconcileRequest,
};
use crate::types::{ProviderInfo, Receipt, SendRequest, SignInRequest};

/// The functions a provider library exports. Build it with [`crate::export_provider!`] rather
/// than by hand: the macro wraps every entry point so a panic becomes an error.
#[repr(C)]
#[derive(StableAbi)]
#[allow(missing_debug_implementations)]
#[sabi(kind(Prefix(prefix_ref = ProviderModule_Ref)))]
#[sabi(missing_field(option))]
pub struct ProviderModule {
    /// Called once, right after loading: hands over the host's services and its log level.
    pub init:
        extern "C" fn(host: HostServicesBox, max_level: LogLevel) -> RResult<(), ProviderError>,

    /// The provider's self-description.
    pub describe: extern "C" fn() -> RResult<ProviderInfo, ProviderError>,

    /// Sends one email. Called from any thread, possibly from several at once.
    #[sabi(last_prefix_field)]
    pub send: extern "C" fn(request: &SendRequest) -> RResult<Receipt, ProviderError>,

    // @api-since 1.1 begin
    /// (API 1.1) Interactive sign-in for the staff member (device code, browser); returns a
    /// line to show the user on success.
    pub sign_in: extern "C" fn(request: &SignInRequest) -> RResult<RString, ProviderError>,

    /// (API 1.1) Forgets the staff member's cached sign-in; returns a line to show the user.
    pub sign_out: extern "C" fn(request: &SignInRequest) -> RResult<RString, ProviderError>,
    // @api-since 1.1 end

    // @api-since 1.2 begin
    /// (API 1.2) The sending limits the provider knows of, each naming the setting that holds
    /// its number.
    pub limits: extern "C" fn() -> RResult<RVec<LimitSpec>, ProviderError>,

    /// (API 1.2) The mailbox the service counts this email against (Exchange: the mailbox
    /// that submits it).
    pub sending_mailbox: extern "C" fn(request: &SendRequest) -> RResult<RString, ProviderError>,

    /// (API 1.2) Sends a whole RFC 5322 message to its envelope recipients. Called only for
    /// providers that declare the `mime` capability.
    pub send_mime: extern "C" fn(request: &MimeSendRequest) -> RResult<Receipt, ProviderError>,

    /// (API 1.2) Finds out whether an email whose outcome is in doubt was sent.
    pub reconcile:
        extern "C" fn(request: &ReconcileRequest) -> RResult<ReconcileOutcome, ProviderError>,

    /// (API 1.2) Checks the set-up without sending (unless asked to) for `mailhost doctor`.
    pub diagnose: extern "C" fn(request: &DiagnoseRequest) -> RResult<RVec<Finding>, ProviderError>,
    // @api-since 1.2 end
}

impl RootModule for ProviderModule_Ref {
    abi_stable::declare_root_module_statics! {ProviderModule_Ref}

    const BASE_NAME: &'static str = "mailhost_provider";
    const NAME: &'static str = "mailhost provider";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
