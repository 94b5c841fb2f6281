//! The cart sent at admission and the seat-aware queue, through the real
//! gateway and MariaDB: an opted-in student's cart becomes one command
//! (one id, however many times it is tried) the moment they are admitted;
//! an opt-in outlives a broker outage; the queue shows the cart's seats
//! and warns when a section fills; an enroll carries its alternates.

use crate::helpers::*;
use enrollment::{Action, SectionId};
use serde_json::{json, Value};
use std::time::Duration;

async fn joined(app: &TestApp, round: enrollment::RoundId, number: &str) -> String {
    let r = app.join(round, number).await;
    assert_eq!(r.status(), 200);
    let s: Value = r.json().await.unwrap();
    s["token"].as_str().unwrap().to_string()
}

async fn cart_item(app: &TestApp, student: enrollment::StudentId, section: u32, alternates: &str) {
    sqlx::query("INSERT INTO cart_items (student_id, section_id, alternates) VALUES (?, ?, ?)")
        .bind(student.0)
        .bind(section)
        .bind(alternates)
        .execute(&app.pool)
        .await
        .unwrap();
}

async fn opt_in(app: &TestApp, token: &str) -> Value {
    let r = app
        .client
        .put(app.url("/api/queue/auto-send"))
        .header("x-queue-token", token)
        .json(&json!({ "on": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn queue_cart(app: &TestApp, token: &str) -> Value {
    let r = app
        .get("/api/queue/cart")
        .header("x-queue-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn auto_send_row(
    app: &TestApp,
    student: enrollment::StudentId,
) -> (String, Option<uuid::Uuid>) {
    sqlx::query_as("SELECT state, command_id FROM auto_sends WHERE student_id = ?")
        .bind(student.0)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Distinct command ids the gateway sent for `student`.
fn ids_sent(app: &TestApp, student: enrollment::StudentId) -> Vec<enrollment::CommandId> {
    let mut ids: Vec<_> = app
        .sink
        .sent()
        .iter()
        .filter(|c| c.student == student)
        .map(|c| c.id)
        .collect();
    ids.sort_unstable_by_key(|i| i.0);
    ids.dedup();
    ids
}

/// Waits until no send has reached the broker for a second (at most 30 s:
/// sends that never stop are a failure of their own).
async fn settled(app: &TestApp) {
    let quiet = async {
        let mut last = app.sink.sent().len();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = app.sink.sent().len();
            if now == last {
                return;
            }
            last = now;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), quiet)
        .await
        .expect("the sends settle: the same cart kept being sent");
}

#[tokio::test]
async fn an_opted_in_cart_is_sent_as_one_command_at_admission() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 0).await;
    let st = app.student("20260001", 1).await;
    let a01 = app.db.section("AUTO100", 1, 30).await;
    let a02 = app.db.section("AUTO100", 2, 30).await;
    let b01 = app.db.section("AUTO200", 1, 30).await;
    cart_item(&app, st, a01, &a02.to_string()).await;
    cart_item(&app, st, b01, "").await;
    let token = joined(&app, round, "20260001").await;
    let opted = opt_in(&app, &token).await;
    assert_eq!(opted["on"], true);
    assert_eq!(opted["state"], "waiting");
    assert!(app.sink.sent().is_empty(), "nothing is sent while waiting");

    app.admin(round, json!({ "admission_per_min": 6000 })).await;
    let s = app.poll_until(&token, |s| s["state"] == "admitted").await;
    let id = s["auto_send"]["command_id"]
        .as_str()
        .expect("the command to follow")
        .to_string();
    assert_eq!(s["auto_send"]["status_url"], format!("/api/commands/{id}"));

    // The leader's task or this poll sends it; either way one id.
    wait_until(Duration::from_secs(10), || async {
        auto_send_row(&app, st).await.0 == "sent"
    })
    .await;
    let (_, stored) = auto_send_row(&app, st).await;
    assert_eq!(stored.map(|u| u.to_string()), Some(id.clone()));
    let ids = ids_sent(&app, st);
    assert_eq!(ids.len(), 1, "one command id: {ids:?}");
    assert_eq!(ids[0].to_string(), id);
    let cmd = app
        .sink
        .sent()
        .into_iter()
        .find(|c| c.student == st)
        .unwrap();
    let Action::Enroll {
        sections, options, ..
    } = &cmd.action
    else {
        panic!("an enroll: {cmd:?}");
    };
    assert_eq!(sections, &vec![SectionId(a01), SectionId(b01)]);
    assert_eq!(options[0].alternates, vec![SectionId(a02)]);
    assert!(options[1].alternates.is_empty());

    // A sender that dies between the confirm and its record: the opt-in
    // reads as not sent, every sender tries again, and polls ask again.
    // A try already under way when the record is wiped (the leader's and
    // a poll's may both have started) may still write its own copy of the
    // same id over the wipe without sending; then the wipe is made again
    // once the sends have settled.
    let mut resent = false;
    for _ in 0..5 {
        settled(&app).await;
        sqlx::query("UPDATE auto_sends SET state = 'waiting', command_id = NULL")
            .execute(&app.pool)
            .await
            .unwrap();
        let before = app.sink.sent().len();
        for _ in 0..3 {
            let again = app.status(&token).await;
            assert_eq!(again["auto_send"]["command_id"].as_str(), Some(id.as_str()));
        }
        wait_until(Duration::from_secs(10), || async {
            auto_send_row(&app, st).await.0 == "sent"
        })
        .await;
        if app.sink.sent().len() > before {
            resent = true;
            break;
        }
    }
    assert!(resent, "sent again");
    assert_eq!(ids_sent(&app, st).len(), 1, "still one command id");
    app.finish().await;
}

#[tokio::test]
async fn an_opt_in_outlives_a_broker_outage() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 0).await;
    let st = app.student("20260002", 1).await;
    let s01 = app.db.section("AUTO300", 1, 30).await;
    cart_item(&app, st, s01, "").await;
    let token = joined(&app, round, "20260002").await;
    opt_in(&app, &token).await;
    app.sink.fail(true);
    app.admin(round, json!({ "admission_per_min": 6000 })).await;
    app.poll_until(&token, |s| s["state"] == "admitted").await;
    // Several tries fail; the opt-in waits.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(auto_send_row(&app, st).await.0, "waiting");
    assert!(app.sink.sent().is_empty());
    app.sink.fail(false);
    wait_until(Duration::from_secs(10), || async {
        auto_send_row(&app, st).await.0 == "sent"
    })
    .await;
    assert_eq!(ids_sent(&app, st).len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn the_queue_shows_the_carts_seats_and_warns_when_one_fills() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 0).await;
    let st = app.student("20260003", 1).await;
    let s01 = app.db.section("SEAT100", 1, 2).await;
    let s02 = app.db.section("SEAT100", 2, 5).await;
    let s03 = app.db.section("SEAT100", 3, 1).await;
    cart_item(&app, st, s01, &s03.to_string()).await;
    let token = joined(&app, round, "20260003").await;
    wait_until(Duration::from_secs(10), || async {
        queue_cart(&app, &token).await["items"][0]["capacity"] == 2
    })
    .await;
    let c = queue_cart(&app, &token).await;
    assert_eq!(c["items"][0]["section"], s01);
    assert_eq!(c["items"][0]["left"], 2);
    assert_eq!(c["items"][0]["full"], false);
    assert_eq!(c["items"][0]["alternates"][0]["section"], s03);
    assert_eq!(c["filled"], json!([]));
    assert_eq!(c["auto_send"]["on"], false);

    // 01 fills (and two students wait for it); 03 is full too.
    sqlx::query("UPDATE sections SET enrolled = capacity WHERE id IN (?, ?)")
        .bind(s01)
        .bind(s03)
        .execute(&app.pool)
        .await
        .unwrap();
    wait_until(Duration::from_secs(10), || async {
        queue_cart(&app, &token).await["filled"] == json!([s01])
    })
    .await;
    let c = queue_cart(&app, &token).await;
    assert_eq!(c["items"][0]["full"], true);
    let open: Vec<u64> = c["items"][0]["open_elsewhere"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["section"].as_u64().unwrap())
        .collect();
    assert_eq!(open, vec![u64::from(s02)]);

    // The queue page warns, naming 02.
    let page = app
        .get(&format!("/rounds/{round}"))
        .header("x-queue-token", &token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("data-filled-section=\"{s01}\"")),
        "{page}"
    );
    assert!(page.contains("SEAT100-02"), "{page}");
    assert!(
        page.contains("/rounds/") && page.contains("auto-send"),
        "the opt-in form"
    );
    app.finish().await;
}

#[tokio::test]
async fn the_status_poll_reads_no_cart_for_those_who_did_not_ask() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 0).await;
    app.student("20260004", 1).await;
    let token = joined(&app, round, "20260004").await;
    let s = app.status(&token).await;
    assert!(s.get("auto_send").is_none(), "{s}");
    // Without a token the cart is nobody's.
    let r = app.get("/api/queue/cart").send().await.unwrap();
    assert_eq!(r.status(), 401);
    app.finish().await;
}

#[tokio::test]
async fn an_enroll_carries_its_alternates_and_bad_ones_are_refused() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 0).await;
    app.student("20260005", 1).await;
    let s01 = app.db.section("ALTS100", 1, 30).await;
    let s02 = app.db.section("ALTS100", 2, 30).await;
    let token = joined(&app, round, "20260005").await;
    app.admin(round, json!({ "admission_per_min": 6000 })).await;
    let s = app.poll_until(&token, |s| s["state"] == "admitted").await;
    let pass = s["pass"].as_str().unwrap();
    let r = app
        .enroll(
            Some(pass),
            json!({ "sections": [s01], "options": [{ "alternates": [s02] }] }),
        )
        .await;
    assert_eq!(r.status(), 202);
    let sent = app.sink.sent();
    let Action::Enroll { options, .. } = &sent.last().unwrap().action else {
        panic!("an enroll");
    };
    assert_eq!(options[0].alternates, vec![SectionId(s02)]);
    // The same section as first choice and alternate: refused, not sent.
    let r = app
        .enroll(
            Some(pass),
            json!({ "sections": [s01], "options": [{ "alternates": [s01] }] }),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(app.sink.sent().len(), sent.len());
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_filled_through_the_api_is_sent_at_admission_and_decided_by_a_real_worker() {
    let app = TestApp::spawn_with_broker(|_| {}).await;
    let worker = app.start_worker("auto-send-worker", |_| {}).await;
    let round = app.round("open", 0).await;
    let a01 = app.db.section("AUTO300", 1, 1).await;
    let a02 = app.db.section("AUTO300", 2, 5).await;
    let b01 = app.db.section("AUTO400", 1, 1).await;
    app.student("20261001", 1).await;
    let me = app.student("20261002", 1).await;

    // Someone already holds the one seat of A-01 and of B-01.
    app.admin(round, json!({ "admission_per_min": 6000 })).await;
    let holder = joined(&app, round, "20261001").await;
    let s = app.poll_until(&holder, |s| s["state"] == "admitted").await;
    let pass = s["pass"].as_str().unwrap().to_string();
    let r = app
        .enroll(Some(&pass), json!({ "sections": [a01, b01] }))
        .await;
    assert_eq!(r.status(), 202);
    wait_until(Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM enrollments")
            .fetch_one(&app.pool)
            .await
            .unwrap()
            == 2
    })
    .await;
    app.admin(round, json!({ "admission_per_min": 0 })).await;

    // The cart, filled as an app does: A-01 with A-02 as its alternate,
    // B-01 with a waitlist place if full.
    let (c, csrf) = app
        .sign_in(
            reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            json!({ "student_number": "20261002", "password": "pw" }),
        )
        .await;
    for body in [
        json!({ "section": a01 }),
        json!({ "section": b01, "waitlist": true }),
    ] {
        let r = c
            .post(app.url("/api/cart"))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = c
        .put(app.url("/api/cart/alternates"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "section": a01, "alternates": [a02] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let token = joined(&app, round, "20261002").await;
    assert_eq!(opt_in(&app, &token).await["state"], "waiting");
    app.admin(round, json!({ "admission_per_min": 6000 })).await;
    let s = app.poll_until(&token, |s| s["state"] == "admitted").await;
    let pass = s["pass"].as_str().unwrap().to_string();
    let url = s["auto_send"]["status_url"]
        .as_str()
        .expect("the command sent at admission")
        .to_string();
    // No click: the outcome arrives on its own.
    let id = url.trim_start_matches("/api/commands/");
    let items = app.decided_items(&pass, id).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0]["section"], a02, "the alternate: {items:?}");
    assert_eq!(items[0]["outcome"], "enrolled");
    assert_eq!(items[0]["choice"], 1);
    assert_eq!(items[1]["section"], b01);
    assert_eq!(items[1]["outcome"], "waitlisted", "{items:?}");
    let held: Vec<u32> =
        sqlx::query_scalar("SELECT section_id FROM enrollments WHERE student_id = ?")
            .bind(me.0)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(held, vec![a02]);
    assert_eq!(auto_send_row(&app, me).await.0, "sent");
    let report = worker::invariants::check(&app.pool).await.unwrap();
    assert!(report.holds(), "{report:?}");
    worker.stop().await;
    app.finish().await;
}

#[tokio::test]
async fn an_opted_in_empty_cart_names_no_command_once_found_empty() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 0).await;
    let st = app.student("20261101", 1).await;
    let token = joined(&app, round, "20261101").await;
    assert_eq!(opt_in(&app, &token).await["state"], "waiting");
    app.admin(round, json!({ "admission_per_min": 6000 })).await;
    app.poll_until(&token, |s| s["state"] == "admitted").await;
    wait_until(Duration::from_secs(10), || async {
        auto_send_row(&app, st).await.0 == "empty"
    })
    .await;
    // Nothing was sent: a client told to follow a command would wait for
    // an outcome that never comes. It is told nothing, and enrolls itself.
    wait_until(Duration::from_secs(5), || async {
        app.status(&token).await["auto_send"].is_null()
    })
    .await;
    assert!(app.sink.sent().is_empty());
    let cart = queue_cart(&app, &token).await;
    assert_eq!(cart["auto_send"]["state"], "empty", "{cart}");
    app.finish().await;
}
