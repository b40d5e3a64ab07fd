//! A fake engine for the router's tests: emails go into an in-memory `mail.db` through the
//! real compose checks, for one known staff member (`adele`). Its idempotency check is
//! deliberately not atomic (look up, pause, record), so only the door's own per-key turn
//! keeps concurrent duplicates from recording two emails.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use mailhost_plugin_api::Attachment;

use super::backend::{
    ApiSubmission, Backend, BackendError, EngineMetrics, LatencyHistogram, SendCount,
};
use crate::delivery::compose::{self, Sender};
use crate::delivery::outbox::{Door, EmailRecord, NewEmail, Outbox, Status};

/// The staff member the fake knows.
pub(super) const STAFF: &str = "adele";

#[derive(Debug)]
pub(super) struct FakeEngine {
    outbox: Outbox,
    keys: Mutex<HashMap<String, String>>,
}

impl FakeEngine {
    pub(super) fn new() -> Self {
        Self {
            outbox: Outbox::in_memory().unwrap(),
            keys: Mutex::new(HashMap::new()),
        }
    }
}

impl Backend for FakeEngine {
    fn submit(&self, submission: ApiSubmission) -> Result<EmailRecord, BackendError> {
        if submission.staff_id == "panic" {
            panic!("the fake engine was asked to panic");
        }
        if submission.staff_id != STAFF {
            return Err(BackendError::Invalid(format!(
                "no staff member '{}'",
                submission.staff_id
            )));
        }
        if let Some(key) = &submission.idempotency_key {
            let first = self.keys.lock().unwrap().get(key).cloned();
            if let Some(id) = first {
                return self.get(&id);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let sender = Sender {
            email: "adele@contoso.com".into(),
            name: "Adele Vance".into(),
        };
        let id = compose::new_email_id();
        let mut message = compose::compose(&submission.draft, &sender, &id)
            .map_err(|e| BackendError::Invalid(e.to_string()))?;
        message.attachments = submission
            .attachments
            .iter()
            .map(|a| Attachment {
                path: format!("spool/{id}/{}", a.name).as_str().into(),
                name: a.name.as_str().into(),
                content_type: a.content_type.as_str().into(),
                size: a.data.len() as u64,
            })
            .collect::<Vec<_>>()
            .into();
        let record = self
            .outbox
            .accept(&NewEmail::new(STAFF, "fake", message, Door::Http))
            .map_err(|e| super::store_error(&e))?;
        if let Some(key) = submission.idempotency_key {
            self.keys.lock().unwrap().insert(key, record.id.clone());
        }
        Ok(record)
    }

    fn get(&self, id: &str) -> Result<EmailRecord, BackendError> {
        self.outbox.get(id).map_err(|e| super::store_error(&e))
    }

    fn list(&self, status: Option<Status>, limit: usize) -> Result<Vec<EmailRecord>, BackendError> {
        self.outbox
            .list(status, Some(limit))
            .map_err(|e| super::store_error(&e))
    }

    fn retry(&self, id: &str, force: bool) -> Result<EmailRecord, BackendError> {
        let record = self.get(id)?;
        if record.status == Status::Sent && !force {
            return Err(BackendError::Conflict(format!(
                "email {id} was sent already: retry it with force=true to send it again"
            )));
        }
        Ok(record)
    }

    fn metrics(&self) -> Result<EngineMetrics, BackendError> {
        Ok(EngineMetrics {
            emails: self.outbox.counts().map_err(|e| super::store_error(&e))?,
            sends: vec![SendCount {
                outcome: "sent".into(),
                count: 3,
            }],
            retries: 1,
            throttles: 0,
            limit_waits: 2,
            latency: vec![LatencyHistogram {
                provider: "fake".into(),
                buckets: vec![(0.05, 1), (0.5, 3)],
                sum_seconds: 0.4,
                count: 3,
            }],
        })
    }

    fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}
