//! One round's page: its schedule (editable until it opens), the live rate
//! and max-active controls, state changes, the live view's numbers and the
//! round's audit log.

use super::rounds::{parse_schedule, RoundForm};
use super::{change_form, not_saved, parse_cap, parse_rate, status, years_text, MsgQuery};
use crate::error::{ApiError, ApiResult};
use crate::http::api::admin::AdminAction;
use crate::i18n::registrar as text;
use crate::web::{self, local_input, Chrome, Ctx, FieldErrors};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use enrollment::RoundId;
use serde::Deserialize;
use waitroom::room::ChangeError;
use waitroom::{RoomStore, RoundChange};

struct AuditRow {
    at: String,
    actor: String,
    action: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin_round.html")]
struct RoundPage {
    chrome: Chrome,
    id: u32,
    name: String,
    state: String,
    schedule: RoundForm,
    editable_schedule: bool,
    rate: u32,
    max_active: u32,
    seed: Option<String>,
    actions: Vec<(&'static str, &'static str)>,
    errors: FieldErrors,
    audit: Vec<AuditRow>,
    message: Option<&'static str>,
    /// Rehearsal runs may target this round.
    rehearsal: bool,
    pace: PaceForm,
    priority: PriorityForm,
}

/// The priority form's values: the round's policy, or what was sent back.
#[derive(Debug, Default, Clone)]
struct PriorityForm {
    /// `none`, `strict` or `weighted`.
    mode: String,
    /// The groups as written after the mode, e.g. `4/1-3` or `4=2/1-3=1`.
    groups: String,
    /// Changeable until the round opens.
    editable: bool,
    /// Each class line with its years, weight and people waiting.
    lanes: Vec<(String, u32, u64)>,
}

/// The pace form's values: the round's, or what the registrar sent back.
#[derive(Debug, Default, Clone)]
struct PaceForm {
    auto: bool,
    floor: String,
    ceiling: String,
    target_latency_ms: String,
    target_backlog: String,
    /// Why the rate is where it is, in the page's language, with the value.
    reason: Option<String>,
    /// Admissions a minute the workers were measured to keep up with.
    capacity: Option<u32>,
    /// Whether that speed has settled, so waits are estimated with it.
    settled: bool,
}

async fn round_page(
    app: &AppState,
    ctx: Ctx,
    id: u32,
    errors: FieldErrors,
    kept: Option<RoundForm>,
    message: Option<&'static str>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("rounds");
    ctx.admin()?;
    let lang = ctx.lang();
    let r = crate::db::rounds::get(&app.store, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let tz = ctx.chrome.tz;
    let schedule = kept.unwrap_or(RoundForm {
        name: r.name,
        years: years_text(r.eligible_years_mask),
        prequeue_at: local_input(tz, &r.prequeue_at),
        opens_at: local_input(tz, &r.opens_at),
        closes_at: local_input(tz, &r.closes_at),
        ..RoundForm::default()
    });
    let actions: Vec<(&'static str, &'static str)> = match r.state.as_str() {
        "scheduled" => vec![
            ("prequeue", text::START_PREQUEUE.get(lang)),
            ("open", text::OPEN_NOW.get(lang)),
            ("close", text::CLOSE.get(lang)),
        ],
        "prequeue" => vec![
            ("open", text::OPEN_NOW.get(lang)),
            ("close", text::CLOSE.get(lang)),
        ],
        "open" => vec![
            ("pause", text::PAUSE.get(lang)),
            ("close", text::CLOSE.get(lang)),
        ],
        "paused" => vec![
            ("resume", text::RESUME.get(lang)),
            ("close", text::CLOSE.get(lang)),
        ],
        _ => vec![],
    };
    let audit = crate::db::audit::of_subject(&app.store, &format!("round:{id}"), 50)
        .await?
        .into_iter()
        .map(|a| AuditRow {
            at: ctx.chrome.at(&a.at),
            actor: a.actor,
            action: a.action,
            detail: a.detail,
        })
        .collect();
    let rehearsal = crate::db::rehearsals::flag(&app.store, id)
        .await?
        .unwrap_or(false);
    let view = app
        .store
        .rounds()
        .await?
        .into_iter()
        .find(|v| v.id == RoundId(id));
    let priority = PriorityForm {
        mode: view
            .as_ref()
            .and_then(|v| v.priority)
            .map_or("none", |p| p.mode().as_str())
            .to_string(),
        groups: view
            .as_ref()
            .and_then(|v| v.priority)
            .map(|p| {
                let spec = p.spec();
                spec.split_once(':')
                    .map_or(spec.clone(), |(_, g)| g.to_string())
            })
            .unwrap_or_default(),
        editable: matches!(r.state.as_str(), "scheduled" | "prequeue"),
        // Lines of years the round does not take (the "other years" line
        // of a round for years 1-4, say) stay empty: not shown.
        lanes: view
            .as_ref()
            .and_then(|v| {
                let eligible = v.eligible_years_mask;
                crate::http::api::admin::AdminPriority::of(v).map(|p| {
                    p.lanes
                        .iter()
                        .map(|l| (l.years.iter().fold(0u8, |m, y| m | 1 << (y - 1)), l))
                        .filter(|(mask, _)| mask & eligible != 0)
                        .map(|(mask, l)| {
                            (waitroom::priority::years_text(mask), l.weight, l.waiting)
                        })
                        .collect()
                })
            })
            .unwrap_or_default(),
    };
    let pace = match view.and_then(|v| v.pace) {
        Some(p) => PaceForm {
            auto: true,
            floor: p.settings.floor.to_string(),
            ceiling: p.settings.ceiling.to_string(),
            target_latency_ms: p.settings.target_latency_ms.to_string(),
            target_backlog: p.settings.target_backlog.to_string(),
            reason: p.reason.map(|r| {
                use waitroom::autopace::PaceReason;
                let label = match r {
                    PaceReason::Backlog => text::PACE_BACKLOG,
                    PaceReason::Latency => text::PACE_LATENCY,
                    PaceReason::Healthy => text::PACE_HEALTHY,
                    PaceReason::Steady => text::PACE_STEADY,
                    PaceReason::Unknown => text::PACE_UNKNOWN,
                }
                .get(lang);
                match p.signal.filter(|_| r.workers_behind()) {
                    Some(n) => format!("{label} {n}"),
                    None => label.to_string(),
                }
            }),
            capacity: p.capacity_per_min,
            settled: p.capacity_settled,
        },
        None => PaceForm {
            auto: false,
            floor: (r.admission_per_min / 10).max(1).to_string(),
            ceiling: r.admission_per_min.max(1).to_string(),
            target_latency_ms: crate::http::api::admin::DEFAULT_TARGET_LATENCY_MS.to_string(),
            target_backlog: crate::http::api::admin::DEFAULT_TARGET_BACKLOG.to_string(),
            reason: None,
            capacity: None,
            settled: false,
        },
    };
    let status = status(&errors);
    Ok(web::render(
        RoundPage {
            rehearsal,
            chrome: ctx.chrome,
            id,
            name: schedule.name.clone(),
            editable_schedule: matches!(r.state.as_str(), "scheduled" | "prequeue"),
            state: r.state,
            schedule,
            rate: r.admission_per_min,
            max_active: r.max_active.unwrap_or(0),
            seed: r.shuffle_seed.map(|s| s.to_string()),
            actions,
            errors,
            audit,
            message,
            pace,
            priority,
        },
        status,
    ))
}

/// `GET /admin/rounds/{id}`
pub async fn round(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<u32>,
    Query(q): Query<MsgQuery>,
) -> ApiResult<Response> {
    let message = match q.msg.as_deref() {
        Some("saved") => Some(text::SAVED.get(ctx.lang())),
        _ => None,
    };
    round_page(&app, ctx, id, FieldErrors::default(), None, message).await
}

#[derive(Debug, Deserialize)]
pub struct ControlForm {
    #[serde(default)]
    pub csrf: String,
    pub rate: Option<String>,
    pub max_active: Option<String>,
    pub action: Option<String>,
    /// `fixed` or `auto`, with the range and targets for `auto`.
    pub pace_mode: Option<String>,
    pub floor: Option<String>,
    pub ceiling: Option<String>,
    pub target_latency_ms: Option<String>,
    pub target_backlog: Option<String>,
    /// `none`, `strict` or `weighted`, with the groups for the latter two.
    pub priority_mode: Option<String>,
    pub priority_groups: Option<String>,
}

/// The priority change a control form asks for; a wrong field is an
/// error under `priority`, in both languages.
fn priority_change(form: &ControlForm, errors: &mut FieldErrors) -> Option<RoundChange> {
    let mode = form.priority_mode.as_deref()?.trim();
    let groups = form.priority_groups.as_deref().unwrap_or("").trim();
    let spec = match mode {
        "none" => "none".to_string(),
        "strict" | "weighted" => format!("{mode}:{groups}"),
        _ => {
            errors.add(
                "priority",
                waitroom::PriorityError::Syntax(mode.chars().take(20).collect()).to_string(),
            );
            return None;
        }
    };
    match waitroom::Priority::parse(&spec) {
        Ok(p) => Some(RoundChange::Priority(p)),
        Err(e) => {
            errors.add("priority", e.to_string());
            None
        }
    }
}

/// The pace change a control form asks for; a wrong field is an error
/// under `pace`.
fn pace_change(
    lang: crate::i18n::Lang,
    form: &ControlForm,
    errors: &mut FieldErrors,
) -> Option<RoundChange> {
    use crate::http::api::admin::{PaceBody, PaceMode};
    let mode = match form.pace_mode.as_deref()? {
        "fixed" => PaceMode::Fixed,
        "auto" => PaceMode::Auto,
        _ => {
            errors.add("pace", text::PACE_INVALID.get(lang));
            return None;
        }
    };
    let num = |v: &Option<String>| -> Result<Option<u32>, ()> {
        match v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse::<u32>().map(Some).map_err(|_| ()),
        }
    };
    let body = match (
        num(&form.floor),
        num(&form.ceiling),
        num(&form.target_latency_ms),
        num(&form.target_backlog),
    ) {
        (Ok(floor), Ok(ceiling), Ok(target_latency_ms), Ok(target_backlog)) => PaceBody {
            mode,
            floor,
            ceiling,
            target_latency_ms,
            target_backlog,
        },
        _ => {
            errors.add("pace", text::PACE_INVALID.get(lang));
            return None;
        }
    };
    match body.change() {
        Ok(c) => Some(c),
        Err(_) => {
            errors.add("pace", text::PACE_INVALID.get(lang));
            None
        }
    }
}

/// `POST /admin/rounds/{id}/control`: rate, max-active, or a state change.
pub async fn control(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<u32>,
    Form(form): Form<ControlForm>,
) -> ApiResult<Response> {
    let actor = change_form(&ctx, &headers, &form.csrf)?;
    let lang = ctx.lang();
    let mut errors = FieldErrors::default();
    let mut changes = Vec::new();
    if let Some(change) = pace_change(lang, &form, &mut errors) {
        changes.push(change);
    }
    if let Some(change) = priority_change(&form, &mut errors) {
        changes.push(change);
    }
    if let Some(v) = form.rate.as_deref() {
        if let Some(rate) = parse_rate(lang, v, &mut errors) {
            changes.push(RoundChange::Rate(rate));
        }
    }
    if let Some(v) = form.max_active.as_deref() {
        if let Some(cap) = parse_cap(lang, v, &mut errors) {
            changes.push(RoundChange::MaxActive(cap));
        }
    }
    if let Some(action) = form.action.as_deref().filter(|a| !a.is_empty()) {
        let parsed: Option<AdminAction> =
            serde_json::from_value(serde_json::Value::String(action.to_string())).ok();
        match parsed {
            Some(a) => changes.push(a.change()),
            None => errors.add("action", text::UNKNOWN_ACTION.get(lang)),
        }
    }
    if changes.is_empty() && errors.is_empty() {
        errors.add("rate", text::NOTHING_TO_CHANGE.get(lang));
    }
    if !errors.is_empty() {
        return round_page(&app, ctx, id, errors, None, None).await;
    }
    if let Err(ApiError::Conflict(_)) =
        crate::http::api::admin::check_rate_allowed(&app, RoundId(id), &changes).await
    {
        errors.add("rate", text::RATE_IS_AUTOMATIC.get(lang));
        return round_page(&app, ctx, id, errors, None, None).await;
    }
    if let Err(ApiError::Conflict(m)) =
        crate::http::api::admin::check_priority_allowed(&app, RoundId(id), &changes).await
    {
        errors.add("priority", m);
        return round_page(&app, ctx, id, errors, None, None).await;
    }
    match app
        .store
        .change(RoundId(id), &changes, &actor, crate::clock::now_ms())
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return Err(ApiError::NotFound),
        Err(ChangeError::Invalid(e)) => {
            errors.add("action", e.to_string());
            return round_page(&app, ctx, id, errors, None, None).await;
        }
        Err(ChangeError::Store(e)) => return Err(not_saved(e)),
    }
    tracing::info!(round.id = id, actor = %actor, changes = ?changes, "round changed from the registrar pages");
    Ok(Redirect::to(&format!("/admin/rounds/{id}?msg=saved")).into_response())
}

/// `POST /admin/rounds/{id}/schedule`: name, years and times, before opening.
pub async fn schedule(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<u32>,
    Form(form): Form<RoundForm>,
) -> ApiResult<Response> {
    let actor = change_form(&ctx, &headers, &form.csrf)?;
    let mut errors = FieldErrors::default();
    let parsed = parse_schedule(&ctx, &form, &mut errors);
    let (Some(s), true) = (parsed, errors.is_empty()) else {
        return round_page(&app, ctx, id, errors, Some(form), None).await;
    };
    let changed = crate::db::rounds::reschedule(&app.store, id, &s, &actor)
        .await
        .map_err(not_saved)?;
    if !changed {
        errors.add("name", text::SCHEDULE_LOCKED.get(ctx.lang()));
        return round_page(&app, ctx, id, errors, Some(form), None).await;
    }
    Ok(Redirect::to(&format!("/admin/rounds/{id}?msg=saved")).into_response())
}

/// `GET /admin/rounds/{id}/live`: the live view's numbers (JSON).
pub async fn live(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<u32>,
) -> ApiResult<Response> {
    ctx.admin()?;
    let sample = app
        .live
        .sample(&app, RoundId(id))
        .await
        .ok_or(ApiError::NotFound)?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(sample.as_ref().clone()),
    )
        .into_response())
}
