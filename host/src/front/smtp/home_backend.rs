//! The [`RelayBackend`] of a mailhost home: sign-in against the staff file and secret store
//! ([`StaffDirectory`]), then [`intake`](super::intake) (Message-ID, structured view, durable
//! spool) and the delivery engine's commit ([`RelayRecorder`]). `250` follows only when all
//! three returned.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use mailhost_plugin_api::Secret;

use super::backend::{AcceptError, RelayBackend};
use super::credentials::StaffDirectory;
use super::envelope::{Envelope, Identity};
use super::intake::{self, Intake, Spooled};

/// The engine's side: records a spooled relayed message as a queued email in mail.db (the
/// commit is durable when this returns) for the engine to send with `send_mime`.
pub trait RelayRecorder: Send + Sync + 'static {
    /// Records the email `intake.email_id`.
    ///
    /// # Errors
    /// [`AcceptError::Temporary`] for faults worth retrying (the database is busy, the disk is
    /// full); [`AcceptError::TooManyRecipients`] or [`AcceptError::Refused`] otherwise.
    fn record(&self, intake: &Intake, spooled: &Spooled) -> Result<(), AcceptError>;
}

/// The relay backend of one home.
#[derive(Debug)]
pub struct HomeRelay<R> {
    directory: StaffDirectory,
    spool_root: PathBuf,
    recorder: R,
}

impl<R: RelayRecorder> HomeRelay<R> {
    /// A backend signing in through `directory`, spooling into `spool_root/<email id>/`
    /// (the home's spool) and recording with `recorder`.
    pub fn new(directory: StaffDirectory, spool_root: PathBuf, recorder: R) -> Self {
        Self {
            directory,
            spool_root,
            recorder,
        }
    }

    /// The recorder.
    pub fn recorder(&self) -> &R {
        &self.recorder
    }
}

impl<R: RelayRecorder> RelayBackend for HomeRelay<R> {
    fn authenticate(&self, user: &str, password: &Secret) -> Option<Identity> {
        self.directory.authenticate(user, password)
    }

    fn trusted(&self, peer: IpAddr) -> Option<Identity> {
        self.directory.trusted(peer)
    }

    fn accept(
        &self,
        identity: &Identity,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<String, AcceptError> {
        let intake = intake::prepare(identity, envelope, message);
        let arrival = crate::config::time::unix_seconds(SystemTime::now());
        let folder = self.spool_root.join(&intake.email_id);
        let spooled = intake::spool(&folder, &intake, arrival).map_err(|e| {
            let _ = std::fs::remove_dir_all(&folder);
            log::error!("smtp: cannot spool a relayed message: {e}");
            AcceptError::Temporary("cannot store the message right now; try again later".into())
        })?;
        if let Err(e) = self.recorder.record(&intake, &spooled) {
            let _ = std::fs::remove_dir_all(&folder);
            return Err(e);
        }
        Ok(intake.email_id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::config::home::Home;
    use crate::front::smtp::envelope::{DsnReturn, Recipient};

    #[derive(Default)]
    struct Recorded(Mutex<Vec<(String, PathBuf)>>, bool);

    impl RelayRecorder for Recorded {
        fn record(&self, intake: &Intake, spooled: &Spooled) -> Result<(), AcceptError> {
            if self.1 {
                return Err(AcceptError::Temporary("database busy".into()));
            }
            assert!(spooled.mime_path.exists(), "spooled before the commit");
            self.0
                .lock()
                .unwrap()
                .push((intake.email_id.clone(), spooled.mime_path.clone()));
            Ok(())
        }
    }

    fn envelope() -> Envelope {
        Envelope {
            from: "adele@contoso.com".into(),
            recipients: vec![Recipient {
                address: "b@x.com".into(),
                notify_never: false,
                notify_failure: true,
                notify_success: false,
                notify_delay: false,
                orcpt: None,
            }],
            eight_bit_mime: false,
            smtputf8: false,
            declared_size: 0,
            ret: DsnReturn::Unspecified,
            envid: None,
        }
    }

    fn identity() -> Identity {
        Identity {
            staff: "adele".into(),
            addresses: vec!["adele@contoso.com".into()],
            max_recipients: 5,
        }
    }

    #[test]
    fn spools_then_records_and_cleans_up_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(dir.path()).unwrap();
        let spool = dir.path().join("spool");
        let ok = HomeRelay::new(
            StaffDirectory::new(home.clone(), Vec::new(), 5),
            spool.clone(),
            Recorded::default(),
        );
        let id = ok
            .accept(
                &identity(),
                &envelope(),
                b"From: adele@contoso.com\r\n\r\nx\r\n",
            )
            .unwrap();
        let recorded = ok.recorder.0.lock().unwrap().clone();
        assert_eq!(recorded[0].0, id);
        let failing = HomeRelay::new(
            StaffDirectory::new(home, Vec::new(), 5),
            spool.clone(),
            Recorded(Mutex::default(), true),
        );
        let e = failing
            .accept(
                &identity(),
                &envelope(),
                b"From: adele@contoso.com\r\n\r\nx\r\n",
            )
            .unwrap_err();
        assert_eq!(e, AcceptError::Temporary("database busy".into()));
        let folders: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
        assert_eq!(folders.len(), 1, "only the first email's folder");
        assert!(spool.join(&id).join(intake::MESSAGE_FILE).exists());
    }
}
