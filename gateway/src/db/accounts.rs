//! Student and admin accounts: what sign-in checks a password against, and
//! what decides whether an admin's session still holds.

use super::{MySqlStore, StoreError};
use enrollment::StudentId;
use sqlx::Row;

/// An authenticated student.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Student {
    pub id: StudentId,
    pub class_year: u8,
}

/// An admin whose password checked out.
#[derive(Debug, Clone)]
pub struct Admin {
    pub id: u32,
    pub username: String,
    pub role: String,
}

/// What decides whether an admin's session still holds.
#[derive(Debug, Clone)]
pub struct AdminStanding {
    pub username: String,
    pub role: String,
    /// Sessions issued before this (unix ms) were signed out.
    pub valid_after_ms: u64,
}

/// The student with this number and the password hash to check (none for
/// an account without a password).
pub async fn student(
    store: &MySqlStore,
    number: &str,
) -> Result<Option<(Student, Option<String>)>, StoreError> {
    let row = store
        .timed(
            sqlx::query("SELECT id, class_year, password_hash FROM students WHERE number = ?")
                .bind(number)
                .fetch_optional(store.pool()),
        )
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let student = Student {
        id: StudentId(r.try_get("id")?),
        class_year: r.try_get("class_year")?,
    };
    Ok(Some((student, r.try_get("password_hash")?)))
}

/// The enabled admin with this username and the password hash to check.
pub async fn admin(
    store: &MySqlStore,
    username: &str,
) -> Result<Option<(Admin, String)>, StoreError> {
    let row = store
        .timed(
            sqlx::query(
                "SELECT id, username, password_hash, role FROM admins \
                 WHERE username = ? AND disabled_at IS NULL",
            )
            .bind(username)
            .fetch_optional(store.pool()),
        )
        .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let admin = Admin {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        role: r.try_get("role")?,
    };
    Ok(Some((admin, r.try_get("password_hash")?)))
}

/// Admin `id`'s standing now: none when there is no such admin or the
/// admin is disabled.
pub async fn admin_standing(
    store: &MySqlStore,
    id: u32,
) -> Result<Option<AdminStanding>, StoreError> {
    let row: Option<(String, String, u64)> = store
        .timed(
            sqlx::query_as(
                "SELECT username, role, sessions_valid_after_ms FROM admins \
                 WHERE id = ? AND disabled_at IS NULL",
            )
            .bind(id)
            .fetch_optional(store.pool()),
        )
        .await?;
    Ok(row.map(|(username, role, valid_after_ms)| AdminStanding {
        username,
        role,
        valid_after_ms,
    }))
}

/// Signs out every session admin `id` was issued until `now_ms`.
pub async fn revoke_admin_sessions(
    store: &MySqlStore,
    id: u32,
    now_ms: u64,
) -> Result<(), StoreError> {
    store
        .timed(
            sqlx::query(
                "UPDATE admins SET sessions_valid_after_ms = GREATEST(sessions_valid_after_ms, ?) \
                 WHERE id = ?",
            )
            .bind(now_ms)
            .bind(id)
            .execute(store.pool()),
        )
        .await?;
    Ok(())
}
