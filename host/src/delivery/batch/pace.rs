//! Pacing per mailbox: at most N calls in flight for one From address, and a shared
//! "not before" instant that throttling pushes back, so when the service says "wait 5 s" every
//! worker sending from that mailbox waits, not just the one that was told.
//!
//! It also carries the batch's stop flag, so waiting workers wake up at once when the batch
//! must stop.
//!
//! Wake-ups: each lane has its own condition, signalled once per freed slot (`notify_one`), so a
//! finished call wakes at most the one worker that can use its slot, and never workers waiting
//! on other mailboxes. That is safe from lost wake-ups because the lane counts its waiters and
//! is not removed while any wait, every freed slot signals once, and a woken worker that finds
//! the slot taken (by a worker that had not been waiting) waits again for that worker's release.
//! Throttle pauses ([`Pacer::wait_turn`]) wait with a timeout on the deadline they saw, then
//! re-check it, so a pause pushed further back is honoured without waking anyone. Stopping wakes
//! everyone.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Lane {
    in_flight: usize,
    /// Workers blocked in [`Pacer::acquire`] on this lane (or woken and not yet running).
    waiting: usize,
    not_before: Option<Instant>,
    /// Signalled once per freed slot, and by [`Pacer::stop`].
    slot_freed: Arc<Condvar>,
}

#[derive(Debug, Default)]
struct State {
    /// The lanes by mailbox: only those with calls in flight, waiters or a pause.
    lanes: Vec<(String, Lane)>,
    stopped: bool,
}

/// The pacing of every mailbox in one batch.
#[derive(Debug)]
pub(crate) struct Pacer {
    state: Mutex<State>,
    /// For timed waits (throttle pauses, backoff sleeps): signalled only by [`Pacer::stop`].
    stopping: Condvar,
    per_mailbox: usize,
}

/// A slot in a mailbox's lane; released on drop.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    pacer: &'a Pacer,
    mailbox: &'a str,
}

impl Pacer {
    /// A pacer allowing `per_mailbox` calls in flight per mailbox (at least one).
    pub(crate) fn new(per_mailbox: usize) -> Self {
        Self {
            state: Mutex::default(),
            stopping: Condvar::new(),
            per_mailbox: per_mailbox.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a free slot in `mailbox`'s lane; `None` when the batch stopped.
    pub(crate) fn acquire<'a>(&'a self, mailbox: &'a str) -> Option<Permit<'a>> {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return None;
            }
            let slot_freed = {
                let lane = lane(&mut state.lanes, mailbox);
                if lane.in_flight < self.per_mailbox {
                    lane.in_flight += 1;
                    return Some(Permit {
                        pacer: self,
                        mailbox,
                    });
                }
                lane.waiting += 1;
                Arc::clone(&lane.slot_freed)
            };
            state = slot_freed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // A lane is kept while it has waiters, so this is the lane waited on.
            let lane = lane(&mut state.lanes, mailbox);
            lane.waiting = lane.waiting.saturating_sub(1);
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
            let until = state
                .lanes
                .iter()
                .find(|(name, _)| name == mailbox)
                .and_then(|(_, lane)| lane.not_before);
            match until {
                Some(until) if until > now => {
                    state = self
                        .stopping
                        .wait_timeout(state, until - now)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0;
                }
                _ => return true,
            }
        }
    }

    /// Holds every call from `mailbox` back for `wait` from now (or longer, if already held).
    /// Nobody needs waking: workers already pausing wake at the deadline they saw, re-check
    /// and pause again.
    pub(crate) fn hold_off(&self, mailbox: &str, wait: Duration) {
        let until = Instant::now() + wait;
        let mut state = self.lock();
        let lane = lane(&mut state.lanes, mailbox);
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
                .stopping
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    /// Stops the batch: every waiting worker returns.
    pub(crate) fn stop(&self) {
        let lanes: Vec<Arc<Condvar>> = {
            let mut state = self.lock();
            state.stopped = true;
            state
                .lanes
                .iter()
                .map(|(_, lane)| Arc::clone(&lane.slot_freed))
                .collect()
        };
        self.stopping.notify_all();
        for lane in lanes {
            lane.notify_all();
        }
    }

    /// Whether the batch stopped.
    pub(crate) fn is_stopped(&self) -> bool {
        self.lock().stopped
    }
}

/// The lane of `mailbox`, created idle if it has none (allocating only then). Lanes are few:
/// an idle one is removed when its last slot is released.
fn lane<'s>(lanes: &'s mut Vec<(String, Lane)>, mailbox: &str) -> &'s mut Lane {
    let index = match lanes.iter().position(|(name, _)| name == mailbox) {
        Some(index) => index,
        None => {
            lanes.push((mailbox.to_string(), Lane::default()));
            lanes.len() - 1
        }
    };
    &mut lanes[index].1
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut state = self.pacer.lock();
        let Some(index) = state
            .lanes
            .iter()
            .position(|(name, _)| name == self.mailbox)
        else {
            return;
        };
        let lane = &mut state.lanes[index].1;
        lane.in_flight = lane.in_flight.saturating_sub(1);
        if lane.waiting > 0 {
            let slot_freed = Arc::clone(&lane.slot_freed);
            drop(state);
            slot_freed.notify_one();
            return;
        }
        let idle = lane.in_flight == 0 && lane.not_before.is_none_or(|t| t <= Instant::now());
        if idle {
            state.lanes.swap_remove(index);
        }
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
        // Measured from before the hold-off: its deadline counts from the moment it is set.
        let started = Instant::now();
        pacer.hold_off("a", Duration::from_millis(30));
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

    /// Many workers on few slots, across lanes, with limit 1 (where a release empties the lane
    /// while others wait) and more: every acquire is served, none sleeps forever, and a lane
    /// never has more than its limit in flight.
    #[test]
    fn no_wake_up_is_lost_and_the_limit_holds() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for (workers, limit) in [(8, 1), (8, 4), (16, 3), (3, 4)] {
            let pacer = Pacer::new(limit);
            let lanes = ["a", "b"];
            let in_flight = [AtomicUsize::new(0), AtomicUsize::new(0)];
            let peak = [AtomicUsize::new(0), AtomicUsize::new(0)];
            let done = AtomicUsize::new(0);
            let rounds = 300;
            std::thread::scope(|scope| {
                for w in 0..workers {
                    let (pacer, in_flight, peak, done) = (&pacer, &in_flight, &peak, &done);
                    scope.spawn(move || {
                        for round in 0..rounds {
                            let lane = (w + round) % 3 % 2;
                            let permit = pacer.acquire(lanes[lane]).expect("not stopped");
                            let now = in_flight[lane].fetch_add(1, Ordering::SeqCst) + 1;
                            peak[lane].fetch_max(now, Ordering::SeqCst);
                            if round % 7 == 0 {
                                std::thread::sleep(Duration::from_micros(50));
                            } else {
                                std::thread::yield_now();
                            }
                            in_flight[lane].fetch_sub(1, Ordering::SeqCst);
                            drop(permit);
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                    });
                }
            });
            assert_eq!(done.load(Ordering::SeqCst), workers * rounds);
            for lane in &peak {
                let peak = lane.load(Ordering::SeqCst);
                assert!(peak <= limit, "{peak} in flight with limit {limit}");
            }
            assert!(pacer.lock().lanes.is_empty(), "idle lanes are removed");
        }
    }

    #[test]
    fn stop_wakes_workers_waiting_for_a_slot() {
        let pacer = Pacer::new(1);
        let held = pacer.acquire("a").expect("slot");
        std::thread::scope(|scope| {
            let waiters: Vec<_> = (0..3)
                .map(|_| scope.spawn(|| pacer.acquire("a").is_none()))
                .collect();
            std::thread::sleep(Duration::from_millis(20));
            pacer.stop();
            for waiter in waiters {
                assert!(
                    waiter.join().expect("thread"),
                    "a stopped pacer gives no slot"
                );
            }
        });
        drop(held);
    }
}
