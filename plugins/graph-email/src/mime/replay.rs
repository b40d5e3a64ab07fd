//! Runs both conversions on arbitrary input and checks what must always hold. Used by the
//! `mime_convert` fuzz target and by a test replaying its corpus (`fuzz/corpus/mime_convert`).
//! Input: the envelope recipients (comma-separated) on the first line, then the message.

use mail_parser::{HeaderName, MessageParser};

use super::convert::convert;
use super::listed;
use super::rewrite::{addresses, for_mime_send};

/// Panics if an invariant breaks.
pub fn replay(input: &[u8]) {
    let split = input
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(input.len());
    let recipients: Vec<String> = String::from_utf8_lossy(&input[..split])
        .split(',')
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    let mime = input.get(split + 1..).unwrap_or_default();

    if let Ok(Some(out)) = for_mime_send(mime, &recipients, Some("<E1@mailhost>")) {
        let parsed = MessageParser::default().parse_headers(&out);
        if let Some(parsed) = parsed {
            let mut named = Vec::new();
            for list in [parsed.to(), parsed.cc(), parsed.bcc()]
                .into_iter()
                .flatten()
            {
                named.extend(addresses(list));
            }
            for r in &recipients {
                assert!(
                    listed(&named, r),
                    "envelope recipient {r} not in the headers"
                );
            }
            // Nobody the envelope does not name is in a recipient header, and the only Bcc
            // field is the one mailhost wrote (a client's would be another reading).
            for a in &named {
                assert!(listed(&recipients, a), "{a} is no envelope recipient");
            }
            let blind_fields = parsed
                .headers()
                .iter()
                .filter(|h| matches!(h.name, HeaderName::Bcc | HeaderName::ResentBcc))
                .count();
            assert!(blind_fields <= 1, "{blind_fields} Bcc fields");
        }
    }

    if let Ok(c) = convert(mime, &recipients) {
        let mut all: Vec<&str> = Vec::new();
        for p in c.to.iter().chain(&c.cc).chain(&c.bcc) {
            assert!(
                listed(&recipients, &p.address),
                "{} is no envelope recipient",
                p.address
            );
            assert!(
                !all.iter().any(|a| a.eq_ignore_ascii_case(&p.address)),
                "{} twice",
                p.address
            );
            assert!(!p.name.chars().any(char::is_control));
            all.push(&p.address);
        }
        for r in &recipients {
            assert!(listed(
                &all.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                r
            ));
        }
        assert!(!c.subject.chars().any(char::is_control));
        assert!(c.headers.len() <= super::convert::MAX_CUSTOM_HEADERS);
        for (name, value) in &c.headers {
            assert!(name.len() > 2 && name.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("x-")));
            assert!(!value.chars().any(char::is_control));
        }
        for part in &c.parts {
            assert!(!part.name.is_empty() && !part.name.chars().any(char::is_control));
            assert!(!part.is_inline || part.content_id.is_some());
        }
    }
}

#[cfg(test)]
mod tests {
    /// The fuzz corpus replayed, so CI exercises it.
    #[test]
    #[allow(clippy::unwrap_used)]
    fn fuzz_corpus_replays() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/mime_convert");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            super::replay(&std::fs::read(entry.unwrap().path()).unwrap());
            n += 1;
        }
        assert!(n >= 10, "the corpus in {} has {n} inputs", dir.display());
    }
}
