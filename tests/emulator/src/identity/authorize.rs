//! `GET|POST /{tenant}/oauth2/v2.0/authorize`: a minimal interactive sign-in for the
//! authorization-code grant (+PKCE). A sign-in approved beforehand (admin API / Rust API)
//! redirects at once; otherwise a small HTML form asks for username and password.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::directory::{App, MailboxKind, TenantSegment};
use crate::identity::scope;
use crate::identity::token::parse_form;
use crate::state::Shared;
use crate::time::now_unix;
use crate::tokens::{AUTH_CODE_LIFETIME_SECS, AuthCode};

/// Escapes text for HTML.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A sign-in error page (no redirect: the redirect URI is not trusted yet).
pub(crate) fn error_page(code: u32, message: &str) -> Response {
    let body = format!(
        "<!doctype html><title>Sign in to your account</title><h1>Sorry, but we're having trouble signing you in.</h1>\
         <p>AADSTS{code}: {}</p>",
        escape(message)
    );
    (StatusCode::BAD_REQUEST, Html(body)).into_response()
}

/// Whether `requested` matches a registered redirect URI (loopback: any port, same path).
pub(crate) fn redirect_allowed(app: &App, requested: &str) -> bool {
    if app.redirect_uris.contains(&requested) {
        return true;
    }
    let Ok(url) = url::Url::parse(requested) else {
        return false;
    };
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
    if url.scheme() != "http" || !loopback {
        return false;
    }
    app.redirect_uris.iter().any(|registered| {
        url::Url::parse(registered).is_ok_and(|r| {
            r.scheme() == "http" && r.host_str() == url.host_str() && r.path() == url.path()
        }) || (registered.starts_with("http://localhost")
            && url.host_str() == Some("127.0.0.1")
            && { url::Url::parse(registered).is_ok_and(|r| r.path() == url.path()) })
    })
}

fn redirect_with(redirect_uri: &str, mode: &str, params: &[(&str, String)]) -> Response {
    if mode == "form_post" {
        let inputs: String = params
            .iter()
            .map(|(k, v)| {
                format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    escape(k),
                    escape(v)
                )
            })
            .collect();
        let body = format!(
            "<!doctype html><html><body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"{}\">{inputs}\
             <noscript><button>Continue</button></noscript></form></body></html>",
            escape(redirect_uri)
        );
        return Html(body).into_response();
    }
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let separator = if mode == "fragment" {
        "#"
    } else if redirect_uri.contains('?') {
        "&"
    } else {
        "?"
    };
    let location = format!("{redirect_uri}{separator}{encoded}");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn redirect_error(
    p: &HashMap<String, String>,
    mode: &str,
    error: &str,
    code: u32,
    description: &str,
) -> Response {
    let redirect_uri = p.get("redirect_uri").cloned().unwrap_or_default();
    let mut params = vec![
        ("error", error.to_string()),
        ("error_description", format!("AADSTS{code}: {description}")),
        ("error_codes", code.to_string()),
    ];
    if let Some(state) = p.get("state") {
        params.push(("state", state.clone()));
    }
    redirect_with(&redirect_uri, mode, &params)
}

/// `GET /{tenant}/oauth2/v2.0/authorize`.
pub(crate) async fn authorize_get(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes());
    authorize(&shared, &tenant, &params, None)
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the sign-in form's submission (or `form_post`
/// parameters).
pub(crate) async fn authorize_post(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut params = parse_form(query.unwrap_or_default().as_bytes());
    let form = parse_form(&body);
    let credentials = match (form.get("login"), form.get("passwd")) {
        (Some(login), Some(password)) => Some((login.clone(), password.clone())),
        _ => None,
    };
    for (k, v) in form {
        if k != "login" && k != "passwd" {
            params.insert(k, v);
        }
    }
    authorize(&shared, &tenant, &params, credentials)
}

fn authorize(
    shared: &Shared,
    tenant: &str,
    p: &HashMap<String, String>,
    credentials: Option<(String, String)>,
) -> Response {
    let mut inner = shared.lock();
    if inner.directory.tenant(tenant) == TenantSegment::Unknown {
        return error_page(90_002, &format!("Tenant '{tenant}' not found."));
    }
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    let Some(app) = inner.directory.app(&client_id).cloned() else {
        return error_page(
            700_016,
            &format!("Application with identifier '{client_id}' was not found in the directory."),
        );
    };
    let redirect_uri = p.get("redirect_uri").cloned().unwrap_or_default();
    if !redirect_allowed(&app, &redirect_uri) {
        return error_page(
            50_011,
            &format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs \
                 configured for the application '{client_id}'."
            ),
        );
    }
    let mode = p
        .get("response_mode")
        .map(String::as_str)
        .unwrap_or("query")
        .to_string();
    if p.get("response_type").map(String::as_str) != Some("code") {
        return redirect_error(
            p,
            &mode,
            "unsupported_response_type",
            700_054,
            "response_type must be 'code'.",
        );
    }
    let raw_scope = p.get("scope").cloned().unwrap_or_default();
    let request = match scope::parse(&raw_scope) {
        Ok(r) => r,
        Err(e) => return redirect_error(p, &mode, e.error, e.code, &e.message),
    };
    if let Err(e) = scope::grant_delegated(&app, &request) {
        return redirect_error(p, &mode, "consent_required", e.code, &e.message);
    }
    let method = p
        .get("code_challenge_method")
        .cloned()
        .unwrap_or_else(|| "plain".into());
    let challenge = p.get("code_challenge").filter(|c| !c.is_empty()).cloned();
    if let Some(c) = &challenge {
        if !(method.eq_ignore_ascii_case("S256") || method == "plain") {
            return redirect_error(
                p,
                &mode,
                "invalid_request",
                501_491,
                "Invalid code_challenge_method.",
            );
        }
        if method.eq_ignore_ascii_case("S256") && c.len() != 43 {
            return redirect_error(
                p,
                &mode,
                "invalid_request",
                50_147,
                "Invalid size of Code_Challenge parameter.",
            );
        }
    }
    let hint = p.get("login_hint").map(|h| h.to_ascii_lowercase());
    // Who signs in: the form's credentials, else an approval armed beforehand.
    let user = if let Some((login, password)) = credentials {
        match inner.directory.mailbox(&login) {
            Some(m) if m.kind == MailboxKind::User && m.password == Some(password.as_str()) => {
                Some(m.upn.to_string())
            }
            _ => {
                return login_form(tenant, p, Some("Your account or password is incorrect."));
            }
        }
    } else if p
        .get("prompt")
        .is_some_and(|prompt| prompt.eq_ignore_ascii_case("login"))
    {
        // prompt=login: the user must enter credentials, whatever session exists.
        None
    } else {
        let position = inner.sign_in_approvals.iter().position(|approved| {
            hint.as_deref()
                .is_none_or(|h| h.eq_ignore_ascii_case(approved))
        });
        position.map(|i| inner.sign_in_approvals.remove(i))
    };
    let Some(user) = user else {
        if p.get("prompt").map(String::as_str) == Some("none") {
            return redirect_error(
                p,
                &mode,
                "login_required",
                50_058,
                "A silent sign-in request was sent but no user is signed in.",
            );
        }
        return login_form(tenant, p, None);
    };
    let code = inner.tokens.issue_code(AuthCode {
        client_id: app.client_id.to_string(),
        user: user.to_ascii_lowercase(),
        scope: raw_scope,
        redirect_uri: redirect_uri.clone(),
        code_challenge: challenge,
        code_challenge_method: method,
        nonce: p.get("nonce").cloned(),
        expires_at: now_unix() + AUTH_CODE_LIFETIME_SECS,
        redeemed: false,
    });
    let mut params = vec![("code", code)];
    if let Some(state) = p.get("state") {
        params.push(("state", state.clone()));
    }
    params.push(("session_state", uuid::Uuid::new_v4().to_string()));
    redirect_with(&redirect_uri, &mode, &params)
}

fn login_form(tenant: &str, p: &HashMap<String, String>, error: Option<&str>) -> Response {
    let hidden: String = p
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let hint = p.get("login_hint").map(|h| escape(h)).unwrap_or_default();
    let error = error
        .map(|e| format!("<p style=\"color:#a00\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><html><head><title>Sign in to your account</title></head><body>\
         <h1>Sign in</h1><p>mailhost-emulator (stands in for login.microsoftonline.com)</p>{error}\
         <form method=\"post\" action=\"/{}/oauth2/v2.0/authorize\">{hidden}\
         <p><label>Email <input name=\"login\" value=\"{hint}\"></label></p>\
         <p><label>Password <input type=\"password\" name=\"passwd\"></label></p>\
         <p><button type=\"submit\">Sign in</button></p></form></body></html>",
        escape(tenant)
    );
    Html(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;
    use crate::seed;

    #[test]
    fn redirect_uri_matching() {
        let dir = Directory::seed();
        let app = dir.app(seed::MAILHOST_CLIENT_ID).unwrap();
        assert!(redirect_allowed(app, seed::NATIVE_CLIENT_REDIRECT_URI));
        assert!(redirect_allowed(app, "http://localhost:53123"));
        assert!(redirect_allowed(app, "http://localhost:53123/"));
        assert!(redirect_allowed(app, "http://127.0.0.1:4000/"));
        assert!(!redirect_allowed(app, "http://localhost:53123/callback"));
        assert!(!redirect_allowed(app, "https://evil.example/"));
    }
}
