//! `POST /api/swap` end to end: the gateway publishes to the real RabbitMQ,
//! a real worker decides on the real MariaDB, and the student reads the
//! outcome (item 0 the section gained, item 1 the section given up).

use crate::helpers::*;
use enrollment::RoundId;
use serde_json::{json, Value};

async fn admitted_pass(app: &TestApp, round: RoundId, number: &str) -> String {
    let joined: Value = app.join(round, number).await.json().await.unwrap();
    let token = joined["token"].as_str().unwrap().to_string();
    let s = app.poll_until(&token, |s| s["state"] == "admitted").await;
    s["pass"].as_str().unwrap().to_string()
}

async fn post(app: &TestApp, path: &str, pass: &str, key: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("x-pass", pass)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Sends and waits for the worker's outcome; returns the command's items.
async fn decided(app: &TestApp, pass: &str, r: reqwest::Response) -> (String, Vec<Value>) {
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    let id = accepted["command_id"].as_str().unwrap().to_string();
    let items = app.decided_items(pass, &id).await;
    (id, items)
}

fn item(v: &Value) -> (u64, &str, &str, Option<&str>) {
    (
        v["section"].as_u64().unwrap(),
        v["action"].as_str().unwrap(),
        v["outcome"].as_str().unwrap(),
        v["reason"].as_str(),
    )
}

#[tokio::test]
async fn a_swap_through_the_api_is_decided_by_a_real_worker() {
    let app = TestApp::spawn_with_broker(|_| {}).await;
    let worker = app.start_worker("swap-test", |_| {}).await;
    let round = app.round("open", 6000).await;
    let a = app.db.section("CSE310", 1, 30).await;
    let b = app.db.section("CSE310", 2, 30).await;
    let full = app.db.section("CSE310", 3, 0).await;
    app.student("20265001", 1).await;
    let pass = admitted_pass(&app, round, "20265001").await;

    let r = post(
        &app,
        "/api/enroll",
        &pass,
        "e-1",
        json!({ "sections": [a] }),
    )
    .await;
    let (_, items) = decided(&app, &pass, r).await;
    assert_eq!(item(&items[0]), (a.into(), "enroll", "enrolled", None));

    // Into a full section: refused, A kept, and the reason in both languages.
    let r = post(
        &app,
        "/api/swap",
        &pass,
        "s-1",
        json!({ "drop": a, "enroll": full }),
    )
    .await;
    let (_, items) = decided(&app, &pass, r).await;
    assert_eq!(
        item(&items[0]),
        (full.into(), "swap", "rejected", Some("full"))
    );
    assert_eq!(
        item(&items[1]),
        (a.into(), "swap", "rejected", Some("full"))
    );
    assert!(items[0]["message_ko"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(items[0]["message_en"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let held = "SELECT section_id FROM enrollments";
    let held_now = |app: &TestApp| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, u32>(held)
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(held_now(&app).await, [a]);

    // Another section of the same course: B gained, A given up.
    let r = post(
        &app,
        "/api/swap",
        &pass,
        "s-2",
        json!({ "drop": a, "enroll": b }),
    )
    .await;
    let (id, items) = decided(&app, &pass, r).await;
    assert_eq!(item(&items[0]), (b.into(), "swap", "enrolled", None));
    assert_eq!(item(&items[1]), (a.into(), "swap", "dropped", None));
    assert_eq!(held_now(&app).await, [b]);

    // A retry under the same key names the same command: nothing new.
    let r = post(
        &app,
        "/api/swap",
        &pass,
        "s-2",
        json!({ "drop": a, "enroll": b }),
    )
    .await;
    assert_eq!(r.status(), 202);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["command_id"], id);
    assert_eq!(held_now(&app).await, [b]);

    worker.stop().await;
    app.finish().await;
}

#[tokio::test]
async fn a_malformed_swap_is_a_400_with_a_reason() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 6000).await;
    app.student("20265002", 1).await;
    let pass = admitted_pass(&app, round, "20265002").await;
    for body in [
        json!({ "drop": 7, "enroll": 7 }),
        json!({ "drop": 7 }),
        json!({ "drop": 7, "enroll": 9, "waitlist": true }),
        json!({ "drop": "seven", "enroll": 9 }),
    ] {
        let r = post(&app, "/api/swap", &pass, "bad", body.clone()).await;
        assert_eq!(r.status(), 400, "{body}");
        let e: Value = r.json().await.unwrap();
        assert!(e.to_string().contains("invalid"), "{body}: {e}");
    }
    assert!(app.sink.sent().is_empty(), "nothing published");
    app.finish().await;
}

#[tokio::test]
async fn the_change_section_form_needs_the_csrf_value() {
    use crate::web_pages::{browser, sign_in};
    let app = TestApp::spawn(|_| {}).await;
    app.student("20265003", 1).await;
    let student = browser();
    sign_in(&app, &student, "20265003", "pw", false).await;
    let r = student
        .post(app.url("/swap"))
        .form(&[("csrf", "wrong"), ("drop", "1"), ("enroll", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(app.sink.sent().is_empty(), "nothing published");
    app.finish().await;
}
