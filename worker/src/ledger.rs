//! Running [`decide`](crate::decide::decide()) in a transaction, with retries.
//!
//! Conflicts the database resolves by aborting one side (deadlock, lock wait
//! timeout, a duplicate outcome from a concurrent redelivery) and attempts
//! that outlive their timeout are retried with jittered exponential backoff,
//! a bounded number of times and within a bounded time ([`RetryPolicy`]);
//! lost connections are retried until the database is back or the worker
//! shuts down, so an outage holds the deliveries instead of failing them. A
//! retry is always safe: the outcome rows make a committed decision visible
//! to the next attempt, which then replays instead of deciding twice.
//!
//! Every connection of the ledger's pool ([`connect`]) waits for a row lock
//! at most [`RetryPolicy::lock_wait`], well below the attempt timeout, so a
//! lock held elsewhere ends an attempt with a clean, retryable lock-wait
//! error from the server instead of a transaction abandoned mid-statement.
//! When retrying is over, [`Ledger::record_failed`] gives the command its
//! one outcome: `failed`.

use crate::decide::{decide, record_failed, Context, DecideError, Decision};
use anyhow::Context as _;
use chrono::{Duration as ChronoDuration, Utc};
use enrollment::{Command, Reason};
use rand::Rng;
use sqlx::mysql::MySqlDatabaseError;
use sqlx::{Connection, Executor, MySqlPool};
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
        source: DecideError,
    },
    #[error("no attempt finished within {0:?}")]
    Timeout(Duration),
}

impl LedgerError {
    /// Retrying the same commands will not help: the error is not one the
    /// database resolves by waiting (a bad command, a bug).
    pub fn is_fatal(&self) -> bool {
        match self {
            LedgerError::Database { source, .. } => classify(source) == Failure::Fatal,
            LedgerError::Shutdown | LedgerError::Timeout(_) => false,
        }
    }
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

/// Sorts a decision error by what to do about it.
pub fn classify(e: &DecideError) -> Failure {
    match e {
        DecideError::Stale(_) => Failure::Conflict,
        DecideError::Database(e) => classify_sql(e),
    }
}

fn classify_sql(e: &sqlx::Error) -> Failure {
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
    /// How long one attempt (one transaction) may take.
    pub txn_timeout: Duration,
    /// How long a statement waits for a row lock (`innodb_lock_wait_timeout`,
    /// whole seconds); below `txn_timeout` so the server ends the wait first.
    pub lock_wait: Duration,
    /// How long conflicts and timeouts are retried before giving up.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            conflict_attempts: 12,
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_secs(5),
            txn_timeout: Duration::from_secs(30),
            lock_wait: Duration::from_secs(10),
            give_up_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Checks that the timeouts nest: a lock wait ends before its attempt,
    /// an attempt before retrying is over.
    pub fn check(&self) -> Result<(), String> {
        if self.lock_wait < Duration::from_secs(1) {
            return Err("the lock wait must be at least one second".into());
        }
        if self.lock_wait >= self.txn_timeout {
            return Err(format!(
                "the lock wait ({:?}) must be shorter than the transaction timeout ({:?})",
                self.lock_wait, self.txn_timeout
            ));
        }
        if self.txn_timeout > self.give_up_after {
            return Err(format!(
                "the transaction timeout ({:?}) must not exceed the retry time ({:?})",
                self.txn_timeout, self.give_up_after
            ));
        }
        Ok(())
    }
}

/// The ledger's pool: bounded, with timeouts, and with every connection set
/// up for deciding: READ COMMITTED (every read after the row locks sees the
/// latest committed state, and inserts take no gap locks that would
/// deadlock workers on the same section) and the policy's lock wait.
pub async fn connect(url: &str, max: u32, retry: &RetryPolicy) -> anyhow::Result<MySqlPool> {
    retry.check().map_err(anyhow::Error::msg)?;
    let lock_wait = retry.lock_wait.as_secs().max(1);
    let (opts, pool) = schema::db::pool_settings(url, max)?;
    pool.after_connect(move |conn, _| {
        Box::pin(async move {
            conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
                .await?;
            sqlx::query("SET SESSION innodb_lock_wait_timeout = ?")
                .bind(lock_wait)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    })
    .connect_with(opts)
    .await
    .context("connecting to MySQL")
}

/// Decides groups of commands against MySQL.
#[derive(Debug, Clone)]
pub struct Ledger {
    /// From [`connect`], with the same policy as `retry`.
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
        let give_up_at = Instant::now() + self.retry.give_up_after;
        let mut attempts = 0u32;
        let mut conflicts = 0u32;
        loop {
            attempts += 1;
            // An attempt never runs past the point of giving up.
            let budget = self
                .retry
                .txn_timeout
                .min(give_up_at.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(1));
            let err = match tokio::time::timeout(budget, self.attempt(commands)).await {
                Ok(Ok(decisions)) => return Ok(decisions),
                Ok(Err(e)) => Some(e),
                Err(_) => None,
            };
            let over = Instant::now() >= give_up_at;
            match err.as_ref().map(classify) {
                None => {
                    metrics::counter!("sluice_worker_retries_total", "kind" => "timeout")
                        .increment(1);
                    if over || conflicts + 1 >= self.retry.conflict_attempts {
                        metrics::counter!("sluice_worker_commit_failures_total").increment(1);
                        return Err(LedgerError::Timeout(self.retry.give_up_after));
                    }
                    conflicts += 1;
                }
                Some(Failure::Conflict)
                    if !over && conflicts + 1 < self.retry.conflict_attempts =>
                {
                    conflicts += 1;
                    metrics::counter!("sluice_worker_retries_total", "kind" => "conflict")
                        .increment(1);
                }
                Some(Failure::Connection) => {
                    metrics::counter!("sluice_worker_retries_total", "kind" => "connection")
                        .increment(1);
                    if attempts == 1 || attempts.is_power_of_two() {
                        if let Some(e) = &err {
                            tracing::warn!(error = %e, attempts, "database unavailable, holding the batch and retrying");
                        }
                    }
                }
                _ => {
                    metrics::counter!("sluice_worker_commit_failures_total").increment(1);
                    return Err(match err {
                        Some(source) => LedgerError::Database { attempts, source },
                        None => LedgerError::Timeout(self.retry.give_up_after),
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

    /// Gives `commands` their one outcome when they cannot be decided:
    /// `failed`, with `reason`. Commands decided meanwhile keep their
    /// outcome. Retried like a decision; returns the commands recorded.
    pub async fn record_failed(
        &self,
        commands: &[&Command],
        reason: Reason,
    ) -> Result<Vec<enrollment::CommandId>, LedgerError> {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let attempt = async {
                let mut conn = self.pool.acquire().await?;
                let mut tx = conn.begin().await?;
                let ctx = self.context();
                let n = record_failed(&mut tx, &ctx, commands, reason).await?;
                tx.commit().await?;
                Ok::<_, DecideError>(n)
            };
            let err = match tokio::time::timeout(self.retry.txn_timeout, attempt).await {
                Ok(Ok(n)) => return Ok(n),
                Ok(Err(e)) => e,
                Err(_) => return Err(LedgerError::Timeout(self.retry.txn_timeout)),
            };
            match classify(&err) {
                Failure::Connection => {}
                Failure::Conflict if attempts < self.retry.conflict_attempts => {}
                _ => {
                    return Err(LedgerError::Database {
                        attempts,
                        source: err,
                    })
                }
            }
            let wait = self.backoff(attempts);
            tokio::select! {
                _ = self.shutdown.cancelled() => return Err(LedgerError::Shutdown),
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn context(&self) -> Context<'_> {
        Context {
            keyring: &self.keyring,
            worker: &self.worker,
            now: Utc::now(),
            max_command_age: self.max_command_age,
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

    async fn attempt(&self, commands: &[&Command]) -> Result<Vec<Decision>, DecideError> {
        let started = Instant::now();
        // Isolation and lock wait were set when the connection was made.
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let ctx = self.context();
        let decisions = decide(&mut tx, &ctx, commands).await?;
        tx.commit().await?;
        metrics::histogram!("sluice_worker_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("sluice_worker_batch_size").record(commands.len() as f64);
        Ok(decisions)
    }
}
