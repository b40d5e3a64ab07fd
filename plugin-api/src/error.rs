//! Structured provider errors: what went wrong (a [`ErrorKind`]), the provider's own code
//! (`AADSTS50076`, `ErrorSendAsDenied`, an SMTP reply code) and a message that tells the user
//! what to change.

use std::fmt;
use std::time::Duration;

use abi_stable::StableAbi;
use abi_stable::std_types::{ROption, RString};

/// What kind of failure a [`ProviderError`] reports.
///
/// An integer newtype rather than an enum so that later minor versions of the API can add
/// kinds without breaking the ABI: a host that meets a kind it does not know treats it as
/// [`ErrorKind::INTERNAL`] (see [`ErrorKind::is_known`]).
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash)]
pub struct ErrorKind(u8);

impl ErrorKind {
    /// A system setting or staff field is missing or wrong; the user must change configuration.
    pub const CONFIGURATION: Self = Self(1);
    /// Sign-in failed: wrong password, MFA required, expired or revoked refresh token.
    pub const AUTHENTICATION: Self = Self(2);
    /// Signed in, but not allowed: missing consent, missing Send As right, access denied.
    pub const PERMISSION: Self = Self(3);
    /// A recipient address was refused.
    pub const RECIPIENT: Self = Self(4);
    /// The service asked the client to slow down; see [`ProviderError::retry_after`].
    pub const THROTTLED: Self = Self(5);
    /// A temporary fault (network, 5xx); trying again later may succeed.
    pub const TRANSIENT: Self = Self(6);
    /// The message or an attachment is larger than the service accepts.
    pub const TOO_LARGE: Self = Self(7);
    /// A fault inside the provider (including a caught panic).
    pub const INTERNAL: Self = Self(8);
    /// The provider does not implement the requested operation.
    pub const UNSUPPORTED: Self = Self(9);
    /// The message itself is malformed (bad header, unreadable attachment).
    pub const INVALID_MESSAGE: Self = Self(10);
    /// The request may have reached the service before the connection failed: sending again
    /// could deliver the message twice, so the host must not retry it silently.
    pub const UNKNOWN_OUTCOME: Self = Self(11);

    const NAMES: [(Self, &'static str); 11] = [
        (Self::CONFIGURATION, "configuration"),
        (Self::AUTHENTICATION, "authentication"),
        (Self::PERMISSION, "permission"),
        (Self::RECIPIENT, "recipient"),
        (Self::THROTTLED, "throttled"),
        (Self::TRANSIENT, "transient"),
        (Self::TOO_LARGE, "too-large"),
        (Self::INTERNAL, "internal"),
        (Self::UNSUPPORTED, "unsupported"),
        (Self::INVALID_MESSAGE, "invalid-message"),
        (Self::UNKNOWN_OUTCOME, "unknown-outcome"),
    ];

    /// The kind's stable lower-case name, as shown to users and stored by the host.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("internal", |(_, name)| name)
    }

    /// Parses a name produced by [`ErrorKind::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(kind, _)| *kind)
    }

    /// Whether this API version defines the kind.
    pub fn is_known(self) -> bool {
        Self::NAMES.iter().any(|(kind, _)| *kind == self)
    }

    /// Whether trying the same request again later may succeed (throttling, temporary faults).
    pub fn is_transient(self) -> bool {
        self == Self::THROTTLED || self == Self::TRANSIENT
    }

    /// The raw value, for storage.
    pub fn as_u8(self) -> u8 {
        self.0
    }

    /// Rebuilds a kind from [`ErrorKind::as_u8`]; unknown values are kept as they are.
    pub fn from_u8(value: u8) -> Self {
        Self(value)
    }
}

impl fmt::Debug for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ErrorKind({})", self.name())
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error returned by a provider across the plugin boundary.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// The provider's own code, such as `AADSTS50076`, `ErrorSendAsDenied` or `550`; may be empty.
    pub code: RString,
    /// What happened and what the user should change, in one or two sentences.
    pub message: RString,
    /// For throttling: how long the service asked the client to wait, in milliseconds.
    pub retry_after_ms: ROption<u64>,
}

impl ProviderError {
    /// A new error of `kind` with a user-facing `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: RString::new(),
            message: RString::from(message.into()),
            retry_after_ms: ROption::RNone,
        }
    }

    /// A [`ErrorKind::CONFIGURATION`] error.
    pub fn configuration(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::CONFIGURATION, message)
    }

    /// An [`ErrorKind::AUTHENTICATION`] error.
    pub fn authentication(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AUTHENTICATION, message)
    }

    /// A [`ErrorKind::PERMISSION`] error.
    pub fn permission(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PERMISSION, message)
    }

    /// A [`ErrorKind::RECIPIENT`] error.
    pub fn recipient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::RECIPIENT, message)
    }

    /// A [`ErrorKind::THROTTLED`] error carrying the wait the service asked for.
    pub fn throttled(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        let mut error = Self::new(ErrorKind::THROTTLED, message);
        error.retry_after_ms = retry_after.map(duration_ms).into();
        error
    }

    /// A [`ErrorKind::TRANSIENT`] error.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TRANSIENT, message)
    }

    /// A [`ErrorKind::TOO_LARGE`] error.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TOO_LARGE, message)
    }

    /// An [`ErrorKind::INTERNAL`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INTERNAL, message)
    }

    /// An [`ErrorKind::UNSUPPORTED`] error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UNSUPPORTED, message)
    }

    /// An [`ErrorKind::INVALID_MESSAGE`] error.
    pub fn invalid_message(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::INVALID_MESSAGE, message)
    }

    /// An [`ErrorKind::UNKNOWN_OUTCOME`] error.
    pub fn unknown_outcome(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UNKNOWN_OUTCOME, message)
    }

    /// Sets the provider's code.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = RString::from(code.into());
        self
    }

    /// Sets how long to wait before trying again.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after_ms = ROption::RSome(duration_ms(retry_after));
        self
    }

    /// How long the service asked the client to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after_ms.into_option().map(Duration::from_millis)
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl fmt::Debug for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderError")
            .field("kind", &self.kind)
            .field("code", &self.code.as_str())
            .field("message", &self.message.as_str())
            .field("retry_after_ms", &self.retry_after_ms)
            .finish()
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{} [{}]", self.message, self.code)
        }
    }
}

impl std::error::Error for ProviderError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for (kind, name) in ErrorKind::NAMES {
            assert_eq!(ErrorKind::from_name(name), Some(kind));
            assert_eq!(kind.name(), name);
        }
        assert_eq!(ErrorKind::from_u8(200).name(), "internal");
        assert!(!ErrorKind::from_u8(200).is_known());
    }

    #[test]
    fn only_throttled_and_transient_are_transient() {
        assert!(ErrorKind::THROTTLED.is_transient());
        assert!(ErrorKind::TRANSIENT.is_transient());
        assert!(!ErrorKind::UNKNOWN_OUTCOME.is_transient());
        assert!(!ErrorKind::AUTHENTICATION.is_transient());
    }

    #[test]
    fn display_shows_code() {
        let error = ProviderError::permission("no Send As right").with_code("ErrorSendAsDenied");
        assert_eq!(error.to_string(), "no Send As right [ErrorSendAsDenied]");
        let throttled = ProviderError::throttled("slow down", Some(Duration::from_secs(2)));
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(2)));
    }
}
