//! CSV downloads: every enrollment, and a round's decided command items,
//! streamed from the database as rows arrive.

use crate::db::exports::Outcome;
use crate::error::ApiResult;
use crate::http::csv_stream;
use crate::web::{local_input, Ctx};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::NaiveDateTime;

/// `GET /admin/export/enrollments.csv`
pub async fn export_enrollments(State(app): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    ctx.admin()?;
    let tz = app.config.time_zone;
    csv_stream::export(
        &app.store,
        "enrollments.csv",
        &[
            "student_number",
            "student_name",
            "course_code",
            "section",
            "enrolled_at",
        ],
        crate::db::exports::enrollments,
        move |(number, name, code, section, at)| {
            vec![
                number,
                name,
                code,
                section.to_string(),
                local_input(tz, &at),
            ]
        },
    )
    .await
}

/// `GET /admin/rounds/{id}/outcomes.csv`
pub async fn export_outcomes(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<u32>,
) -> ApiResult<Response> {
    ctx.admin()?;
    let tz = app.config.time_zone;
    let fmt = move |t: &NaiveDateTime| {
        t.and_utc()
            .with_timezone(&tz)
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string()
    };
    csv_stream::export(
        &app.store,
        &format!("round-{id}-outcomes.csv"),
        &[
            "command_id",
            "item",
            "student_number",
            "course_code",
            "section",
            "action",
            "outcome",
            "reason",
            "issued_at",
            "decided_at",
            "decided_by",
        ],
        move |store| crate::db::exports::outcomes(store, id),
        move |o: Outcome| {
            vec![
                uuid::Uuid::from_slice(&o.command_id)
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
                o.item.to_string(),
                o.student_number,
                o.course_code.unwrap_or_default(),
                o.section.map(|n| n.to_string()).unwrap_or_default(),
                o.action,
                o.outcome,
                o.reason.unwrap_or_default(),
                fmt(&o.issued_at),
                fmt(&o.decided_at),
                o.decided_by,
            ]
        },
    )
    .await
}
