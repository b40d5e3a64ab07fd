//! Sign-in failures turned into errors a user can act on: each names the setting, the staff
//! command or the admin step that fixes it, and carries the AADSTS code.

use mailhost_plugin_api::ProviderError;

use super::endpoint::{OAuthError, TokenError};
use crate::Context;
use crate::graph::errors::http_error;
use crate::settings::{CLIENT_CERTIFICATE, CLIENT_ID, CLIENT_SECRET, TENANT_ID};

/// Which grant failed.
#[derive(Debug, Copy, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Username and password (NonInteractive).
    Password,
    /// Device code (`mailhost login`).
    DeviceCode,
    /// Refresh-token redemption.
    Refresh,
    /// App-only client credentials.
    ClientCredentials,
    /// Authorization code from the browser (`mailhost login --browser`).
    Browser,
}

/// Whether a refresh failure means the refresh token can no longer be used (sign in again),
/// as opposed to a fault worth retrying later.
pub fn is_dead_refresh_token(error: &OAuthError) -> bool {
    matches!(
        error.aadsts(),
        Some(700082 | 50173 | 70043 | 70008 | 50089 | 50076 | 50079 | 53003 | 50133)
    ) || matches!(
        error.error.as_str(),
        "invalid_grant" | "interaction_required"
    )
}

/// Turns a token-request failure into a user-facing error.
pub fn explain(ctx: &Context<'_>, flow: Flow, error: TokenError) -> ProviderError {
    match error {
        TokenError::OAuth(oauth) => explain_oauth(ctx, flow, &oauth),
        TokenError::Http(http) => http_error(http, "the Microsoft sign-in endpoint", ctx),
        TokenError::Malformed { .. } => ProviderError::transient(format!(
            "{error}; check that the Authority setting ({}) is the Microsoft identity platform host",
            ctx.settings.authority_name()
        ))
        .with_code("BadTokenResponse"),
    }
}

fn explain_oauth(ctx: &Context<'_>, flow: Flow, error: &OAuthError) -> ProviderError {
    let staff = &ctx.staff.id;
    let user = ctx.staff.sign_in_name();
    let client = &ctx.settings.client_id;
    let tenant = &ctx.settings.tenant;
    let microsoft = format!(" (Microsoft said: {})", error.summary());
    let code = error.code();
    let error_out = match error.aadsts() {
        Some(50126) => ProviderError::authentication(format!(
            "Microsoft rejected the username or password of staff {staff} ({user}): set the right password with `mailhost staff set {staff} --password-stdin` (and the sign-in name with --username)"
        )),
        Some(50076 | 50079 | 50158) if flow == Flow::Password => {
            ProviderError::authentication(format!(
                "Microsoft requires multi-factor authentication for {user} (staff {staff}), which a NonInteractive username + password sign-in cannot do: set the staff field NonInteractive=false and sign in with `mailhost login {staff}`, or send app-only by setting ClientSecret (mailhost config set graph-email ClientSecret), or have an admin exclude this service account from MFA with a Conditional Access policy"
            ))
        }
        Some(50076 | 50079 | 50158) => ProviderError::authentication(format!(
            "Microsoft requires multi-factor authentication again for staff {staff}: run `mailhost login {staff}`"
        )),
        Some(53003) => ProviderError::permission(format!(
            "a Conditional Access policy blocks the sign-in of {user} (staff {staff}): an admin must allow it under Microsoft Entra admin center > Protection > Conditional Access, or use `mailhost login {staff}` from an allowed device"
        )),
        Some(7000218) => ProviderError::configuration(format!(
            "the app registration {client} is not a public client: in the Microsoft Entra admin center open App registrations > the app > Authentication and set 'Allow public client flows' to Yes (or send app-only by setting {CLIENT_SECRET})"
        )),
        Some(700025) => ProviderError::configuration(format!(
            "the app registration {client} is a public client and must not be sent a secret: unset {CLIENT_SECRET} (mailhost config unset graph-email {CLIENT_SECRET}) or register the app as confidential"
        )),
        Some(65001) => ProviderError::permission(format!(
            "the app {client} has no consent to send mail in tenant {tenant}: an admin must open Microsoft Entra admin center > App registrations > the app > API permissions, add Microsoft Graph {} Mail.Send (and Mail.ReadWrite for large attachments), then click 'Grant admin consent for <tenant>'",
            if flow == Flow::ClientCredentials {
                "application permission"
            } else {
                "delegated permissions"
            }
        )),
        Some(700016) => ProviderError::configuration(format!(
            "application {client} was not found in tenant {tenant}: check the {CLIENT_ID} and {TENANT_ID} settings against the app registration's Overview page (mailhost config set graph-email {CLIENT_ID} ...), and that the app is registered in (or consented to by) that tenant"
        )),
        Some(90002 | 900023) => ProviderError::configuration(format!(
            "tenant '{tenant}' was not found: set {TENANT_ID} to the directory (tenant) ID GUID or a verified domain such as contoso.onmicrosoft.com (mailhost config set graph-email {TENANT_ID} ...), and check that Authority ({}) is the tenant's cloud",
            ctx.settings.authority_name()
        )),
        Some(50059 | 9001023 | 50194) => ProviderError::configuration(format!(
            "tenant '{tenant}' does not identify one directory for this sign-in: set {TENANT_ID} to the directory (tenant) ID GUID or a verified domain (mailhost config set graph-email {TENANT_ID} ...)"
        )),
        Some(700082 | 50173 | 70043 | 70008 | 50089 | 50133) => {
            ProviderError::authentication(format!(
                "the saved Microsoft sign-in of staff {staff} has expired or was revoked: run `mailhost login {staff}` again"
            ))
        }
        Some(50011) => ProviderError::configuration(format!(
            "the redirect URI {} is not registered for the app {client} (AADSTS50011): in the Microsoft Entra admin center open App registrations > the app > Authentication > Add a platform > Mobile and desktop applications and add it (Microsoft ignores the port of http://localhost URIs)",
            ctx.settings.redirect_uri
        )),
        Some(54005) => ProviderError::authentication(format!(
            "the sign-in code was already used (AADSTS54005): run `mailhost login {staff} --browser` again"
        )),
        Some(501481) => ProviderError::authentication(format!(
            "Microsoft refused the PKCE verifier of the sign-in (AADSTS501481): run `mailhost login {staff} --browser` again"
        )),
        Some(700027) => ProviderError::configuration(format!(
            "Microsoft did not accept the certificate in {CLIENT_CERTIFICATE} for app {client}: its public part is not uploaded to the app registration (or was removed or has expired there), or the file's key is not the certificate's: upload the certificate (.cer/.pem without the key) under Microsoft Entra admin center > App registrations > the app > Certificates & secrets > Certificates > Upload certificate, and check that the thumbprint shown there is the one below"
        )),
        Some(700024) => ProviderError::configuration(format!(
            "Microsoft says the client assertion signed with {CLIENT_CERTIFICATE} is not within its valid time range: this computer's clock is off; set it right (for example `timedatectl set-ntp true`, or `w32tm /resync` on Windows) and try again"
        )),
        Some(700023) => ProviderError::configuration(format!(
            "Microsoft says the client assertion's audience does not match tenant '{tenant}': check that {TENANT_ID} is the tenant the app is registered in and that Authority ({}) is its cloud (mailhost config set graph-email {TENANT_ID} ...)",
            ctx.settings.authority_name()
        )),
        Some(7000215 | 7000222 | 7000216) => ProviderError::configuration(format!(
            "the {CLIENT_SECRET} of app {client} is wrong or expired: create a new one under App registrations > the app > Certificates & secrets and set it with `mailhost config set graph-email {CLIENT_SECRET} ...` (the secret's Value, not its ID)"
        )),
        Some(50034) => ProviderError::authentication(format!(
            "user {user} (staff {staff}) does not exist in tenant {tenant}: fix the sign-in name with `mailhost staff set {staff} --username ...`"
        )),
        Some(50053) => ProviderError::authentication(format!(
            "the account {user} (staff {staff}) is locked after too many failed sign-ins (or the sign-in came from a blocked IP address): wait, or ask an admin to unlock it; then check the password with `mailhost staff set {staff} --password-stdin`"
        )),
        Some(50057) => ProviderError::authentication(format!(
            "the account {user} (staff {staff}) is disabled in Microsoft Entra ID: an admin must enable it (Users > the user > Account status)"
        )),
        Some(50055 | 50144) => ProviderError::authentication(format!(
            "the password of {user} (staff {staff}) has expired: change it at https://myaccount.microsoft.com, then store it with `mailhost staff set {staff} --password-stdin`"
        )),
        Some(70011) => ProviderError::configuration(format!(
            "Microsoft refused the scopes graph-email asked for ({}): check that GraphEndpoint ({}) and Authority ({}) belong to the same cloud",
            super::delegated_scopes(ctx.settings),
            ctx.settings.graph_resource(),
            ctx.settings.authority_name()
        )),
        Some(70018 | 70019) => expired_code(staff),
        _ if matches!(
            error.error.as_str(),
            "expired_token" | "bad_verification_code"
        ) =>
        {
            expired_code(staff)
        }
        _ => match error.error.as_str() {
            "authorization_declined" | "access_denied" => ProviderError::authentication(format!(
                "the sign-in for staff {staff} was declined: run `mailhost login {staff}` again and accept"
            )),
            "temporarily_unavailable" => ProviderError::transient(format!(
                "the Microsoft sign-in service is temporarily unavailable; the email will be retried{microsoft}"
            )),
            "invalid_client" => ProviderError::configuration(format!(
                "Microsoft did not accept the client {client}: check {CLIENT_ID}{} (mailhost config set graph-email ...)",
                if flow == Flow::ClientCredentials {
                    " and ClientCertificate or ClientSecret"
                } else {
                    ""
                }
            )),
            "invalid_grant" if flow == Flow::Refresh => ProviderError::authentication(format!(
                "the saved Microsoft sign-in of staff {staff} is no longer valid: run `mailhost login {staff}` again"
            )),
            "interaction_required" => ProviderError::authentication(format!(
                "Microsoft needs staff {staff} to sign in interactively: run `mailhost login {staff}`"
            )),
            _ => ProviderError::authentication(format!(
                "signing in staff {staff} failed: check {CLIENT_ID}, {TENANT_ID} and the staff member's credentials"
            )),
        },
    };
    let message = format!("{}{microsoft}", error_out.message);
    let mut out = ProviderError::new(error_out.kind, message).with_code(code);
    out.retry_after_ms = error_out.retry_after_ms;
    out
}

fn expired_code(staff: &str) -> ProviderError {
    ProviderError::authentication(format!(
        "the sign-in code expired or was not recognised before staff {staff} finished signing in: run `mailhost login {staff}` again and complete the sign-in within the time shown"
    ))
}
