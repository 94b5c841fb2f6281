//! The per-account sign-in throttle: after [`FREE_FAILURES`] wrong
//! passwords in a row for one account, every further attempt must wait,
//! twice as long after each failure, up to [`MAX_DELAY`].
//!
//! The per-address limit cannot stop a guesser with many addresses, and
//! hundreds of students share one campus address, so guessing is slowed
//! where it aims: at the account. The count lives in MySQL so that every
//! gateway pod applies the same one. While an account waits, attempts are
//! refused before any password is hashed (the right password too: an
//! answer that differed would tell the guesser they hit), so a flood of
//! guesses costs no argon2 time. Each lock is written to the audit log.
//!
//! Names are throttled as typed, whether or not the account exists, so the
//! throttle tells nobody which accounts exist. The cost is that anyone can
//! make a student wait by guessing their number; the delay is capped so
//! that the wait stays minutes, never a lockout.

use crate::db::{sign_in, MySqlStore};
use crate::error::{ApiError, ApiResult};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Failures in a row an account is allowed before it has to wait.
pub const FREE_FAILURES: u32 = 5;

/// The longest wait between attempts on one account.
pub const MAX_DELAY: Duration = Duration::from_secs(300);

/// A failure this long after the previous one starts the count again: a
/// student who mistyped yesterday is not one failure from a wait today.
const FORGET_AFTER_MS: u64 = 3_600_000;

/// Rows idle this long are swept.
const SWEEP_AFTER_MS: u64 = 24 * 3_600_000;

/// How often idle rows are swept, and how many at most per statement.
const SWEEP_EVERY: Duration = Duration::from_secs(600);
const SWEEP_BATCH: u32 = 5_000;

/// Whose sign-in is being throttled: the name as typed.
#[derive(Debug, Clone, Copy)]
pub enum Account<'a> {
    Student(&'a str),
    Admin(&'a str),
}

impl Account<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Account::Student(_) => "student",
            Account::Admin(_) => "admin",
        }
    }

    fn name(&self) -> &str {
        match self {
            Account::Student(n) | Account::Admin(n) => n,
        }
    }
}

/// What [`check`] learned, for [`succeeded`] to act on.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct Checked {
    failed_before: bool,
}

/// The wait imposed after `failures` failures in a row.
pub fn delay_after(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES).min(16);
    Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
}

/// Refuses with 429 + Retry-After while `account` has to wait.
pub async fn check(store: &MySqlStore, account: Account<'_>, now_ms: u64) -> ApiResult<Checked> {
    let row = sign_in::locked_until(store, account.kind(), account.name()).await?;
    match row {
        Some(until) if until > now_ms => {
            metrics::counter!("sluice_sign_in_throttled_total", "kind" => account.kind())
                .increment(1);
            Err(ApiError::SignInThrottled {
                retry_after: Duration::from_millis(until - now_ms),
            })
        }
        Some(_) => Ok(Checked {
            failed_before: true,
        }),
        None => Ok(Checked {
            failed_before: false,
        }),
    }
}

/// Counts a wrong password for `account`; from the [`FREE_FAILURES`]th on,
/// makes the next attempt wait and records that in the audit log.
pub async fn failed(store: &MySqlStore, account: Account<'_>, now_ms: u64) -> ApiResult<()> {
    let failures = sign_in::count_failure(
        store,
        account.kind(),
        account.name(),
        now_ms,
        now_ms.saturating_sub(FORGET_AFTER_MS),
    )
    .await?;
    let delay = delay_after(failures);
    if delay.is_zero() {
        return Ok(());
    }
    let until = now_ms.saturating_add(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
    let detail = format!(
        "{failures} failed sign-ins in a row; next attempt allowed after {} s",
        delay.as_secs()
    );
    sign_in::lock(store, account.kind(), account.name(), until, &detail).await?;
    // Student numbers stay out of logs (the audit row has it).
    tracing::warn!(
        account.kind = account.kind(),
        failures,
        delay_s = delay.as_secs(),
        "sign-in throttled"
    );
    Ok(())
}

/// Clears the count after a right password (only when there was one, so
/// a surge of good sign-ins writes nothing).
pub async fn succeeded(
    store: &MySqlStore,
    account: Account<'_>,
    checked: Checked,
) -> ApiResult<()> {
    if !checked.failed_before {
        return Ok(());
    }
    sign_in::clear(store, account.kind(), account.name()).await?;
    Ok(())
}

/// Deletes rows idle for a day, every few minutes until `shutdown`: names
/// typed once and never again must not pile up.
pub async fn sweep(store: Arc<MySqlStore>, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let before = crate::clock::now_ms().saturating_sub(SWEEP_AFTER_MS);
        let swept = sign_in::sweep_idle(&store, before, SWEEP_BATCH).await;
        if let Err(e) = swept {
            tracing::debug!(error = %e, "sweeping sign-in failures failed; next time");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_grows_after_the_free_failures_and_is_capped() {
        assert_eq!(delay_after(0), Duration::ZERO);
        assert_eq!(delay_after(FREE_FAILURES - 1), Duration::ZERO);
        assert_eq!(delay_after(FREE_FAILURES), Duration::from_secs(1));
        assert_eq!(delay_after(FREE_FAILURES + 1), Duration::from_secs(2));
        assert_eq!(delay_after(FREE_FAILURES + 4), Duration::from_secs(16));
        assert_eq!(delay_after(FREE_FAILURES + 20), MAX_DELAY);
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
    }
}
