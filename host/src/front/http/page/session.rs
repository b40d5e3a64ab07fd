//! Signing in to the page: the API token is kept in an `HttpOnly; SameSite=Strict` cookie, so
//! no script can read it and no other site's page can send it. A form that changes something
//! (retry, sign out) carries a CSRF token derived from the session's token, and a POST whose
//! `Origin` or `Sec-Fetch-Site` says it came from another site is refused before anything else.

use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "mailhost_session";

/// The API token presented in the session cookie, if any (only token-shaped values).
pub fn presented(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| token_shaped(value))
}

/// Whether `value` can be an API token (and so is safe in a cookie).
pub fn token_shaped(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 200
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The request came over TLS: the session cookie is then marked `Secure`, so the browser never
/// sends it over plain http to the same host.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

fn attributes(secure: bool) -> &'static str {
    if secure {
        "HttpOnly; SameSite=Strict; Secure; Path=/"
    } else {
        "HttpOnly; SameSite=Strict; Path=/"
    }
}

/// The `Set-Cookie` value that signs in with `token` (`Secure` when the page is served over
/// TLS).
pub fn sign_in_cookie(token: &str, secure: bool) -> Option<HeaderValue> {
    if !token_shaped(token) {
        return None;
    }
    HeaderValue::from_str(&format!("{COOKIE}={token}; {}", attributes(secure))).ok()
}

/// The `Set-Cookie` value that signs out.
pub fn sign_out_cookie(secure: bool) -> HeaderValue {
    HeaderValue::from_str(&format!("{COOKIE}=; {}; Max-Age=0", attributes(secure)))
        .unwrap_or_else(|_| HeaderValue::from_static("mailhost_session=; Path=/; Max-Age=0"))
}

/// The CSRF token of the session signed in with `token`: a hash of it, so it is unguessable
/// without the token and needs no server-side state.
pub fn csrf_token(token: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"mailhost page csrf\0")
        .chain_update(token.as_bytes())
        .finalize();
    hex::encode(&digest[..16])
}

/// Whether `presented` is the CSRF token of the session signed in with `token`.
pub fn csrf_matches(token: &str, presented: &str) -> bool {
    bool::from(csrf_token(token).as_bytes().ct_eq(presented.as_bytes()))
}

/// Whether a POST came from this site's own pages: refused when the browser says it came from
/// another site (`Sec-Fetch-Site`) or names another origin (`Origin`). A client that sends
/// neither (not a browser) passes this check; the CSRF token still applies.
pub fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin = origin.to_str().unwrap_or_default();
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_cookie_is_read_only_when_token_shaped() {
        let h = headers(&[("cookie", "a=b; mailhost_session=mh_abc-DEF_1; c=d")]);
        assert_eq!(presented(&h).as_deref(), Some("mh_abc-DEF_1"));
        let h = headers(&[("cookie", "mailhost_session=x\"y")]);
        assert_eq!(presented(&h), None);
        assert!(sign_in_cookie("mh_x; Domain=evil", false).is_none());
        let cookie = sign_in_cookie("mh_x", false).unwrap();
        let cookie = cookie.to_str().unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(!cookie.contains("Secure"));
        let over_tls = sign_in_cookie("mh_x", true).unwrap();
        assert!(over_tls.to_str().unwrap().contains("; Secure"));
        let out = sign_out_cookie(true);
        let out = out.to_str().unwrap();
        assert!(out.starts_with("mailhost_session=;") && out.contains("Secure"));
        assert!(out.contains("Max-Age=0"));
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let t = csrf_token("mh_one");
        assert!(csrf_matches("mh_one", &t));
        assert!(!csrf_matches("mh_two", &t));
        assert!(!csrf_matches("mh_one", ""));
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let host = ("host", "127.0.0.1:8025");
        assert!(same_origin(&headers(&[host])));
        assert!(same_origin(&headers(&[
            host,
            ("origin", "http://127.0.0.1:8025"),
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "cross-site")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-site")
        ])));
    }
}
