//! The student API for apps: catalog, cart, enrollments, timetable and
//! results, with the pages' auth (a student session, the CSRF value on
//! writes) and limits.

use super::*;

/// A client that keeps cookies, signed in through `POST /api/session`;
/// returns it with the session's CSRF value.
async fn signed_in(app: &TestApp, body: Value) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    app.sign_in(client, body).await
}

async fn student(app: &TestApp, number: &str) -> (reqwest::Client, String) {
    signed_in(app, json!({ "student_number": number, "password": "pw" })).await
}

async fn add(app: &TestApp, c: &reqwest::Client, csrf: &str, section: u32) -> reqwest::Response {
    c.post(app.url("/api/cart"))
        .header("x-csrf-token", csrf)
        .json(&json!({ "section": section }))
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, c: &reqwest::Client, path: &str) -> (u16, Value) {
    let r = c.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The catalog cache knows `section` (it refreshes every 15 s, or now).
async fn catalog_knows(app: &TestApp, code: &str) {
    wait_until(Duration::from_secs(20), || async {
        let r: Value = app
            .get(&format!("/api/catalog?q={code}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["total"].as_u64().unwrap_or(0) > 0
    })
    .await;
}

#[tokio::test]
async fn the_student_api_needs_a_student_session() {
    let app = TestApp::spawn(|_| {}).await;
    let anonymous = reqwest::Client::new();
    for path in [
        "/api/cart",
        "/api/enrollments",
        "/api/timetable",
        "/api/results",
    ] {
        let r = anonymous.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(code(r).await, "sign_in_required", "{path}");
    }
    let r = anonymous
        .post(app.url("/api/cart"))
        .json(&json!({ "section": 1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // An admin's session is not a student's.
    let (admin, csrf) = signed_in(
        &app,
        json!({ "username": "registrar", "password": "admin-pw" }),
    )
    .await;
    for path in [
        "/api/cart",
        "/api/enrollments",
        "/api/timetable",
        "/api/results",
    ] {
        let r = admin.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
    assert_eq!(add(&app, &admin, &csrf, 1).await.status(), 403);
    app.finish().await;
}

#[tokio::test]
async fn a_student_searches_fills_the_cart_and_sees_only_their_own() {
    let app = TestApp::spawn(|_| {}).await;
    let a = app.student("20260101", 2).await;
    app.student("20260102", 2).await;
    let mut sections = Vec::new();
    for (i, code) in ["APP1001", "APP1002", "APP1003"].iter().enumerate() {
        let id = app.db.section(code, 1, 30).await;
        sqlx::query(
            "INSERT INTO section_meetings (section_id, weekday, start_min, end_min) VALUES (?, ?, 540, 615)",
        )
        .bind(id)
        .bind(u8::try_from(i + 1).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
        sections.push(id);
    }
    catalog_knows(&app, "app1003").await;

    // Search: open to anyone; filters checked with a message naming the field.
    let (status, found) = get(&app, &app.client, "/api/catalog?q=APP100&day=2").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["total"], 1);
    let s = &found["sections"][0];
    assert_eq!(s["code"], "APP1002");
    assert_eq!(s["meetings"][0]["start"], "09:00");
    assert_eq!(s["seats_left"], 30);
    let (status, bad) = get(&app, &app.client, "/api/catalog?day=someday").await;
    assert_eq!(status, 400);
    assert_eq!(bad["code"], "invalid_request");
    assert!(
        bad["message"].as_str().unwrap().starts_with("day:"),
        "{bad}"
    );

    let (ca, csrf_a) = student(&app, "20260101").await;
    let (cb, csrf_b) = student(&app, "20260102").await;
    // Writes need the session's CSRF value.
    let r = ca
        .post(app.url("/api/cart"))
        .json(&json!({ "section": sections[0] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(code(r).await, "csrf");
    assert_eq!(
        add(&app, &ca, &csrf_b, sections[0]).await.status(),
        403,
        "another session's value"
    );

    let r = add(&app, &ca, &csrf_a, sections[0]).await;
    assert_eq!(r.status(), 201);
    let cart: Value = r.json().await.unwrap();
    assert_eq!(cart["sections"][0]["id"], sections[0]);
    assert_eq!(cart["credits"], 3);
    assert_eq!(
        add(&app, &ca, &csrf_a, sections[0]).await.status(),
        200,
        "already there"
    );
    assert_eq!(add(&app, &ca, &csrf_a, sections[1]).await.status(), 201);
    let r = add(&app, &ca, &csrf_a, 999_999).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("No such section"),
        "{body}"
    );
    let r = ca
        .post(app.url("/api/cart"))
        .header("x-csrf-token", &csrf_a)
        .json(&json!({ "section": "one" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // B sees none of A's cart, and removing from B's changes nothing of A's.
    let (_, cart_b) = get(&app, &cb, "/api/cart").await;
    assert_eq!(cart_b["sections"], json!([]));
    let r = cb
        .delete(app.url(&format!("/api/cart/{}", sections[0])))
        .header("x-csrf-token", &csrf_b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, cart_a) = get(&app, &ca, "/api/cart").await;
    assert_eq!(cart_a["sections"].as_array().unwrap().len(), 2);
    let r = ca
        .delete(app.url(&format!("/api/cart/{}", sections[1])))
        .header("x-csrf-token", &csrf_a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cart_a: Value = r.json().await.unwrap();
    assert_eq!(cart_a["sections"].as_array().unwrap().len(), 1);
    let r = ca
        .delete(app.url("/api/cart/not-a-number"))
        .header("x-csrf-token", &csrf_a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(code(r).await, "invalid_request");

    // A holds the third section and has one decided command.
    sqlx::query("INSERT INTO enrollments (student_id, section_id, course_id, enrolled_at) SELECT ?, id, course_id, UTC_TIMESTAMP(3) FROM sections WHERE id = ?")
        .bind(a.0)
        .bind(sections[2])
        .execute(&app.pool)
        .await
        .unwrap();
    let round = app.db.round("open", 60).await;
    let command = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO command_outcomes (command_id, item, student_id, round_id, section_id, action, outcome, reason, issued_at, decided_at, decided_by) VALUES (?, 0, ?, ?, ?, 'enroll', 'rejected', 'full', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), 'test')")
        .bind(command.as_bytes().as_slice())
        .bind(a.0)
        .bind(round.0)
        .bind(sections[1])
        .execute(&app.pool)
        .await
        .unwrap();

    let (status, held) = get(&app, &ca, "/api/enrollments").await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["sections"][0]["id"], sections[2]);
    assert_eq!(held["credits"], 3);
    let (_, held_b) = get(&app, &cb, "/api/enrollments").await;
    assert_eq!(held_b["sections"], json!([]));

    let (_, week) = get(&app, &ca, "/api/timetable").await;
    assert_eq!(week["slots"].as_array().unwrap().len(), 1);
    assert_eq!(week["slots"][0]["weekday"], 3);
    let (_, preview) = get(&app, &ca, "/api/timetable?cart=1").await;
    let slots = preview["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2, "{preview}");
    assert_eq!(slots[0]["preview"], true, "Monday's cart section first");
    assert_eq!(preview["credits"], 3, "a preview adds no credits");

    let (_, results) = get(&app, &ca, "/api/results").await;
    let item = &results["items"][0];
    assert_eq!(item["command_id"], command.to_string());
    assert_eq!(item["outcome"], "rejected");
    assert_eq!(item["reason"], "full");
    assert_eq!(item["section_id"], sections[1]);
    assert_eq!(item["course_code"], "APP1002");
    assert!(item["message_en"].as_str().is_some());
    assert!(item["decided_at"].as_str().unwrap().ends_with('Z'));
    let (_, results_b) = get(&app, &cb, "/api/results").await;
    assert_eq!(results_b["items"], json!([]));
    app.finish().await;
}

#[tokio::test]
async fn a_full_cart_refuses_another_section() {
    let app = TestApp::spawn(|_| {}).await;
    app.student("20260201", 1).await;
    let mut ids = Vec::new();
    for i in 0..13 {
        ids.push(app.db.section(&format!("FULL{i:03}"), 1, 10).await);
    }
    let (c, csrf) = student(&app, "20260201").await;
    for id in &ids[..12] {
        assert_eq!(add(&app, &c, &csrf, *id).await.status(), 201);
    }
    let r = add(&app, &c, &csrf, ids[12]).await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "conflict");
    assert!(body["message"].as_str().unwrap().contains("12"), "{body}");
    app.finish().await;
}

#[tokio::test]
async fn the_student_api_spends_the_students_budget() {
    let app = TestApp::spawn(|c| {
        c.student_rate = 1;
        c.student_burst = 2;
    })
    .await;
    app.student("20260301", 1).await;
    let (c, _) = student(&app, "20260301").await;
    // Reads have twice the command budget (a burst of 4), then 429.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = c.get(app.url("/api/cart")).send().await.unwrap();
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.starts_with(&[200, 200]), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    app.finish().await;
}

#[tokio::test]
async fn an_app_sets_each_cart_items_waitlist_choice_and_sees_its_choices() {
    let app = TestApp::spawn(|_| {}).await;
    app.student("20260401", 1).await;
    let first = app.db.section("CHO1001", 1, 30).await;
    let other = app.db.section("CHO1001", 2, 30).await;
    let plain = app.db.section("CHO1002", 1, 30).await;
    let (c, csrf) = student(&app, "20260401").await;
    let r = c
        .post(app.url("/api/cart"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "section": first, "waitlist": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(add(&app, &c, &csrf, plain).await.status(), 201);
    let r = c
        .put(app.url("/api/cart/alternates"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "section": first, "alternates": [other] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, cart) = get(&app, &c, "/api/cart").await;
    assert_eq!(status, 200, "{cart}");
    assert_eq!(
        cart["choices"],
        json!([
            { "section": first, "alternates": [other], "waitlist": true },
            { "section": plain, "alternates": [], "waitlist": false },
        ]),
        "{cart}"
    );
    // Adding an item again may change its choice; without one it stays.
    let r = c
        .post(app.url("/api/cart"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "section": first, "waitlist": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["choices"][0]["waitlist"], false, "{again}");
    assert_eq!(add(&app, &c, &csrf, first).await.status(), 200);
    let (_, cart) = get(&app, &c, "/api/cart").await;
    assert_eq!(cart["choices"][0]["waitlist"], false, "{cart}");
    // The stored choice is the one the cart sent at admission carries.
    let stored: Vec<(u32, bool)> =
        sqlx::query_as("SELECT section_id, waitlist FROM cart_items ORDER BY section_id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, vec![(first, false), (plain, false)]);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_students_filling_their_carts_at_once_are_all_answered() {
    // The eve of registration: neighbours' cart writes must not refuse
    // each other (InnoDB's gap locks deadlock concurrent counted inserts).
    let app = TestApp::spawn(|c| {
        c.student_rate = 1_000;
        c.student_burst = 1_000;
    })
    .await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(app.db.section(&format!("EVE{i:03}"), 1, 30).await);
    }
    let mut students = Vec::new();
    for i in 0..24 {
        let number = format!("2026050{i:02}");
        app.student(&number, 1).await;
        students.push(student(&app, &number).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (c, csrf) in students {
        let (ids, url) = (ids.clone(), app.url("/api/cart"));
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            for id in ids {
                let r = c
                    .post(&url)
                    .header("x-csrf-token", &csrf)
                    .json(&json!({ "section": id, "waitlist": true }))
                    .send()
                    .await
                    .unwrap();
                statuses.push(r.status().as_u16());
            }
            statuses
        });
    }
    let mut refused = Vec::new();
    while let Some(statuses) = tasks.join_next().await {
        refused.extend(statuses.unwrap().into_iter().filter(|s| *s != 201));
    }
    assert!(refused.is_empty(), "answers other than 201: {refused:?}");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cart_items")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 24 * 6);
    app.finish().await;
}
