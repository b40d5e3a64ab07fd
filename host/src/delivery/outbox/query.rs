//! Reading emails back: by id (or a unique id prefix), by batch source key, by status.

use rusqlite::{OptionalExtension, Row, params};
use serde::de::DeserializeOwned;

use super::record::{
    Address, Door, EmailRecord, LastError, MimeSource, ReceiptRecord, Status, Timestamp,
};
use super::{Outbox, OutboxError};

/// The columns [`from_row`] reads, in order.
pub(super) const COLUMNS: &str = "id, staff_id, provider, from_address, from_name, to_json, \
     cc_json, bcc_json, reply_to_json, subject, body, html, attachments_json, headers_json, \
     status, attempts, error_kind, error_code, error_message, error_retry_after_ms, \
     receipt_message_id, receipt_request_id, receipt_detail, created_at, updated_at, sent_at, \
     source_key, door, message_id, mime_path, envelope_from, envelope_json, not_before, mailbox, \
     recipient_count, first_attempt_at, reconcile_after, idempotency_key";

/// An id prefix shorter than this must match exactly.
const MIN_PREFIX: usize = 4;

impl Outbox {
    /// The email with this id, or with an id starting with `id` if exactly one does (at least
    /// four characters), so users can type the start of a UUID as with git.
    ///
    /// # Errors
    /// [`OutboxError::NotFound`], [`OutboxError::AmbiguousId`], or a database error.
    pub fn get(&self, id: &str) -> Result<EmailRecord, OutboxError> {
        let conn = self.conn();
        let sql = format!("SELECT {COLUMNS} FROM emails WHERE id = ?1");
        let exact = conn
            .prepare_cached(&sql)
            .and_then(|mut st| st.query_row([id], RawRow::read))
            .optional()
            .map_err(|e| self.sql(e))?;
        if let Some(raw) = exact {
            return raw.into_record();
        }
        if id.chars().count() < MIN_PREFIX {
            return Err(OutboxError::NotFound { id: id.into() });
        }
        let escaped = id
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let sql = format!(
            "SELECT {COLUMNS} FROM emails WHERE id LIKE ?1 || '%' ESCAPE '\\' ORDER BY id LIMIT 10"
        );
        let mut stmt = conn.prepare(&sql).map_err(|e| self.sql(e))?;
        let mut found = stmt
            .query_map([escaped], RawRow::read)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        match found.len() {
            0 => Err(OutboxError::NotFound { id: id.into() }),
            1 => found.remove(0).into_record(),
            count => Err(OutboxError::AmbiguousId {
                prefix: id.into(),
                count,
            }),
        }
    }

    /// The email accepted for a send-batch line, if any.
    ///
    /// # Errors
    /// A database error, or an unreadable row.
    pub fn find_by_source(&self, source_key: &str) -> Result<Option<EmailRecord>, OutboxError> {
        let sql = format!("SELECT {COLUMNS} FROM emails WHERE source_key = ?1");
        let raw = self
            .conn()
            .prepare_cached(&sql)
            .and_then(|mut st| st.query_row([source_key], RawRow::read))
            .optional()
            .map_err(|e| self.sql(e))?;
        raw.map(RawRow::into_record).transpose()
    }

    /// The email accepted under an HTTP API idempotency key, if any.
    ///
    /// # Errors
    /// A database error, or an unreadable row.
    pub fn find_by_idempotency_key(&self, key: &str) -> Result<Option<EmailRecord>, OutboxError> {
        let sql = format!("SELECT {COLUMNS} FROM emails WHERE idempotency_key = ?1");
        let raw = self
            .conn()
            .prepare_cached(&sql)
            .and_then(|mut st| st.query_row([key], RawRow::read))
            .optional()
            .map_err(|e| self.sql(e))?;
        raw.map(RawRow::into_record).transpose()
    }

    /// Queued emails whose `not_before` has passed, soonest first, at most `limit`.
    ///
    /// # Errors
    /// A database error, or an unreadable row.
    pub fn due_records(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<EmailRecord>, OutboxError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM emails WHERE status = 'queued' AND not_before <= ?1 \
             ORDER BY not_before, created_at, rowid LIMIT ?2"
        );
        self.select(
            &sql,
            params![now.millis(), i64::try_from(limit).unwrap_or(i64::MAX)],
        )
    }

    /// Emails newest first, only those with `status` when given, at most `limit` when given.
    ///
    /// # Errors
    /// A database error, or an unreadable row.
    pub fn list(
        &self,
        status: Option<Status>,
        limit: Option<usize>,
    ) -> Result<Vec<EmailRecord>, OutboxError> {
        let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let sql = format!(
            "SELECT {COLUMNS} FROM emails WHERE (?1 IS NULL OR status = ?1) \
             ORDER BY created_at DESC, rowid DESC LIMIT ?2"
        );
        self.select(&sql, params![status.map(Status::as_str), limit])
    }

    /// Failed emails whose error was temporary (throttling, a transient fault), oldest first:
    /// the ones worth retrying automatically. `mailhost email retry --failed` retries every
    /// failed email instead (`list(Some(Status::Failed), None)`): the user asked, presumably
    /// after fixing the cause.
    ///
    /// # Errors
    /// A database error, or an unreadable row.
    pub fn retryable_failed(&self) -> Result<Vec<EmailRecord>, OutboxError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM emails WHERE status = 'failed' \
             AND error_kind IN ('throttled', 'transient') ORDER BY created_at, rowid"
        );
        self.select(&sql, [])
    }

    /// How many emails there are in each status, in [`Status::ALL`] order.
    ///
    /// # Errors
    /// A database error.
    pub fn counts(&self) -> Result<Vec<(Status, u64)>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT count(*) FROM emails WHERE status = ?1")
            .map_err(|e| self.sql(e))?;
        Status::ALL
            .into_iter()
            .map(|status| {
                stmt.query_row([status.as_str()], |row| row.get::<_, i64>(0))
                    .map(|n| (status, u64::try_from(n).unwrap_or(0)))
                    .map_err(|e| self.sql(e))
            })
            .collect()
    }

    pub(super) fn select(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<EmailRecord>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(|e| self.sql(e))?;
        let raws = stmt
            .query_map(params, RawRow::read)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e))?;
        raws.into_iter().map(RawRow::into_record).collect()
    }
}

/// A row as SQLite returns it, before the JSON columns are decoded.
pub(super) struct RawRow {
    id: String,
    staff_id: String,
    provider: String,
    from_address: String,
    from_name: String,
    json: [String; 6],
    subject: String,
    body: String,
    html: bool,
    status: String,
    attempts: i64,
    error: (Option<String>, Option<String>, Option<String>, Option<i64>),
    receipt: (Option<String>, Option<String>, Option<String>),
    created_at: i64,
    updated_at: i64,
    sent_at: Option<i64>,
    source_key: Option<String>,
    door: String,
    message_id: String,
    mime: (Option<String>, Option<String>, String),
    not_before: i64,
    mailbox: Option<String>,
    recipient_count: i64,
    first_attempt_at: Option<i64>,
    reconcile_after: Option<i64>,
    idempotency_key: Option<String>,
}

impl RawRow {
    /// Reads a row selected with [`COLUMNS`].
    pub(super) fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            staff_id: row.get(1)?,
            provider: row.get(2)?,
            from_address: row.get(3)?,
            from_name: row.get(4)?,
            json: [
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
                row.get(8)?,
                row.get(12)?,
                row.get(13)?,
            ],
            subject: row.get(9)?,
            body: row.get(10)?,
            html: row.get(11)?,
            status: row.get(14)?,
            attempts: row.get(15)?,
            error: (row.get(16)?, row.get(17)?, row.get(18)?, row.get(19)?),
            receipt: (row.get(20)?, row.get(21)?, row.get(22)?),
            created_at: row.get(23)?,
            updated_at: row.get(24)?,
            sent_at: row.get(25)?,
            source_key: row.get(26)?,
            door: row.get(27)?,
            message_id: row.get(28)?,
            mime: (row.get(29)?, row.get(30)?, row.get(31)?),
            not_before: row.get(32)?,
            mailbox: row.get(33)?,
            recipient_count: row.get(34)?,
            first_attempt_at: row.get(35)?,
            reconcile_after: row.get(36)?,
            idempotency_key: row.get(37)?,
        })
    }

    /// Decodes the JSON columns and the status.
    pub(super) fn into_record(self) -> Result<EmailRecord, OutboxError> {
        let id = self.id;
        let bad = |column: &'static str, detail: String| OutboxError::BadRow {
            id: id.clone(),
            column,
            detail,
        };
        let [to, cc, bcc, reply_to, attachments, headers] = self.json;
        let status = self
            .status
            .parse::<Status>()
            .map_err(|e| bad("status", e.to_string()))?;
        let error = match self.error {
            (Some(kind), code, message, retry_after_ms) => Some(LastError {
                kind,
                code: code.unwrap_or_default(),
                message: message.unwrap_or_default(),
                retry_after_ms: retry_after_ms.and_then(|ms| u64::try_from(ms).ok()),
            }),
            (None, ..) => None,
        };
        let receipt = match self.receipt {
            (None, None, None) => None,
            (message_id, request_id, detail) => Some(ReceiptRecord {
                message_id: message_id.unwrap_or_default(),
                request_id: request_id.unwrap_or_default(),
                detail: detail.unwrap_or_default(),
            }),
        };
        let (mime_path, envelope_from, envelope_json) = self.mime;
        let mime = match mime_path {
            Some(path) => Some(MimeSource {
                path,
                envelope_from: envelope_from.unwrap_or_default(),
                recipients: decode(&envelope_json).map_err(|e| bad("envelope_json", e))?,
            }),
            None => None,
        };
        Ok(EmailRecord {
            door: Door::parse(&self.door),
            message_id: self.message_id,
            mime,
            not_before: Some(self.not_before).filter(|ms| *ms > 0).map(Timestamp),
            mailbox: self.mailbox,
            recipient_count: u32::try_from(self.recipient_count).unwrap_or(0),
            first_attempt_at: self.first_attempt_at.map(Timestamp),
            reconcile_after: self.reconcile_after.map(Timestamp),
            idempotency_key: self.idempotency_key,
            staff_id: self.staff_id,
            provider: self.provider,
            from: Address {
                address: self.from_address,
                name: self.from_name,
            },
            to: decode(&to).map_err(|e| bad("to_json", e))?,
            cc: decode(&cc).map_err(|e| bad("cc_json", e))?,
            bcc: decode(&bcc).map_err(|e| bad("bcc_json", e))?,
            reply_to: decode(&reply_to).map_err(|e| bad("reply_to_json", e))?,
            subject: self.subject,
            body: self.body,
            html: self.html,
            attachments: decode(&attachments).map_err(|e| bad("attachments_json", e))?,
            headers: decode(&headers).map_err(|e| bad("headers_json", e))?,
            status,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            error,
            receipt,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
            sent_at: self.sent_at.map(Timestamp),
            source_key: self.source_key,
            id,
        })
    }
}

fn decode<T: DeserializeOwned>(json: &str) -> Result<T, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}
