//! Delivery status notifications (RFC 3464, `multipart/report; report-type=delivery-status`)
//! for emails the relay accepted that finally failed. The DSN goes to the envelope sender
//! through the same staff member's provider, so it lands in their own mailbox; it honours the
//! client's DSN parameters (NOTIFY, ORCPT, ENVID, RET).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mailhost_plugin_api::ErrorKind;

use super::envelope::{DsnReturn, Envelope};

/// What a DSN reports.
#[derive(Debug, Clone)]
pub struct DsnInput<'a> {
    /// The relay's host name (`Reporting-MTA`).
    pub reporting_host: &'a str,
    /// The address the DSN is sent from (the staff member's own: the provider sends as them).
    pub from_address: &'a str,
    /// The envelope of the failed email; the DSN goes to `envelope.from`.
    pub envelope: &'a Envelope,
    /// The failed message as the client sent it.
    pub original: &'a [u8],
    /// When the relay accepted it (seconds since the epoch).
    pub arrival_unix: i64,
    /// The provider's error class.
    pub kind: ErrorKind,
    /// The provider's error message (one line).
    pub diagnostic: &'a str,
    /// The mailhost email ID.
    pub email_id: &'a str,
}

/// The RFC 3463 status for a final failure of `kind`.
pub fn status_for(kind: ErrorKind) -> &'static str {
    match kind {
        k if k == ErrorKind::RECIPIENT => "5.1.1",
        k if k == ErrorKind::TOO_LARGE => "5.3.4",
        k if k == ErrorKind::PERMISSION => "5.7.1",
        k if k == ErrorKind::AUTHENTICATION => "5.7.0",
        k if k == ErrorKind::INVALID_MESSAGE => "5.6.0",
        k if k == ErrorKind::THROTTLED || k == ErrorKind::TRANSIENT => "4.4.7",
        _ => "5.0.0",
    }
}

/// RFC 5322 date of `unix` seconds.
fn date(unix: i64) -> String {
    let secs = u64::try_from(unix).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs)).replace(" GMT", " +0000")
}

fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// The header block of `message` (up to the blank line).
fn headers_of(message: &[u8]) -> &[u8] {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &message[..p + 2],
        None => message,
    }
}

/// The DSN message (CRLF line ends), or `None` when no one should get one: a null sender, or
/// every recipient asked for no failure notices (`NOTIFY=NEVER` or without FAILURE).
pub fn build(input: &DsnInput<'_>) -> Option<Vec<u8>> {
    let to = input.envelope.from.trim();
    if to.is_empty() {
        return None;
    }
    let failed: Vec<_> = input
        .envelope
        .recipients
        .iter()
        .filter(|r| !r.notify_never && r.notify_failure)
        .collect();
    if failed.is_empty() {
        return None;
    }
    let boundary = format!("mailhost-dsn-{}", uuid::Uuid::new_v4().simple());
    let status = status_for(input.kind);
    let diagnostic = one_line(input.diagnostic);
    let host = one_line(input.reporting_host);
    let subject_line = headers_of(input.original)
        .split(|&b| b == b'\n')
        .find(|l| l.len() > 8 && l[..8].eq_ignore_ascii_case(b"subject:"))
        .map(|l| one_line(&String::from_utf8_lossy(&l[8..])))
        .unwrap_or_default();
    let mut out = String::new();
    out.push_str(&format!(
        "From: Mail Delivery System <{}>\r\nTo: <{to}>\r\nSubject: Undelivered Mail Returned to Sender\r\nDate: {}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"{boundary}\"\r\n\r\n",
        one_line(input.from_address),
        date(crate::config::time::unix_seconds(SystemTime::now())),
    ));
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ));
    out.push_str(&format!(
        "This is the mailhost relay at {host}.\r\n\r\nYour message{} could not be delivered to:\r\n\r\n",
        if subject_line.is_empty() {
            String::new()
        } else {
            format!(" \"{subject_line}\"")
        }
    ));
    for r in &failed {
        out.push_str(&format!("  <{}>\r\n", one_line(&r.address)));
    }
    out.push_str(&format!(
        "\r\nReason: {diagnostic}\r\n\r\nmailhost email ID: {} (see `mailhost email show {}`).\r\n\r\n",
        one_line(input.email_id),
        one_line(input.email_id)
    ));
    out.push_str(&format!(
        "--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; {host}\r\n"
    ));
    if let Some(envid) = &input.envelope.envid {
        out.push_str(&format!("Original-Envelope-Id: {}\r\n", one_line(envid)));
    }
    out.push_str(&format!("Arrival-Date: {}\r\n", date(input.arrival_unix)));
    for r in &failed {
        out.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\n",
            one_line(&r.address)
        ));
        if let Some(orcpt) = &r.orcpt {
            out.push_str(&format!(
                "Original-Recipient: rfc822; {}\r\n",
                one_line(orcpt)
            ));
        }
        out.push_str(&format!(
            "Action: failed\r\nStatus: {status}\r\nDiagnostic-Code: X-mailhost; {diagnostic}\r\n"
        ));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    // RET=FULL returns the message when it is small; otherwise (and by default) its headers.
    let full = input.envelope.ret == DsnReturn::Full && input.original.len() <= 1024 * 1024;
    if full {
        bytes.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n").as_bytes(),
        );
        bytes.extend_from_slice(input.original);
        if !input.original.ends_with(b"\r\n") {
            bytes.extend_from_slice(b"\r\n");
        }
    } else {
        bytes.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n").as_bytes(),
        );
        bytes.extend_from_slice(headers_of(input.original));
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Some(bytes)
}

/// The DSN for the relayed email `email_id` whose message was spooled at `mime_path`, with its
/// envelope `spooled` (see [`super::intake::envelope_at`]), as a message and the envelope to
/// send it with (to the original envelope sender, `NOTIFY=NEVER` so a failing DSN never causes
/// another). The engine's final-failure hook records it like a relayed email of the same staff
/// member. `Ok(None)`: no DSN is wanted.
///
/// # Errors
/// The spooled message cannot be read.
pub fn for_failed_email(
    mime_path: &std::path::Path,
    spooled: &super::intake::SpooledEnvelope,
    from_address: &str,
    reporting_host: &str,
    kind: ErrorKind,
    diagnostic: &str,
    email_id: &str,
) -> Result<Option<(Vec<u8>, Envelope)>, String> {
    let original = std::fs::read(mime_path)
        .map_err(|e| format!("cannot read {}: {e}", mime_path.display()))?;
    let input = DsnInput {
        reporting_host,
        from_address,
        envelope: &spooled.envelope,
        original: &original,
        arrival_unix: spooled.arrival_unix,
        kind,
        diagnostic,
        email_id,
    };
    let Some(message) = build(&input) else {
        return Ok(None);
    };
    let envelope = Envelope {
        from: from_address.to_string(),
        recipients: vec![super::envelope::Recipient {
            address: spooled.envelope.from.clone(),
            notify_never: true,
            notify_failure: false,
            notify_success: false,
            notify_delay: false,
            orcpt: None,
        }],
        eight_bit_mime: true,
        smtputf8: false,
        declared_size: 0,
        ret: DsnReturn::Headers,
        envid: None,
    };
    Ok(Some((message, envelope)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::smtp::envelope::Recipient;

    fn envelope(notify_never: bool, ret: DsnReturn) -> Envelope {
        Envelope {
            from: "adele@contoso.com".into(),
            recipients: vec![Recipient {
                address: "bob@x.com".into(),
                notify_never,
                notify_failure: !notify_never,
                notify_success: false,
                notify_delay: false,
                orcpt: Some("bob@x.com".into()),
            }],
            eight_bit_mime: false,
            smtputf8: false,
            declared_size: 0,
            ret,
            envid: Some("env-1".into()),
        }
    }

    const ORIGINAL: &[u8] =
        b"From: adele@contoso.com\r\nTo: bob@x.com\r\nSubject: Invoice 7\r\n\r\nsecret body\r\n";

    fn input(envelope: &Envelope) -> DsnInput<'_> {
        DsnInput {
            reporting_host: "relay.test",
            from_address: "adele@contoso.com",
            envelope,
            original: ORIGINAL,
            arrival_unix: 1_700_000_000,
            kind: ErrorKind::RECIPIENT,
            diagnostic: "ErrorInvalidRecipients: bob@x.com\r\nBcc: injected",
            email_id: "E1",
        }
    }

    #[test]
    fn a_report_in_rfc3464_form() {
        let e = envelope(false, DsnReturn::Unspecified);
        let dsn = String::from_utf8(build(&input(&e)).unwrap()).unwrap();
        let parsed = mail_parser::MessageParser::default()
            .parse(dsn.as_bytes())
            .unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Undelivered Mail Returned to Sender")
        );
        assert!(dsn.contains("report-type=delivery-status"), "{dsn}");
        for needle in [
            "Reporting-MTA: dns; relay.test",
            "Original-Envelope-Id: env-1",
            "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000",
            "Final-Recipient: rfc822; bob@x.com",
            "Original-Recipient: rfc822; bob@x.com",
            "Action: failed",
            "Status: 5.1.1",
            "Diagnostic-Code: X-mailhost; ErrorInvalidRecipients: bob@x.com  Bcc: injected",
            "Content-Type: text/rfc822-headers",
            "Subject: Invoice 7",
            "\"Invoice 7\"",
        ] {
            assert!(dsn.contains(needle), "{needle}: {dsn}");
        }
        assert!(!dsn.contains("\r\nBcc: injected"), "no header injection");
        assert!(!dsn.contains("secret body"), "RET=HDRS by default");
        assert!(!dsn.contains("\n\n") && !dsn.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn ret_full_and_notify_never() {
        let e = envelope(false, DsnReturn::Full);
        let dsn = String::from_utf8(build(&input(&e)).unwrap()).unwrap();
        assert!(dsn.contains("message/rfc822") && dsn.contains("secret body"));
        assert!(build(&input(&envelope(true, DsnReturn::Full))).is_none());
        let mut null = envelope(false, DsnReturn::Full);
        null.from.clear();
        assert!(build(&input(&null)).is_none());
        assert_eq!(status_for(ErrorKind::TOO_LARGE), "5.3.4");
    }

    #[test]
    fn from_the_spool() {
        use crate::front::smtp::envelope::Identity;
        use crate::front::smtp::intake;
        let dir = tempfile::tempdir().unwrap();
        let identity = Identity {
            staff: "adele".into(),
            addresses: vec!["adele@contoso.com".into()],
            max_recipients: 5,
        };
        let e = envelope(false, DsnReturn::Unspecified);
        let i = intake::prepare(&identity, &e, ORIGINAL);
        let s = intake::spool(&dir.path().join(&i.email_id), &i, 1_700_000_000).unwrap();
        let recorded = intake::envelope_of_record("adele", 0, "nobody@x.com", &[]);
        let spooled = intake::envelope_at(&s.envelope_path, &recorded).unwrap();
        let (dsn, env) = for_failed_email(
            &s.mime_path,
            &spooled,
            "adele@contoso.com",
            "relay.test",
            ErrorKind::PERMISSION,
            "ErrorSendAsDenied",
            &i.email_id,
        )
        .unwrap()
        .unwrap();
        assert!(String::from_utf8(dsn).unwrap().contains("Status: 5.7.1"));
        assert_eq!(env.addresses(), ["adele@contoso.com"]);
        assert!(env.recipients[0].notify_never);
    }
}
