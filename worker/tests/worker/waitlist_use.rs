//! The waitlist as students use it: joining per cart item, leaving, and
//! being promoted when a registrar raises a capacity or reopens a section
//! with no student acting.

use crate::helpers::*;
use enrollment::Reason;
use enrollment::{Action, Command, ItemOptions, RoundId, SectionId, StudentId};
use std::time::Duration;
use worker::decide::Outcome;

fn cart(
    student: StudentId,
    round: RoundId,
    sections: &[SectionId],
    waitlist: bool,
    per_item: &[Option<bool>],
) -> Command {
    Command::new(
        student,
        round,
        pass(student, round),
        Action::Enroll {
            sections: sections.to_vec(),
            waitlist,
            options: per_item
                .iter()
                .map(|w| ItemOptions {
                    alternates: Vec::new(),
                    waitlist: *w,
                })
                .collect(),
        },
    )
}

fn leave(student: StudentId, round: RoundId, section: SectionId) -> Command {
    Command::new(
        student,
        round,
        pass(student, round),
        Action::LeaveWaitlist { section },
    )
}

/// (student, state) of a section's waitlist, in line order.
async fn line(db: &TestDb, section: SectionId) -> Vec<(u32, String)> {
    sqlx::query_as(
        "SELECT student_id, state FROM waitlist_entries WHERE section_id = ? ORDER BY id",
    )
    .bind(section.0)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

/// Students with a `promoted` outcome for the section, in line order.
async fn told_promoted(db: &TestDb, section: SectionId) -> Vec<u32> {
    sqlx::query_scalar(
        "SELECT o.student_id FROM command_outcomes o \
         JOIN waitlist_entries w ON w.resolved_by = o.command_id \
         WHERE o.section_id = ? AND o.outcome = 'promoted' ORDER BY w.id",
    )
    .bind(section.0)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

/// A full one-seat section, its seat held by a student of its own.
async fn full_section(cat: &Catalog<'_>, code: &str, ledger: &worker::ledger::Ledger) -> SectionId {
    let section = cat.section(code, 3, 1, &[]).await;
    let holder = cat.students(1).await[0];
    let d = ledger
        .decide(&[&enroll(holder, cat.round, &[section])])
        .await
        .unwrap();
    assert_eq!(d[0].items[0].1, Outcome::Enrolled);
    section
}

#[tokio::test]
async fn each_cart_item_follows_its_own_waitlist_choice() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w").await;
    let a = full_section(&cat, "WA101", &l).await;
    let b = full_section(&cat, "WA102", &l).await;
    let s = cat.students(2).await;

    // The command says no waitlist; the first item says yes.
    let d = l
        .decide(&[&cart(s[0], cat.round, &[a, b], false, &[Some(true), None])])
        .await
        .unwrap();
    assert_eq!(
        d[0].items,
        vec![
            (a, Outcome::Waitlisted),
            (b, Outcome::Rejected(Reason::Full))
        ]
    );
    // The command says yes; the first item says no.
    let d = l
        .decide(&[&cart(s[1], cat.round, &[a, b], true, &[Some(false), None])])
        .await
        .unwrap();
    assert_eq!(
        d[0].items,
        vec![
            (a, Outcome::Rejected(Reason::Full)),
            (b, Outcome::Waitlisted)
        ]
    );
    assert_eq!(line(&db, a).await, vec![(s[0].0, "waiting".into())]);
    assert_eq!(line(&db, b).await, vec![(s[1].0, "waiting".into())]);
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}

#[tokio::test]
async fn leaving_a_waitlist_takes_the_student_out_once_and_the_seat_passes_them_over() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w").await;
    let section = cat.section("WL301", 3, 1, &[]).await;
    let s = cat.students(3).await;
    let (holder, first, second) = (s[0], s[1], s[2]);
    l.decide(&[&enroll(holder, cat.round, &[section])])
        .await
        .unwrap();
    for st in [first, second] {
        let d = l
            .decide(&[&cart(st, cat.round, &[section], true, &[])])
            .await
            .unwrap();
        assert_eq!(d[0].items[0].1, Outcome::Waitlisted);
    }

    let going = leave(first, cat.round, section);
    let d = l.decide(&[&going]).await.unwrap();
    assert_eq!(d[0].items, vec![(section, Outcome::LeftWaitlist)]);
    // Redelivered: the recorded outcome stands, nothing else happens.
    let again = l.decide(&[&going]).await.unwrap();
    assert!(again[0].replayed);
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT outcome, reason FROM command_outcomes WHERE command_id = ?")
            .bind(going.id.0)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(rows, vec![("left_waitlist".to_string(), None)]);
    let resolved_by: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT resolved_by FROM waitlist_entries WHERE section_id = ? AND student_id = ?",
    )
    .bind(section.0)
    .bind(first.0)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(resolved_by.as_deref(), Some(&going.id.0.as_bytes()[..]));

    // Not (or no longer) in line: refused with its own reason.
    for st in [first, holder] {
        let d = l.decide(&[&leave(st, cat.round, section)]).await.unwrap();
        assert_eq!(
            d[0].items,
            vec![(section, Outcome::Rejected(Reason::NotWaitlisted))]
        );
    }

    // The freed seat goes to the one still waiting, not to the one who left.
    l.decide(&[&drop_cmd(holder, cat.round, section)])
        .await
        .unwrap();
    assert_eq!(
        line(&db, section).await,
        vec![(first.0, "left".into()), (second.0, "promoted".into())]
    );
    assert_eq!(told_promoted(&db, section).await, vec![second.0]);
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}

#[tokio::test]
async fn joining_and_leaving_in_one_group_leaves_no_one_waiting() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w").await;
    let section = full_section(&cat, "WL302", &l).await;
    let st = cat.students(1).await[0];
    let join = cart(st, cat.round, &[section], false, &[Some(true)]);
    let going = leave(st, cat.round, section);
    let d = l.decide(&[&join, &going]).await.unwrap();
    assert_eq!(d[0].items[0].1, Outcome::Waitlisted);
    assert_eq!(d[1].items[0].1, Outcome::LeftWaitlist);
    assert_eq!(line(&db, section).await, vec![(st.0, "left".into())]);
}

/// A line of `n` behind a full section of `capacity` seats.
async fn line_behind(
    cat: &Catalog<'_>,
    l: &worker::ledger::Ledger,
    code: &str,
    capacity: u32,
    n: usize,
) -> (SectionId, Vec<StudentId>) {
    let section = cat.section(code, 3, capacity, &[]).await;
    for st in cat.students(capacity as usize).await {
        l.decide(&[&enroll(st, cat.round, &[section])])
            .await
            .unwrap();
    }
    let waiting = cat.students(n).await;
    for st in &waiting {
        let d = l
            .decide(&[&cart(*st, cat.round, &[section], true, &[])])
            .await
            .unwrap();
        assert_eq!(d[0].items[0].1, Outcome::Waitlisted);
    }
    (section, waiting)
}

#[tokio::test]
async fn a_capacity_raise_and_a_reopening_promote_the_line_in_order_with_outcomes() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w").await;
    let (raised, line_r) = line_behind(&cat, &l, "WF101", 2, 4).await;
    let (reopened, line_o) = line_behind(&cat, &l, "WF102", 1, 2).await;

    // What a registrar does: two more seats in one, a closed section with
    // a seat freed while closed opened again in the other.
    sqlx::query("UPDATE sections SET capacity = capacity + 2 WHERE id = ?")
        .bind(raised.0)
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE sections SET closed = TRUE, capacity = 2 WHERE id = ?")
        .bind(reopened.0)
        .execute(&db.pool)
        .await
        .unwrap();
    let report = worker::invariants::check(&db.pool).await.unwrap();
    // Every student of the raised section waits behind a free seat.
    assert_eq!(report.waiting_behind_free_seat, 4, "{report:?}");

    // Closed: its line waits.
    assert_eq!(worker::fill::sweep(&l).await.unwrap(), 2);
    assert_eq!(told_promoted(&db, reopened).await, Vec::<u32>::new());
    sqlx::query("UPDATE sections SET closed = FALSE WHERE id = ?")
        .bind(reopened.0)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(worker::fill::sweep(&l).await.unwrap(), 1);
    // Nothing left to do: a second sweep changes nothing.
    assert_eq!(worker::fill::sweep(&l).await.unwrap(), 0);

    assert_eq!(
        line(&db, raised).await,
        vec![
            (line_r[0].0, "promoted".into()),
            (line_r[1].0, "promoted".into()),
            (line_r[2].0, "waiting".into()),
            (line_r[3].0, "waiting".into()),
        ]
    );
    assert_eq!(
        told_promoted(&db, raised).await,
        vec![line_r[0].0, line_r[1].0]
    );
    assert_eq!(
        line(&db, reopened).await,
        vec![
            (line_o[0].0, "promoted".into()),
            (line_o[1].0, "waiting".into())
        ]
    );
    assert_eq!(told_promoted(&db, reopened).await, vec![line_o[0].0]);
    assert_eq!(cat.enrolled(raised).await, (4, 4));
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}

/// A running worker fills a raised section by itself, with no command.
#[tokio::test]
async fn a_running_worker_promotes_after_a_capacity_raise_without_any_command() {
    let db = TestDb::new().await;
    let queues = TestQueues::new();
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "setup").await;
    let (section, waiting) = line_behind(&cat, &l, "WF201", 1, 3).await;
    let mut config = worker_config(&db, &queues, "filler");
    config.fill_interval_ms = 100;
    let running = RunningWorker::start(config).await;
    sqlx::query("UPDATE sections SET capacity = 3 WHERE id = ?")
        .bind(section.0)
        .execute(&db.pool)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while told_promoted(&db, section).await.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no promotion");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.stop().await;
    assert_eq!(
        told_promoted(&db, section).await,
        vec![waiting[0].0, waiting[1].0]
    );
    assert_eq!(
        line(&db, section).await[2],
        (waiting[2].0, "waiting".into())
    );
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}
