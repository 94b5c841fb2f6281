//! Tells the database this gateway is alive (every few seconds, one small
//! upsert), so the registrar's live view can count gateways. Rows of
//! gateways gone for a long time are removed by whoever writes next.

use crate::db::{gateways, MySqlStore};
use chrono::Utc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a gateway reports.
pub const EVERY: Duration = Duration::from_secs(5);

/// A gateway not heard from for this long is not counted.
pub const ALIVE_WITHIN_SECS: i64 = 15;

/// This process's name in the table: host and pid, unique per process.
pub fn instance() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gateway".to_string());
    let mut name = format!("{host}-{}", std::process::id());
    name.truncate(96);
    name
}

/// Reports until `stop`; failures are quiet (the room's own health shows
/// a database outage) and retried at the next tick.
pub async fn run(
    store: Arc<MySqlStore>,
    is_leader: Arc<AtomicBool>,
    limits: Arc<crate::limits::Limits>,
    stop: CancellationToken,
) {
    let name = instance();
    let started = Utc::now();
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = Utc::now();
        let leader = is_leader.load(Ordering::Relaxed);
        let _ = gateways::beat(&store, &name, started, now, leader).await;
        let _ = gateways::forget_older(&store, now - chrono::Duration::hours(1)).await;
        // The per-address ceiling is the deployment's: each gateway takes
        // its share. Unknown (database down) keeps the last share.
        if let Ok(n) = count_alive(&store).await {
            limits.share_among(n);
        }
    }
    // A clean stop takes this gateway out of the count at once.
    let _ = gateways::forget(&store, &name).await;
}

/// Gateways heard from lately.
pub async fn count_alive(store: &MySqlStore) -> Result<u64, crate::db::StoreError> {
    gateways::count_seen(
        store,
        Utc::now() - chrono::Duration::seconds(ALIVE_WITHIN_SECS),
        None,
    )
    .await
}

/// Gateways that were alive lately but have stopped reporting (not a clean
/// stop, which removes the row): partitioned from the database, or dead.
/// Liveness their students showed them may not have reached MySQL, so the
/// leader skips nobody while any is silent; after `forget_after` of silence
/// a gateway counts as gone (its students poll another one by then).
pub async fn count_silent(
    store: &MySqlStore,
    forget_after: Duration,
) -> Result<u64, crate::db::StoreError> {
    let now = Utc::now();
    let quiet = now - chrono::Duration::seconds(ALIVE_WITHIN_SECS);
    let gone = quiet
        - chrono::Duration::from_std(forget_after).unwrap_or_else(|_| chrono::Duration::hours(1));
    gateways::count_seen(store, gone, Some(quiet)).await
}
