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
