//! Places in line and honest wait estimates.
//!
//! A student's place is the distance between their order key and the room's
//! serving mark. That distance also counts tickets ahead that will be skipped
//! as abandoned, so it can only overstate the wait; the estimate is divided
//! by the *measured* speed of the mark (which includes those skips), so the
//! two errors cancel out rather than add up. Estimates are ranges, because a
//! single number promises a precision nobody has.

use std::collections::VecDeque;
use std::time::Duration;

/// Measures how fast a room's serving mark moves, over a sliding window.
#[derive(Debug, Clone)]
pub struct RateMeter {
    window: Duration,
    samples: VecDeque<(Duration, u64)>,
}

/// Below this span of samples the measurement is noise.
const MIN_SPAN: Duration = Duration::from_secs(3);

/// At most this many samples are kept, whatever the refresh rate.
const MAX_SAMPLES: usize = 256;

impl RateMeter {
    /// A meter averaging over `window`.
    pub fn new(window: Duration) -> RateMeter {
        RateMeter {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Records the mark seen at `at` (a monotonic instant).
    pub fn record(&mut self, at: Duration, mark: u64) {
        if self.samples.back().is_some_and(|&(_, m)| mark < m) {
            // The mark never goes back; a smaller one means a reset round.
            self.samples.clear();
        }
        // Samples closer than a window/MAX_SAMPLES apart add nothing but memory.
        let spacing = self.window / MAX_SAMPLES as u32;
        if let Some(&(t, _)) = self.samples.back() {
            if at.saturating_sub(t) < spacing {
                if let Some(last) = self.samples.back_mut() {
                    last.1 = mark;
                }
                return;
            }
        }
        self.samples.push_back((at, mark));
        while self.samples.len() > MAX_SAMPLES
            || self
                .samples
                .front()
                .is_some_and(|&(t, _)| at.saturating_sub(t) > self.window)
        {
            self.samples.pop_front();
        }
    }

    /// Forgets every sample: what comes next is a new measurement.
    pub fn reset(&mut self) {
        self.samples.clear();
    }

    /// How long the samples kept span: how long the mark has been measured
    /// moving without a reset, up to the window.
    pub fn span(&self) -> Duration {
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, _)), Some(&(t1, _))) => t1.saturating_sub(t0),
            _ => Duration::ZERO,
        }
    }

    /// Mark advance per minute over the window, once it spans long enough.
    pub fn per_min(&self) -> Option<f64> {
        let (&(t0, m0), &(t1, m1)) = (self.samples.front()?, self.samples.back()?);
        let span = t1.saturating_sub(t0);
        if span < MIN_SPAN {
            return None;
        }
        Some((m1 - m0) as f64 * 60.0 / span.as_secs_f64())
    }
}

/// A wait-time range in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Estimate {
    pub min_secs: u64,
    pub max_secs: u64,
    /// The speed behind the range is not known, only its bounds (an
    /// automatic pace before the workers were measured): the range runs
    /// from the fastest the room may go to the slowest, and the page says
    /// it is rough.
    pub rough: bool,
}

impl Estimate {
    /// The wait for `ahead` places at `per_min` admissions a minute, or
    /// `None` when nothing is moving (paused, or every seat busy).
    pub fn new(ahead: u64, per_min: f64) -> Option<Estimate> {
        Estimate::between(ahead, per_min, per_min).map(|e| Estimate { rough: false, ..e })
    }

    /// The wait for `ahead` places when the room admits somewhere between
    /// `slowest` and `fastest` a minute and nothing tells where: the range
    /// from the wait at the fastest to the wait at the slowest, marked
    /// rough (the bounds in either order). `None` when either is no speed
    /// at all.
    pub fn between(ahead: u64, fastest: f64, slowest: f64) -> Option<Estimate> {
        let valid = |r: f64| r.is_finite() && r > 0.0;
        if !(valid(fastest) && valid(slowest)) {
            return None;
        }
        let wait = |per_min: f64| ahead as f64 * 60.0 / per_min;
        // ±20 % around the speed (skipped places move the mark faster than
        // admissions, a tick admits in steps), and never "0 to 0" while
        // waiting.
        let min_secs = (wait(fastest.max(slowest)) * 0.8).floor() as u64;
        let max_secs = ((wait(slowest.min(fastest)) * 1.25).ceil() as u64).max(min_secs + 1);
        Some(Estimate {
            min_secs,
            max_secs,
            rough: true,
        })
    }
}

impl Estimate {
    /// The range as the student will live it: an admission shows on their
    /// page at the next poll, up to `poll` later, so the top of the range
    /// moves by that much. Near the front of the line, where the wait is a
    /// few seconds, this is most of it.
    pub fn until_seen(self, poll: Duration) -> Estimate {
        Estimate {
            max_secs: self.max_secs + poll.as_secs_f64().ceil() as u64,
            ..self
        }
    }
}

/// The speed to estimate with: the measured one, but never faster than the
/// configured rate (when an admin lowers the rate, the estimate must grow at
/// once, not after the window has caught up).
pub fn effective_rate(measured: Option<f64>, configured_per_min: u32) -> f64 {
    let configured = f64::from(configured_per_min);
    match measured {
        Some(m) => m.min(configured),
        None => configured,
    }
}

/// Places ahead of `order_key` when everything up to `serving_mark` has been
/// decided.
pub fn ahead(order_key: u64, serving_mark: u64) -> u64 {
    order_key.saturating_sub(serving_mark).saturating_sub(1)
}

/// How far along a student is, from the mark when they joined to their key.
pub fn progress(order_key: u64, mark_at_join: u64, serving_mark: u64) -> f64 {
    let total = order_key.saturating_sub(mark_at_join);
    if total == 0 {
        return 1.0;
    }
    (serving_mark.saturating_sub(mark_at_join) as f64 / total as f64).clamp(0.0, 1.0)
}

/// When a waiting client should poll next: often near the front, rarely far
/// back (a tenth of the expected wait), spread by `jitter` in `[0, 1)` so
/// thousands of clients that joined in the same second do not poll in step.
pub fn poll_interval(
    estimate: Option<Estimate>,
    min: Duration,
    max: Duration,
    jitter: f64,
) -> Duration {
    let base = match estimate {
        Some(e) => Duration::from_secs(e.min_secs / 10),
        None => max / 2,
    }
    .clamp(min, max);
    let factor = 0.8 + 0.4 * jitter.clamp(0.0, 1.0);
    // In whole milliseconds: `Duration::mul_f64` checks and rounds in
    // nanoseconds, and this runs on every poll.
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let jittered = (ms(base) as f64 * factor) as u64;
    Duration::from_millis(jittered.max(ms(min).saturating_mul(4) / 5).min(ms(max)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn measures_the_mark_speed() {
        let mut m = RateMeter::new(S(60));
        m.record(S(0), 100);
        assert_eq!(m.per_min(), None);
        m.record(S(1), 110);
        assert_eq!(m.per_min(), None, "one second is too short to trust");
        for t in 2..=30 {
            m.record(S(t), 100 + 10 * t);
        }
        let r = m.per_min().unwrap();
        assert!((r - 600.0).abs() < 1e-6, "{r}");
        assert_eq!(m.span(), S(30));
        // The window slides: after 60 s of standstill the speed is zero.
        for t in 31..=100 {
            m.record(S(t), 400);
        }
        assert_eq!(m.per_min(), Some(0.0));
    }

    #[test]
    fn a_reset_mark_restarts_the_measurement() {
        let mut m = RateMeter::new(S(60));
        m.record(S(0), 100);
        m.record(S(10), 200);
        m.record(S(11), 5);
        assert_eq!(m.per_min(), None);
        assert_eq!(m.span(), S(0));
        m.reset();
        assert_eq!(m.span(), S(0));
    }

    #[test]
    fn estimates_are_ranges_and_grow_when_the_rate_drops() {
        let e = Estimate::new(600, 600.0).unwrap();
        assert_eq!(
            e,
            Estimate {
                min_secs: 48,
                max_secs: 75,
                rough: false,
            }
        );
        let slower = Estimate::new(600, effective_rate(Some(600.0), 60)).unwrap();
        assert!(slower.min_secs > e.max_secs);
        assert_eq!(Estimate::new(10, 0.0), None);
        assert_eq!(
            Estimate::new(0, 600.0),
            Some(Estimate {
                min_secs: 0,
                max_secs: 1,
                rough: false,
            })
        );
    }

    #[test]
    fn a_rough_range_runs_from_the_fastest_pace_to_the_slowest() {
        // 600 ahead, somewhere between 6,000 and 600 a minute: from 80 % of
        // 6 s to 125 % of 60 s.
        let e = Estimate::between(600, 6_000.0, 600.0).unwrap();
        assert_eq!(
            e,
            Estimate {
                min_secs: 4,
                max_secs: 75,
                rough: true,
            }
        );
        // The bounds in either order; one speed is the firm range, marked rough.
        assert_eq!(Estimate::between(600, 600.0, 6_000.0), Some(e));
        let one = Estimate::between(600, 600.0, 600.0).unwrap();
        assert!(one.rough);
        assert_eq!(
            (one.min_secs, one.max_secs),
            (48, 75),
            "the same range as Estimate::new"
        );
        assert!(!Estimate::new(600, 600.0).unwrap().rough);
        assert_eq!(Estimate::between(600, 6_000.0, 0.0), None);
        assert_eq!(Estimate::between(600, f64::NAN, 600.0), None);
        // The poll that shows the admission widens it as any range.
        assert!(e.until_seen(Duration::from_secs(2)).rough);
    }

    #[test]
    fn the_range_covers_the_poll_that_shows_the_admission() {
        let e = Estimate::new(10, 600.0).unwrap();
        let seen = e.until_seen(Duration::from_millis(2_400));
        assert_eq!(seen.min_secs, e.min_secs);
        assert_eq!(seen.max_secs, e.max_secs + 3);
    }

    #[test]
    fn places_and_progress() {
        assert_eq!(ahead(11, 10), 0);
        assert_eq!(ahead(15, 10), 4);
        assert_eq!(ahead(5, 10), 0);
        assert_eq!(progress(20, 10, 15), 0.5);
        assert_eq!(progress(20, 10, 25), 1.0);
        assert_eq!(progress(10, 10, 0), 1.0);
    }

    #[test]
    fn polls_often_near_the_front_and_rarely_far_back() {
        let (min, max) = (S(2), S(15));
        let near = poll_interval(Estimate::new(3, 600.0), min, max, 0.5);
        let far = poll_interval(Estimate::new(100_000, 600.0), min, max, 0.5);
        assert_eq!(near, S(2));
        assert_eq!(far, S(15));
    }

    proptest! {
        #[test]
        fn poll_interval_stays_in_bounds(
            ahead in 0u64..10_000_000, rate in 0.0f64..1e6, jitter in 0.0f64..1.0,
            min_ms in 100u64..10_000, span_ms in 0u64..60_000,
        ) {
            let (min, max) = (Duration::from_millis(min_ms), Duration::from_millis(min_ms + span_ms));
            let d = poll_interval(Estimate::new(ahead, rate), min, max, jitter);
            // Whole milliseconds: at most one below 0.8 of the minimum.
            prop_assert!(d + Duration::from_millis(1) >= min.mul_f64(0.8) && d <= max, "{d:?}");
        }

        #[test]
        fn estimate_is_ordered(ahead in 0u64..10_000_000, rate in 0.001f64..1e6) {
            let e = Estimate::new(ahead, rate).unwrap();
            prop_assert!(e.min_secs < e.max_secs);
        }

        #[test]
        fn a_rough_range_holds_every_firm_range_between_its_bounds(
            ahead in 0u64..10_000_000, slow in 0.001f64..1e6, faster in 1.0f64..100.0, at in 0.0f64..1.0,
        ) {
            let fast = slow * faster;
            let rough = Estimate::between(ahead, fast, slow).unwrap();
            let firm = Estimate::new(ahead, slow + (fast - slow) * at).unwrap();
            prop_assert!(rough.min_secs <= firm.min_secs && firm.max_secs <= rough.max_secs,
                "{rough:?} {firm:?}");
        }
    }
}
