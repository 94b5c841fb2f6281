//! Per-client rate limits: a flooder is slowed with 429 + Retry-After on
//! join, poll and enroll while everyone else is served as usual. Anonymous
//! traffic meets a per-address ceiling; traffic with a valid credential a
//! per-student budget.

use crate::helpers::*;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Duration;
use waitroom::PassClaims;

/// Sends `send` until it is answered 429 (at most `tries` times) and
/// returns that answer.
async fn until_limited<F, Fut>(tries: usize, mut send: F) -> reqwest::Response
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    for _ in 0..tries {
        let r = send().await.unwrap();
        if r.status() == 429 {
            return r;
        }
    }
    panic!("never limited in {tries} requests");
}

async fn assert_limited(r: reqwest::Response) {
    assert_eq!(r.status(), 429);
    let after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(after >= 1);
    assert_eq!(code(r).await, "rate_limited");
}

fn pass(app: &TestApp, round: enrollment::RoundId, student: enrollment::StudentId) -> String {
    let now = now_ms();
    app.keyring.sign_pass(&PassClaims {
        round,
        student,
        lease: uuid::Uuid::now_v7(),
        budget: 40,
        iat: now,
        exp: now + 60_000,
    })
}

#[tokio::test]
async fn a_flooding_address_is_slowed_while_others_are_served() {
    let app = TestApp::spawn(|c| {
        c.ip_rate = 1;
        c.ip_burst = 5;
    })
    .await;
    let round = app.round("paused", 6000).await;
    let flooder_id = app.student("20260501", 1).await;
    let other = app.student("20260502", 1).await;
    // Another loopback address: a different client IP to the gateway.
    let flooder = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let join_url = app.url(&format!("/api/rounds/{round}/join"));
    let first: Value = flooder
        .post(&join_url)
        .json(&json!({ "student_number": "20260501", "password": "pw" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = first["token"].as_str().unwrap().to_string();

    let r = until_limited(50, || {
        flooder
            .post(&join_url)
            .json(&json!({ "student_number": "20260501", "password": "pw" }))
            .send()
    })
    .await;
    assert_limited(r).await;
    // Forged tokens and passes are anonymous traffic: the address ceiling
    // applies to them too.
    let r = until_limited(50, || {
        flooder
            .get(app.url("/api/queue/status"))
            .header("x-queue-token", format!("{token}x"))
            .send()
    })
    .await;
    assert_limited(r).await;
    let forged_pass = format!("{}x", pass(&app, round, flooder_id));
    let r = until_limited(50, || {
        flooder
            .post(app.url("/api/enroll"))
            .header("x-pass", &forged_pass)
            .json(&json!({ "sections": [1] }))
            .send()
    })
    .await;
    assert_limited(r).await;
    // Traffic with a valid token is not limited by address (a campus
    // shares one): it meets the per-student budget instead.
    let r = flooder
        .get(app.url("/api/queue/status"))
        .header("x-queue-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Meanwhile another client joins, polls and enrolls as usual.
    let joined = app.join(round, "20260502").await;
    assert_eq!(joined.status(), 200);
    let joined: Value = joined.json().await.unwrap();
    let s = app.status(joined["token"].as_str().unwrap()).await;
    assert_eq!(s["position"], 2, "{s}");
    let r = app
        .enroll(Some(&pass(&app, round, other)), json!({ "sections": [1] }))
        .await;
    assert_eq!(r.status(), 202);
    app.finish().await;
}

#[tokio::test]
async fn a_flooding_student_is_slowed_while_others_are_served() {
    let app = TestApp::spawn(|c| {
        c.student_rate = 1;
        c.student_burst = 3;
    })
    .await;
    let round = app.round("paused", 6000).await;
    let flooder = app.student("20260601", 1).await;
    let other = app.student("20260602", 1).await;
    let token = |v: Value| v["token"].as_str().unwrap().to_string();
    let flooder_token = token(app.join(round, "20260601").await.json().await.unwrap());
    let other_token = token(app.join(round, "20260602").await.json().await.unwrap());

    let r = until_limited(50, || {
        app.get("/api/queue/status")
            .header("x-queue-token", &flooder_token)
            .send()
    })
    .await;
    assert_limited(r).await;
    // The same student is slowed on every route, whatever the credential.
    // A token refills each second, so one of these may still get through on
    // a slow machine; a handful of tries must meet the limit.
    let r = until_limited(5, || async { Ok(app.join(round, "20260601").await) }).await;
    assert_limited(r).await;
    let flooder_pass = pass(&app, round, flooder);
    let r = until_limited(5, || async {
        Ok(app
            .enroll(Some(&flooder_pass), json!({ "sections": [1] }))
            .await)
    })
    .await;
    assert_limited(r).await;

    // The other student, from the same address, is not.
    let s = app.status(&other_token).await;
    assert_eq!(s["state"], "paused", "{s}");
    let r = app
        .enroll(Some(&pass(&app, round, other)), json!({ "sections": [1] }))
        .await;
    assert_eq!(r.status(), 202);
    app.finish().await;
}

/// Past `SLUICE_MAX_IN_FLIGHT` requests under way, the gateway sheds at
/// once (503, a retry time, the JSON error), the status poll's own path
/// included, and a shed poll costs nobody their place: a student whose
/// every poll is shed for longer than the grace period is still seen, so
/// when their turn comes they are admitted, not skipped as gone.
#[tokio::test]
async fn past_the_in_flight_bound_requests_are_shed_and_places_kept() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn(|c| {
        c.max_in_flight = 1;
        c.grace_secs = 3;
        c.liveness_flush_ms = 100;
    })
    .await;
    let round = app.round("open", 0).await;
    app.student("20269001", 1).await;
    let r = app.join(round, "20269001").await;
    assert_eq!(r.status(), 200);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let before = app.status(&token).await;
    assert_eq!(before["state"], "waiting");

    // A join whose body never finishes holds the one place.
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /api/rounds/{round}/join HTTP/1.1\r\nhost: x\r\n\
             content-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let poll = || {
        app.get("/api/queue/status")
            .header("x-queue-token", token.as_str())
            .send()
    };
    let mut shed = None;
    for _ in 0..50 {
        let r = poll().await.unwrap();
        if r.status() == 503 {
            shed = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shed = shed.expect("a poll past the bound is shed");
    assert!(shed.headers().contains_key("retry-after"));
    let body: Value = shed.json().await.unwrap();
    assert_eq!(body["code"], "overloaded", "a JSON error: {body}");
    assert!(body["message"].is_string(), "a JSON error: {body}");
    // Routed requests too.
    let r = app
        .get(&format!("/api/rounds/{round}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);

    // Every poll shed for twice the grace, with the round running; then
    // admission starts (straight in MySQL: the admin API is shed too) while
    // the polls are still shed.
    let shed_for = |d: Duration| async move {
        let until = tokio::time::Instant::now() + d;
        while tokio::time::Instant::now() < until {
            assert_eq!(poll().await.unwrap().status(), 503, "still held");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    shed_for(Duration::from_secs(6)).await;
    sqlx::query("UPDATE rounds SET admission_per_min = 6000 WHERE id = ?")
        .bind(round.0)
        .execute(&app.pool)
        .await
        .unwrap();
    shed_for(Duration::from_secs(3)).await;

    drop(slow);
    let mut after = None;
    for _ in 0..100 {
        let r = poll().await.unwrap();
        if r.status() == 200 {
            after = Some(r.json::<Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = after.expect("served again once the slow request ended");
    // Admitted in turn, not skipped (nor skipped and given back).
    assert_eq!(after["state"], "admitted", "{after}");
    let state: String = sqlx::query_scalar("SELECT state FROM tickets WHERE round_id = ?")
        .bind(round.0)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(state, "admitted");
    app.finish().await;
}
