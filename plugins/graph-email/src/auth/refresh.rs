//! Refresh-token redemption (`grant_type=refresh_token`): the silent sign-in behind every send
//! of a delegated (interactive or NonInteractive) staff member. Rotated refresh tokens replace
//! the old one in the cache.

use mailhost_plugin_api::ProviderError;

use super::endpoint::{self, TokenError, TokenResponse};
use super::errors::{Flow, explain, is_dead_refresh_token};
use crate::Context;
use crate::security::Secret;

/// Why a refresh failed.
#[derive(Debug)]
pub enum RefreshFailure {
    /// The refresh token is dead (expired, revoked, MFA or consent needed): sign in again.
    Dead(ProviderError),
    /// Anything else (network, throttling): try again later.
    Other(ProviderError),
}

/// Redeems `refresh_token` for a new access token (and usually a new refresh token).
///
/// # Errors
/// See [`RefreshFailure`].
pub async fn redeem(
    ctx: &Context<'_>,
    refresh_token: Secret,
    scopes: &str,
) -> Result<TokenResponse, RefreshFailure> {
    let form = vec![
        ("grant_type", Secret::new("refresh_token")),
        ("client_id", Secret::new(ctx.settings.client_id.clone())),
        ("refresh_token", refresh_token),
        ("scope", Secret::new(scopes)),
        ("client_info", Secret::new("1")),
    ];
    let response = endpoint::post(ctx, "token", form)
        .await
        .map_err(|e| RefreshFailure::Other(explain(ctx, Flow::Refresh, e.into())))?;
    match endpoint::token_from(&response) {
        Ok(token) => Ok(token),
        Err(TokenError::OAuth(oauth)) if is_dead_refresh_token(&oauth) => {
            log::debug!(
                "graph-email: the refresh token of staff {} is no longer valid ({})",
                ctx.staff.id,
                oauth.code()
            );
            Err(RefreshFailure::Dead(explain(
                ctx,
                Flow::Refresh,
                TokenError::OAuth(oauth),
            )))
        }
        Err(other) => Err(RefreshFailure::Other(explain(ctx, Flow::Refresh, other))),
    }
}
