//! Lanes: a staff member's route to their provider, with the sending limits and retry limits
//! that go with it, cached for a few seconds so a busy service does not re-read the home's
//! files for every email, yet picks up a configuration change without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailhost_plugin_api::{ProviderError, SendRequest};

use super::policy::RetryLimits;
use crate::config::settings::{self, MAX_AGE_HOURS, MAX_ATTEMPTS};
use crate::delivery::dispatch::{Dispatcher, Route};
use crate::delivery::limits::Limits;
use crate::delivery::outbox::EmailRecord;
use crate::error::Error;

/// How long a lane is reused before the files are read again.
pub const LANE_TTL: Duration = Duration::from_secs(2);

/// A staff member's route with its limits.
#[derive(Debug)]
pub struct Lane {
    /// The route to the provider.
    pub route: Route,
    /// The sending limits the provider declares, with the numbers from its settings.
    pub limits: Limits,
    /// MaxAttempts and MaxAgeHours.
    pub retry: RetryLimits,
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

    /// The mailbox the limits count `record` against.
    ///
    /// # Errors
    /// The provider's error.
    pub fn mailbox(&self, record: &EmailRecord) -> Result<String, ProviderError> {
        let mailbox = self.route.plugin().sending_mailbox(&self.request(record))?;
        Ok(mailbox.trim().to_ascii_lowercase())
    }
}

/// A cached lane (or why there is none) and when it was built.
type Cached = (Instant, Result<Arc<Lane>, String>);

/// The lanes of one engine, by staff ID. A lane that cannot be built (provider disabled,
/// quarantined, misconfigured) is cached as its error for the same time.
#[derive(Debug)]
pub struct Lanes {
    dispatcher: Dispatcher,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Lanes {
    /// Lanes through `dispatcher`.
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self {
            dispatcher,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The dispatcher behind them.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// The lane of `staff_id`, from the cache when fresh.
    ///
    /// # Errors
    /// Why the staff member's provider cannot be used now, as a line for the user.
    pub fn get(&self, staff_id: &str) -> Result<Arc<Lane>, String> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, lane)) = cache.get(staff_id)
            && at.elapsed() < LANE_TTL
        {
            return lane.clone();
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
        cache.insert(staff_id.to_string(), (Instant::now(), lane.clone()));
        lane
    }

    /// Forgets every cached lane (after a configuration change in this process).
    pub fn clear(&self) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}
