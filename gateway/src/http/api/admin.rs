//! The registrar's round controls: rate, max-active, pre-queue, open, pause,
//! resume, close. Guarded by a registrar's session (or HTTP Basic for
//! scripts), applied
//! in one transaction with an audit-log row per change, and effective on
//! every gateway at its next snapshot refresh (well within a second).

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::http::api::openapi::responses::{
    BadRequest, Conflict, Forbidden, Internal, JsonBodyErrors, NotFound, TooMany, Unavailable,
};
use crate::http::extract::{same_origin, ClientIp, JsonBody};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use enrollment::RoundId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use waitroom::room::ChangeError;
use waitroom::{RoomStore, RoundChange, RoundState, RoundView};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    #[schema(maximum = 1_000_000)]
    pub admission_per_min: Option<u32>,
    /// 0 removes the cap.
    pub max_active: Option<u32>,
    pub action: Option<AdminAction>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdminAction {
    Prequeue,
    Open,
    Pause,
    Resume,
    Close,
}

impl AdminAction {
    /// The round change this action asks for (opening draws a fresh seed).
    pub fn change(self) -> RoundChange {
        match self {
            AdminAction::Prequeue => RoundChange::Prequeue,
            AdminAction::Open => RoundChange::Open {
                seed: rand::random(),
            },
            AdminAction::Pause => RoundChange::Pause,
            AdminAction::Resume => RoundChange::Resume,
            AdminAction::Close => RoundChange::Close,
        }
    }
}

/// A round as the registrar sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminRound {
    #[schema(value_type = u32)]
    pub id: RoundId,
    pub name: String,
    #[schema(value_type = crate::http::api::openapi::schemas::RoundStateDoc)]
    pub state: RoundState,
    pub admission_per_min: u32,
    pub max_active: u32,
    pub serving_mark: u64,
    pub waiting: u64,
    pub admitted_total: u64,
    pub active: u32,
    #[schema(value_type = Option<String>)]
    pub hold: Option<&'static str>,
    pub shuffle_seed: Option<String>,
    pub cohort_size: u64,
}

impl From<&RoundView> for AdminRound {
    fn from(v: &RoundView) -> Self {
        AdminRound {
            id: v.id,
            name: v.name.clone(),
            state: v.state,
            admission_per_min: v.admission_per_min,
            max_active: v.max_active.unwrap_or(0),
            serving_mark: v.serving_mark,
            waiting: v.last_order_key.saturating_sub(v.serving_mark),
            admitted_total: v.admitted_total,
            active: v.active,
            hold: v.hold.map(|h| h.as_str()),
            shuffle_seed: v.shuffle_seed.map(|s| s.to_string()),
            cohort_size: v.cohort_size,
        }
    }
}

/// The acting registrar: a signed-in admin session with the registrar role
/// (writes also need the session's `X-CSRF-Token` and the same origin), or
/// HTTP Basic credentials for scripts, which no browser sends on its own.
/// Basic credentials are checked on the admins' own password line, behind
/// the per-address limit and the per-account throttle.
async fn registrar(
    app: &AppState,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
    write: bool,
) -> ApiResult<String> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if authorization.is_some() {
        app.limits.check_ip(ip)?;
        return auth::registrar(&app.store, &app.admin_passwords, authorization).await;
    }
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(headers);
    let claims = crate::session::current_checked(app, &jar)
        .await?
        .ok_or(ApiError::Forbidden)?;
    let waitroom::Subject::Admin { username, role, .. } = &claims.subject else {
        return Err(ApiError::Forbidden);
    };
    if crate::session::Role::parse(role) != Some(crate::session::Role::Registrar) {
        return Err(ApiError::Forbidden);
    }
    if write {
        same_origin(headers)?;
        crate::session::check_csrf(&claims, headers, None)?;
    }
    Ok(username.clone())
}

/// `GET /api/admin/rounds/{id}`
#[utoipa::path(
    get,
    path = "/api/admin/rounds/{id}",
    tag = "admin",
    params(("id" = u32, Path, description = "The round's id")),
    security(("registrar_basic" = []), ("session" = [])),
    responses(
        (status = 200, description = "The round as the registrar sees it", body = AdminRound),
        BadRequest,
        (status = 401, description = "Wrong or unreadable Basic credentials (`bad_credentials`; with a `WWW-Authenticate` challenge)", body = crate::error::ApiErrorBody),
        Forbidden,
        NotFound,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn show(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<u32>,
) -> ApiResult<Json<AdminRound>> {
    registrar(&app, ip, &headers, false).await?;
    let rounds = app.store.rounds().await?;
    let view = rounds
        .iter()
        .find(|r| r.id == RoundId(id))
        .ok_or(ApiError::NotFound)?;
    Ok(Json(view.into()))
}

/// `POST /api/admin/rounds/{id}`: changes the rate, the cap or the state,
/// audit-logged.
#[utoipa::path(
    post,
    path = "/api/admin/rounds/{id}",
    tag = "admin",
    params(
        ("id" = u32, Path, description = "The round's id"),
        ("X-CSRF-Token" = Option<String>, Header, description = "The session's `csrf` value (session cookie only)"),
    ),
    security(("registrar_basic" = []), ("session" = [])),
    request_body = ChangeBody,
    responses(
        (status = 200, description = "The round after the change", body = AdminRound),
        JsonBodyErrors,
        (status = 401, description = "Wrong or unreadable Basic credentials (`bad_credentials`; with a `WWW-Authenticate` challenge)", body = crate::error::ApiErrorBody),
        Forbidden,
        NotFound,
        Conflict,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn change(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(id): Path<u32>,
    JsonBody(body): JsonBody<ChangeBody>,
) -> ApiResult<Json<AdminRound>> {
    let actor = registrar(&app, ip, &headers, true).await?;
    let mut changes = Vec::new();
    if let Some(rate) = body.admission_per_min {
        if rate > 1_000_000 {
            return Err(ApiError::Invalid(
                "admission_per_min must be at most 1000000".into(),
            ));
        }
        changes.push(RoundChange::Rate(rate));
    }
    if let Some(cap) = body.max_active {
        changes.push(RoundChange::MaxActive((cap > 0).then_some(cap)));
    }
    if let Some(action) = body.action {
        changes.push(action.change());
    }
    if changes.is_empty() {
        return Err(ApiError::Invalid("nothing to change".into()));
    }
    let view = match app
        .store
        .change(RoundId(id), &changes, &actor, crate::clock::now_ms())
        .await
    {
        Ok(Some(view)) => view,
        Ok(None) => return Err(ApiError::NotFound),
        Err(ChangeError::Invalid(e)) => return Err(ApiError::Conflict(e.to_string())),
        Err(ChangeError::Store(e)) => return Err(e.into()),
    };
    tracing::info!(round.id = id, actor = %actor, changes = ?changes, "round changed");
    Ok(Json((&view).into()))
}
