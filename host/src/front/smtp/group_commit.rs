//! Group commit: the relay's sessions record their messages concurrently, and each record must
//! be durable (fsync'd) before its session answers `250`. Committed one by one, every message
//! pays a disk flush of its own, in turn, behind the database's single writer. Here concurrent
//! callers share one: the first caller to arrive while no commit is running becomes the leader
//! and commits every item queued so far in one go; callers arriving meanwhile queue for the next
//! group, and wait. Each caller gets its own item's result back, and only once the commit that
//! held its item has returned, so the durability promise is the same as one commit per item.
//!
//! No thread of its own and no timer: a lone caller commits at once (a group of one), so the
//! relay is never slower for waiting on company.

use std::sync::{Condvar, Mutex, PoisonError};

/// A group committer of items `T` with results `R` (see the module documentation).
#[derive(Debug)]
pub struct GroupCommit<T, R> {
    state: Mutex<State<T, R>>,
    changed: Condvar,
}

#[derive(Debug)]
struct State<T, R> {
    /// Items waiting for the next group, each with its ticket.
    queued: Vec<(u64, T)>,
    /// Results of committed groups not yet picked up, by ticket.
    done: Vec<(u64, R)>,
    /// A leader is committing a group now.
    committing: bool,
    next_ticket: u64,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                queued: Vec::new(),
                done: Vec::new(),
                committing: false,
                next_ticket: 0,
            }),
            changed: Condvar::new(),
        }
    }
}

impl<T, R> GroupCommit<T, R> {
    /// A committer with nothing queued.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `item`, and returns its result once a call of `commit` that held it returned.
    /// `commit` gets a group of items in arrival order and must return one result per item, in
    /// the same order (a shorter answer is padded with `missing()`). Blocking: call it from a
    /// blocking thread.
    pub fn submit(&self, item: T, commit: impl Fn(Vec<T>) -> Vec<R>, missing: impl Fn() -> R) -> R {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket = state.next_ticket.wrapping_add(1);
        state.queued.push((ticket, item));
        loop {
            if let Some(at) = state.done.iter().position(|(t, _)| *t == ticket) {
                return state.done.swap_remove(at).1;
            }
            if !state.committing && !state.queued.is_empty() {
                // Lead: commit everything queued, this caller's item among it (or, when an
                // earlier leader took it, the group after it while that result is waiting).
                state.committing = true;
                let group = std::mem::take(&mut state.queued);
                drop(state);
                let (tickets, items): (Vec<u64>, Vec<T>) = group.into_iter().unzip();
                // A commit that panics answers its group with `missing()` and lets the next
                // leader go on: a stuck `committing` would stop every session of the relay.
                let mut results =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| commit(items)))
                        .unwrap_or_default()
                        .into_iter();
                let answered: Vec<(u64, R)> = tickets
                    .into_iter()
                    .map(|t| (t, results.next().unwrap_or_else(&missing)))
                    .collect();
                state = self.lock();
                state.done.extend(answered);
                state.committing = false;
                self.changed.notify_all();
                continue;
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// How many items wait for the next group.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.lock().queued.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T, R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    use super::*;

    #[test]
    fn a_lone_caller_commits_a_group_of_one() {
        let gc: GroupCommit<u32, u32> = GroupCommit::new();
        let groups = AtomicUsize::new(0);
        let commit = |items: Vec<u32>| {
            groups.fetch_add(1, Ordering::SeqCst);
            items.iter().map(|i| i * 10).collect()
        };
        assert_eq!(gc.submit(1, commit, || 0), 10);
        assert_eq!(gc.submit(2, commit, || 0), 20);
        assert_eq!(groups.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn concurrent_callers_each_get_their_own_result_and_share_commits() {
        let gc: Arc<GroupCommit<usize, usize>> = Arc::new(GroupCommit::new());
        let groups = Arc::new(AtomicUsize::new(0));
        let committed = Arc::new(Mutex::new(Vec::new()));
        let callers = 8;
        let rounds = 50;
        let start = Arc::new(Barrier::new(callers));
        let threads: Vec<_> = (0..callers)
            .map(|c| {
                let (gc, groups, committed, start) = (
                    Arc::clone(&gc),
                    Arc::clone(&groups),
                    Arc::clone(&committed),
                    Arc::clone(&start),
                );
                std::thread::spawn(move || {
                    start.wait();
                    for r in 0..rounds {
                        let item = c * 1000 + r;
                        let got = gc.submit(
                            item,
                            |items: Vec<usize>| {
                                groups.fetch_add(1, Ordering::SeqCst);
                                // Slow, like a disk flush, so that others queue meanwhile.
                                std::thread::sleep(std::time::Duration::from_millis(1));
                                committed.lock().unwrap().extend(items.iter().copied());
                                items.iter().map(|i| i + 1).collect()
                            },
                            || usize::MAX,
                        );
                        assert_eq!(got, item + 1);
                        // Committed before the result came back.
                        assert!(committed.lock().unwrap().contains(&item));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let all = committed.lock().unwrap().len();
        assert_eq!(all, callers * rounds, "each item committed exactly once");
    }

    #[test]
    fn callers_arriving_during_a_commit_share_the_next_one() {
        let gc: Arc<GroupCommit<u32, u32>> = Arc::new(GroupCommit::new());
        let groups = Arc::new(Mutex::new(Vec::new()));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let leader = {
            let (gc, groups) = (Arc::clone(&gc), Arc::clone(&groups));
            std::thread::spawn(move || {
                let gc2 = Arc::clone(&gc);
                gc.submit(
                    1,
                    move |items: Vec<u32>| {
                        groups.lock().unwrap().push(items.clone());
                        if items == [1] {
                            started_tx.send(()).unwrap();
                            // Hold this commit until both others queued behind it.
                            while gc2.queued() < 2 {
                                std::thread::yield_now();
                            }
                        }
                        items
                    },
                    || 0,
                )
            })
        };
        started_rx.recv().unwrap();
        let followers: Vec<_> = [2, 3]
            .into_iter()
            .map(|item| {
                let (gc, groups) = (Arc::clone(&gc), Arc::clone(&groups));
                std::thread::spawn(move || {
                    gc.submit(
                        item,
                        move |items: Vec<u32>| {
                            groups.lock().unwrap().push(items.clone());
                            items
                        },
                        || 0,
                    )
                })
            })
            .collect();
        assert_eq!(leader.join().unwrap(), 1);
        let got: Vec<u32> = followers.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(got, [2, 3]);
        let groups = groups.lock().unwrap();
        assert_eq!(groups.len(), 2, "{groups:?}");
        let mut second = groups[1].clone();
        second.sort_unstable();
        assert_eq!(second, [2, 3], "one commit for both");
    }

    #[test]
    fn a_commit_that_panics_answers_missing_and_the_next_group_commits() {
        let gc: GroupCommit<u32, Option<u32>> = GroupCommit::new();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gc.submit(1, |_| panic!("disk on fire"), || None)
        }));
        assert_eq!(panicked.ok(), Some(None));
        assert_eq!(
            gc.submit(2, |items| items.into_iter().map(Some).collect(), || None),
            Some(2)
        );
    }

    #[test]
    fn a_short_answer_is_padded() {
        let gc: GroupCommit<u32, Option<u32>> = GroupCommit::new();
        assert_eq!(gc.submit(1, |_| Vec::new(), || None), None);
    }
}
