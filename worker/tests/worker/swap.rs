//! Swaps decided through the ledger on a real database and through a real
//! worker on RabbitMQ: the section gained (item 0) and the section given up
//! (item 1) change together, or nothing changes and both items say why.

use crate::helpers::*;
use enrollment::{Action, Command, Reason, RoundId, SectionId, StudentId};
use std::time::Duration;
use worker::decide::Outcome;
use worker::ledger::Ledger;

fn swap(student: StudentId, round: RoundId, drop: SectionId, enroll: SectionId) -> Command {
    Command::new(
        student,
        round,
        pass(student, round),
        Action::Swap { drop, enroll },
    )
}

async fn decide_one(l: &Ledger, cmd: &Command) -> Vec<(SectionId, Outcome)> {
    let d = l.decide(&[cmd]).await.expect("decide");
    assert_eq!(d.len(), 1);
    d[0].items.clone()
}

async fn held(db: &TestDb, student: StudentId) -> Vec<u32> {
    sqlx::query_scalar(
        "SELECT section_id FROM enrollments WHERE student_id = ? ORDER BY section_id",
    )
    .bind(student.0)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

/// (item, section, action, outcome, reason) of a command's outcome rows.
async fn rows(db: &TestDb, cmd: &Command) -> Vec<(u16, u32, String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT item, section_id, action, outcome, reason FROM command_outcomes \
         WHERE command_id = ? ORDER BY item",
    )
    .bind(cmd.id.0)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_swap_enrolls_in_b_and_gives_up_a_in_one_decision() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w").await;
    let a = cat.section("SW101", 3, 5, &[(1, 540, 615)]).await;
    let b = cat.section("SW102", 3, 5, &[(2, 540, 615)]).await;
    let st = cat.students(1).await[0];
    decide_one(&l, &enroll(st, cat.round, &[a])).await;

    let cmd = swap(st, cat.round, a, b);
    assert_eq!(
        decide_one(&l, &cmd).await,
        [(b, Outcome::Enrolled), (a, Outcome::Dropped)]
    );
    assert_eq!(held(&db, st).await, [b.0]);
    assert_eq!(cat.enrolled(a).await, (0, 0));
    assert_eq!(cat.enrolled(b).await, (1, 1));
    assert_eq!(
        rows(&db, &cmd).await,
        [
            (0, b.0, "swap".into(), "enrolled".into(), None),
            (1, a.0, "swap".into(), "dropped".into(), None),
        ]
    );
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}

#[tokio::test]
async fn a_refused_swap_changes_nothing_and_says_why() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w").await;
    let a = cat.section("SW201", 3, 5, &[]).await;
    let full = cat.section("SW202", 3, 1, &[]).await;
    let s = cat.students(2).await;
    let (st, other) = (s[0], s[1]);
    decide_one(&l, &enroll(st, cat.round, &[a])).await;
    decide_one(&l, &enroll(other, cat.round, &[full])).await;

    // B full: the student keeps A.
    let cmd = swap(st, cat.round, a, full);
    assert_eq!(
        decide_one(&l, &cmd).await,
        [
            (full, Outcome::Rejected(Reason::Full)),
            (a, Outcome::Rejected(Reason::Full))
        ]
    );
    assert_eq!(held(&db, st).await, [a.0]);
    assert_eq!(cat.enrolled(a).await, (1, 1));
    assert_eq!(cat.enrolled(full).await, (1, 1));
    assert_eq!(
        rows(&db, &cmd).await,
        [
            (
                0,
                full.0,
                "swap".into(),
                "rejected".into(),
                Some("full".into())
            ),
            (
                1,
                a.0,
                "swap".into(),
                "rejected".into(),
                Some("full".into())
            ),
        ]
    );

    // Not holding A: nothing is enrolled in B either, though B has seats.
    let free = cat.section("SW203", 3, 5, &[]).await;
    let cmd = swap(other, cat.round, a, free);
    assert_eq!(
        decide_one(&l, &cmd).await,
        [
            (free, Outcome::Rejected(Reason::NotEnrolled)),
            (a, Outcome::Rejected(Reason::NotEnrolled))
        ]
    );
    assert_eq!(held(&db, other).await, [full.0]);
    assert_eq!(cat.enrolled(free).await, (0, 0));

    // An unknown section to enroll in is refused the same way.
    let cmd = swap(st, cat.round, a, SectionId(999_999));
    assert_eq!(
        decide_one(&l, &cmd).await[1],
        (a, Outcome::Rejected(Reason::UnknownSection))
    );
    assert_eq!(held(&db, st).await, [a.0]);
}

#[tokio::test]
async fn a_swap_checks_b_as_if_a_were_already_given_up() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w").await;
    let s = cat.students(3).await;

    // Another section of the same course: an enroll says already enrolled.
    let a = cat.section("SW301", 3, 5, &[(1, 540, 615)]).await;
    let course = cat.course_of(a).await;
    let a2 = cat.another_section(course, 2, 5, &[(3, 540, 615)]).await;
    decide_one(&l, &enroll(s[0], cat.round, &[a])).await;
    assert_eq!(
        decide_one(&l, &enroll(s[0], cat.round, &[a2])).await,
        [(a2, Outcome::Rejected(Reason::AlreadyEnrolled))]
    );
    assert_eq!(
        decide_one(&l, &swap(s[0], cat.round, a, a2)).await,
        [(a2, Outcome::Enrolled), (a, Outcome::Dropped)]
    );
    assert_eq!(held(&db, s[0]).await, [a2.0]);

    // A section that overlaps only A: an enroll says time conflict.
    let mon9 = cat.section("SW302", 3, 5, &[(1, 540, 615)]).await;
    let mon930 = cat.section("SW303", 3, 5, &[(1, 570, 645)]).await;
    decide_one(&l, &enroll(s[1], cat.round, &[mon9])).await;
    assert_eq!(
        decide_one(&l, &enroll(s[1], cat.round, &[mon930])).await,
        [(mon930, Outcome::Rejected(Reason::TimeConflict))]
    );
    assert_eq!(
        decide_one(&l, &swap(s[1], cat.round, mon9, mon930)).await,
        [(mon930, Outcome::Enrolled), (mon9, Outcome::Dropped)]
    );
    // It still conflicts with what the student keeps.
    let tue = cat.section("SW304", 3, 5, &[(2, 540, 615)]).await;
    let clash = cat
        .section("SW305", 3, 5, &[(1, 600, 660), (2, 540, 600)])
        .await;
    decide_one(&l, &enroll(s[1], cat.round, &[tue])).await;
    assert_eq!(
        decide_one(&l, &swap(s[1], cat.round, mon930, clash)).await,
        [
            (clash, Outcome::Rejected(Reason::TimeConflict)),
            (mon930, Outcome::Rejected(Reason::TimeConflict))
        ]
    );

    // At the credit maximum (18): A's credits count as freed.
    let mut six = Vec::new();
    for code in ["SW310", "SW311", "SW312", "SW313"] {
        six.push(cat.section(code, 6, 5, &[]).await);
    }
    decide_one(&l, &enroll(s[2], cat.round, &six[..3])).await;
    assert_eq!(
        decide_one(&l, &enroll(s[2], cat.round, &[six[3]])).await,
        [(six[3], Outcome::Rejected(Reason::CreditLimit))]
    );
    assert_eq!(
        decide_one(&l, &swap(s[2], cat.round, six[0], six[3])).await,
        [(six[3], Outcome::Enrolled), (six[0], Outcome::Dropped)]
    );
    assert_eq!(held(&db, s[2]).await, [six[1].0, six[2].0, six[3].0]);
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}

#[tokio::test]
async fn a_swap_promotes_the_line_of_the_section_given_up() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w").await;
    let a = cat.section("SW401", 3, 1, &[]).await;
    let b = cat.section("SW402", 3, 5, &[]).await;
    let s = cat.students(2).await;
    let (st, waiting) = (s[0], s[1]);
    decide_one(&l, &enroll(st, cat.round, &[a])).await;
    let wl = Command::new(
        waiting,
        cat.round,
        pass(waiting, cat.round),
        Action::Enroll {
            sections: vec![a],
            waitlist: true,
            options: Vec::new(),
        },
    );
    assert_eq!(decide_one(&l, &wl).await, [(a, Outcome::Waitlisted)]);

    assert_eq!(
        decide_one(&l, &swap(st, cat.round, a, b)).await,
        [(b, Outcome::Enrolled), (a, Outcome::Dropped)]
    );
    assert_eq!(held(&db, st).await, [b.0]);
    assert_eq!(held(&db, waiting).await, [a.0]);
    assert_eq!(cat.enrolled(a).await, (1, 1));
    let promoted: Vec<u32> = sqlx::query_scalar(
        "SELECT student_id FROM command_outcomes WHERE section_id = ? AND outcome = 'promoted'",
    )
    .bind(a.0)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(promoted, [waiting.0]);
    let state: String =
        sqlx::query_scalar("SELECT state FROM waitlist_entries WHERE student_id = ?")
            .bind(waiting.0)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(state, "promoted");
}

/// The same swap delivered twice by RabbitMQ to a real worker is decided
/// once: a second delivery finds the outcome rows and changes nothing.
#[tokio::test]
async fn a_redelivered_swap_is_decided_once() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let a = cat.section("SW501", 3, 1, &[]).await;
    let b = cat.section("SW502", 3, 1, &[]).await;
    let st = cat.students(1).await[0];
    ledger(&db, "setup")
        .await
        .decide(&[&enroll(st, cat.round, &[a])])
        .await
        .unwrap();

    let cmd = swap(st, cat.round, a, b);
    let publisher = queues.publisher().await;
    publisher.publish(&cmd).await.unwrap();
    let w = RunningWorker::start(worker_config(&db, &queues, "w1")).await;
    wait_decided(&db.pool, 2, Duration::from_secs(30)).await;
    // The second copy, then a marker behind it: once the marker is decided
    // the copy has been taken too (one queue, decided in order).
    publisher.publish(&cmd).await.unwrap();
    let marker = cat.section("SW503", 3, 5, &[]).await;
    let other = cat.students(1).await[0];
    publisher
        .publish(&enroll(other, cat.round, &[marker]))
        .await
        .unwrap();
    wait_decided(&db.pool, 3, Duration::from_secs(30)).await;
    w.stop().await;
    let (_c, ch) = queues.channel().await;
    assert_eq!(
        broker::queue_depth(&ch, &queues.topology.commands_queue)
            .await
            .unwrap(),
        0,
        "both copies taken"
    );

    assert_eq!(rows(&db, &cmd).await.len(), 2, "one row per item, once");
    assert_eq!(held(&db, st).await, [b.0]);
    assert_eq!(cat.enrolled(a).await, (0, 0));
    assert_eq!(cat.enrolled(b).await, (1, 1));
    // A later copy through the ledger is a replay.
    let again = ledger(&db, "late").await.decide(&[&cmd]).await.unwrap();
    assert!(again[0].replayed);
}
