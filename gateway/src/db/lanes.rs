//! The lanes of rounds with a priority (decision 090): each class group's
//! own line in `round_lanes`, its keys, serving mark and carried rounding.
//!
//! Every function here runs inside a transaction that already holds the
//! round's row lock (joins, ticks, changes), so lane rows need no lock of
//! their own: the round lock orders everything that touches them, as it
//! orders the round's own keys and mark.

use super::{from_datetime, push_in, StoreError, CHUNK};
use enrollment::{RoundId, StudentId};
use sqlx::{MySql, MySqlPool, QueryBuilder, Row, Transaction};
use std::collections::HashMap;
use waitroom::priority::{lane_key, plan_lanes, split_key, LaneTick};
use waitroom::room::TickInput;
use waitroom::{Candidate, LaneView, Priority};

/// A stored policy, or corrupt data when it no longer parses.
pub(super) fn parse(stored: Option<String>) -> Result<Option<Priority>, StoreError> {
    match stored {
        None => Ok(None),
        Some(s) => Priority::parse(&s).map_err(|_| StoreError::Corrupt("rounds.priority")),
    }
}

/// One lane row.
#[derive(Debug, Clone, Copy, Default)]
struct Lane {
    last_key: u64,
    mark: u64,
    credit: i64,
}

/// The lanes of `rounds`, in lane order (old rounds' lanes are not read).
pub(super) async fn of_rounds(
    pool: &MySqlPool,
    rounds: &[u32],
) -> Result<HashMap<u32, Vec<LaneView>>, sqlx::Error> {
    if rounds.is_empty() {
        return Ok(HashMap::new());
    }
    let mut q = QueryBuilder::<MySql>::new(
        "SELECT round_id, lane, last_key, serving_mark FROM round_lanes WHERE round_id IN ",
    );
    push_in(&mut q, rounds);
    q.push(" ORDER BY round_id, lane");
    let rows = q.build().fetch_all(pool).await?;
    let mut out: HashMap<u32, Vec<LaneView>> = HashMap::new();
    for r in rows {
        let lanes = out.entry(r.try_get("round_id")?).or_default();
        let lane: u8 = r.try_get("lane")?;
        lanes.resize(lanes.len().max(usize::from(lane) + 1), LaneView::default());
        lanes[usize::from(lane)] = LaneView {
            last_key: r.try_get("last_key")?,
            serving_mark: r.try_get("serving_mark")?,
        };
    }
    Ok(out)
}

/// The round's lanes as stored, one per lane of `priority` (a missing row
/// reads as an empty lane).
async fn read(
    tx: &mut Transaction<'_, MySql>,
    round: RoundId,
    priority: &Priority,
) -> Result<Vec<Lane>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT lane, last_key, serving_mark, credit FROM round_lanes WHERE round_id = ?",
    )
    .bind(round.0)
    .fetch_all(&mut **tx)
    .await?;
    let mut lanes = vec![Lane::default(); priority.lanes()];
    for r in rows {
        let lane: u8 = r.try_get("lane")?;
        if let Some(l) = lanes.get_mut(usize::from(lane)) {
            *l = Lane {
                last_key: r.try_get("last_key")?,
                mark: r.try_get("serving_mark")?,
                credit: r.try_get("credit")?,
            };
        }
    }
    Ok(lanes)
}

/// Writes every lane of a round.
async fn write(
    tx: &mut Transaction<'_, MySql>,
    round: RoundId,
    lanes: &[Lane],
) -> Result<(), sqlx::Error> {
    if lanes.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<MySql>::new(
        "INSERT INTO round_lanes (round_id, lane, last_key, serving_mark, credit) ",
    );
    q.push_values(lanes.iter().enumerate(), |mut b, (i, l)| {
        b.push_bind(round.0)
            .push_bind(i as u8)
            .push_bind(l.last_key)
            .push_bind(l.mark)
            .push_bind(l.credit);
    });
    q.push(
        " ON DUPLICATE KEY UPDATE last_key = VALUES(last_key), \
         serving_mark = VALUES(serving_mark), credit = VALUES(credit)",
    );
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Declares (or removes) a round's priority; its lanes start empty (the
/// round has not opened, so nobody has a key yet).
pub(super) async fn set(
    tx: &mut Transaction<'_, MySql>,
    round: RoundId,
    priority: Option<Priority>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE rounds SET priority = ? WHERE id = ?")
        .bind(priority.map(|p| p.spec()))
        .bind(round.0)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM round_lanes WHERE round_id = ?")
        .bind(round.0)
        .execute(&mut **tx)
        .await?;
    if let Some(p) = priority {
        write(tx, round, &vec![Lane::default(); p.lanes()]).await?;
    }
    Ok(())
}

/// The class years of `students`.
async fn class_years(
    tx: &mut Transaction<'_, MySql>,
    students: &[StudentId],
) -> Result<HashMap<StudentId, u8>, sqlx::Error> {
    let mut out = HashMap::new();
    for chunk in students.chunks(CHUNK) {
        let mut q = QueryBuilder::<MySql>::new("SELECT id, class_year FROM students WHERE id IN ");
        let ids: Vec<u32> = chunk.iter().map(|s| s.0).collect();
        push_in(&mut q, &ids);
        for row in q.build().fetch_all(&mut **tx).await? {
            out.insert(StudentId(row.try_get("id")?), row.try_get("class_year")?);
        }
    }
    Ok(out)
}

/// Keys for students joining an open round, each at the back of their
/// class's lane, in the order given (ticket order); also every lane's mark,
/// for the places' progress.
pub(super) async fn join_keys(
    tx: &mut Transaction<'_, MySql>,
    round: RoundId,
    priority: &Priority,
    fresh: &[StudentId],
) -> Result<(Vec<u64>, Vec<u64>), StoreError> {
    let mut lanes = read(tx, round, priority).await?;
    let years = class_years(tx, fresh).await?;
    let mut keys = Vec::with_capacity(fresh.len());
    for s in fresh {
        let year = years.get(s).copied().unwrap_or(0);
        let lane = priority.lane_of(year);
        let l = lanes
            .get_mut(usize::from(lane))
            .ok_or(StoreError::Corrupt("round_lanes.lane"))?;
        // A lane holds 2^40 keys; past that a key would fold onto its own
        // low keys, so refuse rather than wrap.
        if l.last_key + 1 >= 1 << waitroom::priority::LANE_SHIFT {
            return Err(StoreError::Corrupt("round_lanes.last_key"));
        }
        l.last_key += 1;
        keys.push(lane_key(lane, l.last_key));
    }
    if !fresh.is_empty() {
        write(tx, round, &lanes).await?;
    }
    Ok((keys, lanes.iter().map(|l| l.mark).collect()))
}

/// At opening: the pre-queue cohort, shuffled inside each lane with the
/// round's seed (the published algorithm, applied to each lane's ticket
/// numbers), as `(seq, order_key)`; the lanes start at those keys.
pub(super) async fn cohort_keys(
    tx: &mut Transaction<'_, MySql>,
    round: RoundId,
    priority: &Priority,
    seed: u64,
) -> Result<Vec<(u64, u64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT t.seq, s.class_year FROM tickets t JOIN students s ON s.id = t.student_id \
         WHERE t.round_id = ? AND t.prequeue AND t.state = 'waiting'",
    )
    .bind(round.0)
    .fetch_all(&mut **tx)
    .await?;
    let mut by_lane: Vec<Vec<u64>> = vec![Vec::new(); priority.lanes()];
    for r in rows {
        let lane = priority.lane_of(r.try_get("class_year")?);
        by_lane
            .get_mut(usize::from(lane))
            .ok_or(StoreError::Corrupt("round_lanes.lane"))?
            .push(r.try_get("seq")?);
    }
    let mut keyed = Vec::new();
    let mut lanes = Vec::with_capacity(by_lane.len());
    for (lane, seqs) in by_lane.iter().enumerate() {
        let order = waitroom::prequeue_order(seqs, seed);
        keyed.extend(
            order
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, lane_key(lane as u8, i as u64 + 1))),
        );
        lanes.push(Lane {
            last_key: order.len() as u64,
            mark: 0,
            credit: 0,
        });
    }
    write(tx, round, &lanes).await?;
    Ok(keyed)
}

/// One tick's plan over the lanes: tickets to admit and to skip, and the
/// round's new serving mark (the sum of the lanes'). The lanes' marks and
/// carried rounding are written here.
pub(super) async fn plan_tick(
    tx: &mut Transaction<'_, MySql>,
    round: RoundId,
    priority: &Priority,
    budget: u64,
    input: &TickInput,
    lookahead: u64,
) -> Result<(Vec<u64>, Vec<u64>, u64), StoreError> {
    let mut lanes = read(tx, round, priority).await?;
    let limit = budget + lookahead;
    let mut candidates: Vec<Vec<Candidate>> = Vec::with_capacity(lanes.len());
    for (i, l) in lanes.iter().enumerate() {
        let mut c = Vec::new();
        if l.last_key > l.mark {
            let rows = sqlx::query(
                "SELECT seq, order_key, last_seen_at FROM tickets \
                 WHERE round_id = ? AND state = 'waiting' AND order_key > ? AND order_key <= ? \
                 ORDER BY order_key LIMIT ?",
            )
            .bind(round.0)
            .bind(lane_key(i as u8, l.mark))
            .bind(lane_key(i as u8, l.last_key))
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?;
            for r in rows {
                c.push(Candidate {
                    seq: r.try_get("seq")?,
                    order_key: r.try_get("order_key")?,
                    last_seen_ms: from_datetime(r.try_get("last_seen_at")?),
                });
            }
        }
        candidates.push(c);
    }
    let ticks: Vec<LaneTick<'_>> = candidates
        .iter()
        .zip(&lanes)
        .map(|(c, l)| LaneTick {
            candidates: c,
            complete: (c.len() as u64) < limit,
            credit: l.credit,
        })
        .collect();
    let plan = plan_lanes(
        priority,
        &ticks,
        budget,
        input.now_ms,
        input.grace_ms,
        input.grace_from_ms,
    );
    let (mut admit, mut skip) = (Vec::new(), Vec::new());
    let mut changed = false;
    for ((l, p), credit) in lanes.iter_mut().zip(&plan.plans).zip(&plan.credits) {
        admit.extend_from_slice(&p.admit);
        skip.extend_from_slice(&p.skip);
        if let Some(m) = p.mark {
            let m = split_key(m).1.max(l.mark);
            changed |= m != l.mark;
            l.mark = m;
        }
        changed |= *credit != l.credit;
        l.credit = *credit;
    }
    if changed {
        write(tx, round, &lanes).await?;
    }
    Ok((admit, skip, lanes.iter().map(|l| l.mark).sum()))
}
