//! Carts filled before the day: students who will ask for their cart to
//! be sent at admission put it on the server first, as they would in the
//! days before registration (`POST /api/cart` with each item's waitlist
//! choice, `PUT /api/cart/alternates`), a bounded number at a time.

use crate::client::{Api, Failure};
use crate::student::Plan;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::time::Instant;

/// Tries per cart write before the student's cart counts as failed.
const TRIES: u32 = 50;

async fn with_retries<F, Fut>(mut call: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    for _ in 0..TRIES {
        match call().await {
            Ok(()) => return true,
            Err(f) if f.retryable() => tokio::time::sleep(f.retry_after()).await,
            Err(_) => return false,
        }
    }
    false
}

async fn fill(api: &Api, plan: &Plan) -> bool {
    for (section, choice) in plan.cart.iter().zip(&plan.choices) {
        if !with_retries(|| api.cart_add(&plan.who, *section, choice.waitlist)).await {
            return false;
        }
    }
    for (section, choice) in plan.cart.iter().zip(&plan.choices) {
        if !choice.alternates.is_empty()
            && !with_retries(|| api.cart_alternates(&plan.who, *section, &choice.alternates)).await
        {
            return false;
        }
    }
    true
}

/// Fills the carts of the students who send theirs at admission. A
/// student whose cart could not be stored clicks "enroll" instead.
pub async fn fill_carts(api: &Api, concurrency: usize, plans: &mut [Plan]) -> anyhow::Result<()> {
    let who: Vec<usize> = (0..plans.len()).filter(|&i| plans[i].auto_send).collect();
    if who.is_empty() {
        return Ok(());
    }
    anyhow::ensure!(
        plans[who[0]].who.cookie.is_some(),
        "--auto-send needs students signed in before the surge (not --join-with-credentials)"
    );
    let started = Instant::now();
    println!(
        "surge: {} students fill their carts on the server",
        who.len()
    );
    let shared: &[Plan] = plans;
    let mut results = futures_util::stream::iter(who.iter().copied())
        .map(|i| async move { (i, fill(api, &shared[i]).await) })
        .buffer_unordered(concurrency.max(1));
    let (mut done, mut failed) = (0usize, Vec::new());
    let mut last_print = Instant::now();
    while let Some((i, ok)) = results.next().await {
        done += 1;
        if !ok {
            failed.push(i);
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            println!("surge: carts filled {done}/{}", who.len());
        }
    }
    drop(results);
    for i in &failed {
        plans[*i].auto_send = false;
    }
    println!(
        "surge: {} carts filled in {:.1} s ({} failed; those students click instead)",
        who.len() - failed.len(),
        started.elapsed().as_secs_f64(),
        failed.len()
    );
    Ok(())
}
