//! The queue page at run time: both languages, the place, estimate and
//! progress, the paused message, the no-JavaScript refresh, and a bad or
//! expired token answered with the join form instead of an error.

use crate::helpers::*;
use serde_json::{json, Value};
use waitroom::QueueClaims;

async fn page(app: &TestApp, path: &str, token: &str, accept: &str) -> (u16, String) {
    let r = app
        .get(path)
        .header("cookie", format!("sluice_queue={token}"))
        .header("accept-language", accept)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_queue_page_shows_the_place_in_both_languages_and_never_fails() {
    let app = TestApp::spawn(|_| {}).await;
    let round = app.round("open", 6000).await;
    for n in ["20260701", "20260702", "20260703"] {
        app.student(n, 1).await;
    }
    // One seat of admission: the first is admitted, the others wait.
    app.admin(round, json!({ "max_active": 1 })).await;
    let token = |v: Value| v["token"].as_str().unwrap().to_string();
    let first = token(app.join(round, "20260701").await.json().await.unwrap());
    app.poll_until(&first, |s| s["state"] == "admitted").await;
    app.join(round, "20260702").await;
    let third = token(app.join(round, "20260703").await.json().await.unwrap());
    let s = app
        .poll_until(&third, |s| {
            s["state"] == "waiting" && s["estimate"].is_object()
        })
        .await;
    let position = s["position"].as_u64().unwrap();
    assert_eq!(position, 2, "{s}");
    let path = format!("/rounds/{round}");

    let (status, en) = page(&app, &path, &third, "en-US,en;q=0.9").await;
    assert_eq!(status, 200);
    assert!(en.contains("lang=\"en\""));
    assert!(en.contains("Your place"));
    assert!(en.contains(&format!("id=\"position\">{position}<")), "{en}");
    assert!(en.contains("<progress"));
    let estimate = en.split("id=\"estimate\">").nth(1).unwrap();
    assert!(
        estimate.starts_with(|c: char| c.is_ascii_digit()),
        "{estimate}"
    );
    assert!(en.contains("http-equiv=\"refresh\""), "works without JS");
    // The script is told the notice the page was worded for, and reloads
    // when a poll answers another (a message may come, go or change).
    let notice = app.status(&third).await["notice"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        en.contains(&format!("data-notice=\"{notice}\"")),
        "notice {notice:?}: {en}"
    );

    let (status, ko) = page(&app, &path, &third, "ko-KR,ko;q=0.9").await;
    assert_eq!(status, 200);
    assert!(ko.contains("lang=\"ko\""));
    assert!(ko.contains("내 순서"));
    // The switch wins over the browser's language.
    let (_, switched) = page(&app, &format!("{path}?lang=en"), &third, "ko").await;
    assert!(switched.contains("lang=\"en\""));

    app.admin(round, json!({ "action": "pause" })).await;
    app.poll_until(&third, |s| s["state"] == "paused").await;
    let (status, paused) = page(&app, &path, &third, "en").await;
    assert_eq!(status, 200);
    assert!(paused.contains("Admission is paused. Your place is kept."));
    assert!(paused.contains("data-notice=\"paused\""), "{paused}");
    // Every notice's words travel with the page, for the script to show in
    // place when a poll answers another: no reload.
    for (name, words) in [
        ("paused", "Admission is paused. Your place is kept."),
        (
            "slowed",
            "The admission rate was lowered, so the estimate grew.",
        ),
        (
            "seats_busy",
            "Every slot is in use; you will be let in as others finish.",
        ),
    ] {
        assert!(
            paused.contains(&format!("<span data-n=\"{name}\">{words}</span>")),
            "{name}: {paused}"
        );
    }
    assert!(paused.contains(&format!("id=\"position\">{position}<")));
    let (_, paused_ko) = page(&app, &path, &third, "ko").await;
    assert!(paused_ko.contains("순서는 그대로 유지됩니다"));

    // A forged or expired token: the join form, not an error page.
    let mut claims = app.keyring.verify_queue(&third, now_ms()).unwrap();
    claims.iat = now_ms() - 7_200_000;
    claims.exp = now_ms() - 3_600_000;
    let expired = app.keyring.sign_queue(&QueueClaims { ..claims });
    for bad in ["garbage", "x.y.z", expired.as_str()] {
        let (status, html) = page(&app, &path, bad, "en").await;
        assert_eq!(status, 200, "{bad}");
        assert!(
            html.contains(&format!("action=\"/rounds/{round}/join\"")),
            "offers to join again: {html}"
        );
        assert!(
            html.contains("Your place in line has expired or is not valid here"),
            "says why: {bad}"
        );
    }
    let (_, html) = page(&app, &path, "garbage", "ko").await;
    assert!(html.contains("다시 줄을 서 주세요"), "says why, in Korean");
    app.finish().await;
}

/// A lowered rate is explained by every gateway, a gateway started after
/// the change included: the time comes from the round, not from each
/// gateway's memory of the rate before, so polls spread over the gateways
/// see the same notice.
#[tokio::test]
async fn a_gateway_started_after_a_rate_cut_explains_it_as_the_others_do() {
    let app = TestApp::spawn(|_| {}).await;
    // Two a minute and four in line: the last waits over a minute.
    let round = app.round("open", 2).await;
    let mut token = String::new();
    for n in ["20260791", "20260792", "20260793", "20260794"] {
        app.student(n, 1).await;
        let v: Value = app.join(round, n).await.json().await.unwrap();
        token = v["token"].as_str().unwrap().to_string();
    }
    let s = app.poll_until(&token, |s| s["state"] == "waiting").await;
    assert!(s["notice"].is_null(), "{s}");

    app.admin(round, json!({ "admission_per_min": 1 })).await;
    let s = app.poll_until(&token, |s| s["notice"] == "slowed").await;
    assert_eq!(s["state"], "waiting", "{s}");

    // A gateway that never saw the rate before the cut.
    let cluster = Cluster::start(&app.db, 1).await;
    let client = reqwest::Client::new();
    let mut last = Value::Null;
    for _ in 0..100 {
        last = cluster.status(&client, 0, &token).await;
        if last["state"] == "waiting" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(last["state"], "waiting", "{last}");
    assert_eq!(last["notice"], "slowed", "the same notice: {last}");
    // Raising the rate is no cut: nothing new to explain on a round never
    // lowered (a fresh round here).
    let other = app.round("open", 2).await;
    app.admin(other, json!({ "admission_per_min": 30 })).await;
    let lowered: Option<chrono::NaiveDateTime> =
        sqlx::query_scalar("SELECT rate_lowered_at FROM rounds WHERE id = ?")
            .bind(other.0)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(lowered, None, "a raise is not a cut");
    cluster.stop().await;
    app.finish().await;
}
