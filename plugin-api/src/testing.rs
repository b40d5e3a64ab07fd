//! Builders for unit-testing a provider without a host: a [`SendRequest`] with settings, a
//! [`StaffMember`] and a [`Message`], written the way a test reads.
//!
//! ```
//! use mailhost_plugin_api::testing::{MessageBuilder, RequestBuilder, staff_member};
//!
//! let request = RequestBuilder::new()
//!     .setting("File", "/tmp/out.jsonl")
//!     .secret_setting("ApiKey", "k-123")
//!     .staff(staff_member("adele", "adele@contoso.com").with_password("pw"))
//!     .message(
//!         MessageBuilder::new("m1")
//!             .to("bob@example.com")
//!             .subject("Hi")
//!             .body("Hello")
//!             .build(),
//!     )
//!     .build();
//! assert_eq!(request.setting("File"), Some("/tmp/out.jsonl"));
//! assert_eq!(request.message.to[0].address.as_str(), "bob@example.com");
//! ```

use abi_stable::std_types::{ROption, RVec};

use crate::types::{Attachment, Header, Mailbox, Message, SendRequest, Setting, StaffMember};

/// A staff member with an id and an address, the address also as username; no password, no
/// fields.
pub fn staff_member(id: &str, email: &str) -> StaffMember {
    StaffMember {
        id: id.into(),
        email: email.into(),
        display_name: "".into(),
        username: email.into(),
        password: ROption::RNone,
        fields: RVec::new(),
    }
}

impl StaffMember {
    /// The same staff member with a display name.
    #[must_use]
    pub fn with_name(mut self, name: &str) -> Self {
        self.display_name = name.into();
        self
    }

    /// The same staff member with a password.
    #[must_use]
    pub fn with_password(mut self, password: &str) -> Self {
        self.password = ROption::RSome(password.into());
        self
    }

    /// The same staff member with a custom field.
    #[must_use]
    pub fn with_field(mut self, key: &str, value: &str) -> Self {
        self.fields.push(Setting::new(key, value));
        self
    }
}

/// Builds a [`Message`].
#[derive(Debug, Clone, Default)]
pub struct MessageBuilder {
    message: Message,
}

impl MessageBuilder {
    /// A message with the host's id `id`, and nothing else yet.
    pub fn new(id: &str) -> Self {
        Self {
            message: Message {
                id: id.into(),
                ..Message::default()
            },
        }
    }

    /// Sets the From address (empty: the staff member's own).
    #[must_use]
    pub fn from(mut self, address: &str, name: &str) -> Self {
        self.message.from = Mailbox::new(address, name);
        self
    }

    /// Adds a To recipient.
    #[must_use]
    pub fn to(mut self, address: &str) -> Self {
        self.message.to.push(Mailbox::new(address, ""));
        self
    }

    /// Adds a Cc recipient.
    #[must_use]
    pub fn cc(mut self, address: &str) -> Self {
        self.message.cc.push(Mailbox::new(address, ""));
        self
    }

    /// Adds a Bcc recipient.
    #[must_use]
    pub fn bcc(mut self, address: &str) -> Self {
        self.message.bcc.push(Mailbox::new(address, ""));
        self
    }

    /// Sets the subject.
    #[must_use]
    pub fn subject(mut self, subject: &str) -> Self {
        self.message.subject = subject.into();
        self
    }

    /// Sets a plain-text body.
    #[must_use]
    pub fn body(mut self, body: &str) -> Self {
        self.message.body = body.into();
        self.message.html = false;
        self
    }

    /// Sets an HTML body.
    #[must_use]
    pub fn html(mut self, body: &str) -> Self {
        self.message.body = body.into();
        self.message.html = true;
        self
    }

    /// Adds an attachment: a file the provider reads from `path`.
    #[must_use]
    pub fn attachment(mut self, path: &str, name: &str, content_type: &str, size: u64) -> Self {
        self.message.attachments.push(Attachment {
            path: path.into(),
            name: name.into(),
            content_type: content_type.into(),
            size,
        });
        self
    }

    /// Adds a header (the host gives every message a `Message-ID`).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.message.headers.push(Header {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// The message.
    pub fn build(self) -> Message {
        self.message
    }
}

/// Builds a [`SendRequest`].
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    settings: Vec<Setting>,
    staff: StaffMember,
    message: Message,
}

impl Default for RequestBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestBuilder {
    /// A request from `test@example.com` with an empty message and no settings.
    pub fn new() -> Self {
        Self {
            settings: Vec::new(),
            staff: staff_member("test", "test@example.com"),
            message: MessageBuilder::new("test-message").build(),
        }
    }

    /// Adds a system setting, as the host hands it (defaults are the test's business).
    #[must_use]
    pub fn setting(mut self, key: &str, value: &str) -> Self {
        self.settings.push(Setting::new(key, value));
        self
    }

    /// Adds a secret system setting.
    #[must_use]
    pub fn secret_setting(mut self, key: &str, value: &str) -> Self {
        self.settings.push(Setting {
            secret: true,
            ..Setting::new(key, value)
        });
        self
    }

    /// Sets the sending staff member.
    #[must_use]
    pub fn staff(mut self, staff: StaffMember) -> Self {
        self.staff = staff;
        self
    }

    /// Sets the message.
    #[must_use]
    pub fn message(mut self, message: Message) -> Self {
        self.message = message;
        self
    }

    /// The request.
    pub fn build(self) -> SendRequest {
        SendRequest {
            settings: self.settings.into(),
            staff: self.staff,
            message: self.message,
        }
    }
}
