//! Per-client rate limits (GCRA, via `governor`): a flooder is slowed with
//! 429 + Retry-After without touching anyone else's budget.
//!
//! Who is limited by what:
//! - Traffic that carries a valid session, queue token or pass is limited
//!   per student ([`Limits::check_student`], and [`Limits::check_reads`]
//!   for result reads). Never per address: a campus, a dormitory or a
//!   mobile carrier puts hundreds of students behind one public IP.
//! - Anonymous traffic (sign-in, joins with credentials, forged or expired
//!   tokens) meets a per-address ceiling ([`Limits::check_ip`]) sized for a
//!   whole campus behind one address. The ceiling is for the deployment,
//!   not per pod: each gateway charges a request `n` cells of the full
//!   quota, `n` being the gateways alive ([`Limits::share_among`]), which
//!   is its `1/n` share when the load balancer spreads an address's
//!   requests over the pods (round robin; with address-sticky routing, set
//!   the ceiling per pod instead).
//!
//! Keyed limiters grow with the number of keys they have seen, so a sweeper
//! drops idle keys every minute.

use crate::error::ApiError;
use enrollment::StudentId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The gateway's rate limiters.
#[derive(Debug)]
pub struct Limits {
    /// The deployment's per-address quota; each request costs `gateways`.
    ip: DefaultKeyedRateLimiter<IpAddr>,
    /// Gateways sharing the per-address ceiling.
    gateways: AtomicU64,
    student: StudentLimiter,
    reads: StudentLimiter,
    clock: DefaultClock,
}

/// A per-student limiter. Student ids come from tokens this system signed
/// (nobody picks them), so its map hashes with foldhash, seeded per
/// process, not SipHash: every poll is checked here.
type StudentLimiter = DefaultKeyedRateLimiter<
    StudentId,
    governor::middleware::NoOpMiddleware<<DefaultClock as governor::clock::Clock>::Instant>,
    foldhash::fast::RandomState,
>;

fn student_limiter(quota: Quota) -> StudentLimiter {
    RateLimiter::dashmap_with_hasher(quota, foldhash::fast::RandomState::default())
}

fn quota(per_sec: u32, burst: u32) -> Quota {
    let per_sec = NonZeroU32::new(per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_sec).allow_burst(burst)
}

impl Limits {
    /// `ip_rate`/`ip_burst`: the per-address ceiling of the whole
    /// deployment; `student_rate`/`student_burst`: each student's budget
    /// (result reads get twice as much, apart).
    pub fn new(ip_rate: u32, ip_burst: u32, student_rate: u32, student_burst: u32) -> Limits {
        Limits {
            ip: RateLimiter::keyed(quota(ip_rate, ip_burst)),
            gateways: AtomicU64::new(1),
            student: student_limiter(quota(student_rate, student_burst)),
            reads: student_limiter(quota(
                student_rate.saturating_mul(2),
                student_burst.saturating_mul(2),
            )),
            clock: DefaultClock::default(),
        }
    }

    /// Sets how many gateways share the per-address ceiling. The buckets
    /// keep their state: a rolling deploy hands no flooder a fresh burst.
    pub fn share_among(&self, gateways: u64) {
        self.gateways.store(gateways.max(1), Ordering::Relaxed);
    }

    /// The per-address ceiling, for anonymous traffic only.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        let n = u32::try_from(self.gateways.load(Ordering::Relaxed)).unwrap_or(u32::MAX);
        let cost = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
        match self.ip.check_key_n(&ip, cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(self.limited(not_until.wait_time_from(self.clock.now()))),
            // More gateways than the burst: each may still let one through
            // a second, at the quota's pace.
            Err(_) => self
                .ip
                .check_key(&ip)
                .map_err(|n| self.limited(n.wait_time_from(self.clock.now()))),
        }
    }

    /// One student's budget for joins, polls and commands.
    pub fn check_student(&self, student: StudentId) -> Result<(), ApiError> {
        self.student
            .check_key(&student)
            .map_err(|n| self.limited(n.wait_time_from(self.clock.now())))
    }

    /// One student's budget for reading results: apart from the command
    /// budget, so a page watching a long backlog cannot lock its owner out
    /// of enrolling.
    pub fn check_reads(&self, student: StudentId) -> Result<(), ApiError> {
        self.reads
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
        self.ip.shrink_to_fit();
        for limiter in [&self.student, &self.reads] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_gateway_enforces_its_share_of_the_ceiling() {
        let limits = Limits::new(4, 4, 1, 1);
        let ip = IpAddr::from([10, 0, 0, 1]);
        limits.share_among(2);
        assert!(limits.check_ip(ip).is_ok());
        assert!(limits.check_ip(ip).is_ok());
        assert!(limits.check_ip(ip).is_err(), "half of a burst of 4");
    }

    #[test]
    fn result_reads_do_not_spend_the_command_budget() {
        let limits = Limits::new(1, 1, 1, 1);
        let s = StudentId(7);
        assert!(limits.check_reads(s).is_ok());
        assert!(limits.check_reads(s).is_ok());
        assert!(limits.check_student(s).is_ok());
        assert!(limits.check_student(s).is_err());
    }
}
