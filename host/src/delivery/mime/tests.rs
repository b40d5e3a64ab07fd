//! Real-world messages through [`prepare`], [`spool::write`] and [`structured`].

use super::*;

const ALTERNATIVE: &[u8] = include_bytes!("testdata/alternative.eml");
const RELATED: &[u8] = include_bytes!("testdata/related.eml");
const LATIN1: &[u8] = include_bytes!("testdata/latin1.eml");
const LATIN1_8BIT: &[u8] = include_bytes!("testdata/latin1-8bit.eml");
const FOLDED: &[u8] = include_bytes!("testdata/folded.eml");
const LOGO: &[u8] = include_bytes!("testdata/logo.png");
const REPORT: &[u8] = include_bytes!("testdata/report.pdf");

fn additions() -> Additions<'static> {
    Additions {
        id: "id-1",
        from: None,
        now_unix: 1_796_120_085,
    }
}

fn sender() -> Sender {
    Sender {
        email: "adele@contoso.com".into(),
        name: "Adele Vance".into(),
    }
}

fn envelope(recipients: &[&str]) -> Envelope {
    Envelope {
        from: "adele@contoso.com".into(),
        recipients: recipients.iter().map(ToString::to_string).collect(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn addresses(list: &[Mailbox]) -> Vec<&str> {
    list.iter().map(|m| m.address.as_str()).collect()
}

#[test]
fn alternative_keeps_html_and_the_text_in_the_spool() {
    let prepared = prepare(ALTERNATIVE, &additions()).unwrap();
    let read = &prepared.read;
    assert_eq!(read.subject, "Quarterly figures");
    let text_body = read.text.as_deref().unwrap();
    assert!(
        text_body.contains("The figures are in — see the table. \n"),
        "{text_body}"
    );
    assert!(
        text_body.contains("wrapped by quoted-printable encoding at"),
        "soft line breaks joined: {text_body}"
    );
    assert_eq!(
        read.html.as_deref().unwrap(),
        "<html><body><p>Hello Alex,</p><p>The figures are in — see the <b>table</b>.</p></body></html>"
    );
    assert!(read.parts.is_empty(), "{:?}", read.parts);
    let message = structured(
        "id-1",
        &prepared,
        &envelope(&["alex@contoso.com"]),
        &[],
        &sender(),
    );
    assert!(message.html);
    assert!(message.body.contains("<b>table</b>"));
    assert_eq!(
        message.from,
        Mailbox::new("adele@contoso.com", "Adele Vance")
    );
    assert_eq!(
        losses(read),
        vec!["the plain-text alternative is left out (the HTML body is sent)"]
    );
    // The spooled message is the client's, with CRLF and the added Message-ID.
    let spooled = text(&prepared.bytes);
    assert!(
        !spooled.replace("\r\n", "").contains('\n'),
        "only CRLF line ends"
    );
    assert!(
        spooled.contains("Message-ID: <id-1@mailhost>\r\n"),
        "{spooled}"
    );
    assert!(spooled.contains("\r\nDate: Tue, 01 Dec 2026 09:00:00 +0100\r\n"));
    assert_eq!(
        spooled.matches("Date:").count(),
        1,
        "the client's Date is kept"
    );
    assert_eq!(prepared.message_id, "<id-1@mailhost>");
    assert!(spooled.contains("Content-Type: text/plain; charset=\"utf-8\"\r\n"));
    let reread = read::read(&prepared.bytes).unwrap();
    assert_eq!(reread.text, read.text);
}

#[test]
fn related_with_a_cid_image_and_an_attachment() {
    let prepared = prepare(RELATED, &additions()).unwrap();
    let read = &prepared.read;
    assert_eq!(prepared.message_id, "<20261201.1234@client.example>");
    assert!(!text(&prepared.bytes).contains("id-1@mailhost"));
    assert_eq!(
        read.from,
        vec![Mailbox::new("adele@contoso.com", "Vance, Adele")]
    );
    assert_eq!(
        addresses(&read.to),
        ["alex@contoso.com", "lidia@contoso.com"]
    );
    assert_eq!(read.to[1].name.as_str(), "Lidia Holloway");
    assert_eq!(addresses(&read.cc), ["megan@contoso.com"]);
    assert_eq!(addresses(&read.bcc), ["audit@contoso.com"]);
    assert_eq!(addresses(&read.reply_to), ["replies@contoso.com"]);
    let headers: Vec<(&str, &str)> = read
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(
        headers,
        [("X-Mailer", "Business Suite 9.1"), ("X-Order-Id", "4711")]
    );
    assert!(
        read.html
            .as_deref()
            .unwrap()
            .contains("cid:logo@contoso.com")
    );
    assert_eq!(read.parts.len(), 2, "{:?}", read.parts);
    let logo = &read.parts[0];
    assert_eq!(
        (logo.name.as_str(), logo.content_type.as_str()),
        ("logo.png", "image/png")
    );
    assert_eq!(logo.content_id.as_deref(), Some("logo@contoso.com"));
    assert!(logo.inline);
    assert_eq!(logo.data, LOGO);
    let report = &read.parts[1];
    assert_eq!(report.name, "Relevé décembre.pdf", "RFC 2231 name decoded");
    assert_eq!(report.content_type, "application/pdf");
    assert!(!report.inline);
    assert_eq!(report.data, REPORT);

    // Bcc is gone from the spooled message, and only from there.
    let spooled = text(&prepared.bytes);
    assert!(!spooled.to_ascii_lowercase().contains("bcc:"), "{spooled}");
    assert!(spooled.contains("\r\nCc: megan@contoso.com\r\n"));

    let dir = tempfile::tempdir().unwrap();
    let written = spool::write(&dir.path().join("id-1"), &prepared.bytes, &read.parts).unwrap();
    assert_eq!(std::fs::read(&written.mime_path).unwrap(), prepared.bytes);
    assert_eq!(
        std::fs::read(written.parts[1].attachment.path.as_str()).unwrap(),
        REPORT
    );
    let envelope = envelope(&[
        "alex@contoso.com",
        "lidia@contoso.com",
        "megan@contoso.com",
        "audit@contoso.com",
    ]);
    let message = structured("id-1", &prepared, &envelope, &written.parts, &sender());
    assert_eq!(
        addresses(&message.to),
        ["alex@contoso.com", "lidia@contoso.com"]
    );
    assert_eq!(addresses(&message.cc), ["megan@contoso.com"]);
    assert_eq!(addresses(&message.bcc), ["audit@contoso.com"]);
    assert_eq!(addresses(&message.reply_to), ["replies@contoso.com"]);
    assert_eq!(message.from.name.as_str(), "Vance, Adele");
    assert_eq!(message.attachments.len(), 2);
    assert_eq!(message.attachments[0].name.as_str(), "logo.png");
    assert_eq!(message.attachments[0].size, LOGO.len() as u64);
    let names: Vec<&str> = message.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["X-Mailer", "X-Order-Id"]);
    assert_eq!(
        losses(read),
        vec![
            "inline images are sent as attachments",
            "the plain-text alternative is left out (the HTML body is sent)"
        ]
    );
}

#[test]
fn the_envelope_decides_who_receives() {
    let prepared = prepare(RELATED, &additions()).unwrap();
    // Only Lidia and a recipient named nowhere in the headers: To keeps Lidia, the other one
    // is a Bcc recipient, Alex and Megan (headers only) receive nothing.
    let message = structured(
        "id-1",
        &prepared,
        &envelope(&["LIDIA@contoso.com", "archive@contoso.com"]),
        &[],
        &sender(),
    );
    assert_eq!(addresses(&message.to), ["lidia@contoso.com"]);
    assert!(message.cc.is_empty());
    assert_eq!(addresses(&message.bcc), ["archive@contoso.com"]);
}

#[test]
fn iso_8859_1_subject_and_body_become_utf8() {
    let prepared = prepare(LATIN1, &additions()).unwrap();
    assert_eq!(prepared.read.subject, "Relevé de compte à Müller");
    assert_eq!(
        prepared.read.text.as_deref(),
        Some("Bonjour François,\nle relevé est prêt. Grüße aus Köln.\n")
    );
    assert!(prepared.read.html.is_none());
    let message = structured(
        "i",
        &prepared,
        &envelope(&["alex@contoso.com"]),
        &[],
        &sender(),
    );
    assert!(!message.html);
    assert!(losses(&prepared.read).is_empty());
    let prepared = prepare(LATIN1_8BIT, &additions()).unwrap();
    assert_eq!(prepared.read.text.as_deref(), Some("Café crème, £ 5\n"));
    // The 8-bit bytes are kept as they were in the spool.
    assert!(prepared.bytes.windows(4).any(|w| w == b"Caf\xe9"));
}

#[test]
fn folded_headers_and_encoded_words_are_joined() {
    let prepared = prepare(FOLDED, &additions()).unwrap();
    let read = &prepared.read;
    assert_eq!(
        read.subject,
        "請求書 for décembre ✓ and a subject that is long enough to be folded over several lines"
    );
    assert_eq!(read.from[0].name.as_str(), "Adèle Vance");
    assert_eq!(
        addresses(&read.to),
        ["alex@contoso.com", "lidia@contoso.com", "megan@contoso.com"]
    );
    assert_eq!(read.headers[0].name.as_str(), "X-Long-Header");
    assert_eq!(
        read.headers[0].value.as_str(),
        "first part of a long custom header value continued on a second line"
    );
    assert_eq!(
        read.text.as_deref(),
        Some("請求書を添付します。"),
        "Shift_JIS decoded"
    );
    // The folding itself is kept in the spool, with CRLF.
    assert!(text(&prepared.bytes).contains("lidia@contoso.com,\r\n\tmegan@contoso.com\r\n"));
}

#[test]
fn a_ten_megabyte_attachment_survives() {
    use base64::Engine as _;
    let data: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
    let mut raw = String::from(
        "From: adele@contoso.com\nTo: alex@contoso.com\nSubject: big\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nSee attached.\n\
         --b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\
         Content-Disposition: attachment; filename=\"big.bin\"\n\n",
    );
    for line in encoded.as_bytes().chunks(76) {
        raw.push_str(std::str::from_utf8(line).unwrap());
        raw.push('\n');
    }
    raw.push_str("--b--\n");
    let prepared = prepare(raw.as_bytes(), &additions()).unwrap();
    assert_eq!(prepared.read.parts.len(), 1);
    assert_eq!(prepared.read.parts[0].name, "big.bin");
    assert!(prepared.read.parts[0].data == data, "decoded bytes differ");
    assert_eq!(prepared.read.text.as_deref(), Some("See attached."));
    let dir = tempfile::tempdir().unwrap();
    let spooled = spool::write(dir.path(), &prepared.bytes, &prepared.read.parts).unwrap();
    assert_eq!(spooled.parts[0].attachment.size, data.len() as u64);
    assert_eq!(
        std::fs::metadata(spooled.parts[0].attachment.path.as_str())
            .unwrap()
            .len(),
        data.len() as u64
    );
}

#[test]
fn missing_from_and_date_are_added() {
    let from = Mailbox::new("adele@contoso.com", "Adèle \"AV\" Vance");
    let add = Additions {
        from: Some(&from),
        ..additions()
    };
    let prepared = prepare(b"To: alex@contoso.com\nSubject: s\n\nhi\n", &add).unwrap();
    let spooled = text(&prepared.bytes);
    assert!(
        spooled.contains("\r\nDate: Tue, 01 Dec 2026 10:14:45 +0000\r\n"),
        "{spooled}"
    );
    assert!(spooled.contains("\r\nFrom: =?utf-8?B?"), "{spooled}");
    assert_eq!(
        prepared.read.from,
        vec![from.clone()],
        "the added From reads back"
    );
    let ascii = Mailbox::new("adele@contoso.com", "Vance, \"Adele\"");
    let add = Additions {
        from: Some(&ascii),
        ..additions()
    };
    let prepared = prepare(b"To: alex@contoso.com\n\nhi\n", &add).unwrap();
    assert!(
        text(&prepared.bytes).contains("From: \"Vance, \\\"Adele\\\"\" <adele@contoso.com>\r\n")
    );
    assert_eq!(prepared.read.from, vec![ascii]);
}

#[test]
fn injection_and_bad_input_are_refused() {
    let refused = |raw: &[u8]| prepare(raw, &additions()).unwrap_err();
    assert_eq!(
        refused(b"To: a@x.com\nSubject: hi\rBcc: evil@x.com\n\nb\n"),
        MimeError::BareCr { line: 2 }
    );
    assert_eq!(
        refused(b"To: a@x.com\nSubject: =?utf-8?q?hi=0D=0ABcc:_evil@x.com?=\n\nb\n"),
        MimeError::LineBreak("Subject".into())
    );
    assert_eq!(
        refused(b"To: a@x.com\nX-Tag: =?utf-8?q?a=0Ab?=\n\nb\n"),
        MimeError::LineBreak("X-Tag".into())
    );
    assert!(matches!(
        refused(b"To: not-an-address\n\nb\n"),
        MimeError::Address { field: "To", .. }
    ));
    assert_eq!(refused(b""), MimeError::Empty);
    let from = Mailbox::new("adele@contoso.com", "A\r\nBcc: x@y.com");
    let add = Additions {
        from: Some(&from),
        ..additions()
    };
    assert!(matches!(
        prepare(b"To: a@x.com\n\nb\n", &add),
        Err(MimeError::LineBreak(_))
    ));
}

#[test]
fn a_bodyless_or_headerless_message_still_reads() {
    let read = read_only(b"Just a line of text\n").unwrap();
    assert!(read.to.is_empty());
    assert_eq!(read.text.as_deref(), Some("Just a line of text\n"));
    let read = read_only(b"To: undisclosed-recipients:;\nSubject: x\n\n").unwrap();
    assert!(read.to.is_empty());
}

#[test]
fn accept_spools_and_structures_in_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("spool").join("id-1");
    let envelope = envelope(&["alex@contoso.com", "audit@contoso.com"]);
    let accepted = accept(&folder, RELATED, &additions(), &envelope, &sender()).unwrap();
    assert_eq!(accepted.message_id, "<20261201.1234@client.example>");
    assert_eq!(accepted.spooled.mime_path, folder.join(MESSAGE_FILE));
    assert_eq!(addresses(&accepted.message.bcc), ["audit@contoso.com"]);
    assert_eq!(accepted.message.attachments.len(), 2);
    assert!(
        accepted.message.attachments[1]
            .path
            .starts_with(folder.to_str().unwrap())
    );
    assert_eq!(
        losses_of_file(&accepted.spooled.mime_path),
        losses(&prepare(RELATED, &additions()).unwrap().read)
    );
    assert!(losses_of_file(&dir.path().join("missing.eml")).is_empty());
    // A refused message writes nothing.
    let other = dir.path().join("spool").join("id-2");
    assert!(
        accept(
            &other,
            b"Subject: a\rb\n\nx\n",
            &additions(),
            &envelope,
            &sender()
        )
        .is_err()
    );
    assert!(!other.exists());
}

#[test]
fn forwarded_messages_and_text_files_are_attachments() {
    let raw = b"From: adele@contoso.com\nTo: alex@contoso.com\nSubject: Fwd: order\n\
        MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=x\n\n\
        --x\nContent-Type: text/plain\n\nSee below.\n\
        --x\nContent-Type: message/rfc822\n\n\
        From: megan@contoso.com\nTo: adele@contoso.com\nSubject: order\n\nPlease ship it.\n\
        --x\nContent-Type: text/plain; charset=iso-8859-1; name=\"notes.txt\"\n\
        Content-Disposition: attachment; filename=\"notes.txt\"\n\
        Content-Transfer-Encoding: quoted-printable\n\nCaf=E9\n\
        --x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAEC\n\
        --x--\n";
    let prepared = prepare(raw, &additions()).unwrap();
    let read = &prepared.read;
    assert_eq!(read.text.as_deref(), Some("See below."));
    let parts: Vec<(&str, &str)> = read
        .parts
        .iter()
        .map(|p| (p.name.as_str(), p.content_type.as_str()))
        .collect();
    assert_eq!(
        parts,
        [
            ("attachment-1.eml", "message/rfc822"),
            ("notes.txt", "text/plain; charset=utf-8"),
            ("attachment-3.bin", "application/octet-stream"),
        ]
    );
    let forwarded = String::from_utf8_lossy(&read.parts[0].data);
    assert!(forwarded.contains("Subject: order") && forwarded.contains("Please ship it."));
    assert_eq!(
        read.parts[1].data,
        "Café".as_bytes(),
        "text attachments are UTF-8"
    );
    assert_eq!(read.parts[2].data, [0, 1, 2]);
    assert!(read.parts.iter().all(|p| !p.inline));
}
