//! The results page: every decided request of the student, newest first,
//! plus the ones still queued (live on the page).

use crate::db;
use crate::error::ApiResult;
use crate::i18n::outcomes::{action_words, alternate_words, outcome_words, reason_words};
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
    let found = db::outcomes::of_student(&app.store, student).await?;
    let mut rows = Vec::with_capacity(found.len());
    let mut decided = Vec::new();
    for r in found {
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
                "waitlisted" => "warn",
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
    })
}
