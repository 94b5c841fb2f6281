//! `GET /api/results`: every decided item of the signed-in student's
//! commands, newest first, as the results page lists them. One command's
//! outcome alone is `GET /api/commands/{id}`.

use crate::db;
use crate::error::ApiResult;
use crate::http::api::openapi::responses::{
    Forbidden, Internal, TooMany, Unauthorized, Unavailable,
};
use crate::session::StudentSession;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use enrollment::Reason;
use serde::Serialize;
use utoipa::ToSchema;

/// One decided item.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResultItem {
    /// The command it belongs to (a UUID).
    pub command_id: Option<String>,
    /// `enroll`, `drop`, ...
    pub action: String,
    /// `enrolled`, `rejected`, `dropped`, `waitlisted`, `promoted`,
    /// `failed`, ...
    pub outcome: String,
    /// The rule that refused it, as a stable code.
    pub reason: Option<String>,
    pub message_ko: Option<String>,
    pub message_en: Option<String>,
    pub section_id: Option<u32>,
    /// Course code and section number, while the section exists.
    pub course_code: Option<String>,
    pub section_number: Option<u16>,
    /// When the worker decided it (UTC, RFC 3339).
    pub decided_at: String,
}

/// The student's results.
#[derive(Debug, Serialize, ToSchema)]
pub struct Results {
    /// The 200 most recent items, newest first.
    pub items: Vec<ResultItem>,
}

/// The signed-in student's command outcomes.
#[utoipa::path(
    get,
    path = "/api/results",
    tag = "student",
    security(("session" = [])),
    responses(
        (status = 200, description = "Decided items, newest first", body = Results),
        Unauthorized,
        Forbidden,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn list(State(app): State<AppState>, me: StudentSession) -> ApiResult<Json<Results>> {
    app.limits.check_reads(me.id)?;
    let items = db::outcomes::of_student(&app.store, me.id)
        .await?
        .into_iter()
        .map(|r| {
            let known = r.reason.as_deref().and_then(Reason::from_code);
            ResultItem {
                command_id: r.command_id.map(|u| u.to_string()),
                action: r.action,
                outcome: r.outcome,
                message_ko: known.map(|k| k.message_ko().to_string()),
                message_en: known.map(|k| k.message_en().to_string()),
                reason: r.reason,
                section_id: r.section_id,
                course_code: r.course_code,
                section_number: r.section_number,
                decided_at: r
                    .decided_at
                    .and_utc()
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string(),
            }
        })
        .collect();
    Ok(Json(Results { items }))
}
