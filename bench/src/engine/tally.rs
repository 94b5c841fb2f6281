//! The surge's figures gathered into the report once the queue drained.

use super::Args;
use crate::analysis::Ledger;
use crate::arrivals::Shape;
use crate::promises;
use crate::report::{self, Report, Sample, ScaleEvent};
use crate::stats::{Latency, Stats};
use std::time::Duration;

/// The pace figures: the mode asked for, and the rates the timeline saw.
fn pace(args: &Args, timeline: &[Sample]) -> report::PaceFigures {
    let mut rates: Vec<u64> = timeline.iter().filter_map(|s| s.pace_per_min).collect();
    if rates.is_empty() && args.auto_pace.is_none() {
        // A fixed pace is not in the answers: it is the rate set.
        rates.push(u64::from(args.rate));
    }
    report::PaceFigures {
        mode: if args.auto_pace.is_some() {
            "auto"
        } else {
            "fixed"
        },
        floor: args.auto_pace.map(|p| p.0),
        ceiling: args.auto_pace.map(|p| p.1),
        target_latency_ms: args
            .auto_pace
            .map(|_| u64::try_from(args.pace_latency.as_millis()).unwrap_or(u64::MAX)),
        target_backlog: args.auto_pace.map(|_| args.pace_backlog),
        rate_min: rates.iter().copied().min(),
        rate_max: rates.iter().copied().max(),
        rate_last: rates.last().copied(),
        rate_changes: rates.windows(2).filter(|w| w[0] != w[1]).count() as u64,
        queue_depth_max: timeline.iter().filter_map(|s| s.queue_depth).max(),
        capacity_per_min: None,
    }
}

#[allow(clippy::too_many_arguments)]
pub fn build_report(
    args: &Args,
    stats: &Stats,
    ledger: Option<&Ledger>,
    accepted: u64,
    undecided: u64,
    duration: Duration,
    timeline: Vec<Sample>,
    scale_events: Vec<ScaleEvent>,
    cluster: bool,
) -> Report {
    let p = |k| stats.percentiles(k);
    let (join, poll, enroll, decision) = (
        p(Latency::Join),
        p(Latency::Poll),
        p(Latency::Enroll),
        p(Latency::Decision),
    );
    let max_of = |f: fn(&Sample) -> usize| timeline.iter().map(f).max();
    Report {
        mode: if args.local { "local" } else { "remote" },
        shape: format!("{:?}", args.shape).to_lowercase(),
        students: args.students as u64,
        sections: args.sections as u64,
        seats: ledger.map(|l| l.seats),
        enrolled: ledger.map(|l| l.enrolled),
        oversold: ledger.map_or(0, |l| l.invariants.oversold + l.invariants.miscounted),
        duplicates: ledger.map_or(0, |l| l.invariants.duplicates),
        lost_commands: ledger.map(|l| l.lost_commands),
        undecided_seen_by_students: undecided,
        http_5xx: Stats::get(&stats.http_5xx),
        joined: Stats::get(&stats.joined),
        admitted: Stats::get(&stats.admitted),
        decided_students: Stats::get(&stats.decided),
        gave_up: Stats::get(&stats.gave_up),
        accepted_commands: accepted,
        requests: Stats::get(&stats.requests),
        join_p99_ms: join.p99_ms,
        poll_p99_ms: poll.p99_ms,
        enroll_p99_ms: enroll.p99_ms,
        decision_p99_ms: decision.p99_ms,
        latency: report::Latencies {
            join,
            poll,
            enroll,
            decision,
        },
        decision_server: ledger.and_then(|l| l.decision_server),
        pace: pace(args, &timeline),
        admission_rate_target: args.rate,
        admission_rate_achieved: ledger.map(|l| l.admission_rate_achieved),
        kendall_tau: ledger.and_then(|l| l.kendall_tau),
        cohort_share: match args.shape {
            Shape::Cohort => args.cohort_share,
            Shape::Uniform | Shape::Spike => 0.0,
        },
        seat_fairness_mean: ledger.and_then(|l| l.seat_fairness_mean),
        seat_fairness_min: ledger.and_then(|l| l.seat_fairness_min),
        sections_full: ledger.map(|l| l.sections_full),
        commits_per_s_peak: ledger.map(Ledger::commits_per_s_peak),
        duration_s: duration.as_secs_f64(),
        gateways: args.gateways,
        workers: args.workers,
        max_workers: cluster.then(|| max_of(|s| s.workers).unwrap_or(0)),
        max_gateways: cluster.then(|| max_of(|s| s.gateways).unwrap_or(0)),
        errors: stats.errors(),
        outcomes: ledger.map(|l| l.outcomes.clone()).unwrap_or_default(),
        invariants: ledger.map(|l| l.invariants.clone()),
        scale_events,
        timeline,
        promises: promises::Promises::default(),
        chaos: None,
        priority: None,
    }
}
