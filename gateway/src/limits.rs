//! Per-client rate limits (GCRA, via `governor`) on join, poll and command
//! routes: a flooder is slowed with 429 + Retry-After without touching
//! anyone else's budget.
//!
//! Keys are client IPs and student ids. Keyed limiters grow with the number
//! of keys they have seen, so a sweeper drops idle keys every minute.

use crate::error::ApiError;
use enrollment::StudentId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The gateway's rate limiters.
#[derive(Debug)]
pub struct Limits {
    ip: DefaultKeyedRateLimiter<IpAddr>,
    student: DefaultKeyedRateLimiter<StudentId>,
    clock: DefaultClock,
}

fn quota(per_sec: u32, burst: u32) -> Quota {
    let per_sec = NonZeroU32::new(per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_sec).allow_burst(burst)
}

impl Limits {
    pub fn new(ip_rate: u32, ip_burst: u32, student_rate: u32, student_burst: u32) -> Limits {
        Limits {
            ip: RateLimiter::keyed(quota(ip_rate, ip_burst)),
            student: RateLimiter::keyed(quota(student_rate, student_burst)),
            clock: DefaultClock::default(),
        }
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.ip
            .check_key(&ip)
            .map_err(|n| self.limited(n.wait_time_from(self.clock.now())))
    }

    pub fn check_student(&self, student: StudentId) -> Result<(), ApiError> {
        self.student
            .check_key(&student)
            .map_err(|n| self.limited(n.wait_time_from(self.clock.now())))
    }

    fn limited(&self, wait: Duration) -> ApiError {
        ApiError::RateLimited {
            retry_after: wait.max(Duration::from_secs(1)),
        }
    }

    fn sweep(&self) {
        self.ip.retain_recent();
        self.student.retain_recent();
        self.ip.shrink_to_fit();
        self.student.shrink_to_fit();
    }
}

/// Drops idle keys every minute until `shutdown`.
pub async fn sweep(limits: Arc<Limits>, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = interval.tick() => limits.sweep(),
            _ = shutdown.cancelled() => return,
        }
    }
}
