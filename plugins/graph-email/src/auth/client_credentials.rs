//! App-only sign-in with a client secret (`grant_type=client_credentials`,
//! `scope={GraphEndpoint}/.default`); no refresh token, so the token is simply requested again
//! when it expires.

use mailhost_plugin_api::ProviderError;

use super::endpoint::{self, TokenResponse};
use super::errors::{Flow, explain};
use crate::Context;
use crate::security::Secret;
use crate::settings::{CLIENT_SECRET, TENANT_ID};

/// Requests an app-only token.
///
/// # Errors
/// A configuration error before any request for a multi-tenant `TenantID`; otherwise the
/// explained sign-in failure.
pub async fn acquire(ctx: &Context<'_>, scope: &str) -> Result<TokenResponse, ProviderError> {
    let Some(secret) = ctx.settings.client_secret.clone() else {
        return Err(ProviderError::configuration(format!(
            "app-only sign-in needs the {CLIENT_SECRET} setting (mailhost config set graph-email {CLIENT_SECRET} ...)"
        )));
    };
    if ctx.settings.tenant_is_multi_tenant_alias()
        || ctx.settings.tenant.eq_ignore_ascii_case("organizations")
    {
        return Err(ProviderError::configuration(format!(
            "app-only sign-in (ClientSecret set) needs {TENANT_ID} to be the tenant's directory (tenant) ID GUID or domain, not '{}' (mailhost config set graph-email {TENANT_ID} ...)",
            ctx.settings.tenant
        ))
        .with_code(format!("setting:{TENANT_ID}")));
    }
    log::debug!(
        "graph-email: app-only sign-in for client {}",
        ctx.settings.client_id
    );
    let form = vec![
        ("grant_type", Secret::new("client_credentials")),
        ("client_id", Secret::new(ctx.settings.client_id.clone())),
        ("client_secret", secret),
        ("scope", Secret::new(scope)),
    ];
    let response = endpoint::post(ctx, "token", form)
        .await
        .map_err(|e| explain(ctx, Flow::ClientCredentials, e.into()))?;
    endpoint::token_from(&response).map_err(|e| explain(ctx, Flow::ClientCredentials, e))
}
