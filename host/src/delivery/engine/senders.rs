//! The scheduler's picture of the queue, kept in memory: every sender (staff member and From)
//! with queued email, when its emails are next due, and when each sending mailbox may send
//! again. A round then asks mail.db only for the head of each sender that may go, and
//! admission (one transaction over the ledger, shared by every process on the home) stays the
//! judge of every send.
//!
//! So the cost of a round follows the sends that are due, not the length of the queue: 30,000
//! queued emails behind 200 paced mailboxes cost 200 small indexed reads as their turns come,
//! not a scan of the queue each time one mailbox's turn comes. The picture is refreshed from
//! the table every poll interval (other processes record and send too), and at once for the
//! senders this process records or finishes an email of.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::delivery::limits::{LimitValue, Limits};
use crate::delivery::outbox::{NextSend, QueuedSender, Timestamp};

/// How much earlier than its own measure of time the scheduler lets a send go (the wall clock
/// and the monotonic one drift apart by a little while both are right).
const MONOTONIC_SLACK: Duration = Duration::from_millis(2);

/// A staff member and the From of their emails: one queue, in one sending mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct SenderKey {
    /// The staff member.
    pub(super) staff_id: String,
    /// The From address, as stored.
    pub(super) from: String,
}

impl SenderKey {
    /// The sender of `staff_id`'s emails from `from`.
    pub(super) fn new(staff_id: &str, from: &str) -> Self {
        Self {
            staff_id: staff_id.to_string(),
            from: from.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Sender {
    /// The earliest `not_before` of its queued emails as last seen (0: look now).
    due_at: i64,
    /// Its provider cannot be used: not looked at before this time.
    parked_until: i64,
    /// The mailbox its emails count against, once a round has asked.
    mailbox: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Mailbox {
    /// Not before this time (its limits, as the last admission saw them).
    free_at: i64,
    /// Its concurrency limit is reached: not before one of its sends finishes.
    full: bool,
    /// When this process's sends of it were admitted, by the monotonic clock, within the
    /// messages window: a wall clock that jumps forward makes the ledger's sends look older
    /// than they are, and this keeps the limit by the time the process measured itself.
    sent: VecDeque<Instant>,
}

impl Mailbox {
    /// Drops the sends that left the messages `window` by `at` (monotonic).
    fn forget_sends_outside(&mut self, window: Duration, at: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|sent| at.saturating_duration_since(*sent) >= window)
        {
            self.sent.pop_front();
        }
    }
}

/// The window of a limit, as a monotonic duration.
fn window_of(limit: &LimitValue) -> Duration {
    Duration::from_millis(u64::try_from(limit.window_ms).unwrap_or(0))
}

/// Which senders have queued email and when each may go.
#[derive(Debug, Default)]
pub(super) struct Senders {
    senders: HashMap<SenderKey, Sender>,
    mailboxes: HashMap<String, Mailbox>,
    last_refresh: Option<Instant>,
}

impl Senders {
    /// An empty picture (the first [`Senders::refresh`] fills it).
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Whether the picture is older than `every`, or was never taken.
    pub(super) fn stale(&self, every: Duration) -> bool {
        self.last_refresh.is_none_or(|at| at.elapsed() >= every)
    }

    /// Replaces which senders have queued email, and when, by what the table says now.
    /// Mailbox holds are kept (they come from the ledger, which admission reads anyway);
    /// concurrency holds are let go, since another process's sends may have finished.
    pub(super) fn refresh(&mut self, queued: Vec<QueuedSender>) {
        let mut senders = HashMap::with_capacity(queued.len());
        for q in queued {
            let key = SenderKey {
                staff_id: q.staff_id,
                from: q.from,
            };
            let mut sender = self.senders.remove(&key).unwrap_or_default();
            sender.due_at = q.next_due.millis();
            senders.insert(key, sender);
        }
        self.senders = senders;
        for mailbox in self.mailboxes.values_mut() {
            mailbox.full = false;
        }
        self.last_refresh = Some(Instant::now());
    }

    /// `key` may have an email due now (this process recorded or finished one of its emails):
    /// the next round looks, and a send of its mailbox that finished frees a concurrency place.
    pub(super) fn touch(&mut self, key: SenderKey) {
        let sender = self.senders.entry(key).or_default();
        sender.due_at = 0;
        if let Some(mailbox) = sender
            .mailbox
            .as_ref()
            .and_then(|m| self.mailboxes.get_mut(m))
        {
            mailbox.full = false;
        }
    }

    /// The senders that may send at `now`, those whose mailbox has waited longest first, at
    /// most `limit`.
    pub(super) fn due(&self, now: Timestamp, limit: usize) -> Vec<SenderKey> {
        let now = now.millis();
        let mut due: Vec<(i64, &SenderKey)> = self
            .senders
            .iter()
            .filter_map(|(key, sender)| {
                let ready = self.ready_at(sender)?;
                (ready <= now).then_some((ready, key))
            })
            .collect();
        due.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.staff_id.cmp(&b.1.staff_id)));
        due.into_iter()
            .take(limit)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// When the next sender may send (`None`: none is waiting for a time, only for a send to
    /// finish or for new email).
    pub(super) fn next_ready(&self) -> Option<Timestamp> {
        self.senders
            .values()
            .filter_map(|sender| self.ready_at(sender))
            .min()
            .map(Timestamp)
    }

    /// Whether any sender has queued email, as far as the picture knows.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    fn ready_at(&self, sender: &Sender) -> Option<i64> {
        let mut at = sender.due_at.max(sender.parked_until);
        if let Some(mailbox) = sender.mailbox.as_ref().and_then(|m| self.mailboxes.get(m)) {
            if mailbox.full {
                return None;
            }
            at = at.max(mailbox.free_at);
        }
        Some(at)
    }

    /// `key`'s emails count against `mailbox`.
    pub(super) fn set_mailbox(&mut self, key: &SenderKey, mailbox: &str) {
        if let Some(sender) = self.senders.get_mut(key)
            && sender.mailbox.as_deref() != Some(mailbox)
        {
            sender.mailbox = Some(mailbox.to_string());
        }
        self.mailboxes.entry(mailbox.to_string()).or_default();
    }

    /// `key` has nothing due now; its next email is due at `next` (`None`: none is queued).
    pub(super) fn nothing_due(&mut self, key: &SenderKey, next: Option<Timestamp>) {
        match next {
            Some(next) => {
                if let Some(sender) = self.senders.get_mut(key) {
                    sender.due_at = next.millis();
                }
            }
            None => {
                self.senders.remove(key);
            }
        }
    }

    /// `key`'s provider cannot be used before `until`.
    pub(super) fn park(&mut self, key: &SenderKey, until: Timestamp) {
        if let Some(sender) = self.senders.get_mut(key) {
            sender.parked_until = until.millis();
        }
    }

    /// A send of `mailbox` (under `limits`) was admitted at `now` (`at` by the monotonic
    /// clock); `next` says when it may send again.
    pub(super) fn claimed(
        &mut self,
        mailbox: &str,
        limits: &Limits,
        next: NextSend,
        now: Timestamp,
        at: Instant,
    ) {
        let state = self.mailboxes.entry(mailbox.to_string()).or_default();
        if let Some(limit) = &limits.messages {
            // Only the messages window is kept (and only for a mailbox that has one).
            state.forget_sends_outside(window_of(limit), at);
            state.sent.push_back(at);
        }
        match next {
            NextSend::Now => state.free_at = now.millis(),
            NextSend::At(at) => state.free_at = at.millis(),
            NextSend::WhenOneFinishes => state.full = true,
        }
    }

    /// A limit holds `mailbox`: until `until`, or (`None`) until one of its sends finishes.
    pub(super) fn held(&mut self, mailbox: &str, until: Option<Timestamp>) {
        let state = self.mailboxes.entry(mailbox.to_string()).or_default();
        match until {
            Some(until) => state.free_at = state.free_at.max(until.millis()),
            None => state.full = true,
        }
    }

    /// When `mailbox` may send again by this process's own measure of time, if later than
    /// `now` (`at` by the monotonic clock): its messages limit and even pacing applied to the
    /// sends it admitted, whatever the wall clock did meanwhile. The ledger, in wall-clock
    /// time and shared by every process, stays the judge otherwise.
    pub(super) fn monotonic_hold(
        &mut self,
        mailbox: &str,
        limits: &Limits,
        now: Timestamp,
        at: Instant,
    ) -> Option<Timestamp> {
        let limit = limits.messages.as_ref()?;
        let state = self.mailboxes.get_mut(mailbox)?;
        let window = window_of(limit);
        state.forget_sends_outside(window, at);
        let mut until: Option<Instant> = None;
        let used = state.sent.len() as u64;
        if used >= limit.max {
            let index = usize::try_from(used - limit.max).unwrap_or(0);
            until = state.sent.get(index).map(|oldest| *oldest + window);
        }
        let spacing = window / u32::try_from(limit.max).unwrap_or(u32::MAX).max(1);
        if let Some(last) = state.sent.back() {
            until = until.max(Some(*last + spacing));
        }
        let wait = until?.checked_duration_since(at)?;
        if wait <= MONOTONIC_SLACK {
            return None;
        }
        Some(Timestamp(
            now.millis() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2),
        ))
    }

    /// Drops mailboxes no sender counts against any more (a long-running service meets many).
    pub(super) fn forget_idle_mailboxes(&mut self, now: Timestamp) {
        let used: std::collections::HashSet<&String> = self
            .senders
            .values()
            .filter_map(|s| s.mailbox.as_ref())
            .collect();
        self.mailboxes.retain(|name, state| {
            used.contains(name) || state.free_at > now.millis() || !state.sent.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(staff: &str, from: &str, next_due: i64) -> QueuedSender {
        QueuedSender {
            staff_id: staff.into(),
            from: from.into(),
            next_due: Timestamp(next_due),
        }
    }

    #[test]
    fn a_paced_mailbox_waits_while_the_others_go() {
        let mut senders = Senders::new();
        senders.refresh(vec![queued("a", "a@x", 0), queued("b", "b@x", 0)]);
        let now = Timestamp(1_000);
        assert_eq!(senders.due(now, 10).len(), 2);
        let a = SenderKey::new("a", "a@x");
        senders.set_mailbox(&a, "a@x");
        senders.claimed(
            "a@x",
            &per_minute(150),
            NextSend::At(Timestamp(1_400)),
            now,
            Instant::now(),
        );
        assert_eq!(senders.due(now, 10), vec![SenderKey::new("b", "b@x")]);
        assert_eq!(senders.next_ready(), Some(Timestamp(0)));
        senders.nothing_due(&SenderKey::new("b", "b@x"), None);
        assert_eq!(senders.next_ready(), Some(Timestamp(1_400)));
        assert_eq!(senders.due(Timestamp(1_400), 10), vec![a]);
    }

    #[test]
    fn two_senders_sharing_a_mailbox_share_its_hold() {
        let mut senders = Senders::new();
        senders.refresh(vec![queued("a", "shared@x", 0), queued("b", "shared@x", 0)]);
        let (a, b) = (
            SenderKey::new("a", "shared@x"),
            SenderKey::new("b", "shared@x"),
        );
        senders.set_mailbox(&a, "shared@x");
        senders.set_mailbox(&b, "shared@x");
        senders.held("shared@x", Some(Timestamp(5_000)));
        assert!(senders.due(Timestamp(4_999), 10).is_empty());
        assert_eq!(senders.due(Timestamp(5_000), 10).len(), 2);
    }

    #[test]
    fn a_full_mailbox_waits_for_a_finish_not_for_a_time() {
        let mut senders = Senders::new();
        senders.refresh(vec![queued("a", "a@x", 0)]);
        let a = SenderKey::new("a", "a@x");
        senders.set_mailbox(&a, "a@x");
        senders.claimed(
            "a@x",
            &Limits::default(),
            NextSend::WhenOneFinishes,
            Timestamp(10),
            Instant::now(),
        );
        assert!(senders.due(Timestamp(1_000_000), 10).is_empty());
        assert_eq!(senders.next_ready(), None);
        senders.touch(a.clone());
        assert_eq!(senders.due(Timestamp(20), 10), vec![a]);
    }

    #[test]
    fn a_refresh_keeps_holds_and_drops_senders_with_nothing_queued() {
        let mut senders = Senders::new();
        senders.refresh(vec![queued("a", "a@x", 0), queued("b", "b@x", 0)]);
        let a = SenderKey::new("a", "a@x");
        senders.set_mailbox(&a, "a@x");
        let at = Instant::now() - Duration::from_secs(120);
        senders.claimed(
            "a@x",
            &per_minute(3),
            NextSend::At(Timestamp(9_000)),
            Timestamp(1),
            at,
        );
        senders.park(&a, Timestamp(3_000));
        senders.refresh(vec![queued("a", "a@x", 50)]);
        assert_eq!(senders.next_ready(), Some(Timestamp(9_000)));
        assert!(senders.due(Timestamp(8_999), 10).is_empty());
        senders.refresh(Vec::new());
        assert!(senders.is_empty());
        // The mailbox's own record of its sends is let go once it has left the window.
        let limits = per_minute(3);
        assert_eq!(
            senders.monotonic_hold("a@x", &limits, Timestamp(10_000), Instant::now()),
            None
        );
        senders.forget_idle_mailboxes(Timestamp(10_000));
        assert!(senders.mailboxes.is_empty());
    }

    fn per_minute(max: u64) -> Limits {
        Limits {
            messages: Some(crate::delivery::limits::LimitValue {
                max,
                window_ms: 60_000,
                setting: "MessagesPerMinute".into(),
            }),
            ..Limits::default()
        }
    }

    #[test]
    fn a_wall_clock_jumping_forward_does_not_free_the_window_early() {
        let mut senders = Senders::new();
        let limits = per_minute(3);
        let t0 = Instant::now() - Duration::from_secs(41);
        let wall = |ms: i64| Timestamp(1_000_000 + ms);
        // Three sends paced 20 s apart fill the minute.
        for (i, ms) in [0_i64, 20_000, 40_000].into_iter().enumerate() {
            let at = t0 + Duration::from_millis(u64::try_from(ms).unwrap());
            assert_eq!(
                senders.monotonic_hold("m@x", &limits, wall(ms), at),
                None,
                "send {i}"
            );
            senders.claimed(
                "m@x",
                &limits,
                NextSend::At(wall(ms + 20_000)),
                wall(ms),
                at,
            );
        }
        // One second later the wall clock says an hour has passed: the ledger's sends look
        // an hour old, but the window frees 60 s after the first send, 19 s from now.
        let at = t0 + Duration::from_secs(41);
        let jumped = wall(3_600_000);
        assert_eq!(
            senders.monotonic_hold("m@x", &limits, jumped, at),
            Some(Timestamp(jumped.millis() + 19_000))
        );
        // Pacing, too, follows the process's own time: 20 s after the last send.
        let at = t0 + Duration::from_secs(61);
        assert_eq!(
            senders.monotonic_hold("m@x", &limits, jumped, at),
            None,
            "the first send left the window and the pacing interval passed"
        );
        // A mailbox with no messages limit, or none seen yet, is never held by this.
        assert_eq!(senders.monotonic_hold("other@x", &limits, jumped, at), None);
        assert_eq!(
            senders.monotonic_hold("m@x", &Limits::default(), jumped, at),
            None
        );
    }

    #[test]
    fn an_email_due_later_is_not_looked_at_before() {
        let mut senders = Senders::new();
        senders.refresh(vec![queued("a", "a@x", 7_000)]);
        assert!(senders.due(Timestamp(6_999), 10).is_empty());
        assert_eq!(senders.next_ready(), Some(Timestamp(7_000)));
        senders.touch(SenderKey::new("a", "a@x"));
        assert_eq!(senders.due(Timestamp(1), 10).len(), 1);
    }
}
