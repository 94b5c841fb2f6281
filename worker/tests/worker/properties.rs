//! Property tests of the decision logic: random catalogs and random
//! sequences of enroll (some asking for the waitlist, some naming
//! alternates for their items), drop and swap commands from several
//! students.
//!
//! - A pure model, built from the same `enrollment::rules` the worker calls,
//!   never breaks an invariant however the commands arrive, and never
//!   leaves a seat free while a student waits for it. An item with
//!   alternates takes the first of its choices that enrolls, and joins a
//!   waitlist (its first choice's) only when none did.
//! - The real worker (`Ledger::decide` on MariaDB, commands split into
//!   random transactions) decides every command exactly as the model does,
//!   and the database invariants hold afterwards; every waitlist ends as
//!   the model's, with a promotion outcome for each student promoted. This
//!   is the worker's SQL checked against the rules it claims to apply.

use crate::helpers::*;
use enrollment::rules::{self, Meeting, SectionInfo, StudentState};
use enrollment::{Action, Command, CourseId, ItemOptions, Reason, SectionId, StudentId};
use proptest::prelude::*;
use std::collections::VecDeque;
use worker::decide::Outcome;

const STUDENTS: usize = 4;
const MAX_CREDITS: u8 = 18;

/// One section of a generated catalog; `course` indexes the catalog's
/// courses, so two sections may share one.
#[derive(Debug, Clone)]
struct GenSection {
    course: usize,
    capacity: u32,
    meetings: Vec<(u8, u16, u16)>,
}

#[derive(Debug, Clone)]
enum GenCommand {
    Enroll {
        student: usize,
        sections: Vec<usize>,
        waitlist: bool,
        /// Each item's alternates, in order; no section appears twice in
        /// the command.
        alternates: Vec<Vec<usize>>,
    },
    Drop {
        student: usize,
        section: usize,
    },
    Swap {
        student: usize,
        drop: usize,
        enroll: usize,
    },
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Credits of each course.
    credits: Vec<u8>,
    sections: Vec<GenSection>,
    commands: Vec<GenCommand>,
    /// Where the command list is cut into transactions.
    cuts: Vec<usize>,
}

fn meeting() -> impl Strategy<Value = (u8, u16, u16)> {
    (1u8..=5, 0u16..=24, 3u16..=10).prop_map(|(day, slot, len)| {
        let start = 540 + slot * 15;
        (day, start, start + len * 15)
    })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        proptest::collection::vec(1u8..=6, 1..=4),
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                1u32..=3,
                proptest::collection::vec(meeting(), 0..=2),
            ),
            1..=6,
        ),
    )
        .prop_flat_map(|(credits, raw_sections)| {
            let courses = credits.len();
            let sections: Vec<GenSection> = raw_sections
                .into_iter()
                .map(|(course, capacity, meetings)| GenSection {
                    course: course.index(courses),
                    capacity,
                    meetings,
                })
                .collect();
            let n = sections.len();
            let command = prop_oneof![
                3 => (
                    0..STUDENTS,
                    proptest::collection::btree_set(0..n, 1..=3.min(n)),
                    prop::bool::weighted(0.4),
                    proptest::collection::vec((0usize..3, 0..n), 0..=3),
                )
                    .prop_map(|(student, s, waitlist, raw)| {
                        let sections: Vec<usize> = s.into_iter().collect();
                        let mut alternates = vec![Vec::new(); sections.len()];
                        let mut used: Vec<usize> = sections.clone();
                        for (item, alt) in raw {
                            if !used.contains(&alt) {
                                used.push(alt);
                                alternates[item % sections.len()].push(alt);
                            }
                        }
                        GenCommand::Enroll {
                            student,
                            sections,
                            waitlist,
                            alternates,
                        }
                    }),
                1 => (0..STUDENTS, 0..n).prop_map(|(student, section)| GenCommand::Drop {
                    student,
                    section,
                }),
                // Two different sections; with one section there is nothing
                // to swap to, and it is a drop.
                1 => (0..STUDENTS, 0..n, 0..n).prop_map(move |(student, drop, k)| {
                    if n < 2 {
                        GenCommand::Drop { student, section: drop }
                    } else {
                        let enroll = (drop + 1 + k % (n - 1)) % n;
                        GenCommand::Swap { student, drop, enroll }
                    }
                }),
            ];
            (
                Just(credits),
                Just(sections),
                proptest::collection::vec(command, 0..=24),
                proptest::collection::vec(0usize..=24, 0..=3),
            )
        })
        .prop_map(|(credits, sections, commands, cuts)| Scenario {
            credits,
            sections,
            commands,
            cuts,
        })
}

/// The worker's decision order on in-memory state: rules 3-7, then the
/// seat (or the waitlist, when asked for); a drop frees the seat for the
/// first waiting student who still qualifies.
struct Model {
    sections: Vec<SectionInfo>,
    students: Vec<StudentState>,
    /// Waiting students of each section, in line order.
    lines: Vec<VecDeque<usize>>,
    /// (section, student) of every promotion, in order.
    promoted: Vec<(usize, usize)>,
}

impl Model {
    fn new(s: &Scenario) -> Model {
        let sections = s
            .sections
            .iter()
            .enumerate()
            .map(|(i, g)| SectionInfo {
                id: SectionId(i as u32),
                course_id: CourseId(g.course as u32),
                credits: s.credits[g.course],
                closed: false,
                capacity: g.capacity,
                enrolled: 0,
                meetings: g
                    .meetings
                    .iter()
                    .map(|&(weekday, start_min, end_min)| Meeting {
                        weekday,
                        start_min,
                        end_min,
                    })
                    .collect(),
                prerequisites: Vec::new(),
            })
            .collect();
        let students = (0..STUDENTS)
            .map(|_| StudentState {
                class_year: 1,
                max_credits: MAX_CREDITS,
                ..StudentState::default()
            })
            .collect();
        let lines = vec![VecDeque::new(); s.sections.len()];
        Model {
            sections,
            students,
            lines,
            promoted: Vec::new(),
        }
    }

    /// One (section decided, outcome) per item of the command, in order.
    fn decide(&mut self, c: &GenCommand) -> Vec<(usize, Outcome)> {
        match c {
            GenCommand::Enroll {
                student,
                sections,
                waitlist,
                alternates,
            } => sections
                .iter()
                .zip(alternates)
                .map(|(&first, alts)| {
                    // Every choice in order, without the waitlist; the
                    // first one that enrolls is the item's outcome.
                    let mut first_outcome = None;
                    for &i in std::iter::once(&first).chain(alts) {
                        let (st, sec) = (&mut self.students[*student], &mut self.sections[i]);
                        match rules::check_enroll(st, sec).and_then(|()| rules::check_seat(sec)) {
                            Ok(()) => {
                                st.add(sec);
                                sec.enrolled += 1;
                                return (i, Outcome::Enrolled);
                            }
                            Err(reason) => {
                                first_outcome.get_or_insert(reason);
                            }
                        }
                    }
                    match first_outcome {
                        Some(Reason::Full) if *waitlist => {
                            if self.lines[first].contains(student) {
                                (first, Outcome::Rejected(Reason::AlreadyWaitlisted))
                            } else {
                                self.lines[first].push_back(*student);
                                (first, Outcome::Waitlisted)
                            }
                        }
                        Some(reason) => (first, Outcome::Rejected(reason)),
                        None => unreachable!("a refused item has a first reason"),
                    }
                })
                .collect(),
            GenCommand::Drop { student, section } => {
                let (st, sec) = (&mut self.students[*student], &mut self.sections[*section]);
                let outcome = match rules::check_drop(st, sec.id) {
                    Ok(()) => {
                        st.remove(sec.id);
                        sec.enrolled -= 1;
                        Outcome::Dropped
                    }
                    Err(reason) => Outcome::Rejected(reason),
                };
                if outcome == Outcome::Dropped {
                    self.promote(*section);
                }
                vec![(*section, outcome)]
            }
            GenCommand::Swap {
                student,
                drop,
                enroll,
            } => {
                let st = &self.students[*student];
                let (a, b) = (&self.sections[*drop], &self.sections[*enroll]);
                let verdict = rules::check_drop(st, a.id).and_then(|()| {
                    let mut without = st.clone();
                    without.remove(a.id);
                    rules::check_enroll(&without, b).and_then(|()| rules::check_seat(b))
                });
                match verdict {
                    Ok(()) => {
                        let st = &mut self.students[*student];
                        st.remove(SectionId(*drop as u32));
                        self.sections[*drop].enrolled -= 1;
                        st.add(&self.sections[*enroll]);
                        self.sections[*enroll].enrolled += 1;
                        self.promote(*drop);
                        vec![(*enroll, Outcome::Enrolled), (*drop, Outcome::Dropped)]
                    }
                    Err(reason) => vec![
                        (*enroll, Outcome::Rejected(reason)),
                        (*drop, Outcome::Rejected(reason)),
                    ],
                }
            }
        }
    }

    /// Gives free seats of `section` to the line, in order, passing over
    /// whoever no longer qualifies.
    fn promote(&mut self, section: usize) {
        let sec = &mut self.sections[section];
        while rules::check_seat(sec).is_ok() {
            let Some(next) = self.lines[section].pop_front() else {
                return;
            };
            let st = &mut self.students[next];
            if rules::check_enroll(st, sec).is_ok() {
                st.add(sec);
                sec.enrolled += 1;
                self.promoted.push((section, next));
            }
        }
    }

    /// Every domain invariant that the rules are responsible for.
    fn check(&self) -> Result<(), TestCaseError> {
        for (i, line) in self.lines.iter().enumerate() {
            let sec = &self.sections[i];
            prop_assert!(
                line.is_empty() || sec.enrolled == sec.capacity,
                "a seat of {:?} is free while {} wait",
                sec.id,
                line.len()
            );
        }
        for sec in &self.sections {
            let holders = self.students.iter().filter(|s| s.holds(sec.id)).count();
            prop_assert!(sec.enrolled <= sec.capacity, "oversold {:?}", sec.id);
            prop_assert_eq!(sec.enrolled as usize, holders, "miscounted {:?}", sec.id);
        }
        for st in &self.students {
            prop_assert!(st.credits() <= u32::from(st.max_credits), "over credit");
            for (i, a) in st.held.iter().enumerate() {
                for b in &st.held[i + 1..] {
                    prop_assert_ne!(a.course_id, b.course_id, "two sections of a course");
                    let clash = a
                        .meetings
                        .iter()
                        .any(|m| b.meetings.iter().any(|n| m.overlaps(n)));
                    prop_assert!(!clash, "overlapping sections held");
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_rules_never_break_an_invariant(s in scenario()) {
        let mut model = Model::new(&s);
        for c in &s.commands {
            let outcomes = model.decide(c);
            prop_assert!(!outcomes.is_empty());
            model.check()?;
        }
    }
}

/// Builds the scenario's catalog and students in the database; returns the
/// section ids (by generated index) and the student ids.
async fn build(cat: &Catalog<'_>, s: &Scenario, case: u32) -> (Vec<SectionId>, Vec<StudentId>) {
    let mut ids = Vec::new();
    let mut first_of_course: Vec<Option<u32>> = vec![None; s.credits.len()];
    let mut numbers = vec![1u16; s.credits.len()];
    for (i, g) in s.sections.iter().enumerate() {
        let id = match first_of_course[g.course] {
            None => {
                let code = format!("P{case}C{}", g.course);
                let id = cat
                    .section(&code, s.credits[g.course], g.capacity, &g.meetings)
                    .await;
                first_of_course[g.course] = Some(cat.course_of(id).await);
                id
            }
            Some(course) => {
                numbers[g.course] += 1;
                cat.another_section(course, numbers[g.course], g.capacity, &g.meetings)
                    .await
            }
        };
        assert_eq!(ids.len(), i);
        ids.push(id);
    }
    (ids, cat.students(STUDENTS).await)
}

#[test]
fn the_worker_decides_exactly_as_the_rules_say() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TestDb::new());
    let cat = rt.block_on(Catalog::new(&db));
    let ledger = rt.block_on(ledger(&db, "prop"));
    let case = std::cell::Cell::new(0u32);
    // Each case builds a catalog in MariaDB: a few cases keep this quick,
    // the pure test above covers the rules' search space.
    let config = ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(s in scenario())| {
        case.set(case.get() + 1);
        let (sections, students) = rt.block_on(build(&cat, &s, case.get()));
        let commands: Vec<Command> = s
            .commands
            .iter()
            .map(|c| match c {
                GenCommand::Enroll { student, sections: wanted, waitlist, alternates } => Command::new(
                    students[*student],
                    cat.round,
                    pass(students[*student], cat.round),
                    Action::Enroll {
                        sections: wanted.iter().map(|&i| sections[i]).collect(),
                        waitlist: *waitlist,
                        options: if alternates.iter().all(Vec::is_empty) {
                            Vec::new()
                        } else {
                            alternates
                                .iter()
                                .map(|a| ItemOptions {
                                    alternates: a.iter().map(|&i| sections[i]).collect(),
                                    waitlist: None,
                                })
                                .collect()
                        },
                    },
                ),
                GenCommand::Drop { student, section } => {
                    drop_cmd(students[*student], cat.round, sections[*section])
                }
                GenCommand::Swap { student, drop, enroll } => Command::new(
                    students[*student],
                    cat.round,
                    pass(students[*student], cat.round),
                    Action::Swap {
                        drop: sections[*drop],
                        enroll: sections[*enroll],
                    },
                ),
            })
            .collect();
        let mut cuts: Vec<usize> = s.cuts.iter().map(|&c| c.min(commands.len())).collect();
        cuts.push(commands.len());
        cuts.sort_unstable();
        let mut decided = Vec::new();
        let mut from = 0;
        for to in cuts {
            if to > from {
                let batch: Vec<&Command> = commands[from..to].iter().collect();
                decided.extend(rt.block_on(ledger.decide(&batch)).unwrap());
                from = to;
            }
        }
        prop_assert_eq!(decided.len(), commands.len());

        let mut model = Model::new(&s);
        for (c, d) in s.commands.iter().zip(&decided) {
            let expected: Vec<(SectionId, Outcome)> = model
                .decide(c)
                .into_iter()
                .map(|(i, o)| (sections[i], o))
                .collect();
            prop_assert_eq!(&d.items, &expected, "command {:?}", c);
        }
        let report = rt.block_on(worker::invariants::check(&db.pool)).unwrap();
        prop_assert!(report.holds(), "{:?}", report);
        // The lines and the promotions, as the model has them.
        for (i, sid) in sections.iter().enumerate() {
            let waiting: Vec<u32> = rt
                .block_on(
                    sqlx::query_scalar(
                        "SELECT student_id FROM waitlist_entries \
                         WHERE section_id = ? AND state = 'waiting' ORDER BY id",
                    )
                    .bind(sid.0)
                    .fetch_all(&db.pool),
                )
                .unwrap();
            let expected: Vec<u32> = model.lines[i].iter().map(|&k| students[k].0).collect();
            prop_assert_eq!(waiting, expected, "line of section {}", i);
            let told: Vec<u32> = rt
                .block_on(
                    sqlx::query_scalar(
                        "SELECT student_id FROM command_outcomes \
                         WHERE section_id = ? AND outcome = 'promoted' ORDER BY student_id",
                    )
                    .bind(sid.0)
                    .fetch_all(&db.pool),
                )
                .unwrap();
            let mut promoted: Vec<u32> = model
                .promoted
                .iter()
                .filter(|(s, _)| *s == i)
                .map(|(_, k)| students[*k].0)
                .collect();
            promoted.sort_unstable();
            prop_assert_eq!(told, promoted, "promotions of section {}", i);
        }
        // Nothing rejected for a reason the model cannot produce.
        for d in &decided {
            for (_, o) in &d.items {
                prop_assert!(!matches!(
                    o,
                    Outcome::Rejected(Reason::PassInvalid | Reason::PassExpired | Reason::PassExhausted)
                ));
            }
        }
    });
}
