//! The automatic pace on the real stack: the leader reads the real
//! RabbitMQ command queue (filled here with no worker running) and moves
//! the admission rate within the registrar's floor and ceiling.

use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Publishes `n` messages to the command queue under `prefix`, as commands
/// nobody consumes (no worker runs in this test).
async fn fill_queue(prefix: &str, n: usize) {
    let conn = broker::connect(AMQP, "sluice-test-backlog", Duration::from_secs(5))
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let queue = broker::Topology::new(prefix).commands_queue;
    for i in 0..n {
        channel
            .basic_publish(
                "",
                &queue,
                lapin::options::BasicPublishOptions::default(),
                format!("backlog {i}").as_bytes(),
                lapin::BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

async fn purge(prefix: &str) {
    let conn = broker::connect(AMQP, "sluice-test-backlog", Duration::from_secs(5))
        .await
        .unwrap();
    let channel = conn.create_channel().await.unwrap();
    let queue = broker::Topology::new(prefix).commands_queue;
    channel
        .queue_purge(&queue, lapin::options::QueuePurgeOptions::default())
        .await
        .unwrap();
}

async fn show(app: &TestApp, round: enrollment::RoundId) -> Value {
    app.client
        .get(app.url(&format!("/api/admin/rounds/{round}")))
        .basic_auth("registrar", Some("admin-pw"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Pauses `round`, signs up and joins `n` year-2 students numbered
/// `{prefix}0..`, resumes it, and answers the last one's queue token.
async fn join_while_paused(
    app: &TestApp,
    round: enrollment::RoundId,
    prefix: &str,
    n: usize,
) -> String {
    app.admin(round, json!({ "action": "pause" })).await;
    for i in 0..n {
        app.student(&format!("{prefix}{i}"), 2).await;
    }
    let mut last = Value::Null;
    for i in 0..n {
        last = app
            .join(round, &format!("{prefix}{i}"))
            .await
            .json()
            .await
            .unwrap();
    }
    app.admin(round, json!({ "action": "resume" })).await;
    last["token"].as_str().unwrap().to_string()
}

/// Polls the admin view until `cond`, checking on every read that the rate
/// never leaves [floor, ceiling].
async fn until(
    app: &TestApp,
    round: enrollment::RoundId,
    floor: u64,
    ceiling: u64,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let v = show(app, round).await;
        let rate = v["admission_per_min"].as_u64().unwrap();
        assert!(
            (floor..=ceiling).contains(&rate),
            "rate {rate} left [{floor}, {ceiling}]: {v}"
        );
        if cond(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "last view: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_automatic_pace_follows_the_backlog_within_floor_and_ceiling() {
    let app = TestApp::spawn_with_broker(|_| {}).await;
    let prefix = app.prefix.clone().unwrap();
    let round = app.round("open", 600).await;

    // Bad settings are refused with a clear message, not stored.
    let r = app
        .client
        .post(app.url(&format!("/api/admin/rounds/{round}")))
        .basic_auth("registrar", Some("admin-pw"))
        .json(&json!({ "pace": { "mode": "auto", "floor": 100, "ceiling": 10 } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("floor"));

    let v = app
        .admin(
            round,
            json!({ "pace": { "mode": "auto", "floor": 6, "ceiling": 3000,
                               "target_backlog": 10, "target_latency_ms": 60000 } }),
        )
        .await;
    assert_eq!(v["pace_mode"], "auto", "{v}");
    assert_eq!(v["pace"]["floor"], 6);

    // A fixed rate cannot be set while the leader sets it.
    let r = app
        .client
        .post(app.url(&format!("/api/admin/rounds/{round}")))
        .basic_auth("registrar", Some("admin-pw"))
        .json(&json!({ "admission_per_min": 50 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // No backlog, no decisions: the workers keep up, the rate climbs to
    // the ceiling.
    let v = until(&app, round, 6, 3000, |v| v["admission_per_min"] == 3000).await;
    assert_eq!(v["pace"]["reason"], "healthy", "{v}");

    // Commands pile up with no worker: the rate falls to the floor.
    fill_queue(&prefix, 200).await;
    let v = until(&app, round, 6, 3000, |v| v["admission_per_min"] == 6).await;
    assert_eq!(v["pace"]["reason"], "backlog", "{v}");
    // Above the target of 10 (the queue may still be filling).
    assert!(v["pace"]["signal"].as_u64().unwrap() > 10, "{v}");
    assert!(v["pace"]["changed_at_ms"].as_u64().is_some());

    // A waiting student sees the pace, why it changed and when. They join
    // while the round is paused (a join checks a password, which may take
    // seconds on a loaded machine; the line must still be there after).
    let token = join_while_paused(&app, round, "2026080", 4).await;
    // Each gateway's snapshot of the round follows the database within a
    // refresh or two.
    app.poll_until(&token, |s| {
        s["state"] == "waiting"
            && s["notice"] != "paused"
            && s["pace"]["per_min"] == 6
            && s["pace"]["capacity_per_min"].is_u64()
    })
    .await;
    let s = app.status(&token).await;
    assert_eq!(s["state"], "waiting", "{s}");
    assert_eq!(s["pace"]["mode"], "auto", "{s}");
    assert_eq!(s["pace"]["per_min"], 6, "{s}");
    assert_eq!(s["pace"]["reason"], "backlog", "{s}");
    assert_eq!(s["notice"], "workers_busy", "{s}");
    // The estimate follows the pace: two or three ahead at six a minute is
    // at least twenty-odd seconds, not the ceiling's fraction of a second.
    // With commands queued and no worker, the leader measured the workers
    // at nothing, a speed that never settles (stalled workers say nothing
    // of the speed they will have): the range is rough, and its top is the
    // floor's wait, which the floor keeps, not the hours the queued
    // commands would take at no speed at all.
    let ahead = s["ahead"].as_u64().unwrap();
    let max = s["estimate"]["max_secs"].as_u64().unwrap();
    let poll = s["poll_after_ms"].as_u64().unwrap().div_ceil(1000);
    assert!(max >= 24, "{s}");
    assert!(max <= (ahead * 10 * 5).div_ceil(4) + poll, "{s}");
    assert_eq!(s["estimate"]["rough"], true, "a speed of nothing: {s}");
    // The queue page (no JavaScript) says it in words, with the time.
    let html = app
        .get(&format!("/rounds/{round}"))
        .header("cookie", format!("sluice_queue={token}"))
        .fetch_text()
        .await;
    assert!(html.contains("신청 처리가 밀려"), "{html}");

    // The backlog drains: the rate climbs again.
    purge(&prefix).await;
    let v = until(&app, round, 6, 3000, |v| {
        v["admission_per_min"].as_u64().unwrap() > 300
    })
    .await;
    assert_eq!(v["pace"]["reason"], "healthy", "{v}");

    // Back to fixed with a rate of the registrar's choosing.
    let v = app
        .admin(
            round,
            json!({ "pace": { "mode": "fixed" }, "admission_per_min": 120 }),
        )
        .await;
    assert_eq!(v["pace_mode"], "fixed");
    assert_eq!(v["admission_per_min"], 120);

    // Switching modes is audited; the leader's own steps are not.
    let modes: Vec<(String,)> = sqlx::query_as(
        "SELECT CAST(JSON_UNQUOTE(JSON_EXTRACT(detail, '$.mode')) AS CHAR) FROM audit_log \
         WHERE action = 'round.pace' AND actor = 'registrar' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let modes: Vec<&str> = modes.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(modes, ["auto", "fixed"]);
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let downs: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with("sluice_waitroom_pace_changes_total{")
                && l.contains("direction=\"down\"")
                && l.contains(&format!("round=\"{round}\""))
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert!(downs >= 1.0, "{text}");
    app.finish().await;
}

/// Before the workers' speed was ever measured, nothing tells where between
/// the floor and the ceiling the room will run: a waiting student is shown
/// the range from the wait at the ceiling to the wait at the floor, marked
/// rough, and the page says why.
#[tokio::test]
async fn an_unmeasured_pace_shows_a_rough_range_and_says_so() {
    let app = TestApp::spawn_with_broker(|_| {}).await;
    let round = app.round("open", 600).await;
    app.admin(
        round,
        json!({ "pace": { "mode": "auto", "floor": 6, "ceiling": 12,
                           "target_backlog": 10, "target_latency_ms": 60000 } }),
    )
    .await;
    // Six join; at 6 to 12 a minute the last waits a while.
    let token = join_while_paused(&app, round, "2026070", 6).await;
    let s = app
        .poll_until(&token, |s| {
            s["state"] == "waiting" && s["estimate"].is_object() && s["pace"]["mode"] == "auto"
        })
        .await;
    assert!(s["pace"]["capacity_per_min"].is_null(), "{s}");
    assert_eq!(s["estimate"]["rough"], true, "{s}");
    // a ahead: from 80 % of the wait at 12 a minute (5 s a place) to 125 %
    // of the wait at 6 a minute (10 s a place), and the next poll.
    let ahead = s["ahead"].as_u64().unwrap();
    assert!(ahead >= 3, "{s}");
    assert_eq!(s["estimate"]["min_secs"], ahead * 4, "{s}");
    let poll = s["poll_after_ms"].as_u64().unwrap().div_ceil(1000);
    assert_eq!(
        s["estimate"]["max_secs"],
        (ahead * 10 * 5).div_ceil(4) + poll,
        "{s}"
    );
    // The page without JavaScript says the range is rough, in Korean and
    // in English.
    for (lang, words) in [("ko", "대략적인 범위"), ("en", "A rough range")] {
        let html = app
            .get(&format!("/rounds/{round}?lang={lang}"))
            .header("cookie", format!("sluice_queue={token}"))
            .fetch_text()
            .await;
        assert!(
            html.contains(&format!("<p id=\"estimate-rough\" class=\"muted\">{words}")),
            "{html}"
        );
    }
    app.finish().await;
}

/// A round whose workers never fall behind is never measured (the speed is
/// read only while commands stay queued). Once its line has moved at the
/// current rate for a while with the workers keeping up, the wait is at
/// that rate and not rough, as with a fixed rate.
#[tokio::test]
async fn a_pace_the_workers_keep_up_with_gives_firm_waits_unmeasured() {
    let app = TestApp::spawn_with_broker(|_| {}).await;
    let round = app.round("open", 600).await;
    // A ceiling of one a second keeps a line; nothing is queued, so the
    // leader finds the workers healthy at every step.
    app.admin(
        round,
        json!({ "pace": { "mode": "auto", "floor": 6, "ceiling": 60,
                           "target_backlog": 10, "target_latency_ms": 60000 } }),
    )
    .await;
    let token = join_while_paused(&app, round, "2026075", 40).await;
    let first = app
        .poll_until(&token, |s| {
            s["state"] == "waiting" && s["estimate"].is_object()
        })
        .await;
    assert_eq!(
        first["estimate"]["rough"], true,
        "not yet seen moving: {first}"
    );
    let s = app
        .poll_until_within(&token, Duration::from_secs(40), |s| {
            s["state"] != "waiting" || s["estimate"]["rough"] == false
        })
        .await;
    assert_eq!(s["state"], "waiting", "{s}");
    assert!(s["pace"]["capacity_per_min"].is_null(), "{s}");
    assert_eq!(s["pace"]["reason"], "healthy", "{s}");
    // At about one a second: well inside the rough range's top, which is
    // the wait at six a minute.
    let ahead = s["ahead"].as_u64().unwrap();
    let max = s["estimate"]["max_secs"].as_u64().unwrap();
    let poll = s["poll_after_ms"].as_u64().unwrap().div_ceil(1000);
    assert!(ahead >= 5, "{s}");
    assert!(max <= (ahead * 2).max(3) + poll, "{s}");
    assert!(
        s["estimate"]["min_secs"].as_u64().unwrap() >= ahead / 2,
        "{s}"
    );
    app.finish().await;
}

/// The registrar's round page without JavaScript: the pace form switches
/// the mode (audited), refuses bad settings next to the form, and the
/// page shows the mode; a fixed rate is refused while the pace is automatic.
#[tokio::test]
async fn the_round_page_switches_the_pace_and_refuses_bad_settings() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 600).await;
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = c.get(app.url("/login")).fetch_text().await;
    let field = |html: &str| {
        html.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string()
    };
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("csrf", field(&login).as_str()),
            ("kind", "staff"),
            ("name", "registrar"),
            ("password", "admin-pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = c
        .get(app.url(&format!("/admin/rounds/{round}")))
        .fetch_text()
        .await;
    assert!(page.contains("id=\"pace-form\""), "{page}");
    assert!(!page.contains("id=\"pace-unmeasured\""), "fixed: {page}");
    let csrf = field(&page);
    let control = format!("/admin/rounds/{round}/control");

    let bad = c
        .post(app.url(&control))
        .form(&[
            ("csrf", csrf.as_str()),
            ("pace_mode", "auto"),
            ("floor", "500"),
            ("ceiling", "50"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("id=\"pace-err\""));
    assert_eq!(show(&app, round).await["pace_mode"], "fixed");

    let ok = c
        .post(app.url(&control))
        .form(&[
            ("csrf", csrf.as_str()),
            ("pace_mode", "auto"),
            ("floor", "30"),
            ("ceiling", "900"),
            ("target_latency_ms", "1500"),
            ("target_backlog", "200"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let v = show(&app, round).await;
    assert_eq!(v["pace_mode"], "auto", "{v}");
    assert_eq!(v["pace"]["target_backlog"], 200);
    let page = c
        .get(app.url(&format!("/admin/rounds/{round}")))
        .fetch_text()
        .await;
    // Korean by default: the mode shows as its range.
    assert!(page.contains("30–900"), "{page}");
    // The workers were never measured: the registrar is told before the
    // day that students' first estimates will be rough, and how to avoid it.
    assert!(page.contains("id=\"pace-unmeasured\""), "{page}");
    // Measured in one window only: still said, as students still see rough
    // waits; settled: gone.
    for (settled, warned) in [(false, true), (true, false)] {
        sqlx::query(
            "UPDATE rounds SET pace_capacity_per_min = 5000, pace_capacity_settled = ?, \
             pace_capacity_at = UTC_TIMESTAMP(3) WHERE id = ?",
        )
        .bind(settled)
        .bind(round.0)
        .execute(&app.pool)
        .await
        .unwrap();
        let page = c
            .get(app.url(&format!("/admin/rounds/{round}")))
            .fetch_text()
            .await;
        assert_eq!(
            page.contains("id=\"pace-unmeasured\""),
            warned,
            "settled {settled}: {page}"
        );
    }

    let rate = c
        .post(app.url(&control))
        .form(&[("csrf", csrf.as_str()), ("rate", "100")])
        .send()
        .await
        .unwrap();
    assert_eq!(rate.status(), 400);
    assert!(rate.text().await.unwrap().contains("id=\"rate-err\""));

    let audits = app
        .db
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'round.pace'")
        .await;
    assert_eq!(
        audits, 1,
        "one switch, one row; the refused ones wrote none"
    );
    app.finish().await;
}

/// Writes outcomes for round `round` as workers deciding `per_tick`
/// students' commands every 100 ms would, two commands a student, until
/// told to stop; answers how many students it decided and over how long.
fn decide_in_background(
    pool: sqlx::MySqlPool,
    round: enrollment::RoundId,
    per_tick: u32,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<(u64, Duration)>,
) {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut students = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while stopped.try_recv().is_err() {
            tick.tick().await;
            for _ in 0..per_tick {
                students += 1;
                for command in 0..2u8 {
                    let mut id = [0u8; 16];
                    id[..8].copy_from_slice(&students.to_be_bytes());
                    id[8] = command;
                    id[12..].copy_from_slice(&round.0.to_be_bytes());
                    sqlx::query(
                        "INSERT INTO command_outcomes (command_id, item, student_id, round_id, \
                         section_id, action, outcome, reason, issued_at, decided_at, decided_by) \
                         VALUES (?, 0, ?, ?, 1, 'enroll', 'rejected', 'full', \
                         UTC_TIMESTAMP(3), UTC_TIMESTAMP(3), 'test')",
                    )
                    .bind(id.to_vec())
                    .bind(900_000 + students as u32)
                    .bind(round.0)
                    .execute(&pool)
                    .await
                    .unwrap();
                }
            }
        }
        (students, started.elapsed())
    });
    (stop, task)
}

/// The leader measures what the workers keep up with while commands stay
/// queued (students decided a minute, not commands), waits are estimated
/// with it, and a round switched to automatic later starts at it instead
/// of at its ceiling.
#[tokio::test]
async fn the_pace_measures_the_workers_and_the_next_round_starts_there() {
    let app = TestApp::spawn_with_broker(|_| {}).await;
    let prefix = app.prefix.clone().unwrap();
    let first = app.round("open", 600).await;
    let v = app
        .admin(
            first,
            json!({ "pace": { "mode": "auto", "floor": 6, "ceiling": 3000,
                               "target_backlog": 10, "target_latency_ms": 60000 } }),
        )
        .await;
    assert!(
        v["pace"]["capacity_per_min"].is_null(),
        "never measured: {v}"
    );

    // Commands stay queued (nobody consumes these; far over the target of
    // 10, so the rate goes to the floor) while "workers" decide
    // 2 students' commands, two each, every 100 ms (1,200 a minute).
    fill_queue(&prefix, 400).await;
    let (stop, decider) = decide_in_background(app.pool.clone(), first, 2);
    // The first window's speed is stored as not settled: waits are not
    // told with one window alone (a surge's first seconds are its slowest).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let settled_first = loop {
        let row: (Option<u32>, bool) = sqlx::query_as(
            "SELECT pace_capacity_per_min, pace_capacity_settled FROM rounds WHERE id = ?",
        )
        .bind(first.0)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if row.0.is_some() {
            break row.1;
        }
        assert!(tokio::time::Instant::now() < deadline, "never measured");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!settled_first, "one window alone settled the speed");
    until(&app, first, 6, 3000, |v| {
        v["pace"]["capacity_per_min"].is_u64() && v["admission_per_min"] == 6
    })
    .await;

    // A waiting student's estimate follows the measurement, not the floor
    // the backlog holds the rate at. They join while the round is paused
    // (see above).
    let token = join_while_paused(&app, first, "2026090", 8).await;
    // The wait stays rough until a window agrees with the speed (pausing
    // for the joins starts the windows afresh, so this may take a few).
    let s = app
        .poll_until_within(&token, Duration::from_secs(40), |s| {
            s["state"] == "waiting"
                && s["pace"]["per_min"] == 6
                && s["pace"]["capacity_per_min"].is_u64()
                && s["estimate"]["rough"] == false
        })
        .await;
    // The wait counts the places ahead and the queued commands beyond the
    // target of 10 (the admissions held back to work them off), at the
    // measured speed: (ahead + 390) at about 1,200 a minute, some 20 s,
    // where six a minute would give ten seconds a place.
    let ahead = s["ahead"].as_u64().unwrap();
    let capacity = s["pace"]["capacity_per_min"].as_u64().unwrap() as f64;
    let excess = s["pace"]["signal"].as_u64().unwrap() as f64 - 10.0;
    let central = (ahead as f64 + excess) * 60.0 / capacity;
    let shown = s["estimate"]["min_secs"].as_u64().unwrap() as f64;
    assert!(ahead >= 2, "{s}");
    assert_eq!(shown, (central * 0.8).floor(), "{s}");
    // Measured, the range is no longer rough, nor is it said to be.
    assert_eq!(s["estimate"]["rough"], false, "{s}");
    let html = app
        .get(&format!("/rounds/{first}"))
        .header("cookie", format!("sluice_queue={token}"))
        .fetch_text()
        .await;
    assert!(
        html.contains("<p id=\"estimate-rough\" class=\"muted\" hidden>"),
        "{html}"
    );

    // A few more windows, so the smoothing has followed the steady speed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.send(()).unwrap();
    let (students, over) = decider.await.unwrap();
    // Paused, the round is not stepped: its measurement stands still.
    app.admin(first, json!({ "action": "pause" })).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let carried = show(&app, first).await["pace"]["capacity_per_min"]
        .as_u64()
        .unwrap();
    let real = students as f64 * 60.0 / over.as_secs_f64();
    // Counting commands would read twice the speed.
    assert!(
        (0.6 * real..=1.4 * real).contains(&(carried as f64)),
        "measured {carried} a minute, students were decided at {real:.0}"
    );
    purge(&prefix).await;

    // A new round at 3,000 a minute goes automatic up to 3,000: it starts
    // at the speed measured, with the measurement, and the audit log says so.
    let second = app.round("open", 3000).await;
    let v = app
        .admin(
            second,
            json!({ "pace": { "mode": "auto", "floor": 6, "ceiling": 3000 } }),
        )
        .await;
    assert_eq!(v["pace"]["capacity_per_min"], carried, "{v}");
    assert_eq!(v["pace"]["capacity_settled"], true, "carried settled: {v}");
    assert_eq!(v["admission_per_min"], carried.clamp(6, 3000), "{v}");
    let logged: (Option<u32>,) = sqlx::query_as(
        "SELECT CAST(JSON_EXTRACT(detail, '$.measured_capacity_per_min') AS UNSIGNED) \
         FROM audit_log WHERE action = 'round.pace' AND subject = ? ORDER BY id DESC LIMIT 1",
    )
    .bind(format!("round:{second}"))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(logged.0.map(u64::from), Some(carried));
    app.finish().await;
}
