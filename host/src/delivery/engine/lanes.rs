//! Lanes: a staff member's route to their provider, with the sending limits and retry limits
//! that go with it, cached so a busy service does not re-read the home's files for every email,
//! yet picks up a configuration change without a restart: a lane is kept while the
//! configuration files keep the same size, modification time and inode (looked at every
//! [`LANE_TTL`]), and rebuilt at least every [`LANE_MAX_AGE`] (a secret kept outside the
//! files, in the OS keyring, may change without them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailhost_plugin_api::{ProviderError, SendRequest};

use super::policy::RetryLimits;
use crate::config::home::Home;
use crate::config::settings::{self, MAX_AGE_HOURS, MAX_ATTEMPTS};
use crate::delivery::dispatch::{Dispatcher, Route};
use crate::delivery::limits::Limits;
use crate::delivery::outbox::EmailRecord;
use crate::error::Error;

/// How often the configuration files are looked at for a change; also how long a lane that
/// could not be built is remembered as such.
pub const LANE_TTL: Duration = Duration::from_secs(2);

/// The longest a lane is reused, files unchanged or not.
pub const LANE_MAX_AGE: Duration = Duration::from_secs(60);

/// A staff member's route with its limits.
#[derive(Debug)]
pub struct Lane {
    /// The route to the provider.
    pub route: Route,
    /// The sending limits the provider declares, with the numbers from its settings.
    pub limits: Limits,
    /// MaxAttempts and MaxAgeHours.
    pub retry: RetryLimits,
    /// The sending mailbox of each From this lane was asked about (the provider's answer
    /// depends only on the staff member, whom the lane is for, and the From).
    mailboxes: Mutex<HashMap<String, String>>,
}

impl Lane {
    fn new(route: Route) -> Result<Self, Error> {
        let specs = route.plugin().limits().map_err(|e| {
            Error::Usage(format!(
                "provider '{}' could not state its sending limits: {e}",
                route.provider_name()
            ))
        })?;
        let limits = Limits::from_specs(&specs, route.settings());
        let retry = RetryLimits {
            max_attempts: u32::try_from(settings::number(route.settings(), MAX_ATTEMPTS, 10))
                .unwrap_or(u32::MAX)
                .max(1),
            max_age: Duration::from_secs(
                settings::number(route.settings(), MAX_AGE_HOURS, 72).saturating_mul(3600),
            ),
        };
        Ok(Self {
            route,
            limits,
            retry,
            mailboxes: Mutex::new(HashMap::new()),
        })
    }

    /// The request for `record`, as the provider receives it. A provider built before plugin
    /// API 1.2 does not know the host puts the `Message-ID` among the headers, so it does not
    /// get it there.
    pub fn request(&self, record: &EmailRecord) -> SendRequest {
        let mut message = record.to_message();
        if !self.route.plugin().has_api_1_2() {
            let headers: Vec<_> = message.custom_headers().cloned().collect();
            message.headers = headers.into();
        }
        self.route.request(&message)
    }

    /// The mailbox the limits count `record` against: the provider's answer for its From,
    /// asked once per lane (so again after [`LANE_TTL`], when the lane is rebuilt).
    ///
    /// # Errors
    /// The provider's error (not kept: the next email asks again).
    pub fn mailbox(&self, record: &EmailRecord) -> Result<String, ProviderError> {
        let from = record.from.address.to_ascii_lowercase();
        if let Some(mailbox) = self.known_mailboxes().get(&from) {
            return Ok(mailbox.clone());
        }
        let mailbox = self
            .route
            .plugin()
            .sending_mailbox(&self.request(record))?
            .trim()
            .to_ascii_lowercase();
        self.known_mailboxes().insert(from, mailbox.clone());
        Ok(mailbox)
    }

    fn known_mailboxes(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.mailboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A cached lane (or why there is none), when it was built and from which files.
type Cached = (Instant, FilesStamp, Result<Arc<Lane>, String>);

/// The size, modification time and inode of each configuration file a lane is built from
/// (`None` for a file that does not exist): the same stamp, the same lane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FilesStamp(Vec<Option<(u64, std::time::SystemTime, u64)>>);

impl FilesStamp {
    fn of(home: &Home) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self(
            [
                home.registry_path(),
                home.settings_path(),
                home.staff_path(),
                home.secrets_path(),
                home.secrets_index_path(),
            ]
            .iter()
            .map(|path| {
                let meta = std::fs::metadata(path).ok()?;
                Some((meta.len(), meta.modified().ok()?, meta.ino()))
            })
            .collect(),
        )
    }
}

/// The lanes of one engine, by staff ID. A lane that cannot be built (provider disabled,
/// quarantined, misconfigured) is cached as its error for [`LANE_TTL`].
#[derive(Debug)]
pub struct Lanes {
    dispatcher: Dispatcher,
    cache: Mutex<HashMap<String, Cached>>,
    /// The files' stamp, and when it was taken.
    stamp: Mutex<(Option<Instant>, FilesStamp)>,
}

impl Lanes {
    /// Lanes through `dispatcher`.
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self {
            dispatcher,
            cache: Mutex::new(HashMap::new()),
            stamp: Mutex::new((None, FilesStamp::default())),
        }
    }

    /// The dispatcher behind them.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// The files' stamp, taken again when older than [`LANE_TTL`].
    fn stamp(&self) -> FilesStamp {
        let mut stamp = self
            .stamp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if stamp.0.is_none_or(|at| at.elapsed() >= LANE_TTL) {
            *stamp = (Some(Instant::now()), FilesStamp::of(self.dispatcher.home()));
        }
        stamp.1.clone()
    }

    /// The lane of `staff_id`, from the cache while the files are unchanged.
    ///
    /// # Errors
    /// Why the staff member's provider cannot be used now, as a line for the user.
    pub fn get(&self, staff_id: &str) -> Result<Arc<Lane>, String> {
        let stamp = self.stamp();
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, built_from, lane)) = cache.get(staff_id) {
            let age = at.elapsed();
            let fresh = match lane {
                Ok(_) => *built_from == stamp && age < LANE_MAX_AGE,
                Err(_) => age < LANE_TTL,
            };
            if fresh {
                return lane.clone();
            }
        }
        // Building a lane may load a library: not under the lock of every other staff member.
        drop(cache);
        let lane = self
            .dispatcher
            .prepare(staff_id)
            .and_then(Lane::new)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.insert(staff_id.to_string(), (Instant::now(), stamp, lane.clone()));
        lane
    }

    /// Forgets every cached lane (after a configuration change in this process).
    pub fn clear(&self) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.stamp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0 = None;
    }
}
