//! The batch file: one JSON object per line, parsed into a [`Draft`], and the source key that
//! lets a rerun recognise a line it has seen.
//!
//! Parsing checks only the shape (JSON, known fields, types, a non-empty `to`); addresses, CR/LF
//! and attachments are checked by the caller's compose step, the same code `email send` uses.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use sha2::{Digest, Sha256};

/// One line of a batch file, with the same fields as `mailhost email send`'s flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// To recipients (required, at least one). A single string is accepted as a list of one.
    #[serde(deserialize_with = "one_or_many")]
    pub to: Vec<String>,
    /// Cc recipients.
    #[serde(default, deserialize_with = "one_or_many")]
    pub cc: Vec<String>,
    /// Bcc recipients.
    #[serde(default, deserialize_with = "one_or_many")]
    pub bcc: Vec<String>,
    /// Reply-To addresses.
    #[serde(default, deserialize_with = "one_or_many")]
    pub reply_to: Vec<String>,
    /// An alternate From address; `None` for the staff member's own.
    #[serde(default)]
    pub from: Option<String>,
    /// The subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// The body.
    #[serde(default)]
    pub body: Option<String>,
    /// Whether the body is HTML.
    #[serde(default)]
    pub html: bool,
    /// Files to attach. Relative paths are resolved against the batch file's folder before the
    /// draft reaches the compose step, so a batch means the same from any working directory.
    #[serde(default)]
    pub attach: Vec<PathBuf>,
    /// Custom headers, such as `{"X-Order-Id": "42"}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(deserializer) {
        Ok(OneOrMany::One(one)) => Ok(vec![one]),
        Ok(OneOrMany::Many(many)) => Ok(many),
        Err(_) => Err(serde::de::Error::custom(
            "expected an address or a list of addresses",
        )),
    }
}

/// Parses one line, saying in a few words what is wrong when it does not parse.
pub(crate) fn parse(line: &str, base: &Path) -> Result<Draft, String> {
    let mut draft: Draft = serde_json::from_str(line).map_err(describe)?;
    if draft.to.iter().all(|a| a.trim().is_empty()) {
        return Err("`to` has no address: give at least one recipient".into());
    }
    if let Some(name) = draft.headers.keys().find(|name| name.contains(':')) {
        return Err(format!(
            "header name '{name}' contains ':'; write headers as {{\"X-Name\": \"value\"}}"
        ));
    }
    for path in &mut draft.attach {
        if path.is_relative() {
            *path = base.join(&*path);
        }
    }
    Ok(draft)
}

impl From<Draft> for crate::delivery::compose::Draft {
    /// The same request as `mailhost email send` flags, for [`crate::delivery::compose::compose`]; custom
    /// headers become `X-Name: value`.
    fn from(draft: Draft) -> Self {
        Self {
            to: draft.to,
            cc: draft.cc,
            bcc: draft.bcc,
            reply_to: draft.reply_to,
            from: draft.from,
            subject: draft.subject.unwrap_or_default(),
            body: draft.body,
            html: draft.html,
            attach: draft.attach,
            headers: draft
                .headers
                .into_iter()
                .map(|(name, value)| format!("{name}: {value}"))
                .collect(),
            ..Self::default()
        }
    }
}

/// serde_json's message without its "at line 1" (a batch line is always line 1 to it).
fn describe(error: serde_json::Error) -> String {
    let text = error.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(message, _)| message);
    if error.column() > 0 {
        format!("{message} (column {})", error.column())
    } else {
        message.to_string()
    }
}

/// The key under which a line's email is stored: the canonical file path's hash, the line
/// number and the line's hash. Rerunning the same file finds the same keys; an edited line gets
/// a new one.
pub(crate) fn source_key(path_hash: &str, line_number: u64, line: &[u8]) -> String {
    format!("batch:{path_hash}:{line_number}:{}", short_hash(line))
}

/// The first 16 bytes of SHA-256, in hex.
pub(crate) fn short_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..16].iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_field() {
        let line = r#"{"to":["a@x.com"],"cc":"c@x.com","bcc":[],"reply_to":["r@x.com"],
            "from":"f@x.com","subject":"Hi","body":"<b>x</b>","html":true,
            "attach":["files/a.pdf","/abs/b.pdf"],"headers":{"X-Id":"7"}}"#
            .replace('\n', " ");
        let draft = parse(&line, Path::new("/batch")).expect("parses");
        assert_eq!(draft.cc, ["c@x.com"]);
        assert_eq!(draft.from.as_deref(), Some("f@x.com"));
        assert!(draft.html);
        assert_eq!(
            draft.attach,
            [
                PathBuf::from("/batch/files/a.pdf"),
                PathBuf::from("/abs/b.pdf")
            ]
        );
        assert_eq!(draft.headers.get("X-Id").map(String::as_str), Some("7"));
    }

    #[test]
    fn reports_what_is_wrong() {
        let base = Path::new("/");
        let unknown = parse(r#"{"to":["a@x.com"],"subjet":"x"}"#, base).expect_err("must fail");
        assert!(unknown.contains("unknown field `subjet`"), "{unknown}");
        assert!(!unknown.contains("line 1"), "{unknown}");
        let missing = parse(r#"{"subject":"x"}"#, base).expect_err("must fail");
        assert!(missing.contains("missing field `to`"), "{missing}");
        let empty = parse(r#"{"to":[]}"#, base).expect_err("must fail");
        assert!(empty.contains("`to` has no address"), "{empty}");
        assert!(
            parse("{not json", base)
                .expect_err("must fail")
                .contains("column")
        );
        assert!(
            parse(r#"{"to":[1]}"#, base)
                .expect_err("must fail")
                .contains("list of addresses")
        );
    }

    #[test]
    fn drafts_go_through_the_hosts_compose_step() {
        let line = r#"{"to":"alex@contoso.com","subject":"Hi","headers":{"X-Order":"7"}}"#;
        let draft = parse(line, Path::new("/")).expect("parses");
        let sender = crate::delivery::compose::Sender {
            email: "adele@contoso.com".into(),
            name: "Adele".into(),
        };
        let message =
            crate::delivery::compose::compose(&draft.into(), &sender, "id-1").expect("composes");
        assert_eq!(message.headers.len(), 1);
        assert_eq!(message.from.address.as_str(), "adele@contoso.com");
        let bad = parse(
            r#"{"to":"a@x.com","headers":{"X-A:B":"v"}}"#,
            Path::new("/"),
        );
        assert!(bad.expect_err("must fail").contains("X-A:B"));
    }

    #[test]
    fn keys_change_with_line_and_content() {
        let a = source_key("p", 1, b"{}");
        assert_eq!(a, source_key("p", 1, b"{}"));
        assert_ne!(a, source_key("p", 2, b"{}"));
        assert_ne!(a, source_key("p", 1, b"{ }"));
        assert_ne!(a, source_key("q", 1, b"{}"));
    }
}
