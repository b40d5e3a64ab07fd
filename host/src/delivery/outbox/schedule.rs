//! The delivery engine's writes: which emails are due, admitting them under the sending limits
//! (the ledger), putting them back with a `not_before`, and the attempt log.
//!
//! Admission is one `BEGIN IMMEDIATE` transaction for a whole round of candidates: SQLite's
//! write lock serialises every process on the home, so the check of the ledger's sliding
//! windows, the ledger row and the claim happen atomically, and two processes can never both
//! take the last place in a window. One fsync covers the round.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::lifecycle::{Claim, fetch_record};
use super::record::{LastError, Status, Timestamp};
use super::{Outbox, OutboxError};
use crate::delivery::limits::{Hold, Limits, Usage};

/// A queued email that is due, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEmail {
    /// The email's id.
    pub id: String,
    /// Its staff member.
    pub staff_id: String,
    /// Recipients the limits count.
    pub recipients: u64,
}

/// An email the scheduler asks to send now, with the mailbox and limits its route gives.
/// Emails of one staff member with the same From share their mailbox.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The email's id.
    pub id: &'a str,
    /// The mailbox the limits count it against.
    pub mailbox: &'a str,
    /// Its recipients.
    pub recipients: u64,
    /// The limits of that mailbox.
    pub limits: &'a Limits,
}

/// What admission decided for one candidate.
#[derive(Debug, Clone)]
pub enum Admission {
    /// Claimed: `sending`, counted in the ledger; the caller must send it and finish it. With
    /// it, when its mailbox may send again.
    Claimed(Box<Claim>, NextSend),
    /// A limit holds it; it stays `queued` with `not_before` set to the hold's time (except for
    /// concurrency holds, which free as soon as a send finishes and set nothing).
    Held(Hold),
    /// It is no longer queued (another process took it, or it was sent meanwhile).
    Gone,
    /// Not looked at: the round had claimed as many as it may.
    Skipped,
}

/// When a mailbox may send again after a claim, as far as its admission can tell (another
/// process's sends may hold it longer; the next admission is the judge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextSend {
    /// At once.
    Now,
    /// Not before this time (a window, or the even pacing).
    At(Timestamp),
    /// When one of its sends in flight finishes (its concurrency limit is reached).
    WhenOneFinishes,
}

/// A sender with queued email, as [`Outbox::queued_senders`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedSender {
    /// The staff member.
    pub staff_id: String,
    /// The From address of their queued emails.
    pub from: String,
    /// The earliest `not_before` among them (0: due now).
    pub next_due: Timestamp,
}

/// How one attempt ended, for the attempt log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The provider accepted it.
    Sent,
    /// It failed for good.
    Failed,
    /// It failed and will be tried again.
    Retry,
    /// It may or may not have been sent.
    Unknown,
}

impl AttemptOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Retry => "retry",
            Self::Unknown => "unknown",
        }
    }
}

/// One row of the attempt log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it began.
    pub started_at: Timestamp,
    /// When it ended (none while it runs, or if the process died).
    pub ended_at: Option<Timestamp>,
    /// sending, sent, failed, retry, unknown, reconciled.
    pub outcome: String,
    /// The error, if it failed.
    pub error: Option<LastError>,
}

impl Outbox {
    /// Queued emails whose `not_before` has passed, soonest first, at most `limit`, skipping
    /// those of the staff members in `skip_staff` (their route is not usable right now).
    ///
    /// # Errors
    /// A database error.
    pub fn due(&self, now: Timestamp, limit: usize) -> Result<Vec<DueEmail>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, staff_id, recipient_count FROM emails \
                 WHERE status = 'queued' AND not_before <= ?1 \
                 ORDER BY not_before, created_at, rowid LIMIT ?2",
            )
            .map_err(|e| self.sql(e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        stmt.query_map(params![now.millis(), limit], |row| {
            Ok(DueEmail {
                id: row.get(0)?,
                staff_id: row.get(1)?,
                recipients: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.sql(e))
    }

    /// Every sender (staff member and From) of `staff` (or anyone) with queued email, with
    /// the earliest `not_before` among their emails: what the scheduler refreshes its picture
    /// of the queue from. Reads only the queued emails (a partial index holds just those).
    ///
    /// # Errors
    /// A database error.
    pub fn queued_senders(&self, staff: Option<&str>) -> Result<Vec<QueuedSender>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT staff_id, from_address, min(not_before) FROM emails \
                 INDEXED BY emails_queued_senders \
                 WHERE status = 'queued' AND (?1 IS NULL OR staff_id = ?1) \
                 GROUP BY staff_id, from_address",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_map([staff], |row| {
            Ok(QueuedSender {
                staff_id: row.get(0)?,
                from: row.get(1)?,
                next_due: Timestamp(row.get(2)?),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.sql(e))
    }

    /// The due queued emails of one sender (staff member and From), soonest first, at most
    /// `limit`.
    ///
    /// # Errors
    /// A database error, or an unreadable row.
    pub fn due_of_sender(
        &self,
        staff_id: &str,
        from: &str,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<super::EmailRecord>, OutboxError> {
        let sql = format!(
            "SELECT {cols} FROM emails INDEXED BY emails_queued_senders \
             WHERE staff_id = ?1 AND from_address = ?2 \
             AND status = 'queued' AND not_before <= ?3 \
             ORDER BY not_before, created_at, rowid LIMIT ?4",
            cols = super::query::COLUMNS
        );
        self.select(
            &sql,
            params![
                staff_id,
                from,
                now.millis(),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
        )
    }

    /// The earliest `not_before` of one sender's queued emails, if it has any.
    ///
    /// # Errors
    /// A database error.
    pub fn next_due_of_sender(
        &self,
        staff_id: &str,
        from: &str,
    ) -> Result<Option<Timestamp>, OutboxError> {
        let conn = self.conn();
        let next: Option<i64> = conn
            .prepare_cached(
                "SELECT min(not_before) FROM emails INDEXED BY emails_queued_senders \
                 WHERE staff_id = ?1 AND from_address = ?2 AND status = 'queued'",
            )
            .and_then(|mut st| st.query_row([staff_id, from], |row| row.get(0)))
            .map_err(|e| self.sql(e))?;
        Ok(next.map(Timestamp))
    }

    /// The earliest `not_before` of a queued email of `staff` (or anyone's), if any is queued.
    ///
    /// # Errors
    /// A database error.
    pub fn next_due_in(&self, staff: Option<&str>) -> Result<Option<Timestamp>, OutboxError> {
        let conn = self.conn();
        let next: Option<i64> = conn
            .prepare_cached(
                "SELECT min(not_before) FROM emails WHERE status = 'queued' \
                 AND (?1 IS NULL OR staff_id = ?1)",
            )
            .and_then(|mut st| st.query_row([staff], |row| row.get(0)))
            .map_err(|e| self.sql(e))?;
        Ok(next.map(Timestamp))
    }

    /// How many emails of `staff` (or anyone's) are queued.
    ///
    /// # Errors
    /// A database error.
    pub fn queued_count(&self, staff: Option<&str>) -> Result<u64, OutboxError> {
        let conn = self.conn();
        let n: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM emails WHERE status = 'queued' \
                 AND (?1 IS NULL OR staff_id = ?1)",
            )
            .and_then(|mut st| st.query_row([staff], |row| row.get(0)))
            .map_err(|e| self.sql(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Whether this process holds the claim on `id` (it is `sending` here).
    ///
    /// # Errors
    /// A database error.
    pub fn is_claimed_here(&self, id: &str) -> Result<bool, OutboxError> {
        let conn = self.conn();
        let held: Option<bool> = conn
            .prepare_cached(
                "SELECT 1 FROM emails WHERE id = ?1 AND status = 'sending' AND claim_owner = ?2",
            )
            .and_then(|mut st| st.query_row(params![id, self.owner.token()], |_| Ok(true)))
            .optional()
            .map_err(|e| self.sql(e))?;
        Ok(held.unwrap_or(false))
    }

    /// Puts back an email this process claimed but never handed to its provider (the service
    /// stopped first): `queued` again, the attempt and its ledger row undone.
    ///
    /// # Errors
    /// A database error.
    pub fn release(&self, id: &str) -> Result<(), OutboxError> {
        let mut conn = self.conn();
        self.ensure_durable(&conn)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let changed = tx
            .execute(
                "UPDATE emails SET status = 'queued', attempts = max(attempts - 1, 0), \
                 claim_owner = NULL WHERE id = ?1 AND status = 'sending' AND claim_owner = ?2",
                params![id, self.owner.token()],
            )
            .map_err(|e| self.sql(e))?;
        if changed == 1 {
            tx.execute(
                "DELETE FROM send_ledger WHERE rowid = \
                 (SELECT max(rowid) FROM send_ledger WHERE email_id = ?1)",
                [id],
            )
            .map_err(|e| self.sql(e))?;
            tx.execute(
                "DELETE FROM attempts WHERE email_id = ?1 AND outcome = 'sending' AND attempt = \
                 (SELECT max(attempt) FROM attempts WHERE email_id = ?1)",
                [id],
            )
            .map_err(|e| self.sql(e))?;
        }
        tx.commit().map_err(|e| self.sql(e))
    }

    /// Keeps a queued email waiting until `not_before`, recording why (its provider cannot be
    /// used right now).
    ///
    /// # Errors
    /// A database error.
    pub fn park(
        &self,
        id: &str,
        error: &LastError,
        not_before: Timestamp,
    ) -> Result<(), OutboxError> {
        let conn = self.conn();
        self.relaxed(&conn, |conn| {
            conn.execute(
                "UPDATE emails SET not_before = ?2, error_kind = ?3, error_code = ?4, \
                 error_message = ?5, updated_at = ?6 WHERE id = ?1 AND status = 'queued'",
                params![
                    id,
                    not_before.millis(),
                    error.kind,
                    error.code,
                    error.message,
                    Timestamp::now().millis()
                ],
            )
        })?;
        Ok(())
    }

    /// The earliest `not_before` of a queued email, if any is queued.
    ///
    /// # Errors
    /// A database error.
    pub fn next_due(&self) -> Result<Option<Timestamp>, OutboxError> {
        let conn = self.conn();
        let next: Option<i64> = conn
            .prepare_cached("SELECT min(not_before) FROM emails WHERE status = 'queued'")
            .and_then(|mut st| st.query_row([], |row| row.get(0)))
            .map_err(|e| self.sql(e))?;
        Ok(next.map(Timestamp))
    }

    /// Admits each candidate under its mailbox's limits, in one durable transaction: claimed
    /// ones are `sending` and in the ledger; held ones get their `not_before`.
    ///
    /// # Errors
    /// A database error (nothing is changed).
    pub fn admit(
        &self,
        candidates: &[Candidate<'_>],
        now: Timestamp,
    ) -> Result<Vec<Admission>, OutboxError> {
        self.admit_bounded(candidates, now, usize::MAX)
    }

    /// [`Outbox::admit`], claiming at most `max_claims`; the candidates after the last claim
    /// allowed are [`Admission::Skipped`].
    ///
    /// # Errors
    /// A database error (nothing is changed).
    pub fn admit_bounded(
        &self,
        candidates: &[Candidate<'_>],
        now: Timestamp,
        max_claims: usize,
    ) -> Result<Vec<Admission>, OutboxError> {
        let mut conn = self.conn();
        self.ensure_durable(&conn)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::with_capacity(candidates.len());
        let mut claims = 0usize;
        for candidate in candidates {
            if claims >= max_claims {
                out.push(Admission::Skipped);
                continue;
            }
            let admission = self.admit_one(&tx, candidate, now)?;
            if matches!(admission, Admission::Claimed(..)) {
                claims += 1;
            }
            out.push(admission);
        }
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(out)
    }

    fn admit_one(
        &self,
        tx: &Connection,
        candidate: &Candidate<'_>,
        now: Timestamp,
    ) -> Result<Admission, OutboxError> {
        let queued: bool = tx
            .prepare_cached("SELECT 1 FROM emails WHERE id = ?1 AND status = 'queued'")
            .and_then(|mut st| st.query_row([candidate.id], |_| Ok(true)))
            .optional()
            .map_err(|e| self.sql(e))?
            .unwrap_or(false);
        if !queued {
            return Ok(Admission::Gone);
        }
        let usage = self.usage_for(
            tx,
            candidate.mailbox,
            candidate.limits,
            now,
            Some(candidate.recipients),
        )?;
        if let Some(hold) = candidate.limits.hold(&usage, candidate.recipients, now) {
            if let Some(until) = hold.until {
                // Shown to the user ("queued until"), and kept by every process; the
                // scheduler holds the mailbox's other emails in memory.
                tx.prepare_cached(
                    "UPDATE emails SET not_before = ?2 WHERE id = ?1 AND not_before < ?2",
                )
                .and_then(|mut st| st.execute(params![candidate.id, until.millis()]))
                .map_err(|e| self.sql(e))?;
            }
            return Ok(Admission::Held(hold));
        }
        let recipients = i64::try_from(candidate.recipients).unwrap_or(i64::MAX);
        tx.prepare_cached(
            "INSERT INTO send_ledger (mailbox, at, recipients, email_id) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut st| {
            st.execute(params![
                candidate.mailbox,
                now.millis(),
                recipients,
                candidate.id
            ])
        })
        .map_err(|e| self.sql(e))?;
        tx.prepare_cached(
            "UPDATE emails SET status = 'sending', attempts = attempts + 1, claim_owner = ?2, \
             mailbox = ?3, not_before = 0, first_attempt_at = coalesce(first_attempt_at, ?4), \
             updated_at = ?4 WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                candidate.id,
                self.owner.token(),
                candidate.mailbox,
                now.millis()
            ])
        })
        .map_err(|e| self.sql(e))?;
        let record = fetch_record(tx, candidate.id).map_err(|e| self.sql(e))?;
        let record = record
            .ok_or_else(|| OutboxError::NotFound {
                id: candidate.id.into(),
            })?
            .into_record()?;
        tx.prepare_cached(
            "INSERT OR REPLACE INTO attempts (email_id, attempt, started_at, outcome) \
             VALUES (?1, ?2, ?3, 'sending')",
        )
        .and_then(|mut st| st.execute(params![candidate.id, record.attempts, now.millis()]))
        .map_err(|e| self.sql(e))?;
        // With this send counted, when may the mailbox send a one-recipient email again?
        let mut after = usage;
        after.in_flight += 1;
        after.sends.push((now, candidate.recipients));
        if let Some(used) = &mut after.recipients_used {
            *used = used.saturating_add(candidate.recipients);
        }
        let next = match candidate.limits.hold(&after, 1, now) {
            None => NextSend::Now,
            Some(Hold {
                until: Some(until), ..
            }) => NextSend::At(until),
            Some(_) => NextSend::WhenOneFinishes,
        };
        Ok(Admission::Claimed(Box::new(Claim { record }), next))
    }

    /// What `mailbox` has used of `limits` at `now`: sends in flight, and the ledger's rows in
    /// each window.
    ///
    /// # Errors
    /// A database error.
    pub fn usage(
        &self,
        mailbox: &str,
        limits: &Limits,
        now: Timestamp,
    ) -> Result<Usage, OutboxError> {
        let conn = self.conn();
        self.usage_in(&conn, mailbox, limits, now)
    }

    fn usage_in(
        &self,
        conn: &Connection,
        mailbox: &str,
        limits: &Limits,
        now: Timestamp,
    ) -> Result<Usage, OutboxError> {
        self.usage_for(conn, mailbox, limits, now, None)
    }

    /// What `mailbox` has used, as admission of an email of `recipients` needs it (`None`:
    /// everything, for `mailhost limits`). The ledger rows of the messages window are read one
    /// by one; the recipients window (24 hours, thousands of rows for a busy mailbox) is only
    /// summed, unless the email would not fit in it, when its rows tell when it will.
    fn usage_for(
        &self,
        conn: &Connection,
        mailbox: &str,
        limits: &Limits,
        now: Timestamp,
        recipients: Option<u64>,
    ) -> Result<Usage, OutboxError> {
        let sql = |e| self.sql(e);
        let in_flight: i64 = conn
            .prepare_cached("SELECT count(*) FROM emails WHERE status = 'sending' AND mailbox = ?1")
            .and_then(|mut st| st.query_row([mailbox], |row| row.get(0)))
            .map_err(sql)?;
        let mut since = now.millis() - limits.longest_window_ms();
        let mut recipients_used = None;
        if let (Some(recipients), Some(limit)) = (recipients, &limits.recipients) {
            let used: i64 = conn
                .prepare_cached(
                    "SELECT coalesce(sum(recipients), 0) FROM send_ledger \
                     WHERE mailbox = ?1 AND at > ?2",
                )
                .and_then(|mut st| {
                    st.query_row(params![mailbox, now.millis() - limit.window_ms], |row| {
                        row.get(0)
                    })
                })
                .map_err(sql)?;
            let used = u64::try_from(used).unwrap_or(0);
            if used.saturating_add(recipients) <= limit.max {
                recipients_used = Some(used);
                since = now.millis() - limits.messages.as_ref().map_or(0, |m| m.window_ms);
            }
        }
        let mut stmt = conn
            .prepare_cached(
                "SELECT at, recipients FROM send_ledger WHERE mailbox = ?1 AND at > ?2 \
                 ORDER BY at",
            )
            .map_err(sql)?;
        let sends = stmt
            .query_map(params![mailbox, since], |row| {
                Ok((
                    Timestamp(row.get(0)?),
                    u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql)?;
        Ok(Usage {
            in_flight: u64::try_from(in_flight).unwrap_or(0),
            sends,
            recipients_used,
        })
    }

    /// Every mailbox that sent within `window_ms` before `now`, or has an email in flight.
    ///
    /// # Errors
    /// A database error.
    pub fn active_mailboxes(
        &self,
        now: Timestamp,
        window_ms: i64,
    ) -> Result<Vec<String>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT DISTINCT mailbox FROM send_ledger WHERE at > ?1 \
                 UNION SELECT DISTINCT mailbox FROM emails \
                 WHERE status = 'sending' AND mailbox IS NOT NULL ORDER BY 1",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_map([now.millis() - window_ms], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))
    }

    /// (mailbox, staff ID) of every email claimed since `since`, for `mailhost limits`.
    ///
    /// # Errors
    /// A database error.
    pub fn recent_mailboxes(&self, since: Timestamp) -> Result<Vec<(String, String)>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT DISTINCT mailbox, staff_id FROM emails WHERE mailbox IS NOT NULL \
                 AND updated_at > ?1 ORDER BY 1, 2",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_map([since.millis()], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql(e))
    }

    /// Drops ledger rows older than `keep_ms` (no window looks that far back).
    ///
    /// # Errors
    /// A database error.
    pub fn prune_ledger(&self, now: Timestamp, keep_ms: i64) -> Result<usize, OutboxError> {
        let conn = self.conn();
        self.relaxed(&conn, |conn| {
            conn.execute(
                "DELETE FROM send_ledger WHERE at <= ?1",
                [now.millis() - keep_ms],
            )
        })
    }

    /// Ends the attempt in flight of `id` as `outcome` and sets the email's state: `sent`
    /// with `receipt`, back to `queued` with `not_before` and the error (a retry), `failed`
    /// or `unknown` with the error (and, for `unknown`, when to reconcile). Not fsync'd on its
    /// own (see `durability.rs`).
    ///
    /// # Errors
    /// A database error; [`OutboxError::NotFound`].
    pub fn finish_attempt(&self, id: &str, finish: &Finish) -> Result<Status, OutboxError> {
        let now = Timestamp::now().millis();
        let conn = self.conn();
        let error = finish.error();
        let retry_after = error
            .and_then(|e| e.retry_after_ms)
            .and_then(|ms| i64::try_from(ms).ok());
        let (status, not_before, reconcile_after) = match finish {
            Finish::Sent(_) => (Status::Sent, 0, None),
            Finish::Retry { not_before, .. } => (Status::Queued, not_before.millis(), None),
            Finish::Failed(_) => (Status::Failed, 0, None),
            Finish::Unknown {
                reconcile_after, ..
            } => (Status::Unknown, 0, reconcile_after.map(Timestamp::millis)),
        };
        let receipt = match finish {
            Finish::Sent(receipt) => Some(receipt),
            _ => None,
        };
        let changed = self.relaxed_transaction(&conn, |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE emails SET status = ?2, claim_owner = NULL, not_before = ?3, \
                     reconcile_after = ?4, \
                     error_kind = CASE WHEN ?2 = 'sent' THEN NULL ELSE ?5 END, \
                     error_code = CASE WHEN ?2 = 'sent' THEN NULL ELSE ?6 END, \
                     error_message = CASE WHEN ?2 = 'sent' THEN NULL ELSE ?7 END, \
                     error_retry_after_ms = CASE WHEN ?2 = 'sent' THEN NULL ELSE ?8 END, \
                     receipt_message_id = coalesce(?9, receipt_message_id), \
                     receipt_request_id = coalesce(?10, receipt_request_id), \
                     receipt_detail = coalesce(?11, receipt_detail), \
                     sent_at = CASE WHEN ?2 = 'sent' THEN ?12 ELSE sent_at END, \
                     updated_at = ?12 WHERE id = ?1 AND status <> 'sent'",
                )?
                .execute(params![
                    id,
                    status.as_str(),
                    not_before,
                    reconcile_after,
                    error.map(|e| e.kind.as_str()),
                    error.map(|e| e.code.as_str()),
                    error.map(|e| e.message.as_str()),
                    retry_after,
                    receipt.map(|r| r.message_id.as_str()),
                    receipt.map(|r| r.request_id.as_str()),
                    receipt.map(|r| r.detail.as_str()),
                    now,
                ])?;
            conn.prepare_cached(
                "UPDATE attempts SET ended_at = ?2, outcome = ?3, error_kind = ?4, \
                 error_code = ?5, error_message = ?6 WHERE email_id = ?1 AND attempt = \
                 (SELECT max(attempt) FROM attempts WHERE email_id = ?1)",
            )?
            .execute(params![
                id,
                now,
                finish.outcome().as_str(),
                error.map(|e| e.kind.as_str()),
                error.map(|e| e.code.as_str()),
                error.map(|e| e.message.as_str()),
            ])?;
            Ok(changed)
        })?;
        if changed == 1 {
            return Ok(status);
        }
        match fetch_record(&conn, id).map_err(|e| self.sql(e))? {
            Some(raw) => Ok(raw.into_record()?.status),
            None => Err(OutboxError::NotFound { id: id.into() }),
        }
    }

    /// Makes an email due now again: `failed` (or, with `force`, `unknown` or `sent`) becomes
    /// `queued` with `not_before` cleared. Returns whether it changed.
    ///
    /// # Errors
    /// [`OutboxError::NotClaimable`] for an email in another state; a database error.
    pub fn requeue(&self, id: &str, force: bool) -> Result<(), OutboxError> {
        let record = self.get(id)?;
        let allowed = match record.status {
            Status::Queued | Status::Failed => true,
            Status::Sent | Status::Unknown => force,
            Status::Sending => false,
        };
        if !allowed {
            return Err(OutboxError::NotClaimable {
                id: record.id,
                status: record.status,
                owner_alive: record.status == Status::Sending,
            });
        }
        let conn = self.conn();
        self.ensure_durable(&conn)?;
        conn.prepare_cached(
            "UPDATE emails SET status = 'queued', not_before = 0, reconcile_after = NULL, \
             updated_at = ?2 WHERE id = ?1 AND status = ?3",
        )
        .and_then(|mut st| {
            st.execute(params![
                record.id,
                Timestamp::now().millis(),
                record.status.as_str()
            ])
        })
        .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Unknown emails whose reconciliation is due (`reconcile_after` passed), oldest first.
    ///
    /// # Errors
    /// A database error.
    pub fn reconcile_due(&self, now: Timestamp, limit: usize) -> Result<Vec<String>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id FROM emails WHERE status = 'unknown' AND reconcile_after IS NOT NULL \
                 AND reconcile_after <= ?1 ORDER BY reconcile_after LIMIT ?2",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_map(
            params![now.millis(), i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| row.get(0),
        )
        .and_then(|rows| rows.collect())
        .map_err(|e| self.sql(e))
    }

    /// Records what reconciliation found for an `unknown` email: `sent` with the receipt,
    /// `queued` (proven not sent: it may go again), or still `unknown` with the next time to
    /// ask (`None`: never again by itself). Returns the status it now has.
    ///
    /// # Errors
    /// A database error.
    pub fn settle(&self, id: &str, settled: &Settled) -> Result<Status, OutboxError> {
        let now = Timestamp::now().millis();
        let conn = self.conn();
        self.ensure_durable(&conn)?;
        let result = match settled {
            Settled::Sent(r) => conn
                .execute(
                    "UPDATE emails SET status = 'sent', reconcile_after = NULL, \
                     receipt_message_id = ?2, receipt_request_id = ?3, receipt_detail = ?4, \
                     sent_at = ?5, updated_at = ?5, error_kind = NULL, error_code = NULL, \
                     error_message = NULL, error_retry_after_ms = NULL \
                     WHERE id = ?1 AND status = 'unknown'",
                    params![id, r.message_id, r.request_id, r.detail, now],
                )
                .map(|n| (n, Status::Sent)),
            Settled::NotSent(detail) => conn
                .execute(
                    "UPDATE emails SET status = 'queued', not_before = 0, \
                     reconcile_after = NULL, receipt_detail = ?2, updated_at = ?3 \
                     WHERE id = ?1 AND status = 'unknown'",
                    params![id, detail, now],
                )
                .map(|n| (n, Status::Queued)),
            Settled::StillUnknown { detail, next } => conn
                .execute(
                    "UPDATE emails SET reconcile_after = ?2, receipt_detail = ?3, \
                     updated_at = ?4 WHERE id = ?1 AND status = 'unknown'",
                    params![id, next.map(Timestamp::millis), detail, now],
                )
                .map(|n| (n, Status::Unknown)),
        };
        let (changed, status) = result.map_err(|e| self.sql(e))?;
        drop(conn);
        if changed == 1 {
            Ok(status)
        } else {
            Ok(self.get(id)?.status)
        }
    }

    /// The attempt log of one email, oldest first.
    ///
    /// # Errors
    /// A database error.
    pub fn attempts(&self, id: &str) -> Result<Vec<AttemptRecord>, OutboxError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT attempt, started_at, ended_at, outcome, error_kind, error_code, \
                 error_message FROM attempts WHERE email_id = ?1 ORDER BY attempt",
            )
            .map_err(|e| self.sql(e))?;
        stmt.query_map([id], |row| {
            let kind: Option<String> = row.get(4)?;
            Ok(AttemptRecord {
                attempt: u32::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
                started_at: Timestamp(row.get(1)?),
                ended_at: row.get::<_, Option<i64>>(2)?.map(Timestamp),
                outcome: row.get(3)?,
                error: match kind {
                    Some(kind) => Some(LastError {
                        kind,
                        code: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                        message: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
                        retry_after_ms: None,
                    }),
                    None => None,
                },
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.sql(e))
    }
}

/// How an attempt ended, as [`Outbox::finish_attempt`] records it.
#[derive(Debug, Clone)]
pub enum Finish {
    /// Sent, with the provider's receipt.
    Sent(super::ReceiptRecord),
    /// Failed; will be tried again at `not_before`.
    Retry {
        /// The error.
        error: LastError,
        /// When to try again.
        not_before: Timestamp,
    },
    /// Failed for good.
    Failed(LastError),
    /// May or may not have been sent.
    Unknown {
        /// The error.
        error: LastError,
        /// When to ask the provider; `None` when it cannot tell.
        reconcile_after: Option<Timestamp>,
    },
}

impl Finish {
    fn error(&self) -> Option<&LastError> {
        match self {
            Self::Sent(_) => None,
            Self::Retry { error, .. } | Self::Failed(error) | Self::Unknown { error, .. } => {
                Some(error)
            }
        }
    }

    fn outcome(&self) -> AttemptOutcome {
        match self {
            Self::Sent(_) => AttemptOutcome::Sent,
            Self::Retry { .. } => AttemptOutcome::Retry,
            Self::Failed(_) => AttemptOutcome::Failed,
            Self::Unknown { .. } => AttemptOutcome::Unknown,
        }
    }
}

/// What reconciliation found, as [`Outbox::settle`] records it.
#[derive(Debug, Clone)]
pub enum Settled {
    /// It was sent.
    Sent(super::ReceiptRecord),
    /// It was proven not sent (the detail says how); it goes back to the queue.
    NotSent(String),
    /// Still in doubt.
    StillUnknown {
        /// Why.
        detail: String,
        /// When to ask again; `None` for never by itself.
        next: Option<Timestamp>,
    },
}
