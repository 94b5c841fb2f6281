//! Every SQL statement the gateway runs, grouped by entity, behind one
//! handle ([`MySqlStore`]) that bounds each call by a timeout.
//!
//! Direction: `http` (handlers) calls `db`; `db` calls the pure crates
//! (`waitroom`, `enrollment`) and never anything above it. Failures leave
//! as [`StoreError`], which the API error type classifies in one place:
//! what waiting cures (timeouts, the pool, I/O, lock waits) is a 503 with
//! Retry-After, anything else a logged 500.
//!
//! # Modules
//! - [`accounts`]: students' and admins' sign-in rows and admin standing.
//! - [`auto_send`]: "send my cart when I am admitted" opt-ins.
//! - [`cart`]: a student's cart (장바구니).
//! - [`catalog`]: the course catalog and seats the pages' cache holds.
//! - [`gateways`]: gateway heartbeats and the admission leadership lock.
//! - [`outcome_stats`]: counts over decided commands, for the live view.
//! - [`outcomes`]: the worker's decisions on commands, per command and per
//!   student.
//! - [`room`]: the waiting room's shared state ([`waitroom::RoomStore`]).
//! - [`seats`]: seats left in the hottest sections.
//! - [`sign_in`]: per-account sign-in failure counts.
//! - [`audit`]: the registrar's audit log, written inside each change.
//! - [`rounds`], [`terms`]: rounds as the registrar creates and schedules them.
//! - [`courses`], [`sections`]: the catalog as the registrar edits it.
//! - [`students`], [`fairness`]: a student's timeline, a round's fairness report.
//! - [`imports`], [`exports`]: CSV imports (one transaction) and streamed exports.
//! - [`standing`]: a student's row, completed courses and held sections.
//! - [`waitlist`]: a student's places in line, a section's line.

pub mod accounts;
pub mod audit;
pub mod auto_send;
pub mod cart;
pub mod catalog;
pub mod courses;
pub mod exports;
pub mod fairness;
pub mod gateways;
pub mod imports;
mod lanes;
pub mod outcome_stats;
pub mod outcomes;
pub mod pace;
pub mod rehearsals;
pub mod room;
pub mod rounds;
pub mod seats;
pub mod sections;
pub mod sign_in;
pub mod standing;
pub mod students;
pub mod terms;
pub mod waitlist;

use chrono::{DateTime, NaiveDateTime};
use sqlx::{MySql, MySqlPool, QueryBuilder};
use std::future::Future;
use std::time::Duration;

/// Rows per statement in bulk updates, far below MySQL's placeholder limit.
const CHUNK: usize = 1000;

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Why the store failed. Callers never show these to clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected value in column {0}")]
    Corrupt(&'static str),
}

/// MariaDB error numbers that waiting cures: lock wait timeout, deadlock,
/// too many connections, server shutting down, connection killed, query
/// interrupted, read-only (a failover in progress).
const TRANSIENT_CODES: &[u16] = &[1205, 1213, 1040, 1053, 1927, 1317, 1290, 1836];

impl StoreError {
    /// Whether the failure is the database being away, slow or busy (retry
    /// helps), as opposed to a bug or bad data (retry does not).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Timeout(_) => true,
            StoreError::Corrupt(_) => false,
            StoreError::Db(e) => transient(e),
        }
    }

    /// InnoDB chose this statement as a deadlock's victim and rolled it
    /// back whole: running it again is safe and usually succeeds at once.
    pub fn is_deadlock(&self) -> bool {
        self.database()
            .and_then(|e| e.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
            .is_some_and(|e| e.number() == 1213)
    }

    /// The database's error, when the failure is one the database refused
    /// (a constraint, say), for call sites that map it to an answer.
    pub fn database(&self) -> Option<&dyn sqlx::error::DatabaseError> {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// A unique key refused the write (a duplicate the caller can name).
    pub fn is_unique_violation(&self) -> bool {
        self.database().is_some_and(|e| e.is_unique_violation())
    }

    /// A foreign key refused the write (a reference to nothing, or a row
    /// still referenced).
    pub fn is_foreign_key_violation(&self) -> bool {
        self.database()
            .is_some_and(|e| e.is_foreign_key_violation())
    }
}

fn transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|e| TRANSIENT_CODES.contains(&e.number())),
        _ => false,
    }
}

/// MySQL-backed room state.
#[derive(Debug, Clone)]
pub struct MySqlStore {
    pool: MySqlPool,
    timeout: Duration,
    /// An admitted ticket older than this may queue again.
    pass_ttl_ms: u64,
    /// A skipped student who joins again within this long keeps their turn.
    reclaim_window_ms: u64,
}

/// How long a skipped student may come back and keep their turn, unless
/// configured otherwise.
pub const DEFAULT_RECLAIM_WINDOW: Duration = Duration::from_secs(600);

impl MySqlStore {
    pub fn new(pool: MySqlPool, timeout: Duration, pass_ttl: Duration) -> MySqlStore {
        MySqlStore {
            pool,
            timeout,
            pass_ttl_ms: u64::try_from(pass_ttl.as_millis()).unwrap_or(u64::MAX),
            reclaim_window_ms: millis(DEFAULT_RECLAIM_WINDOW),
        }
    }

    /// Sets how long a skipped student may come back and keep their turn.
    pub fn with_reclaim_window(mut self, window: Duration) -> MySqlStore {
        self.reclaim_window_ms = millis(window);
        self
    }

    /// The pool, for the few reads that are not room state.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    /// Runs `fut` under the store's timeout.
    pub async fn timed<T, E>(
        &self,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, StoreError>
    where
        StoreError: From<E>,
    {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r.map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        }
    }
}

/// Tries a single autocommit statement `op` again (at most
/// [`DEADLOCK_TRIES`] times in all, a few ms apart) when it lost a deadlock:
/// students writing their own rows at once (carts on registration eve)
/// meet on InnoDB's gap locks, and a 503 for that would be the system's
/// fault passed on to them.
pub async fn retry_deadlock<T, Fut>(mut op: impl FnMut() -> Fut) -> Result<T, StoreError>
where
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match op().await {
            Err(e) if e.is_deadlock() && tries < DEADLOCK_TRIES => {
                metrics::counter!("sluice_db_deadlock_retries_total").increment(1);
                tokio::time::sleep(Duration::from_millis(2 << tries)).await;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Tries of [`retry_deadlock`].
pub const DEADLOCK_TRIES: u32 = 5;

/// DATETIME columns hold UTC (sqlx sets the session time zone to +00:00).
pub fn to_datetime(ms: u64) -> NaiveDateTime {
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .unwrap_or_default()
        .naive_utc()
}

/// The inverse of [`to_datetime`].
pub fn from_datetime(at: NaiveDateTime) -> u64 {
    u64::try_from(at.and_utc().timestamp_millis()).unwrap_or(0)
}

pub(crate) fn push_in<T>(q: &mut QueryBuilder<'_, MySql>, values: &[T])
where
    T: Copy + Send + for<'q> sqlx::Encode<'q, MySql> + sqlx::Type<MySql> + 'static,
{
    q.push("(");
    let mut sep = q.separated(", ");
    for &v in values {
        sep.push_bind(v);
    }
    q.push(")");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_cures_timeouts_and_a_lost_pool_but_not_bugs() {
        assert!(StoreError::Timeout(Duration::from_secs(1)).is_transient());
        assert!(StoreError::Db(sqlx::Error::PoolTimedOut).is_transient());
        assert!(
            StoreError::Db(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()))
                .is_transient()
        );
        assert!(!StoreError::Corrupt("tickets.state").is_transient());
        assert!(!StoreError::Db(sqlx::Error::RowNotFound).is_transient());
        assert!(!StoreError::Db(sqlx::Error::ColumnNotFound("x".into())).is_transient());
    }
}
