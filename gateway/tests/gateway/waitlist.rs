//! The waitlist through the gateway and a real worker: a cart item's
//! waitlist choice, the student's place in line (their own only), the
//! registrar's view of the line, a capacity raise on the registrar's page
//! that promotes the head of the line with no student acting, and leaving.

use crate::helpers::*;
use reqwest::redirect::Policy;
use reqwest::Client;
use serde_json::{json, Value};
use std::time::Duration;

fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs the registrar in through the login form; returns the CSRF value.
async fn registrar(app: &TestApp, c: &Client) -> String {
    let form = c.get(app.url("/login")).fetch_text().await;
    let csrf = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string();
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("kind", "staff"),
            ("name", "registrar"),
            ("password", "admin-pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let info: Value = c
        .get(app.url("/api/session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    info["csrf"].as_str().unwrap().to_string()
}

/// Joins, waits for admission, returns the pass.
async fn admitted(app: &TestApp, round: enrollment::RoundId, number: &str) -> String {
    let joined: Value = app.join(round, number).await.json().await.unwrap();
    let token = joined["token"].as_str().unwrap().to_string();
    let status = app.poll_until(&token, |s| s["state"] == "admitted").await;
    status["pass"].as_str().unwrap().to_string()
}

/// The decided items of a command, once decided.
async fn decided(app: &TestApp, pass: &str, accepted: reqwest::Response) -> Vec<Value> {
    assert_eq!(accepted.status(), 202);
    let body: Value = accepted.json().await.unwrap();
    app.decided_items(pass, body["command_id"].as_str().unwrap())
        .await
}

async fn places(app: &TestApp, pass: &str) -> Value {
    let r = app
        .get("/api/waitlist")
        .header("x-pass", pass)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["places"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waitlist_joined_seen_promoted_by_a_capacity_raise_and_left() {
    let app = TestApp::spawn_with_broker(|_| {}).await;
    let worker = app
        .start_worker("waitlist-worker", |c| c.fill_interval_ms = 100)
        .await;

    let round = app.round("open", 6000).await;
    let section = app.db.section("WLG101", 1, 1).await;
    let other = app.db.section("WLG102", 1, 1).await;
    for n in ["20268001", "20268002", "20268003", "20268004"] {
        app.student(n, 1).await;
    }
    let holder = admitted(&app, round, "20268001").await;
    let (first, second) = (
        admitted(&app, round, "20268002").await,
        admitted(&app, round, "20268003").await,
    );
    let stranger = admitted(&app, round, "20268004").await;

    let items = decided(
        &app,
        &holder,
        app.enroll(Some(&holder), json!({"sections": [section, other]}))
            .await,
    )
    .await;
    assert_eq!(items[0]["outcome"], "enrolled");
    // Per item: the first asks for the waitlist, the second does not.
    for pass in [&first, &second] {
        let items = decided(
            &app,
            pass,
            app.enroll(
                Some(pass),
                json!({"sections": [section, other], "options": [{"waitlist": true}, {}]}),
            )
            .await,
        )
        .await;
        assert_eq!(items[0]["outcome"], "waitlisted", "{items:?}");
        assert_eq!(items[1]["outcome"], "rejected", "{items:?}");
        assert_eq!(items[1]["reason"], "full", "{items:?}");
    }

    // Each student sees their own place, and only their own.
    let mine = places(&app, &first).await;
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine[0]["section"], section);
    assert_eq!(mine[0]["course_code"], "WLG101");
    assert_eq!(
        (mine[0]["position"].clone(), mine[0]["waiting"].clone()),
        (json!(1), json!(2))
    );
    let theirs = places(&app, &second).await;
    assert_eq!(
        (theirs[0]["position"].clone(), theirs[0]["waiting"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(places(&app, &stranger).await, json!([]));
    let r = app.get("/api/waitlist").send().await.unwrap();
    assert_eq!(r.status(), 401, "no credential, no places");

    // The registrar sees the line in order.
    let admin = browser();
    let csrf = registrar(&app, &admin).await;
    let course: u32 = sqlx::query_scalar("SELECT course_id FROM sections WHERE id = ?")
        .bind(section)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let page = admin
        .get(app.url(&format!("/admin/courses/{course}?lang=en")))
        .fetch_text()
        .await;
    let line = page
        .split(&format!("id=\"waitlist-{section}\""))
        .nth(1)
        .expect("the section's waitlist on the course page");
    let (a, b) = (
        line.find("20268002").expect("first in line listed"),
        line.find("20268003").expect("second in line listed"),
    );
    assert!(a < b, "the line in order");
    assert!(line.contains("waiting 2"), "counts shown");

    // The registrar raises the capacity; nobody else acts.
    let r = admin
        .post(app.url(&format!("/admin/sections/{section}")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("capacity", "2"),
            ("instructor", ""),
            ("room", ""),
            ("meetings", ""),
            ("op", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let first_id: u32 = sqlx::query_scalar("SELECT id FROM students WHERE number = '20268002'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    wait_until(Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM command_outcomes WHERE student_id = ? AND section_id = ? \
             AND outcome = 'promoted'",
        )
        .bind(first_id)
        .bind(section)
        .fetch_one(&app.pool)
        .await
        .unwrap()
            == 1
    })
    .await;
    assert_eq!(places(&app, &first).await, json!([]));
    let theirs = places(&app, &second).await;
    assert_eq!(
        (theirs[0]["position"].clone(), theirs[0]["waiting"].clone()),
        (json!(1), json!(1))
    );

    // Leaving: once, then refused.
    for expected in ["left_waitlist", "rejected"] {
        let r = app
            .client
            .post(app.url("/api/waitlist/leave"))
            .header("x-pass", &second)
            .json(&json!({"section": section}))
            .send()
            .await
            .unwrap();
        let items = decided(&app, &second, r).await;
        assert_eq!(items[0]["outcome"], expected, "{items:?}");
        assert_eq!(items[0]["action"], "leave_waitlist");
    }
    assert_eq!(places(&app, &second).await, json!([]));

    let report = worker::invariants::check(&app.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
    worker.stop().await;
    app.finish().await;
}
