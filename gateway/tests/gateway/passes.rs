//! A pass is the student's time to enroll. Time the system took away (MySQL
//! unreachable so the leader could not tick, RabbitMQ down so admission and
//! enrolling were held) is given back: every pass alive when the outage
//! began lives that much longer, and while admission is held a pass does
//! not run out.

use crate::helpers::*;
use crate::proxy::Proxy;
use secrecy::SecretString;
use serde_json::{json, Value};
use std::time::Duration;
use waitroom::room::TickInput;
use waitroom::{JoinRequest, RoomStore};

const TTL_MS: u64 = 60_000;

fn input(now_ms: u64, budget: u64) -> TickInput {
    TickInput {
        now_ms,
        grace_ms: 600_000,
        grace_from_ms: 0,
        budget,
        active_since_ms: now_ms - TTL_MS,
    }
}

/// The store alone, on the real database, with times chosen by the test:
/// a gap between ticks (the leader could not reach MySQL) and a hold
/// (RabbitMQ down) each extend the passes alive when they began, by their
/// length, and nothing else.
#[tokio::test]
async fn a_gap_in_admission_extends_the_passes_alive_when_it_began() {
    let db = TestDb::create().await;
    let round = db.round("open", 6000).await;
    let live = db.student("20260801", 1).await;
    let old = db.student("20260802", 1).await;
    let store = gateway::db::MySqlStore::new(
        db.pool.clone(),
        Duration::from_secs(5),
        Duration::from_millis(TTL_MS),
    );
    let t = now_ms();
    for (i, s) in [old, live].into_iter().enumerate() {
        let joined = store
            .join(&[JoinRequest {
                round,
                student: s,
                at_ms: t + i as u64,
            }])
            .await
            .unwrap();
        assert!(joined[0].is_ok(), "{joined:?}");
    }
    // Both admitted at t; then `old`'s admission is moved back so that its
    // pass ran out before anything below began.
    assert_eq!(store.tick(round, input(t, 2)).await.unwrap().admitted, 2);
    sqlx::query(
        "UPDATE tickets SET admitted_at = admitted_at - INTERVAL 100 SECOND WHERE student_id = ?",
    )
    .bind(old.0)
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        store.tick(round, input(t + 500, 0)).await.unwrap().active,
        1
    );

    // No tick for 89.5 s: `live`'s pass (60 s from t) would have run out;
    // it was alive when the gap began, so it gets the gap back.
    let after_gap = store.tick(round, input(t + 90_000, 0)).await.unwrap();
    assert_eq!(
        after_gap.active, 1,
        "the live pass still counts: {after_gap:?}"
    );
    let extra = |s: enrollment::StudentId| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, u64>("SELECT pass_extra_ms FROM tickets WHERE student_id = ?")
                .bind(s.0)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let given = extra(live).await;
    assert!(
        (89_500..=90_000).contains(&given),
        "extended by the gap: {given} ms"
    );
    assert_eq!(
        extra(old).await,
        0,
        "a pass that ran out before is not revived"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM audit_log WHERE action = 'passes.extended'")
            .await,
        1
    );

    // Joining again keeps the admission: the place holds with the extension.
    let again = store
        .join(&[JoinRequest {
            round,
            student: live,
            at_ms: t + 91_000,
        }])
        .await
        .unwrap();
    let place = again[0].as_ref().unwrap();
    assert!(place.kept, "{place:?}");
    assert_eq!(place.ticket.pass_extra_ms, given);
    let exp = place.ticket.pass_expires_at_ms(TTL_MS).unwrap();
    assert_eq!(exp, place.ticket.admitted_at_ms.unwrap() + TTL_MS + given);

    // Ticks a second apart extend nothing.
    store.tick(round, input(t + 91_000, 0)).await.unwrap();
    store.tick(round, input(t + 92_000, 0)).await.unwrap();
    assert_eq!(extra(live).await, given);

    // A hold: the leader keeps ticking, but admission (and enrolling) is
    // held, so the time counts as a gap too, given back when it ends. It
    // lasts past the pass's extended end (t + 149.5 s): the pass still
    // counts, it is not over.
    sqlx::query("UPDATE rounds SET hold_reason = 'broker'")
        .execute(&db.pool)
        .await
        .unwrap();
    for s in 1..=70 {
        let held = store
            .tick(round, input(t + 92_000 + s * 1000, 0))
            .await
            .unwrap();
        assert_eq!(held.active, 1, "a pass does not run out while held ({s} s)");
    }
    assert_eq!(extra(live).await, given, "nothing is given before the end");
    sqlx::query("UPDATE rounds SET hold_reason = NULL")
        .execute(&db.pool)
        .await
        .unwrap();
    store.tick(round, input(t + 163_000, 0)).await.unwrap();
    let total = extra(live).await;
    assert!(
        (given + 70_000..=given + 71_000).contains(&total),
        "extended again by the hold: {total} ms after {given}"
    );
    assert_eq!(extra(old).await, 0);

    // A registrar's pause is no outage: the leader keeps ticking the paused
    // round, and resuming gives nothing.
    let pause = |state: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query("UPDATE rounds SET state = ?")
                .bind(state)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    pause("paused").await;
    for s in 1..=10 {
        store
            .tick(round, input(t + 163_000 + s * 1000, 0))
            .await
            .unwrap();
    }
    pause("open").await;
    store.tick(round, input(t + 174_000, 0)).await.unwrap();
    assert_eq!(extra(live).await, total, "a pause is not given back");
    // But an outage during a pause is: no tick for 20 s, paused.
    pause("paused").await;
    store.tick(round, input(t + 194_000, 0)).await.unwrap();
    let after_pause = extra(live).await;
    assert!(
        (total + 20_000..=total + 21_000).contains(&after_pause),
        "an outage while paused is given back: {after_pause} after {total}"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM audit_log WHERE action = 'passes.extended'")
            .await,
        3
    );
    db.drop().await;
}

/// Through the whole gateway, with the real RabbitMQ behind a proxy that
/// is cut for longer than a pass lives: during the hold the student is told
/// their place is kept (not "expired"), and once the broker is back the
/// pass they hold still enrolls, and the status hands out one that lives
/// as long as they lost.
#[tokio::test]
async fn a_pass_outlives_a_rabbitmq_outage_longer_than_itself() {
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let amqp = proxy.rewrite(AMQP, 5672);
    let app = TestApp::spawn_with_broker(|c| {
        c.connections.amqp_url = SecretString::from(amqp);
        c.publish_timeout_ms = 5_000;
        c.pass_ttl_secs = 8;
    })
    .await;
    let round = app.round("open", 6000).await;
    let section = app.db.section("CSE101", 1, 30).await;
    let me = app.student("20260811", 1).await;
    let joined: Value = app.join(round, "20260811").await.json().await.unwrap();
    let queue = token(&joined);
    let admitted = app.poll_until(&queue, |s| s["state"] == "admitted").await;
    let pass = admitted["pass"].as_str().unwrap().to_string();
    let first_exp = admitted["pass_expires_at_ms"].as_u64().unwrap();

    proxy.cut();
    app.wait_for_broker_hold().await;
    // Past the pass's own end, still held.
    while now_ms() < first_exp + 2_000 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let held = app.status(&queue).await;
    assert_eq!(
        held["state"], "paused",
        "the place is kept while held: {held}"
    );
    assert!(
        held["pass"].is_null(),
        "no pass to enroll with while held: {held}"
    );
    // Enrolling meanwhile is "try again later", as for any pass while
    // held, not "your pass expired".
    let r = app
        .enroll(Some(&pass), json!({ "sections": [section] }))
        .await;
    assert_eq!(r.status(), 503, "{}", code(r).await);
    // Joining again (another device) keeps the admission, not a new ticket.
    let again: Value = app.join(round, "20260811").await.json().await.unwrap();
    assert_eq!(again["state"], "paused", "{again}");
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM tickets WHERE state = 'admitted'")
            .await,
        1
    );

    proxy.restore();
    let back = app.poll_until(&queue, |s| s["state"] == "admitted").await;
    let exp = back["pass_expires_at_ms"].as_u64().unwrap();
    assert!(
        exp >= first_exp + 4_000,
        "the pass got the outage back: {first_exp} -> {exp}"
    );
    assert!(exp > now_ms(), "{back}");

    // The pass the student already held (its own end is past) enrolls: the
    // gateway renews it from the extended admission.
    let body = json!({ "sections": [section] });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = app.enroll(Some(&pass), body.clone()).await;
        if r.status() == 202 {
            break;
        }
        assert_eq!(r.status(), 503, "{}", code(r).await);
        assert!(
            tokio::time::Instant::now() < deadline,
            "enrolling did not recover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // An app holding only that pass reads its queue cart with it.
    let r = queue_cart_with(&app, &pass).await;
    assert_eq!(r.status(), 200, "{}", code(r).await);
    // The cart page, with the old pass in its cookie, offers enrolling and
    // shows the extended end.
    let student = waitroom::Subject::Student {
        id: me,
        class_year: 1,
    };
    let session = waitroom::SessionClaims::new(student, now_ms(), 600_000);
    let page = app
        .get("/cart?lang=en")
        .header(
            "cookie",
            format!(
                "sluice_session={}; sluice_pass={pass}",
                app.keyring.sign_session(&session)
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("You are admitted and can enroll now."),
        "the renewed pass serves the page"
    );

    let fresh = back["pass"].as_str().unwrap();
    let r = app
        .enroll(Some(fresh), json!({ "sections": [section] }))
        .await;
    assert_eq!(r.status(), 202);
    // And gives up its admission with it.
    let r = app
        .client
        .post(app.url("/api/queue/leave"))
        .header("x-pass", &pass)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", code(r).await);
    let left: Value = r.json().await.unwrap();
    assert_eq!(left["left"], true, "{left}");
    app.finish().await;
}

/// The extension is for outages only: a pass that simply ran out, with
/// admission running all along, is refused as it always was, and the
/// status says so.
#[tokio::test]
async fn a_pass_that_simply_ran_out_is_refused() {
    let app = TestApp::spawn(|c| c.pass_ttl_secs = 2).await;
    let round = app.round("open", 6000).await;
    let section = app.db.section("CSE102", 1, 30).await;
    app.student("20260821", 1).await;
    let joined: Value = app.join(round, "20260821").await.json().await.unwrap();
    let queue = token(&joined);
    let admitted = app.poll_until(&queue, |s| s["state"] == "admitted").await;
    let pass = admitted["pass"].as_str().unwrap().to_string();
    let exp = admitted["pass_expires_at_ms"].as_u64().unwrap();
    while now_ms() < exp + 500 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = app
        .enroll(Some(&pass), json!({ "sections": [section] }))
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(code(r).await, "token_expired");
    // Nor does it speak for its holder anywhere else.
    let r = queue_cart_with(&app, &pass).await;
    assert_eq!(r.status(), 401);
    assert_eq!(code(r).await, "token_expired");
    assert_eq!(app.status(&queue).await["state"], "expired");
    assert_eq!(
        app.db
            .count("SELECT COUNT(*) FROM tickets WHERE pass_extra_ms > 0")
            .await,
        0
    );
    assert!(app.sink.sent().is_empty());
    app.finish().await;
}

/// `GET /api/queue/cart` as an app holding only `pass` asks for it.
async fn queue_cart_with(app: &TestApp, pass: &str) -> reqwest::Response {
    app.get("/api/queue/cart")
        .header("x-pass", pass)
        .send()
        .await
        .unwrap()
}
