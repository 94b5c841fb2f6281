//! An emulator of the Kubernetes HorizontalPodAutoscaler (autoscaling/v2),
//! so the local cluster scales the way a k3s cluster would.
//!
//! It follows the controller's documented algorithm and the structure of
//! its source (`pkg/controller/podautoscaler`): a replica proposal from the
//! metric ratio with a tolerance, a stabilization window over past
//! proposals (the highest in the scale-down window, the lowest in the
//! scale-up window), then rate limits from the scaling policies, measured
//! against the replica count at the start of each policy's period, and the
//! min/max bounds. Time is passed in, so the tests replay the examples of
//! the Kubernetes documentation exactly. Where the emulator differs from
//! the real controller is written down in `docs/bench.md`.

use std::time::Duration;

/// What a policy limits: a number of pods or a share of the current ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Pods,
    Percent,
}

/// `behavior.scaleUp.policies[]` / `behavior.scaleDown.policies[]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub value: u32,
    pub period: Duration,
}

/// `selectPolicy`: which policy wins when several apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Select {
    /// The policy allowing the largest change (the default).
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// The rules of one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub stabilization: Duration,
    pub select: Select,
    pub policies: Vec<Policy>,
}

impl Rules {
    /// Kubernetes' default scale-up: no stabilization; at most double or
    /// add 4 pods every 15 s, whichever is more.
    pub fn default_up() -> Rules {
        Rules {
            stabilization: Duration::ZERO,
            select: Select::Max,
            policies: vec![
                Policy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period: Duration::from_secs(15),
                },
                Policy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period: Duration::from_secs(15),
                },
            ],
        }
    }

    /// Kubernetes' default scale-down: a 300 s stabilization window, then
    /// down to the recommendation at once (100 % per 15 s).
    pub fn default_down() -> Rules {
        Rules {
            stabilization: Duration::from_secs(300),
            select: Select::Max,
            policies: vec![Policy {
                kind: PolicyKind::Percent,
                value: 100,
                period: Duration::from_secs(15),
            }],
        }
    }

    fn longest_period(&self) -> Duration {
        self.policies
            .iter()
            .map(|p| p.period)
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// The parts of an HPA spec the algorithm reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// `--horizontal-pod-autoscaler-tolerance` (0.1 by default).
    pub tolerance: f64,
    pub scale_up: Rules,
    pub scale_down: Rules,
}

/// One metric reading, as the two target types of autoscaling/v2 use it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// An `AverageValue` target on an External metric: `total` is the
    /// metric over all pods (e.g. ready messages), `target` the wanted
    /// value per pod.
    AverageValue { total: f64, target: f64 },
    /// A `Utilization` target on a Resource metric: the average usage over
    /// the pods as a percentage of their request, and the target percentage.
    Utilization { average: f64, target: f64 },
}

/// The replica count the metric asks for, before stabilization and
/// policies: `ceil(current × metric / target)`, or `current` when the ratio
/// is within `tolerance` of 1.
pub fn proposal(current: u32, metric: Metric, tolerance: f64) -> u32 {
    let current_f = f64::from(current.max(1));
    let (ratio, desired) = match metric {
        Metric::AverageValue { total, target } => {
            let target = target.max(f64::MIN_POSITIVE);
            (total / (target * current_f), (total / target).ceil())
        }
        Metric::Utilization { average, target } => {
            let ratio = average / target.max(f64::MIN_POSITIVE);
            (ratio, (ratio * current_f).ceil())
        }
    };
    if (1.0 - ratio).abs() <= tolerance {
        return current;
    }
    if desired.is_finite() && desired > 0.0 {
        desired.min(f64::from(u32::MAX)) as u32
    } else {
        0
    }
}

#[derive(Debug, Clone, Copy)]
struct Event {
    at: Duration,
    change: u32,
}

/// The controller state of one HPA: past recommendations and scale events.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    spec: Spec,
    recommendations: Vec<(Duration, u32)>,
    up_events: Vec<Event>,
    down_events: Vec<Event>,
}

impl Autoscaler {
    pub fn new(spec: Spec) -> Autoscaler {
        Autoscaler {
            spec,
            recommendations: Vec::new(),
            up_events: Vec::new(),
            down_events: Vec::new(),
        }
    }

    /// One reconcile at `now` (time since any fixed epoch) with `current`
    /// replicas running: returns the replica count to scale to, and records
    /// the scale event if it differs from `current`.
    pub fn reconcile(&mut self, now: Duration, current: u32, metric: Metric) -> u32 {
        let spec = &self.spec;
        let desired = if current == 0 {
            // Scaled to zero by hand: the controller leaves it alone.
            0
        } else if current > spec.max_replicas {
            spec.max_replicas
        } else if current < spec.min_replicas {
            spec.min_replicas
        } else {
            let proposed = proposal(current, metric, spec.tolerance);
            let stabilized = self.stabilize(now, current, proposed);
            self.limit(now, current, stabilized)
        };
        self.record(now, current, desired);
        desired
    }

    /// `stabilizeRecommendationWithBehaviors`: the lowest proposal of the
    /// scale-up window caps scale-up, the highest of the scale-down window
    /// floors scale-down.
    fn stabilize(&mut self, now: Duration, current: u32, proposed: u32) -> u32 {
        let mut up = proposed;
        let mut down = proposed;
        for &(at, r) in &self.recommendations {
            if within(at, now, self.spec.scale_up.stabilization) {
                up = up.min(r);
            }
            if within(at, now, self.spec.scale_down.stabilization) {
                down = down.max(r);
            }
        }
        let keep = self
            .spec
            .scale_up
            .stabilization
            .max(self.spec.scale_down.stabilization);
        self.recommendations
            .retain(|&(at, _)| within(at, now, keep));
        self.recommendations.push((now, proposed));
        current.max(up).min(down)
    }

    /// `convertDesiredReplicasWithBehaviorRate`: the policies' rate limits
    /// and the min/max bounds.
    fn limit(&self, now: Duration, current: u32, desired: u32) -> u32 {
        let spec = &self.spec;
        if desired > current {
            let limit = self
                .limit_in(now, current, &spec.scale_up, true)
                .max(current)
                .min(spec.max_replicas);
            desired.min(limit)
        } else if desired < current {
            let limit = self
                .limit_in(now, current, &spec.scale_down, false)
                .min(current)
                .max(spec.min_replicas);
            desired.max(limit)
        } else {
            desired
        }
    }

    /// `calculateScaleUpLimitWithScalingRules` and its scale-down twin.
    fn limit_in(&self, now: Duration, current: u32, rules: &Rules, up: bool) -> u32 {
        let pick_larger = match (rules.select, up) {
            (Select::Disabled, _) => return current,
            // Up, "Max" means the largest count; down, the largest change,
            // which is the smallest count.
            (Select::Max, true) | (Select::Min, false) => true,
            (Select::Min, true) | (Select::Max, false) => false,
        };
        let mut result: Option<i64> = None;
        for p in &rules.policies {
            let added = changes_within(&self.up_events, now, p.period);
            let removed = changes_within(&self.down_events, now, p.period);
            let start = i64::from(current) - added + removed;
            let proposed = match (p.kind, up) {
                (PolicyKind::Pods, true) => start + i64::from(p.value),
                (PolicyKind::Pods, false) => start - i64::from(p.value),
                (PolicyKind::Percent, true) => {
                    ((start as f64) * (1.0 + f64::from(p.value) / 100.0)).ceil() as i64
                }
                // The controller truncates toward zero here.
                (PolicyKind::Percent, false) => {
                    ((start as f64) * (1.0 - f64::from(p.value) / 100.0)) as i64
                }
            };
            result = Some(match result {
                None => proposed,
                Some(r) if pick_larger => r.max(proposed),
                Some(r) => r.min(proposed),
            });
        }
        let limit = result.unwrap_or(i64::from(current));
        u32::try_from(limit.max(0)).unwrap_or(u32::MAX)
    }

    fn record(&mut self, now: Duration, before: u32, after: u32) {
        let keep_up = self.spec.scale_up.longest_period();
        let keep_down = self.spec.scale_down.longest_period();
        self.up_events.retain(|e| within(e.at, now, keep_up));
        self.down_events.retain(|e| within(e.at, now, keep_down));
        if after > before {
            self.up_events.push(Event {
                at: now,
                change: after - before,
            });
        } else if after < before {
            self.down_events.push(Event {
                at: now,
                change: before - after,
            });
        }
    }
}

/// `getReplicasChangePerPeriod`: replicas changed within `period` of `now`.
fn changes_within(events: &[Event], now: Duration, period: Duration) -> i64 {
    events
        .iter()
        .filter(|e| within(e.at, now, period))
        .map(|e| i64::from(e.change))
        .sum()
}

/// Whether `at` is after `now - window` (the controller's `After(cutoff)`,
/// without underflow before the epoch is `window` old).
fn within(at: Duration, now: Duration, window: Duration) -> bool {
    at + window > now
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn spec(min: u32, max: u32) -> Spec {
        Spec {
            min_replicas: min,
            max_replicas: max,
            tolerance: 0.1,
            scale_up: Rules::default_up(),
            scale_down: Rules::default_down(),
        }
    }

    fn cpu(average: f64) -> Metric {
        Metric::Utilization {
            average,
            target: 100.0,
        }
    }

    #[test]
    fn the_ratio_doubles_or_halves_as_in_the_docs() {
        // "if the current metric value is 200m, and the desired value is
        // 100m, the number of replicas will be doubled ... 50m, halve".
        assert_eq!(proposal(3, cpu(200.0), 0.1), 6);
        assert_eq!(proposal(4, cpu(50.0), 0.1), 2);
        // The result is rounded up.
        assert_eq!(proposal(3, cpu(150.0), 0.1), 5);
    }

    #[test]
    fn a_ratio_within_the_tolerance_changes_nothing() {
        assert_eq!(proposal(10, cpu(109.0), 0.1), 10);
        assert_eq!(proposal(10, cpu(91.0), 0.1), 10);
        assert_eq!(proposal(10, cpu(111.0), 0.1), 12);
        assert_eq!(proposal(10, cpu(89.0), 0.1), 9);
    }

    #[test]
    fn average_value_targets_divide_the_total_by_the_target() {
        let depth = |total| Metric::AverageValue {
            total,
            target: 500.0,
        };
        assert_eq!(proposal(1, depth(2_000.0), 0.1), 4);
        assert_eq!(proposal(4, depth(2_100.0), 0.1), 4, "ratio 1.05");
        assert_eq!(proposal(4, depth(0.0), 0.1), 0);
        assert_eq!(proposal(2, depth(1_001.0), 0.1), 2, "ratio 1.001");
    }

    #[test]
    fn default_scale_up_adds_four_pods_or_doubles_every_15_seconds() {
        let mut hpa = Autoscaler::new(spec(1, 20));
        // Wants 10 from 1: max(1 × 2, 1 + 4) = 5.
        assert_eq!(hpa.reconcile(S(0), 1, cpu(1_000.0)), 5);
        // Within the same 15 s period nothing more is allowed.
        assert_eq!(hpa.reconcile(S(5), 5, cpu(200.0)), 5);
        // A new period starts from 5: max(10, 9) = 10.
        assert_eq!(hpa.reconcile(S(16), 5, cpu(200.0)), 10);
        // Bounded by max_replicas.
        assert_eq!(hpa.reconcile(S(32), 10, cpu(1_000.0)), 20);
    }

    #[test]
    fn the_scale_down_window_keeps_the_highest_recent_recommendation() {
        let mut hpa = Autoscaler::new(spec(1, 20));
        assert_eq!(hpa.reconcile(S(0), 10, cpu(100.0)), 10);
        // Load drops at once; the 300 s window holds 10.
        assert_eq!(hpa.reconcile(S(60), 10, cpu(20.0)), 10);
        assert_eq!(hpa.reconcile(S(299), 10, cpu(20.0)), 10);
        // The recommendation of 10 made at 0 s left the window; the ones
        // since then say 2.
        assert_eq!(hpa.reconcile(S(301), 10, cpu(20.0)), 2);
    }

    #[test]
    fn scale_down_policies_follow_the_docs_example() {
        // "scaleDown: policies: Pods 4 per 60 s, Percent 10 per 60 s": with
        // 80 replicas the percent policy allows the larger change, 8; the
        // next period starts from 72 and 10 % of it is 7.2, rounded to 8.
        let mut s = spec(1, 100);
        s.scale_down = Rules {
            stabilization: Duration::ZERO,
            select: Select::Max,
            policies: vec![
                Policy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period: S(60),
                },
                Policy {
                    kind: PolicyKind::Percent,
                    value: 10,
                    period: S(60),
                },
            ],
        };
        let mut hpa = Autoscaler::new(s);
        let low = cpu(10.0);
        assert_eq!(hpa.reconcile(S(0), 80, low), 72);
        assert_eq!(hpa.reconcile(S(30), 72, low), 72, "same period");
        assert_eq!(hpa.reconcile(S(61), 72, low), 64);
        // Below 40 pods, the 4-pod policy allows more than 10 %.
        assert_eq!(hpa.reconcile(S(0) + S(200), 30, low), 26);
    }

    #[test]
    fn select_min_takes_the_smallest_change() {
        let mut s = spec(1, 100);
        s.scale_up.select = Select::Min;
        let mut hpa = Autoscaler::new(s);
        // min(1 × 2, 1 + 4) = 2.
        assert_eq!(hpa.reconcile(S(0), 1, cpu(1_000.0)), 2);
    }

    #[test]
    fn disabled_scale_down_never_removes_pods() {
        let mut s = spec(1, 10);
        s.scale_down.select = Select::Disabled;
        s.scale_down.stabilization = Duration::ZERO;
        let mut hpa = Autoscaler::new(s);
        assert_eq!(hpa.reconcile(S(0), 6, cpu(1.0)), 6);
    }

    #[test]
    fn replicas_outside_the_bounds_are_brought_inside() {
        let mut hpa = Autoscaler::new(spec(2, 5));
        assert_eq!(hpa.reconcile(S(0), 1, cpu(0.0)), 2);
        assert_eq!(hpa.reconcile(S(1), 9, cpu(500.0)), 5);
        // Never below min, whatever the metric says.
        let mut s = spec(2, 5);
        s.scale_down.stabilization = Duration::ZERO;
        let mut hpa = Autoscaler::new(s);
        assert_eq!(hpa.reconcile(S(0), 4, cpu(0.0)), 2);
    }
}
