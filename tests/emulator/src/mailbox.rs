//! Mailboxes: every user and shared mailbox keeps an Inbox and Sent Items (and drafts), and
//! mail to addresses outside the tenant lands in an external sink, so tests can see what arrived,
//! from whom and how.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::directory::Directory;
use crate::graph::message::empty_message;

/// An email address with an optional display name (Graph `emailAddress`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailAddress {
    /// The SMTP address.
    pub address: String,
    /// The display name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A Graph `recipient`: `{"emailAddress": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recipient {
    /// The address.
    pub email_address: EmailAddress,
}

impl Recipient {
    /// A recipient with an address and optional name.
    pub fn new(address: impl Into<String>, name: Option<String>) -> Self {
        Self {
            email_address: EmailAddress {
                address: address.into(),
                name,
            },
        }
    }

    /// The address, as given.
    pub fn address(&self) -> &str {
        &self.email_address.address
    }
}

/// A message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemBody {
    /// `text` or `html` (normalised to lower case).
    pub content_type: String,
    /// The content.
    pub content: String,
}

impl Default for ItemBody {
    fn default() -> Self {
        Self {
            content_type: "text".into(),
            content: String::new(),
        }
    }
}

/// A custom internet message header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageHeader {
    /// The header name (`x-…`).
    pub name: String,
    /// The header value.
    pub value: String,
}

/// A single-value extended property (`singleValueExtendedProperties`), such as
/// `{"id": "String {GUID} Name MailhostId", "value": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedProperty {
    /// `{type} {property set GUID} Name {name}` or `{type} {GUID} Id {0x…}`.
    pub id: String,
    /// The value, as a string.
    pub value: String,
}

/// What the emulator keeps of an attachment: never the bytes, only their size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentInfo {
    /// The attachment id.
    pub id: String,
    /// The file name.
    pub name: String,
    /// The MIME type.
    pub content_type: String,
    /// Size in bytes (decoded).
    pub size: u64,
    /// Lower-case hex SHA-256 of the decoded bytes.
    pub sha256: String,
    /// Inline (referenced by `cid:` from an HTML body).
    pub is_inline: bool,
    /// The content id, for inline attachments.
    #[serde(default)]
    pub content_id: Option<String>,
}

/// A message as stored in a mailbox folder or the external sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    /// The item id (unique per copy).
    pub id: String,
    /// The RFC 5322 Message-ID, the same in every copy of one send.
    pub internet_message_id: String,
    /// Submitted as MIME (`Content-Type: text/plain` sendMail) rather than JSON.
    pub mime: bool,
    /// The subject.
    pub subject: String,
    /// The body.
    pub body: ItemBody,
    /// The mailbox owner the mail is from.
    pub from: Option<Recipient>,
    /// Who actually sent it; differs from `from` for "sender on behalf of from".
    pub sender: Option<Recipient>,
    /// To recipients.
    pub to_recipients: Vec<Recipient>,
    /// Cc recipients.
    pub cc_recipients: Vec<Recipient>,
    /// Bcc recipients: only in the sender's Sent Items copy.
    pub bcc_recipients: Vec<Recipient>,
    /// Reply-To addresses.
    pub reply_to: Vec<Recipient>,
    /// Custom `x-` headers.
    pub internet_message_headers: Vec<MessageHeader>,
    /// `low`, `normal` or `high`.
    pub importance: String,
    /// Delivery receipt requested.
    pub is_delivery_receipt_requested: bool,
    /// Read receipt requested.
    pub is_read_receipt_requested: bool,
    /// Attachments (metadata and hash only).
    pub attachments: Vec<AttachmentInfo>,
    /// When it was sent (ISO 8601), empty for drafts.
    pub sent_date_time: String,
    /// When this copy was received (ISO 8601), empty for Sent Items and drafts.
    pub received_date_time: String,
    /// For an Inbox or external copy: the recipient address it was delivered to.
    pub delivered_to: Option<String>,
    /// The client id of the app that sent it.
    pub app_id: String,
    /// Single-value extended properties; kept on the sender's items (Sent Items, drafts), not
    /// on the copies recipients get.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub single_value_extended_properties: Vec<ExtendedProperty>,
}

impl StoredMessage {
    /// The `from` address (lower-cased), if any.
    pub fn from_address(&self) -> Option<String> {
        self.from.as_ref().map(|r| r.address().to_ascii_lowercase())
    }

    /// The `sender` address (lower-cased), if any.
    pub fn sender_address(&self) -> Option<String> {
        self.sender
            .as_ref()
            .map(|r| r.address().to_ascii_lowercase())
    }

    /// Whether recipients see "sender on behalf of from".
    pub fn is_on_behalf(&self) -> bool {
        self.from_address() != self.sender_address()
    }

    /// The To addresses, lower-cased.
    pub fn to_addresses(&self) -> Vec<String> {
        self.to_recipients
            .iter()
            .map(|r| r.address().to_ascii_lowercase())
            .collect()
    }

    /// The value of a single-value extended property, by id (case-insensitive).
    pub fn extended_property(&self, id: &str) -> Option<&str> {
        self.single_value_extended_properties
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(id))
            .map(|p| p.value.as_str())
    }

    /// The value of a custom header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.internet_message_headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// Estimated size as Exchange counts it: text plus base64-inflated attachments.
    pub(crate) fn exchange_size(&self) -> u64 {
        let text = (self.subject.len() + self.body.content.len() + 2048) as u64
            + self
                .internet_message_headers
                .iter()
                .map(|h| (h.name.len() + h.value.len() + 4) as u64)
                .sum::<u64>();
        text + self
            .attachments
            .iter()
            .map(|a| a.size.div_ceil(3) * 4)
            .sum::<u64>()
    }
}

/// One mailbox's folders.
#[derive(Debug, Default)]
pub(crate) struct Folders {
    pub(crate) inbox: Vec<StoredMessage>,
    pub(crate) sent: Vec<StoredMessage>,
    /// Sent Items copies not filed yet (Exchange files them asynchronously), with when they
    /// appear.
    pub(crate) sent_pending: Vec<(std::time::Instant, StoredMessage)>,
    pub(crate) drafts: HashMap<String, StoredMessage>,
}

impl Folders {
    /// Files the Sent Items copies that are due.
    pub(crate) fn file_due(&mut self, now: std::time::Instant) {
        if self.sent_pending.iter().any(|(at, _)| *at <= now) {
            let pending = std::mem::take(&mut self.sent_pending);
            for (at, message) in pending {
                if at <= now {
                    self.sent.push(message);
                } else {
                    self.sent_pending.push((at, message));
                }
            }
        }
    }

    /// Sent Items as a client sees it now.
    pub(crate) fn sent_now(&mut self) -> &[StoredMessage] {
        self.file_due(std::time::Instant::now());
        &self.sent
    }
}

/// Every mailbox plus the external sink.
#[derive(Debug, Default)]
pub(crate) struct MailStore {
    pub(crate) mailboxes: HashMap<String, Folders>,
    pub(crate) external: Vec<StoredMessage>,
}

/// A new Graph-style item id.
pub(crate) fn new_item_id() -> String {
    crate::tokens::random_token("AAMkAGI2", 66)
}

impl MailStore {
    /// The folders of `upn` (lower-cased key), created on first use.
    pub(crate) fn folders(&mut self, upn: &str) -> &mut Folders {
        self.mailboxes.entry(upn.to_ascii_lowercase()).or_default()
    }

    /// Delivers `message` (with its Bcc list) from the mailbox `owner`: a copy to each distinct
    /// recipient's Inbox (Bcc hidden), external recipients to the sink, unknown internal
    /// addresses bounce to the owner's Inbox as a non-delivery report, and optionally a copy
    /// (with Bcc) in the owner's Sent Items. Returns how many recipient copies were made.
    pub(crate) fn deliver(
        &mut self,
        directory: &Directory,
        message: &StoredMessage,
        owner: &str,
        save_to_sent_items: bool,
        sent_items_delay: std::time::Duration,
        now: u64,
    ) -> usize {
        let received = crate::time::iso8601(now);
        let mut seen: Vec<String> = Vec::new();
        let mut delivered = 0;
        let all = message
            .to_recipients
            .iter()
            .chain(&message.cc_recipients)
            .chain(&message.bcc_recipients);
        for recipient in all {
            let address = recipient.address().to_ascii_lowercase();
            if seen.contains(&address) {
                continue;
            }
            seen.push(address.clone());
            let mut copy = message.clone();
            copy.id = new_item_id();
            copy.bcc_recipients.clear();
            copy.single_value_extended_properties.clear();
            copy.received_date_time = received.clone();
            copy.delivered_to = Some(address.clone());
            if !Directory::is_internal_domain(&address) {
                self.external.push(copy);
                delivered += 1;
            } else if let Some(mailbox) = directory.mailbox(&address) {
                self.folders(mailbox.upn).inbox.push(copy);
                delivered += 1;
            } else {
                let ndr = non_delivery_report(message, &address, owner, &received);
                self.folders(owner).inbox.push(ndr);
            }
        }
        if save_to_sent_items {
            let mut copy = message.clone();
            copy.id = new_item_id();
            let folders = self.folders(owner);
            if sent_items_delay.is_zero() {
                folders.sent.push(copy);
            } else {
                folders
                    .sent_pending
                    .push((std::time::Instant::now() + sent_items_delay, copy));
            }
        }
        delivered
    }
}

fn non_delivery_report(
    message: &StoredMessage,
    address: &str,
    owner: &str,
    received: &str,
) -> StoredMessage {
    let postmaster = format!("postmaster@{}", crate::seed::TENANT_DOMAIN);
    StoredMessage {
        id: new_item_id(),
        internet_message_id: format!("<{}@{}>", uuid::Uuid::new_v4(), crate::seed::TENANT_DOMAIN),
        subject: format!("Undeliverable: {}", message.subject),
        body: ItemBody {
            content_type: "text".into(),
            content: format!(
                "Your message to {address} couldn't be delivered.\n{address} wasn't found at {}.\n\
                 Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'",
                crate::seed::TENANT_DOMAIN
            ),
        },
        from: Some(Recipient::new(
            postmaster.clone(),
            Some("Microsoft Outlook".into()),
        )),
        sender: Some(Recipient::new(postmaster, Some("Microsoft Outlook".into()))),
        to_recipients: vec![Recipient::new(owner, None)],
        sent_date_time: received.to_string(),
        received_date_time: received.to_string(),
        delivered_to: Some(owner.to_ascii_lowercase()),
        ..empty_message()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed;

    fn message() -> StoredMessage {
        StoredMessage {
            id: "d".into(),
            internet_message_id: "<m@x>".into(),
            subject: "Hi".into(),
            from: Some(Recipient::new(seed::USER_UPN, None)),
            sender: Some(Recipient::new(seed::USER_UPN, None)),
            to_recipients: vec![Recipient::new(seed::RECIPIENT_UPN, None)],
            cc_recipients: vec![Recipient::new(seed::EXTERNAL_RECIPIENT, None)],
            bcc_recipients: vec![
                Recipient::new(seed::SHARED_MAILBOX.to_uppercase(), None),
                Recipient::new("ghost@contoso.onmicrosoft.com", None),
            ],
            ..empty_message()
        }
    }

    #[test]
    fn delivers_hides_bcc_bounces_unknown_and_saves() {
        let dir = Directory::seed();
        let mut store = MailStore::default();
        let delivered = store.deliver(
            &dir,
            &message(),
            seed::USER_UPN,
            true,
            std::time::Duration::ZERO,
            0,
        );
        assert_eq!(delivered, 3);
        let lynne = &store.folders(seed::RECIPIENT_UPN).inbox;
        assert_eq!(lynne.len(), 1);
        assert!(lynne[0].bcc_recipients.is_empty());
        assert_eq!(store.folders(seed::SHARED_MAILBOX).inbox.len(), 1);
        assert_eq!(store.external.len(), 1);
        assert_eq!(
            store.external[0].delivered_to.as_deref(),
            Some(seed::EXTERNAL_RECIPIENT)
        );
        let alex = store.folders(seed::USER_UPN);
        assert_eq!(alex.sent.len(), 1);
        assert_eq!(alex.sent[0].bcc_recipients.len(), 2);
        assert_eq!(alex.inbox.len(), 1, "the unknown internal address bounced");
        assert!(alex.inbox[0].subject.starts_with("Undeliverable: "));
    }
}
