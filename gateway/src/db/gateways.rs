//! The gateways themselves: their heartbeats (`gateway_heartbeats`) and
//! the admission leadership, a MySQL named lock held on a connection of
//! its own (its loss, or the connection's, ends the leadership).

use super::{MySqlStore, StoreError};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{ConnectOptions, Connection};
use std::str::FromStr;
use std::time::Duration;

/// The lock's name: one per database, so test databases do not compete.
const LOCK: &str = "CONCAT('sluice.leader.', DATABASE())";

/// Records that gateway `instance` (started at `started`) is alive at
/// `now`, and whether it leads.
pub async fn beat(
    store: &MySqlStore,
    instance: &str,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    leader: bool,
) -> Result<(), StoreError> {
    store
        .timed(
            sqlx::query(
                "INSERT INTO gateway_heartbeats (instance, started_at, seen_at, leader) \
                 VALUES (?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE seen_at = VALUES(seen_at), leader = VALUES(leader)",
            )
            .bind(instance)
            .bind(started)
            .bind(now)
            .bind(leader)
            .execute(store.pool()),
        )
        .await?;
    Ok(())
}

/// Removes the rows of gateways last seen before `before`.
pub async fn forget_older(store: &MySqlStore, before: DateTime<Utc>) -> Result<(), StoreError> {
    store
        .timed(
            sqlx::query("DELETE FROM gateway_heartbeats WHERE seen_at < ?")
                .bind(before)
                .execute(store.pool()),
        )
        .await?;
    Ok(())
}

/// Removes gateway `instance`'s row (a clean stop).
pub async fn forget(store: &MySqlStore, instance: &str) -> Result<(), StoreError> {
    store
        .timed(
            sqlx::query("DELETE FROM gateway_heartbeats WHERE instance = ?")
                .bind(instance)
                .execute(store.pool()),
        )
        .await?;
    Ok(())
}

/// Gateways last seen at or after `since`, and before `until` when given.
pub async fn count_seen(
    store: &MySqlStore,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Result<u64, StoreError> {
    let n: i64 = match until {
        None => {
            store
                .timed(
                    sqlx::query_scalar(
                        "SELECT COUNT(*) FROM gateway_heartbeats WHERE seen_at >= ?",
                    )
                    .bind(since)
                    .fetch_one(store.pool()),
                )
                .await?
        }
        Some(until) => store
            .timed(
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM gateway_heartbeats WHERE seen_at < ? AND seen_at >= ?",
                )
                .bind(until)
                .bind(since)
                .fetch_one(store.pool()),
            )
            .await?,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Tries once (without waiting) to take the leadership lock on a new
/// connection; the connection that holds it, or `None` when another does.
pub async fn try_lead(
    database_url: &SecretString,
    timeout: Duration,
) -> Result<Option<MySqlConnection>, sqlx::Error> {
    let attempt = async {
        let mut conn = MySqlConnectOptions::from_str(database_url.expose_secret())?
            .log_statements(tracing::log::LevelFilter::Trace)
            .connect()
            .await?;
        let got: Option<i64> = sqlx::query_scalar(&format!("SELECT GET_LOCK({LOCK}, 0)"))
            .fetch_one(&mut conn)
            .await?;
        if got == Some(1) {
            Ok(Some(conn))
        } else {
            conn.close().await.ok();
            Ok(None)
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

/// Whether `conn` still holds the leadership lock (unknown counts as no).
pub async fn still_leads(conn: &mut MySqlConnection, timeout: Duration) -> bool {
    let sql = format!("SELECT IS_USED_LOCK({LOCK}) = CONNECTION_ID()");
    let check = sqlx::query_scalar::<_, Option<i64>>(&sql).fetch_one(conn);
    matches!(tokio::time::timeout(timeout, check).await, Ok(Ok(Some(1))))
}

/// Gives the lock up and closes the connection. Best effort: a closed
/// connection releases the lock anyway.
pub async fn resign(mut conn: MySqlConnection, timeout: Duration) {
    let sql = format!("DO RELEASE_LOCK({LOCK})");
    let release = sqlx::query(&sql).execute(&mut conn);
    let _ = tokio::time::timeout(timeout, release).await;
    let _ = tokio::time::timeout(timeout, conn.close()).await;
}
