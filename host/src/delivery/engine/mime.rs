//! Whole RFC 5322 messages into the engine, for the doors that receive them (sendmail, the
//! SMTP relay): [`Engine::submit_mime`] checks the envelope and the message, spools the
//! message and its parts (see [`crate::delivery::mime`]) and records the email, all before
//! any provider code runs.

use std::time::SystemTime;

use mailhost_plugin_api::{Mailbox, is_plausible_address};

use super::Engine;
use crate::config::time::unix_seconds;
use crate::delivery::compose;
use crate::delivery::mime::{self, Additions, Envelope};
use crate::delivery::outbox::{Door, EmailRecord, MimeSource, NewEmail};
use crate::error::Error;

/// A whole message as a door hands it over.
#[derive(Debug, Clone)]
pub struct MimeSubmission {
    /// The sending staff member.
    pub staff_id: String,
    /// The envelope sender (`-f`, `MAIL FROM`); may be empty.
    pub envelope_from: String,
    /// The envelope recipients (Bcc included): they decide who receives.
    pub recipients: Vec<String>,
    /// The message, with CRLF or LF line ends (the spool keeps CRLF).
    pub mime: Vec<u8>,
    /// The door it came in by.
    pub door: Door,
    /// The From to add when the message has none (sendmail: `-F`/`-f` or the staff member;
    /// the relay, which requires a From, passes `None`).
    pub default_from: Option<Mailbox>,
}

impl Engine {
    /// Checks and records a whole message as `queued`: the staff member is known, every
    /// envelope recipient is an address (and there is one), their number is within the
    /// provider's per-message limit, the message has no header injection; then the message
    /// (CRLF, no Bcc field, a `Message-ID` added when missing) and each of its parts are written
    /// to `HOME/spool/<id>/` and fsync'd, and the email is committed with its envelope. Runs no
    /// provider code.
    ///
    /// # Errors
    /// Exit-2 errors (unknown staff member, bad envelope, [`Error::Mime`] for a refused
    /// message) with nothing recorded; spool and store errors (the spool folder is removed).
    pub fn submit_mime(&self, submission: &MimeSubmission) -> Result<EmailRecord, Error> {
        let (sender, provider) = self.sender_of(&submission.staff_id)?;
        if submission.recipients.is_empty() {
            return Err(Error::Usage(
                "the message has no recipients: name at least one".into(),
            ));
        }
        for address in std::iter::once(&submission.envelope_from)
            .filter(|a| !a.is_empty())
            .chain(&submission.recipients)
        {
            if !is_plausible_address(address) {
                return Err(Error::Usage(format!(
                    "envelope address '{}' is not valid: use user@example.com",
                    address.escape_debug()
                )));
            }
        }
        self.check_recipients(&provider, submission.recipients.len())?;
        let id = compose::new_email_id();
        let additions = Additions {
            id: &id,
            from: submission.default_from.as_ref(),
            now_unix: unix_seconds(SystemTime::now()),
        };
        let envelope = Envelope {
            from: submission.envelope_from.clone(),
            recipients: submission.recipients.clone(),
        };
        let folder = self.spool().folder(&id);
        let accepted = match mime::accept(&folder, &submission.mime, &additions, &envelope, &sender)
        {
            Ok(accepted) => accepted,
            Err(error) => {
                self.spool().remove(&id);
                return Err(error.into());
            }
        };
        let mut email = NewEmail::new(
            &submission.staff_id,
            &provider,
            accepted.message,
            submission.door,
        );
        email.message_id = accepted.message_id;
        email.mime = Some(MimeSource {
            path: accepted.spooled.mime_path.to_string_lossy().into_owned(),
            envelope_from: submission.envelope_from.clone(),
            recipients: submission.recipients.clone(),
        });
        self.record(email)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::home::Home;
    use crate::delivery::engine::EngineOptions;
    use crate::delivery::outbox::{Outbox, Status};

    fn engine(dir: &std::path::Path) -> Engine {
        let home = Home::open(dir).unwrap();
        std::fs::write(
            home.staff_path(),
            "[staff.adele]\nprovider = \"pickup-dir\"\nemail = \"adele@contoso.com\"\nname = \"Adele Vance\"\n",
        )
        .unwrap();
        let outbox = Arc::new(Outbox::open(home.mail_db_path()).unwrap());
        Engine::new(&home, outbox, EngineOptions::default()).unwrap()
    }

    fn submission(mime: &[u8]) -> MimeSubmission {
        MimeSubmission {
            staff_id: "adele".into(),
            envelope_from: "adele@contoso.com".into(),
            recipients: vec!["alex@contoso.com".into(), "audit@contoso.com".into()],
            mime: mime.to_vec(),
            door: Door::Sendmail,
            default_from: None,
        }
    }

    #[test]
    fn a_whole_message_is_spooled_and_recorded_queued() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let record = engine
            .submit_mime(&submission(
                b"From: adele@contoso.com\nTo: alex@contoso.com\nBcc: audit@contoso.com\nSubject: s\n\nb\n",
            ))
            .unwrap();
        assert_eq!(record.status, Status::Queued);
        assert_eq!(record.message_id, format!("<{}@mailhost>", record.id));
        assert_eq!(record.recipient_count, 2);
        let mime = record.mime.as_ref().unwrap();
        assert_eq!(mime.recipients, ["alex@contoso.com", "audit@contoso.com"]);
        let spooled = std::fs::read_to_string(&mime.path).unwrap();
        assert!(
            spooled
                .starts_with("From: adele@contoso.com\r\nTo: alex@contoso.com\r\nSubject: s\r\n")
        );
        assert!(!spooled.contains("Bcc"), "{spooled}");
        assert!(spooled.contains(&format!("Message-ID: <{}@mailhost>\r\n", record.id)));
        assert_eq!(
            record.bcc.len(),
            1,
            "the envelope's extra recipient is a Bcc recipient"
        );
        // The client's own Message-ID is the record's.
        let record = engine
            .submit_mime(&submission(
                b"Message-ID: <abc@client>\nFrom: adele@contoso.com\n\nb\n",
            ))
            .unwrap();
        assert_eq!(record.message_id, "<abc@client>");
    }

    #[test]
    fn a_refused_message_or_envelope_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let injected = submission(b"From: adele@contoso.com\nSubject: a\rBcc: eve@x.com\n\nb\n");
        assert!(matches!(
            engine.submit_mime(&injected),
            Err(Error::Mime(mime::MimeError::BareCr { line: 2 }))
        ));
        let mut bad_rcpt = submission(b"Subject: s\n\nb\n");
        bad_rcpt.recipients = vec!["alex@contoso.com\r\nRCPT TO:<eve@x.com>".into()];
        assert!(matches!(
            engine.submit_mime(&bad_rcpt),
            Err(Error::Usage(_))
        ));
        let mut none = submission(b"Subject: s\n\nb\n");
        none.recipients.clear();
        assert!(matches!(engine.submit_mime(&none), Err(Error::Usage(_))));
        let mut stranger = submission(b"Subject: s\n\nb\n");
        stranger.staff_id = "eve".into();
        assert!(matches!(
            engine.submit_mime(&stranger),
            Err(Error::Staff(_))
        ));
        assert!(engine.outbox().list(None, None).unwrap().is_empty());
        let spool = dir.path().join("spool");
        assert!(!spool.exists() || std::fs::read_dir(&spool).unwrap().next().is_none());
    }
}
