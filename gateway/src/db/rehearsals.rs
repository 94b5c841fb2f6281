//! Rehearsals: the round flag that allows rehearsal runs, and the runs
//! themselves with their reports, as the admin API and the ops panel use
//! them. Every change is written with its audit row in one transaction.

use super::{audit, MySqlStore, StoreError};
use chrono::NaiveDateTime;

/// Marks a round as a rehearsal or not, with its audit row; returns false
/// when there is no such round.
pub async fn set_flag(
    store: &MySqlStore,
    round: u32,
    rehearsal: bool,
    actor: &str,
) -> Result<bool, StoreError> {
    let work = async {
        let mut tx = store.pool().begin().await?;
        let found: Option<bool> =
            sqlx::query_scalar("SELECT rehearsal FROM rounds WHERE id = ? FOR UPDATE")
                .bind(round)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(was) = found else {
            return Ok(false);
        };
        if was != rehearsal {
            sqlx::query(
                "UPDATE rounds SET rehearsal = ?, updated_at = UTC_TIMESTAMP(3) WHERE id = ?",
            )
            .bind(rehearsal)
            .bind(round)
            .execute(&mut *tx)
            .await?;
            audit::record(
                &mut tx,
                actor,
                "rehearsal",
                &format!("round:{round}"),
                serde_json::json!({ "rehearsal": rehearsal }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok::<bool, StoreError>(true)
    };
    store.timed(work).await
}

/// Whether a round is marked as a rehearsal; `None` when there is no such
/// round.
pub async fn flag(store: &MySqlStore, round: u32) -> Result<Option<bool>, StoreError> {
    store
        .timed(
            sqlx::query_scalar("SELECT rehearsal FROM rounds WHERE id = ?")
                .bind(round)
                .fetch_optional(store.pool()),
        )
        .await
}

/// What registering a run found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    Run(u64),
    NoRound,
    /// The round is not marked as a rehearsal: nothing was recorded.
    NotRehearsal,
}

/// Registers a rehearsal run against `round`, with its audit row, only if
/// the round is marked as a rehearsal (read under its row lock, so a flag
/// cleared at the same moment is seen).
pub async fn start(
    store: &MySqlStore,
    round: u32,
    students: u32,
    duration_s: u32,
    actor: &str,
) -> Result<Started, StoreError> {
    let work = async {
        let mut tx = store.pool().begin().await?;
        let found: Option<bool> =
            sqlx::query_scalar("SELECT rehearsal FROM rounds WHERE id = ? FOR UPDATE")
                .bind(round)
                .fetch_optional(&mut *tx)
                .await?;
        match found {
            None => return Ok(Started::NoRound),
            Some(false) => return Ok(Started::NotRehearsal),
            Some(true) => {}
        }
        let id = sqlx::query(
            "INSERT INTO rehearsal_runs (round_id, actor, students, duration_s, started_at) \
             VALUES (?, ?, ?, ?, UTC_TIMESTAMP(3))",
        )
        .bind(round)
        .bind(actor)
        .bind(students)
        .bind(duration_s)
        .execute(&mut *tx)
        .await?
        .last_insert_id();
        audit::record(
            &mut tx,
            actor,
            "rehearsal_run",
            &format!("round:{round}"),
            serde_json::json!({ "run": id, "students": students, "duration_s": duration_s }),
        )
        .await?;
        tx.commit().await?;
        Ok::<Started, StoreError>(Started::Run(id))
    };
    store.timed(work).await
}

/// Stores a run's report once; returns false when there is no such run or
/// it already has one.
pub async fn finish(
    store: &MySqlStore,
    run: u64,
    summary: &str,
    report: &str,
) -> Result<bool, StoreError> {
    let done = store
        .timed(
            sqlx::query(
                "UPDATE rehearsal_runs SET finished_at = UTC_TIMESTAMP(3), summary = ?, report = ? \
                 WHERE id = ? AND finished_at IS NULL",
            )
            .bind(summary)
            .bind(report)
            .bind(run)
            .execute(store.pool()),
        )
        .await?;
    Ok(done.rows_affected() == 1)
}

/// One run as the ops panel lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct Run {
    pub id: u64,
    pub round_id: u32,
    pub round_name: String,
    pub actor: String,
    pub students: u32,
    pub duration_s: u32,
    pub started_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub summary: Option<String>,
}

/// The newest 100 runs, newest first.
pub async fn list(store: &MySqlStore) -> Result<Vec<Run>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT x.id, x.round_id, r.name AS round_name, x.actor, x.students, x.duration_s, \
                        x.started_at, x.finished_at, x.summary \
                 FROM rehearsal_runs x JOIN rounds r ON r.id = x.round_id \
                 ORDER BY x.id DESC LIMIT 100",
            )
            .fetch_all(store.pool()),
        )
        .await
}

/// One run's stored report (JSON), if it has one.
pub async fn report(store: &MySqlStore, run: u64) -> Result<Option<String>, StoreError> {
    let found: Option<Option<String>> = store
        .timed(
            sqlx::query_scalar("SELECT report FROM rehearsal_runs WHERE id = ?")
                .bind(run)
                .fetch_optional(store.pool()),
        )
        .await?;
    Ok(found.flatten())
}
