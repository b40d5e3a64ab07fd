//! App-only sign-in (`grant_type=client_credentials`, `scope={GraphEndpoint}/.default`) with a
//! certificate (a client assertion signed per request) or a client secret; the certificate wins
//! when both are set. No refresh token, so the token is simply requested again when it expires.

use mailhost_plugin_api::ProviderError;

use super::certificate::ClientCertificate;
use super::endpoint::{self, TokenError, TokenResponse};
use super::errors::{Flow, explain};
use crate::Context;
use crate::security::Secret;
use crate::settings::{CLIENT_CERTIFICATE, CLIENT_SECRET, TENANT_ID};

/// The client assertion type of RFC 7523.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Loads the `ClientCertificate` of `ctx`'s settings, if set, checking it locally.
///
/// # Errors
/// The configuration error naming what is wrong with the file and how to fix it.
pub fn load_certificate(ctx: &Context<'_>) -> Result<Option<ClientCertificate>, ProviderError> {
    let Some(path) = &ctx.settings.client_certificate else {
        return Ok(None);
    };
    ClientCertificate::load(path, ctx.settings.client_certificate_password.as_ref())
        .map(Some)
        .map_err(|e| e.to_provider_error())
}

/// Requests an app-only token.
///
/// # Errors
/// A configuration error before any request for a multi-tenant `TenantID` or a certificate that
/// cannot be used; otherwise the explained sign-in failure.
pub async fn acquire(ctx: &Context<'_>, scope: &str) -> Result<TokenResponse, ProviderError> {
    if ctx.settings.tenant_is_multi_tenant_alias()
        || ctx.settings.tenant.eq_ignore_ascii_case("organizations")
    {
        return Err(ProviderError::configuration(format!(
            "app-only sign-in ({CLIENT_CERTIFICATE} or {CLIENT_SECRET} set) needs {TENANT_ID} to be the tenant's directory (tenant) ID GUID or domain, not '{}' (mailhost config set graph-email {TENANT_ID} ...)",
            ctx.settings.tenant
        ))
        .with_code(format!("setting:{TENANT_ID}")));
    }
    let mut form = vec![
        ("grant_type", Secret::new("client_credentials")),
        ("client_id", Secret::new(ctx.settings.client_id.clone())),
        ("scope", Secret::new(scope)),
    ];
    let certificate = load_certificate(ctx)?;
    if let Some(certificate) = &certificate {
        let now = i64::try_from(super::cache::now_secs()).unwrap_or(i64::MAX);
        if certificate.not_after < now {
            return Err(ProviderError::configuration(format!(
                "graph-email setting {CLIENT_CERTIFICATE}: the {} has expired: create a new certificate, upload its public part under App registrations > {} > Certificates & secrets > Certificates, and set {CLIENT_CERTIFICATE} to it",
                certificate.describe(),
                ctx.settings.client_id
            ))
            .with_code("CertificateExpired"));
        }
        let audience = ctx.settings.authority_endpoint("token");
        let assertion = certificate.assertion(
            ctx.settings.assertion_algorithm,
            audience.as_str(),
            &ctx.settings.client_id,
            now,
        )?;
        log::debug!(
            "graph-email: app-only sign-in for client {} with {} ({})",
            ctx.settings.client_id,
            certificate.describe(),
            ctx.settings.assertion_algorithm.as_str()
        );
        form.push(("client_assertion_type", Secret::new(JWT_BEARER)));
        form.push(("client_assertion", Secret::new(assertion)));
    } else if let Some(secret) = ctx.settings.client_secret.clone() {
        log::debug!(
            "graph-email: app-only sign-in for client {} with a client secret",
            ctx.settings.client_id
        );
        form.push(("client_secret", secret));
    } else {
        return Err(ProviderError::configuration(format!(
            "app-only sign-in needs the {CLIENT_CERTIFICATE} or {CLIENT_SECRET} setting (mailhost config set graph-email {CLIENT_CERTIFICATE} /path/to/app.pem)"
        )));
    }
    let with_certificate = |error: ProviderError| match &certificate {
        Some(certificate) => {
            let mut out = ProviderError::new(
                error.kind,
                format!("{} [{}]", error.message, certificate.describe()),
            )
            .with_code(error.code.to_string());
            out.retry_after_ms = error.retry_after_ms;
            out
        }
        None => error,
    };
    let response = endpoint::post(ctx, "token", form)
        .await
        .map_err(|e| with_certificate(explain(ctx, Flow::ClientCredentials, e.into())))?;
    endpoint::token_from(&response)
        .map_err(|e: TokenError| with_certificate(explain(ctx, Flow::ClientCredentials, e)))
}
