//! The throw-away database every test suite uses: created under a unique
//! name, migrated, and dropped when the value goes away, even when the test
//! panics.
//!
//! Behind the `testing` feature, which test suites enable on their
//! dev-dependency, so no production binary carries it.

use anyhow::Context;
use rand::Rng;
use sqlx::MySqlPool;

/// The server tests create their databases on, without a database name:
/// `TEST_MYSQL_URL`, else the developer machine's MariaDB.
pub fn server() -> String {
    std::env::var("TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
        .trim_end_matches('/')
        .to_string()
}

/// A URL on [`server`] naming a database no other test uses:
/// `<prefix><16 hex digits>`.
pub fn fresh_url(prefix: &str) -> String {
    let suffix: u64 = rand::thread_rng().gen();
    format!("{}/{prefix}{suffix:016x}", server())
}

/// A database of one test's own. Dropping the value drops the database,
/// whether the test passed or panicked.
#[derive(Debug)]
pub struct TestDb {
    /// Its URL, with the database name.
    pub url: String,
    /// The database name alone.
    pub name: String,
    /// A pool on it.
    pub pool: MySqlPool,
    /// Cleared once [`TestDb::remove`] has dropped the database, so `Drop`
    /// has nothing left to do.
    armed: bool,
}

impl TestDb {
    /// Creates and migrates `<prefix><random>` and opens a pool of at most
    /// `max_connections`. Panics when the server cannot be reached: a test
    /// without its database cannot say anything.
    pub async fn create(prefix: &str, max_connections: u32) -> TestDb {
        let url = fresh_url(prefix);
        crate::db::create_and_migrate(&url)
            .await
            .unwrap_or_else(|e| panic!("creating test database {url}: {e:#}"));
        let pool = crate::db::connect(&url, max_connections)
            .await
            .unwrap_or_else(|e| panic!("connecting to test database {url}: {e:#}"));
        TestDb::adopt(url, pool)
    }

    /// Takes charge of a database the caller created at `url` (for tests of
    /// creation itself): from now on it is dropped with the value.
    pub fn adopt(url: String, pool: MySqlPool) -> TestDb {
        let name = url.rsplit('/').next().unwrap_or_default().to_string();
        TestDb {
            url,
            name,
            pool,
            armed: true,
        }
    }

    /// Closes the pool and drops the database now, reporting a failure
    /// instead of printing it as `Drop` must.
    pub async fn remove(mut self) -> anyhow::Result<()> {
        self.armed = false;
        self.pool.close().await;
        crate::db::drop_database(&self.url)
            .await
            .with_context(|| format!("dropping test database {}", self.name))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.armed {
            drop_blocking(&self.url);
        }
    }
}

/// Drops the database at `url` from synchronous code, including a `Drop`
/// running inside a tokio runtime of either flavour.
///
/// `Drop` cannot await, and blocking on the caller's runtime would deadlock
/// a current-thread runtime (and panics inside any runtime). So the drop runs
/// on a fresh thread with a small runtime of its own, which needs nothing
/// from the caller's; its connection kills the sessions the test's pool still
/// holds. Failures are printed, not raised: a panic during a panic aborts.
pub fn drop_blocking(url: &str) {
    let owned = url.to_string();
    let dropped = std::thread::spawn(move || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(crate::db::drop_database(&owned))
    })
    .join();
    match dropped {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("could not drop test database {url}: {e:#}"),
        Err(_) => eprintln!("could not drop test database {url}: the dropping thread panicked"),
    }
}
