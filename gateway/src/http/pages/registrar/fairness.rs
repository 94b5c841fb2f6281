//! A round's fairness report: was admission in order, does the pre-queue
//! order follow the published seed, and where demand met full sections;
//! on a round with priority, the policy declared and the same figures per
//! class line.

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
    /// The declared priority (`strict:4/1-3`...), `None` for one line.
    priority: Option<String>,
    classes: Vec<ClassRow>,
}

/// One class line's figures.
#[derive(Debug, Clone, PartialEq)]
struct ClassRow {
    years: String,
    weight: u32,
    joined: u64,
    admitted: u64,
    /// Median seconds from joining (or from opening, for the pre-queue
    /// cohort) to admission.
    median_wait_secs: Option<f64>,
    /// Places where admission time goes backwards in click order inside
    /// the line.
    inversions: u64,
}

impl ClassRow {
    fn median_text(&self) -> String {
        self.median_wait_secs
            .map_or("–".to_string(), |s| format!("{s:.1}"))
    }
}

/// The per-class figures of a round with `priority`.
fn class_rows(
    priority: &waitroom::Priority,
    tickets: &[crate::db::fairness::LineTicket],
    opened_at: Option<chrono::NaiveDateTime>,
) -> Vec<ClassRow> {
    use waitroom::priority::split_key;
    let mut lines: Vec<Vec<&crate::db::fairness::LineTicket>> = vec![Vec::new(); priority.lanes()];
    for t in tickets {
        if let Some(line) = lines.get_mut(usize::from(split_key(t.order_key).0)) {
            line.push(t);
        }
    }
    lines
        .iter_mut()
        .enumerate()
        .map(|(i, line)| {
            line.sort_by_key(|t| t.order_key);
            let mut waits: Vec<f64> = line
                .iter()
                .filter_map(|t| {
                    let from = if t.prequeue {
                        opened_at.unwrap_or(t.joined_at)
                    } else {
                        t.joined_at
                    };
                    t.admitted_at
                        .map(|at| (at - from).num_milliseconds().max(0) as f64 / 1000.0)
                })
                .collect();
            waits.sort_by(f64::total_cmp);
            let median = match waits.len() {
                0 => None,
                n if n % 2 == 1 => Some(waits[n / 2]),
                n => Some((waits[n / 2 - 1] + waits[n / 2]) / 2.0),
            };
            let admitted: Vec<_> = line.iter().filter_map(|t| t.admitted_at).collect();
            ClassRow {
                years: waitroom::priority::years_text(priority.lane_years(i)),
                weight: priority.weight(i),
                joined: line.len() as u64,
                admitted: admitted.len() as u64,
                median_wait_secs: median,
                inversions: admitted.windows(2).filter(|w| w[1] < w[0]).count() as u64,
            }
        })
        .collect()
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
    let priority = r
        .priority
        .as_deref()
        .and_then(|s| waitroom::Priority::parse(s).ok().flatten());
    let shuffle_ok = match r.shuffle_seed {
        Some(seed) if r.cohort_size > 0 => {
            let keys = crate::db::fairness::prequeue_keys(store, id).await?;
            Some(match priority {
                // Each class's cohort was shuffled in its own line.
                Some(_) => {
                    let mut lines: HashMap<u8, Vec<(u64, Option<u64>)>> = HashMap::new();
                    for (seq, key) in keys {
                        if let Some(k) = key {
                            let (lane, _) = waitroom::priority::split_key(k);
                            lines.entry(lane).or_default().push((seq, Some(k)));
                        }
                    }
                    lines.into_values().all(|l| follows_seed(l, seed))
                }
                None => follows_seed(keys, seed),
            })
        }
        _ => None,
    };
    let classes = match &priority {
        Some(p) => {
            let tickets = crate::db::fairness::line_tickets(store, id).await?;
            class_rows(p, &tickets, r.seed_published_at)
        }
        None => Vec::new(),
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
        priority: priority.map(|p| p.spec()),
        classes,
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

    #[test]
    fn figures_per_class_line() {
        use crate::db::fairness::LineTicket;
        use waitroom::priority::lane_key;
        let p = waitroom::Priority::parse("strict:4/1-3").unwrap().unwrap();
        let at = |s: i64| {
            chrono::DateTime::from_timestamp(1_800_000_000 + s, 0)
                .unwrap()
                .naive_utc()
        };
        let t = |lane: u8, k: u64, joined: i64, admitted: Option<i64>| LineTicket {
            order_key: lane_key(lane, k),
            prequeue: false,
            joined_at: at(joined),
            admitted_at: admitted.map(at),
        };
        let tickets = [
            t(0, 1, 10, Some(11)),
            t(0, 2, 10, Some(13)),
            t(1, 1, 0, Some(20)),
            // Admitted before the one who clicked earlier: an inversion.
            t(1, 3, 2, Some(21)),
            t(1, 2, 1, Some(30)),
            t(1, 4, 3, None),
        ];
        let rows = class_rows(&p, &tickets, None);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            (rows[0].years.as_str(), rows[0].joined, rows[0].admitted),
            ("4", 2, 2)
        );
        assert_eq!(rows[0].median_wait_secs, Some(2.0));
        assert_eq!(rows[0].inversions, 0);
        assert_eq!(
            (rows[1].years.as_str(), rows[1].joined, rows[1].admitted),
            ("1-3", 4, 3)
        );
        assert_eq!(rows[1].median_wait_secs, Some(20.0));
        assert_eq!(rows[1].inversions, 1);
        assert_eq!(rows[2].joined, 0);
        assert_eq!(rows[2].median_text(), "–");
    }
}
