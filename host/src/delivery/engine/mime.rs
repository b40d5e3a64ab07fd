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
use crate::delivery::outbox::{Door, EmailRecord, GroupOutcome, MimeSource, NewEmail, OutboxError};
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

/// One whole message already written to the spool, for [`Engine::record_mime_group`].
#[derive(Debug, Clone)]
pub struct MimeRecord {
    /// The sending staff member.
    pub staff_id: String,
    /// The host's structured reading of the message (its id is the email's).
    pub message: mailhost_plugin_api::Message,
    /// The spooled message and its envelope.
    pub mime: MimeSource,
    /// The door it came in by.
    pub door: Door,
}

impl Engine {
    /// [`Engine::record_mime`] for several messages in one durable commit (one fsync for the
    /// group; the SMTP relay's group commit across its sessions). Each message is checked as
    /// `record_mime` checks it, and gets its own result, in order: a refused one is left out
    /// and the others are still recorded. All recorded ones are `queued` on disk when this
    /// returns. The spool folder of each message not recorded is removed (but for an id that
    /// is taken already: that folder is the stored email's).
    pub fn record_mime_group(&self, records: Vec<MimeRecord>) -> Vec<Result<(), Error>> {
        let mut results: Vec<Option<Result<(), Error>>> = Vec::with_capacity(records.len());
        let mut emails: Vec<NewEmail> = Vec::with_capacity(records.len());
        let mut slots: Vec<usize> = Vec::with_capacity(records.len());
        for record in records {
            let checked = self.sender_of(&record.staff_id).and_then(|(_, provider)| {
                self.check_recipients(&provider, record.mime.recipients.len())
                    .map(|()| provider)
            });
            match checked {
                Ok(provider) => {
                    let mut email =
                        NewEmail::new(&record.staff_id, &provider, record.message, record.door);
                    email.mime = Some(record.mime);
                    slots.push(results.len());
                    results.push(None);
                    emails.push(email);
                }
                Err(error) => {
                    self.spool().remove(record.message.id.as_str());
                    results.push(Some(Err(error)));
                }
            }
        }
        if !emails.is_empty() {
            match self.outbox().accept_group(&emails) {
                Ok(outcomes) => {
                    for ((slot, email), outcome) in slots.iter().zip(&emails).zip(outcomes) {
                        results[*slot] = Some(match outcome {
                            GroupOutcome::Accepted => Ok(()),
                            GroupOutcome::AlreadyAccepted { existing } => {
                                self.spool().remove(email.message.id.as_str());
                                Err(Error::Usage(format!(
                                    "the message was already recorded as email {existing}"
                                )))
                            }
                            // The folder is the stored email's: it stays.
                            GroupOutcome::DuplicateId => Err(OutboxError::DuplicateId {
                                id: email.message.id.to_string(),
                            }
                            .into()),
                        });
                    }
                    self.wake();
                }
                Err(error) => {
                    // Nothing of the group was stored.
                    let why = format!("cannot record the email in mail.db: {error}");
                    for (slot, email) in slots.iter().zip(&emails) {
                        self.spool().remove(email.message.id.as_str());
                        results[*slot] = Some(Err(Error::Failed(why.clone())));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(Error::Failed(
                        "the email was not recorded (no answer from mail.db); send it again".into(),
                    ))
                })
            })
            .collect()
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

    #[test]
    fn a_group_is_recorded_in_one_commit_and_a_refused_member_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let member = |id: &str, staff: &str| {
            let folder = engine.spool().folder(id);
            std::fs::create_dir_all(&folder).unwrap();
            let path = folder.join("message.eml");
            std::fs::write(&path, "From: adele@contoso.com\r\n\r\nb\r\n").unwrap();
            MimeRecord {
                staff_id: staff.into(),
                message: mailhost_plugin_api::Message {
                    id: id.into(),
                    from: Mailbox::new("adele@contoso.com", ""),
                    to: vec![Mailbox::new("alex@contoso.com", "")].into(),
                    ..mailhost_plugin_api::Message::default()
                },
                mime: MimeSource {
                    path: path.to_string_lossy().into_owned(),
                    envelope_from: "adele@contoso.com".into(),
                    recipients: vec!["alex@contoso.com".into()],
                },
                door: Door::Smtp,
            }
        };
        let results = engine.record_mime_group(vec![
            member("e1", "adele"),
            member("e2", "eve"),
            member("e3", "adele"),
        ]);
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(matches!(results[1], Err(Error::Staff(_))), "{results:?}");
        let mut ids: Vec<String> = engine
            .outbox()
            .list(None, None)
            .unwrap()
            .into_iter()
            .map(|r| {
                assert_eq!(r.status, Status::Queued);
                assert_eq!(r.door, Door::Smtp);
                r.id
            })
            .collect();
        ids.sort();
        assert_eq!(ids, ["e1", "e3"]);
        assert!(
            !engine.spool().folder("e2").exists(),
            "the refused one's folder goes"
        );
        assert!(engine.spool().folder("e1").join("message.eml").exists());
        // An id already taken: that member is refused, nothing else changes.
        let again = engine.record_mime_group(vec![member("e1", "adele")]);
        assert!(again[0].is_err(), "{again:?}");
        assert_eq!(engine.outbox().list(None, None).unwrap().len(), 2);
        assert!(engine.spool().folder("e1").join("message.eml").exists());
    }
}
