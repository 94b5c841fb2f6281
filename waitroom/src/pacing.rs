//! Admission pacing with GCRA (the generic cell rate algorithm).
//!
//! The admission leader asks a [`Pacer`] each tick how many students it may
//! admit. GCRA keeps a single number, the theoretical arrival time (TAT) of
//! the next admission, instead of a bucket that must be refilled, so the
//! answer depends only on the instant passed in: tests drive it with any
//! clock they like, and a leader that misses a tick loses nothing beyond the
//! burst tolerance.
//!
//! Time is a [`Duration`] since an arbitrary, monotonic epoch chosen by the
//! caller (the leader uses the tokio clock, so paused-time tests are exact).

use std::time::Duration;

const NANOS_PER_MIN: u128 = 60_000_000_000;

/// Paces admissions at a rate per minute with a bounded burst.
#[derive(Debug, Clone)]
pub struct Pacer {
    per_min: u32,
    /// Emission interval `T`: nanoseconds between two admissions.
    interval: u128,
    /// Burst tolerance `τ`: how far ahead of schedule admissions may run.
    tolerance: u128,
    /// Theoretical arrival time of the next admission.
    tat: u128,
}

impl Pacer {
    /// A pacer admitting `per_min` students a minute. `burst` is how much
    /// admission may run ahead of schedule; the leader passes its tick length,
    /// so that each tick admits `rate × tick` and a late tick catches up.
    pub fn new(per_min: u32, burst: Duration) -> Pacer {
        Pacer {
            per_min,
            interval: interval(per_min),
            tolerance: burst.as_nanos(),
            tat: 0,
        }
    }

    /// The configured rate.
    pub fn per_min(&self) -> u32 {
        self.per_min
    }

    /// Changes the rate from `now` on. Capacity already earned is not carried
    /// over at the old rate: a leader that was crawling at 1/min must not
    /// wait a minute before a raised rate takes effect.
    pub fn set_rate(&mut self, per_min: u32, now: Duration) {
        if per_min != self.per_min {
            self.per_min = per_min;
            self.interval = interval(per_min);
            self.tat = self.tat.min(now.as_nanos());
        }
    }

    /// Grants up to `want` admissions at `now` and books them. A rate of zero
    /// grants nothing.
    pub fn grant(&mut self, now: Duration, want: u64) -> u64 {
        if self.interval == 0 || want == 0 {
            return 0;
        }
        let now = now.as_nanos();
        let start = self.tat.max(now);
        let horizon = now + self.tolerance;
        if start > horizon {
            return 0;
        }
        let conforming = (horizon - start) / self.interval + 1;
        let granted = u64::try_from(conforming).unwrap_or(u64::MAX).min(want);
        self.tat = start + u128::from(granted) * self.interval;
        granted
    }

    /// Returns `n` granted admissions that could not be used (too few live
    /// tickets, or the max-active cap), so they are not counted against the
    /// rate.
    pub fn refund(&mut self, n: u64) {
        self.tat = self.tat.saturating_sub(u128::from(n) * self.interval);
    }
}

fn interval(per_min: u32) -> u128 {
    if per_min == 0 {
        0
    } else {
        // Rounded up, so that truncation never admits faster than asked.
        NANOS_PER_MIN.div_ceil(u128::from(per_min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TICK: Duration = Duration::from_millis(250);

    fn run(p: &mut Pacer, ticks: u64, want: u64) -> Vec<u64> {
        (0..ticks).map(|i| p.grant(TICK * i as u32, want)).collect()
    }

    #[test]
    fn admits_rate_times_tick_on_average() {
        let mut p = Pacer::new(600, TICK);
        let grants = run(&mut p, 240, u64::MAX); // one simulated minute
        let total: u64 = grants.iter().sum();
        // 600/min for 60 s, plus at most the initial burst of one tick.
        assert!((600..=600 + 4).contains(&total), "admitted {total}");
        assert!(
            grants.iter().all(|&g| g <= 4),
            "no tick beyond rate × tick + 1: {grants:?}"
        );
    }

    #[test]
    fn zero_rate_admits_nobody_and_resumes_without_a_stampede() {
        let mut p = Pacer::new(0, TICK);
        assert_eq!(run(&mut p, 100, u64::MAX).iter().sum::<u64>(), 0);
        let now = Duration::from_secs(100);
        p.set_rate(60, now);
        // One admission a second, never the backlog of the paused time.
        assert_eq!(p.grant(now, u64::MAX), 1);
        assert_eq!(p.grant(now + Duration::from_millis(500), u64::MAX), 0);
        assert_eq!(p.grant(now + Duration::from_millis(1000), u64::MAX), 1);
    }

    #[test]
    fn raising_the_rate_takes_effect_at_once() {
        let mut p = Pacer::new(1, TICK);
        assert_eq!(p.grant(Duration::ZERO, u64::MAX), 1);
        let now = Duration::from_secs(1);
        assert_eq!(p.grant(now, u64::MAX), 0, "next slot is a minute away");
        p.set_rate(6000, now);
        assert!(p.grant(now, u64::MAX) > 0);
    }

    #[test]
    fn refunds_return_unused_capacity() {
        let mut p = Pacer::new(600, Duration::ZERO);
        assert_eq!(p.grant(Duration::ZERO, 1), 1);
        assert_eq!(p.grant(Duration::ZERO, 1), 0);
        p.refund(1);
        assert_eq!(p.grant(Duration::ZERO, 1), 1);
    }

    #[test]
    fn missed_ticks_catch_up_only_within_the_burst() {
        let mut p = Pacer::new(600, TICK);
        assert_eq!(p.grant(Duration::ZERO, u64::MAX), 3);
        // The leader stalls for ten seconds: it may catch up one tick, not 100.
        let g = p.grant(Duration::from_secs(10), u64::MAX);
        assert_eq!(g, 3);
    }

    proptest! {
        #[test]
        fn never_exceeds_rate_plus_burst(
            per_min in 1u32..200_000,
            tick_ms in 10u64..2_000,
            ticks in 1u64..400,
            want in 1u64..1_000,
        ) {
            let tick = Duration::from_millis(tick_ms);
            let mut p = Pacer::new(per_min, tick);
            let mut total: u128 = 0;
            for i in 0..ticks {
                let now = tick * u32::try_from(i).unwrap();
                total += u128::from(p.grant(now, want));
                // Over [0, now], at most rate × elapsed + burst + 1 admissions.
                let elapsed = now.as_nanos();
                let bound = (elapsed + tick.as_nanos()) * u128::from(per_min) / NANOS_PER_MIN + 1;
                prop_assert!(total <= bound, "{} > {} at tick {}", total, bound, i);
            }
        }

        #[test]
        fn keeps_up_with_the_rate_when_demand_is_high(per_min in 60u32..100_000, tick_ms in 50u64..1_000) {
            let tick = Duration::from_millis(tick_ms);
            let mut p = Pacer::new(per_min, tick);
            let ticks = 60_000 / tick_ms; // one minute
            let total: u64 = (0..ticks)
                .map(|i| p.grant(tick * u32::try_from(i).unwrap(), u64::MAX))
                .sum();
            let expected = u64::from(per_min) * ticks * tick_ms / 60_000;
            prop_assert!(total + 1 >= expected, "admitted {} of {}", total, expected);
        }
    }
}
