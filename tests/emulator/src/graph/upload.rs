//! Large-attachment upload sessions (`createUploadSession` + `PUT {uploadUrl}`): in-order
//! ranges, at most 4 MB per PUT, no `Authorization` header. Bytes are hashed as they arrive and
//! dropped; only name, type, size and SHA-256 are kept.

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

use crate::mailbox::AttachmentInfo;
use crate::seed;

/// Lifetime of an upload session, in seconds.
pub(crate) const SESSION_LIFETIME_SECS: u64 = 6 * 3600;

/// One upload session.
#[derive(Debug, Clone)]
pub(crate) struct UploadSession {
    pub(crate) id: String,
    pub(crate) auth_token: String,
    pub(crate) mailbox: String,
    pub(crate) mailbox_id: String,
    pub(crate) message_id: String,
    pub(crate) client_id: String,
    pub(crate) name: String,
    pub(crate) content_type: String,
    pub(crate) size: u64,
    pub(crate) is_inline: bool,
    pub(crate) content_id: Option<String>,
    pub(crate) next: u64,
    pub(crate) hasher: Sha256,
    pub(crate) busy: bool,
    pub(crate) expires_at: u64,
}

/// Why a PUT was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UploadError {
    /// No such session (or wrong token, expired, cancelled, finished).
    NotFound,
    /// Content-Range missing or malformed, or its total differs from the session size.
    BadRange(String),
    /// Bytes not in order (the next expected offset is given).
    OutOfOrder { next: u64 },
    /// More than 4 MB in one PUT.
    ChunkTooLarge,
    /// Body length differs from the range.
    LengthMismatch,
    /// Another PUT of this session is in progress.
    Busy,
}

/// A parsed `Content-Range: bytes start-end/total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) total: u64,
}

/// Parses a `Content-Range` header value.
pub(crate) fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let r = ContentRange {
        start: start.trim().parse().ok()?,
        end: end.trim().parse().ok()?,
        total: total.trim().parse().ok()?,
    };
    (r.start <= r.end && r.end < r.total).then_some(r)
}

/// What a PUT achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Progress {
    /// More bytes expected from `next`.
    Partial { next: u64, expires_at: u64 },
    /// The attachment is complete and was added to the draft.
    Complete {
        attachment: AttachmentInfo,
        mailbox: String,
        mailbox_id: String,
        message_id: String,
    },
}

/// All live sessions.
#[derive(Debug, Default)]
pub(crate) struct UploadSessions {
    sessions: HashMap<String, UploadSession>,
}

impl UploadSessions {
    /// Adds a session.
    pub(crate) fn insert(&mut self, session: UploadSession) {
        self.sessions.insert(session.id.clone(), session);
    }

    /// The session `id` if `token` matches and it has not expired.
    pub(crate) fn get(&self, id: &str, token: &str, now: u64) -> Option<&UploadSession> {
        self.sessions
            .get(id)
            .filter(|s| s.auth_token == token && now < s.expires_at)
    }

    /// Cancels a session.
    pub(crate) fn remove(&mut self, id: &str, token: &str, now: u64) -> bool {
        if self.get(id, token, now).is_some() {
            self.sessions.remove(id);
            true
        } else {
            false
        }
    }

    /// Step 1 of a PUT: checks the range and takes the hasher out (the bytes are hashed without
    /// the state lock held).
    pub(crate) fn begin_put(
        &mut self,
        id: &str,
        token: &str,
        range: Option<&str>,
        length: u64,
        now: u64,
    ) -> Result<(ContentRange, Sha256), UploadError> {
        let session = self
            .sessions
            .get_mut(id)
            .filter(|s| s.auth_token == token && now < s.expires_at)
            .ok_or(UploadError::NotFound)?;
        let range = range.and_then(parse_content_range).ok_or_else(|| {
            UploadError::BadRange("The Content-Range header is missing or malformed.".into())
        })?;
        if range.total != session.size {
            return Err(UploadError::BadRange(format!(
                "The Content-Range total {} does not match the attachment size {}.",
                range.total, session.size
            )));
        }
        if session.busy {
            return Err(UploadError::Busy);
        }
        if range.start != session.next {
            return Err(UploadError::OutOfOrder { next: session.next });
        }
        let len = range.end - range.start + 1;
        if len > seed::MAX_UPLOAD_CHUNK_BYTES {
            return Err(UploadError::ChunkTooLarge);
        }
        if len != length {
            return Err(UploadError::LengthMismatch);
        }
        session.busy = true;
        Ok((range, session.hasher.clone()))
    }

    /// Step 2 of a PUT: stores the advanced hasher; completes the attachment on the last range.
    pub(crate) fn finish_put(
        &mut self,
        id: &str,
        range: ContentRange,
        hasher: Sha256,
    ) -> Result<Progress, UploadError> {
        let session = self.sessions.get_mut(id).ok_or(UploadError::NotFound)?;
        session.busy = false;
        session.hasher = hasher;
        session.next = range.end + 1;
        if session.next < session.size {
            return Ok(Progress::Partial {
                next: session.next,
                expires_at: session.expires_at,
            });
        }
        let Some(session) = self.sessions.remove(id) else {
            return Err(UploadError::NotFound);
        };
        let attachment = AttachmentInfo {
            id: crate::tokens::random_token("AAMkAGI2att", 24),
            name: session.name,
            content_type: session.content_type,
            size: session.size,
            sha256: hex::encode(session.hasher.finalize()),
            is_inline: session.is_inline,
            content_id: session.content_id,
        };
        Ok(Progress::Complete {
            attachment,
            mailbox: session.mailbox,
            mailbox_id: session.mailbox_id,
            message_id: session.message_id,
        })
    }

    /// Releases a session after a failed step 2 caller (e.g. body read error).
    pub(crate) fn release(&mut self, id: &str) {
        if let Some(s) = self.sessions.get_mut(id) {
            s.busy = false;
        }
    }

    /// The (client id, mailbox) a session belongs to, for the concurrency limit.
    pub(crate) fn owner(&self, id: &str) -> Option<(String, String)> {
        self.sessions
            .get(id)
            .map(|s| (s.client_id.clone(), s.mailbox.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(size: u64) -> UploadSession {
        UploadSession {
            id: "s".into(),
            auth_token: "t".into(),
            mailbox: "alex@x".into(),
            mailbox_id: "id".into(),
            message_id: "m".into(),
            client_id: "c".into(),
            name: "big.bin".into(),
            content_type: "application/octet-stream".into(),
            size,
            is_inline: false,
            content_id: None,
            next: 0,
            hasher: Sha256::new(),
            busy: false,
            expires_at: 100,
        }
    }

    fn put(s: &mut UploadSessions, range: &str, data: &[u8]) -> Result<Progress, UploadError> {
        let (r, mut h) = s.begin_put("s", "t", Some(range), data.len() as u64, 1)?;
        h.update(data);
        s.finish_put("s", r, h)
    }

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range("bytes 0-9/20"),
            Some(ContentRange {
                start: 0,
                end: 9,
                total: 20
            })
        );
        assert_eq!(parse_content_range("bytes 10-9/20"), None);
        assert_eq!(parse_content_range("bytes 0-20/20"), None);
        assert_eq!(parse_content_range("0-9/20"), None);
    }

    #[test]
    fn in_order_chunks_complete_with_the_right_hash() {
        let mut s = UploadSessions::default();
        s.insert(session(10));
        assert_eq!(
            put(&mut s, "bytes 5-9/10", b"fghij"),
            Err(UploadError::OutOfOrder { next: 0 })
        );
        assert_eq!(
            put(&mut s, "bytes 0-4/10", b"abcde"),
            Ok(Progress::Partial {
                next: 5,
                expires_at: 100
            })
        );
        assert_eq!(
            put(&mut s, "bytes 0-4/10", b"abcde"),
            Err(UploadError::OutOfOrder { next: 5 })
        );
        assert!(matches!(
            put(&mut s, "bytes 5-9/11", b"fghij"),
            Err(UploadError::BadRange(_))
        ));
        assert_eq!(
            put(&mut s, "bytes 5-9/10", b"fgh"),
            Err(UploadError::LengthMismatch)
        );
        match put(&mut s, "bytes 5-9/10", b"fghij") {
            Ok(Progress::Complete { attachment, .. }) => {
                assert_eq!(attachment.size, 10);
                assert_eq!(
                    attachment.sha256,
                    hex::encode(Sha256::digest(b"abcdefghij"))
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            put(&mut s, "bytes 0-4/10", b"abcde"),
            Err(UploadError::NotFound)
        );
    }

    #[test]
    fn chunk_limit_wrong_token_and_expiry() {
        let mut s = UploadSessions::default();
        let size = 10 * 1024 * 1024;
        s.insert(session(size));
        let too_big = seed::MAX_UPLOAD_CHUNK_BYTES;
        let range = format!("bytes 0-{too_big}/{size}");
        assert_eq!(
            s.begin_put("s", "t", Some(&range), too_big + 1, 1)
                .unwrap_err(),
            UploadError::ChunkTooLarge
        );
        assert_eq!(
            s.begin_put("s", "wrong", Some("bytes 0-0/10"), 1, 1)
                .unwrap_err(),
            UploadError::NotFound
        );
        assert_eq!(
            s.begin_put("s", "t", Some("bytes 0-0/10"), 1, 100)
                .unwrap_err(),
            UploadError::NotFound
        );
        assert!(s.remove("s", "t", 1));
        assert!(!s.remove("s", "t", 1));
    }
}
