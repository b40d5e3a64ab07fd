//! The body of `POST /v1/emails` and its conversion into an [`ApiSubmission`]. Shape errors
//! (unknown fields, wrong types) are 400 from serde; content errors found here (bad base64, a
//! header name that is not a token, an attachment name with a path or line break) are 422.
//! Addresses, CR/LF in values and the staff member are checked by the engine, which records
//! nothing when any is wrong.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::backend::{ApiSubmission, InlineAttachment};
use super::errors::ApiError;
use crate::delivery::compose::{Draft, content_type_for};

/// `POST /v1/emails`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    /// The sending staff member's ID.
    pub staff: String,
    /// To addresses.
    #[serde(default)]
    pub to: Vec<String>,
    /// Cc addresses.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Bcc addresses.
    #[serde(default)]
    pub bcc: Vec<String>,
    /// Reply-To addresses.
    #[serde(default)]
    pub reply_to: Vec<String>,
    /// An alternate From (Send As / on behalf).
    #[serde(default)]
    pub from: Option<String>,
    /// The subject.
    #[serde(default)]
    pub subject: String,
    /// The body.
    #[serde(default)]
    pub body: String,
    /// Whether the body is HTML.
    #[serde(default)]
    pub html: bool,
    /// Attachments, inline.
    #[serde(default)]
    pub attachments: Vec<AttachmentRequest>,
    /// Custom headers, `{"X-Name": "value"}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// One attachment of [`EmailRequest`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRequest {
    /// The file name recipients see.
    pub name: String,
    /// The MIME type; guessed from the name when absent.
    #[serde(default)]
    pub content_type: Option<String>,
    /// The content, base64 (standard alphabet, padding optional, line breaks allowed).
    pub content_base64: String,
}

/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Checks an `Idempotency-Key` header value: 1 to 255 visible ASCII characters.
///
/// # Errors
/// 400.
pub fn idempotency_key(value: &[u8]) -> Result<String, ApiError> {
    let ok = (1..=MAX_IDEMPOTENCY_KEY).contains(&value.len())
        && value.iter().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(String::from_utf8_lossy(value).into_owned())
    } else {
        Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!(
                "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters without spaces, such as a UUID"
            ),
        ))
    }
}

impl EmailRequest {
    /// The submission this request asks for.
    ///
    /// # Errors
    /// 422 for an attachment or header that cannot be used.
    pub fn into_submission(
        self,
        idempotency_key: Option<String>,
    ) -> Result<ApiSubmission, ApiError> {
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| header_line(name, value))
            .collect::<Result<Vec<_>, _>>()?;
        let attachments = self
            .attachments
            .into_iter()
            .enumerate()
            .map(|(i, a)| attachment(i, a))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ApiSubmission {
            staff_id: self.staff,
            draft: Draft {
                to: self.to,
                cc: self.cc,
                bcc: self.bcc,
                reply_to: self.reply_to,
                from: self.from,
                subject: self.subject,
                body: Some(self.body),
                body_file: None,
                html: self.html,
                attach: Vec::new(),
                headers,
            },
            attachments,
            idempotency_key,
        })
    }
}

/// `Name: value` for the draft, refusing names that would smuggle a second header.
fn header_line(name: &str, value: &str) -> Result<String, ApiError> {
    let is_token = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !is_token {
        return Err(ApiError::invalid(
            "invalid_header",
            format!(
                "header name '{}' is not accepted: it may hold only letters, digits, '-' and '_' (custom headers start with 'X-')",
                name.escape_debug()
            ),
        ));
    }
    if value.contains(['\r', '\n']) {
        return Err(ApiError::invalid(
            "invalid_header",
            format!(
                "the value of header '{name}' contains a line break (CR or LF), which is not allowed in email headers"
            ),
        ));
    }
    Ok(format!("{name}: {value}"))
}

fn attachment(index: usize, request: AttachmentRequest) -> Result<InlineAttachment, ApiError> {
    let at = |what: String| {
        ApiError::invalid(
            "invalid_attachment",
            format!(
                "attachments[{index}] ('{}'): {what}",
                request.name.escape_debug()
            ),
        )
    };
    let name = request.name.trim();
    if name.is_empty() || name.len() > 255 {
        return Err(at("give a file name of 1 to 255 bytes".into()));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
        || name == "."
        || name == ".."
    {
        return Err(at(
            "the name may not hold a line break, another control character, '/' or '\\'".into(),
        ));
    }
    let content_type = match &request.content_type {
        Some(t) if t.contains(['\r', '\n']) || !t.contains('/') || t.trim().is_empty() => {
            return Err(at(format!(
                "content_type '{}' is not a MIME type such as application/pdf",
                t.escape_debug()
            )));
        }
        Some(t) => t.trim().to_string(),
        None => content_type_for(name).to_string(),
    };
    let compact: String = request
        .content_base64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let padded = match compact.len() % 4 {
        2 => format!("{compact}=="),
        3 => format!("{compact}="),
        _ => compact,
    };
    let data = STANDARD
        .decode(padded.as_bytes())
        .map_err(|e| at(format!("content_base64 is not valid base64 ({e})")))?;
    Ok(InlineAttachment {
        name: name.to_string(),
        content_type,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: &str) -> EmailRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_full_request_becomes_a_submission() {
        let submission = request(
            r#"{"staff": "adele", "to": ["a@example.com"], "subject": "Hi", "body": "<b>x</b>",
                "html": true, "headers": {"X-Ref": "42"},
                "attachments": [{"name": "r.pdf", "content_base64": "aGVsbG8"}]}"#,
        )
        .into_submission(Some("k1".into()))
        .unwrap();
        assert_eq!(submission.staff_id, "adele");
        assert_eq!(submission.draft.headers, vec!["X-Ref: 42".to_string()]);
        assert!(submission.draft.html);
        assert_eq!(submission.attachments[0].data, b"hello");
        assert_eq!(submission.attachments[0].content_type, "application/pdf");
        assert_eq!(submission.idempotency_key.as_deref(), Some("k1"));
    }

    #[test]
    fn bad_content_is_422_naming_the_field() {
        let bad_header = request(r#"{"staff": "a", "headers": {"X-A: b\r\nBcc": "c"}}"#)
            .into_submission(None)
            .unwrap_err();
        assert_eq!(bad_header.status.as_u16(), 422);
        let crlf = request(r#"{"staff": "a", "headers": {"X-A": "b\r\nBcc: c"}}"#)
            .into_submission(None)
            .unwrap_err();
        assert!(crlf.message.contains("line break"), "{}", crlf.message);
        let base64 = request(
            r#"{"staff": "a", "attachments": [{"name": "x.txt", "content_base64": "!!"}]}"#,
        )
        .into_submission(None)
        .unwrap_err();
        assert!(
            base64.message.contains("attachments[0]"),
            "{}",
            base64.message
        );
        let path =
            request(r#"{"staff": "a", "attachments": [{"name": "../x", "content_base64": ""}]}"#)
                .into_submission(None)
                .unwrap_err();
        assert_eq!(path.code, "invalid_attachment");
    }

    #[test]
    fn shape_errors_are_serde_errors() {
        assert!(serde_json::from_str::<EmailRequest>(r#"{"staff": 1}"#).is_err());
        assert!(serde_json::from_str::<EmailRequest>(r#"{"staff": "a", "too": []}"#).is_err());
        assert!(serde_json::from_str::<EmailRequest>(r#"{"to": []}"#).is_err());
    }

    #[test]
    fn idempotency_keys_are_checked() {
        assert_eq!(idempotency_key(b"abc-123").unwrap(), "abc-123");
        assert!(idempotency_key(b"").is_err());
        assert!(idempotency_key(b"a b").is_err());
        assert!(idempotency_key(&[b'a'; 256]).is_err());
    }
}
