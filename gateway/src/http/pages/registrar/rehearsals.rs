//! Rehearsals on the admin pages: the flag on a round's page (a registrar
//! marks or unmarks a round as a rehearsal, audited), and the ops panel
//! that lists rehearsal runs with their key results and each run's report.

use super::change_form;
use crate::error::{ApiError, ApiResult};
use crate::rehearsal::Summary;
use crate::web::{self, Chrome, Ctx};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct FlagForm {
    #[serde(default)]
    pub csrf: String,
    /// `1` marks the round as a rehearsal, `0` unmarks it.
    #[serde(default)]
    pub rehearsal: String,
}

/// `POST /admin/rounds/{id}/rehearsal`
pub async fn set_flag(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<u32>,
    Form(form): Form<FlagForm>,
) -> ApiResult<Response> {
    let actor = change_form(&ctx, &headers, &form.csrf)?;
    let rehearsal = match form.rehearsal.trim() {
        "1" => true,
        "0" => false,
        _ => return Err(ApiError::Invalid("rehearsal must be 1 or 0".into())),
    };
    if !crate::db::rehearsals::set_flag(&app.store, id, rehearsal, &actor).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(round.id = id, actor = %actor, rehearsal, "round rehearsal flag set from the registrar pages");
    Ok(Redirect::to(&format!("/admin/rounds/{id}?msg=saved")).into_response())
}

/// One run as the panel lists it.
struct RunRow {
    id: u64,
    round_id: u32,
    round_name: String,
    actor: String,
    started: String,
    students: u32,
    duration_s: u32,
    finished: bool,
    /// Key results, once the report is in.
    summary: Option<Summary>,
}

#[derive(Template)]
#[template(path = "admin_rehearsals.html")]
struct RunsPage {
    chrome: Chrome,
    runs: Vec<RunRow>,
    max_students: u32,
    max_duration_s: u32,
}

/// `GET /admin/rehearsals`: the ops panel; any admin may look.
pub async fn runs(State(app): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    let ctx = ctx.in_section("rehearsals");
    ctx.admin()?;
    let runs = crate::db::rehearsals::list(&app.store)
        .await?
        .into_iter()
        .map(|r| RunRow {
            id: r.id,
            round_id: r.round_id,
            round_name: r.round_name,
            actor: r.actor,
            started: ctx.chrome.at(&r.started_at),
            students: r.students,
            duration_s: r.duration_s,
            finished: r.finished_at.is_some(),
            summary: r
                .summary
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
        })
        .collect();
    web::page(RunsPage {
        chrome: ctx.chrome,
        runs,
        max_students: crate::rehearsal::MAX_STUDENTS,
        max_duration_s: crate::rehearsal::MAX_DURATION_S,
    })
}

#[derive(Template)]
#[template(path = "admin_rehearsal.html")]
struct ReportPage {
    chrome: Chrome,
    id: u64,
    report: String,
}

/// `GET /admin/rehearsals/{id}`: one run's report, as stored.
pub async fn report(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<u64>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("rehearsals");
    ctx.admin()?;
    let stored = crate::db::rehearsals::report(&app.store, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // Stored as sent; shown indented for reading.
    let report = serde_json::from_str::<serde_json::Value>(&stored)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or(stored);
    web::page(ReportPage {
        chrome: ctx.chrome,
        id,
        report,
    })
}
