//! serve.toml's `[smtp]` table: the relay's listeners, TLS files, client networks and limits.
//! Every value is checked at start; a bad one is reported with the file and line.
//!
//! ```toml
//! [smtp]
//! listen = ["127.0.0.1:2525"]      # STARTTLS offered when tls_cert/tls_key are set
//! tls_listen = ["0.0.0.0:465"]     # implicit TLS
//! tls_cert = "/etc/mailhost/relay.pem"
//! tls_key = "/etc/mailhost/relay.key"
//! allow = ["127.0.0.0/8", "10.0.0.0/8"]
//! max_message_mb = 35
//! max_recipients = 500
//! max_connections = 100
//! max_connections_per_client = 10
//! command_timeout_seconds = 300
//! data_timeout_seconds = 600
//! hostname = "relay.contoso.com"
//! auth_failures_before_lockout = 5
//! lockout_minutes = 15
//! auth_failure_delay_ms = 1000   # the first failure's delay; it grows by this much each time
//!
//! [[smtp.trusted]]                 # a printer that cannot authenticate
//! network = "10.1.2.0/24"
//! staff = "scanner"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Deserialize;
use toml::Spanned;

use super::network;

/// Why the `[smtp]` settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum SmtpConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A value is wrong; `line` is 1-based.
    #[error("{}:{line}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line.
        line: usize,
        /// What is wrong and what to write instead.
        message: String,
    },
}

/// A staff member's trusted network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedNetwork {
    /// The network.
    pub network: IpNet,
    /// The staff member its clients send as.
    pub staff: String,
}

/// The certificate chain and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The validated `[smtp]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Plain listeners (STARTTLS offered when `tls` is set).
    pub listen: Vec<SocketAddr>,
    /// Implicit-TLS listeners.
    pub tls_listen: Vec<SocketAddr>,
    /// Certificate and key.
    pub tls: Option<TlsFiles>,
    /// Client networks allowed to connect.
    pub allow: Vec<IpNet>,
    /// Largest message, in bytes.
    pub max_message_bytes: u64,
    /// Most recipients per message.
    pub max_recipients: usize,
    /// Most connections at once.
    pub max_connections: usize,
    /// Most connections at once from one client address.
    pub max_connections_per_client: usize,
    /// How long the client may take for a command.
    pub command_timeout: Duration,
    /// How long the client may go silent while sending a message.
    pub data_timeout: Duration,
    /// The banner host name.
    pub hostname: String,
    /// Trusted networks, each for one staff member.
    pub trusted: Vec<TrustedNetwork>,
    /// Failed AUTH attempts before the address is locked out.
    pub auth_failures_before_lockout: u32,
    /// How long a lockout lasts.
    pub lockout: Duration,
    /// The first failed AUTH is answered after this; each further one a step later (5 at most).
    pub auth_failure_delay: Duration,
}

/// The defaults: loopback only, 35 MB (Exchange Online's default), 500 recipients (its
/// per-message limit), RFC 5321 §4.5.3.2's five minutes for a command.
impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            tls_listen: Vec::new(),
            tls: None,
            allow: vec![
                IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
                IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
            ],
            max_message_bytes: 35 * 1024 * 1024,
            max_recipients: 500,
            max_connections: 100,
            max_connections_per_client: 10,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            hostname: default_hostname(),
            trusted: Vec::new(),
            auth_failures_before_lockout: 5,
            lockout: Duration::from_secs(15 * 60),
            auth_failure_delay: Duration::from_secs(1),
        }
    }
}

/// The machine's host name, else `localhost`.
pub fn default_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| is_hostname(h))
        .unwrap_or_else(|| "localhost".to_string())
}

fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[derive(Debug, Deserialize)]
struct ServeFile {
    smtp: Option<SmtpSection>,
}

/// The `[smtp]` table as written (spans kept for error lines). The service's serve.toml
/// reader may embed it and call [`SmtpSection::validate`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    #[serde(default)]
    listen: Vec<Spanned<String>>,
    #[serde(default)]
    tls_listen: Vec<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    allow: Option<Vec<Spanned<String>>>,
    max_message_mb: Option<Spanned<u64>>,
    max_recipients: Option<Spanned<u64>>,
    max_connections: Option<Spanned<u64>>,
    max_connections_per_client: Option<Spanned<u64>>,
    command_timeout_seconds: Option<Spanned<u64>>,
    data_timeout_seconds: Option<Spanned<u64>>,
    hostname: Option<Spanned<String>>,
    auth_failures_before_lockout: Option<Spanned<u64>>,
    lockout_minutes: Option<Spanned<u64>>,
    auth_failure_delay_ms: Option<Spanned<u64>>,
    #[serde(default)]
    trusted: Vec<TrustedSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedSection {
    network: Spanned<String>,
    staff: Spanned<String>,
}

impl SmtpConfig {
    /// Reads the `[smtp]` table of `path` (a missing file or table gives `None`); other
    /// tables are left to their own readers.
    ///
    /// # Errors
    /// The file cannot be read, does not parse, or a value is wrong.
    pub fn load(path: &Path) -> Result<Option<Self>, SmtpConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SmtpConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::parse(path, &text)
    }

    /// Parses `text` (the contents of `path`).
    ///
    /// # Errors
    /// It does not parse or a value is wrong.
    pub fn parse(path: &Path, text: &str) -> Result<Option<Self>, SmtpConfigError> {
        let file: ServeFile = toml::from_str(text).map_err(|e| SmtpConfigError::Invalid {
            path: path.to_path_buf(),
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: format!("{} (in the [smtp] table of serve.toml)", e.message().trim()),
        })?;
        file.smtp.map(|s| s.validate(path, text)).transpose()
    }
}

impl SmtpConfig {
    /// The relay's settings for `mailhost serve`: the `[smtp]` table of `serve_toml`, with
    /// `--smtp ADDR` flags (`cli_listen`) replacing its `listen` list. `None` when neither
    /// asks for a relay.
    ///
    /// # Errors
    /// As [`SmtpConfig::load`].
    pub fn for_serve(
        serve_toml: &Path,
        cli_listen: &[SocketAddr],
    ) -> Result<Option<Self>, SmtpConfigError> {
        let file = Self::load(serve_toml)?;
        if cli_listen.is_empty() {
            return Ok(file);
        }
        let mut config = file.unwrap_or_default();
        config.listen = cli_listen.to_vec();
        Ok(Some(config))
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    crate::config::files::line_of(text, offset)
}

impl SmtpSection {
    /// Checks every value; `text` is the file's contents, for line numbers.
    ///
    /// # Errors
    /// The first wrong value, with its line.
    pub fn validate(&self, path: &Path, text: &str) -> Result<SmtpConfig, SmtpConfigError> {
        let at = |span: std::ops::Range<usize>, message: String| SmtpConfigError::Invalid {
            path: path.to_path_buf(),
            line: line_of(text, span.start),
            message,
        };
        let addresses = |key: &str, list: &[Spanned<String>]| {
            list.iter()
                .map(|a| {
                    a.get_ref().trim().parse::<SocketAddr>().map_err(|_| {
                        at(
                            a.span(),
                            format!(
                                "smtp.{key}: '{}' is not an address and port; write it as \"127.0.0.1:2525\" or \"[::1]:2525\"",
                                a.get_ref()
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let number = |key: &str, value: &Option<Spanned<u64>>, min: u64, max: u64| match value {
            None => Ok(None),
            Some(v) if (min..=max).contains(v.get_ref()) => Ok(Some(*v.get_ref())),
            Some(v) => Err(at(
                v.span(),
                format!(
                    "smtp.{key} = {} is out of range: use {min} to {max}",
                    v.get_ref()
                ),
            )),
        };
        let mut config = SmtpConfig {
            listen: addresses("listen", &self.listen)?,
            tls_listen: addresses("tls_listen", &self.tls_listen)?,
            ..SmtpConfig::default()
        };
        config.tls = match (&self.tls_cert, &self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                // Relative paths are relative to the folder of serve.toml (the home).
                let base = path.parent().unwrap_or(Path::new("."));
                Some(TlsFiles {
                    cert: base.join(cert.get_ref()),
                    key: base.join(key.get_ref()),
                })
            }
            (Some(only), None) | (None, Some(only)) => {
                return Err(at(
                    only.span(),
                    "smtp: tls_cert and tls_key go together: set both (PEM certificate chain and PEM private key) or neither".into(),
                ));
            }
        };
        if config.tls.is_none()
            && let Some(first) = self.tls_listen.first()
        {
            return Err(at(
                first.span(),
                "smtp.tls_listen needs a certificate: set tls_cert and tls_key".into(),
            ));
        }
        if let Some(allow) = &self.allow {
            config.allow = allow
                .iter()
                .map(|n| {
                    network::parse(n.get_ref())
                        .map_err(|m| at(n.span(), format!("smtp.allow: {m}")))
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(mb) = number("max_message_mb", &self.max_message_mb, 1, 150)? {
            config.max_message_bytes = mb * 1024 * 1024;
        }
        if let Some(n) = number("max_recipients", &self.max_recipients, 1, 10_000)? {
            config.max_recipients = n as usize;
        }
        if let Some(n) = number("max_connections", &self.max_connections, 1, 100_000)? {
            config.max_connections = n as usize;
        }
        if let Some(n) = number(
            "max_connections_per_client",
            &self.max_connections_per_client,
            1,
            100_000,
        )? {
            config.max_connections_per_client = n as usize;
        }
        if let Some(s) = number(
            "command_timeout_seconds",
            &self.command_timeout_seconds,
            1,
            3600,
        )? {
            config.command_timeout = Duration::from_secs(s);
        }
        if let Some(s) = number("data_timeout_seconds", &self.data_timeout_seconds, 1, 3600)? {
            config.data_timeout = Duration::from_secs(s);
        }
        if let Some(n) = number(
            "auth_failures_before_lockout",
            &self.auth_failures_before_lockout,
            1,
            1000,
        )? {
            config.auth_failures_before_lockout = n as u32;
        }
        if let Some(m) = number("lockout_minutes", &self.lockout_minutes, 1, 10_080)? {
            config.lockout = Duration::from_secs(m * 60);
        }
        if let Some(ms) = number(
            "auth_failure_delay_ms",
            &self.auth_failure_delay_ms,
            0,
            10_000,
        )? {
            config.auth_failure_delay = Duration::from_millis(ms);
        }
        if let Some(h) = &self.hostname {
            if !is_hostname(h.get_ref()) {
                return Err(at(
                    h.span(),
                    format!(
                        "smtp.hostname '{}' is not a host name: letters, digits, '-' and dots, such as \"relay.contoso.com\"",
                        h.get_ref()
                    ),
                ));
            }
            config.hostname = h.get_ref().clone();
        }
        for t in &self.trusted {
            let network = network::parse(t.network.get_ref())
                .map_err(|m| at(t.network.span(), format!("smtp.trusted.network: {m}")))?;
            if crate::config::staff::validate_id(t.staff.get_ref()).is_err() {
                return Err(at(
                    t.staff.span(),
                    format!(
                        "smtp.trusted.staff '{}' is not a staff ID",
                        t.staff.get_ref()
                    ),
                ));
            }
            config.trusted.push(TrustedNetwork {
                network,
                staff: t.staff.get_ref().clone(),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<SmtpConfig>, SmtpConfigError> {
        SmtpConfig::parse(Path::new("/h/serve.toml"), text)
    }

    #[test]
    fn the_design_example_parses() {
        let c = parse(
            r#"
[smtp]
listen = ["127.0.0.1:2525"]
tls_listen = ["0.0.0.0:465"]
tls_cert = "/etc/mailhost/relay.pem"
tls_key = "/etc/mailhost/relay.key"
allow = ["127.0.0.0/8", "10.0.0.0/8"]
max_message_mb = 35
max_recipients = 100
command_timeout_seconds = 120
hostname = "relay.contoso.com"

[[smtp.trusted]]
network = "10.1.2.0/24"
staff = "scanner"

[http]
listen = "127.0.0.1:8025"
"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.listen, ["127.0.0.1:2525".parse().unwrap()]);
        assert_eq!(c.tls_listen, ["0.0.0.0:465".parse().unwrap()]);
        assert_eq!(c.allow.len(), 2);
        assert_eq!(c.max_message_bytes, 35 * 1024 * 1024);
        assert_eq!(c.max_recipients, 100);
        assert_eq!(c.command_timeout, Duration::from_secs(120));
        assert_eq!(c.data_timeout, Duration::from_secs(600));
        assert_eq!(c.hostname, "relay.contoso.com");
        assert_eq!(c.trusted[0].staff, "scanner");
        assert!(parse("[http]\nlisten = \"x\"\n").unwrap().is_none());
    }

    #[test]
    fn command_line_listeners_replace_the_file_s() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        let cli = ["127.0.0.1:0".parse().unwrap()];
        assert_eq!(SmtpConfig::for_serve(&path, &[]).unwrap(), None);
        let c = SmtpConfig::for_serve(&path, &cli).unwrap().unwrap();
        assert_eq!(c.listen, cli);
        std::fs::write(
            &path,
            "[smtp]\nlisten = [\"127.0.0.1:2525\"]\ntls_cert = \"relay.pem\"\ntls_key = \"relay.key\"\nmax_recipients = 7\n",
        )
        .unwrap();
        let c = SmtpConfig::for_serve(&path, &cli).unwrap().unwrap();
        assert_eq!((c.listen.as_slice(), c.max_recipients), (&cli[..], 7));
        assert_eq!(c.tls.unwrap().cert, dir.path().join("relay.pem"));
        let c = SmtpConfig::for_serve(&path, &[]).unwrap().unwrap();
        assert_eq!(c.listen, ["127.0.0.1:2525".parse().unwrap()]);
    }

    #[test]
    fn defaults_are_loopback_only() {
        let c = parse("[smtp]\nlisten = [\"127.0.0.1:0\"]\n")
            .unwrap()
            .unwrap();
        assert!(network::contains(&c.allow, "127.0.0.1".parse().unwrap()));
        assert!(network::contains(&c.allow, "::1".parse().unwrap()));
        assert!(!network::contains(&c.allow, "10.0.0.1".parse().unwrap()));
        assert_eq!(c.command_timeout, Duration::from_secs(300));
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let cases = [
            (
                "[smtp]\n\nlisten = [\"localhost\"]\n",
                3,
                "address and port",
            ),
            ("[smtp]\nallow = [\"10.0.0.0/40\"]\n", 2, "CIDR"),
            (
                "[smtp]\nlisten = []\ntls_listen = [\"0.0.0.0:465\"]\n",
                3,
                "tls_cert",
            ),
            ("[smtp]\ntls_cert = \"a.pem\"\n", 2, "go together"),
            ("[smtp]\nmax_message_mb = 0\n", 2, "out of range"),
            ("[smtp]\nhostname = \"a b\"\n", 2, "not a host name"),
            ("[smtp]\nlisen = []\n", 2, "lisen"),
            (
                "[smtp]\n[[smtp.trusted]]\nnetwork = \"x\"\nstaff = \"s\"\n",
                3,
                "CIDR",
            ),
        ];
        for (text, line, needle) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("/h/serve.toml:{line}:")),
                "{text}: {e}"
            );
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
