//! Sign-in hardening and what each key may do: per-account throttles on
//! every sign-in path, admin credentials on a password line of their own,
//! admin sessions checked against the database, retried submits that keep
//! their command id, and keys that sign only what they are for.

use crate::helpers::*;
use enrollment::{RoundId, StudentId};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use waitroom::{PassClaims, SessionClaims, Subject};

fn retry_after(r: &reqwest::Response) -> Option<u64> {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Signs in through the API; returns the raw session token.
async fn session_token(app: &TestApp, body: Value) -> String {
    let r = app
        .client
        .post(app.url("/api/session"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sign-in {body}");
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("sluice_session="))
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_string()
}

fn pass_for(app: &TestApp, student: StudentId, round: RoundId) -> String {
    let now = now_ms();
    app.keyring.sign_pass(&PassClaims {
        round,
        student,
        lease: uuid::Uuid::now_v7(),
        budget: 40,
        iat: now,
        exp: now + 600_000,
    })
}

#[tokio::test]
async fn wrong_basic_credentials_are_challenged_then_throttled_per_account() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    let api = app.url(&format!("/api/admin/rounds/{round}"));
    let guess = |i: usize| {
        app.client
            .get(&api)
            .basic_auth("registrar", Some(format!("guess-{i}")))
            .send()
    };
    let first = guess(0).await.unwrap();
    assert_eq!(first.status(), 401, "wrong Basic credentials");
    let challenge = first
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(challenge.starts_with("Basic "), "challenge: {challenge:?}");

    let (mut checked, mut throttled) = (1, None);
    for i in 1..60 {
        let r = guess(i).await.unwrap();
        match r.status().as_u16() {
            401 => checked += 1,
            429 => {
                throttled = retry_after(&r);
                break;
            }
            s => panic!("guess {i}: unexpected status {s}"),
        }
    }
    let wait = throttled.expect("60 wrong guesses in a row, none throttled");
    assert!(wait >= 1, "Retry-After {wait}");
    // Five free failures, then a delay; one more may slip in if this
    // machine is slow enough for the first one-second delay to pass.
    assert!(checked <= 7, "{checked} guesses reached the password check");
    let r = app
        .client
        .get(&api)
        .basic_auth("registrar", Some("admin-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        429,
        "while throttled even the right password waits, or the throttle would tell a guesser when they hit"
    );
    let audited = app
        .db
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in_throttled' AND subject = 'admin:registrar'")
        .await;
    assert!(audited >= 1, "the throttle is in the audit log");

    // The delay passes; the right password then works and clears the count.
    wait_until(Duration::from_secs(30), || async {
        app.client
            .get(&api)
            .basic_auth("registrar", Some("admin-pw"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let r = guess(100).await.unwrap();
    assert_eq!(r.status(), 401, "a success starts the count again");
    app.finish().await;
}

#[tokio::test]
async fn student_sign_in_is_throttled_per_account_on_every_path() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 6000).await;
    app.student("20269001", 1).await;
    app.student("20269002", 1).await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        let r = app
            .client
            .post(app.url("/api/session"))
            .json(&json!({ "student_number": "20269001", "password": format!("nope-{i}") }))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(retry_after(&r).is_some_and(|s| s >= 1));
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "statuses: {statuses:?}");
    assert!(statuses.iter().filter(|&&s| s == 401).count() <= 7);
    // The join form signs in with the same password: same account, same throttle.
    let r = app.join_with(round, "20269001", "pw").await;
    assert_eq!(r.status(), 429, "the join path shares the throttle");
    // Someone else's account is not affected.
    assert_eq!(app.join(round, "20269002").await.status(), 200);
    let audited = app
        .db
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in_throttled' AND subject = 'student:20269001'")
        .await;
    assert!(audited >= 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_admin_credentials_does_not_starve_student_sign_in() {
    let app = TestApp::spawn(|c| c.hash_concurrency = 1).await;
    app.student("20269010", 1).await;
    let api = app.url("/api/admin/rounds/1");
    let stop = Arc::new(AtomicBool::new(false));
    let line_full = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicUsize::new(0));
    let mut flood = Vec::new();
    for _ in 0..48 {
        let (client, api) = (app.client.clone(), api.clone());
        let (stop, line_full, counter) = (stop.clone(), line_full.clone(), counter.clone());
        flood.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                // A new name each time: this is about the line, not the
                // per-account throttle.
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let r = client
                    .get(&api)
                    .basic_auth(format!("flood{n}"), Some("x"))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == 503) {
                    line_full.store(true, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }));
    }
    wait_until(Duration::from_secs(20), || async {
        line_full.load(Ordering::SeqCst)
    })
    .await;
    let mut answers = Vec::new();
    for _ in 0..5 {
        let r = app
            .client
            .post(app.url("/api/session"))
            .json(&json!({ "student_number": "20269010", "password": "pw" }))
            .send()
            .await
            .unwrap();
        answers.push(r.status().as_u16());
    }
    stop.store(true, Ordering::SeqCst);
    for f in flood {
        f.await.unwrap();
    }
    assert_eq!(
        answers, [200; 5],
        "students sign in while admin credentials flood their own line"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_retried_submit_with_the_same_idempotency_key_keeps_its_command_id() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    let student = app.student("20269020", 1).await;
    let pass = pass_for(&app, student, round);
    let send = |path: &'static str, key: Option<&'static str>, body: Value| {
        let mut req = app
            .client
            .post(app.url(path))
            .header("x-pass", &pass)
            .json(&body);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.send()
    };
    let accepted = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        v["command_id"].as_str().unwrap().to_string()
    };
    let cart = json!({ "sections": [7, 9] });

    // The confirm comes too late: 503, yet a copy is queued.
    app.sink.confirm_late(true);
    let r = send("/api/enroll", Some("try-1"), cart.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Idempotency-Key"),
        "the 503 says how to retry safely: {message}"
    );
    let queued = app.sink.sent();
    assert_eq!(queued.len(), 1);
    app.sink.confirm_late(false);
    let retried = accepted(
        send("/api/enroll", Some("try-1"), cart.clone())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        retried,
        queued[0].id.to_string(),
        "the retry names the copy already queued"
    );
    // A lost 202 retried: still the same command.
    let again = accepted(
        send("/api/enroll", Some("try-1"), cart.clone())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again, retried);

    // Nacked (nothing queued), then retried: the same id too.
    app.sink.fail(true);
    let r = send("/api/drop", Some("drop-1"), json!({ "section": 7 }))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    app.sink.fail(false);
    let dropped = accepted(
        send("/api/drop", Some("drop-1"), json!({ "section": 7 }))
            .await
            .unwrap(),
    )
    .await;
    let dropped_again = accepted(
        send("/api/drop", Some("drop-1"), json!({ "section": 7 }))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(dropped, dropped_again);
    assert_ne!(dropped, retried);

    // Another key, or none: another command.
    let other = accepted(
        send("/api/enroll", Some("try-2"), cart.clone())
            .await
            .unwrap(),
    )
    .await;
    assert_ne!(other, retried);
    let a = accepted(send("/api/enroll", None, cart.clone()).await.unwrap()).await;
    let b = accepted(send("/api/enroll", None, cart.clone()).await.unwrap()).await;
    assert_ne!(a, b);

    // Another pass (a new admission) with the same key: another command.
    let next_pass = pass_for(&app, student, round);
    let r = app
        .client
        .post(app.url("/api/enroll"))
        .header("x-pass", &next_pass)
        .header("idempotency-key", "try-1")
        .json(&cart)
        .send()
        .await
        .unwrap();
    assert_ne!(accepted(r).await, retried);

    let r = send("/api/enroll", Some("no spaces allowed"), cart.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a malformed key is refused");
    app.finish().await;
}

#[tokio::test]
async fn the_enroll_form_carries_a_key_so_a_resubmit_keeps_its_command_id() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    let student = app.student("20269021", 1).await;
    let pass = pass_for(&app, student, round);
    let claims = SessionClaims::new(
        Subject::Student {
            id: student,
            class_year: 1,
        },
        now_ms(),
        600_000,
    );
    let cookie = format!(
        "sluice_session={}; sluice_pass={pass}",
        app.keyring.sign_session(&claims)
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |key: &'static str| {
        client
            .post(app.url("/enroll"))
            .header("cookie", &cookie)
            .form(&[
                ("csrf", claims.csrf.as_str()),
                ("section", "7"),
                ("idempotency_key", key),
            ])
            .send()
    };
    app.sink.confirm_late(true);
    let r = post("form-key-1").await.unwrap();
    assert_eq!(r.status(), 503);
    app.sink.confirm_late(false);
    let r = post("form-key-1").await.unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(
        location,
        format!("/results?pending={}", app.sink.sent()[0].id)
    );
    app.finish().await;
}

#[tokio::test]
async fn a_demoted_disabled_or_signed_out_admin_loses_the_session() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    let api = app.url(&format!("/api/admin/rounds/{round}"));
    let token = session_token(
        &app,
        json!({ "username": "registrar", "password": "admin-pw" }),
    )
    .await;
    let read = |token: String| {
        let (client, api) = (app.client.clone(), api.clone());
        async move {
            client
                .get(&api)
                .header("cookie", format!("sluice_session={token}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(read(token.clone()).await, 200);
    let set_role = |role: &'static str| {
        sqlx::query("UPDATE admins SET role = ? WHERE username = 'registrar'")
            .bind(role)
            .execute(&app.pool)
    };

    // Demoted: refused within the check's few seconds, not after 8 h.
    set_role("viewer").await.unwrap();
    wait_until(Duration::from_secs(15), || async {
        read(token.clone()).await == 403
    })
    .await;
    set_role("registrar").await.unwrap();
    wait_until(Duration::from_secs(15), || async {
        read(token.clone()).await == 200
    })
    .await;

    // Disabled: refused too, and cannot sign in again.
    sqlx::query("UPDATE admins SET disabled_at = UTC_TIMESTAMP(3) WHERE username = 'registrar'")
        .execute(&app.pool)
        .await
        .unwrap();
    wait_until(Duration::from_secs(15), || async {
        read(token.clone()).await != 200
    })
    .await;
    let r = app
        .client
        .post(app.url("/api/session"))
        .json(&json!({ "username": "registrar", "password": "admin-pw" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a disabled admin cannot sign in");
    sqlx::query("UPDATE admins SET disabled_at = NULL WHERE username = 'registrar'")
        .execute(&app.pool)
        .await
        .unwrap();

    // Signed out: the copied cookie is dead at once on this gateway.
    let token = session_token(
        &app,
        json!({ "username": "registrar", "password": "admin-pw" }),
    )
    .await;
    assert_eq!(read(token.clone()).await, 200);
    let r = app
        .client
        .delete(app.url("/api/session"))
        .header("cookie", format!("sluice_session={token}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "sign-out: {}", r.status());
    assert_ne!(
        read(token.clone()).await,
        200,
        "a signed-out session is revoked"
    );
    app.finish().await;
}

#[tokio::test]
async fn the_key_a_worker_holds_cannot_mint_a_session() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 60).await;
    // Everything a worker is given, used as an attacker would.
    let stolen = waitroom::Keyring::from_spec(WORKER_KEYS).unwrap();
    let forged = stolen.sign_session(&SessionClaims::new(
        Subject::Admin {
            id: 1,
            username: "registrar".into(),
            role: "registrar".into(),
        },
        now_ms(),
        600_000,
    ));
    let r = app
        .get(&format!("/api/admin/rounds/{round}"))
        .header("cookie", format!("sluice_session={forged}"))
        .send()
        .await
        .unwrap();
    assert_ne!(
        r.status(),
        200,
        "a session minted with the worker's key was accepted"
    );
    // What the worker's key is for still works: it verifies the
    // gateway's passes.
    let student = app.student("20269030", 1).await;
    let pass = pass_for(&app, student, round);
    assert!(stolen.open_pass(&pass).is_ok());
    app.finish().await;
}

/// Pods are rolled one step at a time, so at any moment a gateway and a
/// worker may be one step apart: nothing either signs may be refused by
/// the other.
#[tokio::test]
async fn a_three_step_rotation_rejects_nothing_between_a_gateway_and_a_worker() {
    const NEW: &str = "p2:the-next-pass-key-after-rotation-0123456789";
    let (step1, step2) = (format!("{PASS_KEYS},{NEW}"), format!("{NEW},{PASS_KEYS}"));
    // This gateway is at step 2: the new key signs, the old one verifies.
    let app = TestApp::spawn(|c| c.pass_keys = Some(step2.clone().into())).await;
    let round = app.round("open", 6000).await;
    let student = app.student("20269040", 1).await;
    let joined: Value = app.join(round, "20269040").await.json().await.unwrap();
    let token = joined["token"].as_str().unwrap().to_string();
    let status = app.poll_until(&token, |s| s["state"] == "admitted").await;
    let pass = status["pass"].as_str().unwrap().to_string();
    assert_eq!(
        pass.split('.').next(),
        Some("p2"),
        "step 2 signs with the new key"
    );

    // A worker still at step 1 (old key signs, new one only verifies).
    let worker = waitroom::Keyring::pass_only(&step1).unwrap();
    let claims = worker
        .open_pass(&pass)
        .expect("a step-1 worker verifies a step-2 pass");
    assert_eq!(claims.student, student);
    // What the one-step procedure did: a worker not yet restarted refused
    // the pass, and recorded `pass_invalid` as the student's outcome.
    assert_eq!(
        waitroom::Keyring::pass_only(PASS_KEYS)
            .unwrap()
            .open_pass(&pass),
        Err(waitroom::TokenError::UnknownKey)
    );

    // A pass from a gateway still at step 1 works here, at step 2.
    let behind = waitroom::Keyring::from_spec(KEYS)
        .unwrap()
        .with_pass_keys(&step1)
        .unwrap();
    let now = now_ms();
    let old_pass = behind.sign_pass(&PassClaims {
        round,
        student,
        lease: uuid::Uuid::now_v7(),
        budget: 5,
        iat: now,
        exp: now + 600_000,
    });
    assert_eq!(old_pass.split('.').next(), Some("p1"));
    let r = app
        .enroll(Some(&old_pass), json!({ "sections": [7] }))
        .await;
    assert_eq!(r.status(), 202, "a step-1 pass at a step-2 gateway");
    app.finish().await;
}
