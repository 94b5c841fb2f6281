//! What the fairness report reads: the round's published seed, the order
//! tickets were admitted in, the pre-queue keys, and demand per section.

use super::{MySqlStore, StoreError};
use chrono::NaiveDateTime;

/// The round's shuffle seed and cohort.
#[derive(Debug, sqlx::FromRow)]
pub struct Round {
    pub name: String,
    pub shuffle_seed: Option<u64>,
    pub seed_published_at: Option<NaiveDateTime>,
    pub cohort_size: u32,
    /// The declared priority (`strict:4/1-3`...), `None` for one line.
    pub priority: Option<String>,
}

pub async fn round(store: &MySqlStore, id: u32) -> Result<Option<Round>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT name, shuffle_seed, seed_published_at, cohort_size, priority FROM rounds WHERE id = ?",
            )
            .bind(id)
            .fetch_optional(store.pool()),
        )
        .await
}

/// Admitted tickets, and how many were admitted before one with a smaller
/// order key in the same line. Ordered by key, admission times never go
/// backwards inside a line; counting the places where they do is the check.
/// (A round with priority has a line per class, its keys in a band of their
/// own above 2^40; without, one line.)
pub async fn admission_inversions(store: &MySqlStore, id: u32) -> Result<(i64, i64), StoreError> {
    let (admitted, inversions): (i64, Option<i64>) = store
        .timed(
            sqlx::query_as(
                "SELECT COUNT(*), CAST(SUM(CASE WHEN prev_at > admitted_at THEN 1 ELSE 0 END) AS SIGNED) FROM ( \
                   SELECT admitted_at, LAG(admitted_at) OVER (PARTITION BY order_key DIV ? ORDER BY order_key) AS prev_at \
                   FROM tickets WHERE round_id = ? AND admitted_at IS NOT NULL AND order_key IS NOT NULL) t",
            )
            .bind(1u64 << waitroom::priority::LANE_SHIFT)
            .bind(id)
            .fetch_one(store.pool()),
        )
        .await?;
    Ok((admitted, inversions.unwrap_or(0)))
}

/// The pre-queue cohort's tickets: (join sequence, order key), by sequence.
pub async fn prequeue_keys(
    store: &MySqlStore,
    id: u32,
) -> Result<Vec<(u64, Option<u64>)>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT seq, order_key FROM tickets WHERE round_id = ? AND prequeue ORDER BY seq",
            )
            .bind(id)
            .fetch_all(store.pool()),
        )
        .await
}

/// A keyed ticket of the round, for the per-class figures.
#[derive(Debug, sqlx::FromRow)]
pub struct LineTicket {
    pub order_key: u64,
    pub prequeue: bool,
    pub joined_at: NaiveDateTime,
    pub admitted_at: Option<NaiveDateTime>,
}

/// Every ticket of the round that got a place in a line.
pub async fn line_tickets(store: &MySqlStore, id: u32) -> Result<Vec<LineTicket>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT order_key, prequeue, joined_at, admitted_at FROM tickets \
                 WHERE round_id = ? AND order_key IS NOT NULL",
            )
            .bind(id)
            .fetch_all(store.pool()),
        )
        .await
}

/// One section's demand in a round.
#[derive(Debug, sqlx::FromRow)]
pub struct Demand {
    pub code: String,
    pub number: u16,
    pub capacity: u32,
    pub students: i64,
    pub enrolled: Option<i64>,
    pub full_n: Option<i64>,
}

/// The 200 most asked-for sections: students who asked, how many got a
/// seat, how many were refused as full.
pub async fn demand(store: &MySqlStore, id: u32) -> Result<Vec<Demand>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT o.section_id, c.code, s.number, s.capacity, COUNT(DISTINCT o.student_id) AS students, \
                        CAST(SUM(o.outcome = 'enrolled') AS SIGNED) AS enrolled, \
                        CAST(SUM(COALESCE(o.reason = 'full', 0)) AS SIGNED) AS full_n \
                 FROM command_outcomes o JOIN sections s ON s.id = o.section_id JOIN courses c ON c.id = s.course_id \
                 WHERE o.round_id = ? AND o.action = 'enroll' \
                 GROUP BY o.section_id, c.code, s.number, s.capacity ORDER BY students DESC LIMIT 200",
            )
            .bind(id)
            .fetch_all(store.pool()),
        )
        .await
}
