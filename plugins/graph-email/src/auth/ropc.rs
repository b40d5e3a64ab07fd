//! Resource owner password credentials (`grant_type=password`) for NonInteractive staff.
//! Discouraged by Microsoft and impossible with MFA, but what unattended service accounts use.

use mailhost_plugin_api::ProviderError;

use super::endpoint::{self, TokenResponse};
use super::errors::{Flow, explain};
use crate::Context;
use crate::security::Secret;
use crate::settings::TENANT_ID;

/// Signs the staff member in with their username and password.
///
/// # Errors
/// A configuration error before any request for a multi-tenant `TenantID` or missing
/// credentials; otherwise the explained sign-in failure.
pub async fn acquire(ctx: &Context<'_>, scopes: &str) -> Result<TokenResponse, ProviderError> {
    let staff = &ctx.staff.id;
    if ctx.settings.tenant_is_multi_tenant_alias() {
        return Err(ProviderError::configuration(format!(
            "NonInteractive (username + password) sign-in does not work with {TENANT_ID} '{}': set {TENANT_ID} to the tenant's directory (tenant) ID GUID or domain, such as contoso.onmicrosoft.com (mailhost config set graph-email {TENANT_ID} ...)",
            ctx.settings.tenant
        ))
        .with_code(format!("setting:{TENANT_ID}")));
    }
    let username = ctx.staff.sign_in_name();
    if username.is_empty() {
        return Err(ProviderError::configuration(format!(
            "staff {staff} is NonInteractive but has no username or email: set it with `mailhost staff set {staff} --username USER@DOMAIN`"
        )));
    }
    let Some(password) = ctx.staff.password.clone() else {
        return Err(ProviderError::configuration(format!(
            "staff {staff} is NonInteractive but has no password stored: set it with `mailhost staff set {staff} --password-stdin`, or set NonInteractive=false and run `mailhost login {staff}`"
        )));
    };
    log::debug!("graph-email: password sign-in for staff {staff} as {username}");
    let form = vec![
        ("grant_type", Secret::new("password")),
        ("client_id", Secret::new(ctx.settings.client_id.clone())),
        ("scope", Secret::new(scopes)),
        ("username", Secret::new(username)),
        ("password", password),
        ("client_info", Secret::new("1")),
    ];
    let response = endpoint::post(ctx, "token", form)
        .await
        .map_err(|e| explain(ctx, Flow::Password, e.into()))?;
    let mut token = endpoint::token_from(&response).map_err(|e| explain(ctx, Flow::Password, e))?;
    token.account.get_or_insert_with(|| username.to_string());
    Ok(token)
}
