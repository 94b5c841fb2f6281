//! Creating, migrating and dropping databases by URL.

use anyhow::Context;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{ConnectOptions, Connection, MySqlPool};
use std::str::FromStr;
use std::time::Duration;

/// Checks that `url` is a MySQL URL naming a database, without connecting;
/// the error says what a valid one looks like.
pub fn check_url(url: &str) -> Result<(), String> {
    const SHAPE: &str = "expected mysql://user:password@host:3306/database";
    if !(url.starts_with("mysql://") || url.starts_with("mariadb://")) {
        return Err(format!("not a mysql:// URL; {SHAPE}"));
    }
    let opts = MySqlConnectOptions::from_str(url).map_err(|e| format!("{e}; {SHAPE}"))?;
    match opts.get_database() {
        Some(name) if !name.is_empty() => Ok(()),
        _ => Err(format!("names no database; {SHAPE}")),
    }
}

/// Splits `mysql://u:p@h:port/db` into server options and the database name.
pub fn split_url(url: &str) -> anyhow::Result<(MySqlConnectOptions, String)> {
    let opts = MySqlConnectOptions::from_str(url).context("parsing the database URL")?;
    let name = opts
        .get_database()
        .context("the database URL names no database")?
        .to_string();
    anyhow::ensure!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "database name {name:?} must be letters, digits and underscores"
    );
    Ok((opts.database(""), name))
}

/// Creates the database named in `url` if it does not exist, then runs
/// every pending migration. Returns how many migrations were applied.
pub async fn create_and_migrate(url: &str) -> anyhow::Result<usize> {
    let (server, name) = split_url(url)?;
    let mut conn = server
        .clone()
        .log_statements(tracing::log::LevelFilter::Debug)
        .connect()
        .await
        .context("connecting to the MySQL server")?;
    // The name was checked to be [A-Za-z0-9_]+ above; identifiers cannot be
    // bound as parameters.
    sqlx::raw_sql(&format!(
        "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    ))
    .execute(&mut conn)
    .await
    .with_context(|| format!("creating database {name}"))?;
    conn.close().await.ok();
    let pool = connect(url, 2).await?;
    let before = applied(&pool).await;
    crate::MIGRATOR
        .run(&pool)
        .await
        .context("running migrations")?;
    let after = applied(&pool).await;
    pool.close().await;
    Ok(after.saturating_sub(before))
}

async fn applied(pool: &MySqlPool) -> usize {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool)
        .await
        .map(|n| usize::try_from(n).unwrap_or(0))
        .unwrap_or(0)
}

/// Drops the database named in `url`. Meant for throw-away databases (tests,
/// benches): sessions still using it are killed first, and the drop gives up
/// after a few seconds instead of waiting forever on a metadata lock.
pub async fn drop_database(url: &str) -> anyhow::Result<()> {
    let (server, name) = split_url(url)?;
    let mut conn = server
        .connect()
        .await
        .context("connecting to the MySQL server")?;
    let others: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
    )
    .bind(&name)
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    for id in others {
        // KILL takes no placeholders; `id` is a number read from the server.
        let _ = sqlx::raw_sql(&format!("KILL {id}"))
            .execute(&mut conn)
            .await;
    }
    sqlx::raw_sql("SET SESSION lock_wait_timeout = 10")
        .execute(&mut conn)
        .await
        .context("setting lock_wait_timeout")?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS `{name}`"))
        .execute(&mut conn)
        .await
        .with_context(|| format!("dropping database {name}"))?;
    conn.close().await.ok();
    Ok(())
}

/// A bounded pool with timeouts, so a stuck database turns into an error
/// instead of a hung task.
pub async fn connect(url: &str, max: u32) -> anyhow::Result<MySqlPool> {
    let (opts, pool) = pool_settings(url, max)?;
    pool.connect_with(opts).await.context("connecting to MySQL")
}

/// The connection and pool settings every Sluice pool starts from: statements
/// logged at trace level, slow ones (over 1 s) as warnings, at most `max`
/// connections, a 5 s wait for one, idle ones closed after a minute.
pub fn pool_settings(
    url: &str,
    max: u32,
) -> anyhow::Result<(MySqlConnectOptions, MySqlPoolOptions)> {
    let opts = MySqlConnectOptions::from_str(url)
        .context("parsing the database URL")?
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
    let pool = MySqlPoolOptions::new()
        .max_connections(max)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(60));
    Ok((opts, pool))
}
