//! Alternates: a cart item tries its first choice, then each alternate in
//! order, until one is enrolled; the outcome names the section taken and
//! which choice it was. A waitlist place is taken on the first choice only
//! after every alternate was tried.

use crate::helpers::*;
use chrono::Utc;
use enrollment::rules::{SectionInfo, StudentState};
use enrollment::{
    Action, Command, CommandId, CourseId, ItemOptions, Reason, RoundId, SectionId, StudentId,
};
use uuid::Uuid;
use worker::decide::{plan, Checked, Outcome, Round, World};

fn with_alternates(
    student: StudentId,
    round: RoundId,
    first: SectionId,
    alternates: &[SectionId],
    waitlist: bool,
) -> Command {
    Command::new(
        student,
        round,
        pass(student, round),
        Action::Enroll {
            sections: vec![first],
            waitlist,
            options: vec![ItemOptions {
                alternates: alternates.to_vec(),
                waitlist: None,
            }],
        },
    )
}

/// Three sections of one course (ids 1, 2, 3) with these free seats, and
/// one student holding nothing.
fn world(free: [u32; 3]) -> World {
    let mut w = World::default();
    for (i, f) in free.iter().enumerate() {
        let id = SectionId(i as u32 + 1);
        w.sections.insert(
            id,
            SectionInfo {
                id,
                course_id: CourseId(1),
                credits: 3,
                closed: false,
                capacity: 5,
                enrolled: 5 - f,
                meetings: Vec::new(),
                prerequisites: Vec::new(),
            },
        );
    }
    w.students.insert(
        StudentId(1),
        StudentState {
            class_year: 1,
            max_credits: 18,
            ..StudentState::default()
        },
    );
    w.rounds.insert(
        RoundId(1),
        Round {
            accepting: true,
            eligible_mask: 0xff,
        },
    );
    w
}

fn planned(free: [u32; 3], waitlist: bool) -> worker::decide::Plan {
    let cmd = Command::new(
        StudentId(1),
        RoundId(1),
        String::new(),
        Action::Enroll {
            sections: vec![SectionId(1)],
            waitlist,
            options: vec![ItemOptions {
                alternates: vec![SectionId(3), SectionId(2)],
                waitlist: None,
            }],
        },
    );
    let checked = [Checked {
        cmd: &cmd,
        lease: Some(Uuid::from_u128(1)),
        budget: 5,
        early: None,
    }];
    let mut n = 0u128;
    let mut new_id = || {
        n += 1;
        CommandId(Uuid::from_u128(n))
    };
    plan(world(free), &checked, Utc::now(), &mut new_id)
}

#[test]
fn the_plan_tries_the_alternates_in_order() {
    // First choice free: taken, alternates untouched.
    let p = planned([1, 1, 1], false);
    assert_eq!(
        p.decisions[0].items,
        vec![(SectionId(1), Outcome::Enrolled)]
    );
    assert_eq!(p.writes.outcomes[0].choice, 0);

    // First full: the first alternate named (03) before the second (02).
    let p = planned([0, 1, 1], false);
    assert_eq!(
        p.decisions[0].items,
        vec![(SectionId(3), Outcome::Enrolled)]
    );
    assert_eq!(p.writes.outcomes[0].choice, 1);
    assert_eq!(p.writes.seat_counts, vec![(SectionId(3), 5)]);

    // 01 and 03 full: the second alternate.
    let p = planned([0, 1, 0], false);
    assert_eq!(
        p.decisions[0].items,
        vec![(SectionId(2), Outcome::Enrolled)]
    );
    assert_eq!(p.writes.outcomes[0].choice, 2);

    // All full: the first choice's reason, and no waitlist unless asked.
    let p = planned([0, 0, 0], false);
    assert_eq!(
        p.decisions[0].items,
        vec![(SectionId(1), Outcome::Rejected(Reason::Full))]
    );
    assert!(p.writes.waitlist_insert.is_empty());

    // All full with the waitlist: a place on the first choice only.
    let p = planned([0, 0, 0], true);
    assert_eq!(
        p.decisions[0].items,
        vec![(SectionId(1), Outcome::Waitlisted)]
    );
    assert_eq!(p.writes.waitlist_insert.len(), 1);
    assert_eq!(p.writes.waitlist_insert[0].section, SectionId(1));

    // A free alternate beats a waitlist place on the first choice.
    let p = planned([0, 0, 1], true);
    assert_eq!(
        p.decisions[0].items,
        vec![(SectionId(3), Outcome::Enrolled)]
    );
    assert!(p.writes.waitlist_insert.is_empty());
}

/// (section, outcome, reason, choice) of a command's items.
async fn recorded(db: &TestDb, id: CommandId) -> Vec<(u32, String, Option<String>, u8)> {
    sqlx::query_as(
        "SELECT section_id, outcome, reason, choice FROM command_outcomes \
         WHERE command_id = ? ORDER BY item",
    )
    .bind(id.0)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn alternates_are_decided_in_order_on_mariadb() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let s01 = cat.section("ALT100", 3, 1, &[]).await;
    let course = cat.course_of(s01).await;
    let s02 = cat.another_section(course, 2, 1, &[]).await;
    let s03 = cat.another_section(course, 3, 1, &[]).await;
    let other = cat.section("ALT200", 3, 1, &[]).await;
    let st = cat.students(4).await;
    let ledger = ledger(&db, "alt").await;

    // Student 0 takes 01; student 1 wants 01, then 03, then 02: gets 03.
    let a = enroll(st[0], cat.round, &[s01]);
    let b = Command::new(
        st[1],
        cat.round,
        pass(st[1], cat.round),
        Action::Enroll {
            sections: vec![s01, other],
            waitlist: false,
            options: vec![
                ItemOptions {
                    alternates: vec![s03, s02],
                    waitlist: None,
                },
                ItemOptions::default(),
            ],
        },
    );
    // Student 2, same wishes: 01 and 03 are gone, 02 is left.
    let c = with_alternates(st[2], cat.round, s01, &[s03, s02], false);
    // Student 3: everything full; waitlisted on 01 only.
    let d = with_alternates(st[3], cat.round, s01, &[s03, s02], true);
    let decided = ledger.decide(&[&a, &b]).await.unwrap();
    assert_eq!(
        decided[1].items,
        vec![(s03, Outcome::Enrolled), (other, Outcome::Enrolled)]
    );
    ledger.decide(&[&c]).await.unwrap();
    ledger.decide(&[&d]).await.unwrap();

    assert_eq!(
        recorded(&db, b.id).await,
        vec![
            (s03.0, "enrolled".into(), None, 1),
            (other.0, "enrolled".into(), None, 0)
        ]
    );
    assert_eq!(
        recorded(&db, c.id).await,
        vec![(s02.0, "enrolled".into(), None, 2)]
    );
    assert_eq!(
        recorded(&db, d.id).await,
        vec![(s01.0, "waitlisted".into(), None, 0)]
    );
    let waiting: Vec<(u32, u32)> = sqlx::query_as(
        "SELECT section_id, student_id FROM waitlist_entries WHERE state = 'waiting'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(waiting, vec![(s01.0, st[3].0)]);
    for s in [s01, s02, s03] {
        assert_eq!(cat.enrolled(s).await, (1, 1));
    }
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");

    // Redelivered: the recorded outcome, no second effect.
    let again = ledger.decide(&[&b]).await.unwrap();
    assert!(again[0].replayed);
    assert_eq!(cat.enrolled(s03).await, (1, 1));
}
