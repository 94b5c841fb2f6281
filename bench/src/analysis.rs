//! What the database says after a surge: invariants, lost commands,
//! admission order and pace, commits over time, and whether each full
//! section's seats went to the students admitted earlier.

use crate::fairness;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{MySqlPool, QueryBuilder};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Figures read from MySQL once the queue drained.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ledger {
    pub seats: u64,
    pub enrolled: u64,
    pub invariants: worker::invariants::Report,
    /// Commands answered 202 with no outcome row.
    pub lost_commands: u64,
    /// Commands decided, and their outcome items by reason.
    pub decided_commands: u64,
    pub outcomes: BTreeMap<String, u64>,
    pub admitted: u64,
    pub skipped: u64,
    /// Tickets a returning student took back (`reclaimed_at` set); `None`
    /// when the schema has no such column.
    pub reclaimed: Option<u64>,
    /// Each admitted student's `admitted_at`, in ms since the start.
    #[serde(skip)]
    pub admitted_at: HashMap<u32, i64>,
    /// Kendall tau-b between ticket order and admission time, outside the
    /// pre-queue cohort.
    pub kendall_tau: Option<f64>,
    /// Admissions per minute between the first and the last admission.
    pub admission_rate_achieved: f64,
    /// Per full section, the chance a seat holder was admitted before a
    /// student turned away as full: mean and worst section.
    pub seat_fairness_mean: Option<f64>,
    pub seat_fairness_min: Option<f64>,
    pub sections_full: u64,
    /// When each command was first decided, ms since the surge's start.
    #[serde(skip)]
    pub decided_at: HashMap<uuid::Uuid, i64>,
    /// Issue to decision of every command of the round (MySQL clocks).
    pub decision_server: Option<crate::choices::Spread>,
    /// Admissions and decided commands per second since the surge started.
    #[serde(skip)]
    pub admissions_per_s: Vec<u64>,
    #[serde(skip)]
    pub commits_per_s: Vec<u64>,
}

impl Ledger {
    pub fn commits_per_s_peak(&self) -> u64 {
        self.commits_per_s.iter().copied().max().unwrap_or(0)
    }
}

fn ms_since(t: DateTime<Utc>, start: DateTime<Utc>) -> i64 {
    (t - start).num_milliseconds()
}

fn per_second(times_ms: impl Iterator<Item = i64>) -> Vec<u64> {
    let mut v: Vec<u64> = Vec::new();
    for t in times_ms {
        let s = usize::try_from(t.max(0) / 1000).unwrap_or(0);
        if v.len() <= s {
            v.resize(s + 1, 0);
        }
        v[s] += 1;
    }
    v
}

/// Reads everything about `round` (and the seats of `sections`); the run
/// started at `start` and its 202-answered commands are `accepted`.
pub async fn read(
    pool: &MySqlPool,
    round: u32,
    sections: &[u32],
    accepted: &[uuid::Uuid],
    start: DateTime<Utc>,
) -> anyhow::Result<Ledger> {
    let mut ledger = Ledger {
        invariants: worker::invariants::check(pool).await?,
        ..Ledger::default()
    };

    let mut q = QueryBuilder::new(
        "SELECT CAST(COALESCE(SUM(capacity), 0) AS SIGNED), CAST(COALESCE(SUM(enrolled), 0) AS SIGNED) \
         FROM sections WHERE id IN ",
    );
    q.push_tuples(sections.iter().take(50_000), |mut b, id| {
        b.push_bind(*id);
    });
    let (seats, enrolled): (i64, i64) = q.build_query_as().fetch_one(pool).await?;
    ledger.seats = u64::try_from(seats).unwrap_or(0);
    ledger.enrolled = u64::try_from(enrolled).unwrap_or(0);

    let decided: Vec<(uuid::Uuid, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT command_id, MIN(decided_at), MIN(issued_at) FROM command_outcomes \
         WHERE round_id = ? GROUP BY command_id",
    )
    .bind(round)
    .fetch_all(pool)
    .await?;
    let ids: HashSet<uuid::Uuid> = decided.iter().map(|d| d.0).collect();
    ledger.decided_commands = ids.len() as u64;
    ledger.lost_commands = accepted.iter().filter(|id| !ids.contains(id)).count() as u64;
    ledger.commits_per_s = per_second(decided.iter().map(|d| ms_since(d.1, start)));
    ledger.decided_at = decided
        .iter()
        .map(|d| (d.0, ms_since(d.1, start)))
        .collect();
    ledger.decision_server = crate::choices::spread(
        decided
            .iter()
            .map(|d| u64::try_from((d.1 - d.2).num_microseconds().unwrap_or(0)).unwrap_or(0))
            .collect(),
    );

    let outcomes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT COALESCE(reason, outcome), COUNT(*) FROM command_outcomes WHERE round_id = ? GROUP BY 1",
    )
    .bind(round)
    .fetch_all(pool)
    .await?;
    ledger.outcomes = outcomes
        .into_iter()
        .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
        .collect();

    let tickets: Vec<(u64, bool, String, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT seq, prequeue, state, admitted_at FROM tickets WHERE round_id = ?")
            .bind(round)
            .fetch_all(pool)
            .await?;
    let admitted: Vec<(u64, bool, i64)> = tickets
        .iter()
        .filter_map(|(seq, pre, _, at)| at.map(|at| (*seq, *pre, ms_since(at, start))))
        .collect();
    ledger.admitted = admitted.len() as u64;
    ledger.skipped = tickets.iter().filter(|t| t.2 == "skipped").count() as u64;
    let stream: Vec<(u64, i64)> = admitted
        .iter()
        .filter(|a| !a.1)
        .map(|a| (a.0, a.2))
        .collect();
    ledger.kendall_tau = fairness::kendall_tau_b(&stream);
    ledger.admissions_per_s = per_second(admitted.iter().map(|a| a.2));
    let first = admitted.iter().map(|a| a.2).min();
    let last = admitted.iter().map(|a| a.2).max();
    if let (Some(first), Some(last)) = (first, last) {
        if last > first {
            ledger.admission_rate_achieved =
                (admitted.len() as f64 - 1.0) / ((last - first) as f64 / 60_000.0);
        }
    }

    // The column comes with reclaiming; against a schema without it the
    // figure is unknown, not zero, and the rest of the report stands.
    ledger.reclaimed = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM tickets WHERE round_id = ? AND reclaimed_at IS NOT NULL",
    )
    .bind(round)
    .fetch_one(pool)
    .await
    .ok()
    .map(|n| u64::try_from(n).unwrap_or(0));

    ledger.admitted_at = sqlx::query_as::<_, (u32, DateTime<Utc>)>(
        "SELECT student_id, admitted_at FROM tickets WHERE round_id = ? AND admitted_at IS NOT NULL",
    )
    .bind(round)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(s, at)| (s, ms_since(at, start)))
    .collect();
    let admitted_at = &ledger.admitted_at;
    let holders: Vec<(u32, u32)> = sqlx::query_as("SELECT section_id, student_id FROM enrollments")
        .fetch_all(pool)
        .await?;
    let turned_away: Vec<(u32, u32)> = sqlx::query_as(
        "SELECT DISTINCT o.section_id, o.student_id FROM command_outcomes o \
         WHERE o.round_id = ? AND o.reason = 'full' AND NOT EXISTS \
           (SELECT 1 FROM enrollments e WHERE e.student_id = o.student_id AND e.section_id = o.section_id)",
    )
    .bind(round)
    .fetch_all(pool)
    .await?;
    let group = |rows: &[(u32, u32)]| {
        let mut m: HashMap<u32, Vec<u64>> = HashMap::new();
        for (section, student) in rows {
            if let Some(&at) = admitted_at.get(student) {
                m.entry(*section)
                    .or_default()
                    .push(u64::try_from(at.max(0)).unwrap_or(0));
            }
        }
        m
    };
    let holders = group(&holders);
    let turned_away = group(&turned_away);
    let scores: Vec<f64> = turned_away
        .iter()
        .filter_map(|(section, away)| fairness::earlier_admitted_share(holders.get(section)?, away))
        .collect();
    ledger.sections_full = scores.len() as u64;
    if !scores.is_empty() {
        ledger.seat_fairness_mean = Some(scores.iter().sum::<f64>() / scores.len() as f64);
        ledger.seat_fairness_min = scores.iter().copied().reduce(f64::min);
    }
    Ok(ledger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_bucketed_by_second() {
        assert_eq!(
            per_second([0, 999, 1000, 3500].into_iter()),
            vec![2, 1, 0, 1]
        );
        assert!(per_second(std::iter::empty()).is_empty());
    }
}
