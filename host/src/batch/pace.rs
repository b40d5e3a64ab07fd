//! Pacing per mailbox: at most N calls in flight for one From address, and a shared
//! "not before" instant that throttling pushes back, so when the service says "wait 5 s" every
//! worker sending from that mailbox waits, not just the one that was told.
//!
//! It also carries the batch's stop flag, so waiting workers wake up at once when the batch
//! must stop.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Lane {
    in_flight: usize,
    not_before: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    lanes: HashMap<String, Lane>,
    stopped: bool,
}

/// The pacing of every mailbox in one batch.
#[derive(Debug)]
pub(crate) struct Pacer {
    state: Mutex<State>,
    changed: Condvar,
    per_mailbox: usize,
}

/// A slot in a mailbox's lane; released on drop.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    pacer: &'a Pacer,
    mailbox: String,
}

impl Pacer {
    /// A pacer allowing `per_mailbox` calls in flight per mailbox (at least one).
    pub(crate) fn new(per_mailbox: usize) -> Self {
        Self {
            state: Mutex::default(),
            changed: Condvar::new(),
            per_mailbox: per_mailbox.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a free slot in `mailbox`'s lane; `None` when the batch stopped.
    pub(crate) fn acquire(&self, mailbox: &str) -> Option<Permit<'_>> {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return None;
            }
            let lane = state.lanes.entry(mailbox.to_string()).or_default();
            if lane.in_flight < self.per_mailbox {
                lane.in_flight += 1;
                return Some(Permit {
                    pacer: self,
                    mailbox: mailbox.to_string(),
                });
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Waits until `mailbox` may be called again; `false` when the batch stopped.
    pub(crate) fn wait_turn(&self, mailbox: &str) -> bool {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return false;
            }
            let now = Instant::now();
            let until = state.lanes.get(mailbox).and_then(|lane| lane.not_before);
            match until {
                Some(until) if until > now => {
                    state = self
                        .changed
                        .wait_timeout(state, until - now)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
                _ => return true,
            }
        }
    }

    /// Holds every call from `mailbox` back for `wait` from now (or longer, if already held).
    pub(crate) fn hold_off(&self, mailbox: &str, wait: Duration) {
        let until = Instant::now() + wait;
        let mut state = self.lock();
        let lane = state.lanes.entry(mailbox.to_string()).or_default();
        lane.not_before = Some(lane.not_before.map_or(until, |t| t.max(until)));
    }

    /// Sleeps for `wait`, waking early if the batch stops; `false` when it stopped.
    pub(crate) fn sleep(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            if state.stopped {
                return false;
            }
            if now >= deadline {
                return true;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Stops the batch: every waiting worker returns.
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.changed.notify_all();
    }

    /// Whether the batch stopped.
    pub(crate) fn is_stopped(&self) -> bool {
        self.lock().stopped
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut state = self.pacer.lock();
        if let Some(lane) = state.lanes.get_mut(&self.mailbox) {
            lane.in_flight = lane.in_flight.saturating_sub(1);
            let idle = lane.in_flight == 0 && lane.not_before.is_none_or(|t| t <= Instant::now());
            if idle {
                state.lanes.remove(&self.mailbox);
            }
        }
        drop(state);
        self.pacer.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_limit_in_flight_per_mailbox() {
        let pacer = Pacer::new(2);
        let a1 = pacer.acquire("a").expect("slot");
        let _a2 = pacer.acquire("a").expect("slot");
        let _b1 = pacer.acquire("b").expect("other mailbox is free");
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| pacer.acquire("a").is_some());
            std::thread::sleep(Duration::from_millis(20));
            assert!(!waiter.is_finished(), "third slot must wait");
            drop(a1);
            assert!(waiter.join().expect("thread"));
        });
    }

    #[test]
    fn hold_off_delays_and_stop_wakes() {
        let pacer = Pacer::new(1);
        pacer.hold_off("a", Duration::from_millis(30));
        let started = Instant::now();
        assert!(pacer.wait_turn("a"));
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert!(pacer.wait_turn("b"));
        pacer.hold_off("a", Duration::from_secs(60));
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| pacer.wait_turn("a"));
            std::thread::sleep(Duration::from_millis(20));
            pacer.stop();
            assert!(!waiter.join().expect("thread"));
        });
        assert!(pacer.acquire("a").is_none());
    }
}
