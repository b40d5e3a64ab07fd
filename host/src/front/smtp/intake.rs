//! What the relay's backend does with a message the session accepted, before the delivery
//! engine records it: give it an email ID and a `Message-ID` (`<{id}@mailhost>` when the
//! client set none), read the host's structured view of it (the envelope decides the
//! recipients: To and Cc as the headers place them, every other envelope recipient as Bcc),
//! and spool it durably in the email's spool folder (`spool/<id>/message.eml` plus
//! `envelope.json` for DSNs; each written to a temporary file, fsync'd, renamed, the folders
//! fsync'd) so the record never points at bytes that could still be lost.

use std::path::{Path, PathBuf};

use mail_parser::{Address, MessageParser};
use mailhost_plugin_api::abi_stable::std_types::RVec;
use mailhost_plugin_api::{Header, Mailbox, Message};
use serde::{Deserialize, Serialize};

use super::envelope::{DsnReturn, Envelope, Identity, Recipient};
use crate::config::files::{self, FileError};

/// A relayed message made ready for the engine.
#[derive(Debug, Clone)]
pub struct Intake {
    /// The new email's ID.
    pub email_id: String,
    /// The `Message-ID` it carries (with angle brackets).
    pub message_id: String,
    /// The message as it is spooled and sent: the client's bytes, with a `Message-ID` header
    /// first when it had none.
    pub mime: Vec<u8>,
    /// The host's structured view (`MimeSendRequest.request.message`): id, From, recipients,
    /// Reply-To, subject, body and the `Message-ID` header; no attachments (a provider that
    /// sends MIME reads them from the message itself).
    pub message: Message,
    /// Who sent it.
    pub staff: String,
    /// The envelope (kept for the DSN).
    pub envelope: Envelope,
}

/// The envelope file spooled beside the message, read again when a DSN is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpooledEnvelope {
    /// The staff member who sent it.
    pub staff: String,
    /// When the relay accepted it (seconds since the epoch).
    pub arrival_unix: i64,
    /// The envelope.
    pub envelope: Envelope,
}

/// The paths of a spooled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    /// `message.eml` in the email's folder.
    pub mime_path: PathBuf,
    /// `envelope.json` beside it.
    pub envelope_path: PathBuf,
    /// The size of the message file.
    pub mime_size: u64,
}

fn mailboxes(list: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(list) = list else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|a| {
            let address = a.address()?.trim();
            let name: String = a
                .name()
                .unwrap_or_default()
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            (!address.is_empty()).then(|| Mailbox::new(address, name.trim()))
        })
        .collect()
}

fn listed(list: &[Mailbox], address: &str) -> bool {
    list.iter()
        .any(|m| m.address.as_str().eq_ignore_ascii_case(address))
}

/// Prepares `raw` (what the session accepted) from `identity` with `envelope`.
pub fn prepare(identity: &Identity, envelope: &Envelope, raw: &[u8]) -> Intake {
    let email_id = uuid::Uuid::new_v4().to_string();
    // mail-parser 0.11.9 can panic on some malformed multiparts (found by fuzzing): the
    // message is then recorded with the envelope's view only.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw))
        .ok()
        .flatten();
    let existing = parsed
        .as_ref()
        .and_then(|m| m.message_id())
        .map(|id| format!("<{}>", id.trim_matches(['<', '>'])))
        .filter(|id| id.len() > 2 && !id.chars().any(char::is_control));
    let (message_id, mime) = match existing {
        Some(id) => (id, raw.to_vec()),
        None => {
            let id = format!("<{email_id}@mailhost>");
            let mut mime = format!("Message-ID: {id}\r\n").into_bytes();
            mime.extend_from_slice(raw);
            (id, mime)
        }
    };
    let mut message = Message {
        id: email_id.as_str().into(),
        headers: RVec::from(vec![Header {
            name: "Message-ID".into(),
            value: message_id.as_str().into(),
        }]),
        ..Message::default()
    };
    if let Some(m) = &parsed {
        if let Some(from) = mailboxes(m.from()).into_iter().next() {
            message.from = from;
        }
        message.reply_to = RVec::from(mailboxes(m.reply_to()));
        message.subject = m
            .subject()
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .into();
        message.html = m.html_bodies().any(|p| p.is_text_html());
        let body = if message.html {
            m.body_html(0)
        } else {
            m.body_text(0)
        };
        message.body = body.map(|b| b.into_owned()).unwrap_or_default().into();
        let in_envelope = |mb: &Mailbox| {
            envelope
                .recipients
                .iter()
                .any(|r| r.address.eq_ignore_ascii_case(&mb.address))
        };
        let to: Vec<Mailbox> = mailboxes(m.to()).into_iter().filter(in_envelope).collect();
        let cc: Vec<Mailbox> = mailboxes(m.cc())
            .into_iter()
            .filter(|mb| in_envelope(mb) && !listed(&to, &mb.address))
            .collect();
        message.to = RVec::from(to);
        message.cc = RVec::from(cc);
    }
    if message.from.address.is_empty() {
        message.from = Mailbox::new(&envelope.from, "");
    }
    let placed: Vec<Mailbox> = message
        .to
        .iter()
        .chain(message.cc.iter())
        .cloned()
        .collect();
    let mut bcc: Vec<Mailbox> = Vec::new();
    for r in &envelope.recipients {
        if !listed(&placed, &r.address) && !listed(&bcc, &r.address) {
            bcc.push(Mailbox::new(&r.address, ""));
        }
    }
    message.bcc = RVec::from(bcc);
    Intake {
        email_id,
        message_id,
        mime,
        message,
        staff: identity.staff.clone(),
        envelope: envelope.clone(),
    }
}

/// The message file's name in an email's spool folder.
pub const MESSAGE_FILE: &str = "message.eml";
/// The envelope file's name beside it.
pub const ENVELOPE_FILE: &str = "envelope.json";

/// Writes the message and, when it has DSN parameters, its envelope into the email's `folder`
/// (created 0700, and its parent, the spool, too), each file fsync'd, then the folder. Without
/// DSN parameters the DSN reads the envelope from the record ([`envelope_of_record`]). The folder is new and nothing refers to
/// it until the email is committed, so the files are written in place (no temporary file and
/// rename). The spool's own entry for the new folder is made durable by [`sync_spool`], once
/// for a group of messages: call it before the commit.
///
/// # Errors
/// A file could not be written or synced, or the folder exists already.
pub fn spool(folder: &Path, intake: &Intake, arrival_unix: i64) -> Result<Spooled, FileError> {
    if let Some(parent) = folder.parent()
        && !parent.exists()
    {
        std::fs::create_dir_all(parent).map_err(|e| FileError::new("create", parent, e))?;
        files::chmod(parent, 0o700).map_err(|e| FileError::new("chmod", parent, e))?;
    }
    private_dir(folder)?;
    let mime_path = folder.join(MESSAGE_FILE);
    let envelope_path = folder.join(ENVELOPE_FILE);
    let sidecar = SpooledEnvelope {
        staff: intake.staff.clone(),
        arrival_unix,
        envelope: intake.envelope.clone(),
    };
    // An envelope with no DSN parameters is what the record says already (sender, recipients,
    // staff member, arrival): no file for it, one inode and one fsync less per message.
    if !plain(&intake.envelope) {
        let json = serde_json::to_vec_pretty(&sidecar).unwrap_or_default();
        write_new(&envelope_path, &json)?;
    }
    write_new(&mime_path, &intake.mime)?;
    sync_dir(folder)?;
    Ok(Spooled {
        mime_path,
        envelope_path,
        mime_size: intake.mime.len() as u64,
    })
}

/// Makes durable the spool's entries for the email folders [`spool`] created in it: `spool`
/// is the folder holding them.
///
/// # Errors
/// The folder cannot be opened or synced.
pub fn sync_spool(spool: &Path) -> Result<(), FileError> {
    sync_dir(spool)
}

fn private_dir(dir: &Path) -> Result<(), FileError> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| FileError::new("create the spool folder", dir, e))?;
    // The umask may have narrowed the mode further; never wider than 0700.
    files::chmod(dir, 0o700).map_err(|e| FileError::new("chmod", dir, e))
}

/// Creates `path` (it must not exist), 0600, with `data`, fsync'd.
fn write_new(path: &Path, data: &[u8]) -> Result<(), FileError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| FileError::new("create", path, e))?;
    file.write_all(data)
        .and_then(|()| file.sync_all())
        .map_err(|e| FileError::new("write", path, e))
}

fn sync_dir(dir: &Path) -> Result<(), FileError> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| FileError::new("sync the folder", dir, e))
    }
    #[cfg(not(unix))]
    {
        // Folders cannot be opened for syncing here; the files themselves were synced.
        let _ = dir;
        Ok(())
    }
}

/// Whether `envelope` has no DSN parameters: no `RET`, no `ENVID`, and every recipient with
/// the default `NOTIFY` (failure only) and no `ORCPT`.
pub fn plain(envelope: &Envelope) -> bool {
    envelope.ret == DsnReturn::Unspecified
        && envelope.envid.is_none()
        && envelope.recipients.iter().all(|r| {
            !r.notify_never
                && r.notify_failure
                && !r.notify_success
                && !r.notify_delay
                && r.orcpt.is_none()
        })
}

/// The spooled envelope of a message spooled without its envelope file (a [`plain`] one),
/// rebuilt from what its record holds: `staff`, the arrival (`arrival_unix`), the envelope
/// sender and recipients.
pub fn envelope_of_record(
    staff: &str,
    arrival_unix: i64,
    from: &str,
    recipients: &[String],
) -> SpooledEnvelope {
    SpooledEnvelope {
        staff: staff.to_string(),
        arrival_unix,
        envelope: Envelope {
            from: from.to_string(),
            recipients: recipients
                .iter()
                .map(|address| Recipient {
                    address: address.clone(),
                    notify_never: false,
                    notify_failure: true,
                    notify_success: false,
                    notify_delay: false,
                    orcpt: None,
                })
                .collect(),
            eight_bit_mime: false,
            smtputf8: false,
            declared_size: 0,
            ret: DsnReturn::Unspecified,
            envid: None,
        },
    }
}

/// The envelope of a relayed email for its DSN: the file at `path` when one was spooled, else
/// (a [`plain`] envelope) `recorded`, the one its record holds ([`envelope_of_record`]).
///
/// # Errors
/// The file is there but cannot be read or parsed.
pub fn envelope_at(path: &Path, recorded: &SpooledEnvelope) -> Result<SpooledEnvelope, String> {
    if path.exists() {
        read_envelope(path)
    } else {
        Ok(recorded.clone())
    }
}

/// Reads a spooled envelope back (for the DSN).
///
/// # Errors
/// The file is missing or does not parse.
pub fn read_envelope(path: &Path) -> Result<SpooledEnvelope, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{} does not parse: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::smtp::envelope::{DsnReturn, Recipient};

    fn rcpt(a: &str) -> Recipient {
        Recipient {
            address: a.into(),
            notify_never: false,
            notify_failure: true,
            notify_success: false,
            notify_delay: false,
            orcpt: None,
        }
    }

    fn envelope(rcpts: &[&str]) -> Envelope {
        Envelope {
            from: "adele@contoso.com".into(),
            recipients: rcpts.iter().map(|r| rcpt(r)).collect(),
            eight_bit_mime: true,
            smtputf8: false,
            declared_size: 0,
            ret: DsnReturn::Unspecified,
            envid: None,
        }
    }

    fn adele() -> Identity {
        Identity {
            staff: "adele".into(),
            addresses: vec!["adele@contoso.com".into()],
            max_recipients: 10,
        }
    }

    #[test]
    fn message_id_added_and_envelope_decides() {
        let raw = b"From: =?utf-8?q?Ad=C3=A8le?= <adele@contoso.com>\r\nTo: Bob <bob@x.com>, out@x.com\r\nCc: carol@x.com\r\nSubject: hi\r\n\r\nbody\r\n";
        let i = prepare(
            &adele(),
            &envelope(&["bob@x.com", "carol@x.com", "hidden@y.com"]),
            raw,
        );
        assert_eq!(i.message_id, format!("<{}@mailhost>", i.email_id));
        assert!(
            i.mime
                .starts_with(format!("Message-ID: <{}@mailhost>\r\nFrom:", i.email_id).as_bytes())
        );
        assert_eq!(i.message.from.name.as_str(), "Ad\u{e8}le");
        let to: Vec<&str> = i.message.to.iter().map(|m| m.address.as_str()).collect();
        assert_eq!(to, ["bob@x.com"]);
        assert_eq!(i.message.cc[0].address.as_str(), "carol@x.com");
        assert_eq!(i.message.bcc[0].address.as_str(), "hidden@y.com");
        assert_eq!(i.message.headers[0].value.as_str(), i.message_id);
        assert_eq!(i.message.body.as_str(), "body\r\n");
    }

    #[test]
    fn a_client_message_id_is_kept() {
        let raw =
            b"From: adele@contoso.com\r\nMessage-ID: <mine@client>\r\nTo: b@x.com\r\n\r\nx\r\n";
        let i = prepare(&adele(), &envelope(&["b@x.com"]), raw);
        assert_eq!(i.message_id, "<mine@client>");
        assert_eq!(i.mime, raw);
    }

    #[test]
    fn spooled_privately_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("spool");
        let i = prepare(
            &adele(),
            &envelope(&["b@x.com"]),
            b"From: adele@contoso.com\r\n\r\nx\r\n",
        );
        let s = spool(&spool_dir.join(&i.email_id), &i, 1_700_000_000).unwrap();
        assert_eq!(s.mime_path, spool_dir.join(&i.email_id).join(MESSAGE_FILE));
        assert_eq!(std::fs::read(&s.mime_path).unwrap(), i.mime);
        let mode = |p: &Path| files::mode_of(&std::fs::metadata(p).unwrap());
        assert_eq!(mode(&spool_dir), 0o700);
        assert_eq!(mode(&s.mime_path), 0o600);
        // A plain envelope is the record's: no file for it.
        assert!(!s.envelope_path.exists());
        assert_eq!(fs_names(&spool_dir.join(&i.email_id)), [MESSAGE_FILE]);
        // With DSN parameters it is spooled beside the message.
        let mut e = envelope(&["b@x.com"]);
        e.ret = DsnReturn::Full;
        let i = prepare(&adele(), &e, b"From: adele@contoso.com\r\n\r\nx\r\n");
        let s = spool(&spool_dir.join(&i.email_id), &i, 1_700_000_000).unwrap();
        assert_eq!(mode(&s.envelope_path), 0o600);
        let back = read_envelope(&s.envelope_path).unwrap();
        assert_eq!(back.envelope, i.envelope);
        assert_eq!(back.arrival_unix, 1_700_000_000);
        // A folder that exists already is refused (an email id is never reused).
        assert!(spool(&spool_dir.join(&i.email_id), &i, 0).is_err());
    }

    fn fs_names(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn dsn_parameters_make_an_envelope_not_plain() {
        let mut e = envelope(&["b@x.com"]);
        assert!(plain(&e));
        let rebuilt = envelope_of_record("adele", 5, &e.from, &e.addresses());
        assert_eq!(rebuilt.envelope.recipients, e.recipients);
        e.recipients[0].notify_success = true;
        assert!(!plain(&e));
        let mut e = envelope(&["b@x.com"]);
        e.envid = Some("x".into());
        assert!(!plain(&e));
        let mut e = envelope(&["b@x.com"]);
        e.recipients[0].orcpt = Some("rfc822;b@x.com".into());
        assert!(!plain(&e));
    }
}
