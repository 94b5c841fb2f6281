//! Gateway integration tests against a real MariaDB: each test gets its own
//! database (and RabbitMQ names where a broker is involved) and drops it at
//! the end. Multi-gateway behaviour runs the built `sluice-gateway` binary
//! as separate processes, so leadership really moves when one dies.
//!
//! Waiting is always "poll until a condition holds, with a deadline", never
//! a sleep followed by a hope.

#![allow(clippy::unwrap_used)]

mod app_api;
mod auth;
mod cart_at_admission;
mod field;
mod helpers;
mod hostile;
mod lane;
mod limits;
mod metrics;
mod openapi;
mod outages;
mod pace;
mod passes;
mod priority;
mod proxy;
mod queue_page;
mod rehearsal;
mod rejoin;
mod startup;
mod swap;
mod waitlist;
mod web_pages;

use helpers::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use waitroom::{PassClaims, QueueClaims};

#[tokio::test]
async fn a_student_joins_is_admitted_and_enrolls_with_the_pass() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("paused", 6000).await;
    let s1 = app.student("20260001", 1).await;

    let joined = app.join(round, "20260001").await;
    assert_eq!(joined.status(), 200);
    let body: Value = joined.json().await.unwrap();
    assert_eq!(body["state"], "paused", "{body}");
    assert_eq!(body["position"], 1);
    let token = body["token"].as_str().unwrap().to_string();

    // A second device takes over the same place, not a new one.
    let again: Value = app.join(round, "20260001").await.json().await.unwrap();
    let seq = |t: &str| app.keyring.verify_queue(t, now_ms()).unwrap().seq;
    assert_eq!(seq(again["token"].as_str().unwrap()), seq(&token));

    app.admin(round, json!({ "action": "resume" })).await;
    let status = app.poll_until(&token, |s| s["state"] == "admitted").await;
    let pass = status["pass"].as_str().unwrap().to_string();

    let accepted = app.enroll(Some(&pass), json!({ "sections": [7, 9] })).await;
    assert_eq!(accepted.status(), 202);
    let body: Value = accepted.json().await.unwrap();
    let sent = app.sink.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(body["command_id"], sent[0].id.to_string());
    assert_eq!(sent[0].student, s1);
    assert_eq!(
        sent[0].pass, pass,
        "the command carries the pass to the worker"
    );

    // The outcome is `queued` until the worker records it.
    let id = sent[0].id;
    let outcome: Value = app
        .get(&format!("/api/commands/{id}"))
        .header("x-pass", &pass)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(outcome["state"], "queued");
    app.finish().await;
}

#[tokio::test]
async fn forged_expired_foreign_and_missing_credentials_are_refused() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 6000).await;
    let student = app.student("20260002", 1).await;
    let other = app.student("20260003", 1).await;
    let now = now_ms();
    let pass = |student, round, iat: u64, exp: u64| {
        app.keyring.sign_pass(&PassClaims {
            round,
            student,
            lease: uuid::Uuid::now_v7(),
            budget: 5,
            iat,
            exp,
        })
    };
    let section = json!({ "sections": [1] });

    let missing = app.enroll(None, section.clone()).await;
    assert_eq!(missing.status(), 401);
    assert_eq!(code(missing).await, "pass_required");

    let good = pass(student, round, now, now + 60_000);
    let mut forged = good.clone().into_bytes();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let r = app.enroll(Some(&forged), section.clone()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(code(r).await, "bad_token");

    let other_key =
        waitroom::Keyring::from_spec("k9:an-entirely-different-key-0123456789").unwrap();
    let foreign = other_key.sign_pass(&PassClaims {
        round,
        student,
        lease: uuid::Uuid::now_v7(),
        budget: 5,
        iat: now,
        exp: now + 60_000,
    });
    assert_eq!(
        app.enroll(Some(&foreign), section.clone()).await.status(),
        401
    );

    let expired = pass(student, round, now - 120_000, now - 60_000);
    let r = app.enroll(Some(&expired), section.clone()).await;
    assert_eq!(r.status(), 401);
    assert_eq!(code(r).await, "token_expired");

    // A pass for a round that is not open here.
    let wrong_round = pass(
        student,
        enrollment::RoundId(round.0 + 1000),
        now,
        now + 60_000,
    );
    assert_eq!(
        app.enroll(Some(&wrong_round), section.clone())
            .await
            .status(),
        409
    );

    // A queue token is not a pass.
    let queue = app.keyring.sign_queue(&QueueClaims {
        round,
        student,
        seq: 1,
        order_key: Some(1),
        mark_at_join: 0,
        iat: now,
        exp: now + 60_000,
    });
    let r = app.enroll(Some(&queue), section.clone()).await;
    assert_eq!(code(r).await, "bad_token");

    // Forged and expired queue tokens are refused by status.
    let r = app
        .get("/api/queue/status")
        .header("x-queue-token", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let stale = app.keyring.sign_queue(&QueueClaims {
        round,
        student,
        seq: 1,
        order_key: Some(1),
        mark_at_join: 0,
        iat: now - 120_000,
        exp: now - 60_000,
    });
    let r = app
        .get("/api/queue/status")
        .header("x-queue-token", &stale)
        .send()
        .await
        .unwrap();
    assert_eq!(code(r).await, "token_expired");

    // Nobody reads another student's command outcome.
    let sent = app.enroll(Some(&good), section.clone()).await;
    assert_eq!(sent.status(), 202);
    let id = app.sink.sent()[0].id;
    sqlx::query(
        "INSERT INTO command_outcomes (command_id, item, student_id, round_id, section_id, action, outcome, reason, issued_at, decided_at, decided_by) \
         VALUES (?, 0, ?, ?, 1, 'enroll', 'rejected', 'full', NOW(3), NOW(3), 'test')",
    )
    .bind(id.0)
    .bind(student.0)
    .bind(round.0)
    .execute(&app.pool)
    .await
    .unwrap();
    let mine: Value = app
        .get(&format!("/api/commands/{id}"))
        .header("x-pass", &good)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["state"], "decided");
    assert_eq!(mine["items"][0]["reason"], "full");
    let theirs = pass(other, round, now, now + 60_000);
    let peek: Value = app
        .get(&format!("/api/commands/{id}"))
        .header("x-pass", &theirs)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        peek["state"], "queued",
        "another student's outcome stays invisible"
    );

    // Wrong password, unknown student: the same answer.
    let r = app.join_with(round, "20260002", "wrong").await;
    assert_eq!(code(r).await, "bad_credentials");
    let r = app.join_with(round, "nobody", "pw").await;
    assert_eq!(code(r).await, "bad_credentials");
    app.finish().await;
}

#[tokio::test]
async fn no_confirm_means_503_with_retry_after() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 6000).await;
    let student = app.student("20260004", 1).await;
    let now = now_ms();
    let pass = app.keyring.sign_pass(&PassClaims {
        round,
        student,
        lease: uuid::Uuid::now_v7(),
        budget: 5,
        iat: now,
        exp: now + 60_000,
    });
    app.sink.fail(true);
    let r = app.enroll(Some(&pass), json!({ "sections": [3] })).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(app.sink.sent().is_empty());
    app.finish().await;
}

#[tokio::test]
async fn abandoned_tickets_are_skipped_and_returning_students_keep_their_place() {
    let app = TestApp::spawn(|c| {
        c.grace_secs = 3;
        c.liveness_flush_ms = 100;
    })
    .await;
    let round = app.round("paused", 6000).await;
    for n in ["20260011", "20260012", "20260013"] {
        app.student(n, 1).await;
    }
    let token = |v: Value| {
        v["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {v}"))
            .to_string()
    };
    let gone = token(app.join(round, "20260011").await.json().await.unwrap());
    let back = token(app.join(round, "20260012").await.json().await.unwrap());
    let stays = token(app.join(round, "20260013").await.json().await.unwrap());

    // `stays` polls throughout; `back` disappears for less than the grace,
    // then returns; `gone` never polls again.
    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(5);
    let mut polled_back = false;
    while tokio::time::Instant::now() < deadline {
        app.status(&stays).await;
        if !polled_back && started.elapsed() > Duration::from_millis(2_000) {
            let s = app.status(&back).await;
            assert_eq!(s["state"], "paused", "a paused room keeps the place");
            assert_eq!(s["position"], 2);
            polled_back = true;
        }
        if polled_back {
            app.status(&back).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Absence while the room was paused does not count; absence after it
    // does. Resume without admitting anyone yet, and let `gone` stay away
    // for longer than the grace of running time.
    app.admin(round, json!({ "action": "resume", "admission_per_min": 0 }))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < deadline {
        app.status(&stays).await;
        app.status(&back).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    app.admin(round, json!({ "admission_per_min": 6000 })).await;

    // Both keep polling until admitted: a slow first tick must not let
    // `back` fall out of the grace period while only `stays` is polled.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let a = app.status(&stays).await;
        let b = app.status(&back).await;
        if a["state"] == "admitted" && b["state"] == "admitted" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not admitted: {a} {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let states: Vec<(String,)> = sqlx::query_as("SELECT state FROM tickets ORDER BY order_key")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let states: Vec<&str> = states.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(states, ["skipped", "admitted", "admitted"]);
    // `gone` comes back within the reclaim window: the turn is kept.
    let s = app.status(&gone).await;
    assert_eq!(s["state"], "waiting", "{s}");
    assert_eq!(s["notice"], "returned", "{s}");
    app.poll_until(&gone, |s| s["state"] == "admitted").await;
    app.finish().await;
}

#[tokio::test]
async fn admin_changes_are_guarded_audited_and_seen_by_polls() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 600).await;
    let r = app
        .client
        .post(app.url(&format!("/api/admin/rounds/{round}")))
        .basic_auth("registrar", Some("wrong"))
        .json(&json!({ "admission_per_min": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let view = app
        .admin(round, json!({ "admission_per_min": 0, "max_active": 5 }))
        .await;
    assert_eq!(view["admission_per_min"], 0);
    assert_eq!(view["max_active"], 5);
    let audit: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'registrar'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(audit, 2);
    let r = app
        .client
        .post(app.url(&format!("/api/admin/rounds/{round}")))
        .basic_auth("registrar", Some("admin-pw"))
        .json(&json!({ "action": "open" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "an open round cannot be opened again");
    app.finish().await;
}

/// Three gateway processes on one database: a shuffled pre-queue cohort,
/// then first-come arrivals, joins interleaved across the gateways, the
/// leader killed halfway. Admission follows the one global order and nobody
/// is admitted twice.
#[tokio::test]
async fn three_gateways_admit_in_global_order_and_survive_the_leader_dying() {
    let db = TestDb::create().await;
    db.seed_admin().await;
    let round = db.round("prequeue", 120).await;
    let mut numbers = Vec::new();
    for i in 0..24 {
        let n = format!("2026{:04}", 100 + i);
        db.student(&n, 1).await;
        numbers.push(n);
    }
    let mut cluster = Cluster::start(&db, 3).await;
    let client = reqwest::Client::new();

    // Pre-queue: the first 12 join, spread over the three gateways.
    let mut tokens: HashMap<String, String> = HashMap::new();
    for (i, n) in numbers[..12].iter().enumerate() {
        let v = cluster.join(&client, i % 3, round, n).await;
        assert_eq!(v["state"], "prequeue");
        tokens.insert(n.clone(), v["token"].as_str().unwrap().to_string());
    }
    let opened: Value = client
        .post(format!("{}/api/admin/rounds/{round}", cluster.base(1)))
        .basic_auth("registrar", Some("admin-pw"))
        .json(&json!({ "action": "open", "admission_per_min": 120 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(opened["state"], "open");
    for (i, n) in numbers[12..].iter().enumerate() {
        let v = cluster.join(&client, (i + 1) % 3, round, n).await;
        tokens.insert(n.clone(), v["token"].as_str().unwrap().to_string());
    }

    // Kill the leader once a few students are in; another takes over.
    let leader = cluster
        .wait_for_leader(&client, Duration::from_secs(10))
        .await;
    // Every gateway reports itself, and exactly one says it leads (what the
    // registrar's live view counts).
    wait_until(Duration::from_secs(15), || async {
        db.count("SELECT COUNT(*) FROM gateway_heartbeats").await == 3
            && db
                .count("SELECT COUNT(*) FROM gateway_heartbeats WHERE leader")
                .await
                == 1
    })
    .await;
    wait_until(Duration::from_secs(20), || async {
        db.count("SELECT COUNT(*) FROM tickets WHERE state = 'admitted'")
            .await
            >= 4
    })
    .await;
    cluster.kill(leader);
    let successor = cluster
        .wait_for_leader(&client, Duration::from_secs(10))
        .await;
    assert_ne!(successor, leader);

    // Everyone keeps polling (through the surviving gateways) until admitted.
    wait_until(Duration::from_secs(60), || async {
        let mut all = true;
        for (i, t) in tokens.values().enumerate() {
            let g = cluster.alive()[i % cluster.alive().len()];
            let s = cluster.status(&client, g, t).await;
            all &= s["state"] == "admitted";
        }
        all
    })
    .await;

    // The cohort's order is the published shuffle of its tickets.
    let seed: Value = client
        .get(format!("{}/api/rounds/{round}", cluster.base(successor)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seed: u64 = seed["shuffle_seed"].as_str().unwrap().parse().unwrap();
    let rows: Vec<(u64, u64, bool, String)> = sqlx::query_as(
        "SELECT seq, order_key, prequeue, state FROM tickets WHERE round_id = ? ORDER BY order_key",
    )
    .bind(round.0)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let cohort: Vec<u64> = rows.iter().filter(|r| r.2).map(|r| r.0).collect();
    assert_eq!(cohort, waitroom::prequeue_order(&cohort, seed));
    // Later arrivals follow in ticket order, after the cohort.
    let later: Vec<u64> = rows.iter().filter(|r| !r.2).map(|r| r.0).collect();
    assert!(later.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        (1..=24).collect::<Vec<_>>()
    );
    assert!(rows.iter().all(|r| r.3 == "admitted"));

    // Admission followed the order: admitted_at never goes back along it,
    // and every admission has its own lease.
    let admitted: Vec<(chrono::NaiveDateTime, Vec<u8>)> = sqlx::query_as(
        "SELECT admitted_at, lease_id FROM tickets WHERE round_id = ? ORDER BY order_key",
    )
    .bind(round.0)
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(admitted.windows(2).all(|w| w[0].0 <= w[1].0));
    let leases: HashSet<&Vec<u8>> = admitted.iter().map(|a| &a.1).collect();
    assert_eq!(leases.len(), 24);
    let total: u64 = db.count_u64("SELECT admitted_total FROM rounds").await;
    assert_eq!(total, 24, "nobody admitted twice");

    cluster.stop().await;
    db.drop().await;
}

/// A login session replaces the password on every later request: a student
/// signs in once, joins with an empty body, and an admin session carries
/// its role; a student session is refused where an admin's is needed.
#[tokio::test]
async fn sessions_sign_in_once_and_carry_the_role() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 600).await;
    app.student("20260077", 2).await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();

    // No session yet: joining without credentials asks to sign in.
    let r = client
        .post(app.url(&format!("/api/rounds/{round}/join")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(code(r).await, "sign_in_required");

    let bad = client
        .post(app.url("/api/session"))
        .json(&json!({ "student_number": "20260077", "password": "wrong" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);

    let login = client
        .post(app.url("/api/session"))
        .json(&json!({ "student_number": "20260077", "password": "pw" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("sluice_session="))
        .expect("session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    let info: Value = login.json().await.unwrap();
    assert_eq!(info["subject"]["t"], "student");
    assert!(info["csrf"].as_str().unwrap().len() >= 16);

    let joined = client
        .post(app.url(&format!("/api/rounds/{round}/join")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), 200);
    let body: Value = joined.json().await.unwrap();
    assert!(body["token"].as_str().is_some(), "{body}");

    // Mixed credentials are a clear 400, not a guess.
    let mixed = client
        .post(app.url(&format!("/api/rounds/{round}/join")))
        .json(&json!({ "student_number": "20260077" }))
        .send()
        .await
        .unwrap();
    assert_eq!(mixed.status(), 400);

    // Sign out: the cookie is cleared and the session no longer answers.
    let out = client.delete(app.url("/api/session")).send().await.unwrap();
    assert_eq!(out.status(), 200);
    let gone = client.get(app.url("/api/session")).send().await.unwrap();
    assert_eq!(gone.status(), 401);

    // An admin session names its role.
    let admin = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = admin
        .post(app.url("/api/session"))
        .json(&json!({ "username": "registrar", "password": "admin-pw" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["subject"]["t"], "admin");
    assert_eq!(info["subject"]["o"], "registrar");
    app.finish().await;
}

/// The leader plans a tick's budget from a rate read before it locks the
/// round; a rate set to zero in between must still stop admission.
#[tokio::test]
async fn a_tick_admits_nobody_once_the_rate_is_zero_whatever_it_planned() {
    use waitroom::room::TickInput;
    use waitroom::{JoinRequest, RoomStore};
    let db = TestDb::create().await;
    let round = db.round("open", 6000).await;
    let student = db.student("20260701", 1).await;
    let store = db.store();
    let now = chrono::Utc::now().timestamp_millis() as u64;
    let joined = store
        .join(&[JoinRequest {
            round,
            student,
            at_ms: now,
        }])
        .await
        .unwrap();
    assert!(joined[0].is_ok(), "{joined:?}");
    let input = TickInput {
        now_ms: now,
        grace_ms: 60_000,
        grace_from_ms: 0,
        budget: 5,
        active_since_ms: 0,
    };
    sqlx::query("UPDATE rounds SET admission_per_min = 0 WHERE id = ?")
        .bind(round.0)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(store.tick(round, input).await.unwrap().admitted, 0);
    sqlx::query("UPDATE rounds SET admission_per_min = 60 WHERE id = ?")
        .bind(round.0)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(store.tick(round, input).await.unwrap().admitted, 1);
    db.drop().await;
}
