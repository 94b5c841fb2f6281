//! Setting passwords for students and admins (`sluice-db set-password`).
//!
//! Students imported from CSV carry no password and cannot sign in until
//! one is set (or the university's single sign-on is wired in front).
//! Passwords are hashed with argon2id and its default parameters.

use anyhow::Context;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use sqlx::MySqlPool;

/// Whose password to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// A student, by student number.
    Student(String),
    /// An admin, by username.
    Admin(String),
}

/// The shortest password accepted.
pub const MIN_LEN: usize = 8;

/// Hashes `password` with argon2id (a fresh random salt).
pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))
}

/// Sets the password of `account`; fails if there is no such account or
/// the password is too short. Hashing runs on the blocking pool.
pub async fn set_password(
    pool: &MySqlPool,
    account: &Account,
    password: String,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        password.chars().count() >= MIN_LEN,
        "the password must have at least {MIN_LEN} characters"
    );
    let hashed = tokio::task::spawn_blocking(move || hash(&password))
        .await
        .context("password hashing task")??;
    let (sql, who) = match account {
        Account::Student(n) => ("UPDATE students SET password_hash = ? WHERE number = ?", n),
        Account::Admin(u) => ("UPDATE admins SET password_hash = ? WHERE username = ?", u),
    };
    let done = sqlx::query(sql)
        .bind(hashed)
        .bind(who)
        .execute(pool)
        .await?;
    anyhow::ensure!(done.rows_affected() == 1, "no such account: {who}");
    Ok(())
}
