//! The worker recovers by itself: a broker connection closed under it and
//! database connections killed mid-stream lose nothing.

use crate::helpers::*;
use enrollment::Command;
use std::time::Duration;

async fn publish(queues: &TestQueues, cmds: &[Command]) {
    publish_with(&queues.publisher().await, cmds).await;
}

async fn publish_with(p: &broker::Publisher, cmds: &[Command]) {
    for r in futures_util::future::join_all(cmds.iter().map(|c| p.publish(c))).await {
        r.expect("confirmed");
    }
}

/// Closes the broker connections whose client-provided name is `name`.
fn close_amqp_connections(name: &str) -> usize {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl list_connections");
    let listing = String::from_utf8_lossy(&out.stdout);
    let mut closed = 0;
    for line in listing
        .lines()
        .filter(|l| l.contains(&format!("\"{name}\"")))
    {
        let pid = line.split_whitespace().next().expect("pid column");
        let ok = std::process::Command::new("rabbitmqctl")
            .args(["-q", "close_connection", pid, "test: connection cut"])
            .status()
            .expect("rabbitmqctl close_connection")
            .success();
        closed += usize::from(ok);
    }
    closed
}

#[tokio::test]
async fn worker_reconnects_after_its_broker_connection_is_closed() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let section = cat.section("RECON1", 3, 100, &[]).await;
    let students = cat.students(60).await;
    let name = format!("recon-{}", queues.prefix);
    let w = RunningWorker::start(worker_config(&db, &queues, &name)).await;
    let first: Vec<Command> = students[..30]
        .iter()
        .map(|s| enroll(*s, cat.round, &[section]))
        .collect();
    publish(&queues, &first).await;
    wait_decided(&db.pool, 30, Duration::from_secs(30)).await;

    assert!(
        close_amqp_connections(&name) >= 1,
        "the worker's connection was not found"
    );
    let second: Vec<Command> = students[30..]
        .iter()
        .map(|s| enroll(*s, cat.round, &[section]))
        .collect();
    publish(&queues, &second).await;
    wait_decided(&db.pool, 60, Duration::from_secs(60)).await;
    w.stop().await;
    assert_eq!(cat.enrolled(section).await, (60, 60));
}

#[tokio::test]
async fn database_connections_killed_mid_stream_lose_nothing() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let mut sections = Vec::new();
    for i in 0..10 {
        sections.push(cat.section(&format!("CUT{i}"), 3, 40, &[]).await);
    }
    let students = cat.students(2_000).await;
    let cmds: Vec<Command> = students
        .iter()
        .enumerate()
        .map(|(i, s)| enroll(*s, cat.round, &[sections[i % sections.len()]]))
        .collect();
    let w = RunningWorker::start(worker_config(&db, &queues, "cut")).await;
    let publishing = {
        let (cmds, publisher) = (cmds.clone(), queues.publisher().await);
        tokio::spawn(async move {
            for chunk in cmds.chunks(200) {
                publish_with(&publisher, chunk).await;
            }
        })
    };
    // Kill every connection to this test's database a few times while the
    // stream is being decided, as a failing network or a DBA would.
    let db_name = db.url.rsplit('/').next().unwrap().to_string();
    let mut kills = 0;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
        )
        .bind(&db_name)
        .fetch_all(&db.pool)
        .await
        .unwrap();
        for id in ids {
            if sqlx::query(&format!("KILL {id}"))
                .execute(&db.pool)
                .await
                .is_ok()
            {
                kills += 1;
            }
        }
    }
    publishing.await.unwrap();
    wait_decided(&db.pool, cmds.len() as i64, Duration::from_secs(120)).await;
    w.stop().await;
    assert!(kills > 0, "no connection was killed");
    let (distinct, rows): (i64, i64) =
        sqlx::query_as("SELECT COUNT(DISTINCT command_id), COUNT(*) FROM command_outcomes")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((distinct, rows), (2_000, 2_000));
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
    let enrolled: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM enrollments")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(enrolled, 400, "10 sections x 40 seats");
}
