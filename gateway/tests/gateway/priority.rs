//! Priority inside a round on the real stack (MariaDB, RabbitMQ): classes
//! of students admitted in order or by weight, each class's line still in
//! click order, estimates from each student's own line.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

async fn post(app: &TestApp, round: enrollment::RoundId, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/admin/rounds/{round}")))
        .basic_auth("registrar", Some("admin-pw"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Joins `number` and returns the queue token.
async fn join_token(app: &TestApp, round: enrollment::RoundId, number: &str) -> String {
    let r = app.join(round, number).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

/// `(class_year, seq)` of the round's admitted tickets in admission order.
async fn admissions(app: &TestApp, round: enrollment::RoundId) -> Vec<(u8, u64)> {
    sqlx::query_as::<_, (u8, u64)>(
        "SELECT s.class_year, t.seq FROM tickets t JOIN students s ON s.id = t.student_id \
         WHERE t.round_id = ? AND t.state = 'admitted' ORDER BY t.admitted_at, t.order_key",
    )
    .bind(round.0)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn admitted_count(app: &TestApp, round: enrollment::RoundId, n: usize) {
    wait_until(Duration::from_secs(40), || async {
        admissions(app, round).await.len() >= n
    })
    .await;
}

#[tokio::test]
async fn seniors_first_admits_every_senior_before_a_junior_who_clicked_earlier() {
    let app = TestApp::spawn_with_broker(|_| {}).await;
    let round = app.round("prequeue", 60).await;

    // Bad policies: a 400 that says what is wrong, in both languages.
    for (body, says) in [
        (
            json!({ "priority": { "mode": "strict", "groups": [{ "years": [4] }, { "years": [3, 4] }] } }),
            "more than one group",
        ),
        (
            json!({ "priority": { "mode": "weighted", "groups": [{ "years": [4], "weight": 0 }] } }),
            "1 to 100",
        ),
        (
            json!({ "priority": { "mode": "strict", "groups": [{ "years": [9] }] } }),
            "between 1 and 8",
        ),
        (
            json!({ "priority": { "mode": "weighted", "groups": [{ "years": [4] }] } }),
            "needs a weight",
        ),
    ] {
        let r = post(&app, round, body).await;
        assert_eq!(r.status(), 400);
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{text}");
        assert!(text.contains("학년") || text.contains("가중치"), "{text}");
    }

    let v = app
        .admin(
            round,
            json!({ "priority": { "mode": "strict", "groups": [{ "years": [4] }, { "years": [1, 2, 3] }] } }),
        )
        .await;
    assert_eq!(v["priority"]["mode"], "strict", "{v}");
    assert_eq!(v["priority"]["spec"], "strict:4/1-3", "{v}");

    // Open with admission stopped, so everybody is in line before it runs.
    app.admin(round, json!({ "action": "open", "admission_per_min": 0 }))
        .await;
    // Once open the policy is fixed: the lines exist.
    let r = post(&app, round, json!({ "priority": { "mode": "none" } })).await;
    assert_eq!(r.status(), 409);

    app.student("20261001", 1).await;
    for i in 0..3 {
        app.student(&format!("2026400{i}"), 4).await;
    }
    app.student("20261002", 2).await;
    let junior = join_token(&app, round, "20261001").await;
    let mut seniors = Vec::new();
    for i in 0..3 {
        seniors.push(join_token(&app, round, &format!("2026400{i}")).await);
    }
    let junior2 = join_token(&app, round, "20261002").await;

    // Each student's place is in their own class's line; the juniors
    // also see the seniors who go first (once this gateway's snapshot has
    // every join).
    let s = app
        .poll_until(&junior, |s| s["priority"]["ahead_in_other_classes"] == 3)
        .await;
    assert_eq!(s["position"], 1, "{s}");
    assert_eq!(s["priority"]["lane"], 1, "{s}");
    assert_eq!(s["priority"]["mode"], "strict", "{s}");
    assert_eq!(s["priority"]["ahead_in_other_classes"], 3, "{s}");
    let s = app.status(&junior2).await;
    assert_eq!(s["position"], 2, "{s}");
    assert_eq!(s["priority"]["ahead_in_other_classes"], 3, "{s}");
    let s = app.status(&seniors[2]).await;
    assert_eq!(s["position"], 3, "{s}");
    assert_eq!(s["priority"]["lane"], 0, "{s}");
    assert_eq!(s["priority"]["ahead_in_other_classes"], 0, "{s}");
    // Operators see each class line's length.
    let lane_waiting = |text: &str, lane: &str| -> Option<f64> {
        text.lines()
            .filter(|l| l.starts_with("sluice_waitroom_lane_waiting{"))
            .filter(|l| l.contains(&format!("round=\"{round}\"")))
            .find(|l| l.contains(&format!("lane=\"{lane}\"")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    let text = app.get("/metrics").fetch_text().await;
    assert_eq!(lane_waiting(&text, "0"), Some(3.0), "{text}");
    assert_eq!(lane_waiting(&text, "1"), Some(2.0), "{text}");
    assert!(text.contains("years=\"4\""), "{text}");
    // The queue page says the round gives some classes an earlier turn.
    let html = app
        .get(&format!("/rounds/{round}"))
        .header("cookie", format!("sluice_queue={junior}"))
        .fetch_text()
        .await;
    assert!(html.contains("먼저 입장"), "{html}");

    app.admin(round, json!({ "admission_per_min": 60 })).await;
    // While seniors remain, the junior's estimate counts them: at most 60
    // a minute, at least 0.8 s per admission before the junior's.
    let s = app
        .poll_until(&junior2, |s| {
            !s["estimate"].is_null() || s["state"] == "admitted"
        })
        .await;
    if s["state"] == "waiting" {
        let before = s["ahead"].as_u64().unwrap()
            + s["priority"]["ahead_in_other_classes"].as_u64().unwrap();
        let min = s["estimate"]["min_secs"].as_u64().unwrap();
        assert!(min as f64 >= (0.8 * before as f64).floor(), "{s}");
    }
    admitted_count(&app, round, 5).await;
    let order = admissions(&app, round).await;
    let years: Vec<u8> = order.iter().map(|&(y, _)| y).collect();
    assert_eq!(years, [4, 4, 4, 1, 2], "{order:?}");
    // Inside each class, click order.
    let senior_seqs: Vec<u64> = order.iter().filter(|o| o.0 == 4).map(|o| o.1).collect();
    let mut sorted = senior_seqs.clone();
    sorted.sort_unstable();
    assert_eq!(senior_seqs, sorted);

    // Declared on the round and in the audit log.
    let spec: Option<String> = sqlx::query_scalar(
        "SELECT CAST(JSON_UNQUOTE(JSON_EXTRACT(detail, '$.priority')) AS CHAR) FROM audit_log \
         WHERE action = 'round.priority' AND actor = 'registrar'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(spec.as_deref(), Some("strict:4/1-3"));
    let v: Value = app
        .get(&format!("/api/admin/rounds/{round}"))
        .basic_auth("registrar", Some("admin-pw"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["priority"]["spec"], "strict:4/1-3", "{v}");
    app.finish().await;
}

#[tokio::test]
async fn weights_two_to_one_admit_in_that_proportion_each_class_in_click_order() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("prequeue", 60).await;
    app.admin(
        round,
        json!({ "priority": { "mode": "weighted",
            "groups": [{ "years": [4], "weight": 2 }, { "years": [1, 2, 3], "weight": 1 }] } }),
    )
    .await;
    app.admin(round, json!({ "action": "open", "admission_per_min": 0 }))
        .await;
    // Juniors click first, seniors after.
    let mut tokens = Vec::new();
    for i in 0..6 {
        app.student(&format!("2026110{i}"), 1).await;
        tokens.push(join_token(&app, round, &format!("2026110{i}")).await);
    }
    for i in 0..6 {
        app.student(&format!("2026410{i}"), 4).await;
        tokens.push(join_token(&app, round, &format!("2026410{i}")).await);
    }
    // The third junior: 2 ahead in the juniors' line, and the seniors get
    // two turns for each junior one: 4 of theirs come first.
    let s = app
        .poll_until(&tokens[2], |s| !s["priority"].is_null() && s["ahead"] == 2)
        .await;
    assert_eq!(s["position"], 3, "{s}");
    let s = app
        .poll_until(&tokens[2], |s| s["priority"]["ahead_in_other_classes"] != 0)
        .await;
    assert_eq!(s["priority"]["mode"], "weighted", "{s}");
    assert_eq!(s["priority"]["ahead_in_other_classes"], 4, "{s}");
    let s = app.status(&tokens[8]).await;
    assert_eq!(s["position"], 3, "{s}");
    assert_eq!(s["priority"]["ahead_in_other_classes"], 1, "{s}");

    app.admin(round, json!({ "admission_per_min": 600 })).await;
    admitted_count(&app, round, 12).await;
    let order = admissions(&app, round).await;
    let seniors_in_first_9 = order[..9].iter().filter(|o| o.0 == 4).count();
    assert!(
        (5..=7).contains(&seniors_in_first_9),
        "2:1 means about 6 of the first 9: {order:?}"
    );
    for year in [1u8, 4] {
        let seqs: Vec<u64> = order.iter().filter(|o| o.0 == year).map(|o| o.1).collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "year {year} in click order");
    }
    app.finish().await;
}

#[tokio::test]
async fn a_round_without_a_policy_keeps_its_keys_and_answers() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("paused", 600).await;
    let v: Value = app
        .get(&format!("/api/admin/rounds/{round}"))
        .basic_auth("registrar", Some("admin-pw"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["priority"].is_null(), "{v}");
    for i in 0..3 {
        app.student(&format!("2026120{i}"), 1 + i as u8).await;
    }
    let mut keys = Vec::new();
    for i in 0..3 {
        let t = join_token(&app, round, &format!("2026120{i}")).await;
        let s = app.status(&t).await;
        assert!(s.get("priority").is_none(), "{s}");
        assert_eq!(s["position"], i + 1, "{s}");
        keys.push(app.keyring.verify_queue(&t, now_ms()).unwrap().order_key);
    }
    assert_eq!(keys, [Some(1), Some(2), Some(3)]);
    app.finish().await;
}

#[tokio::test]
async fn the_round_page_sets_the_priority_and_the_fairness_report_shows_it_per_class() {
    use crate::web_pages::{browser, sign_in};
    let app = TestApp::spawn(|_| {}).await;
    // One a second: the two admissions fall in different ticks.
    let round = app.round("prequeue", 60).await;
    let c = browser();
    let csrf = sign_in(&app, &c, "registrar", "admin-pw", true).await;
    let page = c
        .get(app.url(&format!("/admin/rounds/{round}")))
        .fetch_text()
        .await;
    assert!(page.contains("name=\"priority_groups\""), "{page}");
    let control = app.url(&format!("/admin/rounds/{round}/control"));
    // No CSRF value: refused, nothing changed.
    let r = c
        .post(&control)
        .form(&[("priority_mode", "strict"), ("priority_groups", "4/1-3")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A bad weight: the page again, with the reason in both languages.
    let r = c
        .post(&control)
        .form(&[
            ("csrf", csrf.as_str()),
            ("priority_mode", "weighted"),
            ("priority_groups", "4=0/1-3=1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("1 to 100") && html.contains("가중치"),
        "{html}"
    );
    let r = c
        .post(&control)
        .form(&[
            ("csrf", csrf.as_str()),
            ("priority_mode", "strict"),
            ("priority_groups", "4 / 1,2,3"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let stored: Option<String> = sqlx::query_scalar("SELECT priority FROM rounds WHERE id = ?")
        .bind(round.0)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some("strict:4/1-3"));

    // A junior waits in the pre-queue, a senior too; at opening each
    // cohort is shuffled in its own line and the senior goes first.
    app.student("20261301", 1).await;
    app.student("20264301", 4).await;
    join_token(&app, round, "20261301").await;
    join_token(&app, round, "20264301").await;
    app.admin(round, json!({ "action": "open" })).await;
    admitted_count(&app, round, 2).await;
    let years: Vec<u8> = admissions(&app, round).await.iter().map(|a| a.0).collect();
    assert_eq!(years[0], 4, "{years:?}");
    // Once open the page shows the policy, fixed.
    let page = c
        .get(app.url(&format!("/admin/rounds/{round}")))
        .fetch_text()
        .await;
    assert!(!page.contains("name=\"priority_groups\""));
    assert!(page.contains("4/1-3"));
    // Each line the round takes, with its years; not years 5-8 (the
    // round is for years 1-4).
    assert!(page.contains("<td>1-3</td>"), "{page}");
    assert!(!page.contains("<td>5-8</td>"), "{page}");
    let report = c
        .get(app.url(&format!("/admin/rounds/{round}/fairness")))
        .fetch_text()
        .await;
    assert!(report.contains("strict:4/1-3"), "{report}");
    assert!(report.contains("id=\"classes\""), "{report}");
    // The shuffle of each line re-derives from the published seed.
    assert!(
        report.contains("tag good\">일치") || report.contains("matches"),
        "{report}"
    );
    app.finish().await;
}

/// Before opening, the queue page already says the round gives some
/// classes an earlier turn, and, to a signed-in student, which line is
/// theirs (the lines are drawn at opening, but a student's follows from
/// their class year).
#[tokio::test]
async fn the_prequeue_page_explains_the_priority_and_names_the_students_line() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("prequeue", 60).await;
    let plain = app.round("prequeue", 60).await;
    let r = post(
        &app,
        round,
        json!({ "priority": { "mode": "strict", "groups": [{ "years": [4] }] } }),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    app.student("20269101", 2).await;
    // The snapshot carries the policy within a refresh or two.
    wait_until(Duration::from_secs(10), || async {
        let c = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        page_of(&app, &c, round, "20269101")
            .await
            .contains("priority-note")
    })
    .await;

    let c = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let html = page_of(&app, &c, round, "20269101").await;
    assert!(
        html.contains("id=\"opens-in\""),
        "still before opening: {html}"
    );
    // Signed in: the policy, the student's line (years 1-3, after the
    // seniors) and that the wait may grow.
    assert!(html.contains("earlier turn"), "{html}");
    let group = html
        .split("Your group: year ")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_else(|| panic!("no group named: {html}"));
    let years: Vec<&str> = group.split([',', '-']).map(str::trim).collect();
    assert!(years.contains(&"2") || group.contains("1-3"), "{group}");
    assert!(
        !years.contains(&"4"),
        "the seniors' year is not the student's line: {group}"
    );
    assert!(html.contains("your wait may grow"), "{html}");
    // A round without a policy says nothing of it.
    let html = page_of(&app, &c, plain, "20269101").await;
    assert!(!html.contains("priority-note"), "{html}");
}

/// Signs `number` in on `c` (a session cookie), joins `round` with the
/// same client (the queue cookie) and returns the English queue page.
async fn page_of(
    app: &TestApp,
    c: &reqwest::Client,
    round: enrollment::RoundId,
    number: &str,
) -> String {
    app.sign_in(
        c.clone(),
        json!({ "student_number": number, "password": "pw" }),
    )
    .await;
    let r = c
        .post(app.url(&format!("/api/rounds/{round}/join")))
        .json(&json!({ "student_number": number, "password": "pw" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c.get(app.url(&format!("/rounds/{round}?lang=en")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
