//! Retention: mail.db keeps personal data (every recipient, subject and body) only as long as
//! the home's policy says. Host settings in `[mailhost]`:
//! - `RetainDays` (90): sent emails older than this are deleted with their spool folder;
//! - `RetainBodyDays` (30): sent emails older than this lose their body and spooled attachments;
//!   the record (who, to whom, when, status, receipt, errors) stays until `RetainDays`;
//! - 0 keeps forever.
//!
//! `queued`, `failed` and `unknown` emails are never touched unless named (`email purge
//! --status`), and then deleted whole once old enough, never emptied (they may still be sent);
//! `sending` ones never are. The age of an email is when it was sent, else its last
//! change. `mailhost email purge` runs [`apply`] once; `mailhost serve` runs it daily. Freed
//! pages go back to the file system (incremental vacuum) and the totals are kept in mail.db
//! ([`Outbox::retention_totals`]) for `/metrics`.

use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::config::files::FileError;
use crate::config::home::Home;
use crate::config::settings::{self, Settings};
use crate::config::time;
use crate::delivery::outbox::{Outbox, OutboxError, Status};

/// Why a purge failed.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The store failed (nothing was changed in it).
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// A spool folder could not be removed (the records are already purged; rerun to retry).
    #[error(transparent)]
    Spool(#[from] FileError),
    /// settings.toml could not be read.
    #[error(transparent)]
    Settings(Box<crate::config::settings::SettingsError>),
    /// `sending` was named: such an email is in a provider's hands right now.
    #[error(
        "emails with status 'sending' are being sent right now and are never purged: name queued, sent, failed or unknown"
    )]
    Sending,
}

/// What to purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Records older than this many seconds are deleted (`None`: kept forever).
    pub delete_after: Option<i64>,
    /// Bodies older than this many seconds are dropped (`None`: kept until the record goes).
    pub drop_body_after: Option<i64>,
    /// The statuses purged: `sent` unless others are named.
    pub statuses: Vec<Status>,
    /// Report only; change nothing.
    pub dry_run: bool,
}

impl Policy {
    /// The home's policy: `RetainDays` and `RetainBodyDays` for sent emails.
    pub fn from_settings(settings: &Settings) -> Self {
        let days = |key| {
            let n = settings::host_number(settings, key);
            (n > 0).then(|| i64::try_from(n).unwrap_or(i64::MAX / 86_400) * 86_400)
        };
        Self {
            delete_after: days(settings::RETAIN_DAYS),
            drop_body_after: days(settings::RETAIN_BODY_DAYS),
            statuses: vec![Status::Sent],
            dry_run: false,
        }
    }
}

/// What a purge did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Records deleted.
    pub records_deleted: u64,
    /// Bodies dropped (records kept).
    pub bodies_dropped: u64,
    /// Bytes given back: mail.db pages and spool files.
    pub bytes_reclaimed: u64,
    /// Of which, the spool.
    pub spool_bytes: u64,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// Applies `policy` to `outbox` (the home's mail.db) and the home's spool at `now`.
///
/// # Errors
/// The store failed (then nothing changed), or a spool folder could not be removed.
pub fn apply(
    home: &Home,
    outbox: &Outbox,
    policy: &Policy,
    now: SystemTime,
) -> Result<PurgeReport, RetentionError> {
    if policy.statuses.contains(&Status::Sending) {
        return Err(RetentionError::Sending);
    }
    let now_ms = time::unix_seconds(now).saturating_mul(1000);
    let before = |age: Option<i64>| age.map(|a| now_ms.saturating_sub(a.saturating_mul(1000)));
    // Only a sent email's body is dropped: a queued, failed or unknown one may still be sent,
    // so it is deleted whole when named, never emptied.
    let body_statuses: Vec<Status> = policy
        .statuses
        .iter()
        .copied()
        .filter(|s| *s == Status::Sent)
        .collect();
    let store = outbox.purge(
        &policy.statuses,
        before(policy.delete_after),
        &body_statuses,
        before(policy.drop_body_after),
        now_ms,
        policy.dry_run,
    )?;
    let mut spool_bytes = 0;
    for id in store.deleted.iter().chain(&store.bodies_dropped) {
        let Some(dir) = spool_dir(home, id) else {
            continue;
        };
        spool_bytes += size_of(&dir);
        if !policy.dry_run {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(FileError::new("remove the spool folder", &dir, e).into()),
            }
        }
    }
    let report = PurgeReport {
        records_deleted: store.deleted.len() as u64,
        bodies_dropped: store.bodies_dropped.len() as u64,
        bytes_reclaimed: store.db_bytes + spool_bytes,
        spool_bytes,
        dry_run: policy.dry_run,
    };
    if !policy.dry_run {
        outbox.add_retention_totals(
            report.records_deleted,
            report.bodies_dropped,
            report.bytes_reclaimed,
            now_ms,
        )?;
    }
    Ok(report)
}

/// Applies the home's own policy (`RetainDays`, `RetainBodyDays`, sent emails only): what
/// `mailhost serve` runs daily.
///
/// # Errors
/// settings.toml cannot be read, or as [`apply`].
pub fn apply_home_policy(
    home: &Home,
    outbox: &Outbox,
    now: SystemTime,
) -> Result<PurgeReport, RetentionError> {
    let stored = settings::load(home).map_err(|e| RetentionError::Settings(Box::new(e)))?;
    apply(home, outbox, &Policy::from_settings(&stored), now)
}

/// The retention totals as Prometheus text, for `/metrics` (no addresses or subjects).
pub fn metrics_text(totals: &crate::delivery::outbox::RetentionTotals) -> String {
    let mut out = String::new();
    for (name, help, value) in [
        (
            "mailhost_retention_runs_total",
            "Purges run (email purge and serve's daily one).",
            totals.runs,
        ),
        (
            "mailhost_retention_records_deleted_total",
            "Email records deleted by retention.",
            totals.records_deleted,
        ),
        (
            "mailhost_retention_bodies_dropped_total",
            "Email bodies and spooled attachments dropped by retention.",
            totals.bodies_dropped,
        ),
        (
            "mailhost_retention_bytes_reclaimed_total",
            "Bytes given back by retention (mail.db pages and spool files).",
            totals.bytes_reclaimed,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    }
    let last = totals.last_run_at_ms.map_or(0.0, |ms| ms as f64 / 1000.0);
    out.push_str(&format!(
        "# HELP mailhost_retention_last_run_timestamp_seconds When retention last ran (0: never).\n# TYPE mailhost_retention_last_run_timestamp_seconds gauge\nmailhost_retention_last_run_timestamp_seconds {last}\n"
    ));
    out
}

/// `spool/<id>` of an email id that is a plain name (never a path).
fn spool_dir(home: &Home, id: &str) -> Option<std::path::PathBuf> {
    let plain = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    plain.then(|| home.spool_dir(id))
}

/// The bytes of the files under `path` (symbolic links not followed).
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| size_of(&e.path())).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::files;
    use crate::delivery::outbox::tests::new_email as email;

    /// Moves an email's age back by `days`.
    fn age(home: &Home, id: &str, status: &str, days: i64) {
        let conn = rusqlite::Connection::open(home.mail_db_path()).unwrap();
        let when = time::now_seconds() * 1000 - days * 86_400_000;
        let sent = (status == "sent").then_some(when);
        conn.execute(
            "UPDATE emails SET status = ?1, sent_at = ?2, updated_at = ?3 WHERE id = ?4",
            rusqlite::params![status, sent, when, id],
        )
        .unwrap();
    }

    #[test]
    fn sent_mail_ages_out_and_the_rest_stays() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        let outbox = Outbox::open(home.mail_db_path()).unwrap();
        for (id, status, days) in [
            ("old-sent", "sent", 100),
            ("mid-sent", "sent", 40),
            ("new-sent", "sent", 1),
            ("old-queued", "queued", 400),
            ("old-failed", "failed", 400),
        ] {
            outbox.accept(&email(id)).unwrap();
            age(&home, id, status, days);
            files::write_private_file(&home.spool_dir(id).join("a.bin"), &[0u8; 100]).unwrap();
        }
        let policy = Policy::from_settings(&Settings::default());
        let dry = apply(
            &home,
            &outbox,
            &Policy {
                dry_run: true,
                ..policy.clone()
            },
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!((dry.records_deleted, dry.bodies_dropped), (1, 1));
        assert!(home.spool_dir("old-sent").exists());
        let report = apply(&home, &outbox, &policy, SystemTime::now()).unwrap();
        assert_eq!((report.records_deleted, report.bodies_dropped), (1, 1));
        assert_eq!(report.spool_bytes, 200);
        assert!(outbox.get("old-sent").is_err());
        assert!(!home.spool_dir("old-sent").exists());
        let mid = outbox.get("mid-sent").unwrap();
        assert_eq!(mid.body, "");
        assert_eq!(mid.subject, "Invoice 42");
        assert!(!home.spool_dir("mid-sent").exists());
        assert_eq!(outbox.get("new-sent").unwrap().body, "<p>Hello</p>");
        assert_eq!(outbox.get("old-queued").unwrap().body, "<p>Hello</p>");
        assert!(home.spool_dir("old-queued").exists() && home.spool_dir("old-failed").exists());
        let totals = outbox.retention_totals().unwrap();
        assert_eq!(
            (totals.runs, totals.records_deleted, totals.bodies_dropped),
            (1, 1, 1)
        );
        // Naming failed purges it; sending is refused.
        let failed = Policy {
            statuses: vec![Status::Failed],
            ..policy.clone()
        };
        assert_eq!(
            apply(&home, &outbox, &failed, SystemTime::now())
                .unwrap()
                .records_deleted,
            1
        );
        let text = metrics_text(&outbox.retention_totals().unwrap());
        assert!(
            text.contains("mailhost_retention_records_deleted_total 2\n"),
            "{text}"
        );
        assert!(apply_home_policy(&home, &outbox, SystemTime::now()).is_ok());
        let sending = Policy {
            statuses: vec![Status::Sending],
            ..policy
        };
        assert!(apply(&home, &outbox, &sending, SystemTime::now()).is_err());
    }
}
