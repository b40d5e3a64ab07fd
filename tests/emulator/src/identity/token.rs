//! `POST /{tenant}/oauth2/v2.0/token`: the grants of `GRAPH.md` §1.2, answered as §1.3 / §1.4.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::graph::error::RequestIds;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::directory::{App, CONSUMERS_TENANT_ID, Directory, MailboxKind, TenantSegment};
use crate::identity::error::AadError;
use crate::identity::{assertion, jwt, scope};
use crate::seed;
use crate::state::{Inner, Shared};
use crate::time::now_unix;
use crate::tokens::{AccessToken, RefreshState, pkce_matches};

/// The device-code grant type.
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Parses a form-encoded body.
pub(crate) fn parse_form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The client credentials a request presented.
#[derive(Debug, Default)]
pub(crate) struct ClientAuth {
    pub(crate) client_id: Option<String>,
    pub(crate) secret: Option<String>,
    /// `client_assertion` (a certificate-signed JWT).
    pub(crate) assertion: Option<String>,
    /// `client_assertion_type`.
    pub(crate) assertion_type: Option<String>,
    /// The `aud` values a client assertion may carry for this request's URL.
    pub(crate) audiences: Vec<String>,
}

/// Reads `client_id` / `client_secret` / `client_assertion` from the form or HTTP Basic auth;
/// `base_url` and `tenant` (the URL's segment) give the token endpoint an assertion names.
pub(crate) fn client_auth(
    form: &HashMap<String, String>,
    headers: &HeaderMap,
    base_url: &str,
    tenant: &str,
) -> ClientAuth {
    let mut aliases = vec![tenant.to_string()];
    let lower = tenant.to_ascii_lowercase();
    if lower == seed::TENANT_ID || lower == seed::TENANT_DOMAIN {
        aliases = vec![seed::TENANT_ID.to_string(), seed::TENANT_DOMAIN.to_string()];
    }
    let audiences = aliases
        .iter()
        .flat_map(|alias| {
            [
                format!("{base_url}/{alias}/oauth2/v2.0/token"),
                format!("{base_url}/{alias}/oauth2/token"),
            ]
        })
        .collect();
    let mut auth = ClientAuth {
        client_id: form.get("client_id").filter(|s| !s.is_empty()).cloned(),
        secret: form.get("client_secret").cloned(),
        assertion: form.get("client_assertion").cloned(),
        assertion_type: form.get("client_assertion_type").cloned(),
        audiences,
    };
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b64| STANDARD.decode(b64.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    if let Some((id, secret)) = basic.as_deref().and_then(|s| s.split_once(':')) {
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        if auth.client_id.is_none() {
            auth.client_id = Some(decode(id));
        }
        auth.secret = Some(decode(secret));
    }
    auth
}

/// Authenticates the client for a grant: a public client presents nothing; a confidential one
/// its secret or a client assertion signed with a registered certificate.
pub(crate) fn check_client(
    inner: &mut Inner,
    app: &App,
    auth: &ClientAuth,
) -> Result<(), AadError> {
    if !app.confidential {
        if auth.secret.is_some() || auth.assertion.is_some() {
            return Err(AadError::public_client_sent_secret());
        }
        if !app.public_client {
            return Err(AadError::public_client_flows_disabled());
        }
        return Ok(());
    }
    if let Some(assertion) = &auth.assertion {
        let expected = assertion::Expected {
            client_id: app.client_id,
            audiences: auth.audiences.clone(),
            now: i64::try_from(now_unix()).unwrap_or(i64::MAX),
            reject_replay: inner.config.reject_replayed_assertions,
        };
        return assertion::verify(
            assertion,
            auth.assertion_type.as_deref(),
            &app.certificates,
            &expected,
            &mut inner.tokens.used_assertions,
        );
    }
    match (app.secret, auth.secret.as_deref()) {
        (_, None) => Err(AadError::public_client_flows_disabled()),
        (Some(expected), Some(secret)) if secret == expected => Ok(()),
        (_, Some(_)) => Err(AadError::bad_secret(app.client_id)),
    }
}

fn require<'a>(form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, AadError> {
    form.get(name)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AadError::missing_parameter(name))
}

fn grant_name(grant: &str) -> &'static str {
    match grant {
        "password" => "password",
        DEVICE_CODE_GRANT => "device_code",
        "refresh_token" => "refresh_token",
        "authorization_code" => "authorization_code",
        "client_credentials" => "client_credentials",
        _ => "other",
    }
}

/// The token endpoint.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Extension(ids): Extension<RequestIds>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Entra echoes the client's client-request-id as the correlation id.
    let correlation = ids.client_request_id;
    let form = parse_form(&body);
    let result = {
        let mut inner = shared.lock();
        let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
        let counters = &mut inner.counters.token_requests;
        match grant_name(grant) {
            "password" => counters.password += 1,
            "device_code" => counters.device_code += 1,
            "refresh_token" => counters.refresh_token += 1,
            "authorization_code" => counters.authorization_code += 1,
            "client_credentials" => counters.client_credentials += 1,
            _ => counters.other += 1,
        }
        handle(&mut inner, &shared.base_url, &tenant, &form, &headers)
    };
    match result {
        Ok(body) => {
            let mut response = Json(body).into_response();
            let h = response.headers_mut();
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, no-cache"),
            );
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => error.into_response_with(&correlation),
    }
}

fn handle(
    inner: &mut Inner,
    base_url: &str,
    tenant: &str,
    form: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Value, AadError> {
    let segment = inner.directory.tenant(tenant);
    if segment == TenantSegment::Unknown {
        return Err(AadError::unknown_tenant(tenant));
    }
    let grant = require(form, "grant_type")?.to_string();
    match (grant.as_str(), segment) {
        ("password", TenantSegment::Common | TenantSegment::Consumers) => {
            return Err(AadError::ropc_not_on_common());
        }
        ("client_credentials", TenantSegment::Common | TenantSegment::Organizations) => {
            return Err(AadError::no_tenant_info());
        }
        _ => {}
    }
    let auth = client_auth(form, headers, base_url, tenant);
    let app = requesting_app(&inner.directory, segment, &auth)?;
    let now = now_unix();
    match grant.as_str() {
        "password" => password(inner, base_url, &app, &auth, form, now),
        DEVICE_CODE_GRANT => device_code(inner, base_url, &app, &auth, form, now),
        "refresh_token" => refresh(inner, base_url, &app, &auth, form, now),
        "authorization_code" => authorization_code(inner, base_url, &app, &auth, form, now),
        "client_credentials" => client_credentials(inner, &app, &auth, form, now),
        other => Err(AadError::unsupported_grant(other)),
    }
}

/// The app a token or device-code request names by `client_id`, as the tenant segment of its
/// URL sees it (no app is known to the consumer tenant).
pub(crate) fn requesting_app(
    directory: &Directory,
    segment: TenantSegment,
    auth: &ClientAuth,
) -> Result<App, AadError> {
    let client_id = auth
        .client_id
        .as_deref()
        .ok_or_else(|| AadError::missing_parameter("client_id"))?;
    match (segment, directory.app(client_id)) {
        (TenantSegment::Consumers, _) => {
            Err(AadError::unknown_client(client_id, CONSUMERS_TENANT_ID))
        }
        (_, Some(app)) => Ok(app.clone()),
        (_, None) => Err(AadError::unknown_client(client_id, seed::TENANT_ID)),
    }
}

fn password(
    inner: &mut Inner,
    base_url: &str,
    app: &App,
    auth: &ClientAuth,
    form: &HashMap<String, String>,
    now: u64,
) -> Result<Value, AadError> {
    check_client(inner, app, auth)?;
    let username = require(form, "username")?;
    let password = form.get("password").map(String::as_str).unwrap_or("");
    let request = scope::parse(require(form, "scope")?)?;
    let user = inner
        .directory
        .mailbox(username)
        .cloned()
        .ok_or_else(|| AadError::unknown_user(seed::TENANT_NAME))?;
    if user.kind != MailboxKind::User {
        return Err(AadError::user_disabled());
    }
    if user.password != Some(password) {
        return Err(AadError::wrong_password());
    }
    if user.mfa_required {
        return Err(AadError::mfa_required());
    }
    let granted = scope::grant_delegated(app, &request)?;
    let raw = form.get("scope").cloned().unwrap_or_default();
    Ok(issue_user_tokens(
        inner, base_url, app, user.upn, &request, &raw, granted, None, form, now, false,
    ))
}

fn device_code(
    inner: &mut Inner,
    base_url: &str,
    app: &App,
    auth: &ClientAuth,
    form: &HashMap<String, String>,
    now: u64,
) -> Result<Value, AadError> {
    check_client(inner, app, auth)?;
    // v2 name `device_code`; some v1-era clients send `code`.
    let code = form
        .get("device_code")
        .or_else(|| form.get("code"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AadError::missing_parameter("device_code"))?;
    let approved = inner.devices.poll(code, app.client_id, Instant::now())?;
    let request = scope::parse(&approved.scope)?;
    let granted = scope::grant_delegated(app, &request)?;
    Ok(issue_user_tokens(
        inner,
        base_url,
        app,
        &approved.user,
        &request,
        &approved.scope,
        granted,
        None,
        form,
        now,
        false,
    ))
}

fn refresh(
    inner: &mut Inner,
    base_url: &str,
    app: &App,
    auth: &ClientAuth,
    form: &HashMap<String, String>,
    now: u64,
) -> Result<Value, AadError> {
    check_client(inner, app, auth)?;
    let value = require(form, "refresh_token")?;
    let stored = inner
        .tokens
        .refresh
        .get(value)
        .cloned()
        .ok_or_else(AadError::malformed_grant)?;
    if !stored.client_id.eq_ignore_ascii_case(app.client_id) {
        return Err(AadError::grant_client_mismatch());
    }
    match stored.state {
        RefreshState::Active => {}
        RefreshState::Revoked { valid_from } => {
            return Err(AadError::refresh_token_revoked(
                stored.issued_at,
                valid_from,
            ));
        }
        RefreshState::Inactive => return Err(AadError::refresh_token_inactive(stored.issued_at)),
        RefreshState::NeedsMfa => return Err(AadError::mfa_required()),
    }
    let raw = form
        .get("scope")
        .filter(|s| !s.trim().is_empty())
        .cloned()
        .unwrap_or(stored.scope.clone());
    let mut request = scope::parse(&raw)?;
    // The refresh grant always returns a new refresh token (rotation).
    if !request.offline() {
        request.oidc.push("offline_access".into());
    }
    let granted = scope::grant_delegated(app, &request)?;
    Ok(issue_user_tokens(
        inner,
        base_url,
        app,
        &stored.user,
        &request,
        &raw,
        granted,
        None,
        form,
        now,
        true,
    ))
}

fn authorization_code(
    inner: &mut Inner,
    base_url: &str,
    app: &App,
    auth: &ClientAuth,
    form: &HashMap<String, String>,
    now: u64,
) -> Result<Value, AadError> {
    check_client(inner, app, auth)?;
    let code_value = require(form, "code")?;
    let redirect_uri = require(form, "redirect_uri")?;
    let code = inner
        .tokens
        .codes
        .get_mut(code_value)
        .ok_or_else(AadError::malformed_grant)?;
    if !code.client_id.eq_ignore_ascii_case(app.client_id) {
        return Err(AadError::grant_client_mismatch());
    }
    if code.redeemed {
        return Err(AadError::code_redeemed());
    }
    if now >= code.expires_at {
        return Err(AadError::code_expired());
    }
    if code.redirect_uri != redirect_uri {
        return Err(AadError::redirect_uri_mismatch(redirect_uri));
    }
    if let Some(challenge) = &code.code_challenge {
        let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
        if !pkce_matches(challenge, &code.code_challenge_method, verifier) {
            return Err(AadError::pkce_mismatch());
        }
    }
    code.redeemed = true;
    let code = code.clone();
    let raw = form
        .get("scope")
        .filter(|s| !s.trim().is_empty())
        .cloned()
        .unwrap_or(code.scope.clone());
    let request = scope::parse(&raw)?;
    let granted = scope::grant_delegated(app, &request)?;
    Ok(issue_user_tokens(
        inner,
        base_url,
        app,
        &code.user,
        &request,
        &raw,
        granted,
        code.nonce.as_deref(),
        form,
        now,
        false,
    ))
}

fn client_credentials(
    inner: &mut Inner,
    app: &App,
    auth: &ClientAuth,
    form: &HashMap<String, String>,
    now: u64,
) -> Result<Value, AadError> {
    check_client(inner, app, auth)?;
    if !app.confidential {
        return Err(AadError::public_client_flows_disabled());
    }
    scope::check_client_credentials(form.get("scope").map(String::as_str).unwrap_or(""))?;
    let lifetime = inner.config.access_token_lifetime_secs;
    let token = AccessToken {
        client_id: app.client_id.to_string(),
        user: None,
        scopes: Vec::new(),
        roles: app.application.iter().map(|r| (*r).to_string()).collect(),
        expires_at: now + lifetime,
    };
    let access_token = inner.tokens.issue_access(token, now);
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }))
}

#[allow(clippy::too_many_arguments)]
fn issue_user_tokens(
    inner: &mut Inner,
    base_url: &str,
    app: &App,
    user_upn: &str,
    request: &scope::ScopeRequest,
    raw_scope: &str,
    granted: Vec<String>,
    nonce: Option<&str>,
    form: &HashMap<String, String>,
    now: u64,
    always_refresh: bool,
) -> Value {
    let Some(user) = inner.directory.mailbox(user_upn).cloned() else {
        return json!({});
    };
    let lifetime = inner.config.access_token_lifetime_secs;
    let scope_string = scope::response_scope(&granted, request);
    let token = AccessToken {
        client_id: app.client_id.to_string(),
        user: Some(user.upn.to_ascii_lowercase()),
        scopes: granted,
        roles: Vec::new(),
        expires_at: now + lifetime,
    };
    let access_token = inner.tokens.issue_access(token, now);
    let mut body = json!({
        "token_type": "Bearer",
        "scope": scope_string,
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    });
    let Some(map) = body.as_object_mut() else {
        return body;
    };
    if request.offline() || always_refresh {
        let mut stored_scope = raw_scope.to_string();
        if !stored_scope
            .split_whitespace()
            .any(|s| s.eq_ignore_ascii_case("offline_access"))
        {
            stored_scope.push_str(" offline_access");
        }
        let refresh = inner
            .tokens
            .issue_refresh(app.client_id, user.upn, &stored_scope, now);
        map.insert("refresh_token".into(), json!(refresh));
    }
    if request.openid() {
        map.insert(
            "id_token".into(),
            json!(jwt::id_token(base_url, app.client_id, &user, nonce, now)),
        );
    }
    if form.get("client_info").is_some_and(|v| v == "1") {
        map.insert("client_info".into(), json!(jwt::client_info(&user)));
    }
    body
}
