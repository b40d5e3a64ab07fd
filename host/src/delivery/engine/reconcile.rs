//! Settling `unknown` emails: the engine asks the provider (plugin API 1.2 `reconcile`) whether
//! each was sent. Found means `sent`; proven absent means it goes back to the queue; anything
//! else stays `unknown` and is asked about again later, less and less often, for a week.
//! Providers that cannot look up what they sent keep the older rule: `unknown` waits for a
//! person (`mailhost email retry ID --force`).

use std::time::Duration;

use mailhost_plugin_api::{ReconcileRequest, ReconcileState};
use serde::Serialize;

use super::Engine;
use crate::delivery::outbox::{EmailRecord, ReceiptRecord, Settled, Status, Timestamp};
use crate::error::Error;

/// The first check after an outcome fell in doubt.
const FIRST_CHECK: Duration = Duration::from_secs(30);
/// The longest pause between two checks.
const LONGEST_PAUSE: Duration = Duration::from_secs(3600);
/// After this long in doubt the engine stops asking by itself.
const GIVE_UP_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// When to ask first about an email whose outcome fell in doubt at `now`.
pub(crate) fn first_check(now: Timestamp) -> Timestamp {
    Timestamp(now.millis() + millis(FIRST_CHECK))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What one reconciliation pass found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileSummary {
    /// Found: now `sent`.
    pub sent: u64,
    /// Proven not sent: back in the queue.
    pub requeued: u64,
    /// Still in doubt.
    pub unknown: u64,
    /// One line per email: id, what was found.
    pub details: Vec<(String, String)>,
}

impl Engine {
    /// Asks about every `unknown` email whose next check is due.
    ///
    /// # Errors
    /// The store failed.
    pub fn reconcile_due(&self, now: Timestamp) -> Result<ReconcileSummary, Error> {
        let ids = self.outbox.reconcile_due(now, 50)?;
        self.reconcile_ids(&ids)
    }

    /// Asks about each of `ids` (which must be `unknown`; others are passed over).
    ///
    /// # Errors
    /// The store failed.
    pub fn reconcile_ids(&self, ids: &[String]) -> Result<ReconcileSummary, Error> {
        let mut summary = ReconcileSummary::default();
        for id in ids {
            let record = self.outbox.get(id)?;
            if record.status != Status::Unknown {
                continue;
            }
            let (status, detail) = self.reconcile_one(&record)?;
            match status {
                Status::Sent => summary.sent += 1,
                Status::Queued => summary.requeued += 1,
                _ => summary.unknown += 1,
            }
            summary.details.push((record.id.clone(), detail));
        }
        if summary.requeued > 0 {
            self.wake();
        }
        Ok(summary)
    }

    fn reconcile_one(&self, record: &EmailRecord) -> Result<(Status, String), Error> {
        let now = Timestamp::now();
        let lane = match self.lanes.get(&record.staff_id) {
            Ok(lane) => lane,
            Err(reason) => {
                let detail = format!("cannot ask the provider yet: {reason}");
                let next = Some(Timestamp(now.millis() + millis(Duration::from_secs(300))));
                let status = self.outbox.settle(
                    &record.id,
                    &Settled::StillUnknown {
                        detail: detail.clone(),
                        next,
                    },
                )?;
                return Ok((status, detail));
            }
        };
        let plugin = lane.route.plugin();
        if !plugin.reconciles() {
            let detail = format!(
                "provider '{}' cannot look up what it sent: check the recipient's mailbox, and if it did not arrive run `mailhost email retry {} --force`",
                lane.route.provider_name(),
                record.id
            );
            let status = self.outbox.settle(
                &record.id,
                &Settled::StillUnknown {
                    detail: detail.clone(),
                    next: None,
                },
            )?;
            return Ok((status, detail));
        }
        let first = record.first_attempt_at.unwrap_or(record.created_at);
        let request = ReconcileRequest {
            request: lane.request(record),
            internet_message_id: record.message_id.as_str().into(),
            first_attempt_unix: first.millis().div_euclid(1000),
        };
        let settled = match plugin.reconcile(&request) {
            Ok(outcome) if outcome.state == ReconcileState::SENT => {
                let receipt = outcome.receipt.into_option().unwrap_or_default();
                let mut receipt = ReceiptRecord::from(&receipt);
                if receipt.detail.is_empty() {
                    receipt.detail = outcome.detail.to_string();
                }
                self.metrics.reconciled();
                Settled::Sent(receipt)
            }
            Ok(outcome) if outcome.state == ReconcileState::NOT_SENT => {
                self.metrics.reconciled();
                Settled::NotSent(outcome.detail.to_string())
            }
            Ok(outcome) => Settled::StillUnknown {
                detail: outcome.detail.to_string(),
                next: next_check(first, now),
            },
            Err(error) => Settled::StillUnknown {
                detail: format!("the lookup failed: {error}"),
                next: next_check(first, now),
            },
        };
        let detail = match &settled {
            Settled::Sent(r) => format!("found: it was sent ({})", r.detail),
            Settled::NotSent(d) => format!("not sent ({d}): queued again"),
            Settled::StillUnknown { detail, .. } => format!("still unknown: {detail}"),
        };
        let status = self.outbox.settle(&record.id, &settled)?;
        Ok((status, detail))
    }
}

/// The next check: a quarter of the time already spent in doubt (at least the first check's
/// pause, at most an hour), none after a week.
fn next_check(first: Timestamp, now: Timestamp) -> Option<Timestamp> {
    let age = now.millis() - first.millis();
    if age > millis(GIVE_UP_AFTER) {
        return None;
    }
    let pause = (age / 4).clamp(millis(FIRST_CHECK), millis(LONGEST_PAUSE));
    Some(Timestamp(now.millis() + pause))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_spread_out_and_stop_after_a_week() {
        let first = Timestamp(0);
        assert_eq!(
            next_check(first, Timestamp(60_000)),
            Some(Timestamp(90_000))
        );
        assert_eq!(
            next_check(first, Timestamp(40 * 3_600_000)),
            Some(Timestamp(41 * 3_600_000))
        );
        assert_eq!(next_check(first, Timestamp(8 * 24 * 3_600_000)), None);
    }
}
