//! Waitlists under concurrency: a freed seat goes to the first eligible
//! student in line, whichever worker frees it, and the records say so.

use crate::helpers::*;
use enrollment::{Action, Command, RoundId, SectionId, StudentId};
use sqlx::{Connection, MySqlConnection};
use std::time::Duration;
use worker::decide::Outcome;

fn waitlist(student: StudentId, round: RoundId, section: SectionId) -> Command {
    Command::new(
        student,
        round,
        pass(student, round),
        Action::Enroll {
            sections: vec![section],
            waitlist: true,
            options: Vec::new(),
        },
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

async fn holders(db: &TestDb, section: SectionId) -> Vec<u32> {
    sqlx::query_scalar(
        "SELECT student_id FROM enrollments WHERE section_id = ? ORDER BY student_id",
    )
    .bind(section.0)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

/// Students who can read a `promoted` outcome for the section.
async fn told_promoted(db: &TestDb, section: SectionId) -> Vec<u32> {
    sqlx::query_scalar(
        "SELECT student_id FROM command_outcomes WHERE section_id = ? AND outcome = 'promoted' \
         ORDER BY student_id",
    )
    .bind(section.0)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

/// Polls until `n` drops are decided (promotions add outcomes of their own,
/// so counting commands would stop early).
async fn wait_for_drops(db: &TestDb, n: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let done: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM command_outcomes WHERE action = 'drop'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if done >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {done} of {n} drops decided"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `n` sessions on this test's database are inside a locking
/// read (blocked: the test holds the lock they need). A blocked primary-key
/// lookup is not always shown as a lock wait in `innodb_trx`, so the process
/// list is what is watched.
async fn wait_for_lock_waits(db: &TestDb, n: i64) {
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.processlist \
             WHERE db = ? AND info LIKE '%FOR UPDATE%' AND id <> CONNECTION_ID()",
        )
        .bind(&name)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        if waiting >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {waiting} of {n} transactions reached the section lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Two workers each free a seat of one section while a third connection
/// holds the section lock, so both have started before either commits.
/// Whichever goes second must see the first one's promotions.
#[tokio::test]
async fn two_workers_freeing_seats_of_one_section_promote_the_line_in_order() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let setup = ledger(&db, "setup").await;
    let section = cat.section("WL201", 3, 2, &[]).await;
    let s = cat.students(8).await;
    let (held, line_up) = (&s[..2], &s[2..]);
    for st in held {
        setup
            .decide(&[&enroll(*st, cat.round, &[section])])
            .await
            .unwrap();
    }
    for st in line_up {
        let d = setup
            .decide(&[&waitlist(*st, cat.round, section)])
            .await
            .unwrap();
        assert_eq!(d[0].items[0].1, Outcome::Waitlisted);
    }

    let mut blocker = MySqlConnection::connect(&db.url).await.unwrap();
    let mut tx = blocker.begin().await.unwrap();
    sqlx::query("SELECT id FROM sections WHERE id = ? FOR UPDATE")
        .bind(section.0)
        .execute(&mut *tx)
        .await
        .unwrap();
    let (a, b) = (ledger(&db, "a").await, ledger(&db, "b").await);
    let (da, db_) = (
        drop_cmd(held[0], cat.round, section),
        drop_cmd(held[1], cat.round, section),
    );
    let first = tokio::spawn(async move { a.decide(&[&da]).await });
    let second = tokio::spawn(async move { b.decide(&[&db_]).await });
    wait_for_lock_waits(&db, 2).await;
    tx.commit().await.unwrap();
    for r in [first.await.unwrap(), second.await.unwrap()] {
        assert_eq!(r.unwrap()[0].items[0].1, Outcome::Dropped);
    }

    let (w1, w2) = (line_up[0].0, line_up[1].0);
    assert_eq!(holders(&db, section).await, vec![w1, w2]);
    let mut expected: Vec<(u32, String)> = vec![(w1, "promoted".into()), (w2, "promoted".into())];
    expected.extend(line_up[2..].iter().map(|st| (st.0, "waiting".into())));
    assert_eq!(line(&db, section).await, expected, "the line as recorded");
    assert_eq!(told_promoted(&db, section).await, vec![w1, w2]);
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}

/// However many students at the head of the line no longer qualify, the
/// freed seat goes to the first who does; it is not left open.
#[tokio::test]
async fn a_freed_seat_passes_every_student_who_no_longer_qualifies() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let l = ledger(&db, "w1").await;
    let section = cat.section("WL301", 3, 1, &[(2, 540, 615)]).await;
    let clash = cat.section("CL301", 3, 20, &[(2, 600, 660)]).await;
    let s = cat.students(8).await;
    let (holder, conflicted, eligible) = (s[0], &s[1..7], s[7]);
    l.decide(&[&enroll(holder, cat.round, &[section])])
        .await
        .unwrap();
    for st in conflicted.iter().chain([&eligible]) {
        l.decide(&[&waitlist(*st, cat.round, section)])
            .await
            .unwrap();
    }
    for st in conflicted {
        let d = l
            .decide(&[&enroll(*st, cat.round, &[clash])])
            .await
            .unwrap();
        assert_eq!(d[0].items[0].1, Outcome::Enrolled);
    }
    l.decide(&[&drop_cmd(holder, cat.round, section)])
        .await
        .unwrap();

    assert_eq!(holders(&db, section).await, vec![eligible.0]);
    let mut expected: Vec<(u32, String)> = conflicted
        .iter()
        .map(|st| (st.0, "skipped".to_string()))
        .collect();
    expected.push((eligible.0, "promoted".into()));
    assert_eq!(line(&db, section).await, expected);
    assert_eq!(told_promoted(&db, section).await, vec![eligible.0]);
    // Each skipped student can read why.
    let skipped_reasons: Vec<(u32, Option<String>)> = sqlx::query_as(
        "SELECT student_id, reason FROM command_outcomes WHERE section_id = ? \
         AND outcome = 'rejected' ORDER BY student_id",
    )
    .bind(section.0)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        skipped_reasons,
        conflicted
            .iter()
            .map(|st| (st.0, Some("time_conflict".to_string())))
            .collect::<Vec<_>>()
    );
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}

/// The reported incident: a full section with a long line, every holder
/// dropping at once through two workers consuming one queue.
#[tokio::test]
async fn every_holder_dropping_at_once_through_two_workers_promotes_the_line_in_order() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let setup = ledger(&db, "setup").await;
    let section = cat.section("WL401", 3, 20, &[]).await;
    let s = cat.students(60).await;
    let (held, line_up) = (&s[..20], &s[20..]);
    let fill: Vec<Command> = held
        .iter()
        .map(|st| enroll(*st, cat.round, &[section]))
        .collect();
    setup
        .decide(&fill.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    for st in line_up {
        setup
            .decide(&[&waitlist(*st, cat.round, section)])
            .await
            .unwrap();
    }
    let mut cfg = (
        worker_config(&db, &queues, "w1"),
        worker_config(&db, &queues, "w2"),
    );
    // Small transactions, so the drops spread over many of them.
    for c in [&mut cfg.0, &mut cfg.1] {
        c.min_txn = 1;
        c.max_batch = 4;
    }
    let (a, b) = (
        RunningWorker::start(cfg.0).await,
        RunningWorker::start(cfg.1).await,
    );
    let publisher = queues.publisher().await;
    let drops: Vec<Command> = held
        .iter()
        .map(|st| drop_cmd(*st, cat.round, section))
        .collect();
    for r in futures_util::future::join_all(drops.iter().map(|c| publisher.publish(c))).await {
        r.expect("confirmed");
    }
    wait_for_drops(&db, 20).await;
    a.stop().await;
    b.stop().await;

    let first: Vec<u32> = line_up[..20].iter().map(|st| st.0).collect();
    assert_eq!(holders(&db, section).await, first);
    let mut expected: Vec<(u32, String)> =
        first.iter().map(|id| (*id, "promoted".into())).collect();
    expected.extend(line_up[20..].iter().map(|st| (st.0, "waiting".into())));
    let got = line(&db, section).await;
    let relabelled = got
        .iter()
        .filter(|(id, state)| first.contains(id) && state != "promoted")
        .count();
    assert_eq!(relabelled, 0, "seat holders recorded as not promoted");
    assert_eq!(got, expected);
    assert_eq!(told_promoted(&db, section).await, first);
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}
