//! The fill sweep: gives seats that came free without a command (a
//! registrar raised a capacity or reopened a section) to the students
//! waiting for them.
//!
//! Every worker looks, each interval, for open sections with a free seat
//! and a line ([`decide::fillable`]) and fills each in a transaction of its
//! own ([`decide::fill`]), under the same section lock commands take, so
//! two workers sweeping at once promote the line once and in order. Nothing
//! is lost to a failed sweep: the seat stays free, the line stays as it
//! was, and the next sweep tries again (decision 074).

use crate::decide::{self, Context};
use crate::ledger::Ledger;
use chrono::Utc;
use sqlx::Connection;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Most sections filled per sweep; the rest wait for the next one.
const SECTIONS_PER_SWEEP: u32 = 200;

/// Sweeps every `interval` until `shutdown`.
pub async fn run(ledger: Ledger, interval: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match sweep(&ledger).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "waitlists filled from free seats"),
            Err(e) => {
                tracing::warn!(error = %e, "waitlist fill sweep failed; trying again next time")
            }
        }
    }
}

/// One sweep: fills every section [`decide::fillable`] names, one
/// transaction each. Returns the waitlist entries resolved.
pub async fn sweep(ledger: &Ledger) -> Result<usize, decide::DecideError> {
    let mut conn = ledger.pool.acquire().await?;
    let sections = decide::fillable(&mut conn, SECTIONS_PER_SWEEP).await?;
    let mut resolved = 0;
    for section in sections {
        let mut tx = conn.begin().await?;
        let ctx = Context {
            keyring: &ledger.keyring,
            worker: &ledger.worker,
            now: Utc::now(),
            max_command_age: ledger.max_command_age,
        };
        let n = decide::fill(&mut tx, &ctx, &[section]).await?;
        tx.commit().await?;
        metrics::counter!("sluice_worker_fill_resolved_total").increment(n as u64);
        resolved += n;
    }
    Ok(resolved)
}
