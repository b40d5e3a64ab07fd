//! The device authorization grant (`mailhost login`): the user signs in (with MFA) in any
//! browser while the provider polls `/token`.

use std::time::{Duration, Instant};

use mailhost_plugin_api::ProviderError;

use super::endpoint::{self, DeviceCode, TokenError, TokenResponse};
use super::errors::{Flow, explain};
use crate::Context;
use crate::security::Secret;

/// RFC 8628: add this much to the interval on `slow_down`.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Runs the device code flow: shows the user the service's instructions through the host's
/// `notify`, then polls until the user signs in, declines, or the code expires.
///
/// # Errors
/// The explained failure (declined, expired, app not a public client, ...).
pub async fn acquire(ctx: &Context<'_>, scopes: &str) -> Result<TokenResponse, ProviderError> {
    let staff = &ctx.staff.id;
    let form = vec![
        ("client_id", Secret::new(ctx.settings.client_id.clone())),
        ("scope", Secret::new(scopes)),
    ];
    let response = endpoint::post(ctx, "devicecode", form)
        .await
        .map_err(|e| explain(ctx, Flow::DeviceCode, e.into()))?;
    if !response.status.is_success() {
        return Err(explain(
            ctx,
            Flow::DeviceCode,
            endpoint::oauth_error(&response),
        ));
    }
    let code: DeviceCode = serde_json::from_slice(&response.body).map_err(|e| {
        explain(
            ctx,
            Flow::DeviceCode,
            TokenError::Malformed {
                status: response.status.as_u16(),
                detail: e.to_string(),
            },
        )
    })?;
    let message = if code.message.trim().is_empty() {
        format!(
            "To sign in, use a web browser to open the page {} and enter the code {} to authenticate.",
            code.verification_uri, code.user_code
        )
    } else {
        code.message.clone()
    };
    mailhost_plugin_api::host::notify(&format!(
        "{message} (staff {staff}; Microsoft sign-in for graph-email)"
    ));
    log::debug!(
        "graph-email: device code issued for staff {staff}: user code {}, expires in {} s, interval {} s",
        code.user_code,
        code.expires_in,
        code.interval
    );

    let deadline = Instant::now() + Duration::from_secs(code.expires_in.max(1));
    let mut interval = code.interval();
    loop {
        tokio::time::sleep(interval).await;
        if Instant::now() > deadline {
            return Err(ProviderError::authentication(format!(
                "the sign-in code {} expired before staff {staff} finished signing in: run `mailhost login {staff}` again and complete the sign-in within {} minutes",
                code.user_code,
                code.expires_in / 60
            ))
            .with_code("expired_token"));
        }
        let form = vec![
            (
                "grant_type",
                Secret::new("urn:ietf:params:oauth:grant-type:device_code"),
            ),
            ("client_id", Secret::new(ctx.settings.client_id.clone())),
            ("device_code", Secret::new(code.device_code.clone())),
            ("client_info", Secret::new("1")),
        ];
        let response = endpoint::post(ctx, "token", form)
            .await
            .map_err(|e| explain(ctx, Flow::DeviceCode, e.into()))?;
        match endpoint::token_from(&response) {
            Ok(token) => return Ok(token),
            Err(TokenError::OAuth(oauth)) => match oauth.error.as_str() {
                "authorization_pending" => log::trace!("graph-email: device code sign-in pending"),
                "slow_down" => {
                    interval += SLOW_DOWN_STEP;
                    log::debug!(
                        "graph-email: asked to slow down; polling every {} s",
                        interval.as_secs()
                    );
                }
                _ => return Err(explain(ctx, Flow::DeviceCode, TokenError::OAuth(oauth))),
            },
            Err(other) => return Err(explain(ctx, Flow::DeviceCode, other)),
        }
    }
}
