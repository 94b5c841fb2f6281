//! The load step: one read of the world under locks (sections, then the
//! waitlist heads, then students, each in id order) into a [`World`].

use super::sql::{push_in, push_pairs};
use super::world::{Checked, Line, Round, Waiting, World};
use super::DecideError;
use enrollment::rules::{Held, Meeting, SectionInfo, StudentState};
use enrollment::{Action, CommandId, CourseId, RoundId, SectionId, StudentId};
use sqlx::{MySqlConnection, QueryBuilder};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Spare waitlist candidates read per section beyond its free seats, for
/// those who no longer qualify.
pub(super) const WAITLIST_SPARE: usize = 3;

/// Most waitlist candidates read per section in one transaction. Past it a
/// seat may stay free with ineligible students still in line; the next
/// transaction on the section goes on from there.
pub(super) const WAITLIST_MAX: usize = 2_000;

/// Locks and reads everything the live commands of `checked` need, and the
/// sections `fill` (to give their free seats to their lines), reading
/// each waitlist's head `spare` entries beyond the seats that may free up.
/// Writes nothing; the locks are held until the caller's transaction ends,
/// so a second load in the same transaction reads the same rows.
pub(super) async fn load(
    tx: &mut MySqlConnection,
    checked: &[Checked<'_>],
    fill: &[SectionId],
    spare: usize,
) -> Result<World, DecideError> {
    let live = || checked.iter().filter(|c| c.live());

    // What the live commands touch.
    let mut section_ids: Vec<SectionId> = Vec::new();
    let mut student_ids: Vec<StudentId> = Vec::new();
    let mut drops_per_section: HashMap<SectionId, usize> = HashMap::new();
    for c in live() {
        student_ids.push(c.cmd.student);
        section_ids.extend(c.cmd.action.every_section());
        // A swap may free its dropped seat like a drop does, so that
        // section's line is read too.
        if let Action::Drop { section: freed } | Action::Swap { drop: freed, .. } = c.cmd.action {
            *drops_per_section.entry(freed).or_default() += 1;
        }
    }
    section_ids.extend_from_slice(fill);
    section_ids.sort_unstable();
    section_ids.dedup();

    // Locks: sections, then students, each in id order. Sections before
    // students, each in id order, is one global order, so two workers
    // cannot deadlock on them.
    let mut world = World {
        sections: lock_sections(tx, &section_ids).await?,
        ..World::default()
    };
    world.lines = read_lines(tx, &world.sections, &drops_per_section, spare).await?;
    student_ids.extend(
        world
            .lines
            .values()
            .flat_map(|l| l.entries.iter().map(|w| w.student)),
    );
    student_ids.sort_unstable();
    student_ids.dedup();
    world.students = lock_students(tx, &student_ids).await?;

    // Commands decided before. Read after the locks: a concurrent decision of
    // the same command holds the same student lock, so it is visible now.
    // A fill has no command.
    if !checked.is_empty() {
        let mut qb = QueryBuilder::new(
            "SELECT DISTINCT command_id FROM command_outcomes WHERE command_id IN ",
        );
        push_in(&mut qb, checked.iter().map(|c| c.cmd.id.0));
        let rows: Vec<(Uuid,)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        world.decided_before = rows.into_iter().map(|(u,)| CommandId(u)).collect();
    }

    // Commands already carried by each lease (its owner is locked above).
    let leases: HashSet<Uuid> = live().filter_map(|c| c.lease).collect();
    if !leases.is_empty() {
        let mut qb = QueryBuilder::new(
            "SELECT lease_id, COUNT(DISTINCT command_id) FROM command_outcomes WHERE lease_id IN ",
        );
        push_in(&mut qb, leases.iter().copied());
        qb.push(" GROUP BY lease_id");
        let rows: Vec<(Uuid, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        for (lease, n) in rows {
            world
                .lease_used
                .insert(lease, u32::try_from(n).unwrap_or(u32::MAX));
        }
    }

    world.ended = ended_admissions(tx, checked).await?;

    let round_ids: HashSet<u32> = live()
        .map(|c| c.cmd.round.0)
        .chain(
            world
                .lines
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
            let accepting = matches!(state.as_str(), "open" | "paused");
            world.rounds.insert(
                RoundId(id),
                Round {
                    accepting,
                    eligible_mask,
                },
            );
        }
    }

    let held_sections = read_held(tx, &mut world.students).await?;
    let needs_transcript = read_courses(tx, &mut world.sections).await?;
    read_meetings(tx, &mut world, held_sections).await?;

    if needs_transcript && !world.students.is_empty() {
        let mut qb = QueryBuilder::new(
            "SELECT student_id, course_code FROM student_completed_courses WHERE student_id IN ",
        );
        push_in(&mut qb, world.students.keys().map(|s| s.0));
        let rows: Vec<(u32, String)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        for (student, code) in rows {
            if let Some(st) = world.students.get_mut(&StudentId(student)) {
                st.completed.push(code);
            }
        }
    }

    let wants_waitlist = live().any(|c| match &c.cmd.action {
        Action::Enroll {
            waitlist, options, ..
        } => *waitlist || options.iter().any(|o| o.waitlist == Some(true)),
        Action::LeaveWaitlist { .. } => true,
        Action::Drop { .. } | Action::Swap { .. } => false,
    });
    if wants_waitlist {
        let mut qb = QueryBuilder::new(
            "SELECT id, section_id, student_id FROM waitlist_entries WHERE state = 'waiting' AND student_id IN ",
        );
        push_in(&mut qb, world.students.keys().map(|s| s.0));
        let rows: Vec<(u64, u32, u32)> = qb.build_query_as().fetch_all(&mut *tx).await?;
        for (id, section, student) in rows {
            let key = (SectionId(section), StudentId(student));
            world.waiting.insert(key);
            world.waiting_rows.insert(key, id);
        }
    }
    Ok(world)
}

/// Open sections with a free seat and a student of an accepting round
/// waiting, in id order, at most `limit`. No locks: a hint of where
/// [`load`] and the plan will find seats to give.
pub(super) async fn fillable(
    conn: &mut MySqlConnection,
    limit: u32,
) -> Result<Vec<SectionId>, DecideError> {
    let rows: Vec<(u32,)> = sqlx::query_as(
        "SELECT s.id FROM sections s WHERE NOT s.closed AND s.enrolled < s.capacity \
         AND EXISTS (SELECT 1 FROM waitlist_entries w JOIN rounds r ON r.id = w.round_id \
         WHERE w.section_id = s.id AND w.state = 'waiting' AND r.state IN ('open', 'paused')) \
         AND s.id IN (SELECT DISTINCT section_id FROM waitlist_entries WHERE state = 'waiting') \
         ORDER BY s.id LIMIT ?",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(id,)| SectionId(id)).collect())
}

/// Locks the sections, in id order. Credits, prerequisites and meetings
/// are filled in later.
async fn lock_sections(
    tx: &mut MySqlConnection,
    ids: &[SectionId],
) -> Result<HashMap<SectionId, SectionInfo>, DecideError> {
    let mut sections = HashMap::new();
    if ids.is_empty() {
        return Ok(sections);
    }
    let mut qb = QueryBuilder::new(
        "SELECT id, course_id, capacity, enrolled, closed FROM sections WHERE id IN ",
    );
    push_in(&mut qb, ids.iter().map(|s| s.0));
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
    Ok(sections)
}

/// Locks the students, in id order. What they hold is filled in later.
async fn lock_students(
    tx: &mut MySqlConnection,
    ids: &[StudentId],
) -> Result<HashMap<StudentId, StudentState>, DecideError> {
    let mut students = HashMap::new();
    if ids.is_empty() {
        return Ok(students);
    }
    let mut qb = QueryBuilder::new("SELECT id, class_year, max_credits FROM students WHERE id IN ");
    push_in(&mut qb, ids.iter().map(|s| s.0));
    qb.push(" ORDER BY id FOR UPDATE");
    let rows: Vec<(u32, u8, u8)> = qb.build_query_as().fetch_all(&mut *tx).await?;
    for (id, class_year, max_credits) in rows {
        students.insert(
            StudentId(id),
            StudentState {
                class_year,
                max_credits,
                ..StudentState::default()
            },
        );
    }
    Ok(students)
}

/// Reads the head of the waitlist of every locked section that has a drop
/// in the group or a free seat now: as many entries as seats may free up,
/// plus `spare`. Must run under the section locks: every writer of a
/// section's waitlist holds that lock, so what is read is what is there.
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
            line.entries.push(Waiting {
                id,
                student: StudentId(student),
                round: RoundId(round),
                command: CommandId(command),
            });
        } else {
            line.more = true;
        }
    }
    Ok(lines)
}

/// Admissions that are over: the student left the queue, or joined again
/// and holds a newer place (the old ticket, and its lease, are gone). A
/// pass outlives neither. Students with no ticket at all in the round
/// (commands published without a waiting room) keep the pass's word.
async fn ended_admissions(
    tx: &mut MySqlConnection,
    checked: &[Checked<'_>],
) -> Result<HashSet<Uuid>, DecideError> {
    let mut ended = HashSet::new();
    let holders: HashSet<(u32, u32)> = checked
        .iter()
        .filter(|c| c.live() && c.lease.is_some())
        .map(|c| (c.cmd.round.0, c.cmd.student.0))
        .collect();
    if holders.is_empty() {
        return Ok(ended);
    }
    let mut qb = QueryBuilder::new(
        "SELECT round_id, student_id, state, lease_id FROM tickets WHERE (round_id, student_id) IN ",
    );
    push_pairs(&mut qb, holders);
    let rows: Vec<(u32, u32, String, Option<Uuid>)> =
        qb.build_query_as().fetch_all(&mut *tx).await?;
    let current: HashMap<(u32, u32), (String, Option<Uuid>)> = rows
        .into_iter()
        .map(|(r, s, state, lease)| ((r, s), (state, lease)))
        .collect();
    for c in checked.iter().filter(|c| c.live()) {
        let key = (c.cmd.round.0, c.cmd.student.0);
        if let (Some(lease), Some((state, held))) = (c.lease, current.get(&key)) {
            if state != "admitted" || *held != Some(lease) {
                ended.insert(lease);
            }
        }
    }
    Ok(ended)
}

/// Fills in each locked student's current sections; returns their ids.
async fn read_held(
    tx: &mut MySqlConnection,
    students: &mut HashMap<StudentId, StudentState>,
) -> Result<Vec<u32>, DecideError> {
    let mut held_sections = Vec::new();
    if students.is_empty() {
        return Ok(held_sections);
    }
    let mut qb = QueryBuilder::new(
        "SELECT e.student_id, e.section_id, e.course_id, c.credits FROM enrollments e \
         JOIN courses c ON c.id = e.course_id WHERE e.student_id IN ",
    );
    push_in(&mut qb, students.keys().map(|s| s.0));
    let rows: Vec<(u32, u32, u32, u8)> = qb.build_query_as().fetch_all(&mut *tx).await?;
    for (student, section, course, credits) in rows {
        held_sections.push(section);
        if let Some(st) = students.get_mut(&StudentId(student)) {
            st.held.push(Held {
                section_id: SectionId(section),
                course_id: CourseId(course),
                credits,
                meetings: Vec::new(),
            });
        }
    }
    Ok(held_sections)
}

/// Fills in the course credits and prerequisites of the sections asked
/// for. Returns whether any has a prerequisite (then transcripts are read).
async fn read_courses(
    tx: &mut MySqlConnection,
    sections: &mut HashMap<SectionId, SectionInfo>,
) -> Result<bool, DecideError> {
    if sections.is_empty() {
        return Ok(false);
    }
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
    let any = !rows.is_empty();
    for (id, code) in rows {
        if let Some(s) = sections.get_mut(&SectionId(id)) {
            s.prerequisites.push(code);
        }
    }
    Ok(any)
}

/// Fills in the meetings of every section involved, asked for or held.
async fn read_meetings(
    tx: &mut MySqlConnection,
    world: &mut World,
    held_sections: Vec<u32>,
) -> Result<(), DecideError> {
    let mut ids: Vec<u32> = world
        .sections
        .keys()
        .map(|s| s.0)
        .chain(held_sections)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(());
    }
    let mut qb = QueryBuilder::new(
        "SELECT section_id, weekday, start_min, end_min FROM section_meetings WHERE section_id IN ",
    );
    push_in(&mut qb, ids);
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
    for s in world.sections.values_mut() {
        s.meetings = by_section.get(&s.id).cloned().unwrap_or_default();
    }
    for st in world.students.values_mut() {
        for h in &mut st.held {
            h.meetings = by_section.get(&h.section_id).cloned().unwrap_or_default();
        }
    }
    Ok(())
}
