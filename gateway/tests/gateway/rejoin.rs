//! Joining again after leaving (or being skipped, or the pass expiring)
//! starts a new place at the back, and the old ticket's history is kept in
//! the audit log rather than silently deleted.

use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn rejoining_after_leaving_keeps_the_old_ticket_in_the_audit_log() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("paused", 6000).await;
    let student = app.student("20260801", 1).await;
    app.student("20260802", 1).await;
    let first: Value = app.join(round, "20260801").await.json().await.unwrap();
    let old = app
        .keyring
        .verify_queue(first["token"].as_str().unwrap(), now_ms())
        .unwrap();
    app.join(round, "20260802").await;
    let left = app
        .client
        .post(app.url("/api/queue/leave"))
        .header("x-queue-token", first["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(left.status(), 200);

    let again: Value = app.join(round, "20260801").await.json().await.unwrap();
    let new = app
        .keyring
        .verify_queue(again["token"].as_str().unwrap(), now_ms())
        .unwrap();
    assert_ne!(new.seq, old.seq);
    assert_eq!(new.order_key, Some(3), "a new place at the back: {again}");

    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT actor, subject, detail FROM audit_log WHERE action = 'ticket.replaced'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    let (actor, subject, detail) = &rows[0];
    assert_eq!(actor, "waitroom");
    assert_eq!(subject, &format!("round:{round}"));
    let detail: Value = serde_json::from_str(detail).unwrap();
    assert_eq!(detail["seq"], old.seq);
    assert_eq!(detail["student_id"], student.0);
    assert_eq!(detail["state"], "left");
    assert_eq!(detail["order_key"], 1);
    assert!(detail["joined_at"].as_str().unwrap().ends_with('Z'));
    app.finish().await;
}

/// A student already admitted who joins again (a second device, a new
/// browser, an app after the page) keeps the admission and gets a token
/// to poll with, not an answer the next poll refuses.
#[tokio::test]
async fn joining_again_once_admitted_keeps_the_admission_and_can_poll() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 6000).await;
    let student = app.student("20260811", 1).await;
    let first: Value = app.join(round, "20260811").await.json().await.unwrap();
    let admitted = app
        .poll_until(first["token"].as_str().unwrap(), |s| {
            s["state"] == "admitted"
        })
        .await;

    let again = app.join(round, "20260811").await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["state"], "admitted", "{again}");
    let token = again["token"]
        .as_str()
        .unwrap_or_else(|| panic!("an admitted join must carry a token to poll with: {again}"));
    let polled = app.status(token).await;
    assert_eq!(polled["state"], "admitted", "{polled}");
    let lease = |s: &Value| {
        app.keyring
            .verify_pass(s["pass"].as_str().unwrap(), student, round, now_ms())
            .unwrap()
            .lease
    };
    assert_eq!(
        lease(&polled),
        lease(&admitted),
        "the same admission, not a new one"
    );
    app.finish().await;
}
