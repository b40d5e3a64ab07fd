//! Accepting many emails in one durable commit: send-batch stores the lines it has read in
//! groups, so the fsync that makes an accept durable is paid once per group, not once per email.
//!
//! The promise is unchanged: every email of a group is `queued` on disk before
//! [`Outbox::accept_group`] returns, and the caller hands none of them to a provider before that.
//! A crash before the commit loses only lines that were read but never stored (and so never sent):
//! the rerun reads them again. A crash after it leaves them `queued`: the rerun sends them once.

use rusqlite::TransactionBehavior;

use super::{NewEmail, Outbox, OutboxError};

/// What became of one email handed to [`Outbox::accept_group`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOutcome {
    /// Stored as `queued` (durable once `accept_group` returned).
    Accepted,
    /// Its batch line was already accepted (by another process a moment ago) as this email.
    AlreadyAccepted {
        /// The id of the email stored for the line.
        existing: String,
    },
    /// Its id is already taken (or empty); nothing was stored for it.
    DuplicateId,
}

impl Outbox {
    /// Stores every email of `emails` as `queued` in one transaction, committed durably (fsync'd)
    /// before it returns, and says for each, in order, whether it was stored. An email whose
    /// batch line or id is already stored is left out; the others are still stored.
    ///
    /// # Errors
    /// A database error; then nothing of the group was stored.
    pub fn accept_group(&self, emails: &[NewEmail]) -> Result<Vec<GroupOutcome>, OutboxError> {
        let mut conn = self.conn();
        self.ensure_durable(&conn)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let mut outcomes = Vec::with_capacity(emails.len());
        for email in emails {
            outcomes.push(match self.insert_new(&tx, email) {
                Ok(()) => GroupOutcome::Accepted,
                Err(OutboxError::DuplicateSource { existing }) => {
                    GroupOutcome::AlreadyAccepted { existing }
                }
                Err(OutboxError::DuplicateId { .. }) => GroupOutcome::DuplicateId,
                Err(error) => return Err(error),
            });
        }
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(outcomes)
    }
}
