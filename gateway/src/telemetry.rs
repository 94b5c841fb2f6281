//! The gateway's metrics: its histogram buckets, the series registered up
//! front, and the per-round counters.
//!
//! Logging and the recorder itself are the shared plumbing of
//! [`service::telemetry`]; what is here is the gateway's own. The metric
//! names are a contract: see `docs/metrics.md`.

use metrics_exporter_prometheus::PrometheusHandle;
use std::time::Duration;

/// Request latency buckets, 1 ms to 10 s.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Publisher confirm buckets, 1 ms to 5 s.
const CONFIRM_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A gauge not set for this long leaves `/metrics`. Every gauge the gateway
/// keeps is set at least every few seconds (see [`keep_alive`]), so only
/// series that stopped meaning anything go: a section that left the
/// hottest 20, a round long closed.
const GAUGE_IDLE: Duration = Duration::from_secs(60);

/// Reasons the publisher reports in `sluice_publish_failures_total`.
pub const PUBLISH_FAILURES: &[&str] = &["unavailable", "nacked", "unroutable", "timeout", "amqp"];

/// The status poll route, registered up front for the poll panels.
const POLL_ROUTE: &str = "/api/queue/status";

/// The process-wide Prometheus recorder with the gateway's buckets,
/// installed on first use. The `metrics` facade has one global recorder per
/// process, so every gateway started in one process (tests) shares it.
pub fn metrics() -> anyhow::Result<PrometheusHandle> {
    service::telemetry::install_recorder(service::telemetry::Recorder {
        buckets: &[
            ("sluice_http_request_duration_seconds", HTTP_BUCKETS),
            ("sluice_publish_confirm_seconds", CONFIRM_BUCKETS),
        ],
        gauge_idle: Some(GAUGE_IDLE),
    })
}

/// Registers every gateway series whose label values are known up front,
/// so dashboards, alerts and the name check see zeros rather than gaps.
/// Per-round series are registered when a gateway first sees the round
/// ([`register_round`]); the seat gauges when the first seat query answers.
pub fn describe() {
    keep_alive();
    metrics::gauge!("sluice_waitroom_leader").set(0.0);
    for reason in crate::error::REJECTED_REASONS {
        metrics::counter!("sluice_http_rejected_total", "reason" => *reason).increment(0);
    }
    for action in ["enroll", "drop"] {
        metrics::counter!("sluice_commands_accepted_total", "action" => action).increment(0);
    }
    for result in ["sent", "not_confirmed", "empty", "expired"] {
        metrics::counter!("sluice_auto_send_total", "result" => result).increment(0);
    }
    for reason in PUBLISH_FAILURES {
        metrics::counter!("sluice_publish_failures_total", "reason" => *reason).increment(0);
    }
    metrics::counter!("sluice_waitroom_ticket_reads_total").increment(0);
    metrics::counter!("sluice_waitroom_reclaim_requests_total").increment(0);
    metrics::counter!("sluice_passes_renewed_total").increment(0);
    metrics::counter!("sluice_waitroom_liveness_dropped_total").increment(0);
    metrics::counter!("sluice_waitroom_liveness_written_total").increment(0);
    metrics::counter!("sluice_db_deadlock_retries_total").increment(0);
    metrics::gauge!("sluice_waitroom_liveness_pending").set(0.0);
    for kind in ["student", "admin"] {
        metrics::counter!("sluice_sign_in_throttled_total", "kind" => kind).increment(0);
    }
    metrics::counter!("sluice_publish_retries_total").increment(0);
    metrics::counter!("sluice_http_requests_total", "route" => POLL_ROUTE, "method" => "GET", "status" => "200")
        .increment(0);
    // Histograms are listed (with zero counts) once registered.
    let _ = metrics::histogram!("sluice_http_request_duration_seconds", "route" => POLL_ROUTE, "method" => "GET");
    let _ = metrics::histogram!("sluice_publish_confirm_seconds");
}

/// Sets the gauges that never change, so they never go idle.
pub fn keep_alive() {
    metrics::gauge!("sluice_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// A round's counters, registered at zero when a gateway first sees it.
#[derive(Debug, Clone)]
pub struct RoundCounters {
    pub joins: metrics::Counter,
    pub polls: metrics::Counter,
    pub admissions: metrics::Counter,
}

/// Registers (or finds) `round`'s counters.
pub fn register_round(round: &str) -> RoundCounters {
    let counters = RoundCounters {
        joins: metrics::counter!("sluice_waitroom_joins_total", "round" => round.to_string()),
        polls: metrics::counter!("sluice_waitroom_polls_total", "round" => round.to_string()),
        admissions: metrics::counter!("sluice_waitroom_admissions_total", "round" => round.to_string()),
    };
    counters.joins.increment(0);
    counters.polls.increment(0);
    counters.admissions.increment(0);
    // Incremented by the leader only, on events; listed from the start so
    // dashboards and alerts see a zero rather than nothing.
    metrics::counter!("sluice_waitroom_skips_total", "round" => round.to_string()).increment(0);
    metrics::counter!("sluice_waitroom_reclaims_total", "round" => round.to_string()).increment(0);
    metrics::counter!("sluice_waitroom_passes_extended_total", "round" => round.to_string())
        .increment(0);
    counters
}
