//! After the drain: the waiting room's figures, the state of the cluster,
//! the verdict, and the table printed from them.

use super::progress;
use crate::depth::Depth;
use crate::local::Local;
use crate::report::{FaultRecord, FaultSummary, KindSummary, Places, Report};
use crate::stats::Stats;
use anyhow::Context;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

pub(super) fn is_unexpected_5xx(error_kind: &str) -> bool {
    error_kind
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .is_some_and(|code| (500..600).contains(&code) && code != 503)
}

pub(super) fn summarize(faults: &[FaultRecord]) -> BTreeMap<&'static str, KindSummary> {
    let mut m: BTreeMap<&'static str, KindSummary> = BTreeMap::new();
    for f in faults.iter().filter(|f| f.ran) {
        let k = m.entry(f.kind).or_default();
        k.runs += 1;
        k.recovered += usize::from(f.recovered);
    }
    for (name, k) in &mut m {
        let mut times: Vec<f64> = faults
            .iter()
            .filter(|f| f.kind == *name)
            .filter_map(|f| f.recovery_s)
            .collect();
        times.sort_by(f64::total_cmp);
        k.recovery_s_median = times.get(times.len() / 2).copied();
        k.recovery_s_max = times.last().copied();
    }
    m
}

/// After the drain: the waiting room's figures, the state of the cluster,
/// and the verdict.
pub async fn judge(
    faults: Vec<FaultRecord>,
    pool: &sqlx::MySqlPool,
    round: u32,
    stats: &Stats,
    report: &Report,
    cluster: &Arc<Mutex<Local>>,
) -> anyhow::Result<FaultSummary> {
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(round)
            .fetch_one(pool)
            .await
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    let place_ended = report
        .errors
        .iter()
        .filter(|(k, _)| k.starts_with("queue ended") && !k.ends_with("closed"))
        .map(|(_, n)| n)
        .sum::<u64>();
    let stopped_waiting = Stats::get(&stats.stopped_waiting);
    let places = Places {
        tickets: count("SELECT COUNT(*) FROM tickets WHERE round_id = ?").await?,
        two_tickets: count(
            "SELECT COUNT(*) FROM (SELECT student_id FROM tickets WHERE round_id = ? \
             GROUP BY student_id HAVING COUNT(*) > 1) t",
        )
        .await?,
        admitted: count("SELECT COUNT(*) FROM tickets WHERE round_id = ? AND state = 'admitted'")
            .await?,
        admitted_inconsistent: count(
            "SELECT COUNT(*) FROM tickets WHERE round_id = ? AND \
             ((state = 'admitted' AND (admitted_at IS NULL OR lease_id IS NULL)) \
              OR (state IN ('waiting', 'skipped') AND admitted_at IS NOT NULL))",
        )
        .await?,
        skipped: count("SELECT COUNT(*) FROM tickets WHERE round_id = ? AND state = 'skipped'")
            .await?,
        still_waiting: count(
            "SELECT COUNT(*) FROM tickets WHERE round_id = ? AND state = 'waiting'",
        )
        .await?,
        place_ended,
        stopped_waiting,
        join_failed: report.students.saturating_sub(report.joined),
        dropped: place_ended + stopped_waiting,
    };
    let (urls, dead, amqp_url, prefix) = {
        let c = cluster.lock().await;
        let urls: Vec<String> = c
            .gateways
            .iter()
            .chain(&c.workers)
            .map(|p| format!("{}/readyz", p.base_url()))
            .collect();
        (
            urls,
            c.gateways.is_empty() || c.workers.is_empty(),
            c.settings.amqp_url.clone(),
            c.prefix.clone(),
        )
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .context("building a probe client")?;
    let ready = futures_util::future::join_all(urls.iter().map(|u| {
        let http = &http;
        async move {
            http.get(u)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    }))
    .await;
    let processes_ready_at_end = !dead && ready.iter().all(|r| *r);
    let mut depth = Depth::new(amqp_url, &prefix);
    let queue_answers = depth.read().await.is_some();
    depth.close().await;
    let dependencies_up_at_end = queue_answers && progress(pool, round).await.is_some();
    let errors = |f: &dyn Fn(&str) -> bool| -> u64 {
        report
            .errors
            .iter()
            .filter(|(k, _)| f(k))
            .map(|(_, n)| n)
            .sum()
    };
    let lost_commands = report.lost_commands.unwrap_or(0);
    let mut summary = FaultSummary {
        faults_run: faults.iter().filter(|f| f.ran).count(),
        by_kind: summarize(&faults),
        faults,
        oversold: report.oversold,
        duplicates: report.duplicates,
        lost_commands,
        http_5xx: report.http_5xx,
        http_5xx_unexpected: errors(&is_unexpected_5xx),
        connection_errors: errors(&|k| k.ends_with(" connect")),
        places,
        passes_refused: report.promises.passes_refused,
        processes_ready_at_end,
        dependencies_up_at_end,
        passed: false,
        failures: Vec::new(),
    };
    summary.failures = failures(&summary);
    summary.passed = summary.failures.is_empty();
    Ok(summary)
}

pub(super) fn failures(s: &FaultSummary) -> Vec<String> {
    let mut v = Vec::new();
    let mut nonzero = |name: &str, n: u64| {
        if n != 0 {
            v.push(format!("{name} = {n}"));
        }
    };
    nonzero("oversold", s.oversold);
    nonzero("duplicates", s.duplicates);
    nonzero("lost_commands", s.lost_commands);
    nonzero("http_5xx_unexpected", s.http_5xx_unexpected);
    nonzero("two_tickets", s.places.two_tickets);
    nonzero("admitted_inconsistent", s.places.admitted_inconsistent);
    nonzero("dropped", s.places.dropped);
    nonzero("passes_refused", s.passes_refused);
    if s.faults_run == 0 {
        v.push("no fault ran".to_string());
    }
    for f in &s.faults {
        if !f.ran {
            v.push(format!("{} at {:.0}s not run: {}", f.kind, f.at_s, f.note));
        } else if !f.recovered {
            v.push(format!(
                "{} at {:.0}s did not recover: {}",
                f.kind, f.at_s, f.note
            ));
        }
    }
    if !s.processes_ready_at_end {
        v.push("not every process was ready at the end".to_string());
    }
    if !s.dependencies_up_at_end {
        v.push("MariaDB or RabbitMQ did not answer at the end".to_string());
    }
    v
}

/// The human table of the faults and the verdict.
pub fn print(s: &FaultSummary) {
    let f1 = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    println!();
    println!(
        "{:<17} {:<26} {:>7} {:>9} {:>8} {:>9} {:>7} {:>9}",
        "fault", "target", "at s", "restored", "commits", "admission", "leader", "recovery"
    );
    for f in &s.faults {
        println!(
            "{:<17} {:<26} {:>7.1} {:>9} {:>8} {:>9} {:>7} {:>9}{}",
            f.kind,
            f.target.chars().take(26).collect::<String>(),
            f.at_s,
            f1(f.restored_s),
            f1(f.commits_resumed_s),
            f1(f.admission_resumed_s),
            f1(f.leader_s),
            f1(f.recovery_s),
            if f.recovered {
                String::new()
            } else {
                format!("  {}", f.note)
            }
        );
    }
    println!("(seconds from the fault)");
    for f in s.faults.iter().filter(|f| f.down_s.is_some()) {
        println!(
            "{} at {:.0}s: down {} s; then {} tickets skipped, {} reclaimed; admission {} /min, pace held {}",
            f.kind,
            f.at_s,
            f1(f.down_s),
            f.skipped_after.map_or("-".to_string(), |n| n.to_string()),
            f.reclaimed_after.map_or("-".to_string(), |n| n.to_string()),
            f.admission_per_min_after
                .map_or("-".to_string(), |n| format!("{n:.0}")),
            f.pace_held.map_or("-".to_string(), |b| b.to_string()),
        );
    }
    println!();
    let row = |k: &str, v: String| println!("{k:<34} {v:>14}");
    row("faults run", s.faults_run.to_string());
    row(
        "oversold / duplicates",
        format!("{} / {}", s.oversold, s.duplicates),
    );
    row("lost commands (202)", s.lost_commands.to_string());
    row(
        "http 5xx / not 503",
        format!("{} / {}", s.http_5xx, s.http_5xx_unexpected),
    );
    row("refused connections", s.connection_errors.to_string());
    row(
        "tickets / two per student",
        format!("{} / {}", s.places.tickets, s.places.two_tickets),
    );
    row(
        "admitted / inconsistent rows",
        format!("{} / {}", s.places.admitted, s.places.admitted_inconsistent),
    );
    row(
        "dropped (ended / stopped)",
        format!(
            "{} ({} / {})",
            s.places.dropped, s.places.place_ended, s.places.stopped_waiting
        ),
    );
    row("join failed", s.places.join_failed.to_string());
    row(
        "ready at the end",
        format!("{}", s.processes_ready_at_end && s.dependencies_up_at_end),
    );
    row("passed", s.passed.to_string());
    for f in &s.failures {
        println!("  failed: {f}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_5xx_other_than_503_are_unexpected() {
        assert!(is_unexpected_5xx("enroll 500"));
        assert!(is_unexpected_5xx("poll 502"));
        assert!(!is_unexpected_5xx("enroll 503"));
        assert!(!is_unexpected_5xx("poll connect"));
        assert!(!is_unexpected_5xx("join 429"));
    }

    #[test]
    fn a_refused_pass_fails_the_run() {
        let summary = |passes_refused| FaultSummary {
            faults: Vec::new(),
            faults_run: 1,
            by_kind: Default::default(),
            oversold: 0,
            duplicates: 0,
            lost_commands: 0,
            http_5xx: 0,
            http_5xx_unexpected: 0,
            connection_errors: 0,
            places: Places::default(),
            passes_refused,
            processes_ready_at_end: true,
            dependencies_up_at_end: true,
            passed: false,
            failures: Vec::new(),
        };
        assert!(failures(&summary(0)).is_empty());
        assert_eq!(
            failures(&summary(3)),
            vec!["passes_refused = 3".to_string()]
        );
    }
}
