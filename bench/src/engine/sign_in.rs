//! Signing the crowd in before the surge: session cookies minted with the
//! key the bench gave its own gateways, or `POST /api/session` for each
//! student, a bounded number at a time.

use crate::client::{Api, Failure};
use crate::scenario::Person;
use crate::student::Plan;
use anyhow::Context;
use enrollment::StudentId;
use futures_util::StreamExt;
use reqwest::header::HeaderValue;
use std::time::Duration;
use tokio::time::Instant;
use waitroom::{Keyring, SessionClaims, Subject};

/// Lifetime of minted sessions (the gateway's own is 8 h).
const SESSION_TTL_MS: u64 = 8 * 3600 * 1000;

pub fn mint_sessions(keys: &str, people: &[Person], plans: &mut [Plan]) -> anyhow::Result<()> {
    let keyring = Keyring::from_spec(keys).map_err(|e| anyhow::anyhow!("bench keys: {e}"))?;
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    for (plan, person) in plans.iter_mut().zip(people) {
        let claims = SessionClaims::new(
            Subject::Student {
                id: StudentId(person.id),
                class_year: person.class_year,
            },
            now,
            SESSION_TTL_MS,
        );
        let cookie = format!("sluice_session={}", keyring.sign_session(&claims));
        plan.who.cookie = Some(HeaderValue::from_str(&cookie).context("session cookie")?);
        plan.who.csrf = Some(HeaderValue::from_str(&claims.csrf).context("csrf value")?);
    }
    Ok(())
}

/// Signs every student in through the API, `concurrency` at a time
/// (password checks are bounded per gateway; beyond, it answers 503 and
/// the bench retries after a moment).
pub async fn sign_in(
    api: &Api,
    concurrency: usize,
    people: &[Person],
    plans: &mut [Plan],
) -> anyhow::Result<()> {
    let started = Instant::now();
    println!(
        "surge: signing in {} students through the API",
        people.len()
    );
    let total = people.len();
    let mut done = 0usize;
    let mut last_print = Instant::now();
    let mut results = futures_util::stream::iter(plans.iter().zip(people).enumerate())
        .map(|(i, (plan, person))| async move {
            for _ in 0..200 {
                match api
                    .login(
                        &plan.who,
                        &person.number,
                        schema::seed::DEMO_STUDENT_PASSWORD,
                    )
                    .await
                {
                    Ok(cookie) => return (i, Some(cookie)),
                    Err(f @ Failure::Status(..)) if f.retryable() => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(Failure::Transport(_)) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(_) => return (i, None),
                }
            }
            (i, None)
        })
        .buffer_unordered(concurrency.max(1));
    let mut cookies = vec![None; total];
    while let Some((i, cookie)) = results.next().await {
        cookies[i] = cookie;
        done += 1;
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            println!("surge: signed in {done}/{total}");
        }
    }
    drop(results);
    let mut failed = 0;
    for (plan, signed) in plans.iter_mut().zip(cookies) {
        match signed {
            Some((cookie, csrf)) => {
                plan.who.cookie = Some(cookie);
                plan.who.csrf = csrf;
            }
            None => failed += 1,
        }
    }
    println!(
        "surge: {} signed in in {:.1} s ({failed} failed)",
        total - failed,
        started.elapsed().as_secs_f64()
    );
    anyhow::ensure!(failed < total, "no student could sign in");
    Ok(())
}
