//! Drives a [`Session`] with arbitrary bytes and checks what must always hold: every reply is
//! well formed, nothing follows a close, a message is only handed over after DATA and with
//! CRLF line ends and no bare CR or LF. Used by the `smtp_session` fuzz target and by a test
//! that replays its corpus (`fuzz/corpus/smtp_session`).

use super::{Action, AuthAnswer, Session, SessionConfig};
use crate::front::smtp::envelope::Identity;

fn identity() -> Identity {
    Identity {
        staff: "adele".into(),
        addresses: vec!["adele@contoso.com".into()],
        max_recipients: 5,
    }
}

/// Feeds `input` to a fresh session (the first byte picks TLS, loopback, trusted and how the
/// rest is cut into reads) and panics if an invariant breaks.
pub fn replay(input: &[u8]) {
    let Some((&knobs, rest)) = input.split_first() else {
        return;
    };
    let config = SessionConfig {
        hostname: "fuzz.test".into(),
        max_message_bytes: 4096,
        max_recipients: 5,
        starttls: knobs & 1 != 0,
        auth_without_tls: knobs & 2 != 0,
        max_errors: 20,
    };
    let trusted = (knobs & 4 != 0).then(identity);
    let mut session = Session::new(config, knobs & 8 != 0, trusted);
    let chunk = usize::from(knobs >> 4) + 1;
    let mut closed = false;
    let mut accepted = 0usize;
    for piece in rest.chunks(chunk) {
        let mut queue = session.feed(piece);
        while !queue.is_empty() {
            let mut next = Vec::new();
            for action in queue {
                assert!(!closed, "an action after Close: {action:?}");
                match action {
                    Action::Reply(reply) => check_reply(&reply.to_bytes()),
                    Action::Close => closed = true,
                    Action::StartTls => next.extend(session.tls_started()),
                    Action::Authenticate(c) => {
                        let answer = match c.password.expose() {
                            "right" => AuthAnswer::Accepted(identity()),
                            "locked" => AuthAnswer::LockedOut(15),
                            _ => AuthAnswer::Refused,
                        };
                        next.extend(session.auth_answer(answer));
                    }
                    Action::Accept {
                        envelope, message, ..
                    } => {
                        assert!(!envelope.recipients.is_empty());
                        assert!(message.len() <= 4096);
                        check_message(&message);
                        accepted += 1;
                        next.extend(session.accept_answer(Ok(format!("E{accepted}"))));
                    }
                }
            }
            queue = next;
        }
        if closed {
            assert!(session.feed(b"NOOP\r\n").is_empty());
            return;
        }
    }
}

fn check_reply(bytes: &[u8]) {
    assert!(bytes.ends_with(b"\r\n"), "{bytes:?}");
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(line.ends_with(b"\r"), "{line:?}");
        assert!(line.len() >= 5, "{line:?}");
        assert!(line[..3].iter().all(u8::is_ascii_digit), "{line:?}");
        assert!(line[3] == b' ' || line[3] == b'-', "{line:?}");
        assert!(!line[..line.len() - 1].contains(&b'\r'), "{line:?}");
    }
}

fn check_message(message: &[u8]) {
    let mut prev = 0u8;
    for (i, &b) in message.iter().enumerate() {
        if b == b'\n' {
            assert_eq!(prev, b'\r', "bare LF at {i}");
        }
        if prev == b'\r' {
            assert_eq!(b, b'\n', "bare CR at {i}");
        }
        prev = b;
    }
    assert!(message.is_empty() || message.ends_with(b"\r\n"));
}
