//! Sending limits: what a provider declares (plugin API 1.2 `limits`, each naming the setting
//! that holds its number, so `mailhost config set` overrides it), and the arithmetic that
//! decides whether a mailbox may send now and, if not, when.
//!
//! Windows slide: a send counts for exactly `window` after it was made, not until the end of a
//! fixed bucket. Within a messages window the engine also spaces sends evenly (one every
//! `window / max`), so a mailbox allowed 30 a minute sends one every 2 s rather than 30 at once
//! and then nothing: Exchange "carries over" bursts to the following minutes, and a steady pace
//! never gives it reason to. Counts come from the ledger in mail.db, shared by every process on
//! the home.

use mailhost_plugin_api::{LimitKind, LimitSpec, Setting, find_setting};
use serde::Serialize;

use crate::delivery::outbox::Timestamp;

/// The limits of one sending mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Messages per window.
    pub messages: Option<LimitValue>,
    /// Recipients per window.
    pub recipients: Option<LimitValue>,
    /// Recipients of one message.
    pub recipients_per_message: Option<LimitValue>,
    /// Sends in flight at once.
    pub concurrent: Option<LimitValue>,
}

/// One limit's number, its window (0 for none) and the setting it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitValue {
    /// The number.
    pub max: u64,
    /// The window in milliseconds; 0 when the limit has none.
    pub window_ms: i64,
    /// The provider setting holding the number.
    pub setting: String,
}

/// What a mailbox has used: its sends in flight and its ledger rows (time, recipients) within
/// the longest window, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Sends in flight.
    pub in_flight: u64,
    /// (when, recipients) of every send within the longest window, or, when
    /// `recipients_used` is set, within the messages window only.
    pub sends: Vec<(Timestamp, u64)>,
    /// The recipients the recipients window holds, when the ledger was summed rather than
    /// read row by row (it leaves room for the email, so no row is needed to tell when).
    pub recipients_used: Option<u64>,
}

/// Why a mailbox may not send now, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// The setting whose limit holds it (`MessagesPerMinute`, `RecipientsPerDay`, ...).
    pub setting: String,
    /// The limit's number.
    pub max: u64,
    /// What is in use of it.
    pub used: u64,
    /// When the email may go; `None` for a concurrency hold (free when a send finishes).
    pub until: Option<Timestamp>,
    /// One line for the user.
    pub reason: String,
}

impl Limits {
    /// The limits `specs` declare, with the numbers from `settings` (the provider's resolved
    /// settings, defaults applied). A number of 0, or one that does not parse, is no limit.
    pub fn from_specs(specs: &[LimitSpec], settings: &[Setting]) -> Self {
        let mut limits = Self::default();
        for spec in specs {
            let Some(max) = find_setting(settings, &spec.setting)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|max| *max > 0)
            else {
                continue;
            };
            let window_ms = i64::try_from(spec.window_seconds)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000);
            let value = Some(LimitValue {
                max,
                window_ms,
                setting: spec.setting.to_string(),
            });
            match spec.kind {
                LimitKind::MESSAGES if window_ms > 0 => limits.messages = value,
                LimitKind::RECIPIENTS if window_ms > 0 => limits.recipients = value,
                LimitKind::RECIPIENTS_PER_MESSAGE => limits.recipients_per_message = value,
                LimitKind::CONCURRENT_REQUESTS => limits.concurrent = value,
                _ => {}
            }
        }
        limits
    }

    /// Whether any limit is declared.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The longest window of any windowed limit (what the ledger must keep).
    pub fn longest_window_ms(&self) -> i64 {
        [&self.messages, &self.recipients]
            .into_iter()
            .flatten()
            .map(|l| l.window_ms)
            .max()
            .unwrap_or(0)
    }

    /// Refuses, as bad input, an email with more recipients than one message may have.
    ///
    /// # Errors
    /// The line to show the user.
    pub fn check_message(&self, recipients: u64) -> Result<(), String> {
        match &self.recipients_per_message {
            Some(limit) if recipients > limit.max => Err(format!(
                "the email has {recipients} recipients; the sending limit {} allows {} per message: split it into several emails (or raise the limit with `mailhost config set PLUGIN {} N`)",
                limit.setting, limit.max, limit.setting
            )),
            _ => Ok(()),
        }
    }

    /// Whether a send of `recipients` recipients may go at `now` given `usage`; `None` when it
    /// may, else the hold.
    pub fn hold(&self, usage: &Usage, recipients: u64, now: Timestamp) -> Option<Hold> {
        if let Some(limit) = &self.concurrent
            && usage.in_flight >= limit.max
        {
            return Some(Hold {
                setting: limit.setting.clone(),
                max: limit.max,
                used: usage.in_flight,
                until: None,
                reason: format!(
                    "{} sends are in flight for this mailbox ({} {})",
                    usage.in_flight, limit.setting, limit.max
                ),
            });
        }
        let mut holds = Vec::new();
        if let Some(limit) = &self.messages {
            holds.extend(messages_hold(limit, usage, now));
        }
        if let Some(limit) = &self.recipients {
            holds.extend(recipients_hold(limit, usage, recipients, now));
        }
        holds.into_iter().max_by_key(|h| h.until)
    }
}

/// Sends within `window_ms` before `now`. A send recorded *after* `now` (the system clock was
/// set back since) counts as made at `now`: it still fills the window, but holds nothing past
/// `now + window`, so a clock set back by hours cannot stall a mailbox for those hours.
fn in_window(
    usage: &Usage,
    window_ms: i64,
    now: Timestamp,
) -> impl Iterator<Item = (Timestamp, u64)> + '_ {
    let since = now.millis() - window_ms;
    usage
        .sends
        .iter()
        .filter(move |(at, _)| at.millis() > since)
        .map(move |(at, n)| (Timestamp(at.millis().min(now.millis())), *n))
}

fn messages_hold(limit: &LimitValue, usage: &Usage, now: Timestamp) -> Option<Hold> {
    let sends: Vec<Timestamp> = in_window(usage, limit.window_ms, now)
        .map(|(at, _)| at)
        .collect();
    let used = sends.len() as u64;
    let mut until: Option<i64> = None;
    if used >= limit.max {
        // The window has room again when the oldest sends that fill it slide out.
        let index = usize::try_from(used - limit.max).unwrap_or(0);
        until = sends.get(index).map(|at| at.millis() + limit.window_ms);
    }
    // Even pacing: one send every window / max.
    let spacing = limit.window_ms / i64::try_from(limit.max).unwrap_or(i64::MAX).max(1);
    if let Some(last) = sends.last()
        && last.millis() + spacing > now.millis()
    {
        until = Some(until.unwrap_or(0).max(last.millis() + spacing));
    }
    let until = until?;
    Some(Hold {
        setting: limit.setting.clone(),
        max: limit.max,
        used,
        until: Some(Timestamp(until)),
        reason: format!(
            "the sending limit {} ({} per {}) of this mailbox: {used} sent within it",
            limit.setting,
            limit.max,
            window_name(limit.window_ms)
        ),
    })
}

fn recipients_hold(
    limit: &LimitValue,
    usage: &Usage,
    recipients: u64,
    now: Timestamp,
) -> Option<Hold> {
    if let Some(used) = usage.recipients_used
        && used.saturating_add(recipients) <= limit.max
    {
        return None;
    }
    let sends: Vec<(Timestamp, u64)> = in_window(usage, limit.window_ms, now).collect();
    let used: u64 = sends.iter().map(|(_, n)| n).sum();
    if used.saturating_add(recipients) <= limit.max {
        return None;
    }
    // Slide the window forward until enough recipients have left it.
    let mut left = used;
    let mut until = None;
    for (at, n) in &sends {
        left -= n;
        if left.saturating_add(recipients) <= limit.max {
            until = Some(at.millis() + limit.window_ms);
            break;
        }
    }
    Some(Hold {
        setting: limit.setting.clone(),
        max: limit.max,
        used,
        until: Some(Timestamp(until.unwrap_or(now.millis() + limit.window_ms))),
        reason: format!(
            "the sending limit {} ({} recipients per {}) of this mailbox: {used} used, this email has {recipients}",
            limit.setting,
            limit.max,
            window_name(limit.window_ms)
        ),
    })
}

/// "minute", "24 hours", "10 minutes", or seconds.
pub fn window_name(window_ms: i64) -> String {
    match window_ms {
        60_000 => "minute".into(),
        3_600_000 => "hour".into(),
        86_400_000 => "24 hours".into(),
        ms if ms % 60_000 == 0 => format!("{} minutes", ms / 60_000),
        ms => format!("{} s", ms / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u64, per_day: u64) -> Limits {
        let specs = [
            LimitSpec::new(LimitKind::MESSAGES, "MessagesPerMinute", 60),
            LimitSpec::new(LimitKind::RECIPIENTS, "RecipientsPerDay", 86_400),
            LimitSpec::new(LimitKind::RECIPIENTS_PER_MESSAGE, "RecipientsPerMessage", 0),
            LimitSpec::new(LimitKind::CONCURRENT_REQUESTS, "ConcurrentRequests", 0),
        ];
        let settings = [
            Setting::new("MessagesPerMinute", &per_minute.to_string()),
            Setting::new("RecipientsPerDay", &per_day.to_string()),
            Setting::new("RecipientsPerMessage", "500"),
            Setting::new("ConcurrentRequests", "4"),
        ];
        Limits::from_specs(&specs, &settings)
    }

    fn usage(sends: &[(i64, u64)]) -> Usage {
        Usage {
            in_flight: 0,
            recipients_used: None,
            sends: sends.iter().map(|(at, n)| (Timestamp(*at), *n)).collect(),
        }
    }

    #[test]
    fn settings_give_the_numbers_and_zero_means_none() {
        let l = limits(30, 0);
        assert_eq!(l.messages.as_ref().map(|m| m.max), Some(30));
        assert_eq!(l.messages.as_ref().map(|m| m.window_ms), Some(60_000));
        assert!(l.recipients.is_none());
        assert_eq!(l.longest_window_ms(), 60_000);
        assert!(Limits::from_specs(&[], &[]).is_empty());
    }

    #[test]
    fn a_free_mailbox_may_send() {
        assert_eq!(
            limits(30, 10_000).hold(&usage(&[]), 1, Timestamp(1_000_000)),
            None
        );
    }

    #[test]
    fn sends_are_spaced_evenly_within_the_minute() {
        let l = limits(30, 10_000);
        let hold = l
            .hold(&usage(&[(1_000_000, 1)]), 1, Timestamp(1_000_500))
            .expect("held");
        assert_eq!(hold.until, Some(Timestamp(1_002_000)));
        assert_eq!(
            l.hold(&usage(&[(1_000_000, 1)]), 1, Timestamp(1_002_000)),
            None
        );
    }

    #[test]
    fn a_full_window_frees_when_its_oldest_send_slides_out() {
        let l = limits(3, 10_000);
        // Three sends at 0, 20 and 40 s; at 45 s the window is full until 60 s.
        let u = usage(&[(0, 1), (20_000, 1), (40_000, 1)]);
        let hold = l.hold(&u, 1, Timestamp(45_000)).expect("held");
        assert_eq!(hold.until, Some(Timestamp(60_000)));
        assert_eq!(hold.used, 3);
        assert!(hold.reason.contains("MessagesPerMinute"), "{}", hold.reason);
        assert_eq!(l.hold(&u, 1, Timestamp(60_001)), None);
    }

    #[test]
    fn the_daily_recipient_window_slides() {
        let l = limits(0, 100);
        let u = usage(&[(0, 60), (3_600_000, 30)]);
        // 90 used, 20 more would pass 100; the first send's 60 leave at 24 h.
        let hold = l.hold(&u, 20, Timestamp(7_200_000)).expect("held");
        assert_eq!(hold.until, Some(Timestamp(86_400_000)));
        assert_eq!(l.hold(&u, 10, Timestamp(7_200_000)), None);
    }

    #[test]
    fn a_summed_recipient_window_that_has_room_needs_no_rows() {
        let l = limits(0, 100);
        let u = Usage {
            in_flight: 0,
            sends: Vec::new(),
            recipients_used: Some(90),
        };
        assert_eq!(l.hold(&u, 10, Timestamp(7_200_000)), None);
    }

    #[test]
    fn concurrency_holds_without_a_time() {
        let l = limits(0, 0);
        let u = Usage {
            in_flight: 4,
            sends: Vec::new(),
            recipients_used: None,
        };
        let hold = l.hold(&u, 1, Timestamp(0)).expect("held");
        assert_eq!(hold.until, None);
        assert!(
            hold.reason.contains("ConcurrentRequests"),
            "{}",
            hold.reason
        );
    }

    #[test]
    fn too_many_recipients_for_one_message_is_bad_input() {
        let l = limits(30, 10_000);
        assert!(l.check_message(500).is_ok());
        let error = l.check_message(501).expect_err("refused");
        assert!(error.contains("RecipientsPerMessage"), "{error}");
    }

    #[test]
    fn a_clock_set_back_does_not_stall_a_mailbox() {
        let l = limits(30, 10_000);
        // The last send was recorded at 10:00; the clock now says 09:00.
        let u = usage(&[(36_000_000, 1)]);
        let hold = l.hold(&u, 1, Timestamp(32_400_000)).expect("held");
        assert_eq!(hold.until, Some(Timestamp(32_402_000)), "2 s, not an hour");
    }

    #[test]
    fn a_window_never_holds_more_than_its_limit() {
        // Send whenever allowed for ten simulated minutes; no 60 s window may hold more than 30.
        let l = limits(30, 10_000);
        let mut u = usage(&[]);
        let mut now = 0i64;
        while now < 600_000 {
            match l.hold(&u, 1, Timestamp(now)) {
                None => u.sends.push((Timestamp(now), 1)),
                Some(hold) => now = hold.until.expect("timed").millis().max(now + 1) - 1,
            }
            now += 1;
        }
        for (i, (start, _)) in u.sends.iter().enumerate() {
            let in_minute = u.sends[i..]
                .iter()
                .take_while(|(at, _)| at.millis() < start.millis() + 60_000)
                .count();
            assert!(
                in_minute <= 30,
                "{in_minute} sends within a minute of {start:?}"
            );
        }
        assert!(
            u.sends.len() >= 299,
            "{} sends in 10 minutes",
            u.sends.len()
        );
    }
}
