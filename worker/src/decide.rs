//! Deciding commands: one MySQL transaction for a group of commands.
//!
//! [`decide`] is the whole of the worker's decision logic, a plain function
//! of (commands, transaction) so tests can drive it without a broker. Inside
//! one transaction it:
//!
//! 1. checks each command's pass (signature, student and round binding,
//!    expiry at the time the gateway accepted the command);
//! 2. locks every section the group touches, in id order;
//! 3. reads, under those locks, the head of the waitlist of every section
//!    that has a free seat or a drop in the group, then locks every student
//!    (the commands' and the waiting ones) in id order: sections before
//!    students, each in id order, is one global order, so two workers
//!    cannot deadlock on them;
//! 4. finds commands already decided (a redelivery) and leaves them alone;
//! 5. loads what the rules need, gives free seats to waiting students, and
//!    decides every command in arrival order against an in-memory view that
//!    includes the group's earlier decisions;
//! 6. writes enrollments, waitlist changes (each guarded on the state it
//!    was read in), one seat-count update per section and one outcome row
//!    per command item and per waitlist entry resolved.
//!
//! The waitlist is read only under the section lock: every writer of a
//! section's waitlist holds that lock, so what is read is what is there. A
//! seat is never left free while the line is not exhausted: if every
//! candidate read was passed over, the group is planned again with a longer
//! read of the line.
//!
//! The caller commits, then acks. Because the outcome rows (keyed by command
//! id) commit atomically with the seat changes, a command redelivered after a
//! crash finds its outcome in step 4 and has no second effect.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use enrollment::rules::{self, Held, Meeting, SectionInfo, StudentState};
use enrollment::{Action, Command, CommandId, CourseId, Reason, RoundId, SectionId, StudentId};
use sqlx::{MySql, MySqlConnection, QueryBuilder};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;
use waitroom::{Keyring, TokenError};

/// Rows per multi-row INSERT, well under MySQL's 65,535 placeholders.
const INSERT_CHUNK: usize = 500;

/// Spare waitlist candidates read per section beyond its free seats, for
/// those who no longer qualify.
const WAITLIST_SPARE: usize = 3;

/// Most waitlist candidates read per section in one transaction. Past it a
/// seat may stay free with ineligible students still in line; the next
/// transaction on the section goes on from there.
const WAITLIST_MAX: usize = 2_000;

/// Why [`decide`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A row was not in the state read under the locks held. Only a writer
    /// that skips the section lock can cause it; the transaction is rolled
    /// back and tried again.
    #[error("{0} changed under the section lock")]
    Stale(&'static str),
}

/// What the decision depends on besides the commands and the database.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub keyring: &'a Keyring,
    /// Written to `command_outcomes.decided_by`.
    pub worker: &'a str,
    pub now: DateTime<Utc>,
    /// A command older than this when decided is refused as expired, so an
    /// expired pass cannot be replayed with a back-dated command.
    pub max_command_age: ChronoDuration,
}

/// The result for one section of a command, or of a waitlist entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Enrolled,
    Dropped,
    Waitlisted,
    /// A waiting student took a freed seat.
    Promoted,
    Rejected(Reason),
    /// The command could not be decided; nothing changed.
    Failed(Reason),
}

impl Outcome {
    /// The stored `outcome` column.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Enrolled => "enrolled",
            Outcome::Dropped => "dropped",
            Outcome::Waitlisted => "waitlisted",
            Outcome::Promoted => "promoted",
            Outcome::Rejected(_) => "rejected",
            Outcome::Failed(_) => "failed",
        }
    }

    pub fn reason(self) -> Option<Reason> {
        match self {
            Outcome::Rejected(r) | Outcome::Failed(r) => Some(r),
            _ => None,
        }
    }
}

/// What happened to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub command: CommandId,
    pub action: &'static str,
    /// One entry per section of the command, in order; empty for a replay.
    pub items: Vec<(SectionId, Outcome)>,
    /// The command had been decided before (a redelivery): nothing written.
    pub replayed: bool,
}

struct Checked<'c> {
    cmd: &'c Command,
    lease: Option<Uuid>,
    budget: u16,
    early: Option<Reason>,
}

fn unix_ms(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn check_pass<'c>(ctx: &Context<'_>, cmd: &'c Command) -> Checked<'c> {
    let mut checked = Checked {
        cmd,
        lease: None,
        budget: 0,
        early: None,
    };
    let claims = match ctx.keyring.open_pass(&cmd.pass) {
        Ok(c) => c,
        Err(_) => {
            checked.early = Some(Reason::PassInvalid);
            return checked;
        }
    };
    checked.lease = Some(claims.lease);
    checked.budget = claims.budget;
    let issued = cmd.issued_at;
    let skew = ChronoDuration::milliseconds(waitroom::token::CLOCK_SKEW_MS as i64);
    if issued > ctx.now + skew || ctx.now - issued > ctx.max_command_age {
        checked.early = Some(Reason::PassExpired);
        return checked;
    }
    checked.early = match claims.check(cmd.student, cmd.round, unix_ms(issued)) {
        Ok(()) => None,
        Err(TokenError::Mismatch) => Some(Reason::PassMismatch),
        Err(TokenError::Expired) => Some(Reason::PassExpired),
        Err(_) => Some(Reason::PassInvalid),
    };
    checked
}

/// Appends `(a, b, c)` as a bound IN list.
fn push_in<'a, T>(qb: &mut QueryBuilder<'a, MySql>, values: impl IntoIterator<Item = T>)
where
    T: 'a + sqlx::Encode<'a, MySql> + sqlx::Type<MySql> + Send,
{
    qb.push("(");
    let mut sep = qb.separated(", ");
    for v in values {
        sep.push_bind(v);
    }
    qb.push(")");
}

struct Round {
    state: String,
    eligible_mask: u8,
}

struct StudentRow {
    class_year: u8,
    max_credits: u8,
}

#[derive(Default)]
struct Writes {
    /// (student, section) → inserted (true) or deleted (false), net of the
    /// group's earlier decisions.
    enroll_insert: Vec<(StudentId, SectionId, CourseId, CommandId)>,
    enroll_delete: Vec<(StudentId, SectionId)>,
    waitlist_insert: Vec<NewEntry>,
    /// (entry id, new state, the outcome row's command id).
    waitlist_resolve: Vec<(u64, &'static str, CommandId)>,
    outcomes: Vec<OutcomeRow>,
}

struct OutcomeRow {
    command: CommandId,
    item: u16,
    student: StudentId,
    round: RoundId,
    section: SectionId,
    action: &'static str,
    outcome: Outcome,
    lease: Option<Uuid>,
    issued_at: DateTime<Utc>,
}

/// A waitlist entry made by this group, written with the state it ends in.
struct NewEntry {
    section: SectionId,
    student: StudentId,
    round: RoundId,
    command: CommandId,
    state: &'static str,
    resolved_by: Option<CommandId>,
}

/// Where a waitlist entry lives.
#[derive(Clone, Copy)]
enum EntryRow {
    /// Read from the database, with this id.
    Stored(u64),
    /// Made by this group: this index into `Writes::waitlist_insert`.
    New(usize),
}

struct WaitEntry {
    row: EntryRow,
    student: StudentId,
    round: RoundId,
    command: CommandId,
    done: bool,
}

/// The head of one section's waitlist, as read under its lock.
#[derive(Default)]
struct Line {
    entries: Vec<WaitEntry>,
    /// More students wait behind the entries read.
    more: bool,
}

/// Everything [`plan`] decided, not yet written.
struct Planned {
    decisions: Vec<Decision>,
    writes: Writes,
    sections: HashMap<SectionId, SectionInfo>,
    touched: HashSet<SectionId>,
    /// A seat was left free with students still waiting unread.
    line_cut_short: bool,
}

/// Decides `commands` (in arrival order) inside the caller's transaction.
/// Returns one [`Decision`] per command, in the same order.
pub async fn decide(
    tx: &mut MySqlConnection,
    ctx: &Context<'_>,
    commands: &[&Command],
) -> Result<Vec<Decision>, DecideError> {
    let checked: Vec<Checked<'_>> = commands.iter().map(|c| check_pass(ctx, c)).collect();
    let mut spare = WAITLIST_SPARE;
    loop {
        let planned = plan(tx, ctx, &checked, spare).await?;
        if planned.line_cut_short && spare < WAITLIST_MAX {
            // Nothing is written yet and the locks stay held: plan again
            // with a longer read of the line.
            spare = spare.saturating_mul(8).min(WAITLIST_MAX);
            continue;
        }
        write(
            tx,
            ctx,
            &planned.writes,
            &planned.sections,
            &planned.touched,
        )
        .await?;
        return Ok(planned.decisions);
    }
}

/// Loads the world under locks and decides, writing nothing.
async fn plan(
    tx: &mut MySqlConnection,
    ctx: &Context<'_>,
    checked: &[Checked<'_>],
    spare: usize,
) -> Result<Planned, DecideError> {
    // What the live commands touch.
    let mut section_ids: Vec<SectionId> = Vec::new();
    let mut student_ids: Vec<StudentId> = Vec::new();
    let mut drops_per_section: HashMap<SectionId, usize> = HashMap::new();
    for c in checked.iter().filter(|c| c.early.is_none()) {
        student_ids.push(c.cmd.student);
        section_ids.extend_from_slice(c.cmd.action.sections());
        if let Action::Drop { section } = c.cmd.action {
            *drops_per_section.entry(section).or_default() += 1;
        }
    }
    section_ids.sort_unstable();
    section_ids.dedup();

    // Locks: sections, then students, each in id order.
    let mut sections: HashMap<SectionId, SectionInfo> = HashMap::new();
    if !section_ids.is_empty() {
        let mut qb = QueryBuilder::new(
            "SELECT id, course_id, capacity, enrolled, closed FROM sections WHERE id IN ",
        );
        push_in(&mut qb, section_ids.iter().map(|s| s.0));
        qb.push(" ORDER BY id FOR UPDATE");
        let rows: Vec<(u32, u32, u32, u32, bool)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        for (id, course, capacity, enrolled, closed) in rows {
            sections.insert(
                SectionId(id),
                SectionInfo {
                    id: SectionId(id),
                    course_id: CourseId(course),
                    credits: 0,
                    closed,
                    capacity,
                    enrolled,
                    meetings: Vec::new(),
                    prerequisites: Vec::new(),
                },
            );
        }
    }
    let waitlists = read_lines(tx, &sections, &drops_per_section, spare).await?;
    student_ids.extend(
        waitlists
            .values()
            .flat_map(|l| l.entries.iter().map(|w| w.student)),
    );
    student_ids.sort_unstable();
    student_ids.dedup();

    let mut students: HashMap<StudentId, StudentRow> = HashMap::new();
    if !student_ids.is_empty() {
        let mut qb =
            QueryBuilder::new("SELECT id, class_year, max_credits FROM students WHERE id IN ");
        push_in(&mut qb, student_ids.iter().map(|s| s.0));
        qb.push(" ORDER BY id FOR UPDATE");
        let rows: Vec<(u32, u8, u8)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        for (id, class_year, max_credits) in rows {
            students.insert(
                StudentId(id),
                StudentRow {
                    class_year,
                    max_credits,
                },
            );
        }
    }

    // Commands decided before. Read after the locks: a concurrent decision of
    // the same command holds the same student lock, so it is visible now.
    let mut decided_before: HashSet<CommandId> = HashSet::new();
    {
        let mut qb = QueryBuilder::new(
            "SELECT DISTINCT command_id FROM command_outcomes WHERE command_id IN ",
        );
        push_in(&mut qb, checked.iter().map(|c| c.cmd.id.0));
        let rows: Vec<(Uuid,)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        decided_before.extend(rows.into_iter().map(|(u,)| CommandId(u)));
    }

    // Commands already carried by each lease (its owner is locked above).
    let mut lease_used: HashMap<Uuid, u32> = HashMap::new();
    let leases: HashSet<Uuid> = checked
        .iter()
        .filter(|c| c.early.is_none())
        .filter_map(|c| c.lease)
        .collect();
    if !leases.is_empty() {
        let mut qb = QueryBuilder::new(
            "SELECT lease_id, COUNT(DISTINCT command_id) FROM command_outcomes WHERE lease_id IN ",
        );
        push_in(&mut qb, leases.iter().copied());
        qb.push(" GROUP BY lease_id");
        let rows: Vec<(Uuid, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        for (lease, n) in rows {
            lease_used.insert(lease, u32::try_from(n).unwrap_or(u32::MAX));
        }
    }

    // Admissions that are over: the student left the queue, or joined again
    // and holds a newer place (the old ticket, and its lease, are gone). A
    // pass outlives neither. Students with no ticket at all in the round
    // (commands published without a waiting room) keep the pass's word.
    let mut ended: HashSet<Uuid> = HashSet::new();
    let holders: HashSet<(u32, u32)> = checked
        .iter()
        .filter(|c| c.early.is_none() && c.lease.is_some())
        .map(|c| (c.cmd.round.0, c.cmd.student.0))
        .collect();
    if !holders.is_empty() {
        let mut qb = QueryBuilder::new(
            "SELECT round_id, student_id, state, lease_id FROM tickets WHERE (round_id, student_id) IN (",
        );
        let mut sep = qb.separated(", ");
        for (round, student) in &holders {
            sep.push("(")
                .push_bind_unseparated(*round)
                .push_unseparated(", ")
                .push_bind_unseparated(*student)
                .push_unseparated(")");
        }
        qb.push(")");
        let rows: Vec<(u32, u32, String, Option<Uuid>)> =
            qb.build_query_as().fetch_all(&mut *tx).await?;
        let current: HashMap<(u32, u32), (String, Option<Uuid>)> = rows
            .into_iter()
            .map(|(r, s, state, lease)| ((r, s), (state, lease)))
            .collect();
        for c in checked.iter().filter(|c| c.early.is_none()) {
            let key = (c.cmd.round.0, c.cmd.student.0);
            if let (Some(lease), Some((state, held))) = (c.lease, current.get(&key)) {
                if state != "admitted" || *held != Some(lease) {
                    ended.insert(lease);
                }
            }
        }
    }

    let mut rounds: HashMap<RoundId, Round> = HashMap::new();
    let round_ids: HashSet<u32> = checked
        .iter()
        .filter(|c| c.early.is_none())
        .map(|c| c.cmd.round.0)
        .chain(
            waitlists
                .values()
                .flat_map(|l| l.entries.iter().map(|w| w.round.0)),
        )
        .collect();
    if !round_ids.is_empty() {
        let mut qb =
            QueryBuilder::new("SELECT id, state, eligible_years_mask FROM rounds WHERE id IN ");
        push_in(&mut qb, round_ids);
        let rows: Vec<(u32, String, u8)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        for (id, state, eligible_mask) in rows {
            rounds.insert(
                RoundId(id),
                Round {
                    state,
                    eligible_mask,
                },
            );
        }
    }

    // Each student's current sections.
    let mut state: HashMap<StudentId, StudentState> = HashMap::new();
    let mut held_sections: Vec<u32> = Vec::new();
    if !students.is_empty() {
        let mut qb = QueryBuilder::new(
            "SELECT e.student_id, e.section_id, e.course_id, c.credits FROM enrollments e \
             JOIN courses c ON c.id = e.course_id WHERE e.student_id IN ",
        );
        push_in(&mut qb, students.keys().map(|s| s.0));
        let rows: Vec<(u32, u32, u32, u8)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        for (id, row) in &students {
            state.insert(
                *id,
                StudentState {
                    class_year: row.class_year,
                    max_credits: row.max_credits,
                    ..StudentState::default()
                },
            );
        }
        for (student, section, course, credits) in rows {
            held_sections.push(section);
            if let Some(st) = state.get_mut(&StudentId(student)) {
                st.held.push(Held {
                    section_id: SectionId(section),
                    course_id: CourseId(course),
                    credits,
                    meetings: Vec::new(),
                });
            }
        }
    }

    // Course credits and prerequisites of the sections asked for.
    let mut needs_transcript = false;
    if !sections.is_empty() {
        let mut qb = QueryBuilder::new(
            "SELECT s.id, c.credits FROM sections s JOIN courses c ON c.id = s.course_id WHERE s.id IN ",
        );
        push_in(&mut qb, sections.keys().map(|s| s.0));
        let rows: Vec<(u32, u8)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        for (id, credits) in rows {
            if let Some(s) = sections.get_mut(&SectionId(id)) {
                s.credits = credits;
            }
        }
        let mut qb = QueryBuilder::new(
            "SELECT s.id, p.required_code FROM sections s \
             JOIN course_prerequisites p ON p.course_id = s.course_id WHERE s.id IN ",
        );
        push_in(&mut qb, sections.keys().map(|s| s.0));
        let rows: Vec<(u32, String)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        needs_transcript = !rows.is_empty();
        for (id, code) in rows {
            if let Some(s) = sections.get_mut(&SectionId(id)) {
                s.prerequisites.push(code);
            }
        }
    }

    // Meetings of every section involved, asked for or held.
    let mut meeting_ids: Vec<u32> = sections.keys().map(|s| s.0).chain(held_sections).collect();
    meeting_ids.sort_unstable();
    meeting_ids.dedup();
    if !meeting_ids.is_empty() {
        let mut qb = QueryBuilder::new(
            "SELECT section_id, weekday, start_min, end_min FROM section_meetings WHERE section_id IN ",
        );
        push_in(&mut qb, meeting_ids);
        let rows: Vec<(u32, u8, u16, u16)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        let mut by_section: HashMap<SectionId, Vec<Meeting>> = HashMap::new();
        for (section, weekday, start_min, end_min) in rows {
            by_section
                .entry(SectionId(section))
                .or_default()
                .push(Meeting {
                    weekday,
                    start_min,
                    end_min,
                });
        }
        for s in sections.values_mut() {
            s.meetings = by_section.get(&s.id).cloned().unwrap_or_default();
        }
        for st in state.values_mut() {
            for h in &mut st.held {
                h.meetings = by_section.get(&h.section_id).cloned().unwrap_or_default();
            }
        }
    }

    if needs_transcript && !students.is_empty() {
        let mut qb = QueryBuilder::new(
            "SELECT student_id, course_code FROM student_completed_courses WHERE student_id IN ",
        );
        push_in(&mut qb, students.keys().map(|s| s.0));
        let rows: Vec<(u32, String)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        for (student, code) in rows {
            if let Some(st) = state.get_mut(&StudentId(student)) {
                st.completed.push(code);
            }
        }
    }

    let wants_waitlist = checked.iter().any(|c| {
        c.early.is_none() && matches!(c.cmd.action, Action::Enroll { waitlist: true, .. })
    });
    let mut waiting: HashSet<(SectionId, StudentId)> = HashSet::new();
    if wants_waitlist {
        let mut qb = QueryBuilder::new(
            "SELECT section_id, student_id FROM waitlist_entries WHERE state = 'waiting' AND student_id IN ",
        );
        push_in(&mut qb, students.keys().map(|s| s.0));
        let rows: Vec<(u32, u32)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        waiting.extend(rows.into_iter().map(|(a, b)| (SectionId(a), StudentId(b))));
    }

    let mut writes = Writes::default();
    let mut touched: HashSet<SectionId> = HashSet::new();
    let mut waitlists = waitlists;
    let mut line_cut_short = false;
    // Seats already free while students wait (a capacity raised, a line
    // cut short before) go to the line before any command can take them.
    let mut free_with_line: Vec<SectionId> = waitlists
        .iter()
        .filter(|(_, l)| !l.entries.is_empty())
        .map(|(s, _)| *s)
        .collect();
    free_with_line.sort_unstable();
    for sid in free_with_line {
        line_cut_short |= promote_from_waitlist(
            ctx,
            sid,
            &mut sections,
            &mut state,
            &rounds,
            &mut waitlists,
            &mut waiting,
            &mut writes,
            &mut touched,
        );
    }

    // Decide, in arrival order.
    let mut decisions = Vec::with_capacity(checked.len());
    let mut seen_in_group: HashSet<CommandId> = HashSet::new();
    for c in checked {
        let cmd = c.cmd;
        let action = cmd.action.name();
        if decided_before.contains(&cmd.id) || !seen_in_group.insert(cmd.id) {
            decisions.push(Decision {
                command: cmd.id,
                action,
                items: Vec::new(),
                replayed: true,
            });
            continue;
        }
        let whole = c
            .early
            .or_else(|| match (rounds.get(&cmd.round), state.get(&cmd.student)) {
                (None, _) => Some(Reason::RoundClosed),
                (_, None) => Some(Reason::UnknownStudent),
                _ if c.lease.is_some_and(|l| ended.contains(&l)) => Some(Reason::PassRevoked),
                (Some(round), Some(st)) => command_level(round, st, c, &lease_used),
            });
        let mut items = Vec::new();
        if let Some(reason) = whole {
            for s in cmd.action.sections() {
                items.push((*s, Outcome::Rejected(reason)));
            }
        } else {
            if let Some(lease) = c.lease {
                *lease_used.entry(lease).or_default() += 1;
            }
            let Some(st) = state.get_mut(&cmd.student) else {
                continue;
            };
            match &cmd.action {
                Action::Enroll {
                    sections: wanted,
                    waitlist,
                } => {
                    for sid in wanted {
                        let outcome = match sections.get_mut(sid) {
                            None => Outcome::Rejected(Reason::UnknownSection),
                            Some(section) => match rules::check_enroll(st, section)
                                .and_then(|()| rules::check_seat(section))
                            {
                                Ok(()) => {
                                    st.add(section);
                                    section.enrolled += 1;
                                    touched.insert(*sid);
                                    record_insert(&mut writes, cmd.student, section, cmd.id);
                                    Outcome::Enrolled
                                }
                                Err(Reason::Full) if *waitlist => {
                                    if waiting.insert((*sid, cmd.student)) {
                                        // Behind everyone read, when they are
                                        // the whole line: a seat freed later
                                        // in the group may come to this entry.
                                        if let Some(line) =
                                            waitlists.get_mut(sid).filter(|l| !l.more)
                                        {
                                            line.entries.push(WaitEntry {
                                                row: EntryRow::New(writes.waitlist_insert.len()),
                                                student: cmd.student,
                                                round: cmd.round,
                                                command: cmd.id,
                                                done: false,
                                            });
                                        }
                                        writes.waitlist_insert.push(NewEntry {
                                            section: *sid,
                                            student: cmd.student,
                                            round: cmd.round,
                                            command: cmd.id,
                                            state: "waiting",
                                            resolved_by: None,
                                        });
                                        Outcome::Waitlisted
                                    } else {
                                        Outcome::Rejected(Reason::AlreadyWaitlisted)
                                    }
                                }
                                Err(reason) => Outcome::Rejected(reason),
                            },
                        };
                        items.push((*sid, outcome));
                    }
                }
                Action::Drop { section: sid } => {
                    let outcome = match (sections.get_mut(sid), rules::check_drop(st, *sid)) {
                        (None, _) => Outcome::Rejected(Reason::UnknownSection),
                        (Some(_), Err(reason)) => Outcome::Rejected(reason),
                        (Some(section), Ok(())) => {
                            st.remove(*sid);
                            section.enrolled = section.enrolled.saturating_sub(1);
                            touched.insert(*sid);
                            record_delete(&mut writes, cmd.student, *sid);
                            Outcome::Dropped
                        }
                    };
                    items.push((*sid, outcome));
                    if outcome == Outcome::Dropped {
                        line_cut_short |= promote_from_waitlist(
                            ctx,
                            *sid,
                            &mut sections,
                            &mut state,
                            &rounds,
                            &mut waitlists,
                            &mut waiting,
                            &mut writes,
                            &mut touched,
                        );
                    }
                }
            }
        }
        for (i, (sid, outcome)) in items.iter().enumerate() {
            writes.outcomes.push(OutcomeRow {
                command: cmd.id,
                item: u16::try_from(i).unwrap_or(u16::MAX),
                student: cmd.student,
                round: cmd.round,
                section: *sid,
                action,
                outcome: *outcome,
                lease: c.lease,
                issued_at: cmd.issued_at,
            });
        }
        decisions.push(Decision {
            command: cmd.id,
            action,
            items,
            replayed: false,
        });
    }

    Ok(Planned {
        decisions,
        writes,
        sections,
        touched,
        line_cut_short,
    })
}

/// Reads the head of the waitlist of every locked section that has a drop
/// in the group or a free seat now: as many entries as seats may free up,
/// plus `spare`. Must run under the section locks.
async fn read_lines(
    tx: &mut MySqlConnection,
    sections: &HashMap<SectionId, SectionInfo>,
    drops_per_section: &HashMap<SectionId, usize>,
    spare: usize,
) -> Result<HashMap<SectionId, Line>, DecideError> {
    // A closed section gives no seats; its line waits for it to reopen.
    let want: HashMap<SectionId, usize> = sections
        .values()
        .filter(|s| !s.closed)
        .map(|s| {
            let free = usize::try_from(s.capacity.saturating_sub(s.enrolled)).unwrap_or(0);
            let drops = drops_per_section.get(&s.id).copied().unwrap_or(0);
            (s.id, free.saturating_add(drops))
        })
        .filter(|(_, seats)| *seats > 0)
        .map(|(id, seats)| (id, seats.saturating_add(spare).min(WAITLIST_MAX)))
        .collect();
    // Every section read has a line, if only an empty one.
    let mut lines: HashMap<SectionId, Line> = want.keys().map(|s| (*s, Line::default())).collect();
    let Some(most) = want.values().copied().max() else {
        return Ok(lines);
    };
    // One more than wanted, to know whether anyone waits behind.
    let mut qb = QueryBuilder::new(
        "SELECT id, section_id, student_id, round_id, command_id FROM (\
         SELECT id, section_id, student_id, round_id, command_id, \
         ROW_NUMBER() OVER (PARTITION BY section_id ORDER BY id) AS place \
         FROM waitlist_entries WHERE state = 'waiting' AND section_id IN ",
    );
    push_in(&mut qb, want.keys().map(|s| s.0));
    qb.push(") w WHERE place <= ");
    qb.push_bind(u64::try_from(most).unwrap_or(u64::MAX).saturating_add(1));
    qb.push(" ORDER BY section_id, id");
    let rows: Vec<(u64, u32, u32, u32, Uuid)> = qb.build_query_as().fetch_all(&mut *tx).await?;
    for (id, section, student, round, command) in rows {
        let section = SectionId(section);
        let limit = want.get(&section).copied().unwrap_or(0);
        let line = lines.entry(section).or_default();
        if line.entries.len() < limit {
            line.entries.push(WaitEntry {
                row: EntryRow::Stored(id),
                student: StudentId(student),
                round: RoundId(round),
                command: CommandId(command),
                done: false,
            });
        } else {
            line.more = true;
        }
    }
    Ok(lines)
}

/// Rule 2 and the pass budget: reasons that reject a whole command.
fn command_level(
    round: &Round,
    student: &StudentState,
    c: &Checked<'_>,
    lease_used: &HashMap<Uuid, u32>,
) -> Option<Reason> {
    if !matches!(round.state.as_str(), "open" | "paused") {
        return Some(Reason::RoundClosed);
    }
    if !rules::year_eligible(round.eligible_mask, student.class_year) {
        return Some(Reason::NotEligible);
    }
    let used = c
        .lease
        .and_then(|l| lease_used.get(&l))
        .copied()
        .unwrap_or(0);
    if used >= u32::from(c.budget) {
        return Some(Reason::PassExhausted);
    }
    None
}

fn record_insert(
    writes: &mut Writes,
    student: StudentId,
    section: &SectionInfo,
    command: CommandId,
) {
    writes
        .enroll_insert
        .push((student, section.id, section.course_id, command));
}

fn record_delete(writes: &mut Writes, student: StudentId, section: SectionId) {
    // An enrollment made earlier in this group was never written: cancel it.
    if let Some(pos) = writes
        .enroll_insert
        .iter()
        .position(|(st, s, _, _)| *st == student && *s == section)
    {
        writes.enroll_insert.remove(pos);
    } else {
        writes.enroll_delete.push((student, section));
    }
}

/// Gives the section's free seats to the first waiting students who still
/// qualify; those who no longer do (conflict, credits, ...) are skipped.
/// Every entry resolved gets an outcome row its student can read: a
/// promotion, or a rejection saying why it was passed over. Returns true
/// when a seat is left free while students wait beyond those read.
#[allow(clippy::too_many_arguments)]
fn promote_from_waitlist(
    ctx: &Context<'_>,
    sid: SectionId,
    sections: &mut HashMap<SectionId, SectionInfo>,
    state: &mut HashMap<StudentId, StudentState>,
    rounds: &HashMap<RoundId, Round>,
    waitlists: &mut HashMap<SectionId, Line>,
    waiting: &mut HashSet<(SectionId, StudentId)>,
    writes: &mut Writes,
    touched: &mut HashSet<SectionId>,
) -> bool {
    let (Some(section), Some(line)) = (sections.get_mut(&sid), waitlists.get_mut(&sid)) else {
        return false;
    };
    if section.closed {
        return false;
    }
    for entry in line.entries.iter_mut().filter(|e| !e.done) {
        if rules::check_seat(section).is_err() {
            return false;
        }
        entry.done = true;
        let verdict = match (state.get_mut(&entry.student), rounds.get(&entry.round)) {
            (None, _) => Err(Reason::UnknownStudent),
            (Some(_), None) => Err(Reason::RoundClosed),
            (Some(st), Some(r)) => {
                if !matches!(r.state.as_str(), "open" | "paused") {
                    Err(Reason::RoundClosed)
                } else if !rules::year_eligible(r.eligible_mask, st.class_year) {
                    Err(Reason::NotEligible)
                } else {
                    rules::check_enroll(st, section).map(|()| st)
                }
            }
        };
        // The resolution's outcome row gets an id of its own: the entry's
        // command already has its outcome (`waitlisted`).
        let resolution = CommandId(Uuid::now_v7());
        let (outcome, new_state) = match verdict {
            Ok(st) => {
                st.add(section);
                section.enrolled += 1;
                touched.insert(sid);
                record_insert(writes, entry.student, section, entry.command);
                (Outcome::Promoted, "promoted")
            }
            Err(reason) => (Outcome::Rejected(reason), "skipped"),
        };
        waiting.remove(&(sid, entry.student));
        match entry.row {
            EntryRow::Stored(id) => writes.waitlist_resolve.push((id, new_state, resolution)),
            EntryRow::New(k) => {
                if let Some(new) = writes.waitlist_insert.get_mut(k) {
                    new.state = new_state;
                    new.resolved_by = Some(resolution);
                }
            }
        }
        writes.outcomes.push(OutcomeRow {
            command: resolution,
            item: 0,
            student: entry.student,
            round: entry.round,
            section: sid,
            action: "enroll",
            outcome,
            lease: None,
            issued_at: ctx.now,
        });
    }
    rules::check_seat(section).is_ok() && line.more
}

/// Clamps a client-supplied time into what DATETIME can store.
fn storable(t: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let floor = DateTime::<Utc>::UNIX_EPOCH;
    let ceil = now + ChronoDuration::days(1);
    t.clamp(floor, ceil)
}

async fn write(
    tx: &mut MySqlConnection,
    ctx: &Context<'_>,
    w: &Writes,
    sections: &HashMap<SectionId, SectionInfo>,
    touched: &HashSet<SectionId>,
) -> Result<(), DecideError> {
    for chunk in w.enroll_delete.chunks(INSERT_CHUNK) {
        let mut qb =
            QueryBuilder::new("DELETE FROM enrollments WHERE (student_id, section_id) IN (");
        let mut sep = qb.separated(", ");
        for (st, s) in chunk {
            sep.push("(");
            sep.push_bind_unseparated(st.0);
            sep.push_unseparated(", ");
            sep.push_bind_unseparated(s.0);
            sep.push_unseparated(")");
        }
        qb.push(")");
        let deleted = qb.build().execute(&mut *tx).await?.rows_affected();
        if deleted != chunk.len() as u64 {
            return Err(DecideError::Stale("an enrollment"));
        }
    }
    for chunk in w.enroll_insert.chunks(INSERT_CHUNK) {
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
    let mut changed: Vec<&SectionInfo> = touched.iter().filter_map(|s| sections.get(s)).collect();
    changed.sort_unstable_by_key(|s| s.id);
    for chunk in changed.chunks(INSERT_CHUNK) {
        let mut qb = QueryBuilder::new("UPDATE sections SET enrolled = CASE id");
        for s in chunk {
            qb.push(" WHEN ")
                .push_bind(s.id.0)
                .push(" THEN ")
                .push_bind(s.enrolled);
        }
        qb.push(" END WHERE id IN ");
        push_in(&mut qb, chunk.iter().map(|s| s.id.0));
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
    for chunk in w.waitlist_insert.chunks(INSERT_CHUNK) {
        // A student skipped or promoted earlier who asks again goes to the
        // back of the list: the old entry is removed, not revived.
        let mut qb = QueryBuilder::new(
            "DELETE FROM waitlist_entries WHERE state <> 'waiting' AND (section_id, student_id) IN (",
        );
        let mut sep = qb.separated(", ");
        for e in chunk {
            sep.push("(");
            sep.push_bind_unseparated(e.section.0);
            sep.push_unseparated(", ");
            sep.push_bind_unseparated(e.student.0);
            sep.push_unseparated(")");
        }
        qb.push(")");
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

async fn insert_outcomes(
    tx: &mut MySqlConnection,
    ctx: &Context<'_>,
    outcomes: &[OutcomeRow],
) -> Result<(), DecideError> {
    for chunk in outcomes.chunks(INSERT_CHUNK) {
        let mut qb = QueryBuilder::new(
            "INSERT INTO command_outcomes (command_id, item, student_id, round_id, section_id, action, \
             outcome, reason, lease_id, issued_at, decided_at, decided_by) ",
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
                .push_bind(ctx.worker);
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
            });
        }
    }
    insert_outcomes(tx, ctx, &outcomes).await?;
    Ok(failed)
}
