//! The automatic pace's reads and writes: the decision latency the leader
//! measures, and the rate it sets. Only the admission leader calls these,
//! once per pace step per round in automatic mode.

use super::{to_datetime, MySqlStore, StoreError};
use enrollment::RoundId;
use waitroom::autopace::PaceStep;

/// At most this many recent decisions are read per step: the index range
/// on `ix_outcomes_round` is walked newest first and stops there, so a surge
/// costs the same as a quiet minute.
const LATENCY_SAMPLE: u32 = 500;

/// Decision latencies (issued to decided, in ms) of round `round`'s
/// commands decided since `since_ms`, newest first, at most
/// [`LATENCY_SAMPLE`].
pub async fn recent_latencies(
    store: &MySqlStore,
    round: RoundId,
    since_ms: u64,
) -> Result<Vec<u32>, StoreError> {
    let rows: Vec<i64> = store
        .timed(
            sqlx::query_scalar(
                "SELECT TIMESTAMPDIFF(MICROSECOND, issued_at, decided_at) DIV 1000 \
                 FROM command_outcomes WHERE round_id = ? AND decided_at >= ? \
                 ORDER BY decided_at DESC LIMIT ?",
            )
            .bind(round.0)
            .bind(to_datetime(since_ms))
            .bind(LATENCY_SAMPLE)
            .fetch_all(store.pool()),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|ms| u32::try_from(ms.max(0)).unwrap_or(u32::MAX))
        .collect())
}

/// Records the controller's step on a round still in automatic mode (a
/// registrar switching back to fixed meanwhile wins). `changed` stamps the
/// time the rate changed. Whether the round was updated.
pub async fn record_step(
    store: &MySqlStore,
    round: RoundId,
    step: &PaceStep,
    changed: bool,
    now_ms: u64,
) -> Result<bool, StoreError> {
    store
        .timed(async {
            sqlx::query(
                "UPDATE rounds SET \
                 rate_lowered_at = IF(? < admission_per_min, ?, rate_lowered_at), \
                 admission_per_min = ?, pace_reason = ?, pace_signal = ?, \
                 pace_changed_at = IF(?, ?, pace_changed_at) \
                 WHERE id = ? AND pace_mode = 'auto'",
            )
            .bind(step.per_min)
            .bind(to_datetime(now_ms))
            .bind(step.per_min)
            .bind(step.reason.as_str())
            .bind(step.signal)
            .bind(changed)
            .bind(to_datetime(now_ms))
            .bind(round.0)
            .execute(store.pool())
            .await
            .map(|r| r.rows_affected() > 0)
        })
        .await
}

/// Students of round `round` with a command decided in `[from_ms, to_ms)`:
/// the workers' output over one busy window, counted per student (the
/// capacity the automatic pace measures, see
/// [`waitroom::autopace::capacity_sample`]). The range on
/// `ix_outcomes_round` holds the few seconds' decisions.
pub async fn students_decided_between(
    store: &MySqlStore,
    round: RoundId,
    from_ms: u64,
    to_ms: u64,
) -> Result<u64, StoreError> {
    let n: i64 = store
        .timed(
            sqlx::query_scalar(
                "SELECT COUNT(DISTINCT student_id) FROM command_outcomes \
                 WHERE round_id = ? AND decided_at >= ? AND decided_at < ?",
            )
            .bind(round.0)
            .bind(to_datetime(from_ms))
            .bind(to_datetime(to_ms))
            .fetch_one(store.pool()),
        )
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Records the workers' measured speed on round `round`, and whether it
/// has settled ([`waitroom::autopace::settles`]).
pub async fn record_capacity(
    store: &MySqlStore,
    round: RoundId,
    per_min: u32,
    settled: bool,
    now_ms: u64,
) -> Result<(), StoreError> {
    store
        .timed(
            sqlx::query(
                "UPDATE rounds SET pace_capacity_per_min = ?, pace_capacity_settled = ?, \
                 pace_capacity_at = ? WHERE id = ?",
            )
            .bind(per_min)
            .bind(settled)
            .bind(to_datetime(now_ms))
            .bind(round.0)
            .execute(store.pool()),
        )
        .await?;
    Ok(())
}
