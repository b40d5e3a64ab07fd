//! Faults on demand (429 / 503 / 504 for the next N requests, added latency), the Outlook
//! mailbox-concurrency limit, and the request counters.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// A fault answered to the next `remaining` matching requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountedFault {
    /// How many more requests get the fault.
    pub remaining: u64,
    /// The HTTP status (429, 503 or 504).
    pub status: u16,
    /// `Retry-After` seconds, if sent.
    pub retry_after_secs: Option<u64>,
    /// Only requests whose path starts with this prefix (all non-admin requests when `None`).
    pub path_prefix: Option<String>,
}

impl CountedFault {
    fn matches(&self, path: &str) -> bool {
        self.remaining > 0
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

/// The injected faults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// 429 Too Many Requests.
    pub throttle: Option<CountedFault>,
    /// 503 / 504.
    pub unavailable: Option<CountedFault>,
    /// The request is carried out (the mail is delivered), then answered 503 / 504, or 202
    /// with `Retry-After`, as Graph has answered for mail it delivered.
    #[serde(default)]
    pub deliver_then: Option<CountedFault>,
    /// Added latency on every non-admin request, in milliseconds.
    pub latency_ms: u64,
}

impl Faults {
    /// Takes one fault for a request to `path`, if any applies.
    pub(crate) fn take(&mut self, path: &str) -> Option<CountedFault> {
        for slot in [&mut self.throttle, &mut self.unavailable] {
            if let Some(fault) = slot.as_mut().filter(|f| f.matches(path)) {
                fault.remaining -= 1;
                let taken = fault.clone();
                if fault.remaining == 0 {
                    *slot = None;
                }
                return Some(taken);
            }
        }
        None
    }

    /// Takes one deliver-then fault for a request to `path`, if one applies.
    pub(crate) fn take_deliver_then(&mut self, path: &str) -> Option<CountedFault> {
        let fault = self.deliver_then.as_mut().filter(|f| f.matches(path))?;
        fault.remaining -= 1;
        let taken = fault.clone();
        if fault.remaining == 0 {
            self.deliver_then = None;
        }
        Some(taken)
    }
}

/// Token requests by grant type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequestCounters {
    /// `grant_type=password` (ROPC).
    pub password: u64,
    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (each poll).
    pub device_code: u64,
    /// `grant_type=refresh_token`.
    pub refresh_token: u64,
    /// `grant_type=authorization_code`.
    pub authorization_code: u64,
    /// `grant_type=client_credentials`.
    pub client_credentials: u64,
    /// Anything else (missing or unsupported grant types).
    pub other: u64,
}

/// What the emulator has counted since start or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Every non-admin request.
    pub total_requests: u64,
    /// Token endpoint requests by grant type.
    pub token_requests: TokenRequestCounters,
    /// `/devicecode` requests.
    pub device_code_starts: u64,
    /// `sendMail` calls (accepted or not).
    pub send_mail: u64,
    /// `POST …/messages/{id}/send` calls.
    pub draft_sends: u64,
    /// Messages accepted and delivered (one per successful send).
    pub messages_delivered: u64,
    /// Recipient copies delivered (Inbox copies plus external sink entries).
    pub recipient_deliveries: u64,
    /// Upload-session `PUT`s.
    pub upload_puts: u64,
    /// Requests answered 429 (injected or concurrency limit).
    pub throttled: u64,
    /// Requests carried out and then answered with a deliver-then fault.
    #[serde(default)]
    pub delivered_then_faulted: u64,
    /// The most concurrent Graph requests seen per mailbox (any app).
    pub max_concurrent_per_mailbox: BTreeMap<String, usize>,
    /// Submissions past a watched sending limit (see [`crate::SendingLimits`]), per mailbox.
    pub limit_breaches: BTreeMap<String, u64>,
}

/// Live concurrent requests per (client id, mailbox).
#[derive(Debug, Default)]
pub(crate) struct Concurrency {
    live: HashMap<(String, String), usize>,
}

impl Concurrency {
    /// Enters a request; `Err(())` when the limit is on and already reached.
    #[allow(clippy::result_unit_err)]
    pub(crate) fn enter(
        &mut self,
        client_id: &str,
        mailbox: &str,
        limit: Option<usize>,
        counters: &mut Counters,
    ) -> Result<(), ()> {
        let key = (client_id.to_ascii_lowercase(), mailbox.to_ascii_lowercase());
        let live = self.live.entry(key).or_default();
        if limit.is_some_and(|l| *live >= l) {
            return Err(());
        }
        *live += 1;
        let total_for_mailbox: usize = self
            .live
            .iter()
            .filter(|((_, m), _)| m.eq_ignore_ascii_case(mailbox))
            .map(|(_, n)| *n)
            .sum();
        let max = counters
            .max_concurrent_per_mailbox
            .entry(mailbox.to_ascii_lowercase())
            .or_default();
        *max = (*max).max(total_for_mailbox);
        Ok(())
    }

    /// Leaves a request entered with [`Concurrency::enter`].
    pub(crate) fn leave(&mut self, client_id: &str, mailbox: &str) {
        let key = (client_id.to_ascii_lowercase(), mailbox.to_ascii_lowercase());
        if let Some(live) = self.live.get_mut(&key) {
            *live = live.saturating_sub(1);
            if *live == 0 {
                self.live.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_run_out_and_respect_prefix() {
        let mut faults = Faults {
            throttle: Some(CountedFault {
                remaining: 2,
                status: 429,
                retry_after_secs: Some(1),
                path_prefix: Some("/v1.0/".into()),
            }),
            ..Faults::default()
        };
        assert!(faults.take("/common/oauth2/v2.0/token").is_none());
        assert_eq!(
            faults.take("/v1.0/me/sendMail").map(|f| f.status),
            Some(429)
        );
        assert!(faults.take("/v1.0/me/sendMail").is_some());
        assert!(faults.take("/v1.0/me/sendMail").is_none());
        assert!(faults.throttle.is_none());
    }

    #[test]
    fn concurrency_limit_per_app_and_mailbox() {
        let mut c = Concurrency::default();
        let mut counters = Counters::default();
        for _ in 0..4 {
            assert!(c.enter("app", "Alex@x", Some(4), &mut counters).is_ok());
        }
        assert!(
            c.enter("app", "alex@x", Some(4), &mut counters).is_err(),
            "the 5th is refused"
        );
        assert!(
            c.enter("other-app", "alex@x", Some(4), &mut counters)
                .is_ok(),
            "another app has its own budget"
        );
        assert!(
            c.enter("app", "lynne@x", Some(4), &mut counters).is_ok(),
            "another mailbox too"
        );
        c.leave("app", "alex@x");
        assert!(c.enter("app", "alex@x", Some(4), &mut counters).is_ok());
        assert!(
            c.enter("app", "alex@x", None, &mut counters).is_ok(),
            "limit off"
        );
        assert_eq!(counters.max_concurrent_per_mailbox["alex@x"], 6);
    }
}
