//! The write step: applies a plan's [`Writes`] in the caller's transaction,
//! each change guarded on the state it was planned from.

use super::outcome::{Outcome, OutcomeRow, Writes};
use super::sql::{push_in, push_pairs, CHUNK};
use super::{Context, DecideError};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use enrollment::{Command, CommandId, Reason};
use sqlx::{MySqlConnection, QueryBuilder};
use std::collections::HashSet;
use uuid::Uuid;

/// Writes enrollments, seat counts, waitlist changes and outcome rows,
/// stamped `now` and decided by `ctx.worker`. Fails with
/// [`DecideError::Stale`] when a row is not in the state it was read in.
pub(super) async fn write(
    tx: &mut MySqlConnection,
    ctx: &Context<'_>,
    w: &Writes,
) -> Result<(), DecideError> {
    for chunk in w.enroll_delete.chunks(CHUNK) {
        let mut qb =
            QueryBuilder::new("DELETE FROM enrollments WHERE (student_id, section_id) IN ");
        push_pairs(&mut qb, chunk.iter().map(|(st, s)| (st.0, s.0)));
        let deleted = qb.build().execute(&mut *tx).await?.rows_affected();
        if deleted != chunk.len() as u64 {
            return Err(DecideError::Stale("an enrollment"));
        }
    }
    for chunk in w.enroll_insert.chunks(CHUNK) {
        let mut qb = QueryBuilder::new(
            "INSERT INTO enrollments (student_id, section_id, course_id, command_id, enrolled_at) ",
        );
        qb.push_values(chunk, |mut b, (st, s, c, cmd)| {
            b.push_bind(st.0)
                .push_bind(s.0)
                .push_bind(c.0)
                .push_bind(cmd.0)
                .push_bind(ctx.now);
        });
        qb.build().execute(&mut *tx).await?;
    }
    // Seat counts: one statement for every section whose count changed,
    // written as absolute values computed under the row locks.
    for chunk in w.seat_counts.chunks(CHUNK) {
        let mut qb = QueryBuilder::new("UPDATE sections SET enrolled = CASE id");
        for (id, enrolled) in chunk {
            qb.push(" WHEN ")
                .push_bind(id.0)
                .push(" THEN ")
                .push_bind(*enrolled);
        }
        qb.push(" END WHERE id IN ");
        push_in(&mut qb, chunk.iter().map(|(id, _)| id.0));
        qb.build().execute(&mut *tx).await?;
    }
    // Resolutions first: an entry resolved here and asked for again in the
    // same group is then removed by the insert below, like any other.
    for (id, new_state, resolution) in &w.waitlist_resolve {
        // Only an entry still waiting may be resolved: a promoted student is
        // never relabelled.
        let changed = sqlx::query(
            "UPDATE waitlist_entries SET state = ?, resolved_at = ?, resolved_by = ? \
             WHERE id = ? AND state = 'waiting'",
        )
        .bind(*new_state)
        .bind(ctx.now)
        .bind(resolution.0)
        .bind(*id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Err(DecideError::Stale("a waitlist entry"));
        }
    }
    for chunk in w.waitlist_insert.chunks(CHUNK) {
        // A student skipped or promoted earlier who asks again goes to the
        // back of the list: the old entry is removed, not revived.
        let mut qb = QueryBuilder::new(
            "DELETE FROM waitlist_entries WHERE state <> 'waiting' AND (section_id, student_id) IN ",
        );
        push_pairs(&mut qb, chunk.iter().map(|e| (e.section.0, e.student.0)));
        qb.build().execute(&mut *tx).await?;
        let mut qb = QueryBuilder::new(
            "INSERT INTO waitlist_entries \
             (section_id, student_id, round_id, command_id, state, created_at, resolved_at, resolved_by) ",
        );
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(e.section.0)
                .push_bind(e.student.0)
                .push_bind(e.round.0)
                .push_bind(e.command.0)
                .push_bind(e.state)
                .push_bind(ctx.now)
                .push_bind(e.resolved_by.map(|_| ctx.now))
                .push_bind(e.resolved_by.map(|r| r.0));
        });
        qb.build().execute(&mut *tx).await?;
    }
    insert_outcomes(tx, ctx, &w.outcomes).await
}

/// Clamps a client-supplied time into what DATETIME can store.
fn storable(t: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let floor = DateTime::<Utc>::UNIX_EPOCH;
    let ceil = now + ChronoDuration::days(1);
    t.clamp(floor, ceil)
}

async fn insert_outcomes(
    tx: &mut MySqlConnection,
    ctx: &Context<'_>,
    outcomes: &[OutcomeRow],
) -> Result<(), DecideError> {
    for chunk in outcomes.chunks(CHUNK) {
        let mut qb = QueryBuilder::new(
            "INSERT INTO command_outcomes (command_id, item, student_id, round_id, section_id, action, \
             outcome, reason, lease_id, issued_at, decided_at, decided_by, choice) ",
        );
        qb.push_values(chunk, |mut b, o| {
            b.push_bind(o.command.0)
                .push_bind(o.item)
                .push_bind(o.student.0)
                .push_bind(o.round.0)
                .push_bind(o.section.0)
                .push_bind(o.action)
                .push_bind(o.outcome.code())
                .push_bind(o.outcome.reason().map(Reason::code))
                .push_bind(o.lease)
                .push_bind(storable(o.issued_at, ctx.now))
                .push_bind(ctx.now)
                .push_bind(ctx.worker)
                .push_bind(o.choice);
        });
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Records `commands` as failed with `reason`: one `failed` outcome row per
/// item, so a command that cannot be decided still has exactly one outcome
/// its student can read. Commands decided meanwhile are left alone (the
/// outcome primary key refuses a second outcome even without the check).
/// No seat, waitlist or pass budget changes: the student may send it again.
/// Returns the commands recorded as failed.
pub async fn record_failed(
    tx: &mut MySqlConnection,
    ctx: &Context<'_>,
    commands: &[&Command],
    reason: Reason,
) -> Result<Vec<CommandId>, DecideError> {
    if commands.is_empty() {
        return Ok(Vec::new());
    }
    let mut qb =
        QueryBuilder::new("SELECT DISTINCT command_id FROM command_outcomes WHERE command_id IN ");
    push_in(&mut qb, commands.iter().map(|c| c.id.0));
    let rows: Vec<(Uuid,)> = qb.build_query_as().fetch_all(&mut *tx).await?;
    let mut done: HashSet<CommandId> = rows.into_iter().map(|(u,)| CommandId(u)).collect();
    let mut outcomes = Vec::new();
    let mut failed = Vec::new();
    for cmd in commands {
        if !done.insert(cmd.id) {
            continue;
        }
        failed.push(cmd.id);
        for (i, sid) in cmd.action.sections().iter().enumerate() {
            outcomes.push(OutcomeRow {
                command: cmd.id,
                item: u16::try_from(i).unwrap_or(u16::MAX),
                student: cmd.student,
                round: cmd.round,
                section: *sid,
                action: cmd.action.name(),
                outcome: Outcome::Failed(reason),
                lease: None,
                issued_at: cmd.issued_at,
                choice: 0,
            });
        }
    }
    insert_outcomes(tx, ctx, &outcomes).await?;
    Ok(failed)
}
