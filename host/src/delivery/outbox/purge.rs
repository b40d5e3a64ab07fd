//! What retention needs of the store: deleting old records, dropping old bodies, giving the
//! freed pages back (incremental vacuum), and the running totals `/metrics` shows. The policy
//! (which emails, how old) is in `delivery/retention.rs`.

use rusqlite::{OptionalExtension, TransactionBehavior, params_from_iter};

use super::record::Status;
use super::{Outbox, OutboxError};

/// What one purge of the store did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorePurge {
    /// The ids of the records deleted.
    pub deleted: Vec<String>,
    /// The ids of the emails whose body was dropped.
    pub bodies_dropped: Vec<String>,
    /// Bytes mail.db gave back (its page count went down by this much); for a dry run, the
    /// bytes of the bodies that would go.
    pub db_bytes: u64,
}

/// The running totals of every purge of this store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionTotals {
    /// Purges run (dry runs not counted).
    pub runs: u64,
    /// Records deleted.
    pub records_deleted: u64,
    /// Bodies dropped.
    pub bodies_dropped: u64,
    /// Bytes reclaimed (mail.db and the spool).
    pub bytes_reclaimed: u64,
    /// When the last purge ran, milliseconds since the epoch.
    pub last_run_at_ms: Option<i64>,
}

/// The age of an email: when it was sent, else its last change.
const AGE: &str = "COALESCE(sent_at, updated_at)";

impl Outbox {
    /// Deletes the records with a status in `delete_statuses` older than `delete_before_ms`,
    /// then drops the body of those with a status in `body_statuses` older than
    /// `body_before_ms` (the record stays, `body_dropped_at` set), in one transaction; then
    /// runs an incremental vacuum. With `dry_run`, changes nothing and reports what would go.
    ///
    /// # Errors
    /// A database error (the transaction is rolled back: nothing changed).
    pub fn purge(
        &self,
        delete_statuses: &[Status],
        delete_before_ms: Option<i64>,
        body_statuses: &[Status],
        body_before_ms: Option<i64>,
        now_ms: i64,
        dry_run: bool,
    ) -> Result<StorePurge, OutboxError> {
        let mut conn = self.conn();
        self.ensure_durable(&conn)?;
        let pages_before = page_bytes(&conn).map_err(|e| self.sql(e))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.sql(e))?;
        let mut out = StorePurge::default();
        if let Some(before) = delete_before_ms.filter(|_| !delete_statuses.is_empty()) {
            let (list, mut args) = status_list(delete_statuses, 2);
            args.insert(0, before.to_string());
            let sql = if dry_run {
                format!(
                    "SELECT id FROM emails WHERE {AGE} < CAST(?1 AS INTEGER) AND status IN ({list})"
                )
            } else {
                format!(
                    "DELETE FROM emails WHERE {AGE} < CAST(?1 AS INTEGER) AND status IN ({list}) RETURNING id"
                )
            };
            out.deleted = ids(&tx, &sql, &args).map_err(|e| self.sql(e))?;
            if !dry_run {
                // Their attempt log (errors, times) goes with them.
                let mut forget = tx
                    .prepare("DELETE FROM attempts WHERE email_id = ?1")
                    .map_err(|e| self.sql(e))?;
                for id in &out.deleted {
                    forget.execute([id]).map_err(|e| self.sql(e))?;
                }
            }
        }
        if let Some(before) = body_before_ms.filter(|_| !body_statuses.is_empty()) {
            let (list, mut args) = status_list(body_statuses, 3);
            args.insert(0, before.to_string());
            args.insert(1, now_ms.to_string());
            // A dry run must not count what the delete above would take anyway.
            let deleted_too =
                match delete_before_ms.filter(|_| dry_run && !delete_statuses.is_empty()) {
                    Some(d) => {
                        let (dl, dargs) = status_list(delete_statuses, args.len() + 2);
                        let n = args.len() + 1;
                        args.push(d.to_string());
                        args.extend(dargs);
                        format!(" AND NOT ({AGE} < CAST(?{n} AS INTEGER) AND status IN ({dl}))")
                    }
                    None => String::new(),
                };
            let filter = format!(
                "body_dropped_at IS NULL AND {AGE} < CAST(?1 AS INTEGER) AND status IN ({list}){deleted_too}"
            );
            if dry_run {
                let sql = format!(
                    "SELECT id, length(CAST(body AS BLOB)) FROM emails WHERE {filter} AND ?2 IS NOT NULL"
                );
                let mut stmt = tx.prepare(&sql).map_err(|e| self.sql(e))?;
                let rows = stmt
                    .query_map(params_from_iter(args.iter()), |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| self.sql(e))?;
                out.db_bytes = rows
                    .iter()
                    .map(|(_, n)| u64::try_from(*n).unwrap_or(0))
                    .sum();
                out.bodies_dropped = rows.into_iter().map(|(id, _)| id).collect();
            } else {
                let sql = format!(
                    "UPDATE emails SET body = '', body_dropped_at = CAST(?2 AS INTEGER) WHERE {filter} RETURNING id"
                );
                out.bodies_dropped = ids(&tx, &sql, &args).map_err(|e| self.sql(e))?;
            }
        }
        if dry_run {
            return Ok(out);
        }
        tx.commit().map_err(|e| self.sql(e))?;
        incremental_vacuum(&conn).map_err(|e| self.sql(e))?;
        let pages_after = page_bytes(&conn).map_err(|e| self.sql(e))?;
        out.db_bytes = pages_before.saturating_sub(pages_after);
        Ok(out)
    }

    /// When retention dropped the body of email `id` (milliseconds since the epoch), if it did.
    ///
    /// # Errors
    /// A database error.
    pub fn body_dropped_at(&self, id: &str) -> Result<Option<i64>, OutboxError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT body_dropped_at FROM emails WHERE id = ?1",
            [id],
            |r| r.get::<_, Option<i64>>(0),
        )
        .optional()
        .map(Option::flatten)
        .map_err(|e| self.sql(e))
    }

    /// Adds one purge to the running totals.
    ///
    /// # Errors
    /// A database error.
    pub fn add_retention_totals(
        &self,
        records_deleted: u64,
        bodies_dropped: u64,
        bytes_reclaimed: u64,
        now_ms: i64,
    ) -> Result<(), OutboxError> {
        let conn = self.conn();
        self.ensure_durable(&conn)?;
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        conn.execute(
            "UPDATE retention_totals SET runs = runs + 1, records_deleted = records_deleted + ?1, \
             bodies_dropped = bodies_dropped + ?2, bytes_reclaimed = bytes_reclaimed + ?3, \
             last_run_at = ?4 WHERE id = 1",
            rusqlite::params![
                n(records_deleted),
                n(bodies_dropped),
                n(bytes_reclaimed),
                now_ms
            ],
        )
        .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// The running totals of every purge (for `/metrics`).
    ///
    /// # Errors
    /// A database error.
    pub fn retention_totals(&self) -> Result<RetentionTotals, OutboxError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT runs, records_deleted, bodies_dropped, bytes_reclaimed, last_run_at \
             FROM retention_totals WHERE id = 1",
            [],
            |r| {
                let u = |i: usize| r.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
                Ok(RetentionTotals {
                    runs: u(0)?,
                    records_deleted: u(1)?,
                    bodies_dropped: u(2)?,
                    bytes_reclaimed: u(3)?,
                    last_run_at_ms: r.get(4)?,
                })
            },
        )
        .map_err(|e| self.sql(e))
    }
}

/// `?first, ?first+1, ...` for `statuses`, and their names as arguments.
fn status_list(statuses: &[Status], first: usize) -> (String, Vec<String>) {
    let list = (0..statuses.len())
        .map(|i| format!("?{}", first + i))
        .collect::<Vec<_>>()
        .join(", ");
    (
        list,
        statuses.iter().map(|s| s.as_str().to_string()).collect(),
    )
}

fn ids(conn: &rusqlite::Connection, sql: &str, args: &[String]) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    stmt.query_map(params_from_iter(args.iter()), |r| r.get(0))?
        .collect()
}

/// Gives every free page back. SQLite frees one page per step of the statement, so it is
/// stepped to the end (a single `execute` would free one page).
fn incremental_vacuum(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

fn page_bytes(conn: &rusqlite::Connection) -> rusqlite::Result<u64> {
    let count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(u64::try_from(count.saturating_mul(size)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::super::tests::new_email;
    use super::*;

    #[test]
    fn a_schema_1_store_is_migrated_and_vacuumed_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mail.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(include_str!("migrations/0001_emails.sql"))
                .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.pragma_update(None, "application_id", super::super::schema::APPLICATION_ID)
                .unwrap();
            let mode: i64 = conn
                .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, 0);
        }
        let outbox = Outbox::open(&path).unwrap();
        let conn = outbox.conn();
        let read = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(read("PRAGMA auto_vacuum"), 2);
        assert_eq!(
            read("PRAGMA user_version"),
            super::super::schema::LATEST_VERSION
        );
        assert_eq!(read("SELECT runs FROM retention_totals"), 0);
    }

    #[test]
    fn purged_pages_go_back_to_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(dir.path().join("mail.db")).unwrap();
        for i in 0..300 {
            let mut email = new_email(&format!("e{i}"));
            email.message.body = "x".repeat(4000).into();
            outbox.accept(&email).unwrap();
        }
        let now = i64::MAX / 2;
        let dry = outbox
            .purge(&[Status::Queued], Some(now), &[], None, now, true)
            .unwrap();
        assert_eq!((dry.deleted.len(), dry.db_bytes), (300, 0));
        let done = outbox
            .purge(&[Status::Queued], Some(now), &[], None, now, false)
            .unwrap();
        assert_eq!(done.deleted.len(), 300);
        assert!(done.db_bytes > 300 * 4000 / 2, "{} bytes", done.db_bytes);
    }
}
