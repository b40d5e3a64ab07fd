//! Reading the message from standard input as sendmail does: to the end of the input, or,
//! without `-i`/`-oi`, to the first line holding only `.` (what is after it is not read).
//! Lines are not unstuffed (`..` stays `..`): that is SMTP's rule, not sendmail's.

use std::io::{self, BufRead};

/// Reads the message from `input`.
///
/// # Errors
/// The input could not be read.
pub fn read_message(input: &mut impl BufRead, ignore_dots: bool) -> io::Result<Vec<u8>> {
    let mut message = Vec::new();
    if ignore_dots {
        input.read_to_end(&mut message)?;
        return Ok(message);
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(message);
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content == b"." {
            return Ok(message);
        }
        message.extend_from_slice(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, ignore_dots: bool) -> String {
        String::from_utf8(read_message(&mut text.as_bytes(), ignore_dots).unwrap()).unwrap()
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
    fn dots_in_text_are_kept() {
        let input = "To: a@x.com\n\n..\n. \n.x\nend";
        assert_eq!(read(input, false), input);
    }
}
