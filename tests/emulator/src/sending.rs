//! Exchange Online's per-mailbox sending limits, as the emulator watches them: messages per
//! minute and recipients per rolling 24 hours (GRAPH.md §4 and §7), over sliding windows.
//!
//! Exchange's answer to a breach is not a documented Graph status (excess per-minute
//! submissions are delayed, the daily block's Graph error code is not documented), so the
//! emulator delivers the message as usual and counts the breach: tests assert there was none.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// The limits watched; `None` is not watched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendingLimits {
    /// Messages per sliding 60 s window per mailbox.
    pub messages_per_minute: Option<u64>,
    /// Recipients (To, Cc and Bcc) per sliding 24 h window per mailbox.
    pub recipients_per_day: Option<u64>,
}

/// What each mailbox submitted, newest last: (milliseconds since the epoch, recipients).
#[derive(Debug, Default)]
pub(crate) struct SendingLog {
    pub(crate) limits: SendingLimits,
    submissions: HashMap<String, VecDeque<(u64, u64)>>,
}

/// A breach found by [`SendingLog::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Breaches {
    pub(crate) messages: bool,
    pub(crate) recipients: bool,
}

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;

impl SendingLog {
    /// Records a submission of `recipients` from `mailbox` at `now_ms`; says which watched
    /// limit it went past.
    pub(crate) fn record(&mut self, mailbox: &str, recipients: u64, now_ms: u64) -> Breaches {
        let log = self
            .submissions
            .entry(mailbox.to_ascii_lowercase())
            .or_default();
        while log.front().is_some_and(|(at, _)| at + DAY_MS <= now_ms) {
            log.pop_front();
        }
        log.push_back((now_ms, recipients));
        let in_minute = log
            .iter()
            .rev()
            .take_while(|(at, _)| at + MINUTE_MS > now_ms)
            .count() as u64;
        let in_day: u64 = log.iter().map(|(_, n)| n).sum();
        Breaches {
            messages: self
                .limits
                .messages_per_minute
                .is_some_and(|max| in_minute > max),
            recipients: self
                .limits
                .recipients_per_day
                .is_some_and(|max| in_day > max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_slide() {
        let mut log = SendingLog {
            limits: SendingLimits {
                messages_per_minute: Some(2),
                recipients_per_day: Some(5),
            },
            ..SendingLog::default()
        };
        assert!(!log.record("a@x", 1, 0).messages);
        assert!(!log.record("A@x", 1, 30_000).messages);
        assert!(log.record("a@x", 1, 59_999).messages, "3 within a minute");
        assert!(
            !log.record("a@x", 1, 90_001).messages,
            "the first two slid out"
        );
        assert!(
            log.record("a@x", 2, 100_000).recipients,
            "6 recipients in a day"
        );
        assert!(!log.record("b@x", 5, 100_000).recipients, "another mailbox");
    }
}
