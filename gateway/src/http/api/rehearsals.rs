//! Rehearsal runs: the bench registers a run against a round (refused
//! unless the round is marked as a rehearsal and the run is within bounds)
//! and then stores its report, which the ops panel lists. Registrar
//! credentials, as for the round controls the surge also uses.

use super::admin::registrar;
use crate::db::{self, rehearsals::Started};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ClientIp, JsonBody};
use crate::rehearsal::{RunReport, RunRequest, RunStarted, MAX_REPORT_BYTES};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;

/// `POST /api/admin/rehearsals`: 201 with the run's id; 409
/// `not_rehearsal` for a round not marked as a rehearsal; 400 out of
/// bounds; 404 no such round.
#[utoipa::path(
    post,
    path = "/api/admin/rehearsals",
    tag = "admin",
    security(("registrar_basic" = []), ("session" = [])),
    request_body = RunRequest,
    responses(
        (status = 201, description = "The run is registered", body = RunStarted),
        crate::http::api::openapi::responses::JsonBodyErrors,
        crate::http::api::openapi::responses::Unauthorized,
        crate::http::api::openapi::responses::Forbidden,
        crate::http::api::openapi::responses::NotFound,
        crate::http::api::openapi::responses::Conflict,
        crate::http::api::openapi::responses::TooMany,
        crate::http::api::openapi::responses::Internal,
        crate::http::api::openapi::responses::Unavailable,
    )
)]
pub async fn start(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RunRequest>,
) -> ApiResult<(StatusCode, Json<RunStarted>)> {
    let actor = registrar(&app, ip, &headers, true).await?;
    if let Some(why) = body.out_of_bounds() {
        return Err(ApiError::Invalid(why));
    }
    let started = db::rehearsals::start(
        &app.store,
        body.round,
        body.students,
        body.duration_s,
        &actor,
    )
    .await?;
    match started {
        Started::Run(id) => {
            tracing::info!(round.id = body.round, run = id, actor = %actor, "rehearsal run registered");
            Ok((StatusCode::CREATED, Json(RunStarted { id })))
        }
        Started::NoRound => Err(ApiError::NotFound),
        Started::NotRehearsal => Err(ApiError::NotRehearsal),
    }
}

/// `POST /api/admin/rehearsals/{id}/report`: stores the report once.
#[utoipa::path(
    post,
    path = "/api/admin/rehearsals/{id}/report",
    tag = "admin",
    params(("id" = u64, Path, description = "The run's id")),
    security(("registrar_basic" = []), ("session" = [])),
    request_body = RunReport,
    responses(
        (status = 204, description = "The report is stored"),
        crate::http::api::openapi::responses::JsonBodyErrors,
        crate::http::api::openapi::responses::Unauthorized,
        crate::http::api::openapi::responses::Forbidden,
        crate::http::api::openapi::responses::Conflict,
        crate::http::api::openapi::responses::TooMany,
        crate::http::api::openapi::responses::Internal,
        crate::http::api::openapi::responses::Unavailable,
    )
)]
pub async fn report(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<u64>,
    JsonBody(body): JsonBody<RunReport>,
) -> ApiResult<StatusCode> {
    registrar(&app, ip, &headers, true).await?;
    let report = body.report.to_string();
    if report.len() > MAX_REPORT_BYTES {
        return Err(ApiError::TooLarge);
    }
    let summary = serde_json::to_string(&body.summary).map_err(|e| ApiError::Internal(e.into()))?;
    if db::rehearsals::finish(&app.store, id, &summary, &report).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::Conflict(
            "no such run, or its report is already stored".into(),
        ))
    }
}
