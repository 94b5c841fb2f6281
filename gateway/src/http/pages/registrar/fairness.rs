//! A round's fairness report: was admission in order, does the pre-queue
//! order follow the published seed, and where demand met full sections.

use crate::error::{ApiError, ApiResult};
use crate::web::{self, Chrome, Ctx};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use std::collections::HashMap;

struct Demand {
    label: String,
    students: i64,
    enrolled: i64,
    full: i64,
    capacity: u32,
}

#[derive(Template)]
#[template(path = "admin_fairness.html")]
struct FairnessPage {
    chrome: Chrome,
    id: u32,
    name: String,
    seed: Option<String>,
    seed_published: String,
    cohort: u64,
    admitted: i64,
    inversions: i64,
    /// `ok`, `bad`, or `none` when there was no pre-queue shuffle.
    shuffle: &'static str,
    demand: Vec<Demand>,
}

/// `GET /admin/rounds/{id}/fairness`
pub async fn fairness(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<u32>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("rounds");
    ctx.admin()?;
    let store = &app.store;
    let r = crate::db::fairness::round(store, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let (admitted, inversions) = crate::db::fairness::admission_inversions(store, id).await?;
    let shuffle_ok = match r.shuffle_seed {
        Some(seed) if r.cohort_size > 0 => {
            let keys = crate::db::fairness::prequeue_keys(store, id).await?;
            Some(follows_seed(keys, seed))
        }
        _ => None,
    };
    let demand = crate::db::fairness::demand(store, id)
        .await?
        .into_iter()
        .map(|d| Demand {
            label: format!("{}-{:02}", d.code, d.number),
            students: d.students,
            enrolled: d.enrolled.unwrap_or(0),
            full: d.full_n.unwrap_or(0),
            capacity: d.capacity,
        })
        .collect();
    web::page(FairnessPage {
        seed_published: ctx.chrome.at_opt(&r.seed_published_at),
        chrome: ctx.chrome,
        id,
        name: r.name,
        seed: r.shuffle_seed.map(|s| s.to_string()),
        cohort: u64::from(r.cohort_size),
        admitted,
        inversions,
        shuffle: match shuffle_ok {
            Some(true) => "ok",
            Some(false) => "bad",
            None => "none",
        },
        demand,
    })
}

/// Re-derives the pre-queue order from the published seed and compares it
/// with the stored keys (`(seq, order key)` of the cohort): anyone holding
/// the seed can do the same.
fn follows_seed(tickets: Vec<(u64, Option<u64>)>, seed: u64) -> bool {
    let seqs: Vec<u64> = tickets.iter().map(|t| t.0).collect();
    let order = waitroom::shuffle::prequeue_order(&seqs, seed);
    let keys: HashMap<u64, Option<u64>> = tickets.into_iter().collect();
    // Tickets that left and re-joined are no longer in the cohort; those
    // that remain must sit in the seed's relative order.
    let mut last = 0u64;
    for seq in order {
        if let Some(Some(k)) = keys.get(&seq) {
            if *k < last {
                return false;
            }
            last = *k;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_the_seeds_order_pass_and_a_swap_fails() {
        let seqs: Vec<u64> = (1..=20).collect();
        let order = waitroom::shuffle::prequeue_order(&seqs, 42);
        let keyed: Vec<(u64, Option<u64>)> = order
            .iter()
            .enumerate()
            .map(|(i, &seq)| (seq, Some(i as u64 + 1)))
            .collect();
        assert!(follows_seed(keyed.clone(), 42));
        let mut swapped = keyed.clone();
        let (a, b) = (swapped[0].1, swapped[1].1);
        swapped[0].1 = b;
        swapped[1].1 = a;
        assert!(!follows_seed(swapped, 42));
        // A ticket that left (no key) does not break the order.
        let mut left = keyed;
        left[3].1 = None;
        assert!(follows_seed(left, 42));
    }
}
