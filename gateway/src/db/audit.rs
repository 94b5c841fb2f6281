//! The registrar's audit log: who changed what, and when.
//!
//! A row is always written inside the change's own transaction, so a change
//! is never committed without its row, and a refused row undoes the change.

use super::{MySqlStore, StoreError};
use chrono::NaiveDateTime;
use sqlx::MySqlConnection;

/// Records a change; `conn` is the change's transaction.
pub async fn record(
    conn: &mut MySqlConnection,
    actor: &str,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, subject, detail) \
         VALUES (UTC_TIMESTAMP(3), ?, ?, ?, ?)",
    )
    .bind(actor)
    .bind(action)
    .bind(subject)
    .bind(detail.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// One row of the log, as a round's page lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct Entry {
    pub at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// The newest `limit` rows about `subject` (`round:7`, say), newest first.
pub async fn of_subject(
    store: &MySqlStore,
    subject: &str,
    limit: u32,
) -> Result<Vec<Entry>, StoreError> {
    store
        .timed(
            sqlx::query_as(
                "SELECT at, actor, action, detail FROM audit_log WHERE subject = ? \
                 ORDER BY id DESC LIMIT ?",
            )
            .bind(subject)
            .bind(limit)
            .fetch_all(store.pool()),
        )
        .await
}
