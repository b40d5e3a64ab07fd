//! The SMTP provider's system settings (System Configuration): what it declares to the host, and
//! the checked form a send uses.
//!
//! Everything here is validated before any connection is opened, so a configuration mistake is
//! reported as one [`SettingsError`] naming the key and the fix, never as a network failure.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use mailhost_plugin_api::{Setting, SettingKind, SettingSpec, find_setting};

/// `Host`: the SMTP server's host name or IP address (required).
pub const HOST: &str = "Host";
/// `Port`: the TCP port; blank picks the port that goes with `Security`.
pub const PORT: &str = "Port";
/// `Security`: `starttls` (default), `tls` or `none`.
pub const SECURITY: &str = "Security";
/// `Timeout`: seconds to wait for the server at each step.
pub const TIMEOUT: &str = "Timeout";
/// `HeloName`: the name sent with EHLO; blank uses this machine's host name.
pub const HELO_NAME: &str = "HeloName";
/// `MaxMessageBytes`: refuse larger messages before connecting; blank or 0 for no limit.
pub const MAX_MESSAGE_BYTES: &str = "MaxMessageBytes";

/// The default for [`TIMEOUT`], in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// The settings the provider declares to the host.
pub fn specs() -> Vec<SettingSpec> {
    vec![
        SettingSpec::new(
            HOST,
            SettingKind::STRING,
            "SMTP server host name, such as smtp.office365.com or smtp.gmail.com",
        )
        .required(),
        SettingSpec::new(
            PORT,
            SettingKind::INTEGER,
            "TCP port; blank picks the usual one for Security (587 starttls, 465 tls, 25 none)",
        ),
        SettingSpec::new(
            SECURITY,
            SettingKind::STRING,
            "starttls (upgrade to TLS, port 587), tls (TLS from the start, port 465) or none (loopback servers only)",
        )
        .default_value(Security::StartTls.name()),
        SettingSpec::new(
            TIMEOUT,
            SettingKind::INTEGER,
            "Seconds to wait for the server at each step before giving up",
        )
        .default_value(&DEFAULT_TIMEOUT_SECS.to_string()),
        SettingSpec::new(
            HELO_NAME,
            SettingKind::STRING,
            "Name this machine gives in EHLO; blank uses its host name",
        ),
        SettingSpec::new(
            MAX_MESSAGE_BYTES,
            SettingKind::INTEGER,
            "Largest message to send, in bytes after encoding; blank or 0 for no limit beyond the server's",
        ),
    ]
}

/// How the connection is protected.
#[derive(Debug, Copy, Clone, PartialEq, Eq, Hash)]
pub enum Security {
    /// Connect in plain text, then upgrade with STARTTLS (required, not opportunistic).
    StartTls,
    /// TLS from the first byte ("implicit TLS", SMTPS).
    Tls,
    /// No encryption: allowed only for a loopback server.
    None,
}

impl Security {
    /// The value users write in settings.
    pub fn name(self) -> &'static str {
        match self {
            Self::StartTls => "starttls",
            Self::Tls => "tls",
            Self::None => "none",
        }
    }

    /// The port that goes with this security when `Port` is blank.
    pub fn default_port(self) -> u16 {
        match self {
            Self::StartTls => 587,
            Self::Tls => 465,
            Self::None => 25,
        }
    }

    fn parse(value: &str) -> Result<Self, SettingsError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "starttls" => Ok(Self::StartTls),
            "tls" | "ssl" | "smtps" => Ok(Self::Tls),
            "none" | "plain" => Ok(Self::None),
            _ => Err(SettingsError::Security {
                value: value.to_string(),
            }),
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The checked settings of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// The server's host name or IP address (without brackets).
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// How the connection is protected.
    pub security: Security,
    /// How long to wait for the server at each step.
    pub timeout: Duration,
    /// The EHLO name, when set.
    pub helo_name: Option<String>,
    /// The largest message to send, when limited.
    pub max_message_bytes: Option<u64>,
}

impl SmtpSettings {
    /// Reads and checks the settings the host handed over.
    ///
    /// # Errors
    /// A setting is missing or wrong, or `Security` is `none` for a server that is not on
    /// this machine.
    pub fn from_settings(settings: &[Setting]) -> Result<Self, SettingsError> {
        let host = find_setting(settings, HOST)
            .map(str::trim)
            .ok_or(SettingsError::MissingHost)?;
        let host = parse_host(host)?;
        let security = Security::parse(find_setting(settings, SECURITY).unwrap_or_default())?;
        let port = match find_setting(settings, PORT) {
            None => security.default_port(),
            Some(value) => match value.trim().parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => {
                    return Err(SettingsError::Port {
                        value: value.to_string(),
                    });
                }
            },
        };
        let timeout = match find_setting(settings, TIMEOUT) {
            None => Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            Some(value) => match value.trim().parse::<u64>() {
                Ok(secs) if (1..=3600).contains(&secs) => Duration::from_secs(secs),
                _ => {
                    return Err(SettingsError::Timeout {
                        value: value.to_string(),
                    });
                }
            },
        };
        let helo_name = match find_setting(settings, HELO_NAME).map(str::trim) {
            None => None,
            Some(name) if is_helo_name(name) => Some(name.to_string()),
            Some(name) => {
                return Err(SettingsError::HeloName {
                    value: name.to_string(),
                });
            }
        };
        let max_message_bytes = match find_setting(settings, MAX_MESSAGE_BYTES) {
            None => None,
            Some(value) => match value.trim().parse::<u64>() {
                Ok(0) => None,
                Ok(limit) => Some(limit),
                Err(_) => {
                    return Err(SettingsError::MaxMessageBytes {
                        value: value.to_string(),
                    });
                }
            },
        };
        if security == Security::None && !is_loopback(&host) {
            return Err(SettingsError::PlainToRemote { host });
        }
        Ok(Self {
            host,
            port,
            security,
            timeout,
            helo_name,
            max_message_bytes,
        })
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Checks a `Host` value: a bare name or address, not a URL or `host:port`.
fn parse_host(value: &str) -> Result<String, SettingsError> {
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    if bare.parse::<IpAddr>().is_ok() {
        return Ok(bare.to_string());
    }
    let is_name = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    if is_name {
        Ok(bare.to_ascii_lowercase())
    } else {
        Err(SettingsError::Host {
            value: value.to_string(),
        })
    }
}

fn is_helo_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_[]:".contains(c))
}

/// Whether `host` is this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback(host: &str) -> bool {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A system setting is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `Host` is not set.
    #[error(
        "the SMTP provider has no Host: run `mailhost config set smtp-email Host smtp.example.com`"
    )]
    MissingHost,
    /// `Host` is not a host name or IP address.
    #[error(
        "Host '{value}' is not a host name or IP address: give the bare name (no smtp:// and no :port; set Port separately)"
    )]
    Host {
        /// The value as configured.
        value: String,
    },
    /// `Port` is not a port number.
    #[error(
        "Port '{value}' is not a TCP port (1-65535); leave it blank for the usual port of Security"
    )]
    Port {
        /// The value as configured.
        value: String,
    },
    /// `Security` is not one of the known modes.
    #[error("Security '{value}' is not known: use starttls, tls or none")]
    Security {
        /// The value as configured.
        value: String,
    },
    /// `Timeout` is not a number of seconds.
    #[error("Timeout '{value}' is not a number of seconds between 1 and 3600")]
    Timeout {
        /// The value as configured.
        value: String,
    },
    /// `HeloName` is not a host name.
    #[error("HeloName '{value}' is not a host name; leave it blank to use this machine's name")]
    HeloName {
        /// The value as configured.
        value: String,
    },
    /// `MaxMessageBytes` is not a number.
    #[error(
        "MaxMessageBytes '{value}' is not a whole number of bytes; leave it blank for no limit"
    )]
    MaxMessageBytes {
        /// The value as configured.
        value: String,
    },
    /// `Security` is `none` for a server on another machine.
    #[error(
        "Security is none but Host '{host}' is not this machine: the password and the mail would cross the network unencrypted; use Security starttls (port 587) or tls (port 465)"
    )]
    PlainToRemote {
        /// The configured host.
        host: String,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Vec<Setting> {
        pairs.iter().map(|(k, v)| Setting::new(k, v)).collect()
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<SmtpSettings, SettingsError> {
        SmtpSettings::from_settings(&settings(pairs))
    }

    #[test]
    fn host_is_required() {
        assert_eq!(parse(&[]), Err(SettingsError::MissingHost));
        assert_eq!(parse(&[(HOST, "  ")]), Err(SettingsError::MissingHost));
        let message = SettingsError::MissingHost.to_string();
        assert!(message.contains("config set smtp-email Host"), "{message}");
    }

    #[test]
    fn port_defaults_by_security() {
        let starttls = parse(&[(HOST, "smtp.example.com")]).unwrap();
        assert_eq!(
            (starttls.security, starttls.port),
            (Security::StartTls, 587)
        );
        let tls = parse(&[(HOST, "smtp.example.com"), (SECURITY, "TLS")]).unwrap();
        assert_eq!((tls.security, tls.port), (Security::Tls, 465));
        let none = parse(&[(HOST, "127.0.0.1"), (SECURITY, "none")]).unwrap();
        assert_eq!((none.security, none.port), (Security::None, 25));
        let explicit = parse(&[(HOST, "smtp.example.com"), (PORT, "2525")]).unwrap();
        assert_eq!(explicit.port, 2525);
        assert_eq!(explicit.timeout, Duration::from_secs(DEFAULT_TIMEOUT_SECS));
        assert_eq!(explicit.server(), "smtp.example.com:2525");
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            (
                vec![(HOST, "smtp.example.com"), (PORT, "70000")],
                "Port '70000'",
            ),
            (vec![(HOST, "smtp.example.com"), (PORT, "0")], "Port '0'"),
            (
                vec![(HOST, "smtp.example.com"), (SECURITY, "ssl3")],
                "Security 'ssl3'",
            ),
            (
                vec![(HOST, "smtp.example.com"), (TIMEOUT, "soon")],
                "Timeout 'soon'",
            ),
            (
                vec![(HOST, "smtp.example.com"), (TIMEOUT, "0")],
                "Timeout '0'",
            ),
            (
                vec![(HOST, "smtp://smtp.example.com")],
                "Host 'smtp://smtp.example.com'",
            ),
            (
                vec![(HOST, "smtp.example.com:587")],
                "Host 'smtp.example.com:587'",
            ),
            (
                vec![(HOST, "smtp.example.com"), (HELO_NAME, "a b")],
                "HeloName 'a b'",
            ),
            (
                vec![(HOST, "smtp.example.com"), (MAX_MESSAGE_BYTES, "10MB")],
                "MaxMessageBytes '10MB'",
            ),
        ];
        for (pairs, expected) in cases {
            let error = parse(&pairs).unwrap_err().to_string();
            assert!(error.contains(expected), "{pairs:?}: {error}");
        }
    }

    #[test]
    fn plain_text_only_to_loopback() {
        for host in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
        ] {
            let parsed = parse(&[(HOST, host), (SECURITY, "none")]);
            assert!(parsed.is_ok(), "{host}: {parsed:?}");
        }
        for host in [
            "smtp.example.com",
            "10.0.0.5",
            "localhost.example.com",
            "::2",
        ] {
            let error = parse(&[(HOST, host), (SECURITY, "none")]).unwrap_err();
            assert!(
                matches!(error, SettingsError::PlainToRemote { .. }),
                "{host}: {error}"
            );
            assert!(error.to_string().contains("unencrypted"), "{error}");
        }
    }

    #[test]
    fn optional_values_parse() {
        let parsed = parse(&[
            (HOST, "[::1]"),
            (SECURITY, "none"),
            (HELO_NAME, "client.example.com"),
            (MAX_MESSAGE_BYTES, "1048576"),
            (TIMEOUT, "5"),
        ])
        .unwrap();
        assert_eq!(parsed.host, "::1");
        assert_eq!(parsed.server(), "[::1]:25");
        assert_eq!(parsed.helo_name.as_deref(), Some("client.example.com"));
        assert_eq!(parsed.max_message_bytes, Some(1_048_576));
        assert_eq!(parsed.timeout, Duration::from_secs(5));
        let unlimited = parse(&[(HOST, "smtp.example.com"), (MAX_MESSAGE_BYTES, "0")]).unwrap();
        assert_eq!(unlimited.max_message_bytes, None);
    }

    #[test]
    fn specs_declare_every_key() {
        let keys: Vec<String> = specs().iter().map(|s| s.key.to_string()).collect();
        assert_eq!(
            keys,
            [HOST, PORT, SECURITY, TIMEOUT, HELO_NAME, MAX_MESSAGE_BYTES]
        );
        assert!(specs().iter().any(|s| s.key.as_str() == HOST && s.required));
        assert!(specs().iter().all(|s| !s.secret));
    }
}
