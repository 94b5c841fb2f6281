//! Logs, metrics and the health endpoints of the worker.

use crate::consumer::Health;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::MySqlPool;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Logging as every Sluice process starts it (kept under this name for the
/// `sluice-dlq` binary).
pub use service::telemetry::init_tracing as init_logging;

/// Commit and publisher-confirm latency, 1 ms to 5 s.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// From the gateway's accept to the decision, 10 ms to 5 min.
const LAG: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Commands per transaction.
const SIZES: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
];

/// The process-wide Prometheus recorder with the worker's buckets (see
/// [`service::telemetry::install_recorder`]), and the worker's series
/// described and registered at zero on first call.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = service::telemetry::install_recorder(service::telemetry::Recorder {
                buckets: &[
                    ("sluice_worker_commit_seconds", SECONDS),
                    ("sluice_worker_decision_lag_seconds", LAG),
                    ("sluice_worker_batch_size", SIZES),
                    ("sluice_publish_confirm_seconds", SECONDS),
                ],
                gauge_idle: None,
            });
            // A recorder installed by someone else (a test harness): this
            // handle then renders nothing, and the worker still runs.
            let handle =
                installed.unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle());
            metrics::gauge!("sluice_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "sluice_worker_outcomes_total",
        "Decided command items by action, outcome and reason."
    );
    metrics::describe_histogram!(
        "sluice_worker_batch_size",
        "Commands per committed transaction."
    );
    metrics::describe_histogram!(
        "sluice_worker_commit_seconds",
        "Time to decide and commit one transaction."
    );
    metrics::describe_counter!(
        "sluice_worker_redeliveries_total",
        "Deliveries RabbitMQ marked as redelivered."
    );
    metrics::describe_counter!(
        "sluice_worker_dead_lettered_total",
        "Messages moved to the dead-letter queue."
    );
    metrics::describe_counter!(
        "sluice_worker_retries_total",
        "Transaction retries by kind."
    );
    metrics::describe_counter!(
        "sluice_worker_commit_failures_total",
        "Transactions that failed after retries."
    );
    metrics::describe_histogram!(
        "sluice_worker_decision_lag_seconds",
        "From gateway accept to decision."
    );
    metrics::describe_gauge!(
        "sluice_worker_oldest_unacked_age_seconds",
        "Age of the oldest command in the batch in hand."
    );
    metrics::describe_gauge!(
        "sluice_worker_in_flight",
        "Commands held in the current batch."
    );
    // Zero series, so dashboards show 0 rather than nothing before the first event.
    metrics::counter!("sluice_worker_redeliveries_total").absolute(0);
    metrics::counter!("sluice_worker_commit_failures_total").absolute(0);
    metrics::counter!("sluice_worker_dead_lettered_total", "reason" => "malformed").absolute(0);
    for kind in ["conflict", "connection", "timeout"] {
        metrics::counter!("sluice_worker_retries_total", "kind" => kind).absolute(0);
    }
    metrics::gauge!("sluice_worker_oldest_unacked_age_seconds").set(0.0);
    metrics::gauge!("sluice_worker_in_flight").set(0.0);
}

#[derive(Clone)]
struct Probe {
    handle: PrometheusHandle,
    health: Arc<Health>,
    pool: MySqlPool,
}

/// Serves `/metrics`, `/healthz` (the process answers) and `/readyz`
/// (consuming and the database answers) until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    pool: MySqlPool,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let state = Probe {
        handle: metrics_handle(),
        health,
        pool,
    };
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(p): State<Probe>| async move { p.handle.render() }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn ready(State(p): State<Probe>) -> (StatusCode, &'static str) {
    if !p.health.consuming.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "not consuming");
    }
    let ping = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query("SELECT 1").execute(&p.pool),
    )
    .await;
    match ping {
        Ok(Ok(_)) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}
