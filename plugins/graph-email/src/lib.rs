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
pub mod diagnose;
pub mod graph;
pub mod http;
pub mod mime;
pub mod security;
pub mod settings;

use std::sync::OnceLock;
use std::time::Duration;

use mailhost_plugin_api::{
    DiagnoseRequest, Finding, LimitKind, LimitSpec, MimeSendRequest, Provider, ProviderError,
    ProviderInfo, Receipt, ReconcileOutcome, ReconcileRequest, SendRequest, SignInRequest,
    capability, export_provider,
};

use crate::auth::browser::BrowserIo;
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

    /// `sign_in` with the given browser and input: the host's settings `SignInMode`
    /// (`device-code`, the default, or `browser`) and `SignInNoOpen` (`true`: print the address
    /// instead of opening a browser) choose the flow.
    ///
    /// # Errors
    /// The sign-in failed; the error says what to change.
    pub fn sign_in_with(
        &self,
        request: &SignInRequest,
        io: &BrowserIo,
    ) -> Result<String, ProviderError> {
        let settings = Settings::parse(&request.settings)?;
        settings.check_transport()?;
        let staff = Staff::from_api(&request.staff);
        let ctx = Context {
            http: &self.http,
            settings: &settings,
            staff: &staff,
        };
        let mode = request
            .setting(auth::browser::SIGN_IN_MODE)
            .map(|m| m.trim().to_ascii_lowercase());
        match mode.as_deref() {
            None | Some("device-code") => self.block_on(self.auth.sign_in(&ctx))?,
            Some("browser") => {
                let no_open = request
                    .setting(auth::browser::SIGN_IN_NO_OPEN)
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                self.block_on(self.auth.sign_in_browser(&ctx, no_open, io))?
            }
            Some(other) => Err(ProviderError::configuration(format!(
                "unknown sign-in mode '{other}' (setting {}): use device-code or browser",
                auth::browser::SIGN_IN_MODE
            ))),
        }
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
                capability::RECONCILE,
                capability::MIME,
            ]
            .into_iter()
            .map(Into::into)
            .collect(),
        }
    }
}

impl GraphProvider {
    /// The Graph calls of `ctx`'s staff member for `message`, with the concurrency limit of
    /// the mailbox the message is sent from, and where it goes.
    fn graph_for<'a>(
        &'a self,
        ctx: &'a Context<'a>,
        message: &mailhost_plugin_api::Message,
    ) -> (Graph<'a>, graph::send::Route) {
        let settings = ctx.settings;
        let probe = Graph {
            ctx,
            auth: &self.auth,
            account: Account::of(ctx),
            limit: self.limits.of(
                &settings.client_id,
                &ctx.staff.email,
                settings.concurrent_requests,
            ),
        };
        let route = graph::send::route(&probe, message);
        let graph = Graph {
            limit: self.limits.of(
                &settings.client_id,
                &route.acting_mailbox,
                settings.concurrent_requests,
            ),
            ..probe
        };
        (graph, route)
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
        self.block_on(async {
            let (graph, _) = self.graph_for(&ctx, &request.message);
            graph::send::send(&graph, &request.message).await
        })?
    }

    fn send_mime(&self, request: &MimeSendRequest) -> Result<Receipt, ProviderError> {
        let settings = Settings::parse(&request.request.settings)?;
        settings.check_transport()?;
        let staff = Staff::from_api(&request.request.staff);
        let ctx = Context {
            http: &self.http,
            settings: &settings,
            staff: &staff,
        };
        // The limit applies to the mailbox the request acts in, as for `send`.
        let (graph, _) = self.graph_for(&ctx, &request.request.message);
        self.block_on(async { graph::mime_send::send_mime(&graph, request).await })?
    }

    fn sign_in(&self, request: &SignInRequest) -> Result<String, ProviderError> {
        self.sign_in_with(request, &BrowserIo::default())
    }

    fn limits(&self) -> Result<Vec<LimitSpec>, ProviderError> {
        Ok(vec![
            LimitSpec::new(LimitKind::MESSAGES, settings::MESSAGES_PER_MINUTE, 60),
            LimitSpec::new(LimitKind::RECIPIENTS, settings::RECIPIENTS_PER_DAY, 86_400),
            LimitSpec::new(
                LimitKind::RECIPIENTS_PER_MESSAGE,
                settings::RECIPIENTS_PER_MESSAGE,
                0,
            ),
            LimitSpec::new(
                LimitKind::CONCURRENT_REQUESTS,
                settings::CONCURRENT_REQUESTS,
                0,
            ),
        ])
    }

    /// The mailbox in the request URL: the From address with `AlternateFromMode=users-endpoint`
    /// (and app-only), the signed-in staff member's mailbox otherwise.
    fn sending_mailbox(&self, request: &SendRequest) -> Result<String, ProviderError> {
        let settings = Settings::parse(&request.settings)?;
        let staff = Staff::from_api(&request.staff);
        let ctx = Context {
            http: &self.http,
            settings: &settings,
            staff: &staff,
        };
        let (_, route) = self.graph_for(&ctx, &request.message);
        Ok(route.acting_mailbox.to_ascii_lowercase())
    }

    fn reconcile(&self, request: &ReconcileRequest) -> Result<ReconcileOutcome, ProviderError> {
        let settings = Settings::parse(&request.request.settings)?;
        settings.check_transport()?;
        let staff = Staff::from_api(&request.request.staff);
        let ctx = Context {
            http: &self.http,
            settings: &settings,
            staff: &staff,
        };
        let now = i64::try_from(auth::cache::now_secs()).unwrap_or(i64::MAX);
        self.block_on(async {
            let (graph, route) = self.graph_for(&ctx, &request.request.message);
            graph::sent_items::reconcile(&graph, &route, request, now).await
        })
    }

    fn diagnose(&self, request: &DiagnoseRequest) -> Result<Vec<Finding>, ProviderError> {
        self.block_on(diagnose::run(self, request))?
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
