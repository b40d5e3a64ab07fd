//! What a session collects: who is sending (an [`Identity`]) and the [`Envelope`] of one
//! message, with the DSN parameters of RFC 3461.

use serde::{Deserialize, Serialize};

/// The staff member a session sends as, with what they may use as a From address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The staff ID.
    pub staff: String,
    /// The addresses they may send from: their own and their `relay_from` list.
    pub addresses: Vec<String>,
    /// The most recipients one message may have (the relay's and the provider's limit).
    pub max_recipients: usize,
}

impl Identity {
    /// Whether `address` is one of theirs (case-insensitive, as mailbox providers treat it).
    pub fn may_send_as(&self, address: &str) -> bool {
        let address = address.trim();
        self.addresses
            .iter()
            .any(|a| a.trim().eq_ignore_ascii_case(address))
    }
}

/// What the client asked for with `RET=` on MAIL (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DsnReturn {
    /// Not given.
    #[default]
    Unspecified,
    /// `RET=FULL`: the whole message in a DSN.
    Full,
    /// `RET=HDRS`: only its headers.
    Headers,
}

/// One envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The address from `RCPT TO`.
    pub address: String,
    /// `NOTIFY=NEVER`.
    pub notify_never: bool,
    /// `NOTIFY=` includes FAILURE, or NOTIFY was not given (the default is failure only).
    pub notify_failure: bool,
    /// `NOTIFY=` includes SUCCESS.
    pub notify_success: bool,
    /// `NOTIFY=` includes DELAY.
    pub notify_delay: bool,
    /// `ORCPT=` as given (`rfc822;addr`).
    pub orcpt: Option<String>,
}

/// The envelope of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// `MAIL FROM`.
    pub from: String,
    /// `RCPT TO`, in order, without duplicates.
    pub recipients: Vec<Recipient>,
    /// `BODY=8BITMIME` was given.
    pub eight_bit_mime: bool,
    /// `SMTPUTF8` was given.
    pub smtputf8: bool,
    /// `SIZE=` as declared (0: not given).
    pub declared_size: u64,
    /// `RET=`.
    pub ret: DsnReturn,
    /// `ENVID=`.
    pub envid: Option<String>,
}

impl Envelope {
    /// The recipient addresses.
    pub fn addresses(&self) -> Vec<String> {
        self.recipients.iter().map(|r| r.address.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_match_case_insensitively() {
        let id = Identity {
            staff: "adele".into(),
            addresses: vec!["Adele@Contoso.com".into(), "sales@contoso.com".into()],
            max_recipients: 10,
        };
        assert!(id.may_send_as("adele@contoso.com"));
        assert!(id.may_send_as("SALES@contoso.com"));
        assert!(!id.may_send_as("ceo@contoso.com"));
    }
}
