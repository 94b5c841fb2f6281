//! The test cases drawn from real incidents (`docs/domain.md`), through RabbitMQ with
//! two workers consuming the same queue.

use crate::helpers::*;
use enrollment::Command;
use futures_util::future::join_all;
use std::time::Duration;

/// Publishes every command concurrently, as a surge of gateways would.
async fn publish_all(queues: &TestQueues, commands: &[Command]) {
    let publisher = queues.publisher().await;
    let results = join_all(commands.iter().map(|c| publisher.publish(c))).await;
    for r in results {
        r.expect("publish confirmed");
    }
}

async fn two_workers(db: &TestDb, queues: &TestQueues) -> (RunningWorker, RunningWorker) {
    (
        RunningWorker::start(worker_config(db, queues, "w1")).await,
        RunningWorker::start(worker_config(db, queues, "w2")).await,
    )
}

#[tokio::test]
async fn last_seat_one_of_a_hundred() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let seat = cat.section("LAST1", 3, 1, &[]).await;
    let students = cat.students(100).await;
    let (a, b) = two_workers(&db, &queues).await;
    let cmds: Vec<Command> = students
        .iter()
        .map(|s| enroll(*s, cat.round, &[seat]))
        .collect();
    publish_all(&queues, &cmds).await;
    wait_decided(&db.pool, 100, Duration::from_secs(60)).await;

    // The health endpoints answer and /metrics carries every worker metric
    // the dashboards and alerts read (docs/metrics.md).
    let http = reqwest::Client::new();
    // Ready once its consumer is up and the database answers; a worker the
    // other one beat to every command may still be setting its consumer up
    // on a loaded machine, so it is given a few seconds to say so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let ready = http
            .get(format!("{}/readyz", a.metrics_url))
            .send()
            .await
            .unwrap();
        let status = ready.status();
        let body = ready.text().await.unwrap();
        if status == 200 || tokio::time::Instant::now() >= deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 200, "{body}");
    let metrics = http
        .get(format!("{}/metrics", a.metrics_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "sluice_worker_outcomes_total",
        "sluice_worker_batch_size_bucket",
        "sluice_worker_commit_seconds_bucket",
        "sluice_worker_redeliveries_total",
        "sluice_worker_decision_lag_seconds_bucket",
        "sluice_worker_oldest_unacked_age_seconds",
        "sluice_worker_in_flight",
        "sluice_worker_commit_failures_total",
        "sluice_build_info",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    assert!(
        metrics.contains(r#"reason="full""#),
        "outcome reasons are labelled"
    );
    a.stop().await;
    b.stop().await;
    let o = outcomes(&db.pool, seat).await;
    assert_eq!(o.get("enrolled"), Some(&1));
    assert_eq!(o.get("rejected:full"), Some(&99));
    assert_eq!(cat.enrolled(seat).await, (1, 1));
}

#[tokio::test]
async fn thirty_seats_forty_students_one_submitting_five_times() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let section = cat.section("SEM30", 3, 30, &[(2, 600, 675)]).await;
    let students = cat.students(40).await;
    let mut cmds: Vec<Command> = students
        .iter()
        .map(|s| enroll(*s, cat.round, &[section]))
        .collect();
    let eager = students[17];
    for _ in 0..4 {
        cmds.push(enroll(eager, cat.round, &[section]));
    }
    let (a, b) = two_workers(&db, &queues).await;
    publish_all(&queues, &cmds).await;
    wait_decided(&db.pool, 44, Duration::from_secs(60)).await;
    a.stop().await;
    b.stop().await;
    assert_eq!(cat.enrolled(section).await, (30, 30));
    let eager_rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM enrollments WHERE student_id = ?")
            .bind(eager.0)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(
        eager_rows <= 1,
        "the eager student holds {eager_rows} seats"
    );
    let o = outcomes(&db.pool, section).await;
    assert_eq!(
        o.values().sum::<i64>(),
        44,
        "every submission has an outcome: {o:?}"
    );
    assert!(worker::invariants::check(&db.pool).await.unwrap().holds());
}

#[tokio::test]
async fn hundred_seats_five_hundred_at_once() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let section = cat.section("HOT100", 3, 100, &[(3, 540, 690)]).await;
    let students = cat.students(500).await;
    let cmds: Vec<Command> = students
        .iter()
        .map(|s| enroll(*s, cat.round, &[section]))
        .collect();
    let (a, b) = two_workers(&db, &queues).await;
    publish_all(&queues, &cmds).await;
    wait_decided(&db.pool, 500, Duration::from_secs(60)).await;
    a.stop().await;
    b.stop().await;
    let o = outcomes(&db.pool, section).await;
    assert_eq!(o.get("enrolled"), Some(&100));
    assert_eq!(o.get("rejected:full"), Some(&400));
    assert_eq!(cat.enrolled(section).await, (100, 100));
    let failures: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM command_outcomes WHERE outcome NOT IN ('enrolled', 'rejected')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(failures, 0);
}

#[tokio::test]
async fn full_section_five_hundred_concurrent_drops() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let section = cat.section("FULL500", 3, 500, &[]).await;
    let students = cat.students(500).await;
    let l = ledger(&db, "setup").await;
    let fill: Vec<Command> = students
        .iter()
        .map(|s| enroll(*s, cat.round, &[section]))
        .collect();
    l.decide(&fill.iter().collect::<Vec<_>>()).await.unwrap();
    assert_eq!(cat.enrolled(section).await, (500, 500));

    let mut drops: Vec<Command> = students
        .iter()
        .map(|s| drop_cmd(*s, cat.round, section))
        .collect();
    // A tenth of them drop twice.
    drops.extend(
        students
            .iter()
            .step_by(10)
            .map(|s| drop_cmd(*s, cat.round, section)),
    );
    let (a, b) = two_workers(&db, &queues).await;
    publish_all(&queues, &drops).await;
    wait_decided(&db.pool, 500 + 550, Duration::from_secs(60)).await;
    a.stop().await;
    b.stop().await;
    assert_eq!(cat.enrolled(section).await, (0, 0));
    let o = outcomes(&db.pool, section).await;
    assert_eq!(o.get("dropped"), Some(&500));
    assert_eq!(o.get("rejected:not_enrolled"), Some(&50));
}
