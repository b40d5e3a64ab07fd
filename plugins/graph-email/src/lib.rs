//! # graph-email: the Microsoft Graph provider for mailhost
//!
//! Sends email through Microsoft 365 with the Microsoft Graph REST API. Sign-in:
//!
//! * **app-only** (client credentials) when the `ClientSecret` setting is set;
//! * **NonInteractive** staff: username + password (ROPC), refresh tokens reused;
//! * everyone else: **device code** at `mailhost login <staff id>` (MFA-capable), then silent
//!   refresh-token reuse on every send.
//!
//! Tokens are cached in the host's secret store (and in memory in front of it), keyed by
//! authority, tenant, client, account and scopes; concurrent sends share one token request per
//! expiry. Mail goes out as JSON `sendMail`; attachments that would push the request past 4 MB go
//! through a draft and upload sessions, streamed from disk. 429/503/504 are retried honouring
//! `Retry-After`; nothing that may have been sent is sent again.
//!
//! The provider owns one multi-thread tokio runtime (two workers), built on first use; each call
//! from a host thread runs with `block_on` on it, sharing one pooled HTTP client.

pub mod auth;
pub mod graph;
pub mod http;
pub mod security;
pub mod settings;

use std::sync::OnceLock;
use std::time::Duration;

use mailhost_plugin_api::{
    LimitKind, LimitSpec, Provider, ProviderError, ProviderInfo, Receipt, SendRequest,
    SignInRequest, capability, export_provider,
};

use crate::auth::{Account, Auth};
use crate::graph::{Graph, MailboxLimits};
use crate::http::{Http, RetryPolicy};
use crate::settings::{Settings, Staff};

/// The registry name.
pub const NAME: &str = "graph-email";
/// The display name users pick.
pub const DISPLAY_NAME: &str = "Microsoft Graph";

/// What one call works with: the HTTP clients, the settings and the staff member.
#[derive(Debug)]
pub struct Context<'a> {
    /// The pooled HTTP clients.
    pub http: &'a Http,
    /// The system settings.
    pub settings: &'a Settings,
    /// The staff member.
    pub staff: &'a Staff,
}

impl Context<'_> {
    /// The retry policy the settings ask for.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_retries: self.settings.max_retries,
            max_wait: self.settings.max_retry_wait,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
            timeout: self.settings.request_timeout,
        }
    }
}

/// The provider.
#[derive(Debug, Default)]
pub struct GraphProvider {
    runtime: OnceLock<Result<tokio::runtime::Runtime, String>>,
    http: Http,
    auth: Auth,
    limits: MailboxLimits,
}

impl GraphProvider {
    /// A provider; its runtime and HTTP client are built on first use.
    pub fn new() -> Self {
        Self::default()
    }

    fn runtime(&self) -> Result<&tokio::runtime::Runtime, ProviderError> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("graph-email")
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| {
                ProviderError::internal(format!(
                    "graph-email could not start its async runtime: {e}"
                ))
            })
    }

    /// Runs `future` to completion on the provider's runtime from the calling (host) thread.
    fn block_on<T: Send>(
        &self,
        future: impl Future<Output = T> + Send,
    ) -> Result<T, ProviderError> {
        let runtime = self.runtime()?;
        if tokio::runtime::Handle::try_current().is_ok() {
            // Called from inside someone else's runtime (block_on would panic): use a helper thread.
            return std::thread::scope(|scope| {
                scope
                    .spawn(|| runtime.block_on(future))
                    .join()
                    .map_err(|_| ProviderError::internal("graph-email's worker thread panicked"))
            });
        }
        Ok(runtime.block_on(future))
    }

    /// Describes the provider (see [`Provider::describe`]).
    pub fn info() -> ProviderInfo {
        ProviderInfo {
            name: NAME.into(),
            display_name: DISPLAY_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Sends email through Microsoft 365 with the Microsoft Graph API (device code with MFA, username + password, or app-only sign-in)".into(),
            settings: settings::system_settings().into(),
            staff_fields: settings::staff_fields().into(),
            capabilities: [
                capability::SIGN_IN,
                capability::HTML,
                capability::ATTACHMENTS,
                capability::ALTERNATE_FROM,
                capability::CUSTOM_HEADERS,
            ]
            .into_iter()
            .map(Into::into)
            .collect(),
        }
    }
}

impl Provider for GraphProvider {
    fn describe(&self) -> Result<ProviderInfo, ProviderError> {
        Ok(Self::info())
    }

    fn send(&self, request: &SendRequest) -> Result<Receipt, ProviderError> {
        let settings = Settings::parse(&request.settings)?;
        settings.check_transport()?;
        let staff = Staff::from_api(&request.staff);
        let ctx = Context {
            http: &self.http,
            settings: &settings,
            staff: &staff,
        };
        let account = Account::of(&ctx);
        let message = &request.message;
        self.block_on(async {
            // Route first (it needs the account's mode) to find the mailbox the limit applies to.
            let probe = Graph {
                ctx: &ctx,
                auth: &self.auth,
                account: account.clone(),
                limit: self.limits.of(&settings.client_id, &staff.email),
            };
            let route = graph::send::route(&probe, message);
            let graph = Graph {
                limit: self.limits.of(&settings.client_id, &route.acting_mailbox),
                ..probe
            };
            graph::send::send(&graph, message).await
        })?
    }

    fn limits(&self) -> Result<Vec<LimitSpec>, ProviderError> {
        use crate::settings::{
            CONCURRENT_REQUESTS, MESSAGES_PER_MINUTE, RECIPIENTS_PER_DAY, RECIPIENTS_PER_MESSAGE,
        };
        Ok(vec![
            LimitSpec::new(LimitKind::MESSAGES, MESSAGES_PER_MINUTE, 60),
            LimitSpec::new(LimitKind::RECIPIENTS, RECIPIENTS_PER_DAY, 86_400),
            LimitSpec::new(LimitKind::RECIPIENTS_PER_MESSAGE, RECIPIENTS_PER_MESSAGE, 0),
            LimitSpec::new(LimitKind::CONCURRENT_REQUESTS, CONCURRENT_REQUESTS, 0),
        ])
    }

    /// Exchange counts the mailbox that submits: the one in the request URL (the From address
    /// with `AlternateFromMode=users-endpoint`, and for app-only sends), else the signed-in
    /// staff member's.
    fn sending_mailbox(&self, request: &SendRequest) -> Result<String, ProviderError> {
        let settings = Settings::parse(&request.settings)?;
        let staff = Staff::from_api(&request.staff);
        let ctx = Context {
            http: &self.http,
            settings: &settings,
            staff: &staff,
        };
        let probe = Graph {
            ctx: &ctx,
            auth: &self.auth,
            account: Account::of(&ctx),
            limit: self.limits.of(&settings.client_id, &staff.email),
        };
        Ok(graph::send::route(&probe, &request.message).acting_mailbox)
    }

    fn sign_in(&self, request: &SignInRequest) -> Result<String, ProviderError> {
        let settings = Settings::parse(&request.settings)?;
        settings.check_transport()?;
        let staff = Staff::from_api(&request.staff);
        let ctx = Context {
            http: &self.http,
            settings: &settings,
            staff: &staff,
        };
        self.block_on(self.auth.sign_in(&ctx))?
    }

    fn sign_out(&self, request: &SignInRequest) -> Result<String, ProviderError> {
        let settings = Settings::parse(&request.settings)?;
        let staff = Staff::from_api(&request.staff);
        let ctx = Context {
            http: &self.http,
            settings: &settings,
            staff: &staff,
        };
        self.auth.sign_out(&ctx)
    }
}

export_provider!(GraphProvider::new);
