//! "Send my cart when I am admitted": the opt-ins (`auto_sends`) and what
//! became of each. Written by the queue page and API (opt in or out) and by
//! the senders ([`crate::autosend`]).

use super::{MySqlStore, StoreError};
use enrollment::{CommandId, RoundId, StudentId};
use uuid::Uuid;

/// An opt-in as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoSend {
    /// `waiting`, `sent`, `empty` or `expired`.
    pub state: String,
    pub command_id: Option<CommandId>,
}

/// Opts in (`on`) or out. Opting in again after a send waits for the next
/// admission: the command id follows the admission, so the same one is
/// never sent twice. Opting out only stops what was not sent yet.
pub async fn set(
    store: &MySqlStore,
    round: RoundId,
    student: StudentId,
    on: bool,
) -> Result<(), StoreError> {
    let query = if on {
        sqlx::query(
            "INSERT INTO auto_sends (round_id, student_id, state, opted_at) \
             VALUES (?, ?, 'waiting', NOW(3)) \
             ON DUPLICATE KEY UPDATE state = 'waiting', opted_at = NOW(3)",
        )
    } else {
        sqlx::query(
            "DELETE FROM auto_sends WHERE round_id = ? AND student_id = ? AND state <> 'sent'",
        )
    };
    store
        .timed(query.bind(round.0).bind(student.0).execute(store.pool()))
        .await?;
    Ok(())
}

/// The student's opt-in for the round, if any.
pub async fn of(
    store: &MySqlStore,
    round: RoundId,
    student: StudentId,
) -> Result<Option<AutoSend>, StoreError> {
    let row: Option<(String, Option<Uuid>)> = store
        .timed(
            sqlx::query_as(
                "SELECT state, command_id FROM auto_sends WHERE round_id = ? AND student_id = ?",
            )
            .bind(round.0)
            .bind(student.0)
            .fetch_optional(store.pool()),
        )
        .await?;
    Ok(row.map(|(state, command_id)| AutoSend {
        state,
        command_id: command_id.map(CommandId),
    }))
}

/// An opted-in student who was admitted and whose cart is not sent yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub round: RoundId,
    pub student: StudentId,
    pub admitted_at_ms: u64,
    pub lease: Uuid,
    /// Time given back to the pass for outages (`tickets.pass_extra_ms`).
    pub pass_extra_ms: u64,
}

/// Up to `limit` admitted students whose cart waits to be sent, oldest
/// admission first.
pub async fn due(store: &MySqlStore, limit: u32) -> Result<Vec<Due>, StoreError> {
    let rows: Vec<(u32, u32, chrono::NaiveDateTime, Uuid, u32)> = store
        .timed(
            sqlx::query_as(
                "SELECT a.round_id, a.student_id, t.admitted_at, t.lease_id, t.pass_extra_ms \
                 FROM auto_sends a \
                 JOIN tickets t ON t.round_id = a.round_id AND t.student_id = a.student_id \
                 WHERE a.state = 'waiting' AND t.state = 'admitted' \
                   AND t.admitted_at IS NOT NULL AND t.lease_id IS NOT NULL \
                 ORDER BY t.admitted_at LIMIT ?",
            )
            .bind(limit)
            .fetch_all(store.pool()),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(round, student, at, lease, extra)| Due {
            round: RoundId(round),
            student: StudentId(student),
            admitted_at_ms: super::from_datetime(at),
            lease,
            pass_extra_ms: u64::from(extra),
        })
        .collect())
}

/// The admitted ticket of one opted-in student whose cart waits, if any
/// (the poll's fallback path).
pub async fn due_for(
    store: &MySqlStore,
    round: RoundId,
    student: StudentId,
) -> Result<Option<Due>, StoreError> {
    let row: Option<(chrono::NaiveDateTime, Uuid, u32)> = store
        .timed(
            sqlx::query_as(
                "SELECT t.admitted_at, t.lease_id, t.pass_extra_ms FROM auto_sends a \
                 JOIN tickets t ON t.round_id = a.round_id AND t.student_id = a.student_id \
                 WHERE a.round_id = ? AND a.student_id = ? AND a.state = 'waiting' \
                   AND t.state = 'admitted' AND t.admitted_at IS NOT NULL AND t.lease_id IS NOT NULL",
            )
            .bind(round.0)
            .bind(student.0)
            .fetch_optional(store.pool()),
        )
        .await?;
    Ok(row.map(|(at, lease, extra)| Due {
        round,
        student,
        admitted_at_ms: super::from_datetime(at),
        lease,
        pass_extra_ms: u64::from(extra),
    }))
}

/// Records what became of a waiting opt-in (`sent` with its command,
/// `empty` or `expired`). Only a waiting one changes: whichever sender
/// records first wins, and the others' copies carry the same command id.
pub async fn record(
    store: &MySqlStore,
    round: RoundId,
    student: StudentId,
    state: &str,
    command: Option<CommandId>,
) -> Result<(), StoreError> {
    store
        .timed(
            sqlx::query(
                "UPDATE auto_sends SET state = ?, command_id = ?, sent_at = NOW(3) \
                 WHERE round_id = ? AND student_id = ? AND state = 'waiting'",
            )
            .bind(state)
            .bind(command.map(|c| c.0))
            .bind(round.0)
            .bind(student.0)
            .execute(store.pool()),
        )
        .await?;
    Ok(())
}
