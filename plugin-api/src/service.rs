//! (API 1.2) What a provider tells a host that runs as a service: the sending limits it knows
//! of, whole-message (MIME) sends, reconciliation of emails whose outcome is in doubt, and the
//! findings of `mailhost doctor`.
//!
//! Every function that takes these types is optional in the root module: a library built
//! against 1.0 or 1.1 lacks them and the host keeps its older rules (no limits declared, no
//! MIME, an `unknown` email stays `unknown`, no provider findings).

use std::fmt;

use abi_stable::StableAbi;
use abi_stable::std_types::{ROption, RString, RVec};

use crate::types::{Receipt, SendRequest, Setting, StaffMember, find_setting};

/// Which sending limit a [`LimitSpec`] declares. An integer newtype so later minor versions can
/// add kinds; a host ignores kinds it does not know.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LimitKind(u8);

impl LimitKind {
    /// Messages a sending mailbox may submit within the limit's window.
    pub const MESSAGES: Self = Self(1);
    /// Recipients (To, Cc and Bcc added up) a sending mailbox may address within the window.
    pub const RECIPIENTS: Self = Self(2);
    /// Recipients of one message; more is refused as bad input.
    pub const RECIPIENTS_PER_MESSAGE: Self = Self(3);
    /// Requests in flight at once for one sending mailbox.
    pub const CONCURRENT_REQUESTS: Self = Self(4);

    /// The byte this value crosses a wire as (the host's isolation protocol).
    pub fn as_u8(self) -> u8 {
        self.0
    }

    /// The value a byte stands for; unknown bytes are kept as they are.
    pub fn from_u8(value: u8) -> Self {
        Self(value)
    }

    const NAMES: [(Self, &'static str); 4] = [
        (Self::MESSAGES, "messages"),
        (Self::RECIPIENTS, "recipients"),
        (Self::RECIPIENTS_PER_MESSAGE, "recipients-per-message"),
        (Self::CONCURRENT_REQUESTS, "concurrent-requests"),
    ];

    /// The kind's stable lower-case name.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("unknown", |(_, name)| name)
    }

    /// Whether this API version defines the kind.
    pub fn is_known(self) -> bool {
        Self::NAMES.iter().any(|(kind, _)| *kind == self)
    }

    /// Whether the limit counts use over a sliding window (messages and recipients do).
    pub fn is_windowed(self) -> bool {
        self == Self::MESSAGES || self == Self::RECIPIENTS
    }
}

impl fmt::Debug for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One sending limit: its kind, the provider setting that holds its value (declared with a
/// default in [`crate::ProviderInfo::settings`], so an administrator can change it with
/// `mailhost config set`; `0` means no limit) and, for windowed kinds, the window.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct LimitSpec {
    /// What is limited.
    pub kind: LimitKind,
    /// The key of the provider setting holding the number.
    pub setting: RString,
    /// The sliding window in seconds (60 for "a minute", 86,400 for "a day"); 0 when the kind
    /// has no window.
    pub window_seconds: u64,
}

impl LimitSpec {
    /// A limit whose number is in the setting `setting`.
    pub fn new(kind: LimitKind, setting: &str, window_seconds: u64) -> Self {
        Self {
            kind,
            setting: setting.into(),
            window_seconds,
        }
    }
}

/// The argument of a whole-message send: the RFC 5322 message as the client wrote it (a file
/// the host spooled, CRLF line ends), its envelope, and the host's structured reading of it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct MimeSendRequest {
    /// Settings, staff member and the host's structured parse of the message (bodies,
    /// attachments written to the spool, headers), for providers that need parts of it.
    pub request: SendRequest,
    /// The spooled message file.
    pub mime_path: RString,
    /// Its size in bytes.
    pub mime_size: u64,
    /// The envelope sender (SMTP `MAIL FROM`, sendmail `-f`); may be empty.
    pub envelope_from: RString,
    /// The envelope recipients. They are the recipients: Bcc recipients are here and not in
    /// the message's headers.
    pub recipients: RVec<RString>,
}

/// What a [`ReconcileOutcome`] found.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash)]
pub struct ReconcileState(u8);

impl ReconcileState {
    /// The provider found the message: it was sent.
    pub const SENT: Self = Self(1);
    /// The provider proved it was not sent: the host may send it again.
    pub const NOT_SENT: Self = Self(2);
    /// Neither could be shown; the email stays `unknown`.
    pub const UNKNOWN: Self = Self(3);

    /// The byte this value crosses a wire as (the host's isolation protocol).
    pub fn as_u8(self) -> u8 {
        self.0
    }

    /// The value a byte stands for; unknown bytes are kept as they are.
    pub fn from_u8(value: u8) -> Self {
        Self(value)
    }

    /// The state's lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::SENT => "sent",
            Self::NOT_SENT => "not-sent",
            Self::UNKNOWN => "unknown",
            _ => "unknown",
        }
    }
}

impl fmt::Debug for ReconcileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The argument of `reconcile`: the email as it was sent and when its first attempt began.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ReconcileRequest {
    /// Settings, staff member and the message (`message.id` is the host's email id, the value
    /// a provider tags its messages with).
    pub request: SendRequest,
    /// The `Message-ID` header the email carried (`<id@mailhost>` unless the client set one).
    pub internet_message_id: RString,
    /// When the first attempt began, in seconds since the Unix epoch.
    pub first_attempt_unix: i64,
}

/// What `reconcile` found out.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ReconcileOutcome {
    /// Sent, not sent, or still unknown.
    pub state: ReconcileState,
    /// A line for the email's record: where it was found, or why it is still unknown.
    pub detail: RString,
    /// For [`ReconcileState::SENT`]: the receipt, as `send` would have returned it.
    pub receipt: ROption<Receipt>,
}

impl ReconcileOutcome {
    /// Found: the email was sent.
    pub fn sent(receipt: Receipt, detail: &str) -> Self {
        Self {
            state: ReconcileState::SENT,
            detail: detail.into(),
            receipt: ROption::RSome(receipt),
        }
    }

    /// Proven absent: the host may send it again.
    pub fn not_sent(detail: &str) -> Self {
        Self {
            state: ReconcileState::NOT_SENT,
            detail: detail.into(),
            receipt: ROption::RNone,
        }
    }

    /// Still in doubt.
    pub fn unknown(detail: &str) -> Self {
        Self {
            state: ReconcileState::UNKNOWN,
            detail: detail.into(),
            receipt: ROption::RNone,
        }
    }
}

/// How serious a [`Finding`] is.
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FindingLevel(u8);

impl FindingLevel {
    /// Checked and fine.
    pub const OK: Self = Self(1);
    /// Works, but something will go wrong later or a feature is given up.
    pub const WARN: Self = Self(2);
    /// Sending will fail until it is fixed.
    pub const FAIL: Self = Self(3);

    /// The byte this value crosses a wire as (the host's isolation protocol).
    pub fn as_u8(self) -> u8 {
        self.0
    }

    /// The value a byte stands for; unknown bytes are kept as they are.
    pub fn from_u8(value: u8) -> Self {
        Self(value)
    }

    /// `ok`, `warn` or `fail`.
    pub fn name(self) -> &'static str {
        match self {
            Self::OK => "ok",
            Self::WARN => "warn",
            _ => "fail",
        }
    }
}

impl fmt::Debug for FindingLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One result of `diagnose`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A stable identifier of the check, such as `graph.consent`.
    pub id: RString,
    /// Ok, warn or fail.
    pub level: FindingLevel,
    /// The staff member it is about; empty for the provider's system settings.
    pub staff: RString,
    /// What was found.
    pub message: RString,
    /// For warn and fail: what to change.
    pub fix: RString,
}

impl Finding {
    /// A finding about the system settings (`staff` empty).
    pub fn new(id: &str, level: FindingLevel, message: &str, fix: &str) -> Self {
        Self {
            id: id.into(),
            level,
            staff: RString::new(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// The same finding, about one staff member.
    pub fn for_staff(mut self, staff: &str) -> Self {
        self.staff = staff.into();
        self
    }
}

/// The argument of `diagnose`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct DiagnoseRequest {
    /// The plugin's system settings, defaults applied.
    pub settings: RVec<Setting>,
    /// The staff members who send through this provider (or the one `doctor` was asked about).
    pub staff: RVec<StaffMember>,
    /// `doctor --send-test ADDR`: also send a test email to this address and confirm it.
    pub send_test_to: ROption<RString>,
}

impl DiagnoseRequest {
    /// A system setting, or `None` when missing or blank.
    pub fn setting(&self, key: &str) -> Option<&str> {
        find_setting(&self.settings, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_names_and_unknown_ones_are_told_apart() {
        assert_eq!(LimitKind::MESSAGES.name(), "messages");
        assert!(LimitKind::RECIPIENTS.is_windowed());
        assert!(!LimitKind::RECIPIENTS_PER_MESSAGE.is_windowed());
        assert!(!LimitKind(200).is_known());
        assert_eq!(LimitKind(200).name(), "unknown");
    }

    #[test]
    fn levels_order_by_severity() {
        assert!(FindingLevel::OK < FindingLevel::WARN);
        assert!(FindingLevel::WARN < FindingLevel::FAIL);
        assert_eq!(FindingLevel::FAIL.name(), "fail");
    }

    #[test]
    fn an_unrecognised_reconcile_state_reads_as_unknown() {
        assert_eq!(ReconcileState(42).name(), "unknown");
        assert_eq!(ReconcileState::NOT_SENT.name(), "not-sent");
    }
}
