//! The waiting room's shared state in MySQL: [`waitroom::RoomStore`] over a
//! bounded sqlx pool.
//!
//! Every method runs under one timeout, so a stuck database turns into an
//! error the caller answers with "paused, your place is kept", never into a
//! hung request. All SQL binds its values; the few statements built at run
//! time (`IN` lists off the hot paths) only add placeholders, and the hot
//! ones (joins, sightings) pass their rows as one JSON parameter read by
//! `JSON_TABLE`, so that one statement text serves any number of rows.
//!
//! Concurrency: joins and admission ticks of a round lock the round's row
//! first (`SELECT ... FOR UPDATE`). That one lock is what makes order keys
//! dense and monotonic in ticket order, makes opening (the shuffle) atomic
//! with respect to late pre-queue joins, and keeps two leaders (a split brain
//! during failover) from admitting the same ticket twice.

use super::{from_datetime, push_in, to_datetime, MySqlStore, StoreError, CHUNK};
use chrono::{DateTime, NaiveDateTime};
use enrollment::{RoundId, StudentId};
use sqlx::{MySql, QueryBuilder, Row};
use std::collections::HashMap;
use waitroom::room::{ChangeError, TickInput};
use waitroom::{
    plan_admission, Candidate, Hold, JoinRefused, JoinRequest, Place, RoomStore, RoundChange,
    RoundState, RoundView, TickOutcome, Ticket, TicketState,
};

/// Candidates read per tick beyond the budget, so a run of abandoned
/// tickets is skipped in one tick instead of stalling admission.
const SKIP_LOOKAHEAD: u64 = 256;

/// Closed rounds stay visible this long (the closed page, the seed).
const CLOSED_VISIBLE_MS: u64 = 24 * 3600 * 1000;

impl MySqlStore {
    /// The student's ticket in `round`, if any: what a pass is renewed
    /// from once its own end is past.
    pub async fn admission(
        &self,
        round: RoundId,
        student: StudentId,
    ) -> Result<Option<Ticket>, StoreError> {
        self.timed(async {
            let row = sqlx::query(
                "SELECT seq, round_id, student_id, order_key, state, admitted_at, lease_id, \
                 skipped_at, reclaim_at, pass_extra_ms FROM tickets \
                 WHERE round_id = ? AND student_id = ?",
            )
            .bind(round.0)
            .bind(student.0)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(ticket).transpose()
        })
        .await
    }

    async fn join_round(
        &self,
        round: RoundId,
        reqs: &[JoinRequest],
    ) -> Result<Vec<Result<Place, JoinRefused>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT state, serving_mark, last_order_key, priority, pass_clock_at \
             FROM rounds WHERE id = ? FOR UPDATE",
        )
        .bind(round.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(reqs
                .iter()
                .map(|_| Err(JoinRefused::UnknownRound))
                .collect());
        };
        let state = parse_round_state(row.try_get("state")?)?;
        if !state.accepts_joins() {
            return Ok(reqs.iter().map(|_| Err(JoinRefused::NotOpen)).collect());
        }
        let mark: u64 = row.try_get("serving_mark")?;
        let mut last_key: u64 = row.try_get("last_order_key")?;
        let priority = super::lanes::parse(row.try_get("priority")?)?;
        let now_ms = reqs.iter().map(|r| r.at_ms).max().unwrap_or(0);
        let now = to_datetime(now_ms);
        let pass_reference = waitroom::room::pass_reference_ms(
            now_ms,
            row.try_get::<Option<NaiveDateTime>, _>("pass_clock_at")?
                .map(from_datetime),
        );

        // The students' current tickets, if any.
        let mut students: Vec<StudentId> = reqs.iter().map(|r| r.student).collect();
        students.sort_unstable();
        students.dedup();
        let existing = select_tickets(&mut tx, round, &students).await?;

        let mut kept: HashMap<StudentId, Ticket> = HashMap::new();
        let mut replace = Vec::new();
        let mut fresh = Vec::new();
        let mut returning = Vec::new();
        for &student in &students {
            match existing.get(&student) {
                Some(t) if self.holds_place(t, pass_reference) => {
                    kept.insert(student, t.clone());
                }
                // Skipped a moment ago (a locked phone, a suspended tab):
                // joining again keeps the turn instead of going to the back.
                Some(t) if t.reclaimable(now_ms, self.reclaim_window_ms) => {
                    let mut t = t.clone();
                    t.reclaim_requested = true;
                    returning.push(t.seq);
                    kept.insert(student, t);
                }
                Some(t) => {
                    replace.push(t.seq);
                    fresh.push(student);
                }
                None => fresh.push(student),
            }
        }

        if !returning.is_empty() {
            let mut q =
                QueryBuilder::<MySql>::new("UPDATE tickets SET reclaim_at = COALESCE(reclaim_at, ");
            q.push_bind(now)
                .push(") WHERE state = 'skipped' AND seq IN ");
            push_in(&mut q, &returning);
            q.build().execute(&mut *tx).await?;
        }

        if !replace.is_empty() {
            // A skipped, departed or expired ticket gives way to a new one at
            // the back: a new sequence number keeps key order = ticket order.
            // The old ticket's history goes to the audit log first, in the
            // same transaction, so a rejoin never erases what happened.
            let mut q = QueryBuilder::<MySql>::new(
                "INSERT INTO audit_log (at, actor, action, subject, detail) SELECT ",
            );
            q.push_bind(now).push(
                ", 'waitroom', 'ticket.replaced', CONCAT('round:', round_id), \
                     JSON_OBJECT('seq', seq, 'student_id', student_id, 'order_key', order_key, \
                     'prequeue', prequeue, 'state', state, \
                     'joined_at', DATE_FORMAT(joined_at, '%Y-%m-%dT%H:%i:%s.%fZ'), \
                     'last_seen_at', DATE_FORMAT(last_seen_at, '%Y-%m-%dT%H:%i:%s.%fZ'), \
                     'admitted_at', DATE_FORMAT(admitted_at, '%Y-%m-%dT%H:%i:%s.%fZ'), \
                     'lease_id', LOWER(HEX(lease_id))) \
                     FROM tickets WHERE seq IN ",
            );
            push_in(&mut q, &replace);
            q.build().execute(&mut *tx).await?;
            let mut q = QueryBuilder::<MySql>::new("DELETE FROM tickets WHERE seq IN ");
            push_in(&mut q, &replace);
            q.build().execute(&mut *tx).await?;
        }

        let prequeue = state == RoundState::Prequeue;
        // With a priority each class has its own line: keys (and marks)
        // are the lane's; without, one line, as always.
        let mut lane_marks = Vec::new();
        let mut keys: Vec<Option<u64>> = (1..=fresh.len() as u64)
            .map(|i| (!prequeue).then_some(last_key + i))
            .collect();
        // (Pre-queue tickets have no key yet: their lane is set at opening.)
        if let (Some(p), false) = (&priority, prequeue) {
            let (lane_keys, marks) = super::lanes::join_keys(&mut tx, round, p, &fresh).await?;
            keys = lane_keys.into_iter().map(Some).collect();
            lane_marks = marks;
        }
        let mark_of = |key: Option<u64>| match (&priority, key) {
            (None, _) => mark,
            (Some(_), None) => 0,
            (Some(_), Some(k)) => {
                let (lane, _) = waitroom::priority::split_key(k);
                lane_marks.get(usize::from(lane)).copied().unwrap_or(0)
            }
        };
        if !fresh.is_empty() {
            // The new tickets travel as one JSON parameter (as the liveness
            // sightings do): one statement text whatever the batch's size,
            // prepared once per connection. With a placeholder list each
            // size of batch was a new statement, prepared (and its seven
            // definitions a row read back) at nearly every batch.
            //
            // `ORDER BY j.ord` gives the tickets their `seq` in the batch's
            // order. A pre-queue ticket has no key: its pair has one element
            // and the missing path reads as NULL (NULL ON EMPTY, the
            // default in MariaDB and MySQL alike), where a JSON `null` would
            // leave the conversion to each server's reading of it.
            //
            // `INSERT ... SELECT` takes InnoDB's table-wide AUTO-INC lock for
            // the statement (lock mode 1, MariaDB's default), so joins of
            // different rounds wait on each other for its length; joins of
            // one round are already serialized by the round's row lock
            // (under lock mode 2, MySQL 8's default, the AUTO-INC lock is
            // not held). Either way `seq` may skip values, as bulk inserts
            // reserve ahead; nothing relies on it being dense, only on its
            // order within a statement.
            let rows = json_pairs(fresh.iter().zip(&keys).map(|(s, &k)| (u64::from(s.0), k)));
            sqlx::query(
                "INSERT INTO tickets \
                   (round_id, student_id, order_key, prequeue, state, joined_at, last_seen_at) \
                 SELECT ?, j.student, j.order_key, ?, 'waiting', ?, ? \
                 FROM JSON_TABLE(?, '$[*]' COLUMNS ( \
                   ord FOR ORDINALITY, \
                   student INT UNSIGNED PATH '$[0]', order_key BIGINT UNSIGNED PATH '$[1]')) AS j \
                 ORDER BY j.ord",
            )
            .bind(round.0)
            .bind(prequeue)
            .bind(now)
            .bind(now)
            .bind(rows.as_str())
            .execute(&mut *tx)
            .await?;
            if !prequeue {
                last_key += fresh.len() as u64;
                sqlx::query("UPDATE rounds SET last_order_key = ? WHERE id = ?")
                    .bind(last_key)
                    .bind(round.0)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // The new tickets are as inserted: only their numbers are read.
        let seqs = select_seqs(&mut tx, round, &fresh).await?;
        tx.commit().await?;
        let mut created: HashMap<StudentId, Ticket> = HashMap::with_capacity(fresh.len());
        for (&student, &order_key) in fresh.iter().zip(&keys) {
            let seq = *seqs
                .get(&student)
                .ok_or(StoreError::Corrupt("tickets.seq"))?;
            created.insert(
                student,
                Ticket {
                    seq,
                    round,
                    student,
                    order_key,
                    state: TicketState::Waiting,
                    admitted_at_ms: None,
                    lease: None,
                    skipped_at_ms: None,
                    reclaim_requested: false,
                    pass_extra_ms: 0,
                },
            );
        }

        let mut answers = Vec::with_capacity(reqs.len());
        for r in reqs {
            let place = if let Some(t) = kept.get(&r.student) {
                Place {
                    ticket: t.clone(),
                    mark_at_join: mark_of(t.order_key),
                    kept: true,
                }
            } else {
                let t = created
                    .get(&r.student)
                    .ok_or(StoreError::Corrupt("tickets.seq"))?;
                Place {
                    ticket: t.clone(),
                    mark_at_join: mark_of(t.order_key),
                    kept: false,
                }
            };
            answers.push(Ok(place));
        }
        Ok(answers)
    }

    /// Whether an existing ticket still holds a place a join should keep;
    /// `pass_reference_ms` is the instant a pass must outlive
    /// ([`waitroom::room::pass_reference_ms`]).
    fn holds_place(&self, t: &Ticket, pass_reference_ms: u64) -> bool {
        match t.state {
            TicketState::Waiting => true,
            TicketState::Admitted => t
                .pass_expires_at_ms(self.pass_ttl_ms)
                .is_some_and(|exp| pass_reference_ms < exp),
            TicketState::Skipped | TicketState::Left => false,
        }
    }

    /// Admitted tickets of `round` whose pass, extensions included, runs
    /// past the instant whose lifetime-ago is `since` (`since` = that
    /// instant minus the pass lifetime). `extended_total` (no ticket has
    /// more added) bounds the index range read.
    async fn count_passes_alive(
        &self,
        tx: &mut sqlx::Transaction<'_, MySql>,
        round: RoundId,
        since: u64,
        extended_total: u64,
    ) -> Result<u32, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets WHERE round_id = ? AND state = 'admitted' \
               AND admitted_at > ? \
               AND admitted_at > DATE_SUB(?, INTERVAL pass_extra_ms * 1000 MICROSECOND)",
        )
        .bind(round.0)
        .bind(to_datetime(since.saturating_sub(extended_total)))
        .bind(to_datetime(since))
        .fetch_one(&mut **tx)
        .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Gives `gap_ms` to every pass of `round` alive at `alive_at_ms` (when
    /// admission last ran), records it in the audit log, and returns how
    /// many passes it extended.
    async fn extend_passes(
        &self,
        tx: &mut sqlx::Transaction<'_, MySql>,
        round: RoundId,
        alive_at_ms: u64,
        gap_ms: u64,
        extended_total: u64,
    ) -> Result<u64, StoreError> {
        let since = alive_at_ms.saturating_sub(self.pass_ttl_ms);
        let gap = u32::try_from(gap_ms).unwrap_or(u32::MAX);
        let extended = sqlx::query(
            "UPDATE tickets SET pass_extra_ms = LEAST(pass_extra_ms + ?, 4294967295) \
             WHERE round_id = ? AND state = 'admitted' AND admitted_at > ? \
               AND admitted_at > DATE_SUB(?, INTERVAL pass_extra_ms * 1000 MICROSECOND)",
        )
        .bind(gap)
        .bind(round.0)
        .bind(to_datetime(since.saturating_sub(extended_total)))
        .bind(to_datetime(since))
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if extended == 0 {
            // Nothing to give: the bound below stays as tight as it was.
            return Ok(0);
        }
        sqlx::query("UPDATE rounds SET pass_extended_ms = pass_extended_ms + ? WHERE id = ?")
            .bind(gap_ms)
            .bind(round.0)
            .execute(&mut **tx)
            .await?;
        let detail = serde_json::json!({
            "by_ms": gap_ms,
            "admission_last_ran": DateTime::from_timestamp_millis(alive_at_ms as i64)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            "passes": extended,
        });
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, subject, detail) \
             VALUES (?, 'waitroom', 'passes.extended', ?, ?)",
        )
        .bind(to_datetime(alive_at_ms.saturating_add(gap_ms)))
        .bind(format!("round:{round}"))
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
        Ok(extended)
    }

    async fn tick_round(
        &self,
        round: RoundId,
        input: TickInput,
    ) -> Result<TickOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT state, hold_reason, serving_mark, max_active, active_count, admission_per_min, \
             priority, pass_clock_at, pass_extended_ms FROM rounds WHERE id = ? FOR UPDATE",
        )
        .bind(round.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(TickOutcome::default());
        };
        let state = parse_round_state(row.try_get("state")?)?;
        let hold: Option<String> = row.try_get("hold_reason")?;
        let mark: u64 = row.try_get("serving_mark")?;
        let max_active: Option<u32> = row.try_get("max_active")?;
        let previous_active: u32 = row.try_get("active_count")?;
        // The budget was planned from a rate read before this lock; a rate
        // set to zero since then (an admin stopping admission) wins.
        let rate_now: u32 = row.try_get("admission_per_min")?;
        let priority = super::lanes::parse(row.try_get("priority")?)?;
        let mut outcome = TickOutcome {
            serving_mark: mark,
            ..TickOutcome::default()
        };

        let clock = row
            .try_get::<Option<NaiveDateTime>, _>("pass_clock_at")?
            .map(from_datetime);
        let mut extended_total: u64 = row.try_get("pass_extended_ms")?;
        let now_ms = input.now_ms;
        let mut clock_now = clock;
        // Admitted students can enroll (the round open or paused by a
        // registrar, nothing held): a long gap since that was last so is
        // given back to the passes alive when it began, then the clock
        // moves on. A clock ahead of this one (skew between pods) is set
        // back, so that a later gap is not hidden.
        if matches!(state, RoundState::Open | RoundState::Paused) && hold.is_none() {
            let mut move_clock = clock.is_none_or(|c| c > now_ms || now_ms - c >= 1_000);
            if let Some(c) =
                clock.filter(|&c| now_ms.saturating_sub(c) >= waitroom::room::PASS_GAP_MS)
            {
                let gap = now_ms - c;
                let n = self
                    .extend_passes(&mut tx, round, c, gap, extended_total)
                    .await?;
                if n > 0 {
                    extended_total = extended_total.saturating_add(gap);
                    outcome.passes_extended = n;
                    outcome.extended_by_ms = gap;
                }
                move_clock = true;
            }
            if move_clock {
                sqlx::query("UPDATE rounds SET pass_clock_at = ? WHERE id = ?")
                    .bind(to_datetime(now_ms))
                    .bind(round.0)
                    .execute(&mut *tx)
                    .await?;
                clock_now = Some(now_ms);
            }
        }
        // Passes still running count against the cap; once admission has
        // not run for a while, those alive when it last ran (they are not
        // over, see `pass_reference_ms`).
        let reference = waitroom::room::pass_reference_ms(now_ms, clock_now);
        let since = input
            .active_since_ms
            .min(reference.saturating_sub(self.pass_ttl_ms));
        let active = self
            .count_passes_alive(&mut tx, round, since, extended_total)
            .await?;
        outcome.active = active;

        let mut budget = input.budget;
        if let Some(cap) = max_active.filter(|&c| c > 0) {
            budget = budget.min(u64::from(cap.saturating_sub(active)));
        }
        if state != RoundState::Open || hold.is_some() || rate_now == 0 {
            budget = 0;
        }

        // Students who came back after being skipped go first: their turn
        // came and went while they were away, so they are owed the next
        // admissions, within the same budget and cap as everyone else.
        // The window was checked when they came back (`reclaim_at` is set
        // only within it); a pause or a full cap since then costs nothing.
        if budget > 0 {
            let returning: Vec<u64> = sqlx::query_scalar(
                "SELECT seq FROM tickets \
                 WHERE round_id = ? AND reclaim_at IS NOT NULL AND state = 'skipped' \
                 ORDER BY order_key LIMIT ?",
            )
            .bind(round.0)
            .bind(budget)
            .fetch_all(&mut *tx)
            .await?;
            if !returning.is_empty() {
                let now = to_datetime(input.now_ms);
                let n = admit(&mut tx, &returning, now, "skipped").await?;
                outcome.admitted += n;
                outcome.reclaimed += n;
                budget = budget.saturating_sub(n);
            }
        }

        if let (true, Some(p)) = (budget > 0, &priority) {
            let (admits, skips, new_mark) =
                super::lanes::plan_tick(&mut tx, round, p, budget, &input, SKIP_LOOKAHEAD).await?;
            let now = to_datetime(input.now_ms);
            outcome.admitted += admit(&mut tx, &admits, now, "waiting").await?;
            outcome.skipped += skip(&mut tx, &skips, now).await?;
            outcome.serving_mark = new_mark.max(mark);
        } else if budget > 0 {
            let rows = sqlx::query(
                "SELECT seq, order_key, last_seen_at FROM tickets \
                 WHERE round_id = ? AND state = 'waiting' AND order_key > ? \
                 ORDER BY order_key LIMIT ?",
            )
            .bind(round.0)
            .bind(mark)
            .bind(budget + SKIP_LOOKAHEAD)
            .fetch_all(&mut *tx)
            .await?;
            let mut candidates = Vec::with_capacity(rows.len());
            for r in rows {
                candidates.push(Candidate {
                    seq: r.try_get("seq")?,
                    order_key: r.try_get("order_key")?,
                    last_seen_ms: from_datetime(r.try_get("last_seen_at")?),
                });
            }
            let plan = plan_admission(
                &candidates,
                budget,
                input.now_ms,
                input.grace_ms,
                input.grace_from_ms,
            );
            let now = to_datetime(input.now_ms);
            outcome.admitted += admit(&mut tx, &plan.admit, now, "waiting").await?;
            outcome.skipped += skip(&mut tx, &plan.skip, now).await?;
            if let Some(new_mark) = plan.mark {
                outcome.serving_mark = new_mark.max(mark);
            }
        }
        outcome.active = active.saturating_add(u32::try_from(outcome.admitted).unwrap_or(u32::MAX));

        if outcome.serving_mark != mark || outcome.admitted > 0 || outcome.active != previous_active
        {
            sqlx::query(
                "UPDATE rounds SET serving_mark = ?, admitted_total = admitted_total + ?, \
                 active_count = ? WHERE id = ?",
            )
            .bind(outcome.serving_mark)
            .bind(outcome.admitted)
            .bind(outcome.active)
            .bind(round.0)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn change_round(
        &self,
        round: RoundId,
        changes: &[RoundChange],
        actor: &str,
        now_ms: u64,
    ) -> Result<Option<RoundView>, ChangeError<StoreError>> {
        let db = |e: sqlx::Error| ChangeError::Store(StoreError::Db(e));
        let mut tx = self.pool.begin().await.map_err(db)?;
        let row = sqlx::query("SELECT state FROM rounds WHERE id = ? FOR UPDATE")
            .bind(round.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mut state =
            parse_round_state(row.try_get("state").map_err(db)?).map_err(ChangeError::Store)?;
        let now = to_datetime(now_ms);
        for &change in changes {
            let next = change.next_state(state)?;
            let detail = match change {
                RoundChange::Rate(per_min) => {
                    // The time first: it compares with the rate before.
                    sqlx::query(
                        "UPDATE rounds SET rate_lowered_at = \
                           IF(? < admission_per_min, ?, rate_lowered_at), \
                         admission_per_min = ? WHERE id = ?",
                    )
                    .bind(per_min)
                    .bind(now)
                    .bind(per_min)
                    .bind(round.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                    serde_json::json!({ "admission_per_min": per_min })
                }
                RoundChange::MaxActive(cap) => {
                    sqlx::query("UPDATE rounds SET max_active = ? WHERE id = ?")
                        .bind(cap)
                        .bind(round.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    serde_json::json!({ "max_active": cap })
                }
                RoundChange::Pace(settings) => {
                    let capacity = set_pace_mode(&mut tx, round, settings).await.map_err(db)?;
                    match settings {
                        Some(p) => serde_json::json!({ "mode": "auto", "floor": p.floor,
                            "ceiling": p.ceiling, "target_latency_ms": p.target_latency_ms,
                            "target_backlog": p.target_backlog,
                            "measured_capacity_per_min": capacity }),
                        None => serde_json::json!({ "mode": "fixed" }),
                    }
                }
                RoundChange::Priority(priority) => {
                    super::lanes::set(&mut tx, round, priority)
                        .await
                        .map_err(db)?;
                    serde_json::json!({ "priority": priority.map_or("none".to_string(), |p| p.spec()) })
                }
                RoundChange::Open { seed } => {
                    let cohort = open_round(&mut tx, round, seed, now)
                        .await
                        .map_err(ChangeError::Store)?;
                    serde_json::json!({ "from": state.as_str(), "cohort": cohort, "seed": seed.to_string() })
                }
                RoundChange::Prequeue
                | RoundChange::Pause
                | RoundChange::Resume
                | RoundChange::Close => {
                    // A registrar's pause is no outage (admitted students
                    // keep enrolling, and the leader keeps the pass clock
                    // of paused rounds): only the ends of the line reset it.
                    sqlx::query(
                        "UPDATE rounds SET state = ?, \
                           pass_clock_at = IF(? IN ('prequeue', 'closed'), NULL, pass_clock_at) \
                         WHERE id = ?",
                    )
                    .bind(next.as_str())
                    .bind(next.as_str())
                    .bind(round.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                    serde_json::json!({ "from": state.as_str(), "to": next.as_str() })
                }
            };
            sqlx::query(
                "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(now)
            .bind(actor)
            .bind(change.name())
            .bind(format!("round:{round}"))
            .bind(detail.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            state = next;
        }
        sqlx::query("UPDATE rounds SET updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(round.0)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let views = self.read_rounds(0).await.map_err(ChangeError::Store)?;
        Ok(views.into_iter().find(|v| v.id == round))
    }

    async fn read_rounds(&self, now_ms: u64) -> Result<Vec<RoundView>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, state, eligible_years_mask, admission_per_min, max_active, \
                    serving_mark, last_order_key, admitted_total, active_count, hold_reason, \
                    prequeue_at, opens_at, closes_at, shuffle_seed, cohort_size, \
                    pace_mode, pace_floor, pace_ceiling, pace_target_latency_ms, \
                    pace_target_backlog, pace_reason, pace_signal, pace_changed_at, \
                    pace_capacity_per_min, pace_capacity_settled, priority, rate_lowered_at, \
                    pass_clock_at, \
                    pass_extended_ms \
             FROM rounds WHERE state <> 'closed' OR closes_at > ?",
        )
        .bind(to_datetime(now_ms.saturating_sub(CLOSED_VISIBLE_MS)))
        .fetch_all(&self.pool)
        .await?;
        let mut views: Vec<RoundView> = rows.iter().map(round_view).collect::<Result<_, _>>()?;
        // Lanes only where a round has a priority: without one, a refresh
        // costs what it always did.
        let with: Vec<u32> = views
            .iter()
            .filter(|v| v.priority.is_some())
            .map(|v| v.id.0)
            .collect();
        if !with.is_empty() {
            let mut lanes = super::lanes::of_rounds(&self.pool, &with).await?;
            for v in views.iter_mut().filter(|v| v.priority.is_some()) {
                v.lanes = lanes.remove(&v.id.0).unwrap_or_default();
            }
        }
        Ok(views)
    }
}

/// Switches a round's pace mode. Going automatic brings the rate into the
/// new range at once and forgets the last controller step (the leader
/// explains its own); a round never measured takes the workers' speed last
/// measured in another round (within [`CAPACITY_KEPT_DAYS`]) and starts no
/// faster than that, so neither the first admissions nor the first waits
/// shown assume more than the workers have been seen to do. Going back to
/// fixed keeps the rate the leader set. The capacity it started from, if
/// any, for the audit log.
async fn set_pace_mode(
    tx: &mut sqlx::Transaction<'_, MySql>,
    round: RoundId,
    settings: Option<waitroom::autopace::AutoPace>,
) -> Result<Option<u32>, sqlx::Error> {
    let Some(p) = settings else {
        sqlx::query(
            "UPDATE rounds SET pace_mode = 'fixed', pace_reason = NULL, pace_signal = NULL \
             WHERE id = ?",
        )
        .bind(round.0)
        .execute(&mut **tx)
        .await?;
        return Ok(None);
    };
    let (own, own_settled): (Option<u32>, bool) = sqlx::query_as(
        "SELECT pace_capacity_per_min, pace_capacity_settled FROM rounds WHERE id = ? FOR UPDATE",
    )
    .bind(round.0)
    .fetch_optional(&mut **tx)
    .await?
    .unwrap_or((None, false));
    if own.is_none() || !own_settled {
        // The latest settled measurement of any round, or the latest at all:
        // one row per round, so the scan is over a table of a few hundred
        // rows at most. A speed of its own that has not settled gives way
        // only to a settled one.
        let latest: Option<(u32, NaiveDateTime, bool)> = sqlx::query_as(
            "SELECT pace_capacity_per_min, pace_capacity_at, pace_capacity_settled FROM rounds \
             WHERE id <> ? AND pace_capacity_per_min IS NOT NULL \
             AND pace_capacity_at >= UTC_TIMESTAMP(3) - INTERVAL ? DAY \
             ORDER BY pace_capacity_settled DESC, pace_capacity_at DESC LIMIT 1",
        )
        .bind(round.0)
        .bind(CAPACITY_KEPT_DAYS)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some((c, at, settled)) = latest.filter(|&(_, _, settled)| settled || own.is_none()) {
            sqlx::query(
                "UPDATE rounds SET pace_capacity_per_min = ?, pace_capacity_at = ?, \
                 pace_capacity_settled = ? WHERE id = ?",
            )
            .bind(c)
            .bind(at)
            .bind(settled)
            .bind(round.0)
            .execute(&mut **tx)
            .await?;
        }
    }
    sqlx::query(
        "UPDATE rounds SET pace_mode = 'auto', pace_floor = ?, pace_ceiling = ?, \
         pace_target_latency_ms = ?, pace_target_backlog = ?, pace_reason = NULL, \
         pace_signal = NULL, admission_per_min = LEAST(GREATEST(LEAST(admission_per_min, \
         COALESCE(pace_capacity_per_min, admission_per_min)), ?), ?) \
         WHERE id = ?",
    )
    .bind(p.floor)
    .bind(p.ceiling)
    .bind(p.target_latency_ms)
    .bind(p.target_backlog)
    .bind(p.floor)
    .bind(p.ceiling)
    .bind(round.0)
    .execute(&mut **tx)
    .await?;
    sqlx::query_scalar("SELECT pace_capacity_per_min FROM rounds WHERE id = ?")
        .bind(round.0)
        .fetch_one(&mut **tx)
        .await
}

/// How long a measurement of the workers' speed is carried to a round that
/// has none: a deployment changes (pods, hardware, versions) over weeks.
const CAPACITY_KEPT_DAYS: u32 = 30;

/// Shuffles the pre-queue cohort into keys 1..=n and opens the round.
async fn open_round(
    tx: &mut sqlx::Transaction<'_, MySql>,
    round: RoundId,
    seed: u64,
    now: NaiveDateTime,
) -> Result<u64, StoreError> {
    let stored: Option<String> = sqlx::query_scalar("SELECT priority FROM rounds WHERE id = ?")
        .bind(round.0)
        .fetch_one(&mut **tx)
        .await?;
    let keyed: Vec<(u64, u64)> = match super::lanes::parse(stored)? {
        // Each class's cohort is shuffled inside its own line.
        Some(p) => super::lanes::cohort_keys(tx, round, &p, seed).await?,
        None => {
            let seqs: Vec<u64> = sqlx::query_scalar(
                "SELECT seq FROM tickets WHERE round_id = ? AND prequeue AND state = 'waiting'",
            )
            .bind(round.0)
            .fetch_all(&mut **tx)
            .await?;
            let order = waitroom::prequeue_order(&seqs, seed);
            order
                .iter()
                .enumerate()
                .map(|(i, &s)| (s, i as u64 + 1))
                .collect()
        }
    };
    for chunk in keyed.chunks(CHUNK) {
        let mut q = QueryBuilder::<MySql>::new("UPDATE tickets SET order_key = CASE seq");
        for &(seq, key) in chunk {
            q.push(" WHEN ")
                .push_bind(seq)
                .push(" THEN ")
                .push_bind(key);
        }
        q.push(" END WHERE seq IN ");
        let seqs: Vec<u64> = chunk.iter().map(|&(s, _)| s).collect();
        push_in(&mut q, &seqs);
        q.build().execute(&mut **tx).await?;
    }
    let n = keyed.len() as u64;
    sqlx::query(
        "UPDATE rounds SET state = 'open', shuffle_seed = ?, seed_published_at = ?, \
         cohort_size = ?, last_order_key = ?, serving_mark = 0 WHERE id = ?",
    )
    .bind(seed)
    .bind(now)
    .bind(n)
    .bind(n)
    .bind(round.0)
    .execute(&mut **tx)
    .await?;
    Ok(n)
}

/// Passes over the waiting tickets `seqs` as abandoned; how many.
async fn skip(
    tx: &mut sqlx::Transaction<'_, MySql>,
    seqs: &[u64],
    now: NaiveDateTime,
) -> Result<u64, StoreError> {
    let mut skipped = 0;
    for chunk in seqs.chunks(CHUNK) {
        let mut q =
            QueryBuilder::<MySql>::new("UPDATE tickets SET state = 'skipped', skipped_at = ");
        q.push_bind(now)
            .push(" WHERE state = 'waiting' AND seq IN ");
        push_in(&mut q, chunk);
        skipped += q.build().execute(&mut **tx).await?.rows_affected();
    }
    Ok(skipped)
}

/// Admits the tickets `seqs` that are still in state `from` (each with a
/// lease of its own); how many were admitted. A reclaimed turn (`from` =
/// skipped) is stamped so the record shows it.
async fn admit(
    tx: &mut sqlx::Transaction<'_, MySql>,
    seqs: &[u64],
    now: NaiveDateTime,
    from: &'static str,
) -> Result<u64, StoreError> {
    let mut admitted = 0;
    for chunk in seqs.chunks(CHUNK) {
        let mut q =
            QueryBuilder::<MySql>::new("UPDATE tickets SET state = 'admitted', admitted_at = ");
        q.push_bind(now);
        if from == "skipped" {
            q.push(", reclaimed_at = ")
                .push_bind(now)
                .push(", reclaim_at = NULL");
        }
        q.push(", lease_id = CASE seq");
        for &seq in chunk {
            q.push(" WHEN ")
                .push_bind(seq)
                .push(" THEN ")
                .push_bind(uuid::Uuid::now_v7());
        }
        q.push(" END WHERE state = ")
            .push_bind(from)
            .push(" AND seq IN ");
        push_in(&mut q, chunk);
        admitted += q.build().execute(&mut **tx).await?.rows_affected();
    }
    Ok(admitted)
}

async fn select_tickets(
    tx: &mut sqlx::Transaction<'_, MySql>,
    round: RoundId,
    students: &[StudentId],
) -> Result<HashMap<StudentId, Ticket>, StoreError> {
    let rows = by_student(tx, round, students, TICKET_COLUMNS).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let t = ticket(&row)?;
        out.insert(t.student, t);
    }
    Ok(out)
}

/// The ticket numbers of `students` in `round`, for tickets whose other
/// columns the caller knows (it has just inserted them).
async fn select_seqs(
    tx: &mut sqlx::Transaction<'_, MySql>,
    round: RoundId,
    students: &[StudentId],
) -> Result<HashMap<StudentId, u64>, StoreError> {
    let rows = by_student(tx, round, students, "t.seq, t.student_id").await?;
    rows.iter()
        .map(|row| Ok((StudentId(row.try_get("student_id")?), row.try_get("seq")?)))
        .collect()
}

/// The columns [`ticket`] reads.
const TICKET_COLUMNS: &str = "t.seq, t.round_id, t.student_id, t.order_key, t.state, \
    t.admitted_at, t.lease_id, t.skipped_at, t.reclaim_at, t.pass_extra_ms";

/// `columns` of the tickets of `students` in `round`. One statement text
/// for any number of students (see the insert in `join_round`); the list
/// is read first, each student by the unique (round, student) key.
async fn by_student(
    tx: &mut sqlx::Transaction<'_, MySql>,
    round: RoundId,
    students: &[StudentId],
    columns: &str,
) -> Result<Vec<sqlx::mysql::MySqlRow>, StoreError> {
    if students.is_empty() {
        return Ok(Vec::new());
    }
    let list = json_pairs(students.iter().map(|s| (u64::from(s.0), None)));
    let sql = format!(
        "SELECT STRAIGHT_JOIN {columns} \
         FROM JSON_TABLE(?, '$[*]' COLUMNS (student INT UNSIGNED PATH '$[0]')) AS j \
         JOIN tickets t ON t.round_id = ? AND t.student_id = j.student"
    );
    Ok(sqlx::query(&sql)
        .bind(list.as_str())
        .bind(round.0)
        .fetch_all(&mut **tx)
        .await?)
}

fn ticket(row: &sqlx::mysql::MySqlRow) -> Result<Ticket, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(Ticket {
        seq: row.try_get("seq")?,
        round: RoundId(row.try_get("round_id")?),
        student: StudentId(row.try_get("student_id")?),
        order_key: row.try_get("order_key")?,
        state: TicketState::parse(&state).ok_or(StoreError::Corrupt("tickets.state"))?,
        admitted_at_ms: row
            .try_get::<Option<NaiveDateTime>, _>("admitted_at")?
            .map(from_datetime),
        lease: row.try_get("lease_id")?,
        skipped_at_ms: row
            .try_get::<Option<NaiveDateTime>, _>("skipped_at")?
            .map(from_datetime),
        reclaim_requested: row
            .try_get::<Option<NaiveDateTime>, _>("reclaim_at")?
            .is_some(),
        pass_extra_ms: u64::from(row.try_get::<u32, _>("pass_extra_ms")?),
    })
}

fn round_view(row: &sqlx::mysql::MySqlRow) -> Result<RoundView, StoreError> {
    let state = parse_round_state(row.try_get("state")?)?;
    let hold: Option<String> = row.try_get("hold_reason")?;
    let seed: Option<u64> = row.try_get("shuffle_seed")?;
    let cohort: u32 = row.try_get("cohort_size")?;
    Ok(RoundView {
        id: RoundId(row.try_get("id")?),
        name: row.try_get("name")?,
        state,
        eligible_years_mask: row.try_get("eligible_years_mask")?,
        admission_per_min: row.try_get("admission_per_min")?,
        rate_lowered_at_ms: row
            .try_get::<Option<NaiveDateTime>, _>("rate_lowered_at")?
            .map(from_datetime),
        max_active: row
            .try_get::<Option<u32>, _>("max_active")?
            .filter(|&c| c > 0),
        serving_mark: row.try_get("serving_mark")?,
        last_order_key: row.try_get("last_order_key")?,
        admitted_total: row.try_get("admitted_total")?,
        active: row.try_get("active_count")?,
        hold: hold.as_deref().map(Hold::parse),
        prequeue_at_ms: from_datetime(row.try_get("prequeue_at")?),
        opens_at_ms: from_datetime(row.try_get("opens_at")?),
        closes_at_ms: from_datetime(row.try_get("closes_at")?),
        // The seed is only published once the cohort order is fixed.
        shuffle_seed: seed
            .filter(|_| !matches!(state, RoundState::Scheduled | RoundState::Prequeue)),
        cohort_size: u64::from(cohort),
        pace: pace_view(row)?,
        priority: super::lanes::parse(row.try_get("priority")?)?,
        lanes: Vec::new(),
        pass_clock_ms: row
            .try_get::<Option<NaiveDateTime>, _>("pass_clock_at")?
            .map(from_datetime),
        pass_extended_ms: row.try_get("pass_extended_ms")?,
    })
}

fn pace_view(row: &sqlx::mysql::MySqlRow) -> Result<Option<waitroom::PaceView>, StoreError> {
    let mode: String = row.try_get("pace_mode")?;
    if mode != "auto" {
        return Ok(None);
    }
    let settings = waitroom::autopace::AutoPace {
        floor: row.try_get::<Option<u32>, _>("pace_floor")?.unwrap_or(0),
        ceiling: row.try_get::<Option<u32>, _>("pace_ceiling")?.unwrap_or(0),
        target_latency_ms: row
            .try_get::<Option<u32>, _>("pace_target_latency_ms")?
            .unwrap_or(1),
        target_backlog: row
            .try_get::<Option<u32>, _>("pace_target_backlog")?
            .unwrap_or(1),
    };
    let reason: Option<String> = row.try_get("pace_reason")?;
    let capacity_per_min: Option<u32> = row.try_get("pace_capacity_per_min")?;
    Ok(Some(waitroom::PaceView {
        settings,
        reason: reason
            .as_deref()
            .and_then(waitroom::autopace::PaceReason::parse),
        signal: row.try_get("pace_signal")?,
        changed_at_ms: row
            .try_get::<Option<NaiveDateTime>, _>("pace_changed_at")?
            .map(from_datetime),
        capacity_per_min,
        // The column's default says nothing until there is a measurement.
        capacity_settled: capacity_per_min.is_some() && row.try_get("pace_capacity_settled")?,
    }))
}

fn parse_round_state(s: String) -> Result<RoundState, StoreError> {
    RoundState::parse(&s).ok_or(StoreError::Corrupt("rounds.state"))
}

impl RoomStore for MySqlStore {
    type Error = StoreError;

    async fn rounds(&self) -> Result<Vec<RoundView>, StoreError> {
        self.timed(self.read_rounds(crate::clock::now_ms())).await
    }

    async fn cohort(&self, round: RoundId) -> Result<Vec<(u64, u64)>, StoreError> {
        self.timed(async {
            sqlx::query_as::<_, (u64, u64)>(
                "SELECT seq, order_key FROM tickets \
                 WHERE round_id = ? AND prequeue AND order_key IS NOT NULL",
            )
            .bind(round.0)
            .fetch_all(&self.pool)
            .await
        })
        .await
    }

    async fn join(
        &self,
        batch: &[JoinRequest],
    ) -> Result<Vec<Result<Place, JoinRefused>>, StoreError> {
        // One transaction per round, answers put back in request order.
        let mut by_round: HashMap<RoundId, Vec<usize>> = HashMap::new();
        for (i, r) in batch.iter().enumerate() {
            by_round.entry(r.round).or_default().push(i);
        }
        let mut answers: Vec<Option<Result<Place, JoinRefused>>> = vec![None; batch.len()];
        for (round, idx) in by_round {
            let reqs: Vec<JoinRequest> = idx.iter().map(|&i| batch[i]).collect();
            let got = self.timed(self.join_round(round, &reqs)).await?;
            for (i, a) in idx.into_iter().zip(got) {
                answers[i] = Some(a);
            }
        }
        answers
            .into_iter()
            .map(|a| a.ok_or(StoreError::Corrupt("join answer")))
            .collect()
    }

    async fn ticket(&self, seq: u64) -> Result<Option<Ticket>, StoreError> {
        self.timed(async {
            let row = sqlx::query(
                "SELECT seq, round_id, student_id, order_key, state, admitted_at, lease_id, \
                 skipped_at, reclaim_at, pass_extra_ms FROM tickets WHERE seq = ?",
            )
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(ticket).transpose()
        })
        .await
    }

    async fn touch(&self, seen: &[(u64, u64)]) -> Result<(), StoreError> {
        // Each ticket gets the instant its student was last seen, not the
        // flush's: after an outage the retained sightings are written as
        // they happened. The sightings travel as one JSON parameter read by
        // `JSON_TABLE`: one statement text whatever the count, prepared once
        // per connection, where a list of placeholders made a new statement
        // (and a definition to read back per placeholder) at every flush.
        // MariaDB reads the list in its order and locks each ticket as it
        // goes: in ticket order, two gateways flushing the same tickets lock
        // them in one order and cannot deadlock.
        let mut seen = seen.to_vec();
        seen.sort_unstable_by_key(|&(seq, _)| seq);
        for chunk in seen.chunks(CHUNK) {
            let list = sightings_json(chunk);
            super::retry_deadlock(|| {
                self.timed(
                    sqlx::query(
                        "UPDATE tickets t JOIN JSON_TABLE(?, '$[*]' COLUMNS ( \
                           seq BIGINT UNSIGNED PATH '$[0]', ms BIGINT UNSIGNED PATH '$[1]')) AS j \
                         ON t.seq = j.seq \
                         SET t.last_seen_at = GREATEST(t.last_seen_at, \
                           TIMESTAMPADD(MICROSECOND, j.ms * 1000, '1970-01-01 00:00:00')) \
                         WHERE t.state = 'waiting'",
                    )
                    .bind(list.as_str())
                    .execute(&self.pool),
                )
            })
            .await?;
        }
        Ok(())
    }

    async fn request_reclaim(
        &self,
        seq: u64,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<bool, StoreError> {
        self.timed(async {
            sqlx::query(
                "UPDATE tickets SET reclaim_at = COALESCE(reclaim_at, ?) \
                 WHERE seq = ? AND state = 'skipped' AND skipped_at >= ?",
            )
            .bind(to_datetime(now_ms))
            .bind(seq)
            .bind(to_datetime(now_ms.saturating_sub(window_ms)))
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
        })
        .await
    }

    async fn leave(&self, round: RoundId, student: StudentId) -> Result<bool, StoreError> {
        self.timed(async {
            sqlx::query(
                // A returning student who leaves gives up the reclaimed turn.
                "UPDATE tickets SET state = 'left', reclaim_at = NULL \
                 WHERE round_id = ? AND student_id = ? \
                 AND (state IN ('waiting', 'admitted') OR (state = 'skipped' AND reclaim_at IS NOT NULL))",
            )
            .bind(round.0)
            .bind(student.0)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
        })
        .await
    }

    async fn tick(&self, round: RoundId, input: TickInput) -> Result<TickOutcome, StoreError> {
        self.timed(self.tick_round(round, input)).await
    }

    async fn change(
        &self,
        round: RoundId,
        changes: &[RoundChange],
        actor: &str,
        now_ms: u64,
    ) -> Result<Option<RoundView>, ChangeError<StoreError>> {
        match tokio::time::timeout(
            self.timeout,
            self.change_round(round, changes, actor, now_ms),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(ChangeError::Store(StoreError::Timeout(self.timeout))),
        }
    }

    async fn set_hold(&self, hold: Option<Hold>) -> Result<(), StoreError> {
        let reason = hold.map(Hold::as_str);
        self.timed(async {
            sqlx::query(
                "UPDATE rounds SET hold_reason = ? \
                 WHERE state IN ('prequeue', 'open', 'paused') AND NOT (hold_reason <=> ?)",
            )
            .bind(reason)
            .bind(reason)
            .execute(&self.pool)
            .await
            .map(|_| ())
        })
        .await
    }
}

/// The latest instant a sighting is written as: the last millisecond of
/// year 9999, `DATETIME`'s end (a clock gone wild cannot overflow the
/// statement's arithmetic).
const LAST_DATETIME_MS: u64 = 253_402_300_799_999;

/// `[[seq, ms], ...]`: the sightings of one flush as the JSON array the
/// liveness `UPDATE` reads.
fn sightings_json(seen: &[(u64, u64)]) -> String {
    json_pairs(
        seen.iter()
            .map(|&(seq, ms)| (seq, Some(ms.min(LAST_DATETIME_MS)))),
    )
}

/// `[[a, b], ...]`, a pair of one element (`[a]`) when `b` is `None`: rows
/// for a `JSON_TABLE` parameter, whose path to a missing `b` reads as NULL.
fn json_pairs(rows: impl ExactSizeIterator<Item = (u64, Option<u64>)>) -> String {
    let mut out = String::with_capacity(2 + rows.len() * 28);
    out.push('[');
    let mut buf = itoa::Buffer::new();
    for (i, (a, b)) in rows.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        out.push_str(buf.format(a));
        if let Some(b) = b {
            out.push(',');
            out.push_str(buf.format(b));
        }
        out.push(']');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sightings_are_listed_as_pairs_and_clamped_to_datetimes_end() {
        assert_eq!(sightings_json(&[]), "[]");
        assert_eq!(
            sightings_json(&[(7, 1_764_748_800_123), (u64::MAX, u64::MAX)]),
            format!("[[7,1764748800123],[{},{LAST_DATETIME_MS}]]", u64::MAX)
        );
        assert_eq!(
            json_pairs([(3, None), (9, Some(12))].into_iter()),
            "[[3],[9,12]]"
        );
    }
}
