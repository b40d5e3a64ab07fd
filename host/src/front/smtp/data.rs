//! The DATA phase: undoes dot-stuffing (RFC 5321 §4.5.2), finds the end of the message (only
//! `CRLF . CRLF`), and notes what makes the message unacceptable while it keeps reading to that
//! end, so that nothing inside a refused message is ever taken as a command.
//!
//! Bare line ends: RFC 5321 §2.3.8 says CR and LF must only occur together as CRLF, and that a
//! server should not recognise a lone LF as a line end. Lenient servers that did, together with
//! servers that only accept `CRLF.CRLF`, allowed "SMTP smuggling" (CVE-2023-51764/51765/51766):
//! a second message hidden behind `LF . CRLF`. Postfix 3.9 (`smtpd_forbid_bare_newline =
//! normal`) therefore refuses bare LF. mailhost does the same, stricter, for CR and LF alike: a
//! message with a bare CR or LF is read to its real end and refused with `554 5.6.0`, and the
//! session is closed, as Postfix does.

/// What the receiver found once the message ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataOutcome {
    /// The message, unstuffed, with CRLF line ends (empty when it was too big).
    pub message: Vec<u8>,
    /// The size the message had (also when it was discarded for being too big).
    pub size: u64,
    /// Over the size limit.
    pub too_big: bool,
    /// The 1-based line of the first bare CR or LF, if any.
    pub bare_newline_line: Option<u64>,
    /// A byte over 0x7F occurred.
    pub eight_bit: bool,
}

/// Receives the bytes after `354` up to and including `CRLF . CRLF`.
#[derive(Debug)]
pub struct DataReceiver {
    max_size: u64,
    at_line_start: bool,
    line: u64,
    outcome: DataOutcome,
}

/// A partial line is held back at most this long before it is passed on.
const HOLD: usize = 64 * 1024;

impl DataReceiver {
    /// A receiver that keeps at most `max_size` bytes.
    pub fn new(max_size: u64) -> Self {
        Self {
            max_size,
            at_line_start: true,
            line: 1,
            outcome: DataOutcome {
                message: Vec::new(),
                size: 0,
                too_big: false,
                bare_newline_line: None,
                eight_bit: false,
            },
        }
    }

    /// Takes bytes from the front of `input`; returns the outcome once the terminating
    /// `CRLF . CRLF` was consumed (what follows stays in `input`), or `None` when it needs more.
    pub fn ingest(&mut self, input: &mut Vec<u8>) -> Option<DataOutcome> {
        let mut used = 0;
        let result = loop {
            let rest = &input[used..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(pos) => {
                    let line = &rest[..=pos];
                    used += pos + 1;
                    if self.at_line_start && line == b".\r\n" {
                        break Some(std::mem::replace(
                            &mut self.outcome,
                            DataOutcome {
                                message: Vec::new(),
                                size: 0,
                                too_big: false,
                                bare_newline_line: None,
                                eight_bit: false,
                            },
                        ));
                    }
                    let crlf = pos > 0 && line[pos - 1] == b'\r';
                    let body_end = if crlf { pos - 1 } else { pos };
                    let segment = &line[..body_end];
                    if !crlf {
                        self.bare(self.line);
                    }
                    let start_dot = self.at_line_start && segment.first() == Some(&b'.');
                    let segment = if start_dot { &segment[1..] } else { segment };
                    let segment = segment.to_vec();
                    self.push(&segment);
                    self.append(b"\r\n");
                    // A bare LF is no line end: what follows it cannot be the terminator.
                    self.at_line_start = crlf;
                    self.line += 1;
                }
                None => {
                    // Hold a partial line back while it could still be the terminator or end
                    // in the CR of its CRLF; pass long ones on in pieces.
                    if rest.len() < HOLD && (self.at_line_start || rest.len() < 3) {
                        break None;
                    }
                    let mut take = rest.len();
                    if rest.last() == Some(&b'\r') {
                        take -= 1;
                    }
                    if take == 0 {
                        break None;
                    }
                    let segment = &rest[..take];
                    let start_dot = self.at_line_start && segment.first() == Some(&b'.');
                    let segment = if start_dot { &segment[1..] } else { segment }.to_vec();
                    used += take;
                    self.push(&segment);
                    self.at_line_start = false;
                }
            }
        };
        input.drain(..used);
        result
    }

    fn bare(&mut self, line: u64) {
        if self.outcome.bare_newline_line.is_none() {
            self.outcome.bare_newline_line = Some(line);
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if bytes.contains(&b'\r') {
            self.bare(self.line);
        }
        if bytes.iter().any(|&b| b > 0x7f) {
            self.outcome.eight_bit = true;
        }
        self.append(bytes);
    }

    fn append(&mut self, bytes: &[u8]) {
        self.outcome.size += bytes.len() as u64;
        if self.outcome.size > self.max_size {
            if !self.outcome.too_big {
                self.outcome.too_big = true;
                self.outcome.message = Vec::new();
            }
        } else {
            self.outcome.message.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]], max: u64) -> (Option<DataOutcome>, Vec<u8>) {
        let mut r = DataReceiver::new(max);
        let mut input = Vec::new();
        for chunk in chunks {
            input.extend_from_slice(chunk);
            if let Some(o) = r.ingest(&mut input) {
                return (Some(o), input);
            }
        }
        (None, input)
    }

    #[test]
    fn unstuffs_and_stops_at_the_terminator() {
        let (o, rest) = run(&[b"Subject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n"], 1000);
        let o = o.unwrap();
        assert_eq!(o.message, b"Subject: x\r\n\r\n.dot\r\n");
        assert_eq!(rest, b"QUIT\r\n");
        assert!(o.bare_newline_line.is_none() && !o.too_big && !o.eight_bit);
    }

    #[test]
    fn byte_by_byte_is_the_same() {
        let text: &[u8] = b"a\r\n..b\r\n.c\r\n\r\n.\r\n";
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        let (o, rest) = run(&chunks, 1000);
        assert_eq!(o.unwrap().message, b"a\r\n.b\r\nc\r\n\r\n");
        assert!(rest.is_empty());
    }

    #[test]
    fn empty_message() {
        let (o, _) = run(&[b".\r\n"], 10);
        assert_eq!(o.unwrap().message, b"");
    }

    #[test]
    fn smuggled_terminators_do_not_end_the_message() {
        for text in [
            &b"a\n.\r\nMAIL FROM:<x>\r\n.\r\n"[..],
            b"a\r\n.\nMAIL FROM:<x>\r\n.\r\n",
            b"a\r.\rMAIL FROM:<x>\r\n.\r\n",
            b"a\r\n.\r\r\nMAIL FROM:<x>\r\n.\r\n",
        ] {
            let (o, rest) = run(&[text], 1000);
            let o = o.unwrap();
            assert!(
                o.bare_newline_line.is_some(),
                "{:?}",
                String::from_utf8_lossy(text)
            );
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn too_big_is_read_to_the_end_and_dropped() {
        let (o, rest) = run(&[b"0123456789\r\n0123456789\r\n.\r\nX"], 15);
        let o = o.unwrap();
        assert!(o.too_big && o.message.is_empty() && o.size == 24);
        assert_eq!(rest, b"X");
    }

    #[test]
    fn long_lines_pass_in_pieces() {
        let mut text = vec![b'x'; 200_000];
        text.extend_from_slice(b"\r\n.\r\n");
        let chunks: Vec<&[u8]> = text.chunks(7000).collect();
        let (o, _) = run(&chunks, 1_000_000);
        let o = o.unwrap();
        assert_eq!(o.message.len(), 200_002);
        assert!(o.bare_newline_line.is_none());
    }

    #[test]
    fn eight_bit_is_noticed() {
        let (o, _) = run(&["é\r\n.\r\n".as_bytes()], 100);
        assert!(o.unwrap().eight_bit);
    }
}
