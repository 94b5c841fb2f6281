//! The cart's alternates through the API: `PUT /api/cart/alternates` with
//! `{"section": 7, "alternates": [9, 8]}` sets the sections of the same
//! course to try, in order, when item 7 is refused. Signed-in students,
//! checked like every cookie-authenticated write (same origin and the
//! session's CSRF value in `X-CSRF-Token`); the check and the write are
//! the cart page's.

use super::cart::{both, write_allowed};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::JsonBody;
use crate::session::StudentSession;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlternatesBody {
    pub section: u32,
    pub alternates: Vec<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Alternates {
    pub section: u32,
    pub alternates: Vec<u32>,
}

/// `PUT /api/cart/alternates`
#[utoipa::path(
    put,
    path = "/api/cart/alternates",
    tag = "student",
    security(("session" = [])),
    request_body = AlternatesBody,
    responses(
        (status = 200, description = "The item's alternates as stored", body = Alternates),
        crate::http::api::openapi::responses::JsonBodyErrors,
        crate::http::api::openapi::responses::Unauthorized,
        crate::http::api::openapi::responses::Forbidden,
        crate::http::api::openapi::responses::TooMany,
        crate::http::api::openapi::responses::Internal,
        crate::http::api::openapi::responses::Unavailable,
    )
)]
pub async fn set(
    State(app): State<AppState>,
    me: StudentSession,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AlternatesBody>,
) -> ApiResult<Json<Alternates>> {
    write_allowed(&me, &headers)?;
    let student = me.student().id;
    app.limits.check_student(student)?;
    if body.alternates.len() > enrollment::MAX_ALTERNATES {
        return Err(ApiError::Invalid(format!(
            "at most {} alternates per item / 대체 분반은 {}개까지",
            enrollment::MAX_ALTERNATES,
            enrollment::MAX_ALTERNATES
        )));
    }
    match save(&app, student, body.section, &body.alternates).await? {
        Ok(()) => Ok(Json(Alternates {
            section: body.section,
            alternates: body.alternates,
        })),
        Err(code) => Err(ApiError::Invalid(both(code))),
    }
}

/// Checks and stores `wanted` as the alternates of cart item `section`;
/// the inner error is the notice code saying why not (the API maps it to
/// a 4xx).
pub async fn save(
    app: &AppState,
    student: enrollment::StudentId,
    section: u32,
    wanted: &[u32],
) -> ApiResult<Result<(), &'static str>> {
    let mut all = wanted.to_vec();
    all.push(section);
    let catalog = app.catalog.covering(&all).await;
    let checked = match crate::cart::check_alternates(&catalog, section, wanted) {
        Ok(c) => c,
        Err(crate::cart::BadAlternates::UnknownSection) => return Ok(Err("unknown")),
        Err(crate::cart::BadAlternates::OtherCourse) => return Ok(Err("alt_other_course")),
        Err(crate::cart::BadAlternates::Repeated) => return Ok(Err("alt_repeated")),
        Err(crate::cart::BadAlternates::TooMany) => return Ok(Err("alt_repeated")),
    };
    if crate::db::cart::set_alternates(&app.store, student, section, &checked).await? {
        Ok(Ok(()))
    } else {
        Ok(Err("alt_not_in_cart"))
    }
}
