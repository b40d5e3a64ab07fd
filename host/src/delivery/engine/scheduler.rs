//! The scheduler: rounds that pick due emails, admit them under their mailbox's limits and
//! hand them to worker threads; the loops built on it (`serve`, `flush`, `send-batch`) and the
//! synchronous [`Engine::send_now`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::lanes::Lane;
use super::senders::{SenderKey, Senders};
use super::{Engine, RESCAN_AT_MOST_EVERY, not_ready};
use crate::delivery::limits::Limits;
use crate::delivery::outbox::{
    Admission, Candidate, Claim, EmailRecord, LastError, OutboxError, Status, Timestamp,
};
use crate::error::Error;

/// How long an email whose provider cannot be used waits before the engine looks again.
pub const NOT_READY_WAIT: Duration = Duration::from_secs(60);

/// Tells loops to stop (SIGTERM, Ctrl-C, the end of a batch). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// A signal not yet given.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives the signal.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it was given.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Which queued emails a loop sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every staff member's.
    All,
    /// One staff member's (send-batch).
    Staff(String),
}

impl Scope {
    fn staff(&self) -> Option<&str> {
        match self {
            Self::All => None,
            Self::Staff(id) => Some(id),
        }
    }
}

/// When a draining loop ends.
#[derive(Debug, Clone)]
pub struct Drain {
    /// Wait for emails due within this long; leave later ones queued.
    pub max_wait: Duration,
    /// Set while a producer (the send-batch reader) may still record more emails.
    pub producing: Option<Arc<AtomicBool>>,
}

/// What a draining loop left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainSummary {
    /// Emails of the scope still queued when it ended.
    pub queued: u64,
    /// The earliest time one of them may go.
    pub next_due: Option<Timestamp>,
}

/// A claimed email and its lane, waiting for a worker.
struct Job {
    claim: Claim,
    lane: Arc<Lane>,
}

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    /// Jobs a worker is running.
    running: usize,
    closed: bool,
}

/// The worker threads' queue. Jobs are claimed before they are pushed, so the scheduler only
/// claims as many as there are idle workers.
#[derive(Default)]
struct Pool {
    state: Mutex<PoolState>,
    ready: Condvar,
    idle: Condvar,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn busy(&self) -> usize {
        let state = self.lock();
        state.jobs.len() + state.running
    }

    fn push(&self, jobs: Vec<Job>) {
        let mut state = self.lock();
        for job in jobs {
            state.jobs.push_back(job);
            self.ready.notify_one();
        }
    }

    fn pop(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                state.running += 1;
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn done(&self) {
        let mut state = self.lock();
        state.running = state.running.saturating_sub(1);
        self.idle.notify_all();
    }

    /// Closes the queue and returns the jobs no worker started.
    fn close(&self) -> Vec<Job> {
        let mut state = self.lock();
        state.closed = true;
        self.ready.notify_all();
        state.jobs.drain(..).collect()
    }

    /// Waits up to `grace` for running jobs to finish; returns how many still run.
    fn wait_idle(&self, grace: Duration) -> usize {
        let deadline = Instant::now() + grace;
        let mut state = self.lock();
        while state.running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = match self.idle.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.running
    }
}

impl Engine {
    /// Sends `id` now under its mailbox's limits, in the calling thread, waiting up to
    /// `max_wait` through limit holds and retries that are due within it. Returns the record
    /// as it then is: `queued` means kept for later (see `not_before` and `error`).
    ///
    /// # Errors
    /// The email is not found, or the store failed.
    pub fn send_now(&self, id: &str, max_wait: Duration) -> Result<EmailRecord, Error> {
        let deadline = Instant::now() + max_wait;
        loop {
            let record = self.outbox.get(id)?;
            let left = deadline.saturating_duration_since(Instant::now());
            match record.status {
                Status::Queued => {}
                // Another process is sending it: wait for its outcome.
                Status::Sending if !left.is_zero() => {
                    std::thread::sleep(left.min(Duration::from_millis(50)));
                    continue;
                }
                _ => return Ok(record),
            }
            let now = Timestamp::now();
            if let Some(wait) = wait_until(record.not_before, now) {
                if wait > left {
                    return Ok(record);
                }
                std::thread::sleep(wait);
                continue;
            }
            let lane = match self.lanes.get(&record.staff_id) {
                Ok(lane) => lane,
                Err(reason) => {
                    self.outbox.finish_failed(&record.id, &not_ready(&reason))?;
                    return Ok(self.outbox.get(id)?);
                }
            };
            let Some(candidate) = self.candidate_of(&lane, &record)? else {
                return Ok(self.outbox.get(id)?);
            };
            let admitted = self.outbox.admit(
                &[Candidate {
                    id: &record.id,
                    mailbox: &candidate,
                    recipients: u64::from(record.recipient_count),
                    limits: &lane.limits,
                }],
                now,
            )?;
            match admitted.into_iter().next() {
                Some(Admission::Claimed(claim, _)) => {
                    self.attempt(&lane, &claim)?;
                }
                Some(Admission::Held(hold)) => {
                    self.metrics.limit_wait();
                    let wait = match hold.until {
                        Some(until) => wait_until(Some(until), now).unwrap_or_default(),
                        None => Duration::from_millis(50),
                    };
                    if wait > left {
                        return Ok(self.outbox.get(id)?);
                    }
                    std::thread::sleep(wait);
                }
                Some(Admission::Gone | Admission::Skipped) | None => {
                    return Ok(self.outbox.get(id)?);
                }
            }
        }
    }

    /// The mailbox `record` counts against, or `None` after recording why it cannot be sent
    /// (the provider could not say, or it has more recipients than one message may).
    fn candidate_of(&self, lane: &Lane, record: &EmailRecord) -> Result<Option<String>, Error> {
        if let Err(line) = lane.limits.check_message(u64::from(record.recipient_count)) {
            let line = line.replace("PLUGIN", lane.route.provider_name());
            self.outbox.finish_failed(
                &record.id,
                &mailhost_plugin_api::ProviderError::new(
                    mailhost_plugin_api::ErrorKind::INVALID_MESSAGE,
                    line,
                )
                .with_code("TOO_MANY_RECIPIENTS"),
            )?;
            return Ok(None);
        }
        match lane.mailbox(record) {
            Ok(mailbox) => Ok(Some(mailbox)),
            Err(error) => {
                self.outbox.finish_failed(&record.id, &error)?;
                Ok(None)
            }
        }
    }

    /// Sends every due email of `scope` with the engine's workers until nothing more is due
    /// within `drain.max_wait` (and no producer is still recording), or `stop` is given.
    ///
    /// # Errors
    /// The store failed.
    pub fn drain(
        self: &Arc<Self>,
        scope: &Scope,
        drain: &Drain,
        stop: &StopSignal,
    ) -> Result<DrainSummary, Error> {
        let result = self.pump(scope, stop, Some(drain));
        let summary = self.summary(scope)?;
        result.map(|()| summary)
    }

    /// The service loop: sends every due email of every staff member, reconciles `unknown`
    /// ones, until `stop` is given; then lets sends in flight finish for up to `grace` (those
    /// still running then stay `sending`, which the next start makes `unknown` and reconciles).
    ///
    /// # Errors
    /// The store failed.
    pub fn run(self: &Arc<Self>, stop: &StopSignal, grace: Duration) -> Result<(), Error> {
        let started = Instant::now();
        let result = self.pump_with_grace(&Scope::All, stop, None, grace);
        log::info!("delivery engine stopped after {:?}", started.elapsed());
        result
    }

    fn pump(
        self: &Arc<Self>,
        scope: &Scope,
        stop: &StopSignal,
        drain: Option<&Drain>,
    ) -> Result<(), Error> {
        self.pump_with_grace(scope, stop, drain, Duration::from_secs(u64::MAX / 4))
    }

    fn pump_with_grace(
        self: &Arc<Self>,
        scope: &Scope,
        stop: &StopSignal,
        drain: Option<&Drain>,
        grace: Duration,
    ) -> Result<(), Error> {
        let pool = Arc::new(Pool::default());
        let workers = self.options.workers.max(1);
        for index in 0..workers {
            let engine = Arc::clone(self);
            let pool = Arc::clone(&pool);
            let spawned = std::thread::Builder::new()
                .name(format!("mailhost-send-{index}"))
                .spawn(move || engine.work(&pool));
            if let Err(error) = spawned {
                log::warn!("could not start send worker {index}: {error}");
            }
        }
        let result = self.schedule(scope, stop, drain, &pool, workers);
        for job in pool.close() {
            if let Err(error) = self.outbox.release(&job.claim.record.id) {
                log::warn!(
                    "email {} was claimed but not sent and could not be put back: {error}",
                    job.claim.record.id
                );
            }
        }
        let still = pool.wait_idle(grace);
        if still > 0 {
            log::warn!(
                "{still} sends were still running when the stop grace ran out; they stay 'sending' and are reconciled at the next start"
            );
        }
        result
    }

    fn work(&self, pool: &Pool) {
        while let Some(job) = pool.pop() {
            if let Err(error) = self.attempt(&job.lane, &job.claim) {
                log::error!(
                    "the outcome of email {} could not be recorded: {error}; it stays 'sending' and becomes 'unknown' at the next start",
                    job.claim.record.id
                );
            }
            pool.done();
            let record = &job.claim.record;
            self.wake_sender(&record.staff_id, &record.from.address);
        }
    }

    fn schedule(
        &self,
        scope: &Scope,
        stop: &StopSignal,
        drain: Option<&Drain>,
        pool: &Pool,
        workers: usize,
    ) -> Result<(), Error> {
        let mut seen = 0u64;
        let mut senders = Senders::new();
        let mut clock = ClockWatch::default();
        let mut rescan = true;
        let mut last_reconcile = Instant::now() - RECONCILE_EVERY;
        let mut last_prune = Instant::now() - PRUNE_EVERY;
        let mut last_retention: Option<Instant> = None;
        loop {
            if stop.is_stopped() {
                return Ok(());
            }
            if drain.is_none() && last_reconcile.elapsed() >= RECONCILE_EVERY {
                last_reconcile = Instant::now();
                if let Err(error) = self.reconcile_due(Timestamp::now()) {
                    log::warn!("reconciling unknown emails failed: {error}");
                }
            }
            if drain.is_none() && last_retention.is_none_or(|at| at.elapsed() >= RETENTION_EVERY) {
                last_retention = Some(Instant::now());
                match crate::delivery::retention::apply_home_policy(
                    &self.home,
                    &self.outbox,
                    std::time::SystemTime::now(),
                ) {
                    Ok(report) => log::info!(
                        "retention: {} records deleted, {} bodies dropped, {} bytes reclaimed",
                        report.records_deleted,
                        report.bodies_dropped,
                        report.bytes_reclaimed
                    ),
                    Err(error) => log::warn!("applying the retention policy failed: {error}"),
                }
            }
            if last_prune.elapsed() >= PRUNE_EVERY {
                last_prune = Instant::now();
                if let Err(error) = self.outbox.prune_ledger(Timestamp::now(), LEDGER_KEEP_MS) {
                    log::warn!("pruning the sending-limit ledger failed: {error}");
                }
            }
            // Other processes record and send too: read the queue again every poll, and
            // sooner when woken for a change nobody named.
            let full = senders.stale(self.options.poll);
            if full || (rescan && senders.stale(RESCAN_AT_MOST_EVERY)) {
                senders.refresh(self.outbox.queued_senders(scope.staff())?);
                if full {
                    senders.forget_idle_mailboxes(Timestamp::now());
                }
                rescan = false;
            }
            let (now, at) = (Timestamp::now(), Instant::now());
            clock.check(now, at);
            let slots = workers.saturating_sub(pool.busy());
            let (claimed, round) = if slots > 0 {
                let (jobs, round) = self.round(&mut senders, slots, now, at)?;
                let n = jobs.len();
                pool.push(jobs);
                (n, round)
            } else {
                (0, RoundEnd::default())
            };
            if slots > claimed && ((claimed > 0 && round.bounded) || round.passed_over) {
                // More may be due right away: the round was bounded (and got somewhere), or
                // an email it looked at failed or was taken, and the sender's next one waits.
                continue;
            }
            let mut next = senders.next_ready();
            let now = Timestamp::now();
            if let Some(drain) = drain {
                let producing = drain
                    .producing
                    .as_ref()
                    .is_some_and(|p| p.load(Ordering::SeqCst));
                let soon = |next: Option<Timestamp>| {
                    next.is_some_and(|t| {
                        wait_until(Some(t), now).unwrap_or_default() <= drain.max_wait
                    })
                };
                if !producing && pool.busy() == 0 && claimed == 0 && !soon(next) {
                    // The picture may be behind the table: look before ending.
                    senders.refresh(self.outbox.queued_senders(scope.staff())?);
                    next = senders.next_ready();
                    if !soon(next) {
                        return Ok(());
                    }
                    continue;
                }
            }
            let mut timeout = self.options.poll;
            if let Some(wait) = next.and_then(|t| wait_until(Some(t), now)) {
                timeout = timeout.min(wait.max(Duration::from_millis(1)));
            } else if next.is_some() && slots > 0 && claimed == 0 && pool.busy() == 0 {
                // Due now, yet nothing could be claimed (held by another process's sends).
                timeout = timeout.min(Duration::from_millis(20));
            }
            let wake = self.wait_for_wake(&mut seen, timeout);
            rescan |= wake.rescan;
            for key in wake.senders {
                if scope.staff().is_none_or(|staff| staff == key.staff_id) {
                    senders.touch(key);
                }
            }
        }
    }

    /// One round: admits the heads of the senders that may send now, at most `slots`;
    /// emails whose provider cannot be used wait [`NOT_READY_WAIT`] with the reason recorded.
    /// Returns the claimed jobs and why more may be due at once.
    fn round(
        &self,
        senders: &mut Senders,
        slots: usize,
        now: Timestamp,
        at: Instant,
    ) -> Result<(Vec<Job>, RoundEnd), Error> {
        let due = senders.due(now, slots);
        let mut end = RoundEnd {
            bounded: due.len() >= slots,
            passed_over: false,
        };
        if due.is_empty() {
            return Ok((Vec::new(), end));
        }
        let mut prepared: Vec<(EmailRecord, Arc<Lane>, String, SenderKey)> = Vec::new();
        for key in due {
            let lane = match self.lanes.get(&key.staff_id) {
                Ok(lane) => lane,
                Err(reason) => {
                    log::warn!("emails of staff member '{}' wait: {reason}", key.staff_id);
                    for record in
                        self.outbox
                            .due_of_sender(&key.staff_id, &key.from, now, PARK_AT_ONCE)?
                    {
                        self.park_not_ready(&record, &reason, now)?;
                    }
                    senders.park(&key, Timestamp(now.millis() + not_ready_wait_ms()));
                    continue;
                }
            };
            let heads = heads_per_round(&lane.limits);
            let records = self
                .outbox
                .due_of_sender(&key.staff_id, &key.from, now, heads)?;
            if records.is_empty() {
                let next = self.outbox.next_due_of_sender(&key.staff_id, &key.from)?;
                senders.nothing_due(&key, next);
                continue;
            }
            end.bounded |= records.len() >= heads && heads > 1;
            for record in records {
                let Some(mailbox) = self.candidate_of(&lane, &record)? else {
                    end.passed_over = true;
                    continue;
                };
                senders.set_mailbox(&key, &mailbox);
                if let Some(until) = senders.monotonic_hold(&mailbox, &lane.limits, now, at) {
                    senders.held(&mailbox, Some(until));
                    break;
                }
                prepared.push((record, Arc::clone(&lane), mailbox, key.clone()));
            }
        }
        let candidates: Vec<Candidate<'_>> = prepared
            .iter()
            .map(|(record, lane, mailbox, _)| Candidate {
                id: &record.id,
                mailbox,
                recipients: u64::from(record.recipient_count),
                limits: &lane.limits,
            })
            .collect();
        let admissions = self.outbox.admit_bounded(&candidates, now, slots)?;
        let mut jobs = Vec::new();
        for ((_, lane, mailbox, _), admission) in prepared.iter().zip(admissions) {
            match admission {
                Admission::Claimed(claim, next) => {
                    senders.claimed(mailbox, &lane.limits, next, now, at);
                    jobs.push(Job {
                        claim: *claim,
                        lane: Arc::clone(lane),
                    });
                }
                Admission::Held(hold) => {
                    self.metrics.limit_wait();
                    senders.held(mailbox, hold.until);
                }
                Admission::Skipped => end.bounded = true,
                // Taken by another process meanwhile: the sender's next head is looked at.
                Admission::Gone => end.passed_over = true,
            }
        }
        Ok((jobs, end))
    }

    /// Keeps an email whose provider cannot be used (`reason`) `queued`, with the reason, for
    /// [`NOT_READY_WAIT`]; past its `MaxAgeHours` (72 h, the default, since the plugin's own
    /// setting cannot be read without it) it ends `failed`.
    fn park_not_ready(
        &self,
        record: &EmailRecord,
        reason: &str,
        now: Timestamp,
    ) -> Result<(), OutboxError> {
        let error = not_ready(reason);
        let max_age = super::policy::RetryLimits::default().max_age;
        let expired = now.millis() - record.created_at.millis()
            > i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        if expired {
            self.outbox.finish_failed(&record.id, &error)?;
        } else {
            self.outbox.park(
                &record.id,
                &LastError::from(&error),
                Timestamp(now.millis() + not_ready_wait_ms()),
            )?;
        }
        Ok(())
    }

    fn summary(&self, scope: &Scope) -> Result<DrainSummary, Error> {
        Ok(DrainSummary {
            queued: self.outbox.queued_count(scope.staff())?,
            next_due: self.outbox.next_due_in(scope.staff())?,
        })
    }
}

/// How often the service asks providers about `unknown` emails.
const RECONCILE_EVERY: Duration = Duration::from_secs(5);
/// How often the service applies the home's retention policy (at start, then daily).
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How often the ledger drops rows no window needs.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The ledger keeps 25 hours (the longest window Exchange has is 24 hours).
const LEDGER_KEEP_MS: i64 = 25 * 3600 * 1000;

/// Notices the wall clock jumping against the monotonic one between rounds, and says so in
/// the log (a clock set back is handled by the limits' arithmetic, one set forward by the
/// scheduler's own record of its sends; both deserve a line).
#[derive(Debug, Default)]
struct ClockWatch {
    last: Option<(Timestamp, Instant)>,
}

impl ClockWatch {
    /// The least jump worth a line.
    const JUMP_MS: i64 = 2_000;

    fn check(&mut self, now: Timestamp, at: Instant) {
        if let Some((then, then_at)) = self.last {
            let wall = now.millis() - then.millis();
            let monotonic =
                i64::try_from(at.saturating_duration_since(then_at).as_millis()).unwrap_or(0);
            let jump = wall - monotonic;
            if jump.abs() >= Self::JUMP_MS {
                log::warn!(
                    "the system clock jumped {} by {:.1} s; the sending limits keep counting the sends made before by the time this service measured itself",
                    if jump > 0 { "forward" } else { "back" },
                    jump.abs() as f64 / 1000.0
                );
            }
        }
        self.last = Some((now, at));
    }
}

/// How many of a sender's due emails one round marks as waiting for a provider that cannot be
/// used (the rest when their turn comes).
const PARK_AT_ONCE: usize = 64;

/// [`NOT_READY_WAIT`] in milliseconds.
fn not_ready_wait_ms() -> i64 {
    i64::try_from(NOT_READY_WAIT.as_millis()).unwrap_or(60_000)
}

/// How many emails of one sender a round looks at: one where the mailbox is paced (the next
/// one waits for its turn anyway), else as many as may be in flight at once.
fn heads_per_round(limits: &Limits) -> usize {
    if limits.messages.is_some() {
        1
    } else {
        limits
            .concurrent
            .as_ref()
            .map_or(8, |c| usize::try_from(c.max).unwrap_or(8).clamp(1, 8))
    }
}

/// How long until `at`, or `None` when it has passed (or is not set).
pub(crate) fn wait_until(at: Option<Timestamp>, now: Timestamp) -> Option<Duration> {
    let at = at?;
    let ms = at.millis() - now.millis();
    (ms > 0).then(|| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// Why a scheduler round may leave more due at once.
#[derive(Debug, Default, Clone, Copy)]
struct RoundEnd {
    /// It stopped at its bound (slots, or heads per sender): more may be due.
    bounded: bool,
    /// An email it looked at failed its checks or was taken by another process: its
    /// sender's next one has not been looked at yet.
    passed_over: bool,
}
