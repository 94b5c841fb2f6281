//! The automatic pace: an admission rate that follows the workers.
//!
//! In automatic mode the registrar sets a floor, a ceiling and targets for
//! the command backlog (messages waiting in RabbitMQ) and the decision
//! latency (issued to decided). Every few seconds the leader feeds what it
//! measured into [`next_pace`], which answers the rate to admit at and why.
//!
//! The controller is additive-increase, multiplicative-decrease with a dead
//! band, the shape TCP uses for the same problem (an unknown, moving
//! capacity downstream):
//!
//! - the *pressure* is the worse of backlog / target and latency / target,
//!   except that a backlog under half its target means the queue is
//!   drained: the latency, measured over the last seconds, then describes
//!   commands that waited in a queue that is gone, and only the backlog
//!   counts (admitting slower cannot shorten an empty queue);
//! - above `1 + BAND` the workers are behind; if the backlog is already
//!   shrinking (by more than a twentieth since the last step) the rate
//!   holds, the queue being worked off at it; otherwise it is cut to
//!   `rate × max(DECREASE, 1 / pressure)` (at most halved per step), never
//!   below the floor;
//! - below `1 - BAND` they keep up: the rate climbs by a tenth of
//!   (ceiling − floor) per step, never above the ceiling;
//! - inside the band, and whenever nothing could be measured, it holds.
//!
//! Cutting fast and climbing slowly is what keeps it from oscillating: one
//! bad reading costs one cut, and the climb back is gentle enough for the
//! backlog to show before the rate overshoots again.
//!
//! That is the rule while the workers' speed is unknown. Once the leader
//! has measured it ([`capacity_sample`], [`next_capacity`]), the rate aims
//! at that speed, less the backlog's excess worked off over
//! [`DRAIN_SECS`] (see `toward_capacity`).

use serde::Serialize;

/// A backlog smaller than the previous step's by more than this fraction
/// is shrinking: the rate holds instead of being cut (see [`next_pace`]).
pub const SHRINKING: f64 = 0.05;

/// A backlog under this fraction of its target counts as drained, and the
/// latency is not read (see [`next_pace`]).
pub const DRAINED: f64 = 0.5;

/// The dead band around the target, as a fraction of it.
pub const BAND: f64 = 0.2;
/// The deepest cut in one step: the rate is at most halved at once.
pub const DECREASE: f64 = 0.5;
/// Steps from the floor to the ceiling when the workers keep up.
pub const CLIMB_STEPS: u32 = 10;

/// What the registrar chose for a round in automatic mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AutoPace {
    /// Admissions per minute never go below this (the round keeps moving).
    pub floor: u32,
    /// ... nor above this.
    pub ceiling: u32,
    /// Decision latency (issued to decided) to hold, in milliseconds.
    pub target_latency_ms: u32,
    /// Commands waiting in the queue to hold.
    pub target_backlog: u32,
}

/// Why settings were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AutoPaceError {
    #[error("the floor must be at most the ceiling")]
    FloorAboveCeiling,
    #[error("the ceiling must be between 1 and 1000000 a minute")]
    Ceiling,
    #[error("the targets must be above zero")]
    Target,
}

impl AutoPace {
    /// The lowest and the highest rate the controller may set (a ceiling
    /// below the floor, which validation refuses, counts as the floor).
    pub fn bounds(&self) -> (u32, u32) {
        (self.floor, self.ceiling.max(self.floor))
    }

    /// Checks the settings an admin sent.
    pub fn validate(self) -> Result<AutoPace, AutoPaceError> {
        if self.ceiling == 0 || self.ceiling > 1_000_000 {
            return Err(AutoPaceError::Ceiling);
        }
        if self.floor > self.ceiling {
            return Err(AutoPaceError::FloorAboveCeiling);
        }
        if self.target_latency_ms == 0 || self.target_backlog == 0 {
            return Err(AutoPaceError::Target);
        }
        Ok(self)
    }
}

/// What the leader measured this step; `None` when it could not tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Signals {
    /// Commands ready in the queue.
    pub backlog: Option<u32>,
    /// A high percentile of decision latency over the last window, in ms.
    pub latency_ms: Option<u32>,
    /// The backlog at the previous step, when it was read.
    pub backlog_before: Option<u32>,
    /// Admissions a minute the workers were measured to keep up with
    /// ([`capacity_sample`]); `None` before any measurement.
    pub capacity: Option<u32>,
}

/// Why the rate is where it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaceReason {
    /// The backlog is above its target (the value is the backlog).
    Backlog,
    /// Decisions take longer than the target (the value is the latency, ms).
    Latency,
    /// The workers keep up: climbing, or at the ceiling.
    Healthy,
    /// Near the targets: holding.
    Steady,
    /// Nothing could be measured: holding.
    Unknown,
}

impl PaceReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaceReason::Backlog => "backlog",
            PaceReason::Latency => "latency",
            PaceReason::Healthy => "healthy",
            PaceReason::Steady => "steady",
            PaceReason::Unknown => "unknown",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<PaceReason> {
        [
            PaceReason::Backlog,
            PaceReason::Latency,
            PaceReason::Healthy,
            PaceReason::Steady,
            PaceReason::Unknown,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// Whether this reason means the workers are behind.
    pub fn workers_behind(self) -> bool {
        matches!(self, PaceReason::Backlog | PaceReason::Latency)
    }
}

/// One step of the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceStep {
    pub per_min: u32,
    pub reason: PaceReason,
    /// The measured value behind the reason (backlog or latency in ms).
    pub signal: Option<u64>,
}

/// The next admission rate from the `current` one, within the floor and
/// ceiling of `settings`, given what was measured.
pub fn next_pace(current: u32, settings: &AutoPace, signals: Signals) -> PaceStep {
    let (floor, ceiling) = settings.bounds();
    let current = current.clamp(floor, ceiling);
    let backlog = signals
        .backlog
        .map(|b| (f64::from(b) / f64::from(settings.target_backlog.max(1)), b));
    // A queue under half its target is drained: the latency window then
    // holds commands that waited in a queue that is gone, and admitting
    // slower cannot shorten an empty queue. The backlog alone decides.
    let drained = backlog.is_some_and(|(p, _)| p < DRAINED);
    let latency = signals.latency_ms.filter(|_| !drained).map(|l| {
        (
            f64::from(l) / f64::from(settings.target_latency_ms.max(1)),
            l,
        )
    });
    // The worse of the two pressures decides, and names the reason.
    let worst = match (backlog, latency) {
        (None, None) => {
            return PaceStep {
                per_min: current,
                reason: PaceReason::Unknown,
                signal: None,
            }
        }
        (Some((p, b)), None) => (p, PaceReason::Backlog, u64::from(b)),
        (None, Some((p, l))) => (p, PaceReason::Latency, u64::from(l)),
        (Some((pb, b)), Some((pl, l))) => {
            if pb >= pl {
                (pb, PaceReason::Backlog, u64::from(b))
            } else {
                (pl, PaceReason::Latency, u64::from(l))
            }
        }
    };
    let (pressure, behind, signal) = worst;
    if let (Some(c), Some((_, b))) = (signals.capacity, backlog) {
        // Decisions measured lately (undrained or not): the speed is alive.
        let decisions_seen = signals.latency_ms.is_some();
        return toward_capacity(current, settings, c, b, decisions_seen);
    }
    // The queue is being worked off at this rate: another cut would only
    // keep students waiting while it drains.
    let shrinking = match (signals.backlog, signals.backlog_before) {
        (Some(now), Some(before)) => f64::from(now) < f64::from(before) * (1.0 - SHRINKING),
        _ => false,
    };
    if pressure > 1.0 + BAND && shrinking {
        PaceStep {
            per_min: current,
            reason: behind,
            signal: Some(signal),
        }
    } else if pressure > 1.0 + BAND {
        // Constants, so the bounds are ordered: at most halved, at least a tenth off.
        let factor = (1.0 / pressure).clamp(DECREASE, 1.0 - BAND / 2.0);
        let cut = (f64::from(current) * factor).floor() as u32;
        PaceStep {
            per_min: cut.clamp(floor, ceiling),
            reason: behind,
            signal: Some(signal),
        }
    } else if pressure < 1.0 - BAND {
        let step = ((ceiling - floor) / CLIMB_STEPS).max(1);
        PaceStep {
            per_min: current.saturating_add(step).min(ceiling),
            reason: PaceReason::Healthy,
            signal: Some(signal),
        }
    } else {
        PaceStep {
            per_min: current,
            reason: PaceReason::Steady,
            signal: Some(signal),
        }
    }
}

/// With the workers' speed known, a backlog above its target is worked off
/// over about this long: the admission rate is the workers' speed less the
/// excess spread over these seconds.
pub const DRAIN_SECS: f64 = 10.0;

/// The step once the workers' speed is known: admit at that speed, less
/// what drains the backlog's excess over [`DRAIN_SECS`] (or more, by up to
/// the target over the same time, when the queue is short of its target).
/// A queued command is taken for one admission (most students send one
/// cart). The latency target becomes a backlog: at the measured speed,
/// `speed × latency target` commands queued are decided within it, so the
/// target is the smaller of that and the backlog target. Keeping up with
/// nothing decided lately, the rate climbs at least by the blind rule's
/// step; it never leaves [floor, ceiling].
///
/// Without the speed, halving from the ceiling reaches it only after
/// several steps while the backlog grows, and the climb after a drain is a
/// tenth of the range a step: the rate swings from the ceiling to the floor
/// and back within a surge, and no wait shown at any moment comes true.
/// The latency, a percentile over the last 15 s, is not cut on directly
/// here: it lags the queue by those 15 s, and cutting on it halved the
/// rate again and again after the queue was back at its target (seen on
/// the bench: a cycle of about 20 s between 1,000 and 14,000 a minute).
fn toward_capacity(
    current: u32,
    settings: &AutoPace,
    capacity: u32,
    backlog: u32,
    decisions_seen: bool,
) -> PaceStep {
    let (floor, ceiling) = settings.bounds();
    let target = aim(settings, capacity);
    let excess = f64::from(backlog) - target;
    let mut rate = f64::from(capacity) - excess * 60.0 / DRAIN_SECS;
    let pressure = f64::from(backlog) / target;
    let reason = if pressure > 1.0 + BAND {
        PaceReason::Backlog
    } else if pressure < 1.0 - BAND {
        // Keeping up with nothing decided lately: the speed cannot be
        // measured again (a speed read while the workers were down would
        // hold the rate at the floor), so climb at least as the blind rule
        // does. With decisions flowing the leader raises the speed to the
        // admissions they kept up with.
        if !decisions_seen {
            let step = ((ceiling - floor) / CLIMB_STEPS).max(1);
            rate = rate.max(f64::from(current.saturating_add(step)));
        }
        PaceReason::Healthy
    } else {
        PaceReason::Steady
    };
    let mut per_min = (rate.max(0.0).floor().min(f64::from(u32::MAX)) as u32).clamp(floor, ceiling);
    // Within a few percent the rate holds: a change every step would log,
    // count and tell students of a change nobody could see.
    if f64::from(per_min.abs_diff(current)) < f64::from(current) * HOLD_WITHIN {
        per_min = current;
    }
    PaceStep {
        per_min,
        reason,
        signal: Some(u64::from(backlog)),
    }
}

/// With the workers' speed known, a new rate closer than this fraction to
/// the current one is not taken.
pub const HOLD_WITHIN: f64 = 0.03;

/// The backlog aimed at with the workers' speed known: the registrar's
/// target, or fewer when at that speed the latency target is reached first
/// (`speed x target latency` commands are decided within it); at least 1.
pub fn aim(settings: &AutoPace, capacity: u32) -> f64 {
    let by_latency = f64::from(capacity) * f64::from(settings.target_latency_ms) / 60_000.0;
    f64::from(settings.target_backlog).min(by_latency).max(1.0)
}

/// A window shorter than this says too little about the workers' speed.
/// Workers decide in bursts (a batch, a commit), so a window spans at least
/// two pace steps at the default tick.
pub const MIN_CAPACITY_WINDOW_MS: u64 = 5_000;

/// The admissions a minute the workers keep up with, read from a window in
/// which commands stayed queued (so the workers never waited for work):
/// the students whose commands were decided in it, per minute. Counting
/// students, not commands, turns the workers' speed into admissions: a
/// student who sends two commands takes twice the work. Students admitted
/// who send nothing take none; a student decided in two windows counts in
/// both, so this can err a little either way. `None` for a
/// window too short to tell.
pub fn capacity_sample(students_decided: u64, span_ms: u64) -> Option<u32> {
    if span_ms < MIN_CAPACITY_WINDOW_MS {
        return None;
    }
    let per_min = students_decided as f64 * 60_000.0 / span_ms as f64;
    Some(per_min.round().min(f64::from(u32::MAX)) as u32)
}

/// The capacity after a new sample: the mean of the last one and the
/// sample, so one slow window (a hot section, a worker restarting) moves
/// it halfway, and a lasting change is followed within a few windows.
pub fn next_capacity(last: Option<u32>, sample: u32) -> u32 {
    match last {
        Some(l) => ((u64::from(l) + u64::from(sample)) / 2) as u32,
        None => sample,
    }
}

/// A new window agreeing with the speed in use within this share settles it.
pub const SETTLED_WITHIN: f64 = 0.2;

/// Whether the speed has settled after a window read `sample`: it had
/// already (a settled speed stays settled: later windows refine it), or the
/// window agreed with the speed measured before it within
/// [`SETTLED_WITHIN`]. The first window of a surge is taken in its first
/// seconds, while seats are being taken; a speed from it alone is not yet
/// one to tell students a wait with.
/// A speed of nothing never settles: workers stalled for two windows say
/// nothing of the speed they will have when they recover.
pub fn settles(settled: bool, last: Option<u32>, sample: u32) -> bool {
    settled
        || last.is_some_and(|l| {
            l > 0 && (f64::from(sample) - f64::from(l)).abs() <= f64::from(l) * SETTLED_WITHIN
        })
}

/// The `q`-quantile (0..=1, nearest rank) of `samples`; `None` when empty.
/// The controller looks at a high percentile, not the mean: a tenth of the
/// students waiting long is what the workers being behind looks like.
pub fn percentile(samples: &mut [u32], q: f64) -> Option<u32> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64) * q.clamp(0.0, 1.0)).ceil() as usize;
    Some(samples[rank.saturating_sub(1).min(samples.len() - 1)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_speed_settles_when_a_window_agrees_with_it_and_stays_settled() {
        assert!(!settles(false, None, 9_000), "a first window alone");
        assert!(!settles(false, Some(9_000), 15_000), "67 % apart");
        assert!(settles(false, Some(12_000), 14_000), "17 % apart");
        assert!(!settles(false, Some(0), 0), "nothing, twice: stalled");
        assert!(!settles(false, Some(0), 1));
        assert!(settles(true, Some(17_000), 9_000), "settled stays settled");
    }

    const S: AutoPace = AutoPace {
        floor: 60,
        ceiling: 6_000,
        target_latency_ms: 2_000,
        target_backlog: 500,
    };

    fn sig(backlog: u32, latency_ms: u32) -> Signals {
        Signals {
            backlog: Some(backlog),
            latency_ms: Some(latency_ms),
            ..Signals::default()
        }
    }

    #[test]
    fn capacity_is_students_decided_a_minute_smoothed_over_windows() {
        // 5 s in which 900 students' commands were decided: 10,800 a minute.
        assert_eq!(capacity_sample(900, 5_000), Some(10_800));
        assert_eq!(capacity_sample(0, 5_000), Some(0));
        // Under five seconds tells nothing.
        assert_eq!(capacity_sample(450, 4_999), None);
        assert_eq!(capacity_sample(u64::MAX, 5_000), Some(u32::MAX));
        // The first sample is taken whole, later ones move it halfway.
        assert_eq!(next_capacity(None, 10_800), 10_800);
        assert_eq!(next_capacity(Some(10_800), 5_400), 8_100);
        assert_eq!(next_capacity(Some(u32::MAX), u32::MAX), u32::MAX);
        let mut c = next_capacity(None, 1_000);
        for _ in 0..20 {
            c = next_capacity(Some(c), 3_000);
        }
        assert!(
            (2_990..=3_000).contains(&c),
            "a lasting change is followed: {c}"
        );
    }

    #[test]
    fn a_growing_backlog_brings_the_rate_down_to_the_floor_never_below() {
        let mut rate = 6_000;
        let mut seen = vec![rate];
        for i in 0..40u32 {
            let step = next_pace(rate, &S, sig(1_000 + i * 1_000, 0));
            assert_eq!(step.reason, PaceReason::Backlog);
            assert!(step.per_min <= rate, "never up while behind");
            rate = step.per_min;
            seen.push(rate);
        }
        assert_eq!(rate, S.floor);
        assert!(seen.iter().all(|&r| r >= S.floor));
        // It got there quickly: a few cuts, not forty.
        let steps_to_floor = seen.iter().position(|&r| r == S.floor).unwrap();
        assert!(steps_to_floor <= 10, "{seen:?}");
    }

    #[test]
    fn healthy_workers_let_it_climb_to_the_ceiling_and_stay() {
        let mut rate = S.floor;
        for _ in 0..30 {
            let step = next_pace(rate, &S, sig(0, 100));
            assert_eq!(step.reason, PaceReason::Healthy);
            assert!(step.per_min >= rate);
            rate = step.per_min;
        }
        assert_eq!(rate, S.ceiling);
        assert_eq!(next_pace(rate, &S, sig(0, 100)).per_min, S.ceiling);
    }

    #[test]
    fn a_steady_input_near_the_target_holds_the_rate() {
        let mut rate = 1_234;
        for _ in 0..50 {
            let step = next_pace(rate, &S, sig(500, 2_100));
            assert_eq!(step.reason, PaceReason::Steady);
            assert_eq!(step.per_min, rate, "no oscillation on a steady input");
            rate = step.per_min;
        }
    }

    #[test]
    fn slow_decisions_cut_the_rate_while_commands_wait() {
        // 300 commands queued (not drained): the latency decides.
        let step = next_pace(3_000, &S, sig(300, 10_000));
        assert_eq!(step.reason, PaceReason::Latency);
        assert_eq!(step.signal, Some(10_000));
        assert_eq!(step.per_min, 1_500, "at most halved in one step");
        // No backlog reading at all: the latency is all there is.
        let blind = Signals {
            backlog: None,
            latency_ms: Some(10_000),
            ..Signals::default()
        };
        assert_eq!(next_pace(3_000, &S, blind).per_min, 1_500);
    }

    #[test]
    fn a_backlog_already_shrinking_holds_the_rate_instead_of_cutting_again() {
        // 2,600 queued, 2,500 a step ago... then 2,400: the workers are
        // working it off at this rate; cutting further would only leave
        // students waiting while the queue drains (seen in a surge: cut
        // after cut down to the floor for 15 s while the queue emptied).
        let shrinking = Signals {
            backlog_before: Some(2_600),
            ..sig(2_400, 9_000)
        };
        let step = next_pace(3_750, &S, shrinking);
        assert_eq!(step.per_min, 3_750, "{step:?}");
        assert_eq!(step.reason, PaceReason::Backlog);
        // Still growing, or barely moving: cut as before.
        let growing = Signals {
            backlog_before: Some(2_300),
            ..sig(2_400, 9_000)
        };
        assert_eq!(next_pace(3_750, &S, growing).per_min, 1_875);
        let flat = Signals {
            backlog_before: Some(2_450),
            ..sig(2_400, 9_000)
        };
        assert_eq!(next_pace(3_750, &S, flat).per_min, 1_875);
    }

    #[test]
    fn a_drained_queue_lets_the_rate_climb_past_the_latency_of_the_past() {
        // The backlog is gone; the latency window still holds the commands
        // that waited in it. Admitting slower cannot shorten a queue that
        // is empty: the rate climbs instead of sitting at the floor while
        // the workers idle (seen in a surge: 8 s at the floor, every
        // student waiting, no command queued).
        let step = next_pace(600, &S, sig(0, 10_000));
        assert_eq!(step.reason, PaceReason::Healthy);
        assert!(step.per_min > 600, "{step:?}");
        // A short queue, under half its target, counts as drained.
        assert!(next_pace(600, &S, sig(4, 10_000)).per_min > 600);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 0.9), Some(90));
        assert_eq!(percentile(&mut v, 1.0), Some(100));
        assert_eq!(percentile(&mut [7], 0.9), Some(7));
        assert_eq!(percentile(&mut [], 0.9), None);
    }

    #[test]
    fn nothing_measured_holds_and_says_so() {
        let step = next_pace(900, &S, Signals::default());
        assert_eq!(step.per_min, 900);
        assert_eq!(step.reason, PaceReason::Unknown);
    }

    #[test]
    fn a_rate_outside_the_range_is_brought_into_it_first() {
        assert_eq!(next_pace(10, &S, sig(500, 2_000)).per_min, S.floor);
        assert_eq!(next_pace(1_000_000, &S, sig(500, 2_000)).per_min, S.ceiling);
    }

    #[test]
    fn settings_are_checked() {
        assert!(S.validate().is_ok());
        let bad = AutoPace {
            floor: 10,
            ceiling: 5,
            ..S
        };
        assert_eq!(bad.validate(), Err(AutoPaceError::FloorAboveCeiling));
        let zero = AutoPace { ceiling: 0, ..S };
        assert_eq!(zero.validate(), Err(AutoPaceError::Ceiling));
        let target = AutoPace {
            target_backlog: 0,
            ..S
        };
        assert_eq!(target.validate(), Err(AutoPaceError::Target));
        for r in [
            PaceReason::Backlog,
            PaceReason::Latency,
            PaceReason::Healthy,
            PaceReason::Steady,
            PaceReason::Unknown,
        ] {
            assert_eq!(PaceReason::parse(r.as_str()), Some(r));
        }
    }

    /// Workers that decide `capacity` commands a minute, fed by admissions
    /// (one command each): the backlog settles near its target instead of
    /// growing without bound, and the rate stays in range throughout.
    #[test]
    fn in_a_closed_loop_the_backlog_stays_bounded() {
        let capacity = 1_200.0_f64; // per minute
        let step_secs = 2.0;
        let mut backlog = 0.0_f64;
        let mut rate = S.ceiling;
        let mut peak_late = 0.0_f64;
        let mut before = None;
        for i in 0..600 {
            let inflow = f64::from(rate) * step_secs / 60.0;
            let outflow = capacity * step_secs / 60.0;
            backlog = (backlog + inflow - outflow).max(0.0);
            let signals = Signals {
                backlog_before: before,
                ..sig(backlog as u32, 0)
            };
            before = Some(backlog as u32);
            rate = next_pace(rate, &S, signals).per_min;
            assert!((S.floor..=S.ceiling).contains(&rate));
            if i > 300 {
                peak_late = peak_late.max(backlog);
            }
        }
        assert!(
            peak_late < f64::from(S.target_backlog) * 4.0,
            "backlog kept near its target: peak {peak_late}"
        );
    }

    #[test]
    fn with_the_workers_speed_known_the_rate_aims_at_it_less_the_excess() {
        let s = AutoPace {
            floor: 600,
            ceiling: 30_000,
            target_latency_ms: 3_000,
            target_backlog: 500,
        };
        let at = |backlog, latency_ms| Signals {
            capacity: Some(12_000),
            ..sig(backlog, latency_ms)
        };
        // At the target: the workers' speed, from wherever the rate was.
        for current in [600, 12_000, 30_000] {
            let step = next_pace(current, &s, at(500, 1_000));
            assert_eq!(step.per_min, 12_000, "{step:?}");
            assert_eq!(step.reason, PaceReason::Steady);
        }
        // Within 3 % the rate holds (no change nobody could see).
        assert_eq!(next_pace(12_300, &s, at(500, 1_000)).per_min, 12_300);
        assert_eq!(next_pace(12_400, &s, at(500, 1_000)).per_min, 12_000);
        // 1,500 over the target: worked off over 10 s, 9,000 a minute less.
        let step = next_pace(30_000, &s, at(2_000, 1_000));
        assert_eq!(step.per_min, 3_000);
        assert_eq!(step.reason, PaceReason::Backlog);
        assert_eq!(step.signal, Some(2_000));
        // Far over it: the floor, never below.
        assert_eq!(next_pace(30_000, &s, at(50_000, 1_000)).per_min, 600);
        // An empty queue: a little above the speed (the target's worth over
        // 10 s), so a faster fleet shows itself; never above the ceiling.
        let step = next_pace(12_000, &s, at(0, 500));
        assert_eq!(step.per_min, 15_000);
        assert_eq!(step.reason, PaceReason::Healthy);
        let fast = Signals {
            capacity: Some(29_000),
            ..sig(0, 500)
        };
        assert_eq!(next_pace(12_000, &s, fast).per_min, 30_000);
        // The latency target as a backlog: at 12,000 a minute, 2 s is 400
        // commands, a smaller target than 500; the lagging latency itself
        // does not cut (8 s measured, the queue at its target: held).
        let two_secs = AutoPace {
            target_latency_ms: 2_000,
            ..s
        };
        assert_eq!(next_pace(9_000, &two_secs, at(500, 1_000)).per_min, 11_400);
        assert_eq!(next_pace(9_000, &two_secs, at(400, 8_000)).per_min, 12_000);
        // A speed measured while the workers were down does not hold the
        // rate when nothing is decided to measure it again: it climbs by
        // the blind rule's step.
        let stale = Signals {
            capacity: Some(0),
            latency_ms: None,
            ..sig(0, 0)
        };
        assert_eq!(next_pace(600, &s, stale).per_min, 600 + 2_940);
        let deciding = Signals {
            capacity: Some(0),
            ..sig(0, 500)
        };
        assert_eq!(
            next_pace(600, &s, deciding).per_min,
            600,
            "a target of 1 at speed 0"
        );
        // No backlog reading: the speed alone is not acted on, the blind
        // rule decides.
        let unread = Signals {
            backlog: None,
            ..at(0, 1_000)
        };
        let without = Signals {
            capacity: None,
            ..unread
        };
        assert_eq!(
            next_pace(12_000, &s, unread),
            next_pace(12_000, &s, without)
        );
    }

    /// A surge against workers of a fixed speed, stepped every 2.5 s, with
    /// commands arriving two steps after their admissions (students click a
    /// few seconds after being let in): the rates the controller set.
    fn surge_rates(capacity_known: bool) -> Vec<u32> {
        let s = AutoPace {
            floor: 600,
            ceiling: 30_000,
            target_latency_ms: 2_000,
            target_backlog: 500,
        };
        let workers = 12_000.0_f64; // decisions a minute
        let step_secs = 2.5;
        let mut in_flight = std::collections::VecDeque::from([0.0_f64, 0.0]);
        let (mut backlog, mut before) = (0.0_f64, None);
        let mut rate = if capacity_known { 12_000 } else { s.ceiling };
        let mut rates = Vec::new();
        for _ in 0..40 {
            in_flight.push_back(f64::from(rate) * step_secs / 60.0);
            let arriving = in_flight.pop_front().unwrap_or(0.0);
            backlog = (backlog + arriving - workers * step_secs / 60.0).max(0.0);
            // Decisions flow from the second step on, on time.
            let signals = Signals {
                backlog: Some(backlog as u32),
                latency_ms: (!rates.is_empty()).then_some(1_000),
                backlog_before: before,
                capacity: capacity_known.then_some(workers as u32),
            };
            before = Some(backlog as u32);
            rate = next_pace(rate, &s, signals).per_min;
            rates.push(rate);
        }
        rates
    }

    #[test]
    fn a_known_speed_keeps_the_rate_near_it_through_a_surge() {
        let known = surge_rates(true);
        let blind = surge_rates(false);
        let spread = |r: &[u32]| {
            let (lo, hi) = (r.iter().min().unwrap(), r.iter().max().unwrap());
            (*lo, *hi)
        };
        // Knowing the speed, the rate stays within 80-125 % of it after the
        // first steps; blind, it swings between the floor and the ceiling.
        let (lo, hi) = spread(&known[4..]);
        assert!(
            (9_600..=14_400).contains(&lo) && (9_600..=15_000).contains(&hi),
            "{known:?}"
        );
        let (lo, hi) = spread(&blind);
        assert!(lo <= 3_000 && hi == 30_000, "{blind:?}");
    }

    proptest! {
        #[test]
        fn always_within_floor_and_ceiling(
            current in 0u32..2_000_000,
            floor in 0u32..5_000,
            span in 1u32..100_000,
            backlog in proptest::option::of(0u32..1_000_000),
            latency in proptest::option::of(0u32..1_000_000),
            capacity in proptest::option::of(0u32..2_000_000),
        ) {
            let s = AutoPace { floor, ceiling: floor + span, target_latency_ms: 1_000, target_backlog: 100 };
            let step = next_pace(current, &s, Signals { backlog, latency_ms: latency, backlog_before: None, capacity });
            prop_assert!(step.per_min >= s.floor && step.per_min <= s.ceiling);
        }
    }
}
