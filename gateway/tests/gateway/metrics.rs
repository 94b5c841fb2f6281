//! Every gateway series in `docs/metrics.md` is in real `/metrics` output
//! from the start, before any event, so dashboards and alerts never see a
//! gap where they expect a zero.

use crate::helpers::*;
use std::time::Duration;

/// The gateway metric names listed in `docs/metrics.md`.
fn documented() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
        .unwrap();
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Gateway"))
        .unwrap();
    let names: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 15, "{names:?}");
    names
}

#[tokio::test]
async fn every_documented_gateway_metric_is_exported_from_the_start() {
    let app = TestApp::spawn(|_| {}).await;
    app.round("open", 600).await;
    app.db.section("CSE201", 1, 40).await;
    let names = documented();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = app.get("/metrics").fetch_text().await;
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| {
                !text.lines().any(|l| {
                    l.strip_prefix(n.as_str())
                        .is_some_and(|rest| rest.starts_with(['{', ' ', '_']))
                })
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not in /metrics: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = app.get("/metrics").fetch_text().await;
    assert!(
        text.contains("sluice_section_seats_remaining{section=\"CSE201-01\"} 40"),
        "seats left are reported by section code"
    );
    app.finish().await;
}

/// With an operations port, metrics leave the public port: a student (or
/// anyone on the Internet) gets 404 there, Prometheus scrapes the other.
#[tokio::test]
async fn an_operations_port_takes_metrics_off_the_public_port() {
    let app = TestApp::spawn(|c| c.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let ops = format!("http://{}", app.metrics_addr.unwrap());
    assert_ne!(app.metrics_addr, Some(app.addr));

    let public = app.get("/metrics").send().await.unwrap();
    assert_eq!(public.status(), 404, "no metrics on the public port");
    let text = app.client.get(format!("{ops}/metrics")).fetch_text().await;
    assert!(text.contains("sluice_http_requests_total"), "{text}");
    for probe in ["/healthz", "/readyz"] {
        let r = app
            .client
            .get(format!("{ops}{probe}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{probe} on the operations port");
        let r = app.get(probe).send().await.unwrap();
        assert_eq!(r.status(), 200, "{probe} stays on the public port");
    }
    // Nothing else is served there.
    let r = app
        .client
        .get(format!("{ops}/api/queue/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    app.finish().await;
}
