//! Fail closed: with MySQL or RabbitMQ unreachable (a cut proxy between the
//! gateway and the real server), admission stops, every place is kept and
//! students are told so; when the dependency returns, admission resumes
//! without every waiting student landing on the database at once.

use crate::helpers::*;
use crate::proxy::Proxy;
use futures_util::future::join_all;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn without_mysql_places_are_kept_polls_say_paused_and_recovery_is_calm() {
    let db = TestDb::create().await;
    db.seed_admin().await;
    // Open but admitting nobody yet, so "paused" below can only come from
    // the database being unreachable.
    let round = db.round("open", 0).await;
    let numbers: Vec<String> = (0..8).map(|i| format!("2026{:04}", 300 + i)).collect();
    for n in &numbers {
        db.student(n, 1).await;
    }
    db.student("20260399", 1).await;
    let proxy = Proxy::start("127.0.0.1:3306").await;
    let via_proxy = proxy.rewrite(&db.url, 3306);
    let cluster = Cluster::start_env(
        &db,
        1,
        &[
            ("DATABASE_URL", via_proxy.as_str()),
            ("SLUICE_STALE_MS", "2000"),
            ("SLUICE_DB_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    // A hung request would fail the test here instead of hanging it.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = cluster.base(0);
    let mut tokens = Vec::new();
    for (i, n) in numbers.iter().enumerate() {
        let v = cluster.join(&client, 0, round, n).await;
        assert_eq!(v["position"], i as u64 + 1, "{v}");
        tokens.push(token(&v));
    }

    let paused_gauge = || async {
        let text = client.get(format!("{base}/metrics")).fetch_text().await;
        metric(
            &text,
            &format!("sluice_waitroom_paused{{round=\"{round}\"}}"),
        )
    };
    // Open before the cut.
    wait_until(Duration::from_secs(10), || async {
        paused_gauge().await == Some(0.0)
    })
    .await;

    proxy.cut();
    wait_until(Duration::from_secs(10), || async {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 503)
    })
    .await;
    // The room reports itself paused once a refresh has failed.
    wait_until(Duration::from_secs(10), || async {
        paused_gauge().await == Some(1.0)
    })
    .await;

    // Every student still has their place and is told why nothing moves.
    for (i, t) in tokens.iter().enumerate() {
        let r = client
            .get(format!("{base}/api/queue/status"))
            .header("x-queue-token", t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let s: Value = r.json().await.unwrap();
        assert_eq!(s["state"], "paused", "{s}");
        assert_eq!(s["notice"], "unavailable", "{s}");
        assert_eq!(s["position"], i as u64 + 1, "{s}");
    }
    // A newcomer is answered at once with when to retry, not left hanging.
    let r = client
        .post(format!("{base}/api/rounds/{round}/join"))
        .json(&json!({ "student_number": "20260399", "password": "pw" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(code(r).await, "unavailable");

    // Meanwhile a registrar (on a healthy gateway) resumes the round; this
    // gateway cannot admit anyone until it reaches the database again.
    sqlx::query("UPDATE rounds SET admission_per_min = 6000 WHERE id = ?")
        .bind(round.0)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        db.count("SELECT COUNT(*) FROM tickets WHERE state <> 'waiting'")
            .await,
        0
    );

    let reads = |text: &str| metric(text, "sluice_waitroom_ticket_reads_total").unwrap_or(0.0);
    let metrics_text = || async { client.get(format!("{base}/metrics")).fetch_text().await };
    let reads_before = reads(&metrics_text().await);
    proxy.reset_most_open();
    proxy.restore();

    // Everyone polls at once, again and again, until admitted.
    let poll_all = || {
        join_all(tokens.iter().map(|t| {
            let client = client.clone();
            let url = format!("{base}/api/queue/status");
            async move {
                let r = client
                    .get(url)
                    .header("x-queue-token", t)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()
            }
        }))
    };
    wait_until(Duration::from_secs(30), || async {
        poll_all().await.iter().all(|s| s["state"] == "admitted")
    })
    .await;
    for _ in 0..3 {
        assert!(poll_all().await.iter().all(|s| s["state"] == "admitted"));
    }

    // Calm recovery: each ticket was read from the database at most once,
    // however often it was polled, and the connections stayed within the
    // pool (4) plus the leader's own.
    let read = reads(&metrics_text().await) - reads_before;
    assert!(
        read <= tokens.len() as f64,
        "{read} ticket reads for {} students",
        tokens.len()
    );
    assert!(
        proxy.most_open() <= 4 + 2,
        "{} connections",
        proxy.most_open()
    );
    // And in order: admission times never go back along the queue.
    let admitted: Vec<(chrono::NaiveDateTime,)> =
        sqlx::query_as("SELECT admitted_at FROM tickets WHERE round_id = ? ORDER BY order_key")
            .bind(round.0)
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(admitted.len(), numbers.len());
    assert!(admitted.windows(2).all(|w| w[0].0 <= w[1].0));

    cluster.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn without_rabbitmq_enrolling_is_refused_with_the_cart_kept_and_admission_is_held() {
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let amqp = proxy.rewrite(AMQP, 5672);
    let app = TestApp::spawn_with_broker(|c| {
        c.connections.amqp_url = SecretString::from(amqp);
        // Generous: a confirm slowed by a busy disk must not turn into a
        // retry that leaves an extra message. A cut proxy fails at once.
        c.publish_timeout_ms = 5_000;
    })
    .await;
    let round = app.round("open", 6000).await;
    let section = app.db.section("CSE101", 1, 30).await;
    let first = app.student("20260401", 1).await;
    app.student("20260402", 1).await;
    sqlx::query("INSERT INTO cart_items (student_id, section_id) VALUES (?, ?)")
        .bind(first.0)
        .bind(section)
        .execute(&app.pool)
        .await
        .unwrap();
    let cart = "SELECT COUNT(*) FROM cart_items";

    let joined: Value = app.join(round, "20260401").await.json().await.unwrap();
    let admitted = app
        .poll_until(&token(&joined), |s| s["state"] == "admitted")
        .await;
    let pass = admitted["pass"].as_str().unwrap().to_string();
    let body = json!({ "sections": [section] });
    assert_eq!(app.enroll(Some(&pass), body.clone()).await.status(), 202);

    // Hold the second student back, then lose the broker.
    app.admin(round, json!({ "admission_per_min": 0 })).await;
    let second: Value = app.join(round, "20260402").await.json().await.unwrap();
    assert_eq!(second["state"], "waiting", "{second}");
    let second = token(&second);
    proxy.cut();
    app.wait_for_broker_hold().await;

    // Raising the rate admits nobody while commands could not be sent.
    app.admin(round, json!({ "admission_per_min": 6000 })).await;
    let s = app
        .poll_until(&second, |s| s["state"] == "paused" && s["notice"] == "held")
        .await;
    assert_eq!(s["position"], 1, "{s}");

    // Enrolling is refused at once, with when to retry; the cart stays.
    let r = app.enroll(Some(&pass), body.clone()).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(code(r).await, "unavailable");
    assert_eq!(app.db.count(cart).await, 1);
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM tickets WHERE state = 'admitted'")
            .await,
        1,
        "nobody was admitted while held"
    );

    // The broker returns: admission resumes and the retry is accepted.
    proxy.restore();
    app.poll_until(&second, |s| s["state"] == "admitted").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = app.enroll(Some(&pass), body.clone()).await;
        if r.status() == 202 {
            break;
        }
        assert_eq!(r.status(), 503);
        assert!(
            tokio::time::Instant::now() < deadline,
            "enrolling did not recover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let prefix = app.prefix.clone().unwrap();
    let conn = broker::connect(AMQP, "sluice-test-depth", Duration::from_secs(5))
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let depth = broker::queue_depth(&channel, &broker::Topology::new(&prefix).commands_queue)
        .await
        .unwrap();
    assert_eq!(
        depth, 2,
        "the first command and the retried one, nothing else"
    );
    app.finish().await;
}

/// An outage is worth waiting out (503 + Retry-After, "your place is
/// kept"); a failure that waiting does not cure, such as a table the code
/// expects and the database lacks, is a 500 without Retry-After: clients
/// do not retry a bug for ever, and operators see it as a bug.
#[tokio::test]
async fn a_broken_query_is_a_500_not_an_outage() {
    let app = TestApp::spawn(|_| {}).await;
    app.student("20269001", 1).await;
    let sign_in = || async {
        app.client
            .post(app.url("/api/session"))
            .json(&json!({ "student_number": "20269001", "password": "pw" }))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(sign_in().await.status(), 200);

    sqlx::query("DROP TABLE sign_in_failures")
        .execute(&app.pool)
        .await
        .unwrap();
    let r = sign_in().await;
    assert_eq!(r.status(), 500);
    assert!(r.headers().get("retry-after").is_none());
    assert_eq!(code(r).await, "internal");
    app.finish().await;
}
