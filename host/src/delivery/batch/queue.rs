//! The bounded queue between the reader and the workers.
//!
//! Unlike a plain channel it tells the reader how much room there is, so the reader can accept a
//! whole group of lines in one commit and still never hold more than `capacity` emails between
//! reading and sending (the group being built counts against the room it was built for). The
//! reader waits until at least half the queue is free before it starts a group, so groups stay
//! large while the workers still have the other half to work on.
//!
//! Wake-ups are counted: a worker is woken once per job pushed, and the reader only when the
//! queue drains to the point where it may start the next group.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

use super::worker::Job;

#[derive(Debug, Default)]
struct State {
    jobs: VecDeque<Job>,
    /// The reader has pushed its last job: workers drain the queue, then leave.
    closed: bool,
    /// The batch stopped, or every worker left: nobody takes jobs any more.
    stopped: bool,
    /// Workers blocked in [`JobQueue::pop`], so a push wakes no more than it feeds.
    idle_workers: usize,
    /// Whether the reader is blocked in [`JobQueue::wait_room`].
    reader_waiting: bool,
}

/// A bounded multi-consumer queue of accepted emails.
#[derive(Debug)]
pub(crate) struct JobQueue {
    state: Mutex<State>,
    /// Signalled for workers: a job was pushed, or the queue closed or stopped.
    ready: Condvar,
    /// Signalled for the reader: room reached [`JobQueue::low_room`], or the queue stopped.
    room: Condvar,
    capacity: usize,
}

impl JobQueue {
    /// A queue holding at most `capacity` jobs (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::default(),
            ready: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The room the reader waits for before starting a group: half the queue (at least one).
    fn low_room(&self) -> usize {
        self.capacity.div_ceil(2)
    }

    /// Waits until at least half the queue is free and returns how many jobs fit now; `None`
    /// once the queue stopped. Only the reader pushes, so that many jobs still fit when it
    /// pushes them, however long it takes to prepare them.
    pub(crate) fn wait_room(&self) -> Option<usize> {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return None;
            }
            let room = self.capacity - state.jobs.len();
            if room >= self.low_room() {
                return Some(room);
            }
            state.reader_waiting = true;
            state = self
                .room
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state.reader_waiting = false;
        }
    }

    /// Adds `jobs` (no more than the room [`JobQueue::wait_room`] gave) and wakes one waiting
    /// worker per job. `false` when the queue stopped (the jobs are dropped: they stay `queued`
    /// in the store, and a rerun sends them).
    pub(crate) fn push_all(&self, jobs: Vec<Job>) -> bool {
        let wake = {
            let mut state = self.lock();
            if state.stopped {
                return false;
            }
            let wake = jobs.len().min(state.idle_workers);
            state.jobs.extend(jobs);
            wake
        };
        for _ in 0..wake {
            self.ready.notify_one();
        }
        true
    }

    /// The next job, waiting for one; `None` once the queue is closed and empty, or stopped.
    pub(crate) fn pop(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return None;
            }
            if let Some(job) = state.jobs.pop_front() {
                // Wake the reader only when the room it waits for is reached.
                let wake =
                    state.reader_waiting && self.capacity - state.jobs.len() >= self.low_room();
                if wake {
                    // Once is enough: it re-checks when it runs.
                    state.reader_waiting = false;
                }
                drop(state);
                if wake {
                    self.room.notify_one();
                }
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state.idle_workers += 1;
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state.idle_workers -= 1;
        }
    }

    /// The reader is done: workers take what is left, then [`JobQueue::pop`] returns `None`.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Nobody will take jobs any more (the batch stopped, or the workers are gone): every
    /// waiter returns at once.
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.ready.notify_all();
        self.room.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(line: u64) -> Job {
        Job {
            line,
            id: format!("e{line}"),
            mailbox: "a@x.com".into(),
        }
    }

    #[test]
    fn room_is_given_in_halves_and_jobs_come_out_in_order() {
        let queue = JobQueue::new(4);
        assert_eq!(queue.wait_room(), Some(4));
        assert!(queue.push_all((1..=4).map(job).collect()));
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| queue.wait_room());
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!reader.is_finished(), "a full queue has no room");
            assert_eq!(queue.pop().map(|j| j.line), Some(1));
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!reader.is_finished(), "one free slot is not half the queue");
            assert_eq!(queue.pop().map(|j| j.line), Some(2));
            assert_eq!(reader.join().expect("reader"), Some(2));
        });
        queue.close();
        assert_eq!(queue.pop().map(|j| j.line), Some(3));
        assert_eq!(queue.pop().map(|j| j.line), Some(4));
        assert!(queue.pop().is_none());
    }

    #[test]
    fn stop_wakes_the_reader_and_the_workers() {
        let queue = JobQueue::new(2);
        assert!(queue.push_all(vec![job(1), job(2)]));
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| queue.wait_room());
            std::thread::sleep(std::time::Duration::from_millis(20));
            queue.stop();
            assert_eq!(reader.join().expect("reader"), None);
        });
        assert!(queue.pop().is_none());
        assert!(!queue.push_all(vec![job(3)]));
        let empty = JobQueue::new(2);
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| empty.pop().is_none());
            std::thread::sleep(std::time::Duration::from_millis(20));
            empty.stop();
            assert!(worker.join().expect("worker"));
        });
    }
}
