//! The sending mailboxes and how much of their limits is in use now: every staff member's
//! mailbox, plus any mailbox sent from in the last day (Send As), each with its provider's
//! limits and what the shared ledger says of them. `mailhost limits` prints it; the Email
//! Maintenance page draws it as bars.

use super::Engine;
use crate::config::staff;
use crate::delivery::limits::{Hold, LimitValue, Limits, Usage};
use crate::delivery::outbox::Timestamp;
use crate::error::Error;

/// Mailboxes sent from this long ago still count as in use.
const RECENT_MS: i64 = 86_400_000;

/// One sending mailbox and whose it is.
#[derive(Debug, Clone)]
pub struct MailboxUse {
    /// The mailbox (lowercase).
    pub mailbox: String,
    /// The staff member sending from it.
    pub staff: String,
    /// Their provider's registry name (empty when the staff member is gone).
    pub provider: String,
    /// The limits in use, or why the provider cannot be used now.
    pub limits: Result<LimitsInUse, String>,
}

/// A sliding-window limit and how much of it the window holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowUse {
    /// The setting that gives the number.
    pub setting: String,
    /// The most the window allows.
    pub max: u64,
    /// The window.
    pub window_ms: i64,
    /// How much the window holds now (messages, or recipients).
    pub used: u64,
}

/// A mailbox's limits and their use.
#[derive(Debug, Clone)]
pub struct LimitsInUse {
    /// The limits the provider declares.
    pub limits: Limits,
    /// Messages in the window.
    pub messages: Option<WindowUse>,
    /// Recipients in the window.
    pub recipients: Option<WindowUse>,
    /// Sends in flight now.
    pub in_flight: u64,
    /// What holds the next send back, if anything does.
    pub hold: Option<Hold>,
}

impl LimitsInUse {
    /// The use of `limits` given the ledger's `usage` at `now`.
    pub fn new(limits: &Limits, usage: &Usage, now: Timestamp) -> Self {
        let window = |limit: &Option<LimitValue>, recipients: bool| {
            limit.as_ref().map(|l| {
                let since = now.millis() - l.window_ms;
                let in_window = usage.sends.iter().filter(|(at, _)| at.millis() > since);
                let used = if recipients {
                    in_window.map(|(_, n)| n).sum()
                } else {
                    in_window.count() as u64
                };
                WindowUse {
                    setting: l.setting.clone(),
                    max: l.max,
                    window_ms: l.window_ms,
                    used,
                }
            })
        };
        Self {
            messages: window(&limits.messages, false),
            recipients: window(&limits.recipients, true),
            in_flight: usage.in_flight,
            hold: limits.hold(usage, 1, now),
            limits: limits.clone(),
        }
    }
}

impl Engine {
    /// Every sending mailbox, sorted, with its limits in use at `now`.
    ///
    /// # Errors
    /// staff.toml cannot be read, or a store error.
    pub fn mailboxes_in_use(&self, now: Timestamp) -> Result<Vec<MailboxUse>, Error> {
        let staff_file = staff::load(self.home())?;
        let mut pairs: Vec<(String, String)> = staff_file
            .staff
            .iter()
            .map(|(id, member)| (member.email.to_ascii_lowercase(), id.clone()))
            .collect();
        for pair in self
            .outbox()
            .recent_mailboxes(Timestamp(now.millis() - RECENT_MS))?
        {
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
        pairs.sort();
        let mut rows = Vec::with_capacity(pairs.len());
        for (mailbox, staff_id) in pairs {
            let provider = staff_file
                .staff
                .get(&staff_id)
                .map(|m| m.provider.clone())
                .unwrap_or_default();
            let limits = match self.lanes().get(&staff_id) {
                Ok(lane) => {
                    let usage = self.outbox().usage(&mailbox, &lane.limits, now)?;
                    Ok(LimitsInUse::new(&lane.limits, &usage, now))
                }
                Err(reason) => Err(reason),
            };
            rows.push(MailboxUse {
                mailbox,
                staff: staff_id,
                provider,
                limits,
            });
        }
        Ok(rows)
    }
}
