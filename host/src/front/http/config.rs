//! The `[http]` section of `serve.toml`: where the API listens, its TLS certificate and key,
//! and the request body limit.
//!
//! ```toml
//! [http]
//! listen = "127.0.0.1:8025"          # the default; loopback
//! tls_cert = "/etc/mailhost/api.pem"  # PEM certificate chain (optional; with tls_key)
//! tls_key = "/etc/mailhost/api.key"   # PEM private key, not readable by others
//! allow_plain_http = false            # true: allow a non-loopback listen address without TLS
//! max_body_mb = 50                    # larger request bodies get 413
//! ```
//!
//! [`HttpConfig`] is the raw section (serde, with spans so errors name the line); the serve
//! command embeds it in its own file type, or reads it alone with [`load`]. [`HttpConfig::resolve`]
//! checks it and gives the [`HttpSettings`] the listener uses. Bearer tokens are secrets, so a
//! listener on a non-loopback address without TLS is refused unless `allow_plain_http` says so.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::config::files::{self, FileError};
use crate::config::home::Home;

/// The listen address when neither serve.toml nor `--http` gives one.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8025);
/// The request body limit when serve.toml gives none, in MB (base64 makes a 35 MB attachment
/// about 47 MB).
pub const DEFAULT_MAX_BODY_MB: u64 = 50;
/// The largest `max_body_mb` accepted.
const MAX_BODY_MB_CEILING: u64 = 1024;

/// The `[http]` table of serve.toml as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `ADDR:PORT` to listen on.
    #[serde(default)]
    pub listen: Option<Spanned<String>>,
    /// PEM certificate chain.
    #[serde(default)]
    pub tls_cert: Option<Spanned<PathBuf>>,
    /// PEM private key.
    #[serde(default)]
    pub tls_key: Option<Spanned<PathBuf>>,
    /// Allow plain HTTP on a non-loopback address.
    #[serde(default)]
    pub allow_plain_http: bool,
    /// The request body limit in MB.
    #[serde(default)]
    pub max_body_mb: Option<Spanned<u64>>,
}

/// The certificate and key files for TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The checked settings of the HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// TLS, when configured.
    pub tls: Option<TlsFiles>,
    /// The request body limit in bytes.
    pub max_body_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            tls: None,
            max_body_bytes: mb(DEFAULT_MAX_BODY_MB),
        }
    }
}

/// What is wrong with the `[http]` settings; each names the file and line, or the flag.
#[derive(Debug, thiserror::Error)]
pub enum HttpConfigError {
    /// serve.toml could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// serve.toml is not valid TOML, or `[http]` has an unknown key or a wrong type.
    #[error("{}:{line}: {message}; fix serve.toml (see the [http] section in README.md)", path.display())]
    Syntax {
        /// serve.toml.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// A value that parses but cannot be used.
    #[error("{at}: {message}")]
    Invalid {
        /// `FILE:LINE` or the command-line flag.
        at: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// Where a value came from, for messages: serve.toml and its text, or nowhere (a default or
/// a flag).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// serve.toml's path.
    pub path: &'a Path,
    /// Its text.
    pub text: &'a str,
}

impl Source<'_> {
    fn at<T>(&self, value: &Spanned<T>) -> String {
        format!(
            "{}:{}",
            self.path.display(),
            files::line_of(self.text, value.span().start)
        )
    }
}

impl HttpConfig {
    /// Checks the section and applies `listen_flag` (`serve --http ADDR`, which wins over
    /// serve.toml). `source` is serve.toml's path and text, for line numbers.
    ///
    /// # Errors
    /// An address that does not parse; a certificate without a key (or the reverse); a body
    /// limit out of range; a non-loopback address without TLS and without `allow_plain_http`.
    pub fn resolve(
        &self,
        source: Option<Source<'_>>,
        listen_flag: Option<&str>,
    ) -> Result<HttpSettings, HttpConfigError> {
        let listen = match (listen_flag, &self.listen) {
            (Some(flag), _) => parse_listen(flag).map_err(|message| HttpConfigError::Invalid {
                at: "--http".into(),
                message,
            })?,
            (None, Some(text)) => {
                parse_listen(text.get_ref()).map_err(|message| HttpConfigError::Invalid {
                    at: place(source, Some(text)),
                    message: format!("listen: {message}"),
                })?
            }
            (None, None) => DEFAULT_LISTEN,
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.get_ref().clone(),
                key: key.get_ref().clone(),
            }),
            (None, None) => None,
            (Some(cert), None) => {
                return Err(HttpConfigError::Invalid {
                    at: place(source, Some(cert)),
                    message: "tls_cert is set but tls_key is not: set both (the PEM certificate chain and its private key) or neither".into(),
                });
            }
            (None, Some(key)) => {
                return Err(HttpConfigError::Invalid {
                    at: place(source, Some(key)),
                    message: "tls_key is set but tls_cert is not: set both (the PEM certificate chain and its private key) or neither".into(),
                });
            }
        };
        let max_body_mb = match &self.max_body_mb {
            Some(value) if !(1..=MAX_BODY_MB_CEILING).contains(value.get_ref()) => {
                return Err(HttpConfigError::Invalid {
                    at: place(source, Some(value)),
                    message: format!(
                        "max_body_mb = {} is out of range: use 1 to {MAX_BODY_MB_CEILING}",
                        value.get_ref()
                    ),
                });
            }
            Some(value) => *value.get_ref(),
            None => DEFAULT_MAX_BODY_MB,
        };
        if tls.is_none() && !listen.ip().is_loopback() && !self.allow_plain_http {
            let at = if listen_flag.is_some() {
                "--http".to_string()
            } else {
                match &self.listen {
                    Some(text) => place(source, Some(text)),
                    None => place::<String>(source, None),
                }
            };
            return Err(HttpConfigError::Invalid {
                at,
                message: format!(
                    "the HTTP API would listen on {listen}, which is not a loopback address, without TLS, so API tokens would cross the network in clear: set tls_cert and tls_key in the [http] section of serve.toml, listen on 127.0.0.1, or set allow_plain_http = true if a TLS proxy in front of it is all that is reachable"
                ),
            });
        }
        Ok(HttpSettings {
            listen,
            tls,
            max_body_bytes: mb(max_body_mb),
        })
    }
}

/// `FILE:LINE` of `value` in serve.toml, else `FILE [http]`, else `[http]`.
fn place<T>(source: Option<Source<'_>>, value: Option<&Spanned<T>>) -> String {
    match (source, value) {
        (Some(source), Some(value)) => source.at(value),
        (Some(source), None) => format!("{} [http]", source.path.display()),
        (None, _) => "[http]".to_string(),
    }
}

fn mb(n: u64) -> usize {
    usize::try_from(n.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
}

/// Parses `ADDR:PORT` (`localhost:PORT` means 127.0.0.1).
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Some(port) = text.strip_prefix("localhost:") {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| {
                format!("'{text}' has no valid port: write ADDR:PORT, such as 127.0.0.1:8025")
            });
    }
    text.parse::<SocketAddr>().map_err(|_| {
        format!("'{text}' is not an address and port: write ADDR:PORT, such as 127.0.0.1:8025 or [::1]:8025")
    })
}

/// serve.toml with only the part this module reads.
#[derive(Debug, Default, Deserialize)]
struct ServeFile {
    #[serde(default)]
    http: HttpConfig,
}

/// Reads the `[http]` section of `HOME/serve.toml` (missing file: defaults) and resolves it
/// with `listen_flag`.
///
/// # Errors
/// The file cannot be read or parsed, or [`HttpConfig::resolve`] refuses it.
pub fn load(home: &Home, listen_flag: Option<&str>) -> Result<HttpSettings, HttpConfigError> {
    let path = home.path().join("serve.toml");
    let Some(text) = files::read_optional(&path)? else {
        return HttpConfig::default().resolve(None, listen_flag);
    };
    let file = parse(&path, &text)?;
    file.resolve(
        Some(Source {
            path: &path,
            text: &text,
        }),
        listen_flag,
    )
}

/// Parses the `[http]` section out of serve.toml's text.
///
/// # Errors
/// [`HttpConfigError::Syntax`] with the line.
pub fn parse(path: &Path, text: &str) -> Result<HttpConfig, HttpConfigError> {
    toml::from_str::<ServeFile>(text)
        .map(|f| f.http)
        .map_err(|e| HttpConfigError::Syntax {
            path: path.to_path_buf(),
            line: e.span().map_or(1, |s| files::line_of(text, s.start)),
            message: e.message().to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(text: &str, flag: Option<&str>) -> Result<HttpSettings, HttpConfigError> {
        let path = Path::new("/home/serve.toml");
        parse(path, text)?.resolve(Some(Source { path, text }), flag)
    }

    #[test]
    fn defaults_are_loopback_without_tls() {
        let settings = resolve("", None).unwrap();
        assert_eq!(settings, HttpSettings::default());
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8025");
        assert_eq!(settings.max_body_bytes, 50 * 1024 * 1024);
    }

    #[test]
    fn the_flag_wins_and_settings_are_read() {
        let text = "[smtp]\nlisten = [\"127.0.0.1:2525\"]\n[http]\nlisten = \"0.0.0.0:8443\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\nmax_body_mb = 5\n";
        let settings = resolve(text, None).unwrap();
        assert_eq!(settings.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(settings.tls.unwrap().cert, PathBuf::from("c.pem"));
        assert_eq!(settings.max_body_bytes, 5 * 1024 * 1024);
        let flagged = resolve(text, Some("127.0.0.1:0")).unwrap();
        assert_eq!(flagged.listen.to_string(), "127.0.0.1:0");
    }

    #[test]
    fn plain_http_off_loopback_is_refused_with_the_line() {
        let text = "[http]\n\nlisten = \"0.0.0.0:8025\"\n";
        let error = resolve(text, None).unwrap_err().to_string();
        assert!(error.starts_with("/home/serve.toml:3:"), "{error}");
        assert!(
            error.contains("tls_cert") && error.contains("allow_plain_http"),
            "{error}"
        );
        let error = resolve("", Some("10.1.2.3:80")).unwrap_err().to_string();
        assert!(error.starts_with("--http:"), "{error}");
        let allowed = resolve(
            "[http]\nlisten = \"0.0.0.0:8025\"\nallow_plain_http = true\n",
            None,
        );
        assert!(allowed.is_ok());
    }

    #[test]
    fn bad_values_name_their_line() {
        let error = resolve("[http]\nlisten = \"nowhere\"\n", None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(":2:") && error.contains("'nowhere'"),
            "{error}"
        );
        let error = resolve("[http]\ntls_cert = \"c.pem\"\n", None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(":2:") && error.contains("tls_key"),
            "{error}"
        );
        let error = resolve("[http]\nmax_body_mb = 0\n", None)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(":2:") && error.contains("max_body_mb"),
            "{error}"
        );
        let error = resolve("[http]\nlisten = \"127.0.0.1:1\"\nport = 3\n", None)
            .unwrap_err()
            .to_string();
        assert!(error.contains(":3:") && error.contains("port"), "{error}");
        let error = resolve("[http]\nmax_body_mb = \"big\"\n", None)
            .unwrap_err()
            .to_string();
        assert!(error.contains(":2:"), "{error}");
    }
}
