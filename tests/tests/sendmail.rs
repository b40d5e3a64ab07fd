//! `mailhost sendmail` through the real binary: with the pickup-dir provider (a structured
//! send: the `.eml` it writes is read back with mail-parser) and with the Graph provider and
//! the emulator (what arrives in the recipients' mailboxes). Also the `sendmail` link name,
//! sendmail's exit statuses, and refusals that record nothing.

#![allow(clippy::unwrap_used)] // tests: a failed step should stop the test loudly

mod email_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use email_support::records;
use mail_parser::{MessageParser, MimeHeaders};
use mailhost_emulator::{Emulator, seed};
use mailhost_tests::fixtures::fixture_path;
use mailhost_tests::homes::{STAFF, graph_home, pickup_home};
use mailhost_tests::{Home, assert_exit, mailhost_bin, one_line};

const LOGO: &[u8] = include_bytes!("../../host/src/delivery/mime/testdata/logo.png");
const REPORT: &[u8] = include_bytes!("../../host/src/delivery/mime/testdata/report.pdf");

/// Runs `mailhost --home HOME sendmail ARGS` with `input` on stdin and `env` set.
fn sendmail_env(home: &Home, args: &[&str], input: &[u8], env: &[(&str, &str)]) -> Output {
    let mut command = home.command(["sendmail"].iter().chain(args));
    command.env_remove("MAILHOST_STAFF");
    for (key, value) in env {
        command.env(key, value);
    }
    run_with_input(command, input)
}

fn sendmail(home: &Home, args: &[&str], input: &[u8]) -> Output {
    sendmail_env(home, args, input, &[])
}

fn run_with_input(mut command: Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A refusal before the message is read (a bad flag, unsafe permissions) closes the pipe.
    if let Err(error) = child.stdin.take().unwrap().write_all(input) {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    child.wait_with_output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The `.eml` files pickup-dir wrote, oldest first.
fn emls(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// The only `.eml` pickup-dir wrote.
fn only_eml(dir: &Path) -> Vec<u8> {
    let mut all = emls(dir);
    assert_eq!(all.len(), 1, "expected one .eml");
    all.pop().unwrap()
}

/// The envelope lines (`X-Sender`, `X-Receiver`) pickup-dir writes first.
fn envelope(eml: &[u8]) -> (String, Vec<String>) {
    let text = String::from_utf8_lossy(eml);
    let mut sender = String::new();
    let mut receivers = Vec::new();
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("X-Sender: ") {
            sender = s.to_string();
        } else if let Some(r) = line.strip_prefix("X-Receiver: ") {
            receivers.push(r.to_string());
        } else {
            break;
        }
    }
    (sender, receivers)
}

fn has_header(eml: &[u8], name: &str) -> bool {
    let text = String::from_utf8_lossy(eml).to_ascii_lowercase();
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    head.lines()
        .any(|l| l.starts_with(&format!("{}:", name.to_ascii_lowercase())))
}

fn spool_folders(home: &Home) -> usize {
    std::fs::read_dir(home.path().join("spool")).map_or(0, |d| d.count())
}

const NEWSLETTER: &[u8] = include_bytes!("../../host/src/delivery/mime/testdata/related.eml");

#[test]
fn dash_t_sends_to_header_recipients_with_bcc_only_in_the_envelope() {
    let (home, pickup) = pickup_home();
    let message = b"From: Adele Vance <adele@contoso.com>\n\
        To: Alex Wilber <alex@contoso.com>\n\
        Cc: lidia@contoso.com\n\
        Bcc: audit@contoso.com\n\
        Subject: Month-end statements\n\
        \n\
        The statements are ready.\n";
    let output = sendmail(&home, &["-t", "-i"], message);
    assert_exit(&output, 0, &["sendmail", "-t", "-i"]);
    assert!(
        output.stdout.is_empty() && output.stderr.is_empty(),
        "sendmail is silent"
    );
    let eml = only_eml(&pickup);
    let (sender, receivers) = envelope(&eml);
    assert_eq!(sender, "adele@contoso.com");
    assert_eq!(
        receivers,
        ["alex@contoso.com", "lidia@contoso.com", "audit@contoso.com"]
    );
    assert!(
        !has_header(&eml, "Bcc"),
        "{}",
        String::from_utf8_lossy(&eml)
    );
    let parsed = MessageParser::default().parse(&eml).unwrap();
    assert_eq!(parsed.subject(), Some("Month-end statements"));
    assert_eq!(
        parsed.to().unwrap().first().unwrap().address(),
        Some("alex@contoso.com")
    );
    assert_eq!(
        parsed.body_text(0).unwrap().trim(),
        "The statements are ready."
    );
    let list = records(&home);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "sent");
    assert_eq!(
        list[0]["staff_id"], "adele",
        "chosen by the From: {:#}",
        list[0]
    );
    // The spool keeps the whole message until its retention ends, without the Bcc header.
    let spooled: Vec<PathBuf> = std::fs::read_dir(home.path().join("spool"))
        .unwrap()
        .map(|e| e.unwrap().path().join("message.eml"))
        .filter(|p| p.exists())
        .collect();
    for path in spooled {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.to_ascii_lowercase().contains("\nbcc:"), "{text}");
        assert!(text.contains("Message-ID: <"), "{text}");
    }
}

#[test]
fn recipients_as_arguments_decide_who_receives() {
    let (home, pickup) = pickup_home();
    let message = b"From: adele@contoso.com\nTo: alex@contoso.com\nSubject: Only Megan\n\nHi\n";
    let output = sendmail(&home, &["megan@contoso.com, lidia@contoso.com"], message);
    assert_exit(&output, 0, &["sendmail", "megan@contoso.com"]);
    let eml = only_eml(&pickup);
    let (_, receivers) = envelope(&eml);
    assert_eq!(receivers, ["megan@contoso.com", "lidia@contoso.com"]);
}

#[test]
fn dash_f_names_the_sender_of_a_message_without_from() {
    let (home, pickup) = pickup_home();
    let output = sendmail(
        &home,
        &[
            "-f",
            "adele@contoso.com",
            "-F",
            "Adele at Contoso",
            "alex@contoso.com",
        ],
        b"Subject: Report\n\nNumbers attached.\n",
    );
    assert_exit(&output, 0, &["sendmail", "-f"]);
    let eml = only_eml(&pickup);
    assert_eq!(envelope(&eml).0, "adele@contoso.com");
    let parsed = MessageParser::default().parse(&eml).unwrap();
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some("adele@contoso.com"));
    assert_eq!(from.name(), Some("Adele at Contoso"));
    assert_eq!(records(&home)[0]["staff_id"], "adele");
}

#[test]
fn a_lone_dot_ends_the_message_unless_dash_i() {
    let (home, pickup) = pickup_home();
    let message = b"From: adele@contoso.com\nSubject: dots\n\nbefore\n.\nafter\n";
    assert_exit(
        &sendmail(&home, &["alex@contoso.com"], message),
        0,
        &["sendmail"],
    );
    assert_exit(
        &sendmail(&home, &["-i", "alex@contoso.com"], message),
        0,
        &["sendmail", "-i"],
    );
    let all = emls(&pickup);
    assert_eq!(all.len(), 2);
    let body = |eml: &[u8]| {
        MessageParser::default()
            .parse(eml)
            .unwrap()
            .body_text(0)
            .unwrap()
            .replace("\r\n", "\n")
    };
    assert_eq!(body(&all[0]).trim_end(), "before");
    assert_eq!(body(&all[1]).trim_end(), "before\n.\nafter");
}

#[test]
fn a_whole_message_reaches_pickup_dir_intact() {
    let (home, pickup) = pickup_home();
    let output = sendmail(&home, &["-t"], NEWSLETTER);
    assert_exit(&output, 0, &["sendmail", "-t"]);
    let eml = only_eml(&pickup);
    let (sender, receivers) = envelope(&eml);
    assert_eq!(sender, "adele@contoso.com");
    assert_eq!(
        receivers,
        [
            "alex@contoso.com",
            "lidia@contoso.com",
            "megan@contoso.com",
            "audit@contoso.com"
        ]
    );
    assert!(!has_header(&eml, "Bcc"));
    let parsed = MessageParser::default().parse(&eml).unwrap();
    // Sent as it came in: the client's Message-ID, both alternatives, the inline image with its
    // Content-ID, the attachment, Reply-To and the X- headers.
    assert_eq!(parsed.message_id(), Some("20261201.1234@client.example"));
    assert!(
        parsed
            .body_html(0)
            .unwrap()
            .contains("cid:logo@contoso.com")
    );
    assert_eq!(
        parsed.body_text(0).unwrap().trim(),
        "Our logo is above. The report is attached."
    );
    assert_eq!(
        parsed.reply_to().unwrap().first().unwrap().address(),
        Some("replies@contoso.com")
    );
    assert_eq!(parsed.header_raw("X-Order-Id").map(str::trim), Some("4711"));
    assert_eq!(
        parsed.header_raw("X-Mailer").map(str::trim),
        Some("Business Suite 9.1")
    );
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 2, "logo and report");
    let logo = attachments
        .iter()
        .find(|a| a.attachment_name() == Some("logo.png"))
        .unwrap();
    assert_eq!(logo.contents(), LOGO);
    assert_eq!(logo.content_id(), Some("logo@contoso.com"));
    let report = attachments
        .iter()
        .find(|a| a.attachment_name() == Some("Relevé décembre.pdf"))
        .unwrap();
    assert_eq!(report.contents(), REPORT);
}

#[test]
fn rebuilt_from_its_parts_the_inline_image_is_an_attachment() {
    let (home, pickup) = pickup_home();
    home.ok(&["config", "set", "pickup-dir", "WholeMessages", "false"]);
    let output = sendmail(&home, &["-t"], NEWSLETTER);
    assert_exit(&output, 0, &["sendmail", "-t"]);
    let eml = only_eml(&pickup);
    assert!(envelope(&eml).1.contains(&"audit@contoso.com".to_string()));
    assert!(!has_header(&eml, "Bcc"));
    let parsed = MessageParser::default().parse(&eml).unwrap();
    assert!(
        parsed
            .body_html(0)
            .unwrap()
            .contains("cid:logo@contoso.com")
    );
    assert_eq!(parsed.header_raw("X-Order-Id").map(str::trim), Some("4711"));
    assert_eq!(
        parsed.reply_to().unwrap().first().unwrap().address(),
        Some("replies@contoso.com")
    );
    let attachments: Vec<_> = parsed.attachments().collect();
    let logo = attachments
        .iter()
        .find(|a| a.attachment_name() == Some("logo.png"))
        .unwrap();
    assert_eq!(logo.contents(), LOGO);
    let report = attachments
        .iter()
        .find(|a| a.attachment_name() == Some("Relevé décembre.pdf"))
        .unwrap();
    assert_eq!(report.contents(), REPORT);
}

#[test]
fn a_provider_without_mime_gets_the_parts_and_the_log_says_what_it_loses() {
    let home = Home::new();
    home.add_enabled(&fixture_path("echo"));
    let out = home.path().join("echo.txt");
    home.ok(&["config", "set", "echo-00", "OutFile", out.to_str().unwrap()]);
    home.add_adele("echo-00", &[]);
    let output = sendmail_env(&home, &["-t"], NEWSLETTER, &[("RUST_LOG", "mailhost=info")]);
    assert_exit(&output, 0, &["sendmail", "-t", "(echo)"]);
    let log = stderr(&output);
    assert!(
        log.contains("inline images are sent as attachments")
            && log.contains("the plain-text alternative is left out"),
        "the info line names what a provider without MIME loses:\n{log}"
    );
    let recorded = std::fs::read_to_string(&out).unwrap();
    assert!(
        recorded.contains("message.subject=Newsletter with logo\n"),
        "{recorded}"
    );
    assert!(recorded.contains("message.to=alex@contoso.com\nmessage.to=lidia@contoso.com\n"));
    let list = records(&home);
    assert_eq!(list[0]["status"], "sent");
    let bcc: Vec<&str> = list[0]["bcc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    assert_eq!(bcc, ["audit@contoso.com"]);
}

#[test]
fn latin1_and_utf8_subjects_arrive_intact() {
    let (home, pickup) = pickup_home();
    let latin1 = b"From: adele@contoso.com\nTo: alex@contoso.com\n\
        Subject: =?ISO-8859-1?Q?Relev=E9_de_compte_=E0_M=FCller?=\n\
        MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-8859-1\n\
        Content-Transfer-Encoding: 8bit\n\nGr\xfc\xdfe aus K\xf6ln\n";
    assert_exit(
        &sendmail(&home, &["-t"], latin1),
        0,
        &["sendmail", "latin1"],
    );
    let utf8 = "From: adele@contoso.com\nTo: alex@contoso.com\n\
        Subject: =?UTF-8?B?6KuL5rGC5pu4?= =?UTF-8?Q?_d=C3=A9cembre_=E2=9C=93?=\n\n\
        Bonjour\n";
    assert_exit(
        &sendmail(&home, &["-t"], utf8.as_bytes()),
        0,
        &["sendmail", "utf8"],
    );
    let all = emls(&pickup);
    let subjects: Vec<String> = all
        .iter()
        .map(|e| {
            MessageParser::default()
                .parse(e)
                .unwrap()
                .subject()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(subjects, ["Relevé de compte à Müller", "請求書 décembre ✓"]);
    let body = MessageParser::default()
        .parse(&all[0])
        .unwrap()
        .body_text(0)
        .unwrap()
        .to_string();
    assert_eq!(body.trim_end(), "Grüße aus Köln");
}

#[test]
fn the_staff_member_is_the_one_whose_address_is_the_from() {
    let (home, pickup) = pickup_home();
    home.ok(&[
        "staff",
        "add",
        "lidia",
        "--provider",
        "pickup-dir",
        "--email",
        "lidia@contoso.com",
    ]);
    let message = b"From: Lidia <LIDIA@contoso.com>\nTo: alex@contoso.com\nSubject: s\n\nb\n";
    assert_exit(&sendmail(&home, &["-t"], message), 0, &["sendmail"]);
    assert!(
        envelope(&only_eml(&pickup))
            .0
            .eq_ignore_ascii_case("lidia@contoso.com")
    );
    assert_eq!(records(&home)[0]["staff_id"], "lidia");
    // --staff and MAILHOST_STAFF come first.
    let output = sendmail_env(&home, &["-t"], message, &[("MAILHOST_STAFF", "adele")]);
    assert_exit(&output, 0, &["sendmail", "MAILHOST_STAFF"]);
    let output = sendmail(&home, &["-t", "--staff", "adele"], message);
    assert_exit(&output, 0, &["sendmail", "--staff"]);
    let staff: Vec<String> = records(&home)
        .iter()
        .map(|r| r["staff_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        staff.iter().filter(|s| *s == "adele").count(),
        2,
        "{staff:?}"
    );
}

#[test]
fn an_unknown_sender_is_refused_with_nothing_recorded() {
    let (home, pickup) = pickup_home();
    let message = b"From: eve@example.com\nTo: alex@contoso.com\nSubject: s\n\nb\n";
    let output = sendmail(&home, &["-t"], message);
    assert_exit(&output, 67, &["sendmail", "unknown From"]);
    let line = one_line(&stderr(&output)).to_string();
    assert!(line.contains("eve@example.com"), "{line}");
    assert!(
        line.contains("--staff ID") && line.contains("MAILHOST_STAFF") && line.contains("-f"),
        "names the three ways: {line}"
    );
    let output = sendmail(&home, &["-t", "--staff", "nobody"], message);
    assert_exit(&output, 67, &["sendmail", "--staff nobody"]);
    assert!(records(&home).is_empty());
    assert_eq!(spool_folders(&home), 0);
    assert!(emls(&pickup).is_empty());
}

#[test]
fn header_injection_and_bad_input_are_refused_with_nothing_recorded() {
    let (home, pickup) = pickup_home();
    let cases: [(&[&str], &[u8], i32); 6] = [
        (
            &["-t"],
            b"From: adele@contoso.com\nTo: alex@contoso.com\nSubject: hi\rBcc: eve@example.com\n\nb\n",
            65,
        ),
        (
            &["-t"],
            b"From: adele@contoso.com\nTo: alex@contoso.com\nSubject: =?utf-8?q?hi=0D=0ABcc:_eve@example.com?=\n\nb\n",
            65,
        ),
        (
            &["-F", "Adele\r\nBcc: eve@example.com", "alex@contoso.com"],
            b"Subject: s\n\nb\n",
            64,
        ),
        (&["-t"], b"From: adele@contoso.com\nSubject: nobody\n\nb\n", 64),
        (&["-t", "-X"], b"From: adele@contoso.com\n\nb\n", 64),
        (&["-t"], b"From: adele@contoso.com\nTo: not an address\n\nb\n", 65),
    ];
    for (args, input, code) in cases {
        let output = sendmail(&home, args, input);
        assert_exit(&output, code, args);
        one_line(&stderr(&output));
    }
    assert!(records(&home).is_empty());
    assert_eq!(spool_folders(&home), 0);
    assert!(emls(&pickup).is_empty());
}

#[test]
fn a_link_named_sendmail_is_mailhost_sendmail() {
    let (home, pickup) = pickup_home();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sendmail");
    std::os::unix::fs::symlink(mailhost_bin(), &link).unwrap();
    let mut command = Command::new(&link);
    command
        .args(["-t", "-oi", "-odi"])
        .env_remove("MAILHOST_STAFF")
        .env("MAILHOST_HOME", home.path())
        .env_remove("RUST_LOG");
    let output = run_with_input(
        command,
        b"From: adele@contoso.com\nTo: alex@contoso.com\nSubject: via link\n\nb\n",
    );
    assert_exit(&output, 0, &["sendmail (link)"]);
    assert_eq!(emls(&pickup).len(), 1);
    let mut help = Command::new(&link);
    help.arg("--help");
    let output = run_with_input(help, b"");
    assert_exit(&output, 0, &["sendmail --help"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("-t") && text.contains("75"), "{text}");
}

/// The Graph home's staff member sends; the recipients' mailboxes at the emulator show what
/// arrived.
#[test]
fn through_graph_everything_arrives_intact() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let message = format!(
        "From: {name} <{from}>\n\
         To: {to}\n\
         Bcc: {bcc}\n\
         Reply-To: replies@contoso.com\n\
         Subject: =?UTF-8?Q?Relev=C3=A9_=E2=9C=93?= =?ISO-8859-1?Q?_M=FCller?=\n\
         X-Order-Id: 4711\n\
         MIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"m\"\n\
         \n\
         --m\n\
         Content-Type: multipart/related; boundary=\"r\"\n\
         \n\
         --r\n\
         Content-Type: multipart/alternative; boundary=\"a\"\n\
         \n\
         --a\n\
         Content-Type: text/plain; charset=utf-8\n\
         \n\
         Plain text version\n\
         --a\n\
         Content-Type: text/html; charset=utf-8\n\
         \n\
         <p>HTML version <img src=\"cid:logo@contoso\"></p>\n\
         --a--\n\
         --r\n\
         Content-Type: image/png\n\
         Content-Transfer-Encoding: base64\n\
         Content-ID: <logo@contoso>\n\
         Content-Disposition: inline; filename=\"logo.png\"\n\
         \n\
         {logo}\n\
         --r--\n\
         --m\n\
         Content-Type: application/pdf\n\
         Content-Transfer-Encoding: base64\n\
         Content-Disposition: attachment; filename=\"report.pdf\"\n\
         \n\
         {report}\n\
         --m--\n",
        name = seed::USER_NAME,
        from = seed::USER_UPN,
        to = seed::RECIPIENT_UPN,
        bcc = seed::MFA_USER_UPN,
        logo = base64(LOGO),
        report = base64(REPORT),
    );
    let output = sendmail(&home, &["-t", "-i"], message.as_bytes());
    assert_exit(&output, 0, &["sendmail", "graph"]);
    assert_eq!(records(&home)[0]["staff_id"], STAFF);

    let inbox = emulator.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    let got = &inbox[0];
    assert_eq!(got.subject, "Relevé ✓ Müller");
    assert!(got.body.content.contains("HTML version"), "{:?}", got.body);
    assert_eq!(got.body.content_type.to_ascii_lowercase(), "html");
    assert_eq!(
        got.reply_to
            .iter()
            .map(|r| r.address().to_string())
            .collect::<Vec<_>>(),
        ["replies@contoso.com"]
    );
    assert_eq!(got.header("X-Order-Id"), Some("4711"));
    assert!(got.bcc_recipients.is_empty(), "recipients never see Bcc");
    let names: Vec<&str> = got.attachments.iter().map(|a| a.name.as_str()).collect();
    assert!(
        names.contains(&"logo.png") && names.contains(&"report.pdf"),
        "{names:?}"
    );
    if got.mime {
        // Sent as the whole message: the image stays inline with its Content-ID.
        let logo = got
            .attachments
            .iter()
            .find(|a| a.name == "logo.png")
            .unwrap();
        assert!(logo.is_inline, "{logo:?}");
        assert_eq!(logo.content_id.as_deref(), Some("logo@contoso"));
        // The Message-ID mailhost gave it is the one the mailbox shows.
        assert_eq!(
            Some(got.internet_message_id.as_str()),
            records(&home)[0]["message_id"].as_str()
        );
    }
    // The Bcc recipient received it; the sender's copy is the only one that names them.
    assert_eq!(emulator.inbox(seed::MFA_USER_UPN).len(), 1);
}

/// A message with bare LF line ends (what scripts pipe in), mixed with CRLF, a Bcc field folded
/// over a bare-LF continuation line, and after the header block a line a lenient parser reads
/// as a Bcc field (`Bc c:`; the MIME conversion's fuzz finding): the Bcc recipients receive it,
/// nobody else does, the message submitted to Graph carries no Bcc field but the one naming
/// exactly the envelope's blind copies (Exchange removes it before delivery: the Sent Items copy
/// is the only one showing them), and the spool keeps no Bcc field.
#[test]
fn a_bare_lf_message_through_graph_keeps_its_bcc_recipients_blind() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    let message = format!(
        "From: {name} <{from}>\n\
         To: {to}\n\
         Bcc: {bcc},\n audit@fabrikam.example\r\n\
         Subject: bare LF\n\
         X-Order-Id: 4712\n\
         Bc c: mallory@fabrikam.example\n\
         \n\
         The statements are ready.\n",
        name = seed::USER_NAME,
        from = seed::USER_UPN,
        to = seed::RECIPIENT_UPN,
        bcc = seed::MFA_USER_UPN,
    );
    let output = sendmail(&home, &["-t", "-i"], message.as_bytes());
    assert_exit(&output, 0, &["sendmail", "graph"]);
    assert_eq!(
        records(&home)[0]["status"],
        "sent",
        "{:#}",
        records(&home)[0]
    );

    let inbox = emulator.inbox(seed::RECIPIENT_UPN);
    assert_eq!(inbox.len(), 1, "{inbox:#?}");
    assert_eq!(inbox[0].subject, "bare LF");
    assert_eq!(inbox[0].header("X-Order-Id"), Some("4712"));
    assert!(inbox[0].body.content.contains("The statements are ready."));
    // `Bc c:` is no field: it ended the header block, so it is the body's first line.
    assert!(
        inbox[0]
            .body
            .content
            .contains("Bc c: mallory@fabrikam.example"),
        "{:?}",
        inbox[0].body
    );
    assert_eq!(
        emulator.inbox(seed::MFA_USER_UPN).len(),
        1,
        "the Bcc recipient"
    );
    let external: Vec<String> = emulator
        .external()
        .iter()
        .filter_map(|m| m.delivered_to.clone())
        .collect();
    assert_eq!(
        external,
        ["audit@fabrikam.example"],
        "the folded Bcc recipient only"
    );

    // What went to Graph: its Bcc fields (the Sent Items copy keeps them) name exactly the
    // envelope's blind copies.
    let sent = emulator.sent_items(seed::USER_UPN);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(sent[0].mime, "a small message goes as MIME");
    let mut blind: Vec<String> = sent[0]
        .bcc_recipients
        .iter()
        .map(|r| r.address().to_ascii_lowercase())
        .collect();
    blind.sort();
    assert_eq!(blind, ["audit@fabrikam.example", seed::MFA_USER_UPN]);
    for copy in inbox.iter().chain(&emulator.inbox(seed::MFA_USER_UPN)) {
        assert!(copy.bcc_recipients.is_empty(), "{copy:#?}");
    }

    let spooled: Vec<PathBuf> = std::fs::read_dir(home.path().join("spool"))
        .unwrap()
        .map(|e| e.unwrap().path().join("message.eml"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(spooled.len(), 1);
    let text = std::fs::read_to_string(&spooled[0]).unwrap();
    assert!(!has_header(text.as_bytes(), "Bcc"), "{text}");
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "CRLF line ends only: {text:?}"
    );
}

fn base64(data: &[u8]) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.as_bytes()
        .chunks(76)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn throttling_queues_with_exit_75() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    home.ok(&["config", "set", "graph-email", "MaxRetries", "0"]);
    // A 429 is a refusal that certainly sent nothing: the email waits for Retry-After.
    emulator.fault_throttle(1000, 600, Some("/v1.0"));
    let message = format!(
        "From: {}\nTo: {}\nSubject: later\n\nb\n",
        seed::USER_UPN,
        seed::RECIPIENT_UPN
    );
    let output = sendmail(&home, &["-t"], message.as_bytes());
    assert_exit(&output, 75, &["sendmail", "429"]);
    let line = one_line(&stderr(&output)).to_string();
    assert!(
        line.contains("queued") && line.contains("email flush"),
        "{line}"
    );
    let list = records(&home);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "queued", "{:#}", list[0]);
    assert!(emulator.inbox(seed::RECIPIENT_UPN).is_empty());
    // Kept whole in the spool for the later send.
    let id = list[0]["id"].as_str().unwrap();
    assert!(
        home.path()
            .join("spool")
            .join(id)
            .join("message.eml")
            .exists()
    );
}

#[test]
fn a_spent_sending_limit_queues_with_exit_75() {
    let emulator = Emulator::start().unwrap();
    let home = graph_home(&emulator);
    home.ok(&["config", "set", "graph-email", "MessagesPerMinute", "1"]);
    let message = format!(
        "From: {}\nTo: {}\nSubject: limited\n\nb\n",
        seed::USER_UPN,
        seed::RECIPIENT_UPN
    );
    let first = sendmail(&home, &["-t"], message.as_bytes());
    assert_exit(&first, 0, &["sendmail", "first"]);
    let second = sendmail(&home, &["-t", "--max-wait", "0s"], message.as_bytes());
    assert_exit(&second, 75, &["sendmail", "second"]);
    let line = one_line(&stderr(&second)).to_string();
    assert!(line.contains("queued"), "{line}");
    let list = records(&home);
    let statuses: Vec<&str> = list.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "queued").count(),
        1,
        "the second is kept queued: {statuses:?}"
    );
    assert_eq!(
        emulator.inbox(seed::RECIPIENT_UPN).len(),
        1,
        "the limit held"
    );
}

#[test]
fn dash_q_sends_what_is_queued() {
    let (home, pickup) = pickup_home();
    home.ok(&[
        "email",
        "send",
        "--staff",
        "adele",
        "--to",
        "alex@contoso.com",
        "--subject",
        "later",
        "--queue",
    ]);
    assert!(emls(&pickup).is_empty());
    let output = sendmail(&home, &["-q"], b"");
    assert_exit(&output, 0, &["sendmail", "-q"]);
    assert_eq!(emls(&pickup).len(), 1);
    assert_eq!(records(&home)[0]["status"], "sent");
    let output = sendmail(&home, &["-q30m"], b"");
    assert_exit(&output, 64, &["sendmail", "-q30m"]);
}

#[test]
fn a_disabled_provider_is_exit_69_and_the_email_is_kept() {
    let (home, pickup) = pickup_home();
    home.ok(&["plugin", "disable", "pickup-dir"]);
    let message = b"From: adele@contoso.com\nTo: alex@contoso.com\nSubject: s\n\nb\n";
    let output = sendmail(&home, &["-t"], message);
    assert_exit(&output, 69, &["sendmail", "disabled provider"]);
    let line = one_line(&stderr(&output)).to_string();
    assert!(
        line.contains("plugin enable pickup-dir") && line.contains("email retry"),
        "{line}"
    );
    let kept = &records(&home)[0];
    assert_eq!(kept["status"], "failed");
    assert!(emls(&pickup).is_empty());
    // Once enabled, a retry sends the spooled message.
    home.ok(&["plugin", "enable", "pickup-dir"]);
    home.ok(&["email", "retry", kept["id"].as_str().unwrap()]);
    assert_eq!(emls(&pickup).len(), 1);
}

#[test]
fn a_ten_megabyte_attachment_arrives_whole_either_way() {
    let (home, pickup) = pickup_home();
    let data: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let message = format!(
        "From: adele@contoso.com\nTo: alex@contoso.com\nSubject: big\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n\
         See attached.\n--b\nContent-Type: application/octet-stream\n\
         Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"big.bin\"\n\n\
         {}\n--b--\n",
        base64(&data)
    );
    assert_exit(
        &sendmail(&home, &["-t"], message.as_bytes()),
        0,
        &["sendmail", "whole"],
    );
    home.ok(&["config", "set", "pickup-dir", "WholeMessages", "false"]);
    assert_exit(
        &sendmail(&home, &["-t"], message.as_bytes()),
        0,
        &["sendmail", "parts"],
    );
    let all = emls(&pickup);
    assert_eq!(all.len(), 2);
    for eml in &all {
        let parsed = MessageParser::default().parse(eml).unwrap();
        let big = parsed
            .attachments()
            .find(|a| a.attachment_name() == Some("big.bin"))
            .unwrap();
        assert!(
            big.contents() == data.as_slice(),
            "the 10 MB attachment differs"
        );
    }
}

#[test]
fn mail_readable_by_others_stops_sendmail_with_exit_78() {
    use std::os::unix::fs::PermissionsExt;
    let (home, pickup) = pickup_home();
    let message = b"From: adele@contoso.com\nTo: alex@contoso.com\nSubject: s\n\nb\n";
    assert_exit(&sendmail(&home, &["-t"], message), 0, &["sendmail"]);
    let db = home.path().join("mail.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = sendmail(&home, &["-t"], message);
    assert_exit(&output, 78, &["sendmail", "mail.db 0644"]);
    assert!(stderr(&output).contains("chmod"), "{}", stderr(&output));
    assert_eq!(emls(&pickup).len(), 1);
    let output = sendmail(&home, &["-t", "--allow-unsafe-permissions"], message);
    assert_exit(&output, 0, &["sendmail", "--allow-unsafe-permissions"]);
    assert_eq!(emls(&pickup).len(), 2);
}
