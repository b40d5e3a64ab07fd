//! What happens after a failed attempt: try again later (throttled and transient faults, with
//! the provider's Retry-After or a capped exponential backoff with jitter), stop for good
//! (every other kind, or after `MaxAttempts` attempts or `MaxAgeHours`), or ask the provider
//! (an outcome in doubt).

use std::time::Duration;

use mailhost_plugin_api::{ErrorKind, ProviderError};

use crate::delivery::outbox::Timestamp;

/// The first backoff of a transient fault that gave no Retry-After; doubled each attempt.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// The longest backoff, and the longest Retry-After honoured as given.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// The retry limits of one plugin (host settings `MaxAttempts`, `MaxAgeHours`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryLimits {
    /// Attempts after which a retryable email ends failed.
    pub max_attempts: u32,
    /// Age after which a retryable email ends failed.
    pub max_age: Duration,
}

impl Default for RetryLimits {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            max_age: Duration::from_secs(72 * 3600),
        }
    }
}

/// What to do with an email after an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time.
    RetryAt(Timestamp),
    /// Give up: it ends `failed`; the text says why it was not retried (empty for permanent
    /// kinds).
    Fail(String),
    /// It may have been sent: it becomes `unknown`.
    Unknown,
}

/// Decides what follows `error` on attempt `attempts` (1-based) of an email created at
/// `created`, at `now`. `jitter` is a number in [0, 1) (random in production).
pub fn after_failure(
    error: &ProviderError,
    attempts: u32,
    created: Timestamp,
    now: Timestamp,
    limits: RetryLimits,
    jitter: f64,
) -> Next {
    if error.kind == ErrorKind::UNKNOWN_OUTCOME {
        return Next::Unknown;
    }
    if !error.kind.is_transient() {
        return Next::Fail(String::new());
    }
    if attempts >= limits.max_attempts {
        return Next::Fail(format!(
            "gave up after {attempts} attempts (MaxAttempts {})",
            limits.max_attempts
        ));
    }
    let delay = delay(error.retry_after(), attempts, jitter);
    let at = Timestamp(now.millis().saturating_add(millis(delay)));
    let age_limit = created.millis().saturating_add(millis(limits.max_age));
    if at.millis() > age_limit {
        return Next::Fail(format!(
            "gave up: the next attempt would come after MaxAgeHours ({} h) since it was accepted",
            limits.max_age.as_secs() / 3600
        ));
    }
    Next::RetryAt(at)
}

/// The wait before the next attempt: the provider's Retry-After (capped), else
/// `FIRST_BACKOFF * 2^(attempts-1)` (capped), scaled by a jitter between 0.8 and 1.2 so many
/// emails throttled together do not return together.
pub fn delay(retry_after: Option<Duration>, attempts: u32, jitter: f64) -> Duration {
    match retry_after {
        Some(wait) => wait.min(MAX_BACKOFF),
        None => {
            let exponent = attempts.saturating_sub(1).min(16);
            let base = FIRST_BACKOFF
                .saturating_mul(1u32 << exponent)
                .min(MAX_BACKOFF);
            base.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_000_000_000);

    #[test]
    fn retry_after_is_honoured() {
        let error = ProviderError::throttled("slow down", Some(Duration::from_secs(7)));
        let next = after_failure(&error, 1, NOW, NOW, RetryLimits::default(), 0.5);
        assert_eq!(next, Next::RetryAt(Timestamp(NOW.millis() + 7_000)));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        assert_eq!(delay(None, 1, 0.5), Duration::from_secs(5));
        assert_eq!(delay(None, 3, 0.5), Duration::from_secs(20));
        assert_eq!(delay(None, 3, 0.0), Duration::from_secs(16));
        assert_eq!(delay(None, 3, 1.0), Duration::from_secs(24));
        assert!(delay(None, 30, 1.0) <= MAX_BACKOFF.mul_f64(1.2));
        assert_eq!(
            delay(Some(Duration::from_secs(86_400)), 1, 0.5),
            MAX_BACKOFF
        );
    }

    #[test]
    fn permanent_kinds_fail_at_once() {
        let error = ProviderError::recipient("no such user");
        assert_eq!(
            after_failure(&error, 1, NOW, NOW, RetryLimits::default(), 0.5),
            Next::Fail(String::new())
        );
    }

    #[test]
    fn attempts_and_age_are_bounded() {
        let error = ProviderError::transient("503");
        let limits = RetryLimits {
            max_attempts: 3,
            max_age: Duration::from_secs(3600),
        };
        assert!(matches!(
            after_failure(&error, 3, NOW, NOW, limits, 0.5),
            Next::Fail(why) if why.contains("MaxAttempts 3")
        ));
        let old = Timestamp(NOW.millis() - 3_599_000);
        assert!(matches!(
            after_failure(&error, 1, old, NOW, limits, 0.5),
            Next::Fail(why) if why.contains("MaxAgeHours")
        ));
    }

    #[test]
    fn an_outcome_in_doubt_is_never_retried_blindly() {
        let error = ProviderError::new(ErrorKind::UNKNOWN_OUTCOME, "timed out after sending");
        assert_eq!(
            after_failure(&error, 1, NOW, NOW, RetryLimits::default(), 0.5),
            Next::Unknown
        );
    }
}
