//! Sluice's MySQL schema: embedded migrations, database creation for
//! developers and tests, and the deterministic seed-data generator.
//!
//! # Layout
//! - [`MIGRATOR`]: the migrations under `schema/migrations`.
//! - [`db`]: create, migrate, connect to and drop a database by URL.
//! - [`seed`]: the demo and bench data set, generated in memory and written
//!   with multi-row inserts.
//! - `testing` (feature `testing`): the throw-away database of every test
//!   suite, dropped on drop.
//!
//! The `sluice-db` binary is a thin command line over these.

pub mod accounts;
pub mod db;
pub mod seed;
#[cfg(feature = "testing")]
pub mod testing;

/// The migrations under `schema/migrations`, embedded in every binary that
/// needs to run them.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
