//! Counters of one process's engine, for `/metrics`: sends by outcome, retries, throttles,
//! limit waits, and per-provider latency. No addresses or subjects, ever.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The engine's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    sent: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    unknown: AtomicU64,
    throttled: AtomicU64,
    limit_waits: AtomicU64,
    reconciled: AtomicU64,
    latency: Mutex<BTreeMap<String, Histogram>>,
}

/// A latency histogram of one provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`].
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    /// All observations.
    pub count: u64,
    /// Their sum in seconds.
    pub sum: f64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Attempts the provider accepted.
    pub sent: u64,
    /// Attempts that ended the email failed.
    pub failed: u64,
    /// Attempts put back to be tried again.
    pub retried: u64,
    /// Attempts whose outcome is in doubt.
    pub unknown: u64,
    /// Attempts the provider throttled.
    pub throttled: u64,
    /// Times a sending limit held an email back.
    pub limit_waits: u64,
    /// Unknown emails settled by asking the provider.
    pub reconciled: u64,
    /// Send latency by provider.
    pub latency: BTreeMap<String, Histogram>,
}

/// How an attempt ended, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counted {
    Sent,
    Failed,
    Retried { throttled: bool },
    Unknown,
}

impl Metrics {
    pub(crate) fn attempt(&self, provider: &str, outcome: Counted, took: Duration) {
        match outcome {
            Counted::Sent => &self.sent,
            Counted::Failed => &self.failed,
            Counted::Retried { .. } => &self.retried,
            Counted::Unknown => &self.unknown,
        }
        .fetch_add(1, Ordering::Relaxed);
        if let Counted::Retried { throttled: true } = outcome {
            self.throttled.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = took.as_secs_f64();
        let mut latency = self
            .latency
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let histogram = latency.entry(provider.to_string()).or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    pub(crate) fn limit_wait(&self) {
        self.limit_waits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reconciled(&self) {
        self.reconciled.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            unknown: self.unknown.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
            limit_waits: self.limit_waits.load(Ordering::Relaxed),
            reconciled: self.reconciled.load(Ordering::Relaxed),
            latency: self
                .latency
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.attempt("graph-email", Counted::Sent, Duration::from_millis(30));
        metrics.attempt(
            "graph-email",
            Counted::Retried { throttled: true },
            Duration::from_millis(300),
        );
        let snap = metrics.snapshot();
        assert_eq!((snap.sent, snap.retried, snap.throttled), (1, 1, 1));
        let h = &snap.latency["graph-email"];
        assert_eq!(h.count, 2);
        assert_eq!(h.buckets[2], 0); // <= 25 ms
        assert_eq!(h.buckets[3], 1); // <= 50 ms
        assert_eq!(h.buckets[11], 2); // <= 30 s
    }
}
