//! The results page: every decided request of the student, newest first,
//! plus the ones still queued (live on the page), the promotions from a
//! waitlist in a sentence each, and the lines the student still waits in.

use super::cart::{place_rows, PlaceRow};
use crate::db;
use crate::error::ApiResult;
use crate::i18n::outcomes::{
    action_words, alternate_words, outcome_words, promoted_into, reason_words,
};
use crate::web::{self, Chrome, Ctx};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

struct ResultRow {
    command: String,
    at: String,
    action: &'static str,
    section: String,
    outcome: String,
    outcome_class: &'static str,
    reason: String,
}

#[derive(Template)]
#[template(path = "results.html")]
struct ResultsPage {
    chrome: Chrome,
    pending: Vec<String>,
    rows: Vec<ResultRow>,
    /// "Promoted from the waitlist into MAT1010-01.", newest first.
    promotions: Vec<String>,
    places: Vec<PlaceRow>,
}

#[derive(Debug, Deserialize)]
pub struct ResultsQuery {
    pub pending: Option<String>,
}

/// `GET /results`
pub async fn page(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ResultsQuery>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("results");
    let (student, _) = ctx.student()?;
    let lang = ctx.lang();
    let (found, places) = tokio::try_join!(
        db::outcomes::of_student(&app.store, student),
        db::waitlist::places(&app.store, student),
    )?;
    let mut rows = Vec::with_capacity(found.len());
    let mut decided = Vec::new();
    let mut promotions = Vec::new();
    for r in found {
        if let ("promoted", Some(c), Some(n)) =
            (r.outcome.as_str(), &r.course_code, r.section_number)
        {
            promotions.push(promoted_into(&format!("{c}-{n:02}"), lang));
        }
        let id = r.command_id.map(|u| u.to_string()).unwrap_or_default();
        decided.push(id.clone());
        rows.push(ResultRow {
            command: id,
            at: ctx.chrome.at(&r.decided_at),
            action: action_words(&r.action, lang),
            section: match (r.course_code, r.section_number) {
                (Some(c), Some(n)) => format!("{c}-{n:02}"),
                _ => "–".into(),
            },
            outcome_class: match r.outcome.as_str() {
                "enrolled" | "dropped" | "promoted" => "good",
                "waitlisted" | "left_waitlist" => "warn",
                _ => "bad",
            },
            outcome: if r.choice > 0 && r.outcome == "enrolled" {
                format!(
                    "{} ({})",
                    outcome_words(&r.outcome, lang),
                    alternate_words(r.section_number, lang)
                )
            } else {
                outcome_words(&r.outcome, lang).to_string()
            },
            reason: reason_words(r.reason.as_deref(), lang),
        });
    }
    let pending = q
        .pending
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter_map(|s| s.trim().parse::<uuid::Uuid>().ok())
        .map(|u| u.to_string())
        .filter(|id| !decided.contains(id))
        .take(12)
        .collect();
    web::page(ResultsPage {
        chrome: ctx.chrome,
        pending,
        rows,
        promotions,
        places: place_rows(places, lang),
    })
}
