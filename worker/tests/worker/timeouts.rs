//! Lock waits and timeouts: a command held up by a lock is retried, and a
//! command that cannot be decided still ends in an outcome.

use crate::helpers::*;
use enrollment::{Command, Reason};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use sqlx::{Connection, MySqlConnection};
use std::time::Duration;
use worker::decide::Outcome;
use worker::ledger::RetryPolicy;

/// Holds `section`'s row lock from another connection until the returned
/// sender fires (or is dropped).
async fn hold_section_lock(
    db: &TestDb,
    section: enrollment::SectionId,
) -> tokio::sync::oneshot::Sender<()> {
    let mut conn = MySqlConnection::connect(&db.url).await.unwrap();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let (locked, is_locked) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("SELECT id FROM sections WHERE id = ? FOR UPDATE")
            .bind(section.0)
            .execute(&mut *tx)
            .await
            .unwrap();
        let _ = locked.send(());
        let _ = released.await;
        tx.rollback().await.unwrap();
    });
    is_locked.await.unwrap();
    release
}

#[tokio::test]
async fn a_lock_held_longer_than_the_transaction_timeout_is_waited_out() {
    let db = TestDb::new().await;
    let cat = Catalog::new(&db).await;
    let section = cat.section("LK101", 3, 10, &[]).await;
    let st = cat.students(1).await[0];
    let l = ledger_with(
        &db,
        "w1",
        RetryPolicy {
            lock_wait: Duration::from_secs(1),
            txn_timeout: Duration::from_secs(2),
            give_up_after: Duration::from_secs(20),
            ..RetryPolicy::default()
        },
    )
    .await;
    let release = hold_section_lock(&db, section).await;
    // The lock is held for longer than one transaction may take.
    let holder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(3_500)).await;
        let _ = release.send(());
    });
    let d = l
        .decide(&[&enroll(st, cat.round, &[section])])
        .await
        .expect("decided once the lock was released");
    assert_eq!(d[0].items[0].1, Outcome::Enrolled);
    holder.await.unwrap();
    assert_eq!(cat.enrolled(section).await, (1, 1));
}

/// Messages ready or unacked in `queue`.
async fn depth(queues: &TestQueues, queue: &str) -> u32 {
    let (conn, ch) = queues.channel().await;
    let q = ch
        .queue_declare(
            queue,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let _ = conn.close(200, "bye").await;
    q.message_count()
}

/// A section locked for longer than the worker retries: the command on it
/// is recorded as `failed` with a reason its student can read, acked, and
/// not dead-lettered; a command packed with it on another section is
/// decided as usual.
#[tokio::test]
async fn a_command_that_cannot_be_decided_ends_in_a_failed_outcome() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let (stuck, free) = (
        cat.section("LK201", 3, 10, &[]).await,
        cat.section("LK202", 3, 10, &[]).await,
    );
    let s = cat.students(2).await;
    let release = hold_section_lock(&db, stuck).await;
    let mut config = worker_config(&db, &queues, "w1");
    config.lock_wait_secs = 1;
    config.txn_timeout_secs = 2;
    config.give_up_secs = 4;
    let w = RunningWorker::start(config).await;
    let (on_stuck, on_free): (Command, Command) = (
        enroll(s[0], cat.round, &[stuck]),
        enroll(s[1], cat.round, &[free]),
    );
    let publisher = queues.publisher().await;
    for c in [&on_stuck, &on_free] {
        publisher.publish(c).await.expect("confirmed");
    }
    wait_decided(&db.pool, 2, Duration::from_secs(90)).await;
    w.stop().await;
    drop(release);

    let row: (String, Option<String>, u32) = sqlx::query_as(
        "SELECT outcome, reason, student_id FROM command_outcomes WHERE command_id = ?",
    )
    .bind(on_stuck.id.0)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        row,
        ("failed".into(), Some("not_processed".into()), s[0].0),
        "the stuck command's outcome"
    );
    let reason = Reason::from_code("not_processed").expect("a known reason");
    assert!(!reason.message_ko().is_empty() && !reason.message_en().is_empty());
    let other: String =
        sqlx::query_scalar("SELECT outcome FROM command_outcomes WHERE command_id = ?")
            .bind(on_free.id.0)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(other, "enrolled");
    assert_eq!(cat.enrolled(stuck).await, (0, 0));
    assert_eq!(cat.enrolled(free).await, (1, 1));
    assert_eq!(depth(&queues, &queues.topology.commands_queue).await, 0);
    assert_eq!(depth(&queues, &queues.topology.dead_queue).await, 0);
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
}
