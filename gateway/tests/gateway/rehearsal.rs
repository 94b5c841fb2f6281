//! Rehearsal runs: the gateway registers a run only against a round marked
//! as a rehearsal (and within bounds), stores its report once, and the ops
//! panel lists it; the flag is set through the admin API and the round's
//! page, audited.

use crate::helpers::*;
use crate::web_pages::{browser, csrf_field, sign_in};
use serde_json::{json, Value};

async fn register(app: &TestApp, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/admin/rehearsals"))
        .basic_auth("registrar", Some("admin-pw"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn audit(app: &TestApp, action: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = ?")
        .bind(action)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_run_against_a_round_not_marked_as_a_rehearsal_is_refused() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 600).await;
    let run = json!({ "round": round.0, "students": 100, "duration_s": 60 });

    let r = register(&app, run.clone()).await;
    assert_eq!(r.status(), 409);
    assert_eq!(code(r).await, "not_rehearsal");
    let runs = "SELECT COUNT(*) FROM rehearsal_runs";
    assert_eq!(app.db.count(runs).await, 0, "nothing recorded");

    // Marked through the admin API (audited), the same run is registered.
    let marked = app.admin(round, json!({ "rehearsal": true })).await;
    assert_eq!(marked["rehearsal"], true, "{marked}");
    assert_eq!(audit(&app, "rehearsal").await, 1);
    let r = register(&app, run.clone()).await;
    assert_eq!(r.status(), 201);
    assert_eq!(app.db.count(runs).await, 1);
    assert_eq!(audit(&app, "rehearsal_run").await, 1);

    // Out of bounds, an unknown round, no credentials: refused.
    for (body, status) in [
        (
            json!({ "round": round.0, "students": 5_001, "duration_s": 60 }),
            400,
        ),
        (
            json!({ "round": round.0, "students": 100, "duration_s": 601 }),
            400,
        ),
        (
            json!({ "round": round.0, "students": 0, "duration_s": 60 }),
            400,
        ),
        (
            json!({ "round": 999_999, "students": 100, "duration_s": 60 }),
            404,
        ),
    ] {
        assert_eq!(
            register(&app, body.clone()).await.status(),
            status,
            "{body}"
        );
    }
    let r = app
        .client
        .post(app.url("/api/admin/rehearsals"))
        .json(&run)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Unmarked again: refused again.
    let unmarked = app.admin(round, json!({ "rehearsal": false })).await;
    assert_eq!(unmarked["rehearsal"], false);
    assert_eq!(register(&app, run).await.status(), 409);
    assert_eq!(app.db.count(runs).await, 1);
    assert_eq!(audit(&app, "rehearsal").await, 2);
    app.finish().await;
}

#[tokio::test]
async fn a_rehearsal_report_is_stored_once_and_listed_on_the_ops_panel() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 600).await;

    // The registrar marks the round on its page.
    let registrar = browser();
    sign_in(&app, &registrar, "registrar", "admin-pw", true).await;
    let page = registrar
        .get(app.url(&format!("/admin/rounds/{round}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let action = format!("action=\"/admin/rounds/{round}/rehearsal\"");
    assert!(page.contains(&action), "the flag's form");
    let r = registrar
        .post(app.url(&format!("/admin/rounds/{round}/rehearsal")))
        .form(&[("csrf", csrf_field(&page).as_str()), ("rehearsal", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(audit(&app, "rehearsal").await, 1);
    // Without the CSRF value nothing changes.
    let r = registrar
        .post(app.url(&format!("/admin/rounds/{round}/rehearsal")))
        .form(&[("csrf", "wrong"), ("rehearsal", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = register(
        &app,
        json!({ "round": round.0, "students": 40, "duration_s": 90 }),
    )
    .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_u64().unwrap();

    let panel = |c: &reqwest::Client, path: String| {
        let c = c.clone();
        let url = app.url(&path);
        async move { c.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let before = panel(&registrar, "/admin/rehearsals".into()).await;
    assert!(
        before.contains(&format!("data-run=\"{id}\"")),
        "listed while running"
    );
    assert!(before.contains("tag warn"), "no report yet");

    let report = json!({
        "summary": { "joined": 40, "admitted": 38, "accepted_commands": 35, "http_5xx": 0,
                     "join_p99_ms": 41.0, "decision_p99_ms": 230.0, "duration_s": 75.5 },
        "report": { "mode": "remote", "students": 40, "outcomes": { "enrolled": 90 } },
    });
    let send = || async {
        app.client
            .post(app.url(&format!("/api/admin/rehearsals/{id}/report")))
            .basic_auth("registrar", Some("admin-pw"))
            .json(&report)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(send().await, 204);
    assert_eq!(send().await, 409, "stored once");

    let after = panel(&registrar, "/admin/rehearsals".into()).await;
    for shown in ["38/40", " 35 ", "230 ms", "41 ms", "Test round"] {
        assert!(after.contains(shown), "panel shows {shown}");
    }
    let one = panel(&registrar, format!("/admin/rehearsals/{id}")).await;
    let shown = one.replace("&#34;", "\"").replace("&quot;", "\"");
    assert!(shown.contains("\"enrolled\": 90"), "{one}");

    // Any admin may look, students may not.
    sqlx::query("INSERT INTO admins (username, display_name, role, password_hash) VALUES ('ops', 'Ops', 'ops', ?)")
        .bind(hash("admin-pw"))
        .execute(&app.pool)
        .await
        .unwrap();
    let ops = browser();
    sign_in(&app, &ops, "ops", "admin-pw", true).await;
    assert!(panel(&ops, "/admin/rehearsals".into())
        .await
        .contains(&format!("data-run=\"{id}\"")));
    app.student("20268001", 1).await;
    let student = browser();
    sign_in(&app, &student, "20268001", "pw", false).await;
    let r = student
        .get(app.url("/admin/rehearsals"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    app.finish().await;
}
