//! What can go wrong sending through SMTP, and how each failure maps onto the plugin API's
//! [`ErrorKind`].
//!
//! The mapping follows the rule that matters most to the host: **never make it send twice**.
//! A failure before the end of the message was written (connection refused, timeout, a dropped
//! connection during `MAIL`/`RCPT`/`DATA`, any 4xx reply) is [`ErrorKind::TRANSIENT`]: nothing
//! was delivered and the host may retry. A connection lost *after* the terminating `.` was
//! written is [`ErrorKind::UNKNOWN_OUTCOME`]: the server may have accepted the message, so the
//! host must not retry silently. Callers ask [`SmtpError::is_transient`] and friends rather
//! than matching variants (lettre's style).

use std::error::Error as _;
use std::fmt;

use mailhost_plugin_api::{ErrorKind, ProviderError};

use crate::message::MessageError;
use crate::settings::SettingsError;

/// The lettre error every network failure starts as.
pub type LettreError = lettre::transport::smtp::Error;

/// The step of the SMTP conversation a failure happened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Opening the connection, the greeting and EHLO.
    Connect,
    /// Upgrading with STARTTLS.
    StartTls,
    /// Signing in with AUTH.
    Auth,
    /// `MAIL FROM`.
    MailFrom,
    /// `RCPT TO` for this address.
    Rcpt(String),
    /// The `DATA` command.
    Data,
    /// Writing the message, before its terminating `.` was written.
    Content,
    /// Waiting for the reply to the whole message.
    EndOfData,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect => f.write_str("the connection"),
            Self::StartTls => f.write_str("STARTTLS"),
            Self::Auth => f.write_str("the sign-in (AUTH)"),
            Self::MailFrom => f.write_str("the sender (MAIL FROM)"),
            Self::Rcpt(address) => write!(f, "the recipient <{address}>"),
            Self::Data => f.write_str("DATA"),
            Self::Content | Self::EndOfData => f.write_str("the message"),
        }
    }
}

/// A failed send through SMTP.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// A system setting is missing or wrong.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The email cannot be built.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The server answered with a negative reply.
    #[error("the SMTP server {server} refused {phase}: {reply}")]
    Rejected {
        /// `host:port`.
        server: String,
        /// The step that was refused.
        phase: Phase,
        /// The reply code, such as 550.
        code: u16,
        /// The whole reply, code first.
        reply: String,
    },
    /// The TLS handshake or the certificate check failed.
    #[error("TLS with the SMTP server {server} failed: {}", chain(source))]
    Tls {
        /// `host:port`.
        server: String,
        /// What lettre or rustls said.
        source: LettreError,
    },
    /// `Security` is `starttls` but the server does not offer it.
    #[error(
        "the SMTP server {server} does not offer STARTTLS: set Security to tls if it expects TLS from the start (usually port 465)"
    )]
    NoStartTls {
        /// `host:port`.
        server: String,
    },
    /// Credentials were given but the server offers no mechanism lettre speaks.
    #[error(
        "the SMTP server {server} offers no sign-in method mailhost supports (AUTH PLAIN or LOGIN); it may offer AUTH only after STARTTLS or on another port"
    )]
    NoAuthMechanism {
        /// `host:port`.
        server: String,
    },
    /// An address is not ASCII and the server lacks SMTPUTF8.
    #[error(
        "the SMTP server {server} does not accept internationalized addresses (no SMTPUTF8); use ASCII addresses"
    )]
    NoSmtpUtf8 {
        /// `host:port`.
        server: String,
    },
    /// The connection failed before the whole message was sent: nothing was delivered.
    #[error("{}", network_message(server, phase, source))]
    Network {
        /// `host:port`.
        server: String,
        /// The step that failed.
        phase: Phase,
        /// What lettre said.
        source: LettreError,
    },
    /// The connection failed after the whole message was sent: it may have been delivered.
    #[error(
        "the connection to the SMTP server {server} failed after the whole message was sent, before the server confirmed it ({}): it may or may not have been delivered; check with a recipient before sending it again",
        chain(source)
    )]
    UnknownOutcome {
        /// `host:port`.
        server: String,
        /// What lettre said.
        source: LettreError,
    },
}

fn network_message(server: &str, phase: &Phase, source: &LettreError) -> String {
    let what = chain(source);
    let timed_out = if is_timeout(source) {
        "timed out: "
    } else {
        ""
    };
    match phase {
        Phase::Connect => format!(
            "cannot reach the SMTP server {server}: {timed_out}{what}; check Host, Port and Security, or try again later"
        ),
        phase => format!(
            "the connection to the SMTP server {server} failed during {phase}, before the message was sent ({timed_out}{what}); nothing was delivered and it can be sent again"
        ),
    }
}

/// An error and its sources, joined with `: ` (duplicates skipped).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whether a read or write timed out (a socket timeout reads as `WouldBlock` on Unix).
pub(crate) fn is_timeout(error: &LettreError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            )
        {
            return true;
        }
        source = cause.source();
    }
    error.is_timeout()
}

/// Whether the failure came from TLS: lettre's own TLS errors, or a rustls error surfacing
/// through I/O (rustls shakes hands lazily, on the first read or write).
pub(crate) fn is_tls(error: &LettreError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        // An `io::Error` hides the error it wraps from `source()`; look inside.
        let wrapped = cause
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .is_some_and(|inner| inner.is::<rustls::Error>());
        if wrapped || cause.is::<rustls::Error>() {
            return true;
        }
        source = cause.source();
    }
    error.is_tls()
}

/// Sorts a lettre error from `phase` into an [`SmtpError`].
pub(crate) fn classify(server: &str, phase: Phase, error: LettreError) -> SmtpError {
    let server = server.to_string();
    if let Some(code) = error.status() {
        let code_text = code.to_string();
        let text = error.source().map(ToString::to_string).unwrap_or_default();
        let reply = if text.is_empty() {
            code_text.clone()
        } else {
            format!("{code_text} {text}")
        };
        return SmtpError::Rejected {
            server,
            phase,
            code: code_text.parse().unwrap_or(0),
            reply,
        };
    }
    if is_tls(&error) {
        return SmtpError::Tls {
            server,
            source: error,
        };
    }
    if phase == Phase::EndOfData {
        return SmtpError::UnknownOutcome {
            server,
            source: error,
        };
    }
    SmtpError::Network {
        server,
        phase,
        source: error,
    }
}

impl SmtpError {
    /// The plugin API's kind for this failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Settings(_) => ErrorKind::CONFIGURATION,
            Self::Message(error) => match error {
                MessageError::TooLarge { .. } => ErrorKind::TOO_LARGE,
                MessageError::Address { field, .. } if field.is_recipient() => ErrorKind::RECIPIENT,
                MessageError::NoRecipients => ErrorKind::RECIPIENT,
                _ => ErrorKind::INVALID_MESSAGE,
            },
            Self::Rejected { phase, code, .. } => reply_kind(phase, *code),
            Self::Tls { .. } | Self::NoStartTls { .. } | Self::NoAuthMechanism { .. } => {
                ErrorKind::CONFIGURATION
            }
            Self::NoSmtpUtf8 { .. } => ErrorKind::RECIPIENT,
            Self::Network { .. } => ErrorKind::TRANSIENT,
            Self::UnknownOutcome { .. } => ErrorKind::UNKNOWN_OUTCOME,
        }
    }

    /// The provider code the host records: the SMTP reply code, when the server replied.
    pub fn code(&self) -> String {
        match self {
            Self::Rejected { code, .. } => code.to_string(),
            Self::Network { source, .. } | Self::UnknownOutcome { source, .. }
                if is_timeout(source) =>
            {
                "timeout".into()
            }
            _ => String::new(),
        }
    }

    /// Whether sending again later may succeed (4xx replies, connection failures before the
    /// message was sent).
    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }

    /// Whether sending the same email again will fail the same way until something changes.
    pub fn is_permanent(&self) -> bool {
        !self.is_transient() && self.kind() != ErrorKind::UNKNOWN_OUTCOME
    }

    /// Whether the server stopped answering within `Timeout`.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Network { source, .. } | Self::UnknownOutcome { source, .. } => {
                is_timeout(source)
            }
            _ => false,
        }
    }

    /// Whether a pooled connection was found closed at its first command: nothing was sent, so
    /// the send may go on through a new connection.
    pub(crate) fn is_stale_connection(&self) -> bool {
        match self {
            Self::Network { phase, .. } => *phase == Phase::MailFrom,
            Self::Rejected { phase, code, .. } => *phase == Phase::MailFrom && *code == 421,
            _ => false,
        }
    }

    /// Whether the connection is still in step with the server after this error (a negative
    /// reply inside a transaction), so it can be reset and reused.
    pub(crate) fn leaves_connection_usable(&self) -> bool {
        matches!(self, Self::Rejected { phase, code, .. }
            if *code != 421 && !matches!(phase, Phase::Connect | Phase::StartTls | Phase::Auth))
    }

    /// The structured error handed to the host.
    pub fn to_provider_error(&self) -> ProviderError {
        let kind = self.kind();
        let hint = match (self, kind) {
            (Self::Tls { .. }, _) => {
                " Check Security and Port (465 is tls, 587 is starttls). If the server's certificate comes from a private CA, point SSL_CERT_FILE at a PEM file with that CA before starting mailhost."
            }
            (_, ErrorKind::AUTHENTICATION) => {
                " Check the staff member's username and password (mailhost staff set ID --username USER --password-stdin)."
            }
            (Self::Rejected { .. }, ErrorKind::TRANSIENT) => {
                " The server asked to try again later."
            }
            _ => "",
        };
        let mut message = self.to_string();
        if !hint.is_empty() && !message.ends_with('.') {
            message.push('.');
        }
        message.push_str(hint);
        let mut error = ProviderError::new(kind, message);
        let code = self.code();
        if !code.is_empty() {
            error = error.with_code(code);
        }
        error
    }
}

/// The kind of a negative reply, by the step it answered and its code.
fn reply_kind(phase: &Phase, code: u16) -> ErrorKind {
    match (phase, code) {
        (_, 400..=499) => ErrorKind::TRANSIENT,
        (Phase::Auth, _) | (_, 530) => ErrorKind::AUTHENTICATION,
        (Phase::Rcpt(_), _) => ErrorKind::RECIPIENT,
        (_, 552 | 523) => ErrorKind::TOO_LARGE,
        (Phase::StartTls, _) => ErrorKind::CONFIGURATION,
        _ => ErrorKind::PERMISSION,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rejected(phase: Phase, code: u16) -> SmtpError {
        SmtpError::Rejected {
            server: "smtp.example.com:587".into(),
            phase,
            code,
            reply: format!("{code} something"),
        }
    }

    #[test]
    fn replies_are_classified_by_step_and_code() {
        let cases = [
            (Phase::Auth, 535, ErrorKind::AUTHENTICATION),
            (Phase::Auth, 454, ErrorKind::TRANSIENT),
            (Phase::MailFrom, 530, ErrorKind::AUTHENTICATION),
            (Phase::Rcpt("a@x.com".into()), 550, ErrorKind::RECIPIENT),
            (Phase::Rcpt("a@x.com".into()), 553, ErrorKind::RECIPIENT),
            (Phase::Rcpt("a@x.com".into()), 451, ErrorKind::TRANSIENT),
            (Phase::MailFrom, 421, ErrorKind::TRANSIENT),
            (Phase::MailFrom, 553, ErrorKind::PERMISSION),
            (Phase::EndOfData, 552, ErrorKind::TOO_LARGE),
            (Phase::EndOfData, 554, ErrorKind::PERMISSION),
            (Phase::EndOfData, 451, ErrorKind::TRANSIENT),
        ];
        for (phase, code, kind) in cases {
            let error = rejected(phase.clone(), code);
            assert_eq!(error.kind(), kind, "{phase:?} {code}");
            let provider = error.to_provider_error();
            assert_eq!(provider.kind, kind);
            assert_eq!(provider.code.as_str(), code.to_string());
            assert_eq!(error.is_transient(), (400..500).contains(&code));
            assert_eq!(error.is_permanent(), !(400..500).contains(&code));
        }
    }

    #[test]
    fn messages_say_what_to_change() {
        let auth = rejected(Phase::Auth, 535).to_provider_error();
        assert!(
            auth.message.contains("refused the sign-in (AUTH): 535"),
            "{auth}"
        );
        assert!(auth.message.contains("--password-stdin"), "{auth}");
        let rcpt = rejected(Phase::Rcpt("bob@x.com".into()), 550).to_provider_error();
        assert!(
            rcpt.message
                .contains("refused the recipient <bob@x.com>: 550"),
            "{rcpt}"
        );
        let config = SmtpError::from(SettingsError::MissingHost).to_provider_error();
        assert_eq!(config.kind, ErrorKind::CONFIGURATION);
        let size = SmtpError::from(MessageError::TooLarge { size: 10, limit: 5 });
        assert_eq!(size.kind(), ErrorKind::TOO_LARGE);
    }

    #[test]
    fn stale_and_reusable_connections() {
        assert!(rejected(Phase::MailFrom, 421).is_stale_connection());
        assert!(!rejected(Phase::Rcpt("a@x.com".into()), 421).is_stale_connection());
        assert!(rejected(Phase::Rcpt("a@x.com".into()), 550).leaves_connection_usable());
        assert!(!rejected(Phase::Auth, 535).leaves_connection_usable());
        assert!(!rejected(Phase::MailFrom, 421).leaves_connection_usable());
    }
}
