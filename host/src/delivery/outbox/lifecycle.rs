//! The send protocol's writes: accept, claim, finish. Each is one transaction; accept and claim
//! are fsync'd before they return, finish is not (see `durability.rs` for why that is safe).

use mailhost_plugin_api::{ErrorKind, Message, ProviderError, Receipt};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::query::{COLUMNS, RawRow};
use super::record::{self, EmailRecord, LastError, NewEmail, ReceiptRecord, Status, Timestamp};
use super::{Outbox, OutboxError, owner};

/// An email this process has claimed: it is `sending`, and this process must now call the
/// provider and then [`Outbox::finish_sent`] or [`Outbox::finish_failed`].
#[derive(Debug, Clone)]
pub struct Claim {
    /// The record as claimed (status `sending`, attempts already counted).
    pub record: EmailRecord,
}

impl Claim {
    /// The message to hand to the provider, with the email's id.
    pub fn message(&self) -> Message {
        self.record.to_message()
    }
}

impl Outbox {
    /// Stores a new email as `queued` and commits it durably. Call this before any provider
    /// call: from here on the email is never lost.
    ///
    /// # Errors
    /// [`OutboxError::DuplicateId`] when the id is taken, [`OutboxError::DuplicateSource`] when
    /// the batch line was already accepted, or a database error.
    pub fn accept(&self, email: &NewEmail) -> Result<EmailRecord, OutboxError> {
        let id = email.message.id.as_str();
        let mut conn = self.conn();
        self.ensure_durable(&conn)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        self.insert_new(&tx, email)?;
        let stored = fetch(&tx, id).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        stored
            .ok_or_else(|| OutboxError::NotFound { id: id.into() })?
            .into_record()
    }

    /// Inserts `email` as `queued` inside the caller's transaction, refusing a taken id or an
    /// already accepted batch line. Nothing is written when it refuses.
    pub(super) fn insert_new(&self, tx: &Connection, email: &NewEmail) -> Result<(), OutboxError> {
        let message = &email.message;
        let id = message.id.as_str();
        let taken: bool = tx
            .prepare_cached("SELECT 1 FROM emails WHERE id = ?1")
            .and_then(|mut st| st.query_row([id], |_| Ok(true)))
            .optional()
            .map_err(|e| self.sql(e))?
            .unwrap_or(false);
        if taken || id.is_empty() {
            return Err(OutboxError::DuplicateId { id: id.into() });
        }
        if let Some(key) = &email.source_key {
            let existing: Option<String> = tx
                .prepare_cached("SELECT id FROM emails WHERE source_key = ?1")
                .and_then(|mut st| st.query_row([key], |r| r.get(0)))
                .optional()
                .map_err(|e| self.sql(e))?;
            if let Some(existing) = existing {
                return Err(OutboxError::DuplicateSource { existing });
            }
        }
        if let Some(key) = &email.idempotency_key {
            let existing: Option<String> = tx
                .prepare_cached("SELECT id FROM emails WHERE idempotency_key = ?1")
                .and_then(|mut st| st.query_row([key], |r| r.get(0)))
                .optional()
                .map_err(|e| self.sql(e))?;
            if let Some(existing) = existing {
                return Err(OutboxError::DuplicateIdempotencyKey { existing });
            }
        }
        let boxes = |list: &[mailhost_plugin_api::Mailbox]| {
            json(&list.iter().map(record::from_mailbox).collect::<Vec<_>>())
        };
        let now = Timestamp::now().millis();
        tx.prepare_cached(
            "INSERT INTO emails (id, staff_id, provider, from_address, from_name, to_json, \
             cc_json, bcc_json, reply_to_json, subject, body, html, attachments_json, \
             headers_json, status, attempts, created_at, updated_at, source_key, door, \
             message_id, mime_path, envelope_from, envelope_json, idempotency_key, \
             recipient_count) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'queued', 0, \
             ?15, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
        )
        .and_then(|mut st| {
            st.execute(params![
                id,
                email.staff_id,
                email.provider,
                message.from.address.as_str(),
                message.from.name.as_str(),
                boxes(&message.to),
                boxes(&message.cc),
                boxes(&message.bcc),
                boxes(&message.reply_to),
                message.subject.as_str(),
                message.body.as_str(),
                message.html,
                json(
                    &message
                        .attachments
                        .iter()
                        .map(record::from_attachment)
                        .collect::<Vec<_>>()
                ),
                json(
                    &message
                        .headers
                        .iter()
                        .map(record::from_header)
                        .collect::<Vec<_>>()
                ),
                now,
                email.source_key,
                email.door.as_str(),
                email.message_id,
                email.mime.as_ref().map(|m| m.path.as_str()),
                email.mime.as_ref().map(|m| m.envelope_from.as_str()),
                json(&email.mime.as_ref().map_or(&[][..], |m| &m.recipients[..])),
                email.idempotency_key,
                recipient_count(email),
            ])
        })
        .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Claims a `queued` or `failed` email for sending: atomically makes it `sending`, counts
    /// the attempt and records this process as its holder, and commits that before returning.
    ///
    /// # Errors
    /// [`OutboxError::NotClaimable`] for an email that is `sent`, `unknown`, or `sending`
    /// (by a running process, or by one that stopped); [`OutboxError::NotFound`]; a database
    /// error.
    pub fn claim(&self, id: &str) -> Result<Claim, OutboxError> {
        self.claim_with(id, false)
    }

    /// Like [`Outbox::claim`], but also claims a `sent` or `unknown` email, or one left
    /// `sending` by a process that stopped: `mailhost email retry ID --force`, after the user
    /// has checked that it did not arrive. An email being sent by a running process is still
    /// refused.
    ///
    /// # Errors
    /// As [`Outbox::claim`].
    pub fn claim_forced(&self, id: &str) -> Result<Claim, OutboxError> {
        self.claim_with(id, true)
    }

    fn claim_with(&self, id: &str, force: bool) -> Result<Claim, OutboxError> {
        let mut conn = self.conn();
        self.ensure_durable(&conn)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let current: Option<(String, Option<String>)> = tx
            .prepare_cached("SELECT status, claim_owner FROM emails WHERE id = ?1")
            .and_then(|mut st| st.query_row([id], |row| Ok((row.get(0)?, row.get(1)?))))
            .optional()
            .map_err(|e| self.sql(e))?;
        let Some((status, holder)) = current else {
            return Err(OutboxError::NotFound { id: id.into() });
        };
        let status = status.parse::<Status>().map_err(|e| OutboxError::BadRow {
            id: id.into(),
            column: "status",
            detail: e.to_string(),
        })?;
        let refuse = |owner_alive| OutboxError::NotClaimable {
            id: id.into(),
            status,
            owner_alive,
        };
        match status {
            Status::Queued | Status::Failed => {}
            Status::Sent | Status::Unknown if force => {}
            Status::Sent | Status::Unknown => return Err(refuse(false)),
            Status::Sending => {
                let holder = holder.unwrap_or_default();
                let alive =
                    holder == self.owner.token() || owner::is_alive(self.path.as_deref(), &holder);
                if alive || !force {
                    return Err(refuse(alive));
                }
            }
        }
        tx.prepare_cached(
            "UPDATE emails SET status = 'sending', attempts = attempts + 1, claim_owner = ?2, \
             updated_at = ?3 WHERE id = ?1",
        )
        .and_then(|mut st| st.execute(params![id, self.owner.token(), Timestamp::now().millis()]))
        .map_err(|e| self.sql(e))?;
        let claimed = fetch(&tx, id).map_err(|e| self.sql(e))?;
        tx.commit().map_err(|e| self.sql(e))?;
        let record = claimed
            .ok_or_else(|| OutboxError::NotFound { id: id.into() })?
            .into_record()?;
        Ok(Claim { record })
    }

    /// Records that the provider accepted the email: `sent`, with its receipt. The error of an
    /// earlier attempt is cleared. The commit survives kill -9 but is not fsync'd on its own: a
    /// power cut may undo it, leaving the email `sending`, which recovery makes `unknown` (see
    /// `durability.rs`).
    ///
    /// # Errors
    /// [`OutboxError::NotFound`] or a database error.
    pub fn finish_sent(&self, id: &str, receipt: &Receipt) -> Result<(), OutboxError> {
        let receipt = ReceiptRecord::from(receipt);
        let now = Timestamp::now().millis();
        let conn = self.conn();
        let changed = self.relaxed(&conn, |conn| {
            conn.prepare_cached(
                "UPDATE emails SET status = 'sent', claim_owner = NULL, receipt_message_id = ?2, \
                 receipt_request_id = ?3, receipt_detail = ?4, error_kind = NULL, \
                 error_code = NULL, error_message = NULL, error_retry_after_ms = NULL, \
                 sent_at = ?5, updated_at = ?5 WHERE id = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    id,
                    receipt.message_id,
                    receipt.request_id,
                    receipt.detail,
                    now
                ])
            })
        })?;
        if changed == 0 {
            return Err(OutboxError::NotFound { id: id.into() });
        }
        Ok(())
    }

    /// Records that the send failed, keeping the error's kind, code, message and retry-after.
    /// The email becomes `failed` (retryable), or `unknown` when the provider reported
    /// [`ErrorKind::UNKNOWN_OUTCOME`]. An email already `sent` (by another attempt) stays sent.
    /// Returns the status the email now has. Like [`Outbox::finish_sent`], the commit is not
    /// fsync'd on its own.
    ///
    /// # Errors
    /// [`OutboxError::NotFound`] or a database error.
    pub fn finish_failed(&self, id: &str, error: &ProviderError) -> Result<Status, OutboxError> {
        let status = if error.kind == ErrorKind::UNKNOWN_OUTCOME {
            Status::Unknown
        } else {
            Status::Failed
        };
        self.set_error(id, status, &LastError::from(error))
    }

    /// Sets `status` and the error, unless the email is already `sent`.
    pub(super) fn set_error(
        &self,
        id: &str,
        status: Status,
        error: &LastError,
    ) -> Result<Status, OutboxError> {
        let conn = self.conn();
        let retry_after = error.retry_after_ms.and_then(|ms| i64::try_from(ms).ok());
        let changed = self.relaxed(&conn, |conn| {
            conn.prepare_cached(
                "UPDATE emails SET status = ?2, claim_owner = NULL, error_kind = ?3, \
                 error_code = ?4, error_message = ?5, error_retry_after_ms = ?6, updated_at = ?7 \
                 WHERE id = ?1 AND status <> 'sent'",
            )
            .and_then(|mut st| {
                st.execute(params![
                    id,
                    status.as_str(),
                    error.kind,
                    error.code,
                    error.message,
                    retry_after,
                    Timestamp::now().millis()
                ])
            })
        })?;
        if changed == 1 {
            return Ok(status);
        }
        match fetch(&conn, id).map_err(|e| self.sql(e))? {
            Some(raw) => Ok(raw.into_record()?.status),
            None => Err(OutboxError::NotFound { id: id.into() }),
        }
    }
}

/// The row with exactly this id.
pub(super) fn fetch_record(conn: &Connection, id: &str) -> rusqlite::Result<Option<RawRow>> {
    fetch(conn, id)
}

fn fetch(conn: &Connection, id: &str) -> rusqlite::Result<Option<RawRow>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM emails WHERE id = ?1"))
        .and_then(|mut st| st.query_row([id], RawRow::read))
        .optional()
}

/// The recipients the sending limits count: the envelope's for a whole message, else To, Cc
/// and Bcc.
pub(crate) fn recipient_count(email: &NewEmail) -> i64 {
    let n = match &email.mime {
        Some(mime) => mime.recipients.len(),
        None => email.message.recipients().count(),
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn json<T: serde::Serialize>(value: &T) -> String {
    // Serialising plain strings and numbers cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}
