//! Exactly-once across redeliveries and crashes, dead letters, and the
//! worker process's shutdown protocol.

use crate::helpers::*;
use enrollment::{Command, SectionId};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use rand::{Rng, SeedableRng};
use std::process::{Child, Stdio};
use std::time::Duration;

async fn ready_messages(queues: &TestQueues, queue: &str) -> u32 {
    let (_c, ch) = queues.channel().await;
    broker::queue_depth(&ch, queue).await.expect("depth")
}

/// Polls until `queue` holds `n` ready messages: the broker puts unacked
/// messages back asynchronously after a channel closes.
async fn wait_ready(queues: &TestQueues, queue: &str, n: u32) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ready = ready_messages(queues, queue).await;
        if ready == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{queue} holds {ready} ready messages, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of an unlabelled metric on a worker's `/metrics` (0 if absent).
async fn metric(w: &RunningWorker, name: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", w.metrics_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A command decided and committed whose ack never reached the broker (the
/// channel closed first) is redelivered and has one effect.
#[tokio::test]
async fn committed_but_unacked_command_is_redelivered_with_one_effect() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let section = cat.section("ONCE1", 3, 10, &[]).await;
    let st = cat.students(1).await[0];
    let cmd = enroll(st, cat.round, &[section]);
    queues.publisher().await.publish(&cmd).await.unwrap();

    // Take the delivery, commit its decision, and close without acking.
    let (conn, ch) = queues.channel().await;
    let mut consumer = ch
        .basic_consume(
            &queues.topology.commands_queue,
            "crashy",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let delivery = consumer.next().await.unwrap().unwrap();
    assert!(!delivery.redelivered);
    let got = Command::decode(&delivery.data).unwrap();
    assert_eq!(got.id, cmd.id);
    let crashy = ledger(&db, "crashed-before-ack").await;
    crashy.decide(&[&got]).await.unwrap();
    conn.close(320, "simulated crash").await.unwrap();

    // The message is back, marked redelivered; a real worker takes it.
    let (_c2, ch2) = queues.channel().await;
    let again = ch2
        .basic_get(&queues.topology.commands_queue, BasicGetOptions::default())
        .await
        .unwrap()
        .expect("redelivered message");
    assert!(again.delivery.redelivered);
    drop(again); // not acked: goes back when this channel closes
    ch2.close(200, "peeked").await.unwrap();

    let w = RunningWorker::start(worker_config(&db, &queues, "w1")).await;
    // Done once the worker saw the redelivery and finished its batch (the
    // in-flight gauge goes back to 0 after the acks).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while metric(&w, "sluice_worker_redeliveries_total").await < 1.0
        || metric(&w, "sluice_worker_in_flight").await != 0.0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker did not take the redelivery"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.stop().await;
    assert_eq!(
        ready_messages(&queues, &queues.topology.commands_queue).await,
        0,
        "acked, not requeued"
    );

    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT outcome, decided_by FROM command_outcomes WHERE command_id = ?")
            .bind(cmd.id.0)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![("enrolled".to_string(), "crashed-before-ack".to_string())]
    );
    assert_eq!(cat.enrolled(section).await, (1, 1));
}

#[tokio::test]
async fn poison_message_is_dead_lettered_with_a_reason_and_the_worker_goes_on() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let section = cat.section("AFTER1", 3, 10, &[]).await;
    let st = cat.students(1).await[0];
    let (_conn, ch) = queues.channel().await;
    let future_version = String::from_utf8(enroll(st, cat.round, &[section]).encode())
        .unwrap()
        .replace(r#""v":1"#, r#""v":9"#);
    for garbage in [
        &b"not json at all"[..],
        future_version.as_bytes(),
        &[0xff, 0x00, 0xfe],
    ] {
        ch.basic_publish(
            &queues.topology.commands_exchange,
            broker::COMMAND_KEY,
            BasicPublishOptions::default(),
            garbage,
            BasicProperties::default(),
        )
        .await
        .unwrap();
    }
    let good = enroll(st, cat.round, &[section]);
    queues.publisher().await.publish(&good).await.unwrap();

    let w = RunningWorker::start(worker_config(&db, &queues, "w1")).await;
    wait_decided(&db.pool, 1, Duration::from_secs(30)).await;
    w.stop().await;
    assert_eq!(cat.enrolled(section).await, (1, 1));

    let mut reasons = Vec::new();
    while let Some(msg) = ch
        .basic_get(
            &queues.topology.dead_queue,
            BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
    {
        let headers = msg
            .delivery
            .properties
            .headers()
            .clone()
            .unwrap_or_default();
        match headers.inner().get(broker::REASON_HEADER) {
            Some(AMQPValue::LongString(s)) => reasons.push(s.to_string()),
            other => panic!("dead letter without a reason header: {other:?}"),
        }
    }
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons.iter().all(|r| r.starts_with("malformed: ")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("version 9")),
        "{reasons:?}"
    );
}

fn spawn_worker(db: &TestDb, queues: &TestQueues, name: &str) -> Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_sluice-worker"))
        .env("DATABASE_URL", &db.url)
        .env("AMQP_URL", AMQP)
        .env("SLUICE_QUEUE_PREFIX", &queues.prefix)
        .env("SLUICE_PASS_KEYS", KEYS)
        .env("SLUICE_WORKER_NAME", name)
        .env("SLUICE_METRICS_ADDR", "127.0.0.1:0")
        .env("SLUICE_MAX_BATCH", "250")
        .env("SLUICE_PREFETCH", "500")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sluice-worker")
}

/// A worker killed with SIGKILL in the middle of a stream of
/// 10,000 commands, then restarted: every invariant holds and every
/// published command has exactly one outcome. The restarted worker is then
/// stopped with SIGTERM and must exit 0 with nothing left unacked.
#[tokio::test]
async fn sigkill_mid_stream_then_restart_keeps_every_invariant() {
    const COMMANDS: usize = 10_000;
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let mut sections: Vec<SectionId> = Vec::new();
    for i in 0..50u16 {
        let day = (i % 5) as u8 + 1;
        let start = 540 + (i / 5) * 60;
        sections.push(
            cat.section(&format!("K{i:03}"), 3, 40, &[(day, start, start + 75)])
                .await,
        );
    }
    let students = cat.students(2_000).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let cmds: Vec<Command> = (0..COMMANDS)
        .map(|_| {
            let st = students[rng.gen_range(0..students.len())];
            let sec = sections[rng.gen_range(0..sections.len())];
            if rng.gen_bool(0.1) {
                drop_cmd(st, cat.round, sec)
            } else {
                enroll(st, cat.round, &[sec])
            }
        })
        .collect();

    let mut first = spawn_worker(&db, &queues, "doomed");
    let publisher = queues.publisher().await;
    let publishing = {
        let cmds = cmds.clone();
        tokio::spawn(async move {
            for chunk in cmds.chunks(500) {
                for r in
                    futures_util::future::join_all(chunk.iter().map(|c| publisher.publish(c))).await
                {
                    r.expect("confirmed");
                }
            }
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while decided(&db.pool).await < 2_500 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "first worker made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    first.wait().expect("reaped");
    let at_kill = decided(&db.pool).await;
    assert!(
        at_kill < COMMANDS as i64,
        "killed too late to prove anything ({at_kill})"
    );

    let second = spawn_worker(&db, &queues, "survivor");
    publishing.await.expect("publisher task");
    wait_decided(&db.pool, COMMANDS as i64, Duration::from_secs(180)).await;

    // Graceful stop: SIGTERM, exit 0, nothing left in the queue.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let mut second = second;
        second.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(exit.success(), "worker exited with {exit:?} after SIGTERM");
    assert_eq!(
        ready_messages(&queues, &queues.topology.commands_queue).await,
        0
    );

    // Exactly one outcome per command (one row per item), no extra ones.
    let (distinct, rows): (i64, i64) =
        sqlx::query_as("SELECT COUNT(DISTINCT command_id), COUNT(*) FROM command_outcomes")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(distinct, COMMANDS as i64);
    assert_eq!(
        rows, COMMANDS as i64,
        "single-section commands have one outcome row each"
    );
    let mut missing = 0;
    for chunk in cmds.chunks(1000) {
        let mut qb = sqlx::QueryBuilder::new(
            "SELECT COUNT(DISTINCT command_id) FROM command_outcomes WHERE command_id IN (",
        );
        let mut sep = qb.separated(", ");
        for c in chunk {
            sep.push_bind(c.id.0);
        }
        qb.push(")");
        let n: i64 = qb.build_query_scalar().fetch_one(&db.pool).await.unwrap();
        missing += chunk.len() as i64 - n;
    }
    assert_eq!(missing, 0, "published commands without an outcome");
    let report = worker::invariants::check(&db.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
    let survivor: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT command_id) FROM command_outcomes WHERE decided_by = 'survivor'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(survivor > 0, "the restarted worker decided nothing");
}

/// Ops can list dead letters with their reasons and replay the ones that
/// are commands; the replayed command is decided once, the rest stay.
#[tokio::test]
async fn dead_letters_can_be_listed_and_replayed() {
    let (db, queues) = (TestDb::new().await, TestQueues::new());
    let cat = Catalog::new(&db).await;
    let section = cat.section("DLQ1", 3, 10, &[]).await;
    let st = cat.students(1).await[0];
    let (_conn, ch) = queues.channel().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    // A command the broker gave up on (as after its delivery limit), and a
    // message that is not a command at all.
    let stranded = enroll(st, cat.round, &[section]);
    for body in [stranded.encode(), b"garbage".to_vec()] {
        ch.basic_publish(
            &queues.topology.dead_exchange,
            "",
            BasicPublishOptions::default(),
            &body,
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let listed = worker::deadletters::list(AMQP, &queues.topology, 100)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0].command.as_deref(),
        Some(stranded.id.to_string().as_str())
    );
    assert_eq!(listed[1].command, None);
    // Listing leaves them in place.
    wait_ready(&queues, &queues.topology.dead_queue, 2).await;

    let replay = worker::deadletters::replay(AMQP, &queues.topology, 100)
        .await
        .unwrap();
    assert_eq!((replay.replayed, replay.kept), (1, 1));
    wait_ready(&queues, &queues.topology.dead_queue, 1).await;

    let w = RunningWorker::start(worker_config(&db, &queues, "w1")).await;
    wait_decided(&db.pool, 1, Duration::from_secs(30)).await;
    w.stop().await;
    assert_eq!(cat.enrolled(section).await, (1, 1));
}
