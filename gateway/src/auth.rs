//! Who is asking: students by student number and password (until sessions
//! land, the join form is the login), registrar admins by HTTP Basic.
//!
//! Every check goes through the per-account throttle ([`crate::throttle`]).
//! Students and admins hash on separate lines: a script hammering the
//! admin API with Basic credentials fills the admin line, never the one
//! students sign in on.
//!
//! Password hashes are checked with argon2 on the blocking pool, at most
//! `hash_concurrency` at once: a hash takes a core for tens of milliseconds,
//! and a surge of logins must queue for those cores in a bounded way rather
//! than starve the async runtime. At most [`QUEUE_PER_PERMIT`] checks per
//! permit wait, each for at most [`QUEUE_WAIT`]; beyond that the answer is
//! 503 with Retry-After at once. Unknown accounts are
//! checked against a dummy hash so their answer takes as long as a wrong
//! password.

use crate::db::{accounts, MySqlStore};
use crate::error::ApiError;
use crate::throttle::{self, Account};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use secrecy::{ExposeSecret, SecretString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Checks that may wait for a free core, per core allowed to hash.
pub const QUEUE_PER_PERMIT: usize = 32;

/// Longest a check waits for a free core before the answer is 503.
pub const QUEUE_WAIT: Duration = Duration::from_secs(3);

pub use crate::db::accounts::{Admin, Student};

/// Checks passwords without blocking the runtime.
#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    dummy: Arc<str>,
}

/// Counts one waiting check for as long as it lives (also when the request
/// is dropped while waiting).
struct Waiting(Arc<AtomicUsize>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Passwords {
    /// A free core to hash on: at once, or after a bounded wait in line.
    async fn permit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        let overloaded = ApiError::Overloaded {
            retry_after: Duration::from_secs(1),
        };
        if let Ok(p) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok(p);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(overloaded);
        }
        let _in_line = Waiting(Arc::clone(&self.waiting));
        match tokio::time::timeout(QUEUE_WAIT, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            // Timed out, or the semaphore was closed.
            _ => Err(overloaded),
        }
    }

    /// Prepares the checker (hashes the dummy once, on the blocking pool).
    pub async fn new(concurrency: usize) -> anyhow::Result<Passwords> {
        let dummy = tokio::task::spawn_blocking(|| {
            let salt =
                SaltString::from_b64("c2x1aWNlZHVtbXlzYWx0").map_err(|e| anyhow::anyhow!("{e}"))?;
            Argon2::default()
                .hash_password(b"no account has this password", &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("hashing the dummy password: {e}"))
        })
        .await??;
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: concurrency.max(1) * QUEUE_PER_PERMIT,
            dummy: dummy.into(),
        })
    }

    /// Another line of `concurrency` cores, sharing this one's dummy hash.
    pub fn line(&self, concurrency: usize) -> Passwords {
        Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: concurrency.max(1) * QUEUE_PER_PERMIT,
            dummy: Arc::clone(&self.dummy),
        }
    }

    /// Whether `password` matches `hash` (or, without a hash, spends the
    /// same time and answers no).
    pub async fn verify(
        &self,
        hash: Option<String>,
        password: SecretString,
    ) -> Result<bool, ApiError> {
        let permit = self.permit().await?;
        let dummy = Arc::clone(&self.dummy);
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| dummy.to_string());
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            let matches = Argon2::default()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            known && matches
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("password check panicked: {e}")))?;
        Ok(ok)
    }
}

/// Checks a student's number and password.
pub async fn student(
    store: &MySqlStore,
    passwords: &Passwords,
    number: &str,
    password: SecretString,
) -> Result<Student, ApiError> {
    if number.is_empty() || number.len() > 16 || password.expose_secret().len() > 256 {
        return Err(ApiError::BadCredentials);
    }
    let account = Account::Student(number);
    let checked = throttle::check(store, account, crate::clock::now_ms()).await?;
    let (student, hash) = match accounts::student(store, number).await? {
        Some((s, hash)) => (Some(s), hash),
        None => (None, None),
    };
    // Without a hash (unknown number) this spends the same time on a dummy.
    let ok = passwords.verify(hash, password).await?;
    match student {
        Some(s) if ok => {
            throttle::succeeded(store, account, checked).await?;
            Ok(s)
        }
        _ => failed(store, account).await,
    }
}

/// Counts a failed sign-in, then answers that the credentials are wrong.
async fn failed<T>(store: &MySqlStore, account: Account<'_>) -> Result<T, ApiError> {
    throttle::failed(store, account, crate::clock::now_ms()).await?;
    Err(ApiError::BadCredentials)
}

/// Checks an admin's username and password (any role; disabled admins
/// never match), on the admins' line and behind the throttle.
pub async fn admin(
    store: &MySqlStore,
    passwords: &Passwords,
    username: &str,
    password: SecretString,
) -> Result<Admin, ApiError> {
    if username.is_empty() || username.len() > 64 || password.expose_secret().len() > 256 {
        return Err(ApiError::BadCredentials);
    }
    let account = Account::Admin(username);
    let checked = throttle::check(store, account, crate::clock::now_ms()).await?;
    let found = accounts::admin(store, username).await?;
    let (admin, hash) = match found {
        Some((a, h)) => (Some(a), Some(h)),
        None => (None, None),
    };
    let ok = passwords.verify(hash, password).await?;
    match admin {
        Some(a) if ok => {
            throttle::succeeded(store, account, checked).await?;
            Ok(a)
        }
        _ => failed(store, account).await,
    }
}

/// Checks a registrar's `Authorization: Basic` credentials; returns the
/// username for the audit log. Wrong or unreadable credentials are 401
/// with a challenge; right ones of another role are 403.
pub async fn registrar(
    store: &MySqlStore,
    passwords: &Passwords,
    authorization: Option<&str>,
) -> Result<String, ApiError> {
    use base64_decode::decode;
    let decoded = authorization
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|encoded| decode(encoded.trim()))
        .ok_or(ApiError::BadBasicCredentials)?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or(ApiError::BadBasicCredentials)?;
    let admin = admin(
        store,
        passwords,
        user,
        SecretString::from(password.to_string()),
    )
    .await
    .map_err(|e| match e {
        ApiError::BadCredentials => ApiError::BadBasicCredentials,
        other => other,
    })?;
    if admin.role == "registrar" {
        Ok(admin.username)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Base64 for Basic credentials, via the `base64` crate.
mod base64_decode {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    pub fn decode(s: &str) -> Option<String> {
        STANDARD
            .decode(s)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::join_all;

    fn hash_of(password: &str) -> String {
        let salt = SaltString::from_b64("dGVzdHNhbHR0ZXN0c2FsdA").unwrap();
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logins_beyond_the_free_cores_wait_their_turn() {
        let p = Passwords::new(1).await.unwrap();
        let hash = hash_of("pw");
        let checks = (0..6).map(|i| {
            let (p, hash) = (p.clone(), hash.clone());
            let password = if i % 2 == 0 { "pw" } else { "wrong" };
            async move { p.verify(Some(hash), SecretString::from(password)).await }
        });
        let answers: Vec<bool> = join_all(checks)
            .await
            .into_iter()
            .map(|r| r.expect("queued, not refused"))
            .collect();
        assert_eq!(answers, [true, false, true, false, true, false]);
        assert_eq!(p.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_line_is_refused_at_once() {
        let mut p = Passwords::new(1).await.unwrap();
        p.max_waiting = 2;
        let hash = hash_of("pw");
        let checks = (0..5).map(|_| {
            let (p, hash) = (p.clone(), hash.clone());
            async move { p.verify(Some(hash), SecretString::from("pw")).await }
        });
        let answers = join_all(checks).await;
        let refused = answers
            .iter()
            .filter(|r| matches!(r, Err(ApiError::Overloaded { .. })))
            .count();
        assert_eq!(refused, 2, "one hashing, two in line, two refused");
        assert!(answers.iter().filter(|r| matches!(r, Ok(true))).count() == 3);
        assert_eq!(p.waiting.load(Ordering::Acquire), 0);
    }
}
