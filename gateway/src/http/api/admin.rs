//! The registrar's round controls: rate, max-active, pace, priority by class
//! year (before opening), pre-queue, open, pause, resume, close, and the
//! rehearsal flag. Guarded by a registrar's session (or HTTP Basic for
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
    /// Marks the round as a rehearsal (rehearsal runs may target it) or not.
    pub rehearsal: Option<bool>,
    /// Switches between the fixed rate and the automatic pace.
    pub pace: Option<PaceBody>,
    /// Gives classes of students an earlier turn (only before the round
    /// opens).
    pub priority: Option<PriorityBody>,
}

/// `{"mode": "none"}`, `{"mode": "strict", "groups": [{"years": [4]},
/// {"years": [1, 2, 3]}]}` (earlier groups first) or `{"mode": "weighted",
/// "groups": [{"years": [4], "weight": 2}, {"years": [1, 2, 3], "weight":
/// 1}]}` (turns split by weight). Years no group names form one last group
/// (weight 1).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityBody {
    pub mode: PriorityModeBody,
    #[serde(default)]
    pub groups: Vec<PriorityGroupBody>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriorityModeBody {
    None,
    Strict,
    Weighted,
}

/// One group of class years (1-8), with its weight under weighted turns
/// (1-100).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorityGroupBody {
    pub years: Vec<u32>,
    pub weight: Option<u32>,
}

impl PriorityBody {
    /// The change this body asks for, or why it cannot be (in English and
    /// Korean).
    pub fn change(&self) -> Result<RoundChange, String> {
        use waitroom::{Priority, PriorityMode};
        let mode = match self.mode {
            PriorityModeBody::None => {
                if !self.groups.is_empty() {
                    return Err(
                        "mode none takes no groups (우선순위 없음에는 그룹을 쓰지 않습니다)".into(),
                    );
                }
                return Ok(RoundChange::Priority(None));
            }
            PriorityModeBody::Strict => PriorityMode::Strict,
            PriorityModeBody::Weighted => PriorityMode::Weighted,
        };
        let groups: Vec<(Vec<u32>, Option<u32>)> = self
            .groups
            .iter()
            .map(|g| (g.years.clone(), g.weight))
            .collect();
        Priority::new(mode, &groups)
            .map(|p| RoundChange::Priority(Some(p)))
            .map_err(|e| e.to_string())
    }
}

/// The message when a priority change comes after the round opened.
pub const PRIORITY_LOCKED: &str = "the priority can be changed only before the round opens: \
     the lines are formed at opening (우선순위는 차수가 열리기 전에만 바꿀 수 있습니다)";

/// Refuses a priority change on a round that has opened (a clear 409; the
/// store refuses it too, under the round lock, should the round open in
/// between).
pub async fn check_priority_allowed(
    app: &AppState,
    round: RoundId,
    changes: &[RoundChange],
) -> ApiResult<()> {
    let Some(at) = changes
        .iter()
        .position(|c| matches!(c, RoundChange::Priority(_)))
    else {
        return Ok(());
    };
    let opens_first = changes[..at]
        .iter()
        .any(|c| matches!(c, RoundChange::Open { .. }));
    let state = app
        .store
        .rounds()
        .await?
        .into_iter()
        .find(|r| r.id == round)
        .map(|r| r.state);
    match state {
        None => Err(ApiError::NotFound),
        Some(RoundState::Scheduled | RoundState::Prequeue) if !opens_first => Ok(()),
        Some(_) => Err(ApiError::Conflict(PRIORITY_LOCKED.into())),
    }
}

/// `{"mode": "fixed"}`, or `{"mode": "auto", "floor": 60, "ceiling": 3000,
/// "target_latency_ms": 2000, "target_backlog": 500}` (targets optional).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaceBody {
    pub mode: PaceMode,
    pub floor: Option<u32>,
    pub ceiling: Option<u32>,
    pub target_latency_ms: Option<u32>,
    pub target_backlog: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaceMode {
    Fixed,
    Auto,
}

/// Targets used when the registrar names none: a decision within two
/// seconds, and no more than half a minute of work waiting at 1,000
/// commands a minute.
pub const DEFAULT_TARGET_LATENCY_MS: u32 = 2_000;
pub const DEFAULT_TARGET_BACKLOG: u32 = 500;

impl PaceBody {
    /// The change this body asks for, or why it cannot be.
    pub fn change(&self) -> Result<RoundChange, String> {
        match self.mode {
            PaceMode::Fixed => Ok(RoundChange::Pace(None)),
            PaceMode::Auto => {
                let (Some(floor), Some(ceiling)) = (self.floor, self.ceiling) else {
                    return Err("automatic pace needs a floor and a ceiling".into());
                };
                let settings = waitroom::autopace::AutoPace {
                    floor,
                    ceiling,
                    target_latency_ms: self.target_latency_ms.unwrap_or(DEFAULT_TARGET_LATENCY_MS),
                    target_backlog: self.target_backlog.unwrap_or(DEFAULT_TARGET_BACKLOG),
                }
                .validate()
                .map_err(|e| e.to_string())?;
                Ok(RoundChange::Pace(Some(settings)))
            }
        }
    }
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
    /// Rehearsal runs may target this round.
    pub rehearsal: bool,
    /// `fixed`, or `auto` with `pace` set.
    pub pace_mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace: Option<AdminPace>,
    /// The classes given an earlier turn; `null` when the round has one line.
    pub priority: Option<AdminPriority>,
}

/// A round's priority as the registrar sees it, with each class's line.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminPriority {
    /// `strict` or `weighted`.
    pub mode: &'static str,
    /// The canonical text, e.g. `strict:4/1-3` or `weighted:4=2/1-3=1`.
    pub spec: String,
    pub lanes: Vec<AdminLane>,
}

/// One class's line.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminLane {
    pub years: Vec<u8>,
    pub weight: u32,
    pub serving_mark: u64,
    pub waiting: u64,
}

impl AdminPriority {
    pub fn of(v: &RoundView) -> Option<AdminPriority> {
        let p = v.priority?;
        Some(AdminPriority {
            mode: p.mode().as_str(),
            spec: p.spec(),
            lanes: (0..p.lanes())
                .map(|i| {
                    let line = v.lanes.get(i).copied().unwrap_or_default();
                    let mask = p.lane_years(i);
                    AdminLane {
                        years: (1..=8).filter(|y| mask & (1 << (y - 1)) != 0).collect(),
                        weight: p.weight(i),
                        serving_mark: line.serving_mark,
                        waiting: line.last_key.saturating_sub(line.serving_mark),
                    }
                })
                .collect(),
        })
    }
}

/// The automatic pace as the registrar sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminPace {
    pub floor: u32,
    pub ceiling: u32,
    pub target_latency_ms: u32,
    pub target_backlog: u32,
    /// `backlog`, `latency`, `healthy`, `steady` or `unknown`.
    #[schema(value_type = Option<String>)]
    pub reason: Option<waitroom::autopace::PaceReason>,
    pub signal: Option<u64>,
    pub changed_at_ms: Option<u64>,
    /// Admissions a minute the workers were measured to keep up with, in
    /// this round or (until it has its own) the last round measured: the
    /// rate a switch to automatic starts at, at most, and, once settled,
    /// the one waits are estimated with. `null` before any measurement.
    pub capacity_per_min: Option<u32>,
    /// Whether that speed has settled (a second window agreed with it, or
    /// the workers were seen keeping up with it); until then students are
    /// shown rough waits.
    pub capacity_settled: bool,
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
            // Not part of the room's view: filled in from the round row.
            rehearsal: false,
            pace_mode: if v.pace.is_some() { "auto" } else { "fixed" },
            pace: v.pace.map(|p| AdminPace {
                floor: p.settings.floor,
                ceiling: p.settings.ceiling,
                target_latency_ms: p.settings.target_latency_ms,
                target_backlog: p.settings.target_backlog,
                reason: p.reason,
                signal: p.signal,
                changed_at_ms: p.changed_at_ms,
                capacity_per_min: p.capacity_per_min,
                capacity_settled: p.capacity_settled,
            }),
            priority: AdminPriority::of(v),
        }
    }
}

/// A fixed rate cannot be set while the leader sets it, unless the same
/// request goes back to fixed first.
pub async fn check_rate_allowed(
    app: &AppState,
    round: RoundId,
    changes: &[RoundChange],
) -> ApiResult<()> {
    let mut auto = None;
    let mut sets_rate = false;
    for c in changes {
        match c {
            RoundChange::Pace(p) => auto = Some(p.is_some()),
            RoundChange::Rate(_) => sets_rate = true,
            _ => {}
        }
    }
    if !sets_rate {
        return Ok(());
    }
    let auto = match auto {
        Some(a) => a,
        None => app
            .store
            .rounds()
            .await?
            .iter()
            .any(|r| r.id == round && r.pace.is_some()),
    };
    if auto {
        return Err(ApiError::Conflict(
            "the pace is automatic: switch to the fixed rate to set one".into(),
        ));
    }
    Ok(())
}

/// The acting registrar: a signed-in admin session with the registrar role
/// (writes also need the session's `X-CSRF-Token` and the same origin), or
/// HTTP Basic credentials for scripts, which no browser sends on its own.
/// Basic credentials are checked on the admins' own password line, behind
/// the per-address limit and the per-account throttle.
pub(super) async fn registrar(
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
    let mut round = AdminRound::from(view);
    round.rehearsal = crate::db::rehearsals::flag(&app.store, id)
        .await?
        .unwrap_or(false);
    Ok(Json(round))
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
    if let Some(pace) = &body.pace {
        // Before a rate in the same request: going back to fixed and
        // naming the rate to hold is one change.
        changes.insert(0, pace.change().map_err(ApiError::Invalid)?);
    }
    if let Some(priority) = &body.priority {
        // Before an opening in the same request: the lines are formed then.
        changes.insert(0, priority.change().map_err(ApiError::Invalid)?);
    }
    if let Some(action) = body.action {
        changes.push(action.change());
    }
    if changes.is_empty() && body.rehearsal.is_none() {
        return Err(ApiError::Invalid("nothing to change".into()));
    }
    check_rate_allowed(&app, RoundId(id), &changes).await?;
    check_priority_allowed(&app, RoundId(id), &changes).await?;
    let view = if changes.is_empty() {
        let rounds = app.store.rounds().await?;
        rounds
            .into_iter()
            .find(|r| r.id == RoundId(id))
            .ok_or(ApiError::NotFound)?
    } else {
        match app
            .store
            .change(RoundId(id), &changes, &actor, crate::clock::now_ms())
            .await
        {
            Ok(Some(view)) => view,
            Ok(None) => return Err(ApiError::NotFound),
            Err(ChangeError::Invalid(e)) => return Err(ApiError::Conflict(e.to_string())),
            Err(ChangeError::Store(e)) => return Err(e.into()),
        }
    };
    if !changes.is_empty() {
        tracing::info!(round.id = id, actor = %actor, changes = ?changes, "round changed");
    }
    if let Some(rehearsal) = body.rehearsal {
        // Audited in its own transaction, like a schedule change; after the
        // state changes, so a refused transition leaves the flag alone.
        if !crate::db::rehearsals::set_flag(&app.store, id, rehearsal, &actor).await? {
            return Err(ApiError::NotFound);
        }
        tracing::info!(round.id = id, actor = %actor, rehearsal, "round rehearsal flag set");
    }
    let mut round = AdminRound::from(&view);
    round.rehearsal = crate::db::rehearsals::flag(&app.store, id)
        .await?
        .unwrap_or(false);
    Ok(Json(round))
}
