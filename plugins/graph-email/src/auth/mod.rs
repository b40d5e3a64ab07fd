//! Signing in: which flow a call uses, the token cache in front of it, and `mailhost login` /
//! `logout`.
//!
//! * `ClientSecret` set: app-only client credentials for every staff member.
//! * Staff field `NonInteractive=true`: username + password (ROPC); the refresh token is reused
//!   while it lives, and ROPC runs again when it dies.
//! * Otherwise: device code at `mailhost login`, then silent refresh-token reuse on sends.

pub mod browser;
pub mod cache;
pub mod certificate;
pub mod client_credentials;
pub mod device_code;
pub mod endpoint;
pub mod errors;
pub mod refresh;
pub mod ropc;

use mailhost_plugin_api::ProviderError;

use self::cache::{CacheKey, CachedToken, TokenCache, now_secs};
use self::endpoint::TokenResponse;
use self::refresh::RefreshFailure;
use crate::Context;
use crate::security::{Secret, is_loopback};
use crate::settings::Settings;

/// The global Graph resource, which a loopback `GraphEndpoint` (the local emulator) stands in for.
const GLOBAL_GRAPH: &str = "https://graph.microsoft.com";

/// How a call signs in.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Client credentials (`ClientSecret` set).
    AppOnly,
    /// Username and password (`NonInteractive=true`).
    Password,
    /// Device code, then refresh tokens.
    Interactive,
}

/// The resource Graph scopes name: `GraphEndpoint`'s origin (`https://graph.microsoft.us` in
/// US Government clouds); a loopback endpoint is the emulator of the global service.
pub fn scope_resource(settings: &Settings) -> String {
    if is_loopback(&settings.graph) {
        GLOBAL_GRAPH.to_string()
    } else {
        settings.graph.origin().ascii_serialization()
    }
}

/// The delegated scopes: `DelegatedScopes` (default Mail.Send; Entra returns every consented
/// Graph permission, including Mail.ReadWrite for large attachments and Mail.Send.Shared) on the
/// Graph resource, plus `offline_access` for a refresh token and the OIDC scopes.
pub fn delegated_scopes(settings: &Settings) -> String {
    let resource = scope_resource(settings);
    let mut scopes: Vec<String> = settings
        .delegated_scopes
        .iter()
        .filter(|s| {
            !matches!(
                s.to_ascii_lowercase().as_str(),
                "offline_access" | "openid" | "profile"
            )
        })
        .map(|s| {
            if s.contains("://") {
                s.clone()
            } else {
                format!("{resource}/{}", s.trim_start_matches('/'))
            }
        })
        .collect();
    scopes.extend(["offline_access", "openid", "profile"].map(String::from));
    scopes.join(" ")
}

/// The app-only scope: `{resource}/.default`.
pub fn app_scope(settings: &Settings) -> String {
    format!("{}/.default", scope_resource(settings))
}

/// What a call signs in as, and where its token is cached.
#[derive(Debug, Clone)]
pub struct Account {
    /// The flow.
    pub mode: Mode,
    /// The cache key.
    pub key: CacheKey,
    /// The scopes requested.
    pub scopes: String,
}

impl Account {
    /// The account of `ctx`'s staff member under `ctx`'s settings.
    pub fn of(ctx: &Context<'_>) -> Self {
        let settings = ctx.settings;
        let mode = if settings.app_only() {
            Mode::AppOnly
        } else if ctx.staff.non_interactive {
            Mode::Password
        } else {
            Mode::Interactive
        };
        Self::with_mode(ctx, mode)
    }

    fn with_mode(ctx: &Context<'_>, mode: Mode) -> Self {
        let settings = ctx.settings;
        let (account, scopes) = match mode {
            // The app's token is the app's, whichever staff member sends.
            Mode::AppOnly => (
                match &settings.client_certificate {
                    Some(path) => format!("app:certificate:{}", path.display()),
                    None => "app".to_string(),
                },
                app_scope(settings),
            ),
            Mode::Password => (
                format!("password:{}:{}", ctx.staff.id, ctx.staff.sign_in_name()),
                delegated_scopes(settings),
            ),
            Mode::Interactive => (
                format!("interactive:{}", ctx.staff.id),
                delegated_scopes(settings),
            ),
        };
        let key = CacheKey::new(
            &settings.authority_name(),
            &settings.tenant,
            &settings.client_id,
            &account,
            &scopes,
        );
        Self { mode, key, scopes }
    }
}

/// The provider's sign-in state: the token cache.
#[derive(Debug, Default)]
pub struct Auth {
    cache: TokenCache,
}

impl Auth {
    /// An access token for `account`: from memory, the secret store, a refresh token, or the
    /// account's grant, in that order; one token request per key at a time.
    ///
    /// # Errors
    /// The sign-in failed; the error says what to change.
    pub async fn token(
        &self,
        ctx: &Context<'_>,
        account: &Account,
    ) -> Result<Secret, ProviderError> {
        Ok(self.token_entry(ctx, account).await?.access())
    }

    /// As [`Auth::token`], returning the whole cache entry (with the granted `scope`). Never
    /// prompts: an interactive staff member who has not signed in is an error.
    ///
    /// # Errors
    /// The sign-in failed; the error says what to change.
    pub async fn token_entry(
        &self,
        ctx: &Context<'_>,
        account: &Account,
    ) -> Result<CachedToken, ProviderError> {
        if let Some(entry) = self
            .cache
            .memory(&account.key)
            .filter(CachedToken::is_fresh)
        {
            return Ok(entry);
        }
        let flight = self.cache.flight(&account.key);
        let _guard = flight.lock().await;
        // Another call (or process) may have signed in while this one waited.
        let cached = self.cache.load(&account.key);
        if let Some(entry) = cached.as_ref().filter(|e| e.is_fresh()) {
            return Ok(entry.clone());
        }
        let refresh = cached.as_ref().and_then(CachedToken::refresh);
        let token = self.acquire(ctx, account, refresh).await?;
        Ok(self.store(account, token, cached.and_then(|c| c.refresh_token)))
    }

    async fn acquire(
        &self,
        ctx: &Context<'_>,
        account: &Account,
        refresh: Option<Secret>,
    ) -> Result<TokenResponse, ProviderError> {
        let staff = &ctx.staff.id;
        match account.mode {
            Mode::AppOnly => client_credentials::acquire(ctx, &account.scopes).await,
            Mode::Password => {
                if let Some(refresh) = refresh {
                    match refresh::redeem(ctx, refresh, &account.scopes).await {
                        Ok(token) => return Ok(token),
                        Err(RefreshFailure::Dead(error)) => {
                            log::info!(
                                "graph-email: staff {staff}: signing in with the password again ({})",
                                error.code
                            );
                        }
                        Err(RefreshFailure::Other(error)) => return Err(error),
                    }
                }
                ropc::acquire(ctx, &account.scopes).await
            }
            Mode::Interactive => {
                let Some(refresh) = refresh else {
                    return Err(ProviderError::authentication(format!(
                        "staff {staff} has not signed in to Microsoft: run `mailhost login {staff}` (or set the staff field NonInteractive=true with a username and password, or send app-only by setting ClientSecret)"
                    ))
                    .with_code("NotSignedIn"));
                };
                refresh::redeem(ctx, refresh, &account.scopes)
                    .await
                    .map_err(|failure| match failure {
                        RefreshFailure::Dead(error) | RefreshFailure::Other(error) => error,
                    })
            }
        }
    }

    /// Caches a new token; a refresh token not rotated by the service is kept.
    fn store(
        &self,
        account: &Account,
        token: TokenResponse,
        old_refresh: Option<String>,
    ) -> CachedToken {
        let now = now_secs();
        let entry = CachedToken {
            access_token: token.access_token.expose().to_string(),
            expires_at: now + token.expires_in,
            obtained_at: now,
            refresh_token: token.refresh_token.map(|t| t.expose().to_string()).or(
                if account.mode == Mode::AppOnly {
                    None
                } else {
                    old_refresh
                },
            ),
            account: token.account,
            scope: token.scope,
        };
        if let Err(error) = self.cache.save(&account.key, &entry) {
            log::warn!(
                "graph-email: could not save the token cache in the host's secret store ({error}); the sign-in is kept for this process only"
            );
        }
        entry
    }

    /// Forgets an access token Graph rejected (401), keeping the refresh token.
    pub fn reject(&self, account: &Account, token: &Secret) {
        self.cache.reject_access_token(&account.key, token);
    }

    /// `mailhost login`: signs the staff member in and caches the result.
    ///
    /// # Errors
    /// The sign-in failed or could not be saved.
    pub async fn sign_in(&self, ctx: &Context<'_>) -> Result<String, ProviderError> {
        self.sign_in_as(ctx, None).await
    }

    /// `mailhost login --browser`: the authorization-code sign-in (PKCE) of an interactive
    /// staff member; the refresh token is cached like the device-code one.
    ///
    /// # Errors
    /// The sign-in failed or could not be saved.
    pub async fn sign_in_browser(
        &self,
        ctx: &Context<'_>,
        no_open: bool,
        io: &browser::BrowserIo,
    ) -> Result<String, ProviderError> {
        self.sign_in_as(ctx, Some((no_open, io))).await
    }

    async fn sign_in_as(
        &self,
        ctx: &Context<'_>,
        browser: Option<(bool, &browser::BrowserIo)>,
    ) -> Result<String, ProviderError> {
        let account = Account::of(ctx);
        if browser.is_some() && account.mode == Mode::Password {
            return Err(ProviderError::configuration(format!(
                "staff {} signs in with username and password (NonInteractive=true); browser sign-in is for interactive staff: `mailhost staff set {} --field NonInteractive=false`, then `mailhost login {} --browser`",
                ctx.staff.id, ctx.staff.id, ctx.staff.id
            )));
        }
        let staff = &ctx.staff.id;
        let flight = self.cache.flight(&account.key);
        let _guard = flight.lock().await;
        let token = match account.mode {
            Mode::AppOnly => client_credentials::acquire(ctx, &account.scopes).await?,
            Mode::Password => ropc::acquire(ctx, &account.scopes).await?,
            Mode::Interactive => match browser {
                Some((no_open, io)) => browser::acquire(ctx, &account.scopes, no_open, io).await?,
                None => device_code::acquire(ctx, &account.scopes).await?,
            },
        };
        let who = token.account.clone();
        let now = now_secs();
        let entry = CachedToken {
            access_token: token.access_token.expose().to_string(),
            expires_at: now + token.expires_in,
            obtained_at: now,
            refresh_token: token.refresh_token.map(|t| t.expose().to_string()),
            account: token.account,
            scope: token.scope,
        };
        self.cache.save(&account.key, &entry).map_err(|error| {
            ProviderError::internal(format!(
                "signed in, but the sign-in could not be saved in mailhost's secret store: {error}"
            ))
        })?;
        Ok(match account.mode {
            Mode::AppOnly => format!(
                "{} is set, so graph-email sends app-only for every staff member: the app {} signed in to tenant {} (no per-user sign-in is needed)",
                if ctx.settings.client_certificate.is_some() {
                    "ClientCertificate"
                } else {
                    "ClientSecret"
                },
                ctx.settings.client_id,
                ctx.settings.tenant
            ),
            Mode::Password => format!(
                "staff {staff} signed in to Microsoft as {} with username and password",
                who.as_deref().unwrap_or(ctx.staff.sign_in_name())
            ),
            Mode::Interactive => {
                let who = who.unwrap_or_else(|| ctx.staff.sign_in_name().to_string());
                if !ctx.staff.email.is_empty() && !ctx.staff.owns(&who) {
                    log::warn!(
                        "graph-email: staff {staff} ({}) signed in as {who}; mail will be sent from {who}'s mailbox",
                        ctx.staff.email
                    );
                }
                format!(
                    "staff {staff} signed in to Microsoft as {who}; emails are now sent without asking again"
                )
            }
        })
    }

    /// `mailhost logout`: forgets the staff member's cached sign-ins.
    ///
    /// # Errors
    /// The secret store refused the delete.
    pub fn sign_out(&self, ctx: &Context<'_>) -> Result<String, ProviderError> {
        for mode in [Mode::Interactive, Mode::Password] {
            let account = Account::with_mode(ctx, mode);
            self.cache.forget(&account.key).map_err(|error| {
                ProviderError::internal(format!(
                    "the sign-in of staff {} could not be removed from mailhost's secret store: {error}",
                    ctx.staff.id
                ))
            })?;
        }
        Ok(format!(
            "forgot the Microsoft sign-in of staff {}{}",
            ctx.staff.id,
            if ctx.settings.app_only() {
                " (mail is sent app-only while ClientSecret or ClientCertificate is set)"
            } else {
                ""
            }
        ))
    }
}
