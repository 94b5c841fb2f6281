//! Tells the database this gateway is alive (every few seconds, one small
//! upsert), so the registrar's live view can count gateways. Rows of
//! gateways gone for a long time are removed by whoever writes next.

use crate::db::MySqlStore;
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
        let _ = store
            .timed(
                sqlx::query(
                    "INSERT INTO gateway_heartbeats (instance, started_at, seen_at, leader) \
                     VALUES (?, ?, ?, ?) \
                     ON DUPLICATE KEY UPDATE seen_at = VALUES(seen_at), leader = VALUES(leader)",
                )
                .bind(&name)
                .bind(started)
                .bind(now)
                .bind(leader)
                .execute(store.pool()),
            )
            .await;
        let _ = store
            .timed(
                sqlx::query("DELETE FROM gateway_heartbeats WHERE seen_at < ?")
                    .bind(now - chrono::Duration::hours(1))
                    .execute(store.pool()),
            )
            .await;
        // The per-address ceiling is the deployment's: each gateway takes
        // its share. Unknown (database down) keeps the last share.
        if let Ok(n) = count_alive(&store).await {
            limits.share_among(n);
        }
    }
    // A clean stop takes this gateway out of the count at once.
    let _ = store
        .timed(
            sqlx::query("DELETE FROM gateway_heartbeats WHERE instance = ?")
                .bind(&name)
                .execute(store.pool()),
        )
        .await;
}

/// Gateways heard from lately.
pub async fn count_alive(store: &MySqlStore) -> Result<u64, crate::db::StoreError> {
    let n: i64 = store
        .timed(
            sqlx::query_scalar("SELECT COUNT(*) FROM gateway_heartbeats WHERE seen_at >= ?")
                .bind(Utc::now() - chrono::Duration::seconds(ALIVE_WITHIN_SECS))
                .fetch_one(store.pool()),
        )
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
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
    let n: i64 = store
        .timed(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM gateway_heartbeats WHERE seen_at < ? AND seen_at >= ?",
            )
            .bind(quiet)
            .bind(gone)
            .fetch_one(store.pool()),
        )
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}
