//! Health, readiness and metrics. These never touch MySQL or RabbitMQ, so
//! they answer even when both are down or the gateway is saturated.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The gateway can serve: its room snapshot is fresh (MySQL answers) and
/// its join batcher is running.
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, &'static str) {
    if !app.joiner.is_running() {
        (StatusCode::SERVICE_UNAVAILABLE, "joins are not being taken")
    } else if app.rooms.is_fresh(app.config.stale_after()) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "room state is stale")
    }
}

/// Prometheus text format.
pub async fn metrics(State(app): State<AppState>) -> String {
    app.metrics.render()
}
