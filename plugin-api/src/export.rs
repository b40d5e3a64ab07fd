//! The plugin author's side: implement [`Provider`], then write one
//! [`export_provider!`](crate::export_provider) line.
//!
//! Every entry point the macro exports runs the provider inside `catch_unwind`: a panic becomes
//! an [`ErrorKind::INTERNAL`](crate::ErrorKind::INTERNAL) error for the host instead of
//! abi_stable's `exit(1)` or an abort.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;

use abi_stable::prefix_type::WithMetadata;
use abi_stable::std_types::{RResult, RString, RVec};

use crate::error::ProviderError;
use crate::host::{self, HostServicesBox, LogLevel};
use crate::module::{ProviderModule, ProviderModule_Ref};
// @api-since 1.2 begin
use crate::service::{
    DiagnoseRequest, Finding, LimitSpec, MimeSendRequest, ReconcileOutcome, ReconcileRequest,
};
// @api-since 1.2 end
use crate::types::{ProviderInfo, Receipt, SendRequest, SignInRequest};

/// An email provider, written as plain Rust.
///
/// Calls come from any thread and may overlap, hence `Send + Sync`. A provider that needs an
/// async runtime owns it (build it lazily, keep it in the provider).
pub trait Provider: Send + Sync + 'static {
    /// What the provider is and which settings it takes. Called once after loading.
    ///
    /// # Errors
    /// Returning an error refuses the load with that message.
    fn describe(&self) -> Result<ProviderInfo, ProviderError>;

    /// Sends one email with the settings in `request`.
    ///
    /// # Errors
    /// A structured error the host records with the email and shows the user.
    fn send(&self, request: &SendRequest) -> Result<Receipt, ProviderError>;

    /// Interactive sign-in for `request.staff`. The default says the provider has none.
    ///
    /// # Errors
    /// Sign-in failed; the message says what to change.
    fn sign_in(&self, request: &SignInRequest) -> Result<String, ProviderError> {
        let _ = request;
        Err(ProviderError::unsupported(
            "this provider has no interactive sign-in; set the staff member's username and password instead",
        ))
    }

    /// Forgets cached sign-in state for `request.staff`. The default says there is none.
    ///
    /// # Errors
    /// The cached state could not be removed.
    fn sign_out(&self, request: &SignInRequest) -> Result<String, ProviderError> {
        let _ = request;
        Err(ProviderError::unsupported(
            "this provider keeps no sign-in state to forget",
        ))
    }

    // @api-since 1.2 begin
    /// (API 1.2) The sending limits the provider knows of. Each names one of the provider's
    /// declared settings, which holds the number (`0` = no limit), so an administrator can
    /// change it with `mailhost config set`. The default declares none.
    ///
    /// # Errors
    /// The limits could not be stated.
    fn limits(&self) -> Result<Vec<LimitSpec>, ProviderError> {
        Ok(Vec::new())
    }

    /// (API 1.2) The mailbox the service counts `request` against. The default is the staff
    /// member's address.
    ///
    /// # Errors
    /// The request names no usable mailbox.
    fn sending_mailbox(&self, request: &SendRequest) -> Result<String, ProviderError> {
        Ok(request.staff.email.to_string())
    }

    /// (API 1.2) Sends the whole message in `request.mime_path` to `request.recipients`.
    /// Called only when [`ProviderInfo::capabilities`] lists
    /// [`capability::MIME`](crate::capability::MIME). The default says it is not supported.
    ///
    /// # Errors
    /// As [`Provider::send`].
    fn send_mime(&self, request: &MimeSendRequest) -> Result<Receipt, ProviderError> {
        let _ = request;
        Err(ProviderError::unsupported(
            "this provider does not send whole MIME messages; the host sends the parsed message instead",
        ))
    }

    /// (API 1.2) Whether an email whose outcome is in doubt was sent: look it up where the
    /// service keeps what it sent. The default cannot tell.
    ///
    /// # Errors
    /// The lookup itself failed (the host keeps the email `unknown`).
    fn reconcile(&self, request: &ReconcileRequest) -> Result<ReconcileOutcome, ProviderError> {
        let _ = request;
        Ok(ReconcileOutcome::unknown(
            "this provider cannot look up what it sent",
        ))
    }

    /// (API 1.2) Checks the set-up for `mailhost doctor`, without prompting anyone and
    /// without sending unless `request.send_test_to` is set. The default finds nothing.
    ///
    /// # Errors
    /// The checks could not run at all.
    fn diagnose(&self, request: &DiagnoseRequest) -> Result<Vec<Finding>, ProviderError> {
        let _ = request;
        Ok(Vec::new())
    }
    // @api-since 1.2 end
}

type Constructor = fn() -> Box<dyn Provider>;

/// The provider of this library (each cdylib has its own copy of this static).
static PROVIDER: OnceLock<Result<Box<dyn Provider>, ProviderError>> = OnceLock::new();
static CONSTRUCTOR: OnceLock<Constructor> = OnceLock::new();

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into())
}

/// Runs `f`, turning a panic into an internal error that names what panicked.
pub fn contain<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            log::error!("provider panicked in {what}: {message}");
            Err(ProviderError::internal(format!(
                "the provider panicked in {what}: {message}; report this to the provider's author"
            ))
            .with_code("panic"))
        }
    }
}

fn provider() -> Result<&'static dyn Provider, ProviderError> {
    let built = PROVIDER.get_or_init(|| {
        let constructor = CONSTRUCTOR.get().copied().ok_or_else(|| {
            ProviderError::internal("the provider module was used before it was exported")
        })?;
        contain("its constructor", || Ok(constructor()))
    });
    match built {
        Ok(provider) => Ok(provider.as_ref()),
        Err(error) => Err(error.clone()),
    }
}

extern "C" fn init_shim(
    host_services: HostServicesBox,
    max_level: LogLevel,
) -> RResult<(), ProviderError> {
    contain("init", || {
        host::install(host_services, max_level);
        provider().map(|_| ())
    })
    .into()
}

extern "C" fn describe_shim() -> RResult<ProviderInfo, ProviderError> {
    contain("describe", || provider()?.describe()).into()
}

extern "C" fn send_shim(request: &SendRequest) -> RResult<Receipt, ProviderError> {
    contain("send", || provider()?.send(request)).into()
}

extern "C" fn sign_in_shim(request: &SignInRequest) -> RResult<RString, ProviderError> {
    contain("sign_in", || {
        provider()?.sign_in(request).map(RString::from)
    })
    .into()
}

extern "C" fn sign_out_shim(request: &SignInRequest) -> RResult<RString, ProviderError> {
    contain("sign_out", || {
        provider()?.sign_out(request).map(RString::from)
    })
    .into()
}

// @api-since 1.2 begin
extern "C" fn limits_shim() -> RResult<RVec<LimitSpec>, ProviderError> {
    contain("limits", || provider()?.limits().map(RVec::from)).into()
}

extern "C" fn sending_mailbox_shim(request: &SendRequest) -> RResult<RString, ProviderError> {
    contain("sending_mailbox", || {
        provider()?.sending_mailbox(request).map(RString::from)
    })
    .into()
}

extern "C" fn send_mime_shim(request: &MimeSendRequest) -> RResult<Receipt, ProviderError> {
    contain("send_mime", || provider()?.send_mime(request)).into()
}

extern "C" fn reconcile_shim(
    request: &ReconcileRequest,
) -> RResult<ReconcileOutcome, ProviderError> {
    contain("reconcile", || provider()?.reconcile(request)).into()
}

extern "C" fn diagnose_shim(request: &DiagnoseRequest) -> RResult<RVec<Finding>, ProviderError> {
    contain("diagnose", || provider()?.diagnose(request).map(RVec::from)).into()
}
// @api-since 1.2 end

/// Builds the root module for a provider made by `constructor`. Used by
/// [`export_provider!`](crate::export_provider); call it yourself only to build a module by hand.
pub fn provider_module(constructor: Constructor) -> ProviderModule_Ref {
    let _ = CONSTRUCTOR.set(constructor);
    static MODULE: WithMetadata<ProviderModule> = WithMetadata::new(ProviderModule {
        init: init_shim,
        describe: describe_shim,
        send: send_shim,
        // @api-since 1.1 begin
        sign_in: sign_in_shim,
        sign_out: sign_out_shim,
        // @api-since 1.1 end
        // @api-since 1.2 begin
        limits: limits_shim,
        sending_mailbox: sending_mailbox_shim,
        send_mime: send_mime_shim,
        reconcile: reconcile_shim,
        diagnose: diagnose_shim,
        // @api-since 1.2 end
    });
    ProviderModule_Ref(MODULE.static_as_prefix())
}

/// Declares the library's root module for a [`Provider`].
///
/// ```ignore
/// mailhost_plugin_api::export_provider!(MyProvider::new);
/// ```
///
/// The argument is a function or closure with no arguments that returns the provider; it runs
/// once, under `catch_unwind`, when the host loads the library.
#[macro_export]
macro_rules! export_provider {
    ($constructor:expr) => {
        #[doc(hidden)]
        pub fn mailhost_provider_root_module() -> $crate::ProviderModule_Ref {
            $crate::export::provider_module(|| ::std::boxed::Box::new(($constructor)()))
        }

        // What abi_stable's `#[export_root_module]` emits, spelled with `$crate` paths so that
        // providers need no direct dependency on abi_stable. The symbol name is abi_stable
        // 0.11's root-module loader name (checked by a unit test in mailhost-plugin-api).
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi_stable::library::LibHeader = {
            extern "C" fn erased_root_module() -> $crate::abi_stable::library::RootModuleResult {
                $crate::abi_stable::library::__call_root_module_loader(mailhost_provider_root_module)
            }
            // SAFETY: the constructor returns this module type, as `from_constructor` requires.
            unsafe {
                $crate::abi_stable::library::LibHeader::from_constructor::<$crate::ProviderModule_Ref>(
                    erased_root_module,
                    $crate::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

/// The symbol [`export_provider!`](crate::export_provider) exports; must match abi_stable's.
#[doc(hidden)]
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let result: Result<(), ProviderError> = contain("send", || panic!("boom"));
        let error = result.expect_err("the panic is an error");
        assert_eq!(error.kind, crate::ErrorKind::INTERNAL);
        assert!(error.message.contains("boom"), "{error}");
        assert_eq!(error.code.as_str(), "panic");
    }

    #[test]
    fn the_exported_symbol_is_abi_stables_loader_name() {
        assert_eq!(
            ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }

    #[test]
    fn errors_pass_through() {
        let result: Result<(), ProviderError> =
            contain("send", || Err(ProviderError::recipient("bad")));
        assert_eq!(
            result.expect_err("an error").kind,
            crate::ErrorKind::RECIPIENT
        );
    }
}
