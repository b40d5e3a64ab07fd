//! Reading the message from standard input as sendmail does: to the end of the input, or,
//! without `-i`/`-oi`, to the first line holding only `.` (what is after it is not read).
//! Lines are not unstuffed (`..` stays `..`): that is SMTP's rule, not sendmail's.

use std::io::{self, BufRead, Read};

/// The largest message sendmail reads: above Microsoft 365's 150 MB, so a message any provider
/// could take is never refused here, and a runaway input does not fill the memory.
pub const MAX_MESSAGE_BYTES: u64 = 200 * 1024 * 1024;

/// Why the message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Reading standard input failed.
    #[error("cannot read the message from standard input: {0}")]
    Read(#[from] io::Error),
    /// More than the limit.
    #[error("the message is larger than {} MiB: send large files as attachments of a smaller message, or through a file share", .0 / (1024 * 1024))]
    TooLarge(u64),
}

/// Reads the message from `input`, at most `limit` bytes.
///
/// # Errors
/// The input could not be read, or it is larger than `limit`.
pub fn read_message(
    input: &mut impl BufRead,
    ignore_dots: bool,
    limit: u64,
) -> Result<Vec<u8>, InputError> {
    let mut message = Vec::new();
    let mut input = input.take(limit.saturating_add(1));
    if ignore_dots {
        input.read_to_end(&mut message)?;
        return within(message, limit);
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return within(message, limit);
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content == b"." {
            return Ok(message);
        }
        message.extend_from_slice(&line);
    }
}

fn within(message: Vec<u8>, limit: u64) -> Result<Vec<u8>, InputError> {
    if message.len() as u64 > limit {
        return Err(InputError::TooLarge(limit));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, ignore_dots: bool) -> String {
        String::from_utf8(read_message(&mut text.as_bytes(), ignore_dots, 1000).unwrap()).unwrap()
    }

    #[test]
    fn a_lone_dot_ends_the_message_unless_ignored() {
        let input = "To: a@x.com\n\nline\n.\nafter\n";
        assert_eq!(read(input, false), "To: a@x.com\n\nline\n");
        assert_eq!(read(input, true), input);
        assert_eq!(read("a\r\n.\r\nb\r\n", false), "a\r\n");
        assert_eq!(read("a\n.", false), "a\n");
    }

    #[test]
    fn input_over_the_limit_is_refused() {
        for ignore_dots in [true, false] {
            assert!(matches!(
                read_message(&mut "0123456789\n".as_bytes(), ignore_dots, 5),
                Err(InputError::TooLarge(5))
            ));
            assert!(read_message(&mut "01234\n".as_bytes(), ignore_dots, 6).is_ok());
        }
    }

    #[test]
    fn dots_in_text_are_kept() {
        let input = "To: a@x.com\n\n..\n. \n.x\nend";
        assert_eq!(read(input, false), input);
    }
}
