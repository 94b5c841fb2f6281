//! Property tests of the pure plan step, with no database: random worlds
//! (sections with seats held, free seats and lines; students holding
//! sections) and random groups of commands, some refused by their pass,
//! some already decided, some sent twice. Each case runs in microseconds,
//! so many more shapes are tried than the MariaDB-driven tests can afford.
//!
//! Whatever the world and the commands (enrolls, drops and swaps), the plan:
//! - decides every command exactly once, in order, with one outcome row
//!   per item of each command not decided before;
//! - never enrolls more students than a section's capacity, and never a
//!   student twice in a section; deletes only enrollments that exist; its
//!   seat counts are the enrollments it leaves;
//! - resolves each section's line from the front, in order, and leaves no
//!   seat of an open section free while a student read from its line
//!   still waits (or says the line was cut short);
//! - is a function of its inputs.

use chrono::{DateTime, TimeZone, Utc};
use enrollment::rules::{Held, Meeting, SectionInfo, StudentState};
use enrollment::{Action, Command, CommandId, CourseId, Reason, RoundId, SectionId, StudentId};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;
use worker::decide::{plan, Checked, Line, Outcome, Plan, Round, Waiting, World};

const SECTIONS: usize = 4;
const STUDENTS: usize = 5;
const ROUND: RoundId = RoundId(1);
/// Where the ids given to waitlist resolutions start.
const FIRST_RESOLUTION: u128 = 1 << 64;

#[derive(Debug, Clone)]
struct GenSection {
    course: u32,
    credits: u8,
    /// Seats beyond those held.
    free: u32,
    closed: bool,
    meeting: Option<(u8, u16)>,
    /// Students in line, by index, front first (repeats are dropped).
    line: Vec<usize>,
    more: bool,
}

#[derive(Debug, Clone)]
struct GenStudent {
    max_credits: u8,
    holds: Vec<bool>,
    budget: u16,
    ended: bool,
}

#[derive(Debug, Clone)]
struct GenCommand {
    /// `STUDENTS` is a student who does not exist.
    student: usize,
    /// Section indices; `SECTIONS` is a section that does not exist. A
    /// drop uses the first; a swap gives up the first for the second.
    sections: Vec<usize>,
    drop: bool,
    swap: bool,
    waitlist: bool,
    pass_refused: bool,
    /// 0: new; 1: decided before this group; 2: the previous command again.
    replay: u8,
}

#[derive(Debug, Clone)]
struct Case {
    sections: Vec<GenSection>,
    students: Vec<GenStudent>,
    commands: Vec<GenCommand>,
}

fn section() -> impl Strategy<Value = GenSection> {
    (
        0u32..3,
        1u8..=4,
        0u32..=2,
        prop::bool::weighted(0.1),
        prop::option::of((1u8..=2, 0u16..=3)),
        proptest::collection::vec(0..STUDENTS, 0..=4),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(course, credits, free, closed, meeting, line, more)| GenSection {
                course,
                credits,
                free,
                closed,
                meeting,
                line,
                more,
            },
        )
}

fn student() -> impl Strategy<Value = GenStudent> {
    (
        4u8..=12,
        proptest::collection::vec(prop::bool::weighted(0.3), SECTIONS),
        1u16..=4,
        prop::bool::weighted(0.1),
    )
        .prop_map(|(max_credits, holds, budget, ended)| GenStudent {
            max_credits,
            holds,
            budget,
            ended,
        })
}

fn command() -> impl Strategy<Value = GenCommand> {
    (
        prop_oneof![9 => 0..STUDENTS, 1 => Just(STUDENTS)],
        proptest::collection::vec(prop_oneof![9 => 0..SECTIONS, 1 => Just(SECTIONS)], 1..=3),
        prop::bool::weighted(0.35),
        prop::bool::weighted(0.5),
        prop::bool::weighted(0.05),
        prop_oneof![18 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(student, sections, drop, waitlist, pass_refused, replay, swap)| GenCommand {
                student,
                sections,
                drop,
                swap,
                waitlist,
                pass_refused,
                replay,
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec(section(), SECTIONS),
        proptest::collection::vec(student(), STUDENTS),
        proptest::collection::vec(command(), 0..=16),
    )
        .prop_map(|(sections, students, commands)| Case {
            sections,
            students,
            commands,
        })
}

fn section_id(i: usize) -> SectionId {
    SectionId(i as u32 + 1)
}

fn student_id(i: usize) -> StudentId {
    StudentId(i as u32 + 1)
}

fn lease(student: usize) -> Uuid {
    Uuid::from_u128(student as u128 + 1)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 12, 9, 0, 0).unwrap()
}

/// The world the case describes: consistent seat counts, lines in id order.
fn world(c: &Case) -> World {
    let mut w = World::default();
    let infos: Vec<SectionInfo> = c
        .sections
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let held = c.students.iter().filter(|s| s.holds[i]).count() as u32;
            SectionInfo {
                id: section_id(i),
                course_id: CourseId(g.course + 1),
                credits: g.credits,
                closed: g.closed,
                capacity: held + g.free,
                enrolled: held,
                meetings: g
                    .meeting
                    .iter()
                    .map(|&(weekday, slot)| Meeting {
                        weekday,
                        start_min: 540 + slot * 30,
                        end_min: 600 + slot * 30,
                    })
                    .collect(),
                prerequisites: Vec::new(),
            }
        })
        .collect();
    for (k, s) in c.students.iter().enumerate() {
        let held = infos
            .iter()
            .enumerate()
            .filter(|(i, _)| s.holds[*i])
            .map(|(_, info)| Held {
                section_id: info.id,
                course_id: info.course_id,
                credits: info.credits,
                meetings: info.meetings.clone(),
            })
            .collect();
        let state = StudentState {
            class_year: 1,
            max_credits: s.max_credits,
            completed: Vec::new(),
            held,
        };
        w.students.insert(student_id(k), state);
        if s.ended {
            w.ended.insert(lease(k));
        }
    }
    let mut next_entry = 1u64;
    for (i, g) in c.sections.iter().enumerate() {
        let mut seen = HashSet::new();
        let mut line = Line::default();
        for &k in g.line.iter().filter(|&&k| seen.insert(k)) {
            line.entries.push(Waiting {
                id: next_entry,
                student: student_id(k),
                round: ROUND,
                command: CommandId(Uuid::from_u128(u128::from(next_entry) << 32)),
            });
            w.waiting.insert((section_id(i), student_id(k)));
            next_entry += 1;
        }
        // As read: the line is cut short only after some entries.
        if !line.entries.is_empty() {
            line.more = g.more;
            w.lines.insert(section_id(i), line);
        }
    }
    for info in infos {
        w.sections.insert(info.id, info);
    }
    w.rounds.insert(
        ROUND,
        Round {
            accepting: true,
            eligible_mask: 0xff,
        },
    );
    w
}

fn commands(c: &Case, w: &mut World) -> Vec<Command> {
    let mut out: Vec<Command> = Vec::new();
    for (k, g) in c.commands.iter().enumerate() {
        let sections: Vec<SectionId> = g.sections.iter().map(|&i| section_id(i)).collect();
        let action = if g.swap && sections.len() >= 2 && sections[0] != sections[1] {
            Action::Swap {
                drop: sections[0],
                enroll: sections[1],
            }
        } else if g.drop {
            Action::Drop {
                section: sections[0],
            }
        } else {
            Action::Enroll {
                sections,
                waitlist: g.waitlist,
                options: Vec::new(),
            }
        };
        let mut cmd = Command::new(student_id(g.student), ROUND, String::new(), action);
        cmd.issued_at = now();
        cmd.id = CommandId(Uuid::from_u128(k as u128 + 1));
        match (g.replay, out.last()) {
            (1, _) => {
                w.decided_before.insert(cmd.id);
            }
            (2, Some(previous)) => cmd = previous.clone(),
            _ => {}
        }
        out.push(cmd);
    }
    out
}

fn checked<'c>(c: &Case, cmds: &'c [Command]) -> Vec<Checked<'c>> {
    cmds.iter()
        .zip(&c.commands)
        .map(|(cmd, g)| {
            let known = c.students.get(g.student);
            Checked {
                cmd,
                lease: known.map(|_| lease(g.student)),
                budget: known.map_or(1, |s| s.budget),
                early: g.pass_refused.then_some(Reason::PassInvalid),
            }
        })
        .collect()
}

fn run(c: &Case) -> (World, Vec<Command>, Plan) {
    let mut w = world(c);
    let cmds = commands(c, &mut w);
    let checked = checked(c, &cmds);
    let mut next = FIRST_RESOLUTION;
    let mut new_id = || {
        next += 1;
        CommandId(Uuid::from_u128(next))
    };
    let planned = plan(w.clone(), &checked, now(), &mut new_id);
    (w, cmds, planned)
}

fn each_command_is_decided_once(
    w: &World,
    cmds: &[Command],
    p: &Plan,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(p.decisions.len(), cmds.len());
    let mut seen = HashSet::new();
    let mut rows: HashMap<CommandId, Vec<u16>> = HashMap::new();
    for o in &p.writes.outcomes {
        rows.entry(o.command).or_default().push(o.item);
    }
    for (cmd, d) in cmds.iter().zip(&p.decisions) {
        prop_assert_eq!(d.command, cmd.id);
        let fresh = !w.decided_before.contains(&cmd.id) && seen.insert(cmd.id);
        prop_assert_eq!(d.replayed, !fresh, "{:?}", cmd.id);
        if fresh {
            let asked: Vec<SectionId> = d.items.iter().map(|(s, _)| *s).collect();
            prop_assert_eq!(&asked[..], &*cmd.action.sections());
            let items: Vec<u16> = (0..asked.len() as u16).collect();
            prop_assert_eq!(rows.remove(&cmd.id), Some(items), "rows of {:?}", cmd.id);
        } else {
            prop_assert!(d.items.is_empty());
        }
    }
    // What is left are the resolutions of waitlist entries: one row each.
    for (id, items) in rows {
        prop_assert!(id.0.as_u128() > FIRST_RESOLUTION, "stray row {:?}", id);
        prop_assert_eq!(items, vec![0]);
    }
    Ok(())
}

fn seats_are_never_oversold(w: &World, p: &Plan) -> Result<(), TestCaseError> {
    let mut held: HashSet<(StudentId, SectionId)> = w
        .students
        .iter()
        .flat_map(|(st, s)| s.held.iter().map(|h| (*st, h.section_id)))
        .collect();
    for pair in &p.writes.enroll_delete {
        prop_assert!(held.remove(pair), "deleted {:?}, not held", pair);
    }
    for (st, s, _, _) in &p.writes.enroll_insert {
        prop_assert!(held.insert((*st, *s)), "{:?} twice in {:?}", st, s);
    }
    let counts: BTreeMap<SectionId, u32> = p.writes.seat_counts.iter().copied().collect();
    prop_assert_eq!(
        counts.len(),
        p.writes.seat_counts.len(),
        "a section counted twice"
    );
    for (sid, info) in &w.sections {
        let enrolled = held.iter().filter(|(_, s)| s == sid).count() as u32;
        prop_assert!(enrolled <= info.capacity, "oversold {:?}", sid);
        let written = counts.get(sid).copied().unwrap_or(info.enrolled);
        prop_assert_eq!(written, enrolled, "miscounted {:?}", sid);
    }
    Ok(())
}

fn lines_move_in_order(w: &World, cmds: &[Command], p: &Plan) -> Result<(), TestCaseError> {
    let resolved: Vec<u64> = p.writes.waitlist_resolve.iter().map(|r| r.0).collect();
    let unique: HashSet<u64> = resolved.iter().copied().collect();
    prop_assert_eq!(unique.len(), resolved.len(), "an entry resolved twice");
    for (sid, line) in &w.lines {
        let ids: Vec<u64> = line.entries.iter().map(|e| e.id).collect();
        let done: Vec<u64> = resolved
            .iter()
            .copied()
            .filter(|id| ids.contains(id))
            .collect();
        prop_assert_eq!(
            &done[..],
            &ids[..done.len()],
            "line of {:?} out of order",
            sid
        );
        let info = &w.sections[sid];
        let enrolled = p
            .writes
            .seat_counts
            .iter()
            .find(|(s, _)| s == sid)
            .map_or(info.enrolled, |(_, n)| *n);
        let free = !info.closed && enrolled < info.capacity;
        prop_assert!(
            !(free && done.len() < ids.len()),
            "a seat of {:?} is free while a student read waits",
            sid
        );
        prop_assert!(
            !(free && line.more) || p.line_cut_short,
            "a seat of {:?} is free with the line cut short, unsaid",
            sid
        );
    }
    // Each promotion is an enrollment made from its entry's command, unless
    // the student dropped the seat again in the same group.
    for o in &p.writes.outcomes {
        if o.outcome == Outcome::Promoted {
            let entry = w.lines[&o.section]
                .entries
                .iter()
                .find(|e| e.student == o.student)
                .map(|e| e.command);
            let made =
                p.writes.enroll_insert.iter().any(|(st, s, _, by)| {
                    *st == o.student && *s == o.section && Some(*by) == entry
                });
            let new = p
                .writes
                .waitlist_insert
                .iter()
                .any(|e| e.student == o.student && e.section == o.section);
            let dropped = cmds.iter().zip(&p.decisions).any(|(c, d)| {
                c.student == o.student && d.items.contains(&(o.section, Outcome::Dropped))
            });
            prop_assert!(
                made || new || dropped,
                "promotion of {:?} without a seat",
                o.student
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn the_plan_keeps_every_promise(c in case()) {
        let (w, cmds, p) = run(&c);
        each_command_is_decided_once(&w, &cmds, &p)?;
        seats_are_never_oversold(&w, &p)?;
        lines_move_in_order(&w, &cmds, &p)?;
    }

    #[test]
    fn the_plan_is_a_function_of_its_inputs(c in case()) {
        let (_, _, a) = run(&c);
        let (_, _, b) = run(&c);
        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
}

/// A world of `sections` (course, free seats beyond those held) and one
/// student (index 0, 9 credits at most) holding `holds`; 3 credits each.
fn small(sections: &[(u32, u32)], holds: &[usize], line: &[usize]) -> Case {
    let mut students = vec![GenStudent {
        max_credits: 9,
        holds: (0..SECTIONS).map(|i| holds.contains(&i)).collect(),
        budget: 4,
        ended: false,
    }];
    students.extend((1..STUDENTS).map(|_| GenStudent {
        max_credits: 9,
        holds: vec![false; SECTIONS],
        budget: 4,
        ended: false,
    }));
    let mut gen: Vec<GenSection> = sections
        .iter()
        .map(|&(course, free)| GenSection {
            course,
            credits: 3,
            free,
            closed: false,
            meeting: None,
            line: Vec::new(),
            more: false,
        })
        .collect();
    gen.resize(SECTIONS, gen[0].clone());
    gen[0].line = line.to_vec();
    Case {
        sections: gen,
        students,
        commands: Vec::new(),
    }
}

fn swap_items(c: &Case, drop: usize, enroll: usize) -> (Vec<(SectionId, Outcome)>, Plan) {
    let w = world(c);
    let cmd = Command::new(
        student_id(0),
        ROUND,
        String::new(),
        Action::Swap {
            drop: section_id(drop),
            enroll: section_id(enroll),
        },
    );
    let checked = [Checked {
        cmd: &cmd,
        lease: Some(lease(0)),
        budget: 4,
        early: None,
    }];
    let mut next = FIRST_RESOLUTION;
    let mut new_id = || {
        next += 1;
        CommandId(Uuid::from_u128(next))
    };
    let p = plan(w, &checked, now(), &mut new_id);
    (p.decisions[0].items.clone(), p)
}

#[test]
fn a_swap_plans_both_changes_or_none() {
    let (a, b) = (section_id(0), section_id(1));
    // Same course, a seat in B: B gained, A given up.
    let (items, p) = swap_items(&small(&[(1, 0), (1, 1)], &[0], &[]), 0, 1);
    assert_eq!(items, [(b, Outcome::Enrolled), (a, Outcome::Dropped)]);
    assert_eq!(p.writes.enroll_delete, [(student_id(0), a)]);
    assert_eq!(p.writes.enroll_insert.len(), 1);
    assert_eq!(p.writes.seat_counts, [(a, 0), (b, 1)]);
    let stored: Vec<(u16, &str)> = p
        .writes
        .outcomes
        .iter()
        .map(|o| (o.item, o.action))
        .collect();
    assert_eq!(stored, [(0, "swap"), (1, "swap")]);

    // B full: nothing written but the two refusals.
    let (items, p) = swap_items(&small(&[(1, 0), (2, 0)], &[0], &[]), 0, 1);
    assert_eq!(
        items,
        [
            (b, Outcome::Rejected(Reason::Full)),
            (a, Outcome::Rejected(Reason::Full))
        ]
    );
    assert!(p.writes.enroll_delete.is_empty() && p.writes.enroll_insert.is_empty());
    assert!(p.writes.seat_counts.is_empty());

    // A not held: refused, whatever B's seats.
    let (items, _) = swap_items(&small(&[(1, 0), (2, 3)], &[], &[]), 0, 1);
    assert_eq!(items[0], (b, Outcome::Rejected(Reason::NotEnrolled)));

    // At 9 of 9 credits: A's 3 are freed for B's 3.
    let c = small(&[(1, 0), (2, 1), (3, 0), (4, 0)], &[0, 2, 3], &[]);
    let (items, _) = swap_items(&c, 0, 1);
    assert_eq!(items, [(b, Outcome::Enrolled), (a, Outcome::Dropped)]);
}

#[test]
fn a_swap_gives_the_seat_given_up_to_the_line() {
    let (items, p) = swap_items(&small(&[(1, 0), (2, 1)], &[0], &[1]), 0, 1);
    assert_eq!(
        items,
        [
            (section_id(1), Outcome::Enrolled),
            (section_id(0), Outcome::Dropped)
        ]
    );
    let promoted: Vec<(StudentId, SectionId)> = p
        .writes
        .outcomes
        .iter()
        .filter(|o| o.outcome == Outcome::Promoted)
        .map(|o| (o.student, o.section))
        .collect();
    assert_eq!(promoted, [(student_id(1), section_id(0))]);
    assert_eq!(p.writes.waitlist_resolve.len(), 1);
}
