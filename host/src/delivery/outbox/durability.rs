//! Which commits wait for the disk, and why the outcome of a send need not.
//!
//! The connection runs in WAL mode with `synchronous=FULL`: every commit fsyncs the WAL before
//! it returns, so it survives a power cut. [`Outbox::accept`], [`Outbox::accept_group`] and
//! [`Outbox::claim`] keep that, and must:
//!
//! - a lost accept would lose an email the caller was told is stored;
//! - a lost claim, after the provider was called, would leave the email `queued`, and the next
//!   run would send it a second time without anyone being told.
//!
//! The outcome of a call ([`Outbox::finish_sent`], [`Outbox::finish_failed`]) is committed with
//! `synchronous=NORMAL` instead (then the connection goes back to FULL): the commit is written to
//! the WAL, which survives kill -9 of the process (the data is in the operating system's cache),
//! but is not fsync'd. This is safe because:
//!
//! 1. The WAL is append-only and SQLite replays, after a crash, only the unbroken prefix of
//!    frames whose checksums chain; so what a power cut can take away is the *newest* commits,
//!    never one from the middle.
//! 2. Every FULL commit (the next accept or claim, by this process or another one on the same
//!    file) fsyncs the WAL file with everything appended before it, and a checkpoint syncs the
//!    WAL before copying it, whatever the level. So a finish can only be lost together with
//!    other finishes that came after the last FULL commit, never with an accept or a claim.
//! 3. A lost finish leaves the row as its durable claim left it: `sending`, held by a process
//!    that the power cut ended. [`Outbox::recover_interrupted`] turns it into `unknown`, flagged
//!    for the user ("check the Sent Items, then `email retry --force`"). It is never sent again
//!    silently, and never lost: the promise holds, at the price of asking the user about a few
//!    emails that did go out in the last moments before the power cut.
//!
//! That trades one fsync per email (a third of the store's cost in a batch) against a rare,
//! flagged, "did this go out?" after a power cut. A clean exit loses nothing either way: closing
//! the connection checkpoints the WAL, which syncs it.
//!
//! `PRAGMA synchronous` takes effect when the statement is *prepared*, so the two pragmas are
//! run afresh each time (a cached statement would do nothing), and SQLite refuses to change it
//! inside a transaction, so it wraps single-statement (autocommit) writes only.

use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::{Outbox, OutboxError};

impl Outbox {
    /// Runs `write`, one statement in autocommit mode (so exactly one commit), with
    /// `synchronous=NORMAL`, then puts the connection back to FULL. If FULL cannot be put back,
    /// the connection is marked so that the next durable write puts it back first (see
    /// [`Outbox::ensure_durable`]) and the error is returned.
    pub(super) fn relaxed<T>(
        &self,
        conn: &Connection,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, OutboxError> {
        self.ensure_durable(conn)?;
        self.relaxed_left.store(true, Ordering::SeqCst);
        conn.execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(|e| self.sql(e))?;
        let result = write(conn);
        let restored = self.ensure_durable(conn);
        let value = result.map_err(|e| self.sql(e))?;
        restored?;
        Ok(value)
    }

    /// Like [`Outbox::relaxed`], for several statements in one transaction: `synchronous` is
    /// set before `BEGIN`, so the transaction's commit is the relaxed one.
    pub(super) fn relaxed_transaction<T>(
        &self,
        conn: &Connection,
        write: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, OutboxError> {
        self.relaxed(conn, |conn| {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            match write(conn) {
                Ok(value) => {
                    conn.execute_batch("COMMIT")?;
                    Ok(value)
                }
                Err(error) => {
                    // The rollback's own failure is less telling than the error that caused it.
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(error)
                }
            }
        })
    }

    /// Puts the connection back to `synchronous=FULL` if a relaxed write left it otherwise.
    /// Every durable write (accept, claim) calls this first, so a failure to restore FULL after
    /// a finish can never make a claim non-durable.
    pub(super) fn ensure_durable(&self, conn: &Connection) -> Result<(), OutboxError> {
        if self.relaxed_left.load(Ordering::SeqCst) {
            conn.execute_batch("PRAGMA synchronous = FULL")
                .map_err(|e| self.sql(e))?;
            self.relaxed_left.store(false, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mailhost_plugin_api::{ProviderError, Receipt};

    use super::super::tests::new_email;
    use super::*;

    fn level(outbox: &Outbox) -> i64 {
        outbox
            .conn()
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("read synchronous")
    }

    #[test]
    fn finishes_leave_the_connection_fully_durable() {
        let dir = tempfile::tempdir().expect("dir");
        let outbox = Outbox::open(dir.path().join("mail.db")).expect("open");
        const FULL: i64 = 2;
        assert_eq!(level(&outbox), FULL);
        for id in ["e1", "e2"] {
            outbox.accept(&new_email(id)).expect("accept");
            outbox.claim(id).expect("claim");
        }
        outbox.finish_sent("e1", &Receipt::default()).expect("sent");
        assert_eq!(level(&outbox), FULL);
        outbox
            .finish_failed("e2", &ProviderError::transient("503"))
            .expect("failed");
        assert_eq!(level(&outbox), FULL);
        // A finish that fails (no such email) restores FULL too.
        assert!(outbox.finish_sent("nope", &Receipt::default()).is_err());
        assert_eq!(level(&outbox), FULL);
    }

    #[test]
    fn a_connection_left_relaxed_is_made_durable_before_the_next_claim() {
        let outbox = Outbox::in_memory().expect("memory");
        outbox.accept(&new_email("e1")).expect("accept");
        {
            let conn = outbox.conn();
            conn.execute_batch("PRAGMA synchronous = NORMAL")
                .expect("relax");
            outbox.relaxed_left.store(true, Ordering::SeqCst);
        }
        outbox.claim("e1").expect("claim");
        assert_eq!(level(&outbox), 2);
    }
}
