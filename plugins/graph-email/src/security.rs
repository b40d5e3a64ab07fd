//! Transport and secrecy rules: no credential or bearer token over plain `http://` to a host
//! that is not loopback, secrets that never show in `Debug` output, and URLs made safe to log.

use std::net::IpAddr;

use mailhost_plugin_api::ProviderError;
use url::{Host, Url};

pub use mailhost_plugin_api::Secret;

/// Whether `url`'s host is loopback: 127.0.0.0/8, ::1 or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Refuses a URL that would carry credentials or tokens in clear text: anything but `https://`,
/// except `http://` to loopback (the local emulator).
///
/// # Errors
/// A configuration error naming `setting` (the setting or source of the URL).
pub fn check_transport(url: &Url, setting: &str) -> Result<(), ProviderError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        scheme => Err(ProviderError::configuration(format!(
            "graph-email setting {setting} is '{}': passwords, secrets and tokens are only sent over https:// (plain http:// is allowed only to 127.0.0.1, ::1 or localhost); use the https:// address (mailhost config set graph-email {setting} https://...)",
            safe_url(url)
        ))
        .with_code(format!("insecure-{scheme}"))),
    }
}

/// The URL without query string or fragment, for logs and messages (upload URLs carry an
/// `authtoken` in their query).
pub fn safe_url(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("test URL parses")
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback(&url("http://127.0.0.1:8080/x")));
        assert!(is_loopback(&url("http://127.9.9.9/")));
        assert!(is_loopback(&url("http://[::1]:9/")));
        assert!(is_loopback(&url("http://LOCALHOST/")));
        assert!(!is_loopback(&url("http://10.0.0.1/")));
        assert!(!is_loopback(&url("http://login.microsoftonline.com/")));
        assert!(!is_loopback(&url("http://localhost.evil.com/")));
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_transport(&url("https://login.microsoftonline.com"), "Authority").is_ok());
        assert!(check_transport(&url("http://127.0.0.1:1234"), "Authority").is_ok());
        let error = check_transport(&url("http://login.example.com"), "Authority").unwrap_err();
        assert_eq!(error.kind, mailhost_plugin_api::ErrorKind::CONFIGURATION);
        assert!(error.message.contains("Authority"), "{error}");
        assert!(check_transport(&url("ftp://127.0.0.1"), "Authority").is_err());
    }

    #[test]
    fn secrets_and_queries_are_hidden() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
        assert_eq!(
            safe_url(&url("https://outlook.office.com/api/x?authtoken=abc")),
            "https://outlook.office.com/api/x"
        );
    }
}
