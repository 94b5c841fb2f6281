//! `/api/waitlist`: the student's places in line, and leaving a line (a
//! `leave_waitlist` command, sent like a drop).

use super::commands::{idempotency_key, reader, submit, Accepted, DropBody};
use crate::db;
use crate::error::ApiResult;
use crate::http::extract::{ClientIp, JsonBody};
use crate::session::current;
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use enrollment::{Action, SectionId, StudentId};
use serde::Serialize;
use waitroom::Subject;

/// One line the student waits in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Place {
    pub section: u32,
    pub course_code: String,
    pub section_number: u16,
    /// 1 for the head of the line.
    pub position: i64,
    /// Everyone waiting in the line, the student included.
    pub waiting: i64,
    /// When the student joined the line (UTC).
    pub since: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Places {
    pub places: Vec<Place>,
}

/// The student asking: a pass or queue token, else a student's session.
/// Only the student's own lines are ever read.
fn asker(app: &AppState, headers: &HeaderMap, jar: &CookieJar) -> ApiResult<StudentId> {
    reader(app, headers, jar).or_else(|e| match current(app, jar).map(|c| c.subject) {
        Some(Subject::Student { id, .. }) => Ok(id),
        _ => Err(e),
    })
}

/// `GET /api/waitlist`
#[utoipa::path(
    get,
    path = "/api/waitlist",
    tag = "student",
    security(("session" = []), ("queue_token" = []), ("queue_cookie" = []), ("pass" = []), ("pass_cookie" = [])),
    responses(
        (status = 200, description = "The caller's places in line", body = Places),
        crate::http::api::openapi::responses::Unauthorized,
        crate::http::api::openapi::responses::TooMany,
        crate::http::api::openapi::responses::Internal,
        crate::http::api::openapi::responses::Unavailable,
    )
)]
pub async fn places(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
) -> ApiResult<Json<Places>> {
    let student = match asker(&app, &headers, &jar) {
        Ok(s) => s,
        Err(e) => {
            app.limits.check_ip(ip)?;
            return Err(e);
        }
    };
    app.limits.check_reads(student)?;
    let places = db::waitlist::places(&app.store, student)
        .await?
        .into_iter()
        .map(|p| Place {
            section: p.section_id,
            course_code: p.course_code,
            section_number: p.section_number,
            position: p.position,
            waiting: p.waiting,
            since: p
                .since
                .and_utc()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
        .collect();
    Ok(Json(Places { places }))
}

/// `POST /api/waitlist/leave` with `{"section": 7}`.
#[utoipa::path(
    post,
    path = "/api/waitlist/leave",
    tag = "commands",
    security(("pass" = []), ("pass_cookie" = [])),
    params(super::commands::IdempotencyKey),
    request_body = DropBody,
    responses(
        (status = 202, description = "Confirmed by the broker; the worker decides it", body = Accepted),
        crate::http::api::openapi::responses::JsonBodyErrors,
        crate::http::api::openapi::responses::Unauthorized,
        crate::http::api::openapi::responses::Forbidden,
        crate::http::api::openapi::responses::Conflict,
        crate::http::api::openapi::responses::TooMany,
        crate::http::api::openapi::responses::Internal,
        crate::http::api::openapi::responses::Unavailable,
    )
)]
pub async fn leave(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    JsonBody(body): JsonBody<DropBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let key = idempotency_key(&headers)?;
    submit(
        &app,
        Some(ip),
        &headers,
        &jar,
        Action::LeaveWaitlist {
            section: SectionId(body.section),
        },
        key,
    )
    .await
}
