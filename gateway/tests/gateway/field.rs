//! The waiting room as registration day uses it: many students behind one
//! address, refused polls, outages longer than the grace period, phones
//! that lock and come back.

use crate::helpers::*;
use crate::proxy::Proxy;
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Duration;

/// A client whose requests come from `ip` (another loopback address): what
/// a campus NAT looks like to the gateway.
fn from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .cookie_store(true)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn students_behind_one_address_all_sign_in_join_poll_and_enroll_with_defaults() {
    // The shipped limits, not the test's generous ones.
    let app = TestApp::spawn(|c| {
        let d = gateway::config::Config::defaults();
        c.ip_rate = d.ip_rate;
        c.ip_burst = d.ip_burst;
        c.student_rate = d.student_rate;
        c.student_burst = d.student_burst;
    })
    .await;
    let round = app.round("open", 60_000).await;
    const N: usize = 300;
    let numbers: Vec<String> = (0..N).map(|i| format!("2026{:04}", 2000 + i)).collect();
    for n in &numbers {
        app.student(n, 1).await;
    }
    let outcomes = join_all(numbers.iter().map(|n| {
        let client = from([127, 0, 0, 3]);
        let app = &app;
        async move {
            // A burst of sign-ins beyond the password line is answered 503
            // with Retry-After, which a real client follows.
            let mut tries = 0;
            loop {
                let signed = client
                    .post(app.url("/api/session"))
                    .json(&json!({ "student_number": n, "password": "pw" }))
                    .send()
                    .await
                    .unwrap();
                match signed.status().as_u16() {
                    200 => break,
                    503 if tries < 20 => {
                        tries += 1;
                        let after: u64 = signed.headers()["retry-after"]
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        tokio::time::sleep(Duration::from_secs(after)).await;
                    }
                    other => return format!("sign-in {other}"),
                }
            }
            let joined = client
                .post(app.url(&format!("/api/rounds/{round}/join")))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            if joined.status() != 200 {
                return format!("join {}", joined.status());
            }
            let mut s: Value = joined.json().await.unwrap();
            let t = token(&s);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while s["state"] != "admitted" {
                if tokio::time::Instant::now() > deadline {
                    return format!("never admitted: {s}");
                }
                tokio::time::sleep(Duration::from_millis(
                    s["poll_after_ms"].as_u64().unwrap_or(200).clamp(200, 2_000),
                ))
                .await;
                let r = client
                    .get(app.url("/api/queue/status"))
                    .header("x-queue-token", &t)
                    .send()
                    .await
                    .unwrap();
                if r.status() != 200 {
                    return format!("poll {}", r.status());
                }
                s = r.json().await.unwrap();
            }
            let pass = s["pass"].as_str().unwrap().to_string();
            let sent = client
                .post(app.url("/api/enroll"))
                .header("x-pass", &pass)
                .json(&json!({ "sections": [1, 2, 3, 4] }))
                .send()
                .await
                .unwrap();
            if sent.status() != 202 {
                return format!("enroll {}", sent.status());
            }
            "ok".to_string()
        }
    }))
    .await;
    let failed: Vec<&String> = outcomes.iter().filter(|o| *o != "ok").collect();
    assert!(
        failed.is_empty(),
        "{} of {N} students behind one address failed, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert_eq!(app.sink.sent().len(), N, "every cart accepted");
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM tickets WHERE state = 'skipped'")
            .await,
        0
    );
    app.finish().await;
}

#[tokio::test]
async fn anonymous_floods_from_one_address_are_slowed_but_its_signed_in_students_are_not() {
    let app = TestApp::spawn(|c| {
        c.ip_rate = 1;
        c.ip_burst = 5;
    })
    .await;
    let round = app.round("paused", 6000).await;
    app.student("20263001", 1).await;
    app.student("20263002", 1).await;
    let flooder = from([127, 0, 0, 4]);
    // A student of the same address signs in before the flood.
    let student = from([127, 0, 0, 4]);
    let r = student
        .post(app.url("/api/session"))
        .json(&json!({ "student_number": "20263002", "password": "pw" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut limited = None;
    for _ in 0..50 {
        let r = flooder
            .post(app.url("/api/session"))
            .json(&json!({ "student_number": "20263001", "password": "wrong" }))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("an anonymous flood from one address is slowed");
    assert!(limited.headers().contains_key("retry-after"));
    // Forged tokens are anonymous too.
    let forged = flooder
        .get(app.url("/api/queue/status"))
        .header("x-queue-token", "not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 429);

    // The signed-in student behind the same address joins and polls.
    let joined = student
        .post(app.url(&format!("/api/rounds/{round}/join")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), 200);
    let t = token(&joined.json().await.unwrap());
    for _ in 0..3 {
        let r = student
            .get(app.url("/api/queue/status"))
            .header("x-queue-token", &t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    app.finish().await;
}

#[tokio::test]
async fn a_refused_poll_still_keeps_the_place() {
    // One poll a second per student, and a grace period shorter than the
    // wait: only polls answered 429 show the student is there.
    let app = TestApp::spawn(|c| {
        c.student_rate = 1;
        c.student_burst = 1;
        c.liveness_flush_ms = 100;
    })
    .await;
    let round = app.round("open", 0).await;
    app.student("20263101", 1).await;
    let joined: Value = app.join(round, "20263101").await.json().await.unwrap();
    let t = token(&joined);
    let seq = app.keyring.verify_queue(&t, now_ms()).unwrap().seq;
    // Let the join's own sighting reach the database first (five flushes),
    // so that only the refused poll can move last_seen past `before`. The
    // join spent the budget, which refills in a second: this poll is refused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = now_ms();
    let r = app
        .get("/api/queue/status")
        .header("x-queue-token", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // The refused poll's sighting reaches the database.
    wait_until(Duration::from_secs(10), || async {
        let seen: chrono::NaiveDateTime =
            sqlx::query_scalar("SELECT last_seen_at FROM tickets WHERE seq = ?")
                .bind(seq)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        u64::try_from(seen.and_utc().timestamp_millis()).unwrap() >= before
    })
    .await;
    app.finish().await;
}

#[tokio::test]
async fn an_outage_longer_than_the_grace_skips_nobody() {
    let db = TestDb::create().await;
    // Open, admitting nobody until the outage is over.
    let round = db.round("open", 0).await;
    let numbers: Vec<String> = (0..8).map(|i| format!("2026{:04}", 3200 + i)).collect();
    for n in &numbers {
        db.student(n, 1).await;
    }
    let proxy = Proxy::start("127.0.0.1:3306").await;
    let via_proxy = proxy.rewrite(&db.url, 3306);
    let cluster = Cluster::start_env(
        &db,
        1,
        &[
            ("DATABASE_URL", via_proxy.as_str()),
            ("SLUICE_STALE_MS", "1000"),
            ("SLUICE_DB_TIMEOUT_MS", "500"),
            ("SLUICE_GRACE_SECS", "2"),
            ("SLUICE_LIVENESS_FLUSH_MS", "200"),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let base = cluster.base(0);
    let mut tokens = Vec::new();
    for n in &numbers {
        tokens.push(token(&cluster.join(&client, 0, round, n).await));
    }
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

    proxy.cut();
    wait_until(Duration::from_secs(10), || async {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 503)
    })
    .await;
    // Every student keeps polling through an outage three grace periods
    // long, and is told their place is kept.
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    while tokio::time::Instant::now() < until {
        for s in poll_all().await {
            assert_eq!(s["state"], "paused", "{s}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The database returns; the registrar lets admission run. The students
    // stop polling here, so only what they showed during the outage counts.
    proxy.restore();
    wait_until(Duration::from_secs(20), || async {
        client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    sqlx::query("UPDATE rounds SET admission_per_min = 6000 WHERE id = ?")
        .bind(round.0)
        .execute(&db.pool)
        .await
        .unwrap();
    wait_until(Duration::from_secs(20), || async {
        db.count("SELECT COUNT(*) FROM tickets WHERE state = 'waiting'")
            .await
            == 0
    })
    .await;
    assert_eq!(
        db.count("SELECT COUNT(*) FROM tickets WHERE state = 'skipped'")
            .await,
        0,
        "nobody is skipped for an outage"
    );
    // In order: admission times never go backwards along the line.
    let out_of_order = db
        .count(
            "SELECT COUNT(*) FROM tickets a JOIN tickets b \
             ON a.round_id = b.round_id AND a.order_key < b.order_key \
             WHERE a.admitted_at > b.admitted_at",
        )
        .await;
    assert_eq!(out_of_order, 0);
    cluster.stop().await;
    db.drop().await;
}

/// How long ago the holder of `token` was last seen, as the database has it.
async fn away_for(app: &TestApp, token: &str) -> u64 {
    let seq = app.keyring.verify_queue(token, now_ms()).unwrap().seq;
    let seen: chrono::NaiveDateTime =
        sqlx::query_scalar("SELECT last_seen_at FROM tickets WHERE seq = ?")
            .bind(seq)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    now_ms().saturating_sub(u64::try_from(seen.and_utc().timestamp_millis()).unwrap())
}

/// Waits until the holder of `token` has been away longer than a 1 s grace.
async fn away_longer_than_the_grace(app: &TestApp, token: &str) {
    wait_until(Duration::from_secs(20), || async {
        away_for(app, token).await > 1_500
    })
    .await;
}

#[tokio::test]
async fn a_student_who_comes_back_within_the_window_keeps_their_turn() {
    let app = TestApp::spawn(|c| {
        c.grace_secs = 1;
        c.liveness_flush_ms = 100;
    })
    .await;
    let round = app.round("open", 0).await;
    // Enough students behind the returning one that the line is still
    // there when they are admitted (one a second).
    for i in 0..10 {
        app.student(&format!("2026{:04}", 3300 + i), 1).await;
    }
    let mut tokens = Vec::new();
    for i in 0..10 {
        let v: Value = app
            .join(round, &format!("2026{:04}", 3300 + i))
            .await
            .json()
            .await
            .unwrap();
        tokens.push(token(&v));
    }
    // The first student's phone locks; the others keep polling (all along)
    // while the room admits one a second.
    let away = tokens.remove(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    let others = async {
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            for t in &tokens {
                app.status(t).await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let steps = async {
        away_longer_than_the_grace(&app, &away).await;
        sqlx::query("UPDATE rounds SET admission_per_min = 60 WHERE id = ?")
            .bind(round.0)
            .execute(&app.pool)
            .await
            .unwrap();
        wait_until(Duration::from_secs(20), || async {
            app.db
                .count("SELECT COUNT(*) FROM tickets WHERE state = 'skipped'")
                .await
                == 1
        })
        .await;
        // Back: the page says the turn is kept, and the next tick admits
        // them ahead of everyone still waiting.
        // (Once this gateway's snapshot has seen the mark pass them.)
        let back = app
            .poll_until(&away, |s| {
                s["notice"] == "returned" || s["state"] != "waiting"
            })
            .await;
        assert_eq!(back["state"], "waiting", "{back}");
        assert_eq!(back["notice"], "returned", "{back}");
        let admitted = app.poll_until(&away, |s| s["state"] == "admitted").await;
        assert!(admitted["pass"].is_string());
        let still_waiting = app
            .db
            .count("SELECT COUNT(*) FROM tickets WHERE state = 'waiting'")
            .await;
        assert!(
            still_waiting >= 1,
            "the returning student went ahead of the line"
        );
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    tokio::join!(others, steps);
    let reclaimed = app
        .db
        .count("SELECT COUNT(*) FROM tickets WHERE reclaimed_at IS NOT NULL AND state = 'admitted'")
        .await;
    assert_eq!(reclaimed, 1);
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM tickets WHERE state = 'skipped'")
            .await,
        0
    );
    app.finish().await;
}

#[tokio::test]
async fn a_student_who_comes_back_too_late_joins_at_the_back() {
    let app = TestApp::spawn(|c| {
        c.grace_secs = 1;
        c.reclaim_window_secs = 1;
        c.liveness_flush_ms = 100;
    })
    .await;
    let round = app.round("open", 0).await;
    app.student("20263401", 1).await;
    app.student("20263402", 1).await;
    let away = token(&app.join(round, "20263401").await.json().await.unwrap());
    let other = token(&app.join(round, "20263402").await.json().await.unwrap());
    wait_until(Duration::from_secs(20), || async {
        app.status(&other).await;
        away_for(&app, &away).await > 1_500
    })
    .await;
    sqlx::query("UPDATE rounds SET admission_per_min = 60, max_active = 1 WHERE id = ?")
        .bind(round.0)
        .execute(&app.pool)
        .await
        .unwrap();
    wait_until(Duration::from_secs(20), || async {
        app.status(&other).await;
        app.db
            .count("SELECT COUNT(*) FROM tickets WHERE state = 'skipped'")
            .await
            == 1
    })
    .await;
    // Skipped more than the window ago.
    sqlx::query(
        "UPDATE tickets SET skipped_at = skipped_at - INTERVAL 5 SECOND WHERE state = 'skipped'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let back = app.poll_until(&away, |s| s["state"] != "waiting").await;
    assert_eq!(back["state"], "skipped", "{back}");
    // Joining again is a new place at the back.
    let again: Value = app.join(round, "20263401").await.json().await.unwrap();
    assert_eq!(again["state"], "waiting", "{again}");
    assert_ne!(
        app.keyring
            .verify_queue(&token(&again), now_ms())
            .unwrap()
            .seq,
        app.keyring.verify_queue(&away, now_ms()).unwrap().seq
    );
    app.finish().await;
}

#[tokio::test]
async fn leaving_after_admission_ends_it_for_polls_and_the_cap() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 6000).await;
    sqlx::query("UPDATE rounds SET max_active = 1 WHERE id = ?")
        .bind(round.0)
        .execute(&app.pool)
        .await
        .unwrap();
    app.student("20263501", 1).await;
    app.student("20263502", 1).await;
    let first = token(&app.join(round, "20263501").await.json().await.unwrap());
    let admitted = app.poll_until(&first, |s| s["state"] == "admitted").await;
    assert!(admitted["pass"].is_string());
    // The cap is full: the second student waits.
    let second = token(&app.join(round, "20263502").await.json().await.unwrap());
    let s = app.status(&second).await;
    assert_ne!(s["state"], "admitted", "{s}");

    let r = app
        .client
        .post(app.url("/api/queue/leave"))
        .header("x-queue-token", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // This gateway had the admission cached; the old token no longer gets
    // a pass.
    let s = app.status(&first).await;
    assert_eq!(s["state"], "left", "{s}");
    assert!(s["pass"].is_null(), "{s}");
    // The slot is free for the next student, and only one admission runs.
    app.poll_until(&second, |s| s["state"] == "admitted").await;
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM tickets WHERE state = 'admitted'")
            .await,
        1
    );
    app.finish().await;
}

#[tokio::test]
async fn a_returned_student_keeps_the_turn_through_a_pause_and_can_leave_it() {
    let app = TestApp::spawn(|c| {
        c.grace_secs = 1;
        c.reclaim_window_secs = 2;
        c.liveness_flush_ms = 100;
    })
    .await;
    let round = app.round("open", 0).await;
    app.student("20263601", 1).await;
    app.student("20263602", 1).await;
    let away = token(&app.join(round, "20263601").await.json().await.unwrap());
    let other = token(&app.join(round, "20263602").await.json().await.unwrap());
    wait_until(Duration::from_secs(20), || async {
        app.status(&other).await;
        away_for(&app, &away).await > 1_500
    })
    .await;
    sqlx::query("UPDATE rounds SET admission_per_min = 60, max_active = 1 WHERE id = ?")
        .bind(round.0)
        .execute(&app.pool)
        .await
        .unwrap();
    // Skipped while `other` (polling) is admitted and fills the cap; back
    // in time, then the cap holds them longer than the window.
    wait_until(Duration::from_secs(20), || async {
        app.status(&other).await["state"] == "admitted"
            && app
                .db
                .count("SELECT COUNT(*) FROM tickets WHERE state = 'skipped'")
                .await
                == 1
    })
    .await;
    let back = app
        .poll_until(&away, |s| {
            s["notice"] == "returned" || s["state"] != "waiting"
        })
        .await;
    assert_eq!(back["notice"], "returned", "{back}");
    sqlx::query(
        "UPDATE tickets SET skipped_at = skipped_at - INTERVAL 10 SECOND WHERE state = 'skipped'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let still = app.status(&away).await;
    assert_eq!(
        still["notice"], "returned",
        "the turn is kept past the window: {still}"
    );
    // Leaving gives the kept turn up: nobody is admitted on it.
    let r = app
        .client
        .post(app.url("/api/queue/leave"))
        .header("x-queue-token", &away)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let left: Value = r.json().await.unwrap();
    assert_eq!(left["left"], true, "{left}");
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM tickets WHERE reclaim_at IS NOT NULL OR reclaimed_at IS NOT NULL")
            .await,
        0
    );
    app.finish().await;
}

/// The liveness flush's write on the real database: each waiting ticket
/// gets its own sighting to the millisecond, never moved back, tickets no
/// longer waiting and unknown ones are left alone, and a flush larger than
/// one statement's share is written whole.
#[tokio::test]
async fn sightings_are_written_to_the_millisecond_and_never_backwards() {
    use waitroom::room::RoomStore;
    let db = TestDb::create().await;
    let round = db.round("open", 60_000).await;
    const N: u64 = 2_500;
    let start: chrono::NaiveDateTime = "2026-12-01T09:00:00".parse().unwrap();
    let start_ms = u64::try_from(start.and_utc().timestamp_millis()).unwrap();
    for i in 0..N {
        let student = db.student(&format!("2026{:05}", 10_000 + i), 1).await;
        let state = if i % 10 == 9 { "admitted" } else { "waiting" };
        sqlx::query(
            "INSERT INTO tickets (round_id, student_id, state, joined_at, last_seen_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(round.0)
        .bind(student.0)
        .bind(state)
        .bind(start)
        .bind(start)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let seqs: Vec<u64> = sqlx::query_scalar("SELECT seq FROM tickets ORDER BY seq")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    // Every third ticket is reported seen before what the database holds.
    let seen: Vec<(u64, u64)> = seqs
        .iter()
        .enumerate()
        .map(|(i, &seq)| {
            let at = if i % 3 == 0 {
                start_ms - 5_000
            } else {
                start_ms + 1_000 + i as u64 * 7
            };
            (seq, at)
        })
        .chain([(u64::MAX - 1, start_ms + 1)])
        .collect();
    let store = db.store();
    store.touch(&seen).await.unwrap();
    let rows: Vec<(u64, chrono::NaiveDateTime)> =
        sqlx::query_as("SELECT seq, last_seen_at FROM tickets ORDER BY seq")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(rows.len() as u64, N);
    for (i, (seq, at)) in rows.into_iter().enumerate() {
        assert_eq!(seq, seqs[i]);
        let at = u64::try_from(at.and_utc().timestamp_millis()).unwrap();
        let expected = if i % 10 == 9 || i % 3 == 0 {
            start_ms
        } else {
            start_ms + 1_000 + i as u64 * 7
        };
        assert_eq!(at, expected, "ticket {i}");
    }
    db.drop().await;
}

/// A join writes the new ticket's first sighting itself (`last_seen_at` is
/// the join's time): the liveness flush does not write it again, which in
/// a surge doubled the database's work per join. A student who joins again
/// while waiting keeps their ticket, and that sighting is written as a
/// poll's is, once the written one is a refresh old (1 s here). Counts are
/// of this process's metrics: nextest runs each test in its own.
#[tokio::test]
async fn a_join_is_not_written_again_by_the_liveness_flush() {
    let app = TestApp::spawn(|c| {
        c.liveness_flush_ms = 100;
        // Refresh: a sixth of the grace, 1 s.
        c.grace_secs = 6;
        c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let round = app.round("open", 0).await;
    let ops = format!("http://{}/metrics", app.metrics_addr.unwrap());
    let written = || async {
        let text = app.client.get(&ops).fetch_text().await;
        metric(&text, "sluice_waitroom_liveness_written_total").unwrap()
    };
    for i in 0..5 {
        let number = format!("2026{:05}", 20_000 + i);
        app.student(&number, 1).await;
        let r = app.join(round, &number).await;
        assert_eq!(r.status(), 200);
    }
    // Several flushes later, nothing was owed to the database.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        written().await,
        0.0,
        "the joins' sightings were written again"
    );
    let joined: i64 = app
        .db
        .count("SELECT COUNT(*) FROM tickets WHERE last_seen_at = joined_at AND state = 'waiting'")
        .await;
    assert_eq!(joined, 5, "each ticket holds its join as its sighting");

    // Joining again while waiting keeps the ticket; that sighting is
    // written a refresh after the join's.
    let again = app.join(round, "202620000").await;
    assert_eq!(again.status(), 200);
    wait_until(Duration::from_secs(5), || async { written().await == 1.0 }).await;
    let moved: i64 = app
        .db
        .count("SELECT COUNT(*) FROM tickets WHERE last_seen_at > joined_at")
        .await;
    assert_eq!(moved, 1, "the returning student's sighting is written");
    app.finish().await;
}

/// A join's new tickets are built from what the insert wrote, not read
/// back whole: each is what MySQL holds, in an open round, in pre-queue
/// (no key yet), and where a departed ticket gave way to a new one.
#[tokio::test]
async fn a_joins_new_tickets_are_what_the_database_holds() {
    use waitroom::room::{JoinRequest, RoomStore};
    let db = TestDb::create().await;
    let open = db.round("open", 0).await;
    let pre = db.round("prequeue", 0).await;
    let mut students = Vec::new();
    for i in 0..4 {
        students.push(db.student(&format!("2026{:05}", 30_000 + i), 1).await);
    }
    // The first student left an earlier ticket of the open round.
    sqlx::query(
        "INSERT INTO tickets (round_id, student_id, order_key, state, joined_at, last_seen_at) \
         VALUES (?, ?, 0, 'left', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))",
    )
    .bind(open.0)
    .bind(students[0].0)
    .execute(&db.pool)
    .await
    .unwrap();
    let store = db.store();
    let at_ms = now_ms();
    let mut batch: Vec<JoinRequest> = students[..3]
        .iter()
        .map(|&student| JoinRequest {
            round: open,
            student,
            at_ms,
        })
        .collect();
    batch.push(JoinRequest {
        round: pre,
        student: students[3],
        at_ms,
    });
    let places = store.join(&batch).await.unwrap();
    assert_eq!(places.len(), 4);
    for (req, place) in batch.iter().zip(places) {
        let place = place.unwrap();
        assert!(!place.kept);
        let held = store.ticket(place.ticket.seq).await.unwrap().unwrap();
        assert_eq!(place.ticket, held, "student {:?}", req.student);
        assert_eq!(held.student, req.student);
        assert_eq!(held.order_key.is_none(), req.round == pre);
    }
    assert_eq!(
        db.count("SELECT COUNT(*) FROM tickets WHERE state = 'left'")
            .await,
        0,
        "the departed ticket gave way"
    );
    db.drop().await;
}
