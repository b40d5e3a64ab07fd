//! Every reply and refusal of the state machine, driven directly.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;

fn config() -> SessionConfig {
    SessionConfig {
        hostname: "relay.test".into(),
        max_message_bytes: 1000,
        max_recipients: 3,
        starttls: true,
        auth_without_tls: false,
        max_errors: 20,
    }
}

fn adele() -> Identity {
    Identity {
        staff: "adele".into(),
        addresses: vec!["adele@contoso.com".into(), "sales@contoso.com".into()],
        max_recipients: 100,
    }
}

/// A session with a fake backend answering every action at once.
struct Driver {
    session: Session,
    accepted: Vec<(Envelope, Vec<u8>)>,
    closed: bool,
    tls_started: bool,
    lock_out: bool,
}

impl Driver {
    fn new(config: SessionConfig, tls: bool) -> Self {
        Self {
            session: Session::new(config, tls, None),
            accepted: Vec::new(),
            closed: false,
            tls_started: false,
            lock_out: false,
        }
    }

    fn tls() -> Self {
        Self::new(config(), true)
    }

    /// Feeds `input` and returns every reply as text, in order.
    fn say(&mut self, input: &str) -> String {
        self.say_bytes(input.as_bytes())
    }

    fn say_bytes(&mut self, input: &[u8]) -> String {
        let actions = self.session.feed(input);
        let mut text = String::new();
        self.perform(actions, &mut text);
        text
    }

    fn perform(&mut self, actions: Vec<Action>, text: &mut String) {
        for action in actions {
            match action {
                Action::Reply(r) => text.push_str(&String::from_utf8(r.to_bytes()).unwrap()),
                Action::Close => self.closed = true,
                Action::StartTls => {
                    self.tls_started = true;
                    let more = self.session.tls_started();
                    self.perform(more, text);
                }
                Action::Authenticate(c) => {
                    let answer = if self.lock_out {
                        AuthAnswer::LockedOut(15)
                    } else if (c.user == "adele" || c.user == "adele@contoso.com")
                        && c.password.expose() == "right"
                    {
                        AuthAnswer::Accepted(adele())
                    } else {
                        AuthAnswer::Refused
                    };
                    let more = self.session.auth_answer(answer);
                    self.perform(more, text);
                }
                Action::Accept {
                    envelope, message, ..
                } => {
                    self.accepted.push((envelope, message));
                    let more = self.session.accept_answer(Ok("E1".into()));
                    self.perform(more, text);
                }
            }
        }
    }

    fn signed_in(&mut self) {
        self.say("EHLO client\r\n");
        let plain = STANDARD.encode("\0adele\0right");
        assert!(
            self.say(&format!("AUTH PLAIN {plain}\r\n"))
                .starts_with("235 2.7.0")
        );
    }
}

const MESSAGE: &str =
    "From: Adele <adele@contoso.com>\r\nTo: b@x.com\r\nSubject: hi\r\n\r\nbody\r\n.\r\n";

#[test]
fn a_whole_submission_with_pipelining() {
    let mut d = Driver::tls();
    assert_eq!(
        d.session.greeting().to_bytes(),
        b"220 relay.test ESMTP mailhost relay\r\n"
    );
    let ehlo = d.say("EHLO client\r\n");
    for ext in [
        "PIPELINING",
        "SIZE 1000",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "AUTH PLAIN LOGIN",
    ] {
        assert!(ehlo.contains(ext), "{ext}: {ehlo}");
    }
    assert!(!ehlo.contains("STARTTLS"), "already TLS: {ehlo}");
    let plain = STANDARD.encode("\0adele\0right");
    let replies = d.say(&format!(
        "AUTH PLAIN {plain}\r\nMAIL FROM:<adele@contoso.com> BODY=8BITMIME RET=HDRS ENVID=abc\r\nRCPT TO:<b@x.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@x.com\r\nRCPT TO:<hidden@y.com>\r\nDATA\r\n{MESSAGE}QUIT\r\n"
    ));
    assert_eq!(
        replies,
        "235 2.7.0 Authentication successful\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as E1\r\n221 2.0.0 Bye\r\n"
    );
    assert!(d.closed);
    let (envelope, message) = &d.accepted[0];
    assert_eq!(envelope.addresses(), ["b@x.com", "hidden@y.com"]);
    assert!(envelope.eight_bit_mime);
    assert_eq!(envelope.ret, DsnReturn::Headers);
    assert_eq!(envelope.envid.as_deref(), Some("abc"));
    assert!(envelope.recipients[0].notify_success && envelope.recipients[0].notify_failure);
    assert_eq!(envelope.recipients[0].orcpt.as_deref(), Some("b@x.com"));
    assert!(envelope.recipients[1].notify_failure && !envelope.recipients[1].notify_success);
    assert!(message.ends_with(b"\r\n\r\nbody\r\n"));
}

#[test]
fn auth_login_and_user_name_as_address() {
    let mut d = Driver::tls();
    d.say("EHLO c\r\n");
    assert_eq!(d.say("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        d.say(&format!("{}\r\n", STANDARD.encode("adele@contoso.com"))),
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert!(
        d.say(&format!("{}\r\n", STANDARD.encode("right")))
            .starts_with("235 2.7.0")
    );
    let mut d = Driver::tls();
    d.say("EHLO c\r\n");
    let initial = STANDARD.encode("adele");
    assert_eq!(
        d.say(&format!("AUTH LOGIN {initial}\r\n")),
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert_eq!(d.say("*\r\n"), "501 5.7.0 Authentication cancelled\r\n");
    assert_eq!(d.say("AUTH PLAIN\r\n"), "334 \r\n");
}

#[test]
fn no_auth_means_no_relaying() {
    let mut d = Driver::tls();
    d.say("EHLO c\r\n");
    assert_eq!(
        d.say("MAIL FROM:<adele@contoso.com>\r\n"),
        "530 5.7.0 Authentication required\r\n"
    );
    assert_eq!(
        d.say("RCPT TO:<b@x.com>\r\n"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
}

#[test]
fn auth_needs_tls_unless_loopback() {
    let mut d = Driver::new(config(), false);
    let ehlo = d.say("EHLO c\r\n");
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    assert_eq!(
        d.say("AUTH PLAIN AGFkZWxlAHJpZ2h0\r\n"),
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
    let loopback = SessionConfig {
        auth_without_tls: true,
        ..config()
    };
    let mut d = Driver::new(loopback, false);
    assert!(d.say("EHLO c\r\n").contains("AUTH PLAIN LOGIN"));
    assert!(d.say("AUTH PLAIN AGFkZWxlAHJpZ2h0\r\n").starts_with("235"));
}

#[test]
fn starttls_resets_and_drops_pipelined_input() {
    let mut d = Driver::new(config(), false);
    d.say("EHLO c\r\n");
    let replies = d.say("STARTTLS\r\nMAIL FROM:<adele@contoso.com>\r\n");
    assert_eq!(replies, "220 2.0.0 Ready to start TLS\r\n");
    assert!(d.tls_started && d.session.is_tls());
    assert_eq!(
        d.say("MAIL FROM:<a@b.c>\r\n"),
        "503 5.5.1 Error: send EHLO or HELO first\r\n"
    );
    let ehlo = d.say("EHLO c\r\n");
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    assert_eq!(
        d.say("STARTTLS\r\n"),
        "503 5.5.1 Error: TLS already active\r\n"
    );
    let none = SessionConfig {
        starttls: false,
        ..config()
    };
    let mut d = Driver::new(none, false);
    d.say("EHLO c\r\n");
    assert!(d.say("STARTTLS\r\n").starts_with("502 5.5.1"));
}

#[test]
fn wrong_password() {
    let mut d = Driver::tls();
    d.say("EHLO c\r\n");
    let plain = STANDARD.encode("\0adele\0wrong");
    assert_eq!(
        d.say(&format!("AUTH PLAIN {plain}\r\n")),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert_eq!(
        d.say("AUTH PLAIN !!!\r\n"),
        "501 5.5.2 Error: the response is not valid base64\r\n"
    );
    assert_eq!(d.say("AUTH CRAM-MD5\r\n").get(..9), Some("504 5.5.4"));
}

#[test]
fn locked_out_client() {
    let mut d = Driver::tls();
    d.lock_out = true;
    d.say("EHLO c\r\n");
    let plain = STANDARD.encode("\0adele\0right");
    let reply = d.say(&format!("AUTH PLAIN {plain}\r\nNOOP\r\n"));
    assert!(reply.starts_with("421 4.7.0 Too many failed"), "{reply}");
    assert!(!reply.contains("250"), "nothing after the lockout: {reply}");
    assert!(d.closed);
}

#[test]
fn sender_not_allowed() {
    let mut d = Driver::tls();
    d.signed_in();
    let r = d.say("MAIL FROM:<ceo@contoso.com>\r\n");
    assert!(
        r.starts_with("550 5.7.1 Sender address <ceo@contoso.com>"),
        "{r}"
    );
    assert!(d.say("MAIL FROM:<>\r\n").starts_with("550 5.7.1"));
    assert_eq!(
        d.say("MAIL FROM:<Sales@Contoso.com>\r\n"),
        "250 2.1.0 Ok\r\n"
    );
    d.say("RCPT TO:<b@x.com>\r\nDATA\r\n");
    let r = d.say("From: ceo@contoso.com\r\n\r\nx\r\n.\r\n");
    assert!(
        r.starts_with("550 5.7.1 Header From <ceo@contoso.com>"),
        "{r}"
    );
    d.say("MAIL FROM:<adele@contoso.com>\r\nRCPT TO:<b@x.com>\r\nDATA\r\n");
    assert!(
        d.say("Subject: none\r\n\r\nx\r\n.\r\n")
            .starts_with("554 5.6.0 Error: the message has no From")
    );
    assert!(d.accepted.is_empty());
}

#[test]
fn too_big_by_size_and_by_data() {
    let mut d = Driver::tls();
    d.signed_in();
    let r = d.say("MAIL FROM:<adele@contoso.com> SIZE=1001\r\n");
    assert!(r.starts_with("552 5.3.4"), "{r}");
    assert_eq!(
        d.say("MAIL FROM:<adele@contoso.com> SIZE=1000\r\n"),
        "250 2.1.0 Ok\r\n"
    );
    d.say("RCPT TO:<b@x.com>\r\nDATA\r\n");
    let big = format!(
        "From: adele@contoso.com\r\n\r\n{}\r\n.\r\n",
        "x".repeat(1200)
    );
    assert!(d.say(&big).starts_with("552 5.3.4"));
    assert!(d.accepted.is_empty());
    assert_eq!(d.say("NOOP\r\n"), "250 2.0.0 Ok\r\n", "the session goes on");
}

#[test]
fn too_many_recipients() {
    let mut d = Driver::tls();
    d.signed_in();
    d.say("MAIL FROM:<adele@contoso.com>\r\n");
    for i in 0..3 {
        assert_eq!(
            d.say(&format!("RCPT TO:<r{i}@x.com>\r\n")),
            "250 2.1.5 Ok\r\n"
        );
    }
    assert_eq!(
        d.say("RCPT TO:<R0@x.com>\r\n"),
        "250 2.1.5 Ok\r\n",
        "a duplicate is no new one"
    );
    assert_eq!(
        d.say("RCPT TO:<r3@x.com>\r\n"),
        "452 4.5.3 Error: too many recipients (at most 3 per message)\r\n"
    );
}

#[test]
fn bare_lf_and_cr_in_commands_close_the_session() {
    for line in ["NOOP\n", "NOOP\rRSET\r\n", "EHLO a\r\r\n"] {
        let mut d = Driver::tls();
        let r = d.say(line);
        assert!(r.starts_with("500 5.5.2 Error: bare"), "{line:?}: {r}");
        assert!(d.closed, "{line:?}");
    }
}

#[test]
fn bare_lf_in_data_is_refused_and_nothing_smuggled_runs() {
    let mut d = Driver::tls();
    d.signed_in();
    d.say("MAIL FROM:<adele@contoso.com>\r\nRCPT TO:<b@x.com>\r\nDATA\r\n");
    let r = d.say(
        "From: adele@contoso.com\r\n\r\nx\n.\r\nMAIL FROM:<adele@contoso.com>\r\nRCPT TO:<v@x.com>\r\nDATA\r\nFrom: adele@contoso.com\r\n\r\nsmuggled\r\n.\r\n",
    );
    assert!(
        r.starts_with("554 5.6.0 Error: bare <CR> or <LF> in message line 3"),
        "{r}"
    );
    assert_eq!(r.lines().count(), 1, "{r}");
    assert!(d.closed && d.accepted.is_empty());
}

#[test]
fn over_long_lines() {
    let mut d = Driver::tls();
    let r = d.say(&format!("NOOP {}\r\nNOOP\r\n", "x".repeat(600)));
    assert_eq!(
        r,
        "500 5.5.2 Error: line too long (a command line is at most 512 octets)\r\n250 2.0.0 Ok\r\n"
    );
    // in pieces, without a line end for a long time
    let mut d = Driver::tls();
    assert_eq!(d.say(&"y".repeat(400)), "");
    assert_eq!(d.say(&"y".repeat(400)), "");
    assert!(d.say("\r\n").starts_with("500 5.5.2 Error: line too long"));
    // AUTH lines may be longer (RFC 4954)
    let mut d = Driver::tls();
    d.say("EHLO c\r\n");
    let long = STANDARD.encode(format!("\0adele\0{}", "p".repeat(700)));
    assert!(d.say(&format!("AUTH PLAIN {long}\r\n")).starts_with("535"));
}

#[test]
fn eight_bit_without_8bitmime() {
    let mut d = Driver::tls();
    d.signed_in();
    d.say("MAIL FROM:<adele@contoso.com>\r\nRCPT TO:<b@x.com>\r\nDATA\r\n");
    let r = d.say("From: adele@contoso.com\r\n\r\ncaf\u{e9}\r\n.\r\n");
    assert!(r.starts_with("554 5.6.1"), "{r}");
    d.say("MAIL FROM:<adele@contoso.com> SMTPUTF8\r\nRCPT TO:<b@x.com>\r\nDATA\r\n");
    let r = d.say("From: adele@contoso.com\r\nSubject: caf\u{e9}\r\n\r\ncaf\u{e9}\r\n.\r\n");
    assert!(r.starts_with("250 2.0.0"), "{r}");
}

#[test]
fn dot_unstuffing_reaches_the_backend() {
    let mut d = Driver::tls();
    d.signed_in();
    d.say("MAIL FROM:<adele@contoso.com>\r\nRCPT TO:<b@x.com>\r\nDATA\r\n");
    d.say("From: adele@contoso.com\r\n\r\n..\r\n...x\r\n.\r\n");
    assert_eq!(
        d.accepted[0].1,
        b"From: adele@contoso.com\r\n\r\n.\r\n..x\r\n"
    );
}

#[test]
fn sequence_errors_and_small_commands() {
    let mut d = Driver::tls();
    assert_eq!(
        d.say("MAIL FROM:<a@b.c>\r\n"),
        "503 5.5.1 Error: send EHLO or HELO first\r\n"
    );
    assert_eq!(d.say("HELO c\r\n"), "250 relay.test\r\n");
    assert_eq!(d.say("DATA\r\n"), "503 5.5.1 Error: need MAIL command\r\n");
    assert!(d.say("VRFY adele\r\n").starts_with("252 2.5.2"));
    assert!(d.say("EXPN staff\r\n").starts_with("502 5.5.1"));
    assert!(d.say("HELP\r\n").starts_with("214-2.0.0"));
    assert_eq!(d.say("NOOP\r\n"), "250 2.0.0 Ok\r\n");
    assert_eq!(
        d.say("BOGUS\r\n"),
        "500 5.5.1 Error: command not recognized\r\n"
    );
    assert!(d.say("BDAT 10 LAST\r\n").starts_with("502 5.5.1"));
    d.signed_in();
    assert!(
        d.say("AUTH PLAIN AGFkZWxlAHJpZ2h0\r\n")
            .starts_with("503 5.5.1")
    );
    d.say("MAIL FROM:<adele@contoso.com>\r\n");
    assert!(
        d.say("MAIL FROM:<adele@contoso.com>\r\n")
            .starts_with("503 5.5.1 Error: nested")
    );
    assert!(d.say("DATA\r\n").starts_with("554 5.5.1"));
    assert_eq!(d.say("RSET\r\n"), "250 2.0.0 Ok\r\n");
    assert!(d.say("RCPT TO:<b@x.com>\r\n").starts_with("503"));
    assert!(
        d.say("MAIL FROM:<adele@contoso.com> BODY=BINARYMIME\r\n")
            .starts_with("555")
    );
}

#[test]
fn too_many_errors_close_the_session() {
    let config = SessionConfig {
        max_errors: 3,
        ..config()
    };
    let mut d = Driver::new(config, true);
    let r = d.say("X\r\nX\r\nX\r\nNOOP\r\n");
    assert!(r.contains("421 4.7.0"), "{r}");
    assert!(!r.contains("250"), "{r}");
    assert!(d.closed);
}

#[test]
fn trusted_network_sends_without_auth() {
    let mut session = Session::new(config(), false, Some(adele()));
    let mut replies = String::new();
    for a in session.feed(b"HELO printer\r\nMAIL FROM:<adele@contoso.com>\r\n") {
        if let Action::Reply(r) = a {
            replies.push_str(&r.to_string());
            replies.push('\n');
        }
    }
    assert!(replies.ends_with("250 2.1.0 Ok\n"), "{replies}");
}

#[test]
fn timeouts_and_shutdown() {
    let mut d = Driver::tls();
    let mut text = String::new();
    let actions = d.session.timed_out();
    d.perform(actions, &mut text);
    assert!(text.starts_with("421 4.4.2"), "{text}");
    assert!(d.closed && d.session.is_closed());
    assert!(d.session.feed(b"NOOP\r\n").is_empty());
}

#[test]
fn temporary_failure_to_record() {
    let mut s = Session::new(config(), true, Some(adele()));
    s.feed(b"EHLO c\r\nMAIL FROM:<adele@contoso.com>\r\nRCPT TO:<b@x.com>\r\nDATA\r\n");
    let actions = s.feed(MESSAGE.as_bytes());
    assert!(matches!(actions.last(), Some(Action::Accept { .. })));
    assert!(s.feed(b"NOOP\r\n").is_empty(), "no reply while waiting");
    let actions = s.accept_answer(Err(AcceptError::Temporary("disk full".into())));
    let texts: Vec<String> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply(r) => Some(r.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["451 4.3.0 disk full", "250 2.0.0 Ok"]);
}

/// The fuzz corpus (`fuzz/corpus/smtp_session`) replayed, so CI exercises it.
#[test]
fn fuzz_corpus_replays() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/smtp_session");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        super::replay::replay(&bytes);
        n += 1;
    }
    assert!(n >= 10, "the corpus in {} has {n} inputs", dir.display());
}
