//! The Sluice worker: drains enrollment commands from RabbitMQ and commits
//! seats to MySQL, exactly once, never oversold.
//!
//! # Layout
//! - [`decide`]: the decision logic, a plain function over a transaction.
//! - [`ledger`]: runs it in a transaction with retries.
//! - [`batch`]: plans a batch of deliveries into independent transactions.
//! - [`consumer`]: the lapin adapter (consume, batch, decide, ack).
//! - [`deadletters`]: listing and replaying dead letters (`sluice-dlq`).
//! - [`invariants`]: the domain invariants, checked in SQL.
//! - [`telemetry`]: logs, metrics, `/healthz`, `/readyz`.
//! - [`config`]: settings from flags and the environment.

pub mod batch;
pub mod config;
pub mod consumer;
pub mod deadletters;
pub mod decide;
pub mod invariants;
pub mod ledger;
pub mod telemetry;

use anyhow::Context as _;
use config::Config;
use consumer::Health;
use ledger::{Ledger, RetryPolicy};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use waitroom::Keyring;

/// Builds the ledger (pool, keys) a worker decides with.
pub async fn ledger(config: &Config, shutdown: CancellationToken) -> anyhow::Result<Ledger> {
    let keyring = Keyring::from_spec(&config.signing_keys).context("parsing the signing keys")?;
    if config.signing_keys == waitroom::token::DEV_KEY_SPEC {
        tracing::warn!("using the development signing key; set SLUICE_SIGNING_KEYS in production");
    }
    let pool = schema::db::connect(&config.database_url, config.db_pool).await?;
    Ok(Ledger {
        pool,
        keyring,
        worker: config.worker_name(),
        max_command_age: chrono::Duration::seconds(
            i64::try_from(config.max_command_age_secs).unwrap_or(i64::MAX / 1000),
        ),
        retry: RetryPolicy::default(),
        shutdown,
    })
}

/// Runs a worker until `shutdown` is cancelled: the consumer plus the
/// metrics/health server on `metrics`. Returns once the consumer stopped and
/// every committed delivery was acked.
pub async fn run(
    config: Config,
    metrics: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    telemetry::metrics_handle();
    let ledger = ledger(&config, shutdown.clone()).await?;
    let health = Arc::new(Health::default());
    let server = tokio::spawn(telemetry::serve(
        metrics,
        ledger.pool.clone(),
        health.clone(),
        shutdown.clone(),
    ));
    let pool = ledger.pool.clone();
    consumer::run(config, ledger, health, shutdown).await?;
    pool.close().await;
    match server.await {
        Ok(r) => r.context("metrics server")?,
        Err(e) => tracing::warn!(error = %e, "metrics server task ended abnormally"),
    }
    Ok(())
}

/// Cancels `token` on SIGINT or SIGTERM.
pub async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
    token.cancel();
}
