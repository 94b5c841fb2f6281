//! `sluice_section_seats_remaining` for the hottest sections.
//!
//! Every gateway runs one small query every few seconds: the 20 sections
//! with the most commands decided in the last minute (read through the
//! `(round_id, decided_at)` index, for the rounds that are running), or,
//! when nothing was decided lately, the 20 fullest sections. The label set
//! is bounded to those 20: a section that leaves the set stops being
//! reported and its series goes idle (see [`crate::telemetry`]).

use crate::db::{to_datetime, MySqlStore, StoreError};
use crate::rooms::Rooms;
use sqlx::{MySql, QueryBuilder, Row};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use waitroom::RoundState;

/// Sections reported.
pub const HOTTEST: u32 = 20;

/// How far back demand is measured.
const DEMAND_WINDOW_MS: u64 = 60_000;

/// One reported section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatCount {
    /// Course code and section number, for example `CSE101-01`.
    pub code: String,
    pub remaining: i64,
}

/// Refreshes the gauges every `every` until `shutdown`.
pub async fn report(
    store: Arc<MySqlStore>,
    rooms: Arc<Rooms>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        crate::telemetry::keep_alive();
        let rounds: Vec<u32> = rooms
            .snapshot()
            .rounds
            .values()
            .filter(|r| matches!(r.view.state, RoundState::Open | RoundState::Paused))
            .map(|r| r.view.id.0)
            .collect();
        match hottest(&store, &rounds, crate::clock::now_ms()).await {
            Ok(counts) => {
                failing = false;
                for c in counts {
                    metrics::gauge!("sluice_section_seats_remaining", "section" => c.code)
                        .set(c.remaining as f64);
                }
            }
            Err(e) => {
                // The room snapshot already reports the outage; say it once.
                if !failing {
                    tracing::warn!(error = %e, "seat gauges not refreshed");
                }
                failing = true;
            }
        }
    }
}

/// The hottest sections' remaining seats.
pub async fn hottest(
    store: &MySqlStore,
    rounds: &[u32],
    now_ms: u64,
) -> Result<Vec<SeatCount>, StoreError> {
    store
        .timed(async {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            if !rounds.is_empty() {
                let mut q = QueryBuilder::<MySql>::new(
                    "SELECT c.code, s.number, CAST(s.capacity AS SIGNED) - CAST(s.enrolled AS SIGNED) AS remaining \
                     FROM (SELECT section_id, COUNT(*) AS demand FROM command_outcomes \
                           WHERE section_id IS NOT NULL AND decided_at > ",
                );
                q.push_bind(to_datetime(now_ms.saturating_sub(DEMAND_WINDOW_MS)))
                    .push(" AND round_id IN (");
                let mut ids = q.separated(", ");
                for &r in rounds {
                    ids.push_bind(r);
                }
                q.push(") GROUP BY section_id ORDER BY demand DESC LIMIT ")
                    .push_bind(HOTTEST)
                    .push(
                        ") hot JOIN sections s ON s.id = hot.section_id \
                         JOIN courses c ON c.id = s.course_id",
                    );
                for row in q.build().fetch_all(store.pool()).await? {
                    push_row(&row, &mut seen, &mut out)?;
                }
            }
            if out.is_empty() {
                let rows = sqlx::query(
                    "SELECT c.code, s.number, CAST(s.capacity AS SIGNED) - CAST(s.enrolled AS SIGNED) AS remaining \
                     FROM sections s JOIN courses c ON c.id = s.course_id \
                     WHERE NOT s.closed ORDER BY s.enrolled DESC, s.id LIMIT ?",
                )
                .bind(HOTTEST)
                .fetch_all(store.pool())
                .await?;
                for row in rows {
                    push_row(&row, &mut seen, &mut out)?;
                }
            }
            Ok::<_, sqlx::Error>(out)
        })
        .await
}

fn push_row(
    row: &sqlx::mysql::MySqlRow,
    seen: &mut HashSet<String>,
    out: &mut Vec<SeatCount>,
) -> Result<(), sqlx::Error> {
    let course: String = row.try_get("code")?;
    let number: u16 = row.try_get("number")?;
    let code = format!("{course}-{number:02}");
    if seen.insert(code.clone()) {
        out.push(SeatCount {
            code,
            remaining: row.try_get("remaining")?,
        });
    }
    Ok(())
}
