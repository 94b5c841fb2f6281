//! The per-account sign-in failure counts (`sign_in_failures`), shared by
//! every gateway pod. The policy (how many failures, how long a wait) is
//! [`crate::throttle`]'s; this module only reads and writes the rows.

use super::{MySqlStore, StoreError};

/// Until when (unix ms) the account must wait; `None` when it has no
/// failures on record.
pub async fn locked_until(
    store: &MySqlStore,
    kind: &str,
    name: &str,
) -> Result<Option<u64>, StoreError> {
    let row: Option<(u64,)> = store
        .timed(
            sqlx::query_as(
                "SELECT locked_until_ms FROM sign_in_failures WHERE account_kind = ? AND account = ?",
            )
            .bind(kind)
            .bind(name)
            .fetch_optional(store.pool()),
        )
        .await?;
    Ok(row.map(|(until,)| until))
}

/// Counts one more failure (starting again from one when the previous was
/// before `forget_before_ms`) and returns the failures in a row now.
pub async fn count_failure(
    store: &MySqlStore,
    kind: &str,
    name: &str,
    now_ms: u64,
    forget_before_ms: u64,
) -> Result<u32, StoreError> {
    // Assignments apply left to right: `failures` reads the previous
    // `last_failed_ms` before it is overwritten.
    store
        .timed(
            sqlx::query(
                "INSERT INTO sign_in_failures (account_kind, account, failures, last_failed_ms) \
                 VALUES (?, ?, 1, ?) \
                 ON DUPLICATE KEY UPDATE \
                   failures = IF(last_failed_ms < ?, 1, failures + 1), \
                   last_failed_ms = ?",
            )
            .bind(kind)
            .bind(name)
            .bind(now_ms)
            .bind(forget_before_ms)
            .bind(now_ms)
            .execute(store.pool()),
        )
        .await?;
    let (failures,): (u32,) = store
        .timed(
            sqlx::query_as(
                "SELECT failures FROM sign_in_failures WHERE account_kind = ? AND account = ?",
            )
            .bind(kind)
            .bind(name)
            .fetch_one(store.pool()),
        )
        .await?;
    Ok(failures)
}

/// Makes the account wait until at least `until_ms`, and writes the lock
/// to the audit log (`detail` says why).
pub async fn lock(
    store: &MySqlStore,
    kind: &str,
    name: &str,
    until_ms: u64,
    detail: &str,
) -> Result<(), StoreError> {
    store
        .timed(
            sqlx::query(
                "UPDATE sign_in_failures SET locked_until_ms = GREATEST(locked_until_ms, ?) \
                 WHERE account_kind = ? AND account = ?",
            )
            .bind(until_ms)
            .bind(kind)
            .bind(name)
            .execute(store.pool()),
        )
        .await?;
    store
        .timed(
            sqlx::query(
                "INSERT INTO audit_log (at, actor, action, subject, detail) \
                 VALUES (UTC_TIMESTAMP(3), 'sign-in', 'sign_in_throttled', ?, ?)",
            )
            .bind(format!("{kind}:{name}"))
            .bind(detail)
            .execute(store.pool()),
        )
        .await?;
    Ok(())
}

/// Forgets the account's failures.
pub async fn clear(store: &MySqlStore, kind: &str, name: &str) -> Result<(), StoreError> {
    store
        .timed(
            sqlx::query("DELETE FROM sign_in_failures WHERE account_kind = ? AND account = ?")
                .bind(kind)
                .bind(name)
                .execute(store.pool()),
        )
        .await?;
    Ok(())
}

/// Deletes up to `batch` rows neither failed nor locked since `before_ms`.
pub async fn sweep_idle(store: &MySqlStore, before_ms: u64, batch: u32) -> Result<(), StoreError> {
    store
        .timed(
            sqlx::query(
                "DELETE FROM sign_in_failures WHERE last_failed_ms < ? AND locked_until_ms < ? LIMIT ?",
            )
            .bind(before_ms)
            .bind(before_ms)
            .bind(batch)
            .execute(store.pool()),
        )
        .await?;
    Ok(())
}
