//! Counts over decided commands (`command_outcomes`) for the registrar's
//! live view: what was decided lately, by how many workers, on which
//! sections.

use super::{MySqlStore, StoreError};
use chrono::NaiveDateTime;
use enrollment::RoundId;
use sqlx::Row;

/// Commands of one outcome and reason decided in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub outcome: String,
    /// Empty for outcomes without a reason.
    pub reason: String,
    pub count: u64,
    /// The longest time from issue to decision, in microseconds.
    pub max_lag_us: Option<i64>,
}

/// Round `round`'s commands decided since `since`, by outcome and reason.
pub async fn decided_since(
    store: &MySqlStore,
    round: RoundId,
    since: NaiveDateTime,
) -> Result<Vec<Decided>, StoreError> {
    let rows = store
        .timed(
            sqlx::query(
                "SELECT outcome, COALESCE(reason, '') AS reason, COUNT(*) AS n, \
                        MAX(TIMESTAMPDIFF(MICROSECOND, issued_at, decided_at)) AS lag_us \
                 FROM command_outcomes WHERE round_id = ? AND decided_at >= ? \
                 GROUP BY outcome, reason",
            )
            .bind(round.0)
            .bind(since)
            .fetch_all(store.pool()),
        )
        .await?;
    rows.iter()
        .map(|r| {
            let n: i64 = r.try_get("n")?;
            Ok(Decided {
                outcome: r.try_get("outcome")?,
                reason: r.try_get("reason")?,
                count: u64::try_from(n).unwrap_or(0),
                max_lag_us: r.try_get("lag_us")?,
            })
        })
        .collect()
}

/// Workers that decided a command of round `round` since `since`.
pub async fn workers_since(
    store: &MySqlStore,
    round: RoundId,
    since: NaiveDateTime,
) -> Result<u64, StoreError> {
    let workers: i64 = store
        .timed(
            sqlx::query_scalar(
                "SELECT COUNT(DISTINCT decided_by) FROM command_outcomes \
                 WHERE round_id = ? AND decided_at >= ?",
            )
            .bind(round.0)
            .bind(since)
            .fetch_one(store.pool()),
        )
        .await?;
    Ok(u64::try_from(workers).unwrap_or(0))
}

/// The `limit` sections with the most enroll commands of round `round`
/// decided since `since`: (section id, commands).
pub async fn busiest_sections(
    store: &MySqlStore,
    round: RoundId,
    since: NaiveDateTime,
    limit: u32,
) -> Result<Vec<(u32, u64)>, StoreError> {
    let rows = store
        .timed(
            sqlx::query(
                "SELECT section_id, COUNT(*) AS n FROM command_outcomes \
                 WHERE round_id = ? AND decided_at >= ? AND action = 'enroll' AND section_id IS NOT NULL \
                 GROUP BY section_id ORDER BY n DESC LIMIT ?",
            )
            .bind(round.0)
            .bind(since)
            .bind(limit)
            .fetch_all(store.pool()),
        )
        .await?;
    rows.iter()
        .map(|r| {
            let n: i64 = r.try_get("n")?;
            Ok((r.try_get("section_id")?, u64::try_from(n).unwrap_or(0)))
        })
        .collect()
}
