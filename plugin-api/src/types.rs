//! The data that crosses the plugin boundary: the provider's self-description, the message, the
//! settings the host hands over on every call, and the receipt a send returns.
//!
//! Every type here is `#[repr(C)]` and `StableAbi`. None of them may change shape within a major
//! version of the API; new information goes into new optional module functions or into the
//! string lists (`capabilities`, `fields`) that are built to grow.

use std::fmt;

use abi_stable::StableAbi;
use abi_stable::std_types::{ROption, RString, RVec};

/// The type of a declared setting, used by the host to validate what users type.
///
/// An integer newtype so later minor versions can add types; a host treats a type it does not
/// know as [`SettingKind::STRING`].
#[repr(transparent)]
#[derive(StableAbi, Copy, Clone, PartialEq, Eq, Hash)]
pub struct SettingKind(u8);

impl SettingKind {
    /// Any text.
    pub const STRING: Self = Self(1);
    /// `true` or `false` (the host also accepts yes/no, on/off, 1/0 and stores true/false).
    pub const BOOL: Self = Self(2);
    /// A whole number.
    pub const INTEGER: Self = Self(3);
    /// An absolute `http://` or `https://` URL.
    pub const URL: Self = Self(4);
    /// A file-system path.
    pub const PATH: Self = Self(5);
    /// An email address.
    pub const EMAIL: Self = Self(6);

    /// The byte this kind crosses a wire as (the host's isolation protocol).
    pub fn as_u8(self) -> u8 {
        self.0
    }

    /// The kind a byte stands for; unknown bytes are kept as they are.
    pub fn from_u8(value: u8) -> Self {
        Self(value)
    }

    const NAMES: [(Self, &'static str); 6] = [
        (Self::STRING, "string"),
        (Self::BOOL, "bool"),
        (Self::INTEGER, "integer"),
        (Self::URL, "url"),
        (Self::PATH, "path"),
        (Self::EMAIL, "email"),
    ];

    /// The type's lower-case name, as listings show it.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("string", |(_, name)| name)
    }

    /// Whether this API version defines the type.
    pub fn is_known(self) -> bool {
        Self::NAMES.iter().any(|(kind, _)| *kind == self)
    }

    /// Checks `value` against the type and returns it in canonical form (booleans become
    /// `true`/`false`), or says in a few words what is wrong with it.
    pub fn normalize(self, value: &str) -> Result<String, String> {
        match self {
            Self::BOOL => match value.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok("true".into()),
                "false" | "no" | "off" | "0" => Ok("false".into()),
                _ => Err(format!("'{value}' is not a boolean (use true or false)")),
            },
            Self::INTEGER => value
                .trim()
                .parse::<i64>()
                .map(|n| n.to_string())
                .map_err(|_| format!("'{value}' is not a whole number")),
            Self::URL => {
                let trimmed = value.trim();
                let rest = trimmed
                    .strip_prefix("https://")
                    .or_else(|| trimmed.strip_prefix("http://"));
                match rest {
                    Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {
                        Ok(trimmed.trim_end_matches('/').to_string())
                    }
                    _ => Err(format!(
                        "'{value}' is not an absolute http:// or https:// URL"
                    )),
                }
            }
            Self::EMAIL => {
                let trimmed = value.trim();
                if is_plausible_address(trimmed) {
                    Ok(trimmed.to_string())
                } else {
                    Err(format!("'{value}' is not an email address"))
                }
            }
            _ => Ok(value.to_string()),
        }
    }
}

/// Whether `address` has the shape `local@domain` with no spaces, brackets or control
/// characters. Providers and the host share this first check; services do the real one.
pub fn is_plausible_address(address: &str) -> bool {
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain.contains('.')
        && !address
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>(),;:\"[]\\".contains(c))
}

/// Whether `name` is a valid provider name for the registry: 1 to 64 characters, lower-case
/// letters, digits and `-`, starting with a letter (such as `graph-email`). The host refuses to
/// register a provider whose [`ProviderInfo::name`] breaks this rule.
pub fn is_valid_plugin_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl fmt::Debug for SettingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SettingKind({})", self.name())
    }
}

impl fmt::Display for SettingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One setting a provider declares: a system setting (System Configuration) or a staff custom
/// field (Staff Maintenance).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct SettingSpec {
    /// The key users type, such as `ClientID`.
    pub key: RString,
    /// The value's type.
    pub kind: SettingKind,
    /// Whether a send fails without it.
    pub required: bool,
    /// The value used when none is set.
    pub default: ROption<RString>,
    /// Secret values go to the host's secret store and are masked in listings and logs.
    pub secret: bool,
    /// One line telling the user what the setting is and where to find its value.
    pub help: RString,
}

impl SettingSpec {
    /// A new optional, non-secret setting with no default.
    pub fn new(key: &str, kind: SettingKind, help: &str) -> Self {
        Self {
            key: key.into(),
            kind,
            required: false,
            default: ROption::RNone,
            secret: false,
            help: help.into(),
        }
    }

    /// Marks the setting required.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Marks the setting secret.
    #[must_use]
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// Gives the setting a default value.
    #[must_use]
    pub fn default_value(mut self, value: &str) -> Self {
        self.default = ROption::RSome(value.into());
        self
    }
}

/// What a provider says about itself.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// The registry name, such as `graph-email`: see [`is_valid_plugin_name`].
    pub name: RString,
    /// The name users pick as Email Provider, such as `Microsoft Graph`.
    pub display_name: RString,
    /// The provider's own semantic version.
    pub version: RString,
    /// One sentence on what the provider does.
    pub description: RString,
    /// The system settings it takes (System Configuration).
    pub settings: RVec<SettingSpec>,
    /// The staff custom fields it takes (Staff Maintenance).
    pub staff_fields: RVec<SettingSpec>,
    /// Named features, so new abilities need no ABI change: see [`capability`].
    pub capabilities: RVec<RString>,
}

/// Well-known names for [`ProviderInfo::capabilities`].
pub mod capability {
    /// The provider implements interactive sign-in and sign-out (`mailhost login`/`logout`).
    pub const SIGN_IN: &str = "sign-in";
    /// The provider sends HTML bodies.
    pub const HTML: &str = "html";
    /// The provider sends attachments.
    pub const ATTACHMENTS: &str = "attachments";
    /// The provider sends from addresses other than the staff member's own.
    pub const ALTERNATE_FROM: &str = "alternate-from";
    /// The provider passes custom `X-` headers through.
    pub const CUSTOM_HEADERS: &str = "custom-headers";
    /// (API 1.2) Sends whole RFC 5322 messages through `send_mime`.
    pub const MIME: &str = "mime";
    /// (API 1.2) Can tell whether an email in doubt was sent (`reconcile` answers more than
    /// "unknown").
    pub const RECONCILE: &str = "reconcile";
}

impl ProviderInfo {
    /// Whether the provider declares `name` among its capabilities.
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c.as_str() == name)
    }
}

/// A key and value: a system setting or a staff custom field, as the host hands it over.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key, as declared.
    pub key: RString,
    /// The value (defaults already applied by the host).
    pub value: RString,
    /// Whether the value is secret; its `Debug` form is then masked.
    pub secret: bool,
}

impl Setting {
    /// A non-secret setting.
    pub fn new(key: &str, value: &str) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            secret: false,
        }
    }
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = if self.secret {
            "***"
        } else {
            self.value.as_str()
        };
        write!(f, "{}={:?}", self.key, value)
    }
}

/// Looks up `key` in `settings`, returning `None` for a missing or blank value.
pub fn find_setting<'a>(settings: &'a [Setting], key: &str) -> Option<&'a str> {
    settings
        .iter()
        .find(|s| s.key.as_str() == key)
        .map(|s| s.value.as_str())
        .filter(|v| !v.trim().is_empty())
}

/// The staff member on whose behalf a call is made (Staff Maintenance).
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct StaffMember {
    /// The staff ID in the host.
    pub id: RString,
    /// The default From address.
    pub email: RString,
    /// The default From display name; may be empty.
    pub display_name: RString,
    /// The sign-in name for providers that take one; may be empty.
    pub username: RString,
    /// The password, when the staff member has one stored.
    pub password: ROption<RString>,
    /// The provider's custom fields for this staff member (defaults applied).
    pub fields: RVec<Setting>,
}

impl StaffMember {
    /// Looks up a custom field, returning `None` when missing or blank.
    pub fn field(&self, key: &str) -> Option<&str> {
        find_setting(&self.fields, key)
    }

    /// Whether a boolean custom field is `true`.
    pub fn flag(&self, key: &str) -> bool {
        self.field(key)
            .is_some_and(|v| SettingKind::BOOL.normalize(v).as_deref() == Ok("true"))
    }
}

impl fmt::Debug for StaffMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaffMember")
            .field("id", &self.id.as_str())
            .field("email", &self.email.as_str())
            .field("display_name", &self.display_name.as_str())
            .field("username", &self.username.as_str())
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("fields", &self.fields)
            .finish()
    }
}

/// An address with an optional display name.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
pub struct Mailbox {
    /// The address, `user@example.com`.
    pub address: RString,
    /// The display name; empty for none.
    pub name: RString,
}

impl Mailbox {
    /// A mailbox with a display name (pass `""` for none).
    pub fn new(address: &str, name: &str) -> Self {
        Self {
            address: address.into(),
            name: name.into(),
        }
    }
}

/// A file to attach, read by the provider from disk so large files can be streamed.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file's path on the host's machine.
    pub path: RString,
    /// The name recipients see.
    pub name: RString,
    /// The MIME type, such as `application/pdf`.
    pub content_type: RString,
    /// The size in bytes when the host checked the file.
    pub size: u64,
}

/// A custom header, such as `X-Order-Id`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The header name.
    pub name: RString,
    /// The header value.
    pub value: RString,
}

/// One email to send.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The host's id for the email; the same on every attempt, so providers can use it to
    /// recognise a retry.
    pub id: RString,
    /// The From address and display name.
    pub from: Mailbox,
    /// To recipients.
    pub to: RVec<Mailbox>,
    /// Cc recipients.
    pub cc: RVec<Mailbox>,
    /// Bcc recipients.
    pub bcc: RVec<Mailbox>,
    /// Reply-To addresses.
    pub reply_to: RVec<Mailbox>,
    /// The subject (the host has refused CR and LF).
    pub subject: RString,
    /// The body, text or HTML.
    pub body: RString,
    /// Whether `body` is HTML.
    pub html: bool,
    /// Files to attach.
    pub attachments: RVec<Attachment>,
    /// Custom headers to pass through.
    pub headers: RVec<Header>,
}

impl Message {
    /// (API 1.2) The `Message-ID` the host gave the email (`<id@mailhost>` unless the client
    /// set one), when the host passed it among [`Message::headers`].
    pub fn message_id_header(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("Message-ID"))
            .map(|h| h.value.as_str())
    }

    /// (API 1.2) The custom headers: [`Message::headers`] without the `Message-ID`, which a
    /// provider uses as the message's own id rather than as an extra header.
    pub fn custom_headers(&self) -> impl Iterator<Item = &Header> {
        self.headers
            .iter()
            .filter(|h| !h.name.eq_ignore_ascii_case("Message-ID"))
    }

    /// Every recipient address: to, then cc, then bcc.
    pub fn recipients(&self) -> impl Iterator<Item = &Mailbox> {
        self.to.iter().chain(self.cc.iter()).chain(self.bcc.iter())
    }
}

/// The send call's argument: the message, the plugin's system settings and the sending staff
/// member's settings, all current at the time of the call.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct SendRequest {
    /// The plugin's system settings (System Configuration), defaults applied.
    pub settings: RVec<Setting>,
    /// The sending staff member.
    pub staff: StaffMember,
    /// The email.
    pub message: Message,
}

impl SendRequest {
    /// A system setting, or `None` when missing or blank.
    pub fn setting(&self, key: &str) -> Option<&str> {
        find_setting(&self.settings, key)
    }
}

/// The sign-in and sign-out calls' argument.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct SignInRequest {
    /// The plugin's system settings, defaults applied.
    pub settings: RVec<Setting>,
    /// The staff member signing in or out.
    pub staff: StaffMember,
}

impl SignInRequest {
    /// A system setting, or `None` when missing or blank.
    pub fn setting(&self, key: &str) -> Option<&str> {
        find_setting(&self.settings, key)
    }
}

/// What a successful send returns.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
pub struct Receipt {
    /// The provider's id for the message, if it gives one (Message-ID, Graph message id).
    pub message_id: RString,
    /// The provider's id for the request, for support cases (Graph `request-id`).
    pub request_id: RString,
    /// A short human-readable note, such as the path of a written file.
    pub detail: RString,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_follow_the_registry_rule() {
        assert!(is_valid_plugin_name("graph-email"));
        assert!(is_valid_plugin_name("echo-00"));
        assert!(!is_valid_plugin_name("Graph"));
        assert!(!is_valid_plugin_name("1abc"));
        assert!(!is_valid_plugin_name("a b"));
        assert!(!is_valid_plugin_name(""));
        assert!(!is_valid_plugin_name(&"a".repeat(65)));
    }

    #[test]
    fn booleans_normalize() {
        assert_eq!(SettingKind::BOOL.normalize("Yes").as_deref(), Ok("true"));
        assert_eq!(SettingKind::BOOL.normalize("0").as_deref(), Ok("false"));
        assert!(SettingKind::BOOL.normalize("maybe").is_err());
    }

    #[test]
    fn urls_need_scheme_and_host() {
        assert_eq!(
            SettingKind::URL
                .normalize("https://graph.microsoft.com/")
                .as_deref(),
            Ok("https://graph.microsoft.com")
        );
        assert!(SettingKind::URL.normalize("graph.microsoft.com").is_err());
        assert!(SettingKind::URL.normalize("https://").is_err());
    }

    #[test]
    fn addresses_are_checked() {
        assert!(is_plausible_address("adele@contoso.com"));
        assert!(!is_plausible_address("adele@contoso"));
        assert!(!is_plausible_address("a b@contoso.com"));
        assert!(!is_plausible_address("a@x.com;b@x.com"));
        assert!(!is_plausible_address("a@x.com\r\nBcc: c@x.com"));
    }

    #[test]
    fn secrets_are_masked_in_debug() {
        let staff = StaffMember {
            id: "s1".into(),
            email: "a@x.com".into(),
            display_name: "".into(),
            username: "a@x.com".into(),
            password: ROption::RSome("hunter2".into()),
            fields: RVec::from(vec![Setting {
                key: "Token".into(),
                value: "tok-secret".into(),
                secret: true,
            }]),
        };
        let shown = format!("{staff:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("tok-secret"), "{shown}");
    }

    #[test]
    fn flags_read_booleans() {
        let staff = StaffMember {
            id: "s1".into(),
            email: "a@x.com".into(),
            display_name: "".into(),
            username: "".into(),
            password: ROption::RNone,
            fields: RVec::from(vec![Setting::new("NonInteractive", "yes")]),
        };
        assert!(staff.flag("NonInteractive"));
        assert!(!staff.flag("Other"));
    }
}
