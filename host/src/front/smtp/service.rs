//! The relay inside `mailhost serve`: the delivery engine records what the relay accepts
//! ([`EngineRecorder`]), the engine's final-failure hook sends the DSN ([`dsn_hook`]), and
//! [`start`] binds the listeners and prints one ready line per listener.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailhost_plugin_api::ProviderError;

use super::backend::AcceptError;
use super::config::SmtpConfig;
use super::credentials::StaffDirectory;
use super::dsn;
use super::envelope::Identity;
use super::group_commit::GroupCommit;
use super::home_backend::{HomeRelay, RelayRecorder};
use super::intake::{self, ENVELOPE_FILE, Intake, Spooled};
use super::listener::{Relay, RelayError};
use crate::config::home::Home;
use crate::delivery::engine::{Engine, FailureHook, MimeRecord};
use crate::delivery::outbox::{Door, EmailRecord, MimeSource};
use crate::error::Error;

/// Records relayed messages with the delivery engine (`queued`, committed to mail.db), the
/// messages of concurrent sessions in shared commits ([`GroupCommit`]): one fsync of the
/// spool's folder (for the new email folders) and one durable mail.db commit per group.
#[derive(Debug)]
pub struct EngineRecorder {
    engine: Arc<Engine>,
    group: GroupCommit<Pending, Result<(), Error>>,
}

/// A relayed message waiting for its group's commit.
#[derive(Debug)]
struct Pending {
    /// The spool folder holding the message's email folder.
    spool: PathBuf,
    record: MimeRecord,
}

impl EngineRecorder {
    /// A recorder for `engine`.
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            group: GroupCommit::new(),
        }
    }

    /// Commits one group: the spool folder's entries first, then the records.
    fn commit(&self, group: Vec<Pending>) -> Vec<Result<(), Error>> {
        let mut spools: Vec<&PathBuf> = group.iter().map(|p| &p.spool).collect();
        spools.sort();
        spools.dedup();
        for spool in spools {
            if let Err(e) = intake::sync_spool(spool) {
                let why = e.to_string();
                return group
                    .iter()
                    .map(|p| {
                        self.engine.spool().remove(p.record.message.id.as_str());
                        Err(Error::Failed(why.clone()))
                    })
                    .collect();
            }
        }
        self.engine
            .record_mime_group(group.into_iter().map(|p| p.record).collect())
    }
}

fn mime_source(intake: &Intake, spooled: &Spooled) -> MimeSource {
    MimeSource {
        path: spooled.mime_path.to_string_lossy().into_owned(),
        envelope_from: intake.envelope.from.clone(),
        recipients: intake.envelope.addresses(),
    }
}

impl RelayRecorder for EngineRecorder {
    fn record(&self, intake: &Intake, spooled: &Spooled) -> Result<(), AcceptError> {
        let spool = spooled
            .mime_path
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let pending = Pending {
            spool,
            record: MimeRecord {
                staff_id: intake.staff.clone(),
                message: intake.message.clone(),
                mime: mime_source(intake, spooled),
                door: Door::Smtp,
            },
        };
        let result = self.group.submit(
            pending,
            |group| self.commit(group),
            || {
                Err(Error::Failed(
                    "the message was not recorded (no answer from mail.db)".into(),
                ))
            },
        );
        match result {
            Ok(()) => Ok(()),
            Err(Error::Usage(why)) => Err(AcceptError::Refused(why)),
            Err(error) => {
                log::error!("smtp: cannot record a relayed message: {error}");
                Err(AcceptError::Temporary(
                    "cannot record the message right now; try again later".into(),
                ))
            }
        }
    }
}

/// The hook that sends a DSN to the envelope sender when an email the relay accepted finally
/// fails; `hostname` is the relay's (`Reporting-MTA`).
pub fn dsn_hook(hostname: String) -> FailureHook {
    Box::new(move |engine, record, error| send_dsn(engine, &hostname, record, error))
}

fn send_dsn(engine: &Engine, hostname: &str, record: &EmailRecord, error: &ProviderError) {
    if record.door != Door::Smtp {
        return;
    }
    let Some(mime) = &record.mime else {
        return;
    };
    let mime_path = Path::new(&mime.path);
    let Some(folder) = mime_path.parent() else {
        return;
    };
    let staff_email = match engine.sender_of(&record.staff_id) {
        Ok((sender, _)) => sender.email,
        Err(e) => {
            log::warn!("smtp: no DSN for email {}: {e}", record.id);
            return;
        }
    };
    let recorded = intake::envelope_of_record(
        &record.staff_id,
        record.created_at.millis() / 1000,
        &mime.envelope_from,
        &mime.recipients,
    );
    let built = intake::envelope_at(&folder.join(ENVELOPE_FILE), &recorded).and_then(|spooled| {
        dsn::for_failed_email(
            mime_path,
            &spooled,
            &staff_email,
            hostname,
            error.kind,
            error.message.as_str(),
            &record.id,
        )
    });
    let (message, envelope) = match built {
        Ok(Some(dsn)) => dsn,
        Ok(None) => return,
        Err(e) => {
            log::warn!("smtp: no DSN for email {}: {e}", record.id);
            return;
        }
    };
    let identity = Identity {
        staff: record.staff_id.clone(),
        addresses: vec![staff_email],
        max_recipients: 1,
    };
    let intake = intake::prepare(&identity, &envelope, &message);
    let dsn_folder = engine.spool().folder(&intake.email_id);
    let arrival = crate::config::time::unix_seconds(std::time::SystemTime::now());
    let spooled = match intake::spool(&dsn_folder, &intake, arrival).and_then(|spooled| {
        match dsn_folder.parent() {
            Some(spool) => intake::sync_spool(spool).map(|()| spooled),
            None => Ok(spooled),
        }
    }) {
        Ok(spooled) => spooled,
        Err(e) => {
            log::warn!("smtp: cannot spool the DSN for email {}: {e}", record.id);
            engine.spool().remove(&intake.email_id);
            return;
        }
    };
    match engine.record_mime(
        &record.staff_id,
        intake.message.clone(),
        mime_source(&intake, &spooled),
        Door::Smtp,
    ) {
        Ok(dsn) => log::info!(
            "smtp: email {} failed; delivery status notification {} queued for {}",
            record.id,
            dsn.id,
            envelope.addresses().join(", ")
        ),
        Err(e) => log::warn!("smtp: cannot record the DSN for email {}: {e}", record.id),
    }
}

/// Binds the relay of `home` with `config`, wires it to `engine` (recording and DSNs) and
/// returns it with the lines to print (`mailhost serve: smtp listening on ADDR`, `smtps` for
/// implicit TLS).
///
/// # Errors
/// The certificate cannot be used or an address cannot be bound (exit 2: fix serve.toml).
pub async fn start(
    home: &Home,
    engine: &Arc<Engine>,
    config: SmtpConfig,
) -> Result<(Relay, Vec<String>), Error> {
    let directory =
        StaffDirectory::new(home.clone(), config.trusted.clone(), config.max_recipients);
    let backend = HomeRelay::new(
        directory,
        home.path().join("spool"),
        EngineRecorder::new(Arc::clone(engine)),
    );
    engine.on_final_failure(dsn_hook(config.hostname.clone()));
    let relay = Relay::bind(config, Arc::new(backend))
        .await
        .map_err(|e: RelayError| Error::Usage(e.to_string()))?;
    let lines = relay
        .local_addrs()
        .iter()
        .map(|b| {
            format!(
                "mailhost serve: {} listening on {}",
                if b.implicit_tls { "smtps" } else { "smtp" },
                b.addr
            )
        })
        .collect();
    Ok((relay, lines))
}
