//! Failed AUTH attempts per client address: each failure is answered more slowly (1 s, 2 s, ...
//! up to 5 s), and after `max_failures` failures within the lock-out period the address is
//! locked out for that period. Everything is counted in [`RelayMetrics`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::network::canonical;

/// What the relay counts, for `/metrics` (no addresses, no names).
#[derive(Debug, Default)]
pub struct RelayMetrics {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused because the client's network is not allowed.
    pub refused_network: AtomicU64,
    /// Connections refused by the connection limits.
    pub refused_limit: AtomicU64,
    /// Connections refused because the client's address is locked out.
    pub refused_locked_out: AtomicU64,
    /// Successful AUTH.
    pub auth_successes: AtomicU64,
    /// Failed AUTH.
    pub auth_failures: AtomicU64,
    /// Addresses locked out.
    pub lockouts: AtomicU64,
    /// Messages recorded (250 said).
    pub messages_accepted: AtomicU64,
    /// Messages the backend could not record.
    pub messages_failed: AtomicU64,
    /// Sessions closed for a timeout.
    pub timeouts: AtomicU64,
}

impl RelayMetrics {
    /// Adds one to `counter`.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(name, help, value)` of every counter, named as Prometheus counters.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let v = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            (
                "mailhost_smtp_connections_total",
                "SMTP connections accepted",
                v(&self.connections),
            ),
            (
                "mailhost_smtp_refused_network_total",
                "SMTP connections refused: client network not allowed",
                v(&self.refused_network),
            ),
            (
                "mailhost_smtp_refused_limit_total",
                "SMTP connections refused: connection limits",
                v(&self.refused_limit),
            ),
            (
                "mailhost_smtp_refused_locked_out_total",
                "SMTP connections refused: client locked out",
                v(&self.refused_locked_out),
            ),
            (
                "mailhost_smtp_auth_successes_total",
                "SMTP AUTH successes",
                v(&self.auth_successes),
            ),
            (
                "mailhost_smtp_auth_failures_total",
                "SMTP AUTH failures",
                v(&self.auth_failures),
            ),
            (
                "mailhost_smtp_lockouts_total",
                "SMTP client addresses locked out after failed AUTH",
                v(&self.lockouts),
            ),
            (
                "mailhost_smtp_messages_accepted_total",
                "messages the relay recorded and answered 250",
                v(&self.messages_accepted),
            ),
            (
                "mailhost_smtp_messages_failed_total",
                "messages the relay could not record",
                v(&self.messages_failed),
            ),
            (
                "mailhost_smtp_timeouts_total",
                "SMTP sessions closed for a timeout",
                v(&self.timeouts),
            ),
        ]
    }

    /// The counters in Prometheus' text format.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        for (name, help, value) in self.snapshot() {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
            ));
        }
        out
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

/// The failure record of every client address.
#[derive(Debug)]
pub struct AuthGuard {
    max_failures: u32,
    period: Duration,
    step: Duration,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

/// What happens after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Wait this long before answering.
    pub delay: Duration,
    /// The address is now locked out for this many minutes.
    pub locked_out_minutes: Option<u64>,
}

impl AuthGuard {
    /// Locks an address out for `period` after `max_failures` failures within it; each failure
    /// is answered after `step` times the failures so far (at most 5 steps).
    pub fn new(max_failures: u32, period: Duration, step: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            period,
            step,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The minutes left (rounded up) if `ip` is locked out at `now`.
    pub fn locked_out(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let entries = self.entries();
        let until = entries.get(&canonical(ip))?.locked_until?;
        let left = until.checked_duration_since(now)?;
        Some(left.as_secs().div_ceil(60).max(1))
    }

    /// Records a failed attempt from `ip` at `now`.
    pub fn failure(&self, ip: IpAddr, now: Instant, metrics: &RelayMetrics) -> Failure {
        RelayMetrics::count(&metrics.auth_failures);
        let mut entries = self.entries();
        if entries.len() > 100_000 {
            let period = self.period;
            entries.retain(|_, e| now.saturating_duration_since(e.first) < period);
        }
        let entry = entries.entry(canonical(ip)).or_insert(Entry {
            failures: 0,
            first: now,
            locked_until: None,
        });
        if now.saturating_duration_since(entry.first) >= self.period {
            *entry = Entry {
                failures: 0,
                first: now,
                locked_until: None,
            };
        }
        entry.failures += 1;
        let delay = self.step * entry.failures.min(5);
        let locked_out_minutes = if entry.failures >= self.max_failures {
            entry.locked_until = Some(now + self.period);
            entry.first = now;
            RelayMetrics::count(&metrics.lockouts);
            log::warn!(
                "smtp: client {ip} locked out for {} minutes after {} failed AUTH attempts",
                self.period.as_secs().div_ceil(60),
                entry.failures
            );
            Some(self.period.as_secs().div_ceil(60).max(1))
        } else {
            log::info!("smtp: failed AUTH from {ip} ({} so far)", entry.failures);
            None
        };
        Failure {
            delay,
            locked_out_minutes,
        }
    }

    /// A successful attempt from `ip` clears its record.
    pub fn success(&self, ip: IpAddr, metrics: &RelayMetrics) {
        RelayMetrics::count(&metrics.auth_successes);
        self.entries().remove(&canonical(ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_slow_down_then_lock_out_then_expire() {
        let guard = AuthGuard::new(3, Duration::from_secs(900), Duration::from_secs(1));
        let m = RelayMetrics::default();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(guard.failure(ip, t0, &m).delay, Duration::from_secs(1));
        assert_eq!(guard.failure(ip, t0, &m).delay, Duration::from_secs(2));
        assert_eq!(guard.locked_out(ip, t0), None);
        let third = guard.failure(ip, t0, &m);
        assert_eq!(third.locked_out_minutes, Some(15));
        assert_eq!(guard.locked_out(ip, t0 + Duration::from_secs(60)), Some(14));
        assert_eq!(
            guard.locked_out("::ffff:10.0.0.9".parse().unwrap(), t0),
            Some(15)
        );
        assert_eq!(guard.locked_out("10.0.0.8".parse().unwrap(), t0), None);
        assert_eq!(guard.locked_out(ip, t0 + Duration::from_secs(901)), None);
        assert_eq!(m.lockouts.load(Ordering::Relaxed), 1);
        assert_eq!(m.auth_failures.load(Ordering::Relaxed), 3);
        assert!(m.to_prometheus().contains("mailhost_smtp_lockouts_total 1"));
    }

    #[test]
    fn success_clears() {
        let guard = AuthGuard::new(2, Duration::from_secs(900), Duration::from_secs(1));
        let m = RelayMetrics::default();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let t0 = Instant::now();
        guard.failure(ip, t0, &m);
        guard.success(ip, &m);
        assert_eq!(guard.failure(ip, t0, &m).locked_out_minutes, None);
    }
}
