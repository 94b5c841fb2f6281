//! The surge report: the timeline sampled while the surge runs (and the
//! progress line printed from it), the table on stdout, the JSON document
//! and the SVG charts. Every JSON key is documented in `docs/bench.md`.

mod faults;

pub use faults::{FaultRecord, FaultSummary, KindSummary, Places};

use crate::analysis::Ledger;
use crate::depth::Depth;
use crate::local::{Replicas, Role};
use crate::promises::{Group, Promises};
use crate::stats::{Latency, Percentiles, Stats};
use crate::svg::{line_chart, Series};
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the timeline is sampled; progress prints every other sample.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// One point of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub t_s: f64,
    pub joined: u64,
    pub waiting: u64,
    pub admitted: u64,
    pub decided: u64,
    pub accepted: u64,
    pub http_5xx: u64,
    pub errors: u64,
    /// Ready messages in the commands queue.
    pub queue_depth: Option<u32>,
    pub gateways: usize,
    pub workers: usize,
    /// Requests per second sent in the last interval.
    pub requests_per_s: f64,
    pub poll_p50_ms: f64,
    pub poll_p99_ms: f64,
    pub join_p99_ms: f64,
    pub enroll_p99_ms: f64,
    /// The admission rate the students' last answers carried (per minute).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace_per_min: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Latencies {
    pub join: Percentiles,
    pub poll: Percentiles,
    pub enroll: Percentiles,
    pub decision: Percentiles,
}

/// The JSON report (`--report`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub shape: String,
    pub students: u64,
    pub sections: u64,
    pub seats: Option<u64>,
    pub enrolled: Option<u64>,
    pub oversold: u64,
    pub duplicates: u64,
    pub lost_commands: Option<u64>,
    pub undecided_seen_by_students: u64,
    pub http_5xx: u64,
    pub joined: u64,
    pub admitted: u64,
    pub decided_students: u64,
    pub gave_up: u64,
    pub accepted_commands: u64,
    pub requests: u64,
    pub join_p99_ms: f64,
    pub poll_p99_ms: f64,
    pub enroll_p99_ms: f64,
    pub decision_p99_ms: f64,
    pub latency: Latencies,
    /// From a command's issue at the gateway to its decision by a worker
    /// (MySQL `decided_at - issued_at`), every command of the round: what
    /// the automatic pace aims to hold.
    pub decision_server: Option<crate::choices::Spread>,
    /// How admission was paced, and what the backlog did.
    pub pace: PaceFigures,
    pub admission_rate_target: u32,
    pub admission_rate_achieved: Option<f64>,
    pub kendall_tau: Option<f64>,
    pub cohort_share: f64,
    pub seat_fairness_mean: Option<f64>,
    pub seat_fairness_min: Option<f64>,
    pub sections_full: Option<u64>,
    pub commits_per_s_peak: Option<u64>,
    pub duration_s: f64,
    pub gateways: usize,
    pub workers: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_gateways: Option<usize>,
    pub errors: BTreeMap<String, u64>,
    pub outcomes: BTreeMap<String, u64>,
    pub invariants: Option<worker::invariants::Report>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scale_events: Vec<ScaleEvent>,
    pub timeline: Vec<Sample>,
    /// What the queue page promised and whether it held.
    #[serde(flatten)]
    pub promises: Promises,
    /// (`chaos` only) the faults injected and what they did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chaos: Option<FaultSummary>,
    /// (`--priority`) the policy and the figures of each class line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<crate::classes::Classes>,
}

/// The pace of admission over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PaceFigures {
    /// `fixed` or `auto`.
    pub mode: &'static str,
    /// (`auto`) the registrar's range and targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ceiling: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_backlog: Option<u32>,
    /// Lowest, highest and last rate the students were told (per minute).
    pub rate_min: Option<u64>,
    pub rate_max: Option<u64>,
    pub rate_last: Option<u64>,
    /// Times the rate students were told changed between two samples.
    pub rate_changes: u64,
    /// Most ready commands in the queue at one sample.
    pub queue_depth_max: Option<u32>,
    /// (`auto`, MySQL at hand) Admissions a minute the leader measured the
    /// workers to keep up with, at the end of the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity_per_min: Option<u32>,
}

/// One scaling step of the autoscaler (`cluster` only).
#[derive(Debug, Clone, Serialize)]
pub struct ScaleEvent {
    pub t_s: f64,
    pub deployment: &'static str,
    pub from: u32,
    pub to: u32,
    /// The metric that drove it: ready messages, or CPU utilization %.
    pub metric: f64,
}

/// Where the report is saved besides stdout.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// The JSON report (`--report`).
    pub json: Option<PathBuf>,
    /// A directory for the SVG charts (`--charts`).
    pub charts: Option<PathBuf>,
}

/// Writes the JSON report and the charts where `out` says.
pub fn save(r: &Report, ledger: Option<&Ledger>, out: &Output) -> anyhow::Result<()> {
    if let Some(path) = &out.json {
        std::fs::write(path, serde_json::to_vec_pretty(r)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    if let Some(dir) = &out.charts {
        charts(dir, r, ledger)?;
        println!("charts written to {}", dir.display());
    }
    Ok(())
}

/// Fails the run unless it held: with faults, their verdict; without,
/// no seat oversold or taken twice, no command lost and no 5xx.
pub fn verdict(r: &Report) -> anyhow::Result<()> {
    if let Some(summary) = &r.chaos {
        anyhow::ensure!(summary.passed, "chaos: {}", summary.failures.join("; "));
        return Ok(());
    }
    anyhow::ensure!(
        r.oversold == 0
            && r.duplicates == 0
            && r.lost_commands.unwrap_or(0) == 0
            && r.http_5xx == 0,
        "correctness violated: see the report"
    );
    Ok(())
}

/// Samples the timeline every second and prints progress every two, until
/// `stop`.
pub async fn sample(
    stats: Arc<Stats>,
    replicas: Arc<Replicas>,
    depth: Option<(String, String)>,
    epoch: Instant,
    stop: CancellationToken,
) -> Vec<Sample> {
    let mut depth = depth.map(|(url, prefix)| Depth::new(url, &prefix));
    let mut timeline = Vec::new();
    let mut interval = tokio::time::interval(SAMPLE_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_requests = 0;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => break,
        }
        let queue_depth = match depth.as_mut() {
            Some(d) => d.read().await,
            None => None,
        };
        let requests = Stats::get(&stats.requests);
        let poll = stats.take_interval(Latency::Poll);
        let s = Sample {
            t_s: epoch.elapsed().as_secs_f64(),
            joined: Stats::get(&stats.joined),
            waiting: Stats::get(&stats.waiting),
            admitted: Stats::get(&stats.admitted),
            decided: Stats::get(&stats.decided),
            accepted: Stats::get(&stats.accepted),
            http_5xx: Stats::get(&stats.http_5xx),
            errors: stats.total_errors(),
            queue_depth,
            gateways: replicas.get(Role::Gateway),
            workers: replicas.get(Role::Worker),
            requests_per_s: (requests - last_requests) as f64 / SAMPLE_EVERY.as_secs_f64(),
            poll_p50_ms: poll.p50_ms,
            poll_p99_ms: poll.p99_ms,
            join_p99_ms: stats.take_interval(Latency::Join).p99_ms,
            enroll_p99_ms: stats.take_interval(Latency::Enroll).p99_ms,
            pace_per_min: Some(Stats::get(&stats.pace_per_min)).filter(|r| *r > 0),
        };
        last_requests = requests;
        if timeline.len() % 2 == 1 {
            println!(
                "[{:>5.0}s] joined {:>6}  waiting {:>6}  admitted {:>6}  decided {:>6}  commands {:>6}  queue {:>5}  req/s {:>5.0}  poll p99 {:>4.0} ms  errors {}  5xx {}  gw {} wk {}",
                s.t_s,
                s.joined,
                s.waiting,
                s.admitted,
                s.decided,
                s.accepted,
                s.queue_depth.map_or("-".to_string(), |d| d.to_string()),
                s.requests_per_s,
                s.poll_p99_ms,
                s.errors,
                s.http_5xx,
                s.gateways,
                s.workers,
            );
        }
        timeline.push(s);
    }
    if let Some(d) = depth {
        d.close().await;
    }
    timeline
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn opt_f(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

/// The human table.
pub fn print(r: &Report) {
    println!();
    let row = |k: &str, v: String| println!("{k:<34} {v:>14}");
    row("students", r.students.to_string());
    row(
        "joined / admitted",
        format!("{} / {}", r.joined, r.admitted),
    );
    row(
        "students decided / gave up",
        format!("{} / {}", r.decided_students, r.gave_up),
    );
    row(
        "seats / enrolled",
        format!("{} / {}", opt(r.seats), opt(r.enrolled)),
    );
    row("commands accepted (202)", r.accepted_commands.to_string());
    row("oversold", r.oversold.to_string());
    row("duplicates", r.duplicates.to_string());
    row("lost commands", opt(r.lost_commands));
    row("http 5xx", r.http_5xx.to_string());
    println!();
    println!(
        "{:<34} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "latency (ms)", "p50", "p95", "p99", "max", "count"
    );
    for (name, p) in [
        ("join", &r.latency.join),
        ("poll", &r.latency.poll),
        ("enroll / drop (202)", &r.latency.enroll),
        ("time to decision", &r.latency.decision),
    ] {
        println!(
            "{name:<34} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9}",
            p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms, p.count
        );
    }
    if let Some(d) = &r.decision_server {
        println!(
            "{:<34} {:>8.1} {:>8} {:>8.1} {:>8.1} {:>9}",
            "issue to decision (MySQL, p90)",
            d.p50_ms,
            format!("{:.1}", d.p90_ms),
            d.p99_ms,
            d.max_ms,
            d.count
        );
    }
    println!();
    row(
        "admission rate target (/min)",
        r.admission_rate_target.to_string(),
    );
    row(
        "admission rate achieved (/min)",
        opt_f(r.admission_rate_achieved, 0),
    );
    row(
        &format!("pace ({}): told min / max", r.pace.mode),
        format!("{} / {}", opt(r.pace.rate_min), opt(r.pace.rate_max)),
    );
    row("queue depth max", opt(r.pace.queue_depth_max));
    if r.pace.mode == "auto" {
        row(
            "pace: workers measured (/min)",
            opt(r.pace.capacity_per_min),
        );
    }
    row("kendall tau (ticket vs admission)", opt_f(r.kendall_tau, 4));
    row(
        "seat fairness mean / min",
        format!(
            "{} / {}",
            opt_f(r.seat_fairness_mean, 3),
            opt_f(r.seat_fairness_min, 3)
        ),
    );
    print_promises(&r.promises);
    row("commits/s peak", opt(r.commits_per_s_peak));
    row("duration (s)", format!("{:.1}", r.duration_s));
    if let (Some(w), Some(g)) = (r.max_workers, r.max_gateways) {
        row("max workers / gateways", format!("{w} / {g}"));
        row("scale events", r.scale_events.len().to_string());
    }
    if !r.errors.is_empty() {
        println!();
        println!("errors by kind:");
        for (k, n) in &r.errors {
            println!("  {k:<32} {n:>14}");
        }
    }
    if !r.outcomes.is_empty() {
        println!("outcome items by result:");
        for (k, n) in &r.outcomes {
            println!("  {k:<32} {n:>14}");
        }
    }
}

/// The promise figures of the table.
fn print_promises(p: &Promises) {
    let row = |k: &str, v: String| println!("{k:<34} {v:>14}");
    row(
        "tau click vs admitted / seen",
        format!(
            "{} / {}",
            opt_f(p.click_to_admission_tau, 4),
            opt_f(p.click_to_seen_admission_tau, 4)
        ),
    );
    row(
        "eta inside first range",
        format!(
            "{} of {}",
            opt_f(p.eta.eta_inside_first_range, 3),
            p.eta.eta_students
        ),
    );
    row(
        "waited unestimated; first estimate after",
        format!(
            "{}; {} s",
            p.eta.eta_unshown_students,
            opt_f(p.eta.eta_first_shown_s_median, 1)
        ),
    );
    row(
        "eta every range held / pairs",
        format!(
            "{} / {}",
            opt_f(p.eta.eta_every_range_held, 3),
            opt_f(p.eta.eta_inside_range, 3)
        ),
    );
    row(
        "eta first range, by fifth of clicks",
        p.eta
            .eta_first_range_by_arrival
            .iter()
            .map(|&x| opt_f(x, 2))
            .collect::<Vec<_>>()
            .join(" "),
    );
    row(
        "eta actual / middle, median",
        opt_f(p.eta.eta_ratio_median, 2),
    );
    row(
        "eta first range rough; its width, median",
        format!(
            "{} of {}; {} s",
            p.eta.eta_first_rough_students,
            p.eta.eta_students,
            opt_f(p.eta.eta_first_width_s_median, 0)
        ),
    );
    row(
        "eta first firm range held; shown after",
        format!(
            "{} of {}; {} s",
            opt_f(p.eta.eta_inside_first_firm_range, 3),
            p.eta.eta_firm_students,
            opt_f(p.eta.eta_first_firm_s_median, 1)
        ),
    );
    row(
        "eta first firm actual / middle, median",
        opt_f(p.eta.eta_first_firm_ratio_median, 2),
    );
    row(
        "skipped / reclaimed (students)",
        format!("{} / {}", p.skipped, p.reclaimed),
    );
    row(
        "skipped / reclaimed (tickets)",
        format!("{} / {}", opt(p.skipped_tickets), opt(p.reclaimed_tickets)),
    );
    if p.suspended > 0 {
        row(
            "suspended / kept their turn",
            format!("{} / {}", p.suspended, p.suspended_kept_turn),
        );
    }
    row("admitted, pass refused", p.passes_refused.to_string());
    let group = |name: &str, g: &Group| {
        row(
            &format!("{name}: students / joined"),
            format!("{} / {}", g.students, g.joined),
        );
        row(
            &format!("{name}: skipped / admitted"),
            format!("{} / {}", g.skipped, g.admitted),
        );
        row(
            &format!("{name}: cart accepted / 429s"),
            format!("{} / {}", g.cart_accepted, g.refused_429),
        );
    };
    if let Some(g) = &p.shared_ip {
        group("shared ip", g);
    }
    if let Some(g) = &p.own_ip {
        group("own ip", g);
    }
    let c = &p.choices;
    row(
        "cart items: first / alternate",
        format!("{} / {}", c.first_choice, c.alternate),
    );
    row(
        "cart items: waitlist / nothing",
        format!("{} / {}", c.waitlisted, c.nothing),
    );
    let a = &p.auto_send;
    if a.opted_in > 0 {
        row(
            "auto-send: opted / sent / click",
            format!(
                "{} / {} / {}",
                a.opted_in, a.sent_at_admission, a.fell_back_to_click
            ),
        );
        let p50 = |s: &Option<crate::choices::Spread>| {
            s.map_or("-".to_string(), |s| format!("{:.0}", s.p50_ms))
        };
        row(
            "admitted to decided p50 sent/click",
            format!(
                "{} / {} ms",
                p50(&a.admitted_to_decided_sent),
                p50(&a.admitted_to_decided_clicked)
            ),
        );
        row(
            "same on MySQL clock p50 sent/click",
            format!(
                "{} / {} ms",
                p50(&a.admission_to_decision_sent),
                p50(&a.admission_to_decision_clicked)
            ),
        );
    }
}

/// Writes the SVG charts into `dir`.
pub fn charts(dir: &Path, r: &Report, ledger: Option<&Ledger>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let t = &r.timeline;
    let line = |name: &str, f: &dyn Fn(&Sample) -> Option<f64>| {
        Series::new(
            name,
            t.iter().filter_map(|s| Some((s.t_s, f(s)?))).collect(),
        )
    };
    let per_second = |name: &str, v: &[u64]| {
        Series::new(
            name,
            v.iter()
                .enumerate()
                .map(|(i, n)| (i as f64 + 0.5, *n as f64))
                .collect(),
        )
    };
    let end = t.last().map_or(r.duration_s, |s| s.t_s);
    let mut files: Vec<(&str, String)> = vec![
        (
            "waiting.svg",
            line_chart(
                "Students waiting, admitted and decided",
                "students",
                &[
                    line("waiting", &|s| Some(s.waiting as f64)),
                    line("admitted", &|s| Some(s.admitted as f64)),
                    line("decided", &|s| Some(s.decided as f64)),
                ],
            ),
        ),
        (
            "queue_depth.svg",
            line_chart(
                "Ready commands in RabbitMQ",
                "messages",
                &[line("ready", &|s| s.queue_depth.map(f64::from))],
            ),
        ),
        (
            "replicas.svg",
            line_chart(
                "Replicas",
                "processes",
                &[
                    line("gateways", &|s| Some(s.gateways as f64)),
                    line("workers", &|s| Some(s.workers as f64)),
                ],
            ),
        ),
        (
            "latency.svg",
            line_chart(
                "Latency per second",
                "milliseconds",
                &[
                    line("poll p50", &|s| Some(s.poll_p50_ms)),
                    line("poll p99", &|s| Some(s.poll_p99_ms)),
                    line("join p99", &|s| Some(s.join_p99_ms)),
                    line("enroll p99", &|s| Some(s.enroll_p99_ms)),
                ],
            ),
        ),
    ];
    if let Some(l) = ledger {
        let target = f64::from(r.admission_rate_target) / 60.0;
        files.push((
            "admission.svg",
            line_chart(
                "Admissions per second vs target",
                "students / s",
                &[
                    per_second("admitted", &l.admissions_per_s),
                    Series::new("target", vec![(0.0, target), (end, target)]).dashed(),
                ],
            ),
        ));
        files.push((
            "commits.svg",
            line_chart(
                "Commands decided per second",
                "commands / s",
                &[per_second("decided", &l.commits_per_s)],
            ),
        ));
    }
    for (name, svg) in files {
        let path = dir.join(name);
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
