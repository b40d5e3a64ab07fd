//! Recovery after a crash: emails left `sending` by a process that is no longer running may or
//! may not have reached the service, so they become `unknown` and are flagged for the user;
//! they are never sent again without `--force`.

use rusqlite::{TransactionBehavior, params};

use super::record::{LastError, Timestamp};
use super::{Outbox, OutboxError, owner};

impl Outbox {
    /// Turns every email left `sending` by a process that stopped into `unknown`, with an error
    /// telling the user how to check and retry it, and returns their ids. Emails being sent by a
    /// running `mailhost` (this one or another) are left alone. The CLI calls this after
    /// opening the store and warns about each id returned.
    ///
    /// # Errors
    /// A database error.
    pub fn recover_interrupted(&self) -> Result<Vec<String>, OutboxError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let rows: Vec<(String, Option<String>, String, String)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT id, claim_owner, provider, from_address FROM emails \
                     WHERE status = 'sending' ORDER BY created_at, rowid",
                )
                .map_err(|e| self.sql(e))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(|e| self.sql(e))?
        };
        let mut live: Vec<String> = vec![self.owner.token().to_string()];
        let mut dead: Vec<String> = Vec::new();
        let mut recovered = Vec::new();
        let now = Timestamp::now().millis();
        for (id, holder, provider, from) in rows {
            let holder = holder.unwrap_or_default();
            if live.contains(&holder) {
                continue;
            }
            if !dead.contains(&holder) {
                if owner::is_alive(self.path.as_deref(), &holder) {
                    live.push(holder);
                    continue;
                }
                dead.push(holder);
            }
            let error = interrupted_error(&id, &provider, &from);
            tx.execute(
                "UPDATE emails SET status = 'unknown', claim_owner = NULL, error_kind = ?2, \
                 error_code = '', error_message = ?3, error_retry_after_ms = NULL, \
                 updated_at = ?4, reconcile_after = ?4 WHERE id = ?1 AND status = 'sending'",
                params![id, error.kind, error.message, now],
            )
            .map_err(|e| self.sql(e))?;
            tx.execute(
                "UPDATE attempts SET outcome = 'interrupted', ended_at = ?2 WHERE email_id = ?1 \
                 AND outcome = 'sending'",
                params![id, now],
            )
            .map_err(|e| self.sql(e))?;
            recovered.push(id);
        }
        tx.commit().map_err(|e| self.sql(e))?;
        Ok(recovered)
    }
}

/// The error stored on an email whose sending process stopped mid-call.
fn interrupted_error(id: &str, provider: &str, from: &str) -> LastError {
    LastError {
        kind: mailhost_plugin_api::ErrorKind::UNKNOWN_OUTCOME
            .name()
            .to_string(),
        code: String::new(),
        message: format!(
            "mailhost stopped while handing this email to {provider}, so it may or may not have \
             been sent: check the recipient's mailbox or the Sent Items of {from}, and if it did \
             not arrive run `mailhost email retry {id} --force`"
        ),
        retry_after_ms: None,
    }
}
