//! What the simulated students observed: counters for the progress line,
//! HDR latency histograms (whole run and per sampling interval), and
//! errors by kind.
//!
//! Students record from many tasks at once. The histograms sit behind std
//! mutexes: a record is a few nanoseconds of work under the lock, nothing
//! awaits while holding it, and on two cores contention is negligible next
//! to the HTTP round trip being measured.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The latencies the report shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// `POST /api/rounds/{id}/join`.
    Join,
    /// `GET /api/queue/status`.
    Poll,
    /// `POST /api/enroll` and `POST /api/drop` (until the 202).
    Enroll,
    /// From sending an enroll or drop to seeing its outcome.
    Decision,
}

const KINDS: usize = 4;

impl Latency {
    fn index(self) -> usize {
        self as usize
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 10 min at 3 significant digits; the bounds are constants, so
    // construction cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"))
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    let ms = |us: u64| us as f64 / 1000.0;
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        p50_ms: ms(h.value_at_quantile(0.50)),
        p95_ms: ms(h.value_at_quantile(0.95)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
    }
}

/// Shared by every student task, the sampler and the progress line.
#[derive(Debug)]
pub struct Stats {
    pub joined: AtomicU64,
    pub waiting: AtomicU64,
    pub admitted: AtomicU64,
    /// Students whose every request has an outcome.
    pub decided: AtomicU64,
    /// Students who stopped without being served (skipped, closed, errors).
    pub gave_up: AtomicU64,
    /// Commands answered 202.
    pub accepted: AtomicU64,
    pub http_5xx: AtomicU64,
    pub requests: AtomicU64,
    /// Students who stopped polling with their place still open: their
    /// retries ran out or the run's deadline came.
    pub stopped_waiting: AtomicU64,
    /// The admission rate the last answer carrying one said (0: none yet).
    pub pace_per_min: AtomicU64,
    whole: [Mutex<Histogram<u64>>; KINDS],
    interval: [Mutex<Histogram<u64>>; KINDS],
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            joined: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
            admitted: AtomicU64::new(0),
            decided: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            http_5xx: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            stopped_waiting: AtomicU64::new(0),
            pace_per_min: AtomicU64::new(0),
            whole: std::array::from_fn(|_| Mutex::new(new_histogram())),
            interval: std::array::from_fn(|_| Mutex::new(new_histogram())),
            errors: Mutex::new(BTreeMap::new()),
        }
    }
}

/// A poisoned lock only means a student task panicked mid-record; the
/// histogram itself is still valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Stats {
    pub fn record(&self, kind: Latency, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        lock(&self.whole[kind.index()]).saturating_record(us);
        lock(&self.interval[kind.index()]).saturating_record(us);
    }

    /// Counts an error of `kind` (e.g. `join 503`, `poll timeout`).
    pub fn error(&self, kind: String) {
        *lock(&self.errors).entry(kind).or_default() += 1;
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        lock(&self.errors).clone()
    }

    pub fn total_errors(&self) -> u64 {
        lock(&self.errors).values().sum()
    }

    pub fn percentiles(&self, kind: Latency) -> Percentiles {
        percentiles(&lock(&self.whole[kind.index()]))
    }

    /// Percentiles since the last call, then starts a new interval.
    pub fn take_interval(&self, kind: Latency) -> Percentiles {
        let mut h = lock(&self.interval[kind.index()]);
        let p = percentiles(&h);
        h.reset();
        p
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_in_milliseconds_and_intervals_reset() {
        let s = Stats::default();
        for ms in 1..=100 {
            s.record(Latency::Poll, Duration::from_millis(ms));
        }
        let p = s.percentiles(Latency::Poll);
        assert_eq!(p.count, 100);
        assert!((p.p50_ms - 50.0).abs() < 0.1, "{p:?}");
        assert!((p.p99_ms - 99.0).abs() < 0.1, "{p:?}");
        assert_eq!(s.take_interval(Latency::Poll).count, 100);
        assert_eq!(s.take_interval(Latency::Poll).count, 0);
        assert_eq!(s.percentiles(Latency::Poll).count, 100);
        assert_eq!(s.percentiles(Latency::Join).count, 0);
    }
}
