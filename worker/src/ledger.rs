//! Running [`decide`](crate::decide::decide) in a transaction, with retries.
//!
//! Conflicts the database resolves by aborting one side (deadlock, lock wait
//! timeout, a duplicate outcome from a concurrent redelivery) are retried a
//! bounded number of times with jittered exponential backoff; lost
//! connections are retried until the database is back or the worker shuts
//! down, so an outage holds the deliveries instead of failing them. A retry
//! is always safe: the outcome rows make a committed decision visible to the
//! next attempt, which then replays instead of deciding twice.

use crate::decide::{decide, Context, Decision};
use chrono::{Duration as ChronoDuration, Utc};
use enrollment::Command;
use rand::Rng;
use sqlx::mysql::MySqlDatabaseError;
use sqlx::{Connection, MySqlPool};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use waitroom::Keyring;

/// How a transaction ended without committing.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the worker is shutting down")]
    Shutdown,
    #[error("database error after {attempts} attempts: {source}")]
    Database {
        attempts: u32,
        #[source]
        source: sqlx::Error,
    },
    #[error("transaction did not finish within {0:?}")]
    Timeout(Duration),
}

/// What kind of failure a database error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Another transaction won; try again soon.
    Conflict,
    /// The connection or server is gone; try again when it is back.
    Connection,
    /// Retrying will not help.
    Fatal,
}

/// Sorts a database error by what to do about it.
pub fn classify(e: &sqlx::Error) -> Failure {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Failure::Connection,
        sqlx::Error::Database(db) => match db
            .try_downcast_ref::<MySqlDatabaseError>()
            .map(|m| m.number())
        {
            // deadlock, lock wait timeout, duplicate key (a concurrent
            // decision of the same command), query interrupted
            Some(1213 | 1205 | 1062 | 1317) => Failure::Conflict,
            // server shutting down, too many connections, gone away, lost
            Some(1053 | 1040 | 2006 | 2013 | 1927) => Failure::Connection,
            _ => Failure::Fatal,
        },
        _ => Failure::Fatal,
    }
}

/// Retry and timeout settings.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub conflict_attempts: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    pub txn_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            conflict_attempts: 12,
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_secs(5),
            txn_timeout: Duration::from_secs(30),
        }
    }
}

/// Decides groups of commands against MySQL.
#[derive(Debug, Clone)]
pub struct Ledger {
    pub pool: MySqlPool,
    pub keyring: Keyring,
    pub worker: String,
    pub max_command_age: ChronoDuration,
    pub retry: RetryPolicy,
    pub shutdown: CancellationToken,
}

impl Ledger {
    /// Decides `commands` in one transaction, retrying as the module says.
    pub async fn decide(&self, commands: &[&Command]) -> Result<Vec<Decision>, LedgerError> {
        let mut attempts = 0u32;
        let mut conflicts = 0u32;
        loop {
            attempts += 1;
            let outcome =
                tokio::time::timeout(self.retry.txn_timeout, self.attempt(commands)).await;
            let err = match outcome {
                Ok(Ok(decisions)) => return Ok(decisions),
                Ok(Err(e)) => e,
                Err(_) => {
                    metrics::counter!("sluice_worker_retries_total", "kind" => "timeout")
                        .increment(1);
                    return Err(LedgerError::Timeout(self.retry.txn_timeout));
                }
            };
            let kind = classify(&err);
            match kind {
                Failure::Conflict if conflicts + 1 < self.retry.conflict_attempts => {
                    conflicts += 1;
                    metrics::counter!("sluice_worker_retries_total", "kind" => "conflict")
                        .increment(1);
                }
                Failure::Connection => {
                    metrics::counter!("sluice_worker_retries_total", "kind" => "connection")
                        .increment(1);
                    if attempts == 1 || attempts.is_power_of_two() {
                        tracing::warn!(error = %err, attempts, "database unavailable, holding the batch and retrying");
                    }
                }
                _ => {
                    metrics::counter!("sluice_worker_commit_failures_total").increment(1);
                    return Err(LedgerError::Database {
                        attempts,
                        source: err,
                    });
                }
            }
            let wait = self.backoff(attempts);
            tokio::select! {
                _ = self.shutdown.cancelled() => return Err(LedgerError::Shutdown),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.retry.max_backoff);
        // Full jitter, so workers that collided do not collide again.
        let ms = u64::try_from(exp.as_millis()).unwrap_or(u64::MAX).max(1);
        Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
    }

    async fn attempt(&self, commands: &[&Command]) -> Result<Vec<Decision>, sqlx::Error> {
        let started = Instant::now();
        let mut conn = self.pool.acquire().await?;
        // Applies to the next transaction only. READ COMMITTED: every read
        // after the row locks sees the latest committed state, and inserts
        // take no gap locks that would deadlock workers on the same section.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *conn)
            .await?;
        let mut tx = conn.begin().await?;
        let ctx = Context {
            keyring: &self.keyring,
            worker: &self.worker,
            now: Utc::now(),
            max_command_age: self.max_command_age,
        };
        let decisions = decide(&mut tx, &ctx, commands).await?;
        tx.commit().await?;
        metrics::histogram!("sluice_worker_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("sluice_worker_batch_size").record(commands.len() as f64);
        Ok(decisions)
    }
}
