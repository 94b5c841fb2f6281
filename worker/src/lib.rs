//! The Sluice worker: drains enrollment commands from RabbitMQ and commits
//! seats to MySQL, exactly once, never oversold.
//!
//! # Layout
//! Top to bottom; a module uses only those below it.
//! - [`consumer`]: the lapin adapter (consume, batch, decide, ack).
//! - [`deadletters`]: listing and replaying dead letters (`sluice-dlq`).
//! - [`batch`]: plans a batch of deliveries into independent transactions.
//! - [`fill`]: the sweep that gives seats freed without a command (a
//!   capacity raised, a section reopened) to their waitlists.
//! - [`ledger`](mod@ledger): runs a decision in a transaction with retries.
//! - [`decide`]: the decision logic: check passes, load the world under
//!   locks, [`decide::plan()`] (a pure function of world and commands),
//!   write. Its SQL is in `decide/load.rs`, `write.rs` and `sql.rs` only.
//! - [`invariants`]: the domain invariants, checked in SQL.
//! - [`telemetry`]: metrics, `/healthz`, `/readyz`.
//! - [`config`]: settings from flags and the environment.
//!
//! Below them: the pure rules (`enrollment`), pass verification
//! (`waitroom`), the broker topology (`broker`) and the shared plumbing
//! (`service`).

pub mod batch;
pub mod config;
pub mod consumer;
pub mod deadletters;
pub mod decide;
pub mod fill;
pub mod invariants;
pub mod ledger;
pub mod telemetry;

use anyhow::Context as _;
use config::Config;
use consumer::Health;
use ledger::Ledger;
use service::connections::ExposeSecret;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use waitroom::Keyring;

/// Builds the ledger (pool, keys) a worker decides with.
pub async fn ledger(config: &Config, shutdown: CancellationToken) -> anyhow::Result<Ledger> {
    let keyring: Keyring = config.pass_keyring().context("loading the pass keys")?;
    if config.pass_keys.is_none() {
        if config.signing_keys == waitroom::token::DEV_KEY_SPEC {
            tracing::warn!("using the development key; set SLUICE_PASS_KEYS in production");
        } else {
            tracing::warn!(
                "verifying passes with keys derived from SLUICE_SIGNING_KEYS, which can also sign \
                 sessions; give workers SLUICE_PASS_KEYS instead"
            );
        }
    }
    tracing::info!(keys = %keyring.describe(), "pass keys loaded (first signs at the gateways)");
    let retry = config.retry();
    let pool = ledger::connect(
        config.connections.database_url.expose_secret(),
        config.db_pool,
        &retry,
    )
    .await?;
    Ok(Ledger {
        pool,
        keyring,
        worker: config.worker_name(),
        max_command_age: chrono::Duration::seconds(
            i64::try_from(config.max_command_age_secs).unwrap_or(i64::MAX / 1000),
        ),
        retry,
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
    let sweeper = (config.fill_interval_ms > 0).then(|| {
        tokio::spawn(fill::run(
            ledger.clone(),
            std::time::Duration::from_millis(config.fill_interval_ms),
            shutdown.clone(),
        ))
    });
    consumer::run(config, ledger, health, shutdown.clone()).await?;
    if let Some(sweeper) = sweeper {
        // The consumer stopped on shutdown; the sweep stops on it too.
        shutdown.cancel();
        let _ = sweeper.await;
    }
    pool.close().await;
    match server.await {
        Ok(r) => r.context("metrics server")?,
        Err(e) => tracing::warn!(error = %e, "metrics server task ended abnormally"),
    }
    Ok(())
}
