//! Registrar pages: rounds (create, schedule, open/pause/resume/close, live
//! rate and max-active controls with a live view), courses and sections,
//! CSV import and export, the fairness report and per-student timelines.
//!
//! Any admin may look (viewers are read-only); every change needs the
//! registrar role, the session's CSRF value and a same-origin request, and
//! is written to the audit log with who and when. Round changes go through
//! the same store call as the JSON admin API, so both are audited alike.

use crate::catalog::{self, format_meetings, parse_meetings};
use crate::csv_import::{self, ImportError, Problem, Summary};
use crate::error::{ApiError, ApiResult};
use crate::http::api::admin::AdminAction;
use crate::http::csv_stream;
use crate::http::extract::same_origin;
use crate::http::pages::student::{outcome_words, reason_words};
use crate::i18n::Lang;
use crate::web::{self, local_input, parse_local, Chrome, Ctx, FieldErrors};
use crate::AppState;
use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::NaiveDateTime;
use enrollment::RoundId;
use serde::Deserialize;
use sqlx::Row;
use waitroom::room::ChangeError;
use waitroom::{RoomStore, RoundChange};

fn db(e: impl std::error::Error) -> ApiError {
    ApiError::unavailable("mysql", &e)
}

fn internal(e: sqlx::Error) -> ApiError {
    ApiError::Internal(e.into())
}

/// Checks what every registrar form needs and returns the actor.
fn change_form(ctx: &Ctx, headers: &HeaderMap, csrf: &str) -> ApiResult<String> {
    same_origin(headers)?;
    let actor = ctx.registrar()?;
    ctx.check_csrf(csrf)?;
    Ok(actor)
}

/// Records a registrar's change; called inside the change's own
/// transaction, so a change is never committed without its audit row.
pub(crate) async fn audit<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::MySql>,
    actor: &str,
    action: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (UTC_TIMESTAMP(3), ?, ?, ?, ?)")
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(detail.to_string())
        .execute(exec)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Rounds
// ---------------------------------------------------------------------------

struct RoundRow {
    id: u32,
    name: String,
    term: String,
    state: String,
    years: String,
    prequeue_at: String,
    opens_at: String,
    closes_at: String,
    rate: u32,
}

struct Term {
    id: u32,
    label: String,
}

/// The create-round form's values, kept when re-shown with errors.
#[derive(Debug, Default, Deserialize)]
pub struct RoundForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub term: String,
    #[serde(default)]
    pub years: String,
    #[serde(default)]
    pub prequeue_at: String,
    #[serde(default)]
    pub opens_at: String,
    #[serde(default)]
    pub closes_at: String,
    #[serde(default)]
    pub rate: String,
    #[serde(default)]
    pub max_active: String,
}

#[derive(Template)]
#[template(path = "admin_rounds.html")]
struct RoundsPage {
    chrome: Chrome,
    rounds: Vec<RoundRow>,
    terms: Vec<Term>,
    form: RoundForm,
    errors: FieldErrors,
}

fn years_text(mask: u8) -> String {
    (1..=8u8)
        .filter(|y| mask & (1 << (y - 1)) != 0)
        .map(|y| y.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `1,2` or `1-4` or `1 3` into a year mask.
fn parse_years(s: &str) -> Option<u8> {
    let mut mask = 0u8;
    for part in s.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u8>().ok()?, b.trim().parse::<u8>().ok()?),
            None => {
                let y = part.parse::<u8>().ok()?;
                (y, y)
            }
        };
        if !(1..=8).contains(&a) || !(1..=8).contains(&b) || a > b {
            return None;
        }
        for y in a..=b {
            mask |= 1 << (y - 1);
        }
    }
    (mask != 0).then_some(mask)
}

async fn rounds_page(
    app: &AppState,
    ctx: Ctx,
    form: RoundForm,
    errors: FieldErrors,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("rounds");
    ctx.admin()?;
    let pool = app.store.pool();
    let rows = app
        .store
        .timed(
            sqlx::query(
                "SELECT r.id, r.name, t.code, r.state, r.eligible_years_mask, r.prequeue_at, r.opens_at, \
                        r.closes_at, r.admission_per_min \
                 FROM rounds r JOIN terms t ON t.id = r.term_id ORDER BY r.opens_at DESC, r.id DESC LIMIT 200",
            )
            .fetch_all(pool),
        )
        .await
        .map_err(db)?;
    let mut rounds = Vec::with_capacity(rows.len());
    for r in rows {
        rounds.push(RoundRow {
            id: r.try_get("id").map_err(internal)?,
            name: r.try_get("name").map_err(internal)?,
            term: r.try_get("code").map_err(internal)?,
            state: r.try_get("state").map_err(internal)?,
            years: years_text(r.try_get("eligible_years_mask").map_err(internal)?),
            prequeue_at: ctx.chrome.at(&r.try_get("prequeue_at").map_err(internal)?),
            opens_at: ctx.chrome.at(&r.try_get("opens_at").map_err(internal)?),
            closes_at: ctx.chrome.at(&r.try_get("closes_at").map_err(internal)?),
            rate: r.try_get("admission_per_min").map_err(internal)?,
        });
    }
    let terms = terms(app).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(web::render(
        RoundsPage {
            chrome: ctx.chrome,
            rounds,
            terms,
            form,
            errors,
        },
        status,
    ))
}

async fn terms(app: &AppState) -> ApiResult<Vec<Term>> {
    let rows = app
        .store
        .timed(
            sqlx::query("SELECT id, code, name FROM terms ORDER BY starts_on DESC")
                .fetch_all(app.store.pool()),
        )
        .await
        .map_err(db)?;
    rows.into_iter()
        .map(|r| {
            Ok(Term {
                id: r.try_get("id").map_err(internal)?,
                label: format!(
                    "{} {}",
                    r.try_get::<String, _>("code").map_err(internal)?,
                    r.try_get::<String, _>("name").map_err(internal)?
                ),
            })
        })
        .collect()
}

/// `GET /admin`
pub async fn rounds(State(app): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    let form = RoundForm {
        years: "1-4".into(),
        rate: "600".into(),
        ..RoundForm::default()
    };
    rounds_page(&app, ctx, form, FieldErrors::default()).await
}

struct Schedule {
    mask: u8,
    prequeue_at: NaiveDateTime,
    opens_at: NaiveDateTime,
    closes_at: NaiveDateTime,
}

fn parse_schedule(ctx: &Ctx, form: &RoundForm, errors: &mut FieldErrors) -> Option<Schedule> {
    let lang = ctx.lang();
    if form.name.trim().is_empty() || form.name.trim().chars().count() > 100 {
        errors.add(
            "name",
            lang.t(
                "이름은 1-100자입니다.",
                "A name of 1-100 characters is required.",
            ),
        );
    }
    let mask = parse_years(&form.years);
    if mask.is_none() {
        errors.add(
            "years",
            lang.t(
                "학년은 1,2 또는 1-4처럼 입력하세요 (1-8).",
                "Enter years like 1,2 or 1-4 (1 to 8).",
            ),
        );
    }
    let tz = ctx.chrome.tz;
    let mut time = |field: &'static str, v: &str| {
        let t = parse_local(tz, v);
        if t.is_none() {
            errors.add(
                field,
                lang.t("날짜와 시각을 입력하세요.", "Enter a date and time."),
            );
        }
        t
    };
    let pre = time("prequeue_at", &form.prequeue_at);
    let open = time("opens_at", &form.opens_at);
    let close = time("closes_at", &form.closes_at);
    if let (Some(p), Some(o)) = (pre, open) {
        if p > o {
            errors.add(
                "prequeue_at",
                lang.t(
                    "사전 대기는 열리기 전이어야 합니다.",
                    "The pre-queue must start before the room opens.",
                ),
            );
        }
    }
    if let (Some(o), Some(c)) = (open, close) {
        if o >= c {
            errors.add(
                "closes_at",
                lang.t(
                    "마감은 열린 뒤여야 합니다.",
                    "The close must come after the open.",
                ),
            );
        }
    }
    Some(Schedule {
        mask: mask?,
        prequeue_at: pre?.naive_utc(),
        opens_at: open?.naive_utc(),
        closes_at: close?.naive_utc(),
    })
}

fn parse_rate(lang: Lang, v: &str, errors: &mut FieldErrors) -> Option<u32> {
    match v.trim().parse::<u32>() {
        Ok(r) if r <= 1_000_000 => Some(r),
        _ => {
            errors.add(
                "rate",
                lang.t(
                    "분당 0에서 1,000,000 사이의 숫자입니다.",
                    "A number from 0 to 1,000,000 per minute.",
                ),
            );
            None
        }
    }
}

fn parse_cap(lang: Lang, v: &str, errors: &mut FieldErrors) -> Option<Option<u32>> {
    let v = v.trim();
    if v.is_empty() || v == "0" {
        return Some(None);
    }
    match v.parse::<u32>() {
        Ok(c) if c <= 10_000_000 => Some(Some(c)),
        _ => {
            errors.add(
                "max_active",
                lang.t(
                    "0(제한 없음) 이상의 숫자입니다.",
                    "A number; 0 or empty means no cap.",
                ),
            );
            None
        }
    }
}

/// `POST /admin/rounds`
pub async fn create_round(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<RoundForm>,
) -> ApiResult<Response> {
    let actor = change_form(&ctx, &headers, &form.csrf)?;
    let lang = ctx.lang();
    let mut errors = FieldErrors::default();
    let schedule = parse_schedule(&ctx, &form, &mut errors);
    let term = form.term.trim().parse::<u32>().ok();
    if term.is_none() {
        errors.add("term", lang.t("학기를 고르세요.", "Pick a term."));
    }
    let rate = parse_rate(lang, &form.rate, &mut errors);
    let cap = parse_cap(lang, &form.max_active, &mut errors);
    let (Some(s), Some(term), Some(rate), Some(cap), true) =
        (schedule, term, rate, cap, errors.is_empty())
    else {
        return rounds_page(&app, ctx, form, errors).await;
    };
    let work = async {
        let mut tx = app.store.pool().begin().await?;
        let id = sqlx::query(
            "INSERT INTO rounds (term_id, name, eligible_years_mask, prequeue_at, opens_at, closes_at, \
                                 admission_per_min, max_active) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(term)
        .bind(form.name.trim())
        .bind(s.mask)
        .bind(s.prequeue_at)
        .bind(s.opens_at)
        .bind(s.closes_at)
        .bind(rate)
        .bind(cap)
        .execute(&mut *tx)
        .await?
        .last_insert_id();
        audit(
            &mut *tx,
            &actor,
            "create_round",
            &format!("round:{id}"),
            serde_json::json!({ "name": form.name.trim(), "years": s.mask, "rate": rate, "max_active": cap }),
        )
        .await?;
        tx.commit().await?;
        Ok::<u64, sqlx::Error>(id)
    };
    let id = match app.store.timed(work).await {
        Ok(id) => id,
        Err(crate::db::StoreError::Db(sqlx::Error::Database(e)))
            if e.is_foreign_key_violation() =>
        {
            errors.add("term", lang.t("없는 학기입니다.", "No such term."));
            return rounds_page(&app, ctx, form, errors).await;
        }
        Err(e) => return Err(db(e)),
    };
    Ok(Redirect::to(&format!("/admin/rounds/{id}")).into_response())
}

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
}

#[derive(Debug, Deserialize)]
pub struct MsgQuery {
    pub msg: Option<String>,
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
    let pool = app.store.pool();
    let r = app
        .store
        .timed(
            sqlx::query(
                "SELECT name, state, eligible_years_mask, prequeue_at, opens_at, closes_at, admission_per_min, \
                        max_active, shuffle_seed FROM rounds WHERE id = ?",
            )
            .bind(id)
            .fetch_optional(pool),
        )
        .await
        .map_err(db)?
        .ok_or(ApiError::NotFound)?;
    let state: String = r.try_get("state").map_err(internal)?;
    let tz = ctx.chrome.tz;
    let schedule = kept.unwrap_or(RoundForm {
        name: r.try_get("name").map_err(internal)?,
        years: years_text(r.try_get("eligible_years_mask").map_err(internal)?),
        prequeue_at: local_input(tz, &r.try_get("prequeue_at").map_err(internal)?),
        opens_at: local_input(tz, &r.try_get("opens_at").map_err(internal)?),
        closes_at: local_input(tz, &r.try_get("closes_at").map_err(internal)?),
        ..RoundForm::default()
    });
    let actions: Vec<(&'static str, &'static str)> = match state.as_str() {
        "scheduled" => vec![
            ("prequeue", lang.t("사전 대기 시작", "Start pre-queue")),
            ("open", lang.t("지금 열기", "Open now")),
            ("close", lang.t("마감", "Close")),
        ],
        "prequeue" => vec![
            ("open", lang.t("지금 열기", "Open now")),
            ("close", lang.t("마감", "Close")),
        ],
        "open" => vec![
            ("pause", lang.t("일시 정지", "Pause")),
            ("close", lang.t("마감", "Close")),
        ],
        "paused" => vec![
            ("resume", lang.t("재개", "Resume")),
            ("close", lang.t("마감", "Close")),
        ],
        _ => vec![],
    };
    let audit_rows = app
        .store
        .timed(
            sqlx::query("SELECT at, actor, action, detail FROM audit_log WHERE subject = ? ORDER BY id DESC LIMIT 50")
                .bind(format!("round:{id}"))
                .fetch_all(pool),
        )
        .await
        .map_err(db)?;
    let mut audit = Vec::with_capacity(audit_rows.len());
    for a in audit_rows {
        audit.push(AuditRow {
            at: ctx.chrome.at(&a.try_get("at").map_err(internal)?),
            actor: a.try_get("actor").map_err(internal)?,
            action: a.try_get("action").map_err(internal)?,
            detail: a.try_get("detail").map_err(internal)?,
        });
    }
    let seed: Option<u64> = r.try_get("shuffle_seed").map_err(internal)?;
    let max_active: Option<u32> = r.try_get("max_active").map_err(internal)?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(web::render(
        RoundPage {
            chrome: ctx.chrome,
            id,
            name: schedule.name.clone(),
            editable_schedule: matches!(state.as_str(), "scheduled" | "prequeue"),
            state,
            schedule,
            rate: r.try_get("admission_per_min").map_err(internal)?,
            max_active: max_active.unwrap_or(0),
            seed: seed.map(|s| s.to_string()),
            actions,
            errors,
            audit,
            message,
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
    let lang = ctx.lang();
    let message = match q.msg.as_deref() {
        Some("saved") => Some(lang.t("저장했습니다.", "Saved.")),
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
            None => errors.add(
                "action",
                lang.t("알 수 없는 동작입니다.", "Unknown action."),
            ),
        }
    }
    if changes.is_empty() && errors.is_empty() {
        errors.add(
            "rate",
            lang.t("바꿀 값을 입력하세요.", "Enter something to change."),
        );
    }
    if !errors.is_empty() {
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
        Err(ChangeError::Store(e)) => return Err(db(e)),
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
    let work = async {
        let mut tx = app.store.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE rounds SET name = ?, eligible_years_mask = ?, prequeue_at = ?, opens_at = ?, closes_at = ?, \
                    updated_at = UTC_TIMESTAMP(3) \
             WHERE id = ? AND state IN ('scheduled', 'prequeue')",
        )
        .bind(form.name.trim())
        .bind(s.mask)
        .bind(s.prequeue_at)
        .bind(s.opens_at)
        .bind(s.closes_at)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated > 0 {
            audit(
                &mut *tx,
                &actor,
                "schedule",
                &format!("round:{id}"),
                serde_json::json!({ "name": form.name.trim(), "years": s.mask, "prequeue_at": s.prequeue_at.to_string(),
                                    "opens_at": s.opens_at.to_string(), "closes_at": s.closes_at.to_string() }),
            )
            .await?;
        }
        tx.commit().await?;
        Ok::<u64, sqlx::Error>(updated)
    };
    let updated = app.store.timed(work).await.map_err(db)?;
    if updated == 0 {
        errors.add(
            "name",
            ctx.t(
                "열린 뒤에는 일정을 바꿀 수 없습니다.",
                "The schedule cannot change once the round has opened.",
            ),
        );
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

// ---------------------------------------------------------------------------
// Fairness report and student timeline
// ---------------------------------------------------------------------------

struct Demand {
    label: String,
    students: i64,
    enrolled: i64,
    full: i64,
    capacity: u32,
}

#[derive(Template)]
#[template(path = "admin_fairness.html")]
struct FairnessPage {
    chrome: Chrome,
    id: u32,
    name: String,
    seed: Option<String>,
    seed_published: String,
    cohort: u64,
    admitted: i64,
    inversions: i64,
    /// `ok`, `bad`, or `none` when there was no pre-queue shuffle.
    shuffle: &'static str,
    demand: Vec<Demand>,
}

/// `GET /admin/rounds/{id}/fairness`
pub async fn fairness(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<u32>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("rounds");
    ctx.admin()?;
    let pool = app.store.pool();
    let store = &app.store;
    let r = store
        .timed(
            sqlx::query("SELECT name, shuffle_seed, seed_published_at, cohort_size FROM rounds WHERE id = ?")
                .bind(id)
                .fetch_optional(pool),
        )
        .await
        .map_err(db)?
        .ok_or(ApiError::NotFound)?;
    let seed: Option<u64> = r.try_get("shuffle_seed").map_err(internal)?;
    let published: Option<NaiveDateTime> = r.try_get("seed_published_at").map_err(internal)?;
    let cohort: u32 = r.try_get("cohort_size").map_err(internal)?;
    // Admission must follow the order: ordered by key, admission times
    // never go backwards. Counting the places where they do is the check.
    let (admitted, inversions): (i64, Option<i64>) = store
        .timed(
            sqlx::query_as(
                "SELECT COUNT(*), CAST(SUM(CASE WHEN prev_at > admitted_at THEN 1 ELSE 0 END) AS SIGNED) FROM ( \
                   SELECT admitted_at, LAG(admitted_at) OVER (ORDER BY order_key) AS prev_at \
                   FROM tickets WHERE round_id = ? AND admitted_at IS NOT NULL AND order_key IS NOT NULL) t",
            )
            .bind(id)
            .fetch_one(pool),
        )
        .await
        .map_err(db)?;
    // Re-derive the pre-queue order from the published seed and compare it
    // with the stored keys: anyone holding the seed can do the same.
    let shuffle_ok = match seed {
        Some(seed) if cohort > 0 => {
            let rows: Vec<(u64, Option<u64>)> = store
                .timed(
                    sqlx::query_as("SELECT seq, order_key FROM tickets WHERE round_id = ? AND prequeue ORDER BY seq")
                        .bind(id)
                        .fetch_all(pool),
                )
                .await
                .map_err(db)?;
            let seqs: Vec<u64> = rows.iter().map(|r| r.0).collect();
            let order = waitroom::shuffle::prequeue_order(&seqs, seed);
            let keys: std::collections::HashMap<u64, Option<u64>> = rows.into_iter().collect();
            // Tickets that left and re-joined are no longer in the cohort;
            // those that remain must sit in the seed's relative order.
            let mut last = 0u64;
            let mut ok = true;
            for seq in order {
                if let Some(Some(k)) = keys.get(&seq) {
                    if *k < last {
                        ok = false;
                        break;
                    }
                    last = *k;
                }
            }
            Some(ok)
        }
        _ => None,
    };
    let rows = store
        .timed(
            sqlx::query(
                "SELECT o.section_id, c.code, s.number, s.capacity, COUNT(DISTINCT o.student_id) AS students, \
                        CAST(SUM(o.outcome = 'enrolled') AS SIGNED) AS enrolled, \
                        CAST(SUM(COALESCE(o.reason = 'full', 0)) AS SIGNED) AS full_n \
                 FROM command_outcomes o JOIN sections s ON s.id = o.section_id JOIN courses c ON c.id = s.course_id \
                 WHERE o.round_id = ? AND o.action = 'enroll' \
                 GROUP BY o.section_id, c.code, s.number, s.capacity ORDER BY students DESC LIMIT 200",
            )
            .bind(id)
            .fetch_all(pool),
        )
        .await
        .map_err(db)?;
    let mut demand = Vec::with_capacity(rows.len());
    for d in rows {
        let code: String = d.try_get("code").map_err(internal)?;
        let number: u16 = d.try_get("number").map_err(internal)?;
        demand.push(Demand {
            label: format!("{code}-{number:02}"),
            students: d.try_get("students").map_err(internal)?,
            enrolled: d
                .try_get::<Option<i64>, _>("enrolled")
                .map_err(internal)?
                .unwrap_or(0),
            full: d
                .try_get::<Option<i64>, _>("full_n")
                .map_err(internal)?
                .unwrap_or(0),
            capacity: d.try_get("capacity").map_err(internal)?,
        });
    }
    web::page(FairnessPage {
        seed_published: ctx.chrome.at_opt(&published),
        chrome: ctx.chrome,
        id,
        name: r.try_get("name").map_err(internal)?,
        seed: seed.map(|s| s.to_string()),
        cohort: u64::from(cohort),
        admitted,
        inversions: inversions.unwrap_or(0),
        shuffle: match shuffle_ok {
            Some(true) => "ok",
            Some(false) => "bad",
            None => "none",
        },
        demand,
    })
}

struct Event {
    at: String,
    sort: NaiveDateTime,
    what: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin_student.html")]
struct StudentPage {
    chrome: Chrome,
    number: String,
    error: Option<&'static str>,
    found: Option<(String, u8)>,
    events: Vec<Event>,
}

#[derive(Debug, Deserialize)]
pub struct StudentQuery {
    pub number: Option<String>,
}

/// `GET /admin/students?number=`: one student's timeline, for appeals.
pub async fn student(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(q): Query<StudentQuery>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("students");
    ctx.admin()?;
    let lang = ctx.lang();
    let number = q.number.unwrap_or_default().trim().to_string();
    let mut page = StudentPage {
        chrome: ctx.chrome.clone(),
        number: number.clone(),
        error: None,
        found: None,
        events: Vec::new(),
    };
    if number.is_empty() {
        return web::page(page);
    }
    if number.len() > 16 || !number.chars().all(|c| c.is_ascii_digit()) {
        page.error = Some(lang.t(
            "학번은 숫자만 입력하세요.",
            "A student number has digits only.",
        ));
        return Ok(web::render(page, StatusCode::BAD_REQUEST));
    }
    let store = &app.store;
    let pool = store.pool();
    let Some(s) = store
        .timed(
            sqlx::query("SELECT id, name, class_year FROM students WHERE number = ?")
                .bind(&number)
                .fetch_optional(pool),
        )
        .await
        .map_err(db)?
    else {
        page.error = Some(lang.t(
            "그런 학번의 학생이 없습니다.",
            "No student has that number.",
        ));
        return Ok(web::render(page, StatusCode::NOT_FOUND));
    };
    let sid: u32 = s.try_get("id").map_err(internal)?;
    page.found = Some((
        s.try_get("name").map_err(internal)?,
        s.try_get("class_year").map_err(internal)?,
    ));
    let tickets = store
        .timed(
            sqlx::query(
                "SELECT t.round_id, r.name, t.seq, t.order_key, t.prequeue, t.state, t.joined_at, t.last_seen_at, t.admitted_at \
                 FROM tickets t JOIN rounds r ON r.id = t.round_id WHERE t.student_id = ?",
            )
            .bind(sid)
            .fetch_all(pool),
        )
        .await
        .map_err(db)?;
    for t in tickets {
        let round: String = t.try_get("name").map_err(internal)?;
        let joined: NaiveDateTime = t.try_get("joined_at").map_err(internal)?;
        let key: Option<u64> = t.try_get("order_key").map_err(internal)?;
        let prequeue: bool = t.try_get("prequeue").map_err(internal)?;
        page.events.push(Event {
            at: ctx.chrome.at(&joined),
            sort: joined,
            what: lang.t("대기열 입장", "Joined the queue").to_string(),
            detail: format!(
                "{round} · seq {} · {} {} {}",
                t.try_get::<u64, _>("seq").map_err(internal)?,
                lang.t("순서 키", "order key"),
                key.map_or("–".to_string(), |k| k.to_string()),
                if prequeue {
                    lang.t("(사전 대기)", "(pre-queue)")
                } else {
                    ""
                }
            ),
        });
        if let Some(at) = t
            .try_get::<Option<NaiveDateTime>, _>("admitted_at")
            .map_err(internal)?
        {
            page.events.push(Event {
                at: ctx.chrome.at(&at),
                sort: at,
                what: lang.t("입장 허가", "Admitted").to_string(),
                detail: round.clone(),
            });
        }
        let state: String = t.try_get("state").map_err(internal)?;
        if state == "skipped" || state == "left" {
            let seen: NaiveDateTime = t.try_get("last_seen_at").map_err(internal)?;
            page.events.push(Event {
                at: ctx.chrome.at(&seen),
                sort: seen,
                what: if state == "skipped" {
                    lang.t(
                        "응답 없음으로 건너뜀 (마지막 응답)",
                        "Skipped: stopped polling (last seen)",
                    )
                } else {
                    lang.t("대기 취소 (마지막 응답)", "Left the queue (last seen)")
                }
                .to_string(),
                detail: round,
            });
        }
    }
    let outcomes = store
        .timed(
            sqlx::query(
                "SELECT o.command_id, o.item, o.action, o.outcome, o.reason, o.issued_at, o.decided_at, o.decided_by, \
                        c.code, s.number FROM command_outcomes o \
                 LEFT JOIN sections s ON s.id = o.section_id LEFT JOIN courses c ON c.id = s.course_id \
                 WHERE o.student_id = ? ORDER BY o.decided_at, o.item LIMIT 500",
            )
            .bind(sid)
            .fetch_all(pool),
        )
        .await
        .map_err(db)?;
    for o in outcomes {
        let issued: NaiveDateTime = o.try_get("issued_at").map_err(internal)?;
        let decided: NaiveDateTime = o.try_get("decided_at").map_err(internal)?;
        let id: Vec<u8> = o.try_get("command_id").map_err(internal)?;
        let id = uuid::Uuid::from_slice(&id)
            .map(|u| u.to_string())
            .unwrap_or_default();
        let code: Option<String> = o.try_get("code").map_err(internal)?;
        let number: Option<u16> = o.try_get("number").map_err(internal)?;
        let outcome: String = o.try_get("outcome").map_err(internal)?;
        let reason: Option<String> = o.try_get("reason").map_err(internal)?;
        let action: String = o.try_get("action").map_err(internal)?;
        let decided_by: String = o.try_get("decided_by").map_err(internal)?;
        page.events.push(Event {
            at: ctx.chrome.at(&decided),
            sort: decided,
            what: format!(
                "{} {}: {}",
                action,
                code.zip(number)
                    .map(|(c, n)| format!("{c}-{n:02}"))
                    .unwrap_or_default(),
                outcome_words(&outcome, lang)
            ),
            detail: format!(
                "{} · {} {} · {} {} · {}",
                reason_words(reason.as_deref(), lang),
                lang.t("요청", "issued"),
                ctx.chrome.at(&issued),
                lang.t("처리", "by"),
                decided_by,
                id
            ),
        });
    }
    page.events.sort_by_key(|e| e.sort);
    web::page(page)
}

// ---------------------------------------------------------------------------
// Courses and sections
// ---------------------------------------------------------------------------

struct CourseRow {
    id: u32,
    code: String,
    title: String,
    department: String,
    credits: u8,
    sections: i64,
}

#[derive(Debug, Default, Deserialize)]
pub struct CourseForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub term: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub title_ko: String,
    #[serde(default)]
    pub title_en: String,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub credits: String,
    #[serde(default)]
    pub prerequisites: String,
}

#[derive(Template)]
#[template(path = "admin_courses.html")]
struct CoursesPage {
    chrome: Chrome,
    q: String,
    courses: Vec<CourseRow>,
    page: u32,
    next_href: Option<String>,
    prev_href: Option<String>,
    terms: Vec<Term>,
    departments: Vec<(String, String)>,
    form: CourseForm,
    errors: FieldErrors,
}

#[derive(Debug, Deserialize)]
pub struct CoursesQuery {
    pub q: Option<String>,
    pub page: Option<String>,
}

const COURSES_PER_PAGE: u32 = 50;

async fn courses_page(
    app: &AppState,
    ctx: Ctx,
    q: CoursesQuery,
    form: CourseForm,
    mut errors: FieldErrors,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("courses_admin");
    ctx.admin()?;
    let lang = ctx.lang();
    let text = q.q.unwrap_or_default().trim().to_string();
    if text.chars().count() > 100 {
        errors.add(
            "q",
            lang.t("검색어는 100자 이하입니다.", "Use at most 100 characters."),
        );
    }
    let page = match q.page.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => 1,
        Some(p) => match p.parse::<u32>() {
            Ok(p) if (1..=100_000).contains(&p) => p,
            _ => {
                errors.add(
                    "page",
                    lang.t("쪽 번호가 올바르지 않습니다.", "Not a valid page number."),
                );
                1
            }
        },
    };
    let like = format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows = app
        .store
        .timed(
            sqlx::query(
                "SELECT c.id, c.code, c.title_ko, c.title_en, d.code AS dept, c.credits, \
                        (SELECT COUNT(*) FROM sections s WHERE s.course_id = c.id) AS n \
                 FROM courses c JOIN departments d ON d.id = c.department_id \
                 WHERE c.code LIKE ? OR c.title_ko LIKE ? OR c.title_en LIKE ? \
                 ORDER BY c.code LIMIT ? OFFSET ?",
            )
            .bind(&like)
            .bind(&like)
            .bind(&like)
            .bind(COURSES_PER_PAGE + 1)
            .bind((page - 1) * COURSES_PER_PAGE)
            .fetch_all(app.store.pool()),
        )
        .await
        .map_err(db)?;
    let more = rows.len() > COURSES_PER_PAGE as usize;
    let mut courses = Vec::new();
    for r in rows.into_iter().take(COURSES_PER_PAGE as usize) {
        courses.push(CourseRow {
            id: r.try_get("id").map_err(internal)?,
            code: r.try_get("code").map_err(internal)?,
            title: match lang {
                Lang::Ko => r.try_get("title_ko").map_err(internal)?,
                Lang::En => r.try_get("title_en").map_err(internal)?,
            },
            department: r.try_get("dept").map_err(internal)?,
            credits: r.try_get("credits").map_err(internal)?,
            sections: r.try_get("n").map_err(internal)?,
        });
    }
    let href = |p: u32| format!("/admin/courses?q={}&page={p}", web::urlencode(&text));
    let departments = department_options(&app.catalog.catalog(), lang);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(web::render(
        CoursesPage {
            chrome: ctx.chrome,
            q: text.clone(),
            courses,
            page,
            next_href: more.then(|| href(page + 1)),
            prev_href: (page > 1).then(|| href(page - 1)),
            terms: terms(app).await?,
            departments,
            form,
            errors,
        },
        status,
    ))
}

/// `GET /admin/courses`
pub async fn courses(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(q): Query<CoursesQuery>,
) -> ApiResult<Response> {
    courses_page(&app, ctx, q, CourseForm::default(), FieldErrors::default()).await
}

struct ValidCourse {
    code: String,
    title_ko: String,
    title_en: String,
    department: u32,
    credits: u8,
    prerequisites: Vec<String>,
}

async fn validate_course(
    app: &AppState,
    lang: Lang,
    form: &CourseForm,
    errors: &mut FieldErrors,
    need_code: bool,
) -> ApiResult<Option<ValidCourse>> {
    let code = form.code.trim().to_ascii_uppercase();
    if need_code
        && (code.is_empty()
            || code.len() > 16
            || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        errors.add(
            "code",
            lang.t(
                "과목 코드는 1-16자의 영문/숫자입니다.",
                "A course code is 1-16 letters or digits.",
            ),
        );
    }
    for (field, v) in [("title_ko", &form.title_ko), ("title_en", &form.title_en)] {
        if v.trim().is_empty() || v.trim().chars().count() > 200 {
            errors.add(
                field,
                lang.t("1-200자로 입력하세요.", "Enter 1-200 characters."),
            );
        }
    }
    let credits = match form.credits.trim().parse::<u8>() {
        Ok(c) if c <= 12 => Some(c),
        _ => {
            errors.add(
                "credits",
                lang.t("학점은 0에서 12 사이입니다.", "Credits are 0 to 12."),
            );
            None
        }
    };
    let department: Option<u32> = app
        .store
        .timed(
            sqlx::query_scalar("SELECT id FROM departments WHERE code = ?")
                .bind(form.department.trim())
                .fetch_optional(app.store.pool()),
        )
        .await
        .map_err(db)?;
    if department.is_none() {
        errors.add(
            "department",
            lang.t("학과를 고르세요.", "Pick a department."),
        );
    }
    let mut prerequisites = Vec::new();
    for p in form
        .prerequisites
        .split([' ', ',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let p = p.to_ascii_uppercase();
        if p.len() > 16 || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            errors.add(
                "prerequisites",
                format!(
                    "{p:?}: {}",
                    lang.t("과목 코드가 아닙니다.", "not a course code.")
                ),
            );
        } else if !prerequisites.contains(&p) {
            prerequisites.push(p);
        }
    }
    if !errors.is_empty() {
        return Ok(None);
    }
    Ok(Some(ValidCourse {
        code,
        title_ko: form.title_ko.trim().to_string(),
        title_en: form.title_en.trim().to_string(),
        department: department.unwrap_or(0),
        credits: credits.unwrap_or(0),
        prerequisites,
    }))
}

async fn replace_prerequisites(
    tx: &mut sqlx::Transaction<'_, sqlx::MySql>,
    course: u32,
    codes: &[String],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM course_prerequisites WHERE course_id = ?")
        .bind(course)
        .execute(&mut **tx)
        .await?;
    for code in codes {
        sqlx::query("INSERT INTO course_prerequisites (course_id, required_code) VALUES (?, ?)")
            .bind(course)
            .bind(code)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// `POST /admin/courses`
pub async fn create_course(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<CourseForm>,
) -> ApiResult<Response> {
    let actor = change_form(&ctx, &headers, &form.csrf)?;
    let lang = ctx.lang();
    let mut errors = FieldErrors::default();
    let term = form.term.trim().parse::<u32>().ok();
    if term.is_none() {
        errors.add("term", lang.t("학기를 고르세요.", "Pick a term."));
    }
    let valid = validate_course(&app, lang, &form, &mut errors, true).await?;
    let (Some(c), Some(term)) = (valid, term) else {
        return courses_page(
            &app,
            ctx,
            CoursesQuery {
                q: None,
                page: None,
            },
            form,
            errors,
        )
        .await;
    };
    let work = async {
        let mut tx = app.store.pool().begin().await?;
        let r = sqlx::query("INSERT INTO courses (term_id, department_id, code, title_ko, title_en, credits) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(term)
            .bind(c.department)
            .bind(&c.code)
            .bind(&c.title_ko)
            .bind(&c.title_en)
            .bind(c.credits)
            .execute(&mut *tx)
            .await?;
        let id = u32::try_from(r.last_insert_id()).unwrap_or(0);
        replace_prerequisites(&mut tx, id, &c.prerequisites).await?;
        audit(
            &mut *tx,
            &actor,
            "create_course",
            &format!("course:{id}"),
            serde_json::json!({ "code": c.code }),
        )
        .await?;
        tx.commit().await?;
        Ok::<u32, sqlx::Error>(id)
    };
    let id = match app.store.timed(work).await {
        Ok(id) => id,
        Err(crate::db::StoreError::Db(sqlx::Error::Database(e))) if e.is_unique_violation() => {
            errors.add(
                "code",
                lang.t(
                    "이 학기에 같은 코드의 과목이 있습니다.",
                    "This term already has a course with that code.",
                ),
            );
            return courses_page(
                &app,
                ctx,
                CoursesQuery {
                    q: None,
                    page: None,
                },
                form,
                errors,
            )
            .await;
        }
        Err(crate::db::StoreError::Db(sqlx::Error::Database(e)))
            if e.is_foreign_key_violation() =>
        {
            errors.add("term", lang.t("없는 학기입니다.", "No such term."));
            return courses_page(
                &app,
                ctx,
                CoursesQuery {
                    q: None,
                    page: None,
                },
                form,
                errors,
            )
            .await;
        }
        Err(e) => return Err(db(e)),
    };
    app.catalog.invalidate();
    Ok(Redirect::to(&format!("/admin/courses/{id}?msg=saved")).into_response())
}

struct SectionRow {
    id: u32,
    number: u16,
    capacity: u32,
    enrolled: u32,
    instructor: String,
    room: String,
    meetings: String,
    closed: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct SectionForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub capacity: String,
    #[serde(default)]
    pub instructor: String,
    #[serde(default)]
    pub room: String,
    #[serde(default)]
    pub meetings: String,
    /// `close`, `reopen` or empty (save).
    #[serde(default)]
    pub op: String,
}

#[derive(Template)]
#[template(path = "admin_course.html")]
struct CoursePage {
    chrome: Chrome,
    id: u32,
    form: CourseForm,
    departments: Vec<(String, String)>,
    sections: Vec<SectionRow>,
    new_section: SectionForm,
    errors: FieldErrors,
    /// Which section a section error belongs to (0: the new-section form).
    error_section: u32,
    message: Option<&'static str>,
}

#[allow(clippy::too_many_arguments)] // a page with three forms to re-show
async fn course_page(
    app: &AppState,
    ctx: Ctx,
    id: u32,
    kept: Option<CourseForm>,
    new_section: SectionForm,
    errors: FieldErrors,
    error_section: u32,
    message: Option<&'static str>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("courses_admin");
    ctx.admin()?;
    let lang = ctx.lang();
    let pool = app.store.pool();
    let c = app
        .store
        .timed(
            sqlx::query("SELECT c.code, c.title_ko, c.title_en, d.code AS dept, c.credits FROM courses c JOIN departments d ON d.id = c.department_id WHERE c.id = ?")
                .bind(id)
                .fetch_optional(pool),
        )
        .await
        .map_err(db)?
        .ok_or(ApiError::NotFound)?;
    let prereqs: Vec<String> = app
        .store
        .timed(sqlx::query_scalar("SELECT required_code FROM course_prerequisites WHERE course_id = ? ORDER BY required_code").bind(id).fetch_all(pool))
        .await
        .map_err(db)?;
    let form = kept.unwrap_or(CourseForm {
        code: c.try_get("code").map_err(internal)?,
        title_ko: c.try_get("title_ko").map_err(internal)?,
        title_en: c.try_get("title_en").map_err(internal)?,
        department: c.try_get("dept").map_err(internal)?,
        credits: c.try_get::<u8, _>("credits").map_err(internal)?.to_string(),
        prerequisites: prereqs.join(" "),
        ..CourseForm::default()
    });
    let rows = app
        .store
        .timed(
            sqlx::query("SELECT id, number, capacity, enrolled, instructor, room, closed FROM sections WHERE course_id = ? ORDER BY number")
                .bind(id)
                .fetch_all(pool),
        )
        .await
        .map_err(db)?;
    let mut sections = Vec::with_capacity(rows.len());
    let catalog = app.catalog.catalog();
    for r in rows {
        let sid: u32 = r.try_get("id").map_err(internal)?;
        let meetings: Vec<(u8, u16, u16)> = app
            .store
            .timed(sqlx::query_as("SELECT weekday, start_min, end_min FROM section_meetings WHERE section_id = ? ORDER BY weekday, start_min").bind(sid).fetch_all(pool))
            .await
            .map_err(db)?;
        let meetings: Vec<enrollment::rules::Meeting> = meetings
            .into_iter()
            .map(|(weekday, start_min, end_min)| enrollment::rules::Meeting {
                weekday,
                start_min,
                end_min,
            })
            .collect();
        let _ = catalog.section(sid);
        sections.push(SectionRow {
            id: sid,
            number: r.try_get("number").map_err(internal)?,
            capacity: r.try_get("capacity").map_err(internal)?,
            enrolled: r.try_get("enrolled").map_err(internal)?,
            instructor: r.try_get("instructor").map_err(internal)?,
            room: r.try_get("room").map_err(internal)?,
            meetings: format_meetings(&meetings),
            closed: r.try_get("closed").map_err(internal)?,
        });
    }
    let departments = department_options(&catalog, lang);
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(web::render(
        CoursePage {
            chrome: ctx.chrome,
            id,
            form,
            departments,
            sections,
            new_section,
            errors,
            error_section,
            message,
        },
        status,
    ))
}

/// `GET /admin/courses/{id}`
pub async fn course(
    State(app): State<AppState>,
    ctx: Ctx,
    Path(id): Path<u32>,
    Query(q): Query<MsgQuery>,
) -> ApiResult<Response> {
    let message = q.msg.as_deref().map(|_| ctx.t("저장했습니다.", "Saved."));
    course_page(
        &app,
        ctx,
        id,
        None,
        SectionForm::default(),
        FieldErrors::default(),
        0,
        message,
    )
    .await
}

/// `POST /admin/courses/{id}`
pub async fn update_course(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<u32>,
    Form(form): Form<CourseForm>,
) -> ApiResult<Response> {
    let actor = change_form(&ctx, &headers, &form.csrf)?;
    let mut errors = FieldErrors::default();
    let Some(c) = validate_course(&app, ctx.lang(), &form, &mut errors, false).await? else {
        return course_page(
            &app,
            ctx,
            id,
            Some(form),
            SectionForm::default(),
            errors,
            0,
            None,
        )
        .await;
    };
    let work = async {
        let mut tx = app.store.pool().begin().await?;
        let n = sqlx::query("UPDATE courses SET title_ko = ?, title_en = ?, department_id = ?, credits = ? WHERE id = ?")
            .bind(&c.title_ko)
            .bind(&c.title_en)
            .bind(c.department)
            .bind(c.credits)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        replace_prerequisites(&mut tx, id, &c.prerequisites).await?;
        audit(
            &mut *tx,
            &actor,
            "update_course",
            &format!("course:{id}"),
            serde_json::json!({ "title_ko": c.title_ko, "title_en": c.title_en, "credits": c.credits, "prerequisites": c.prerequisites }),
        )
        .await?;
        tx.commit().await?;
        Ok::<u64, sqlx::Error>(n)
    };
    app.store.timed(work).await.map_err(db)?;
    app.catalog.invalidate();
    Ok(Redirect::to(&format!("/admin/courses/{id}?msg=saved")).into_response())
}

struct ValidSection {
    number: u16,
    capacity: u32,
    meetings: Vec<enrollment::rules::Meeting>,
}

fn validate_section(
    lang: Lang,
    form: &SectionForm,
    errors: &mut FieldErrors,
    need_number: bool,
) -> Option<ValidSection> {
    let number = if need_number {
        match form.number.trim().parse::<u16>() {
            Ok(n) if (1..=999).contains(&n) => Some(n),
            _ => {
                errors.add(
                    "number",
                    lang.t(
                        "분반은 1에서 999 사이입니다.",
                        "A section number is 1 to 999.",
                    ),
                );
                None
            }
        }
    } else {
        Some(0)
    };
    let capacity = match form.capacity.trim().parse::<u32>() {
        Ok(c) if c <= 100_000 => Some(c),
        _ => {
            errors.add(
                "capacity",
                lang.t(
                    "정원은 0 이상의 숫자입니다.",
                    "Capacity is a whole number, 0 or more.",
                ),
            );
            None
        }
    };
    if form.instructor.trim().chars().count() > 100 {
        errors.add(
            "instructor",
            lang.t("100자 이하로 입력하세요.", "At most 100 characters."),
        );
    }
    if form.room.trim().chars().count() > 50 {
        errors.add(
            "room",
            lang.t("50자 이하로 입력하세요.", "At most 50 characters."),
        );
    }
    let meetings = match parse_meetings(&form.meetings) {
        Ok(m) => Some(m),
        Err(e) => {
            errors.add(
                "meetings",
                format!(
                    "{} {e}",
                    lang.t(
                        "예: Mon 09:00-10:15; Wed 09:00-10:15 —",
                        "e.g. Mon 09:00-10:15; Wed 09:00-10:15 —"
                    )
                ),
            );
            None
        }
    };
    if !errors.is_empty() {
        return None;
    }
    Some(ValidSection {
        number: number?,
        capacity: capacity?,
        meetings: meetings?,
    })
}

async fn replace_meetings(
    tx: &mut sqlx::Transaction<'_, sqlx::MySql>,
    section: u32,
    ms: &[enrollment::rules::Meeting],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM section_meetings WHERE section_id = ?")
        .bind(section)
        .execute(&mut **tx)
        .await?;
    for m in ms {
        sqlx::query("INSERT INTO section_meetings (section_id, weekday, start_min, end_min) VALUES (?, ?, ?, ?)")
            .bind(section)
            .bind(m.weekday)
            .bind(m.start_min)
            .bind(m.end_min)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// `POST /admin/courses/{id}/sections`
pub async fn create_section(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<u32>,
    Form(form): Form<SectionForm>,
) -> ApiResult<Response> {
    let actor = change_form(&ctx, &headers, &form.csrf)?;
    let lang = ctx.lang();
    let mut errors = FieldErrors::default();
    let Some(s) = validate_section(lang, &form, &mut errors, true) else {
        return course_page(&app, ctx, id, None, form, errors, 0, None).await;
    };
    let work = async {
        let mut tx = app.store.pool().begin().await?;
        let r = sqlx::query("INSERT INTO sections (course_id, number, capacity, instructor, room) VALUES (?, ?, ?, ?, ?)")
            .bind(id)
            .bind(s.number)
            .bind(s.capacity)
            .bind(form.instructor.trim())
            .bind(form.room.trim())
            .execute(&mut *tx)
            .await?;
        let sid = u32::try_from(r.last_insert_id()).unwrap_or(0);
        replace_meetings(&mut tx, sid, &s.meetings).await?;
        audit(&mut *tx, &actor, "create_section", &format!("section:{sid}"), serde_json::json!({ "course": id, "number": s.number, "capacity": s.capacity, "meetings": format_meetings(&s.meetings) })).await?;
        tx.commit().await
    };
    match app.store.timed(work).await {
        Ok(()) => {}
        Err(crate::db::StoreError::Db(sqlx::Error::Database(e))) if e.is_unique_violation() => {
            errors.add(
                "number",
                lang.t(
                    "같은 번호의 분반이 있습니다.",
                    "That section number exists.",
                ),
            );
            return course_page(&app, ctx, id, None, form, errors, 0, None).await;
        }
        Err(crate::db::StoreError::Db(sqlx::Error::Database(e)))
            if e.is_foreign_key_violation() =>
        {
            return Err(ApiError::NotFound)
        }
        Err(e) => return Err(db(e)),
    }
    app.catalog.invalidate();
    Ok(Redirect::to(&format!("/admin/courses/{id}?msg=saved")).into_response())
}

/// `POST /admin/sections/{id}`: save, close or reopen a section.
pub async fn update_section(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(sid): Path<u32>,
    Form(form): Form<SectionForm>,
) -> ApiResult<Response> {
    let actor = change_form(&ctx, &headers, &form.csrf)?;
    let lang = ctx.lang();
    let course: u32 = app
        .store
        .timed(
            sqlx::query_scalar("SELECT course_id FROM sections WHERE id = ?")
                .bind(sid)
                .fetch_optional(app.store.pool()),
        )
        .await
        .map_err(db)?
        .ok_or(ApiError::NotFound)?;
    if form.op == "close" || form.op == "reopen" {
        let closed = form.op == "close";
        let work = async {
            let mut tx = app.store.pool().begin().await?;
            sqlx::query("UPDATE sections SET closed = ? WHERE id = ?")
                .bind(closed)
                .bind(sid)
                .execute(&mut *tx)
                .await?;
            let action = if closed {
                "close_section"
            } else {
                "reopen_section"
            };
            audit(
                &mut *tx,
                &actor,
                action,
                &format!("section:{sid}"),
                serde_json::json!({}),
            )
            .await?;
            tx.commit().await
        };
        app.store.timed(work).await.map_err(db)?;
        app.catalog.invalidate();
        return Ok(Redirect::to(&format!("/admin/courses/{course}?msg=saved")).into_response());
    }
    let mut errors = FieldErrors::default();
    let Some(s) = validate_section(lang, &form, &mut errors, false) else {
        return course_page(
            &app,
            ctx,
            course,
            None,
            SectionForm::default(),
            errors,
            sid,
            None,
        )
        .await;
    };
    let work = async {
        let mut tx = app.store.pool().begin().await?;
        // The row lock makes the capacity check and the update one step
        // against the worker's seat changes.
        let enrolled: u32 =
            sqlx::query_scalar("SELECT enrolled FROM sections WHERE id = ? FOR UPDATE")
                .bind(sid)
                .fetch_one(&mut *tx)
                .await?;
        if enrolled > s.capacity {
            return Ok(Some(enrolled));
        }
        sqlx::query("UPDATE sections SET capacity = ?, instructor = ?, room = ? WHERE id = ?")
            .bind(s.capacity)
            .bind(form.instructor.trim())
            .bind(form.room.trim())
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        replace_meetings(&mut tx, sid, &s.meetings).await?;
        audit(
            &mut *tx,
            &actor,
            "update_section",
            &format!("section:{sid}"),
            serde_json::json!({ "capacity": s.capacity, "meetings": format_meetings(&s.meetings) }),
        )
        .await?;
        tx.commit().await?;
        Ok::<Option<u32>, sqlx::Error>(None)
    };
    if let Some(enrolled) = app.store.timed(work).await.map_err(db)? {
        errors.add(
            "capacity",
            format!(
                "{} ({enrolled})",
                lang.t(
                    "이미 신청한 학생 수보다 작게 줄일 수 없습니다",
                    "Cannot go below the students already enrolled"
                )
            ),
        );
        return course_page(
            &app,
            ctx,
            course,
            None,
            SectionForm::default(),
            errors,
            sid,
            None,
        )
        .await;
    }
    app.catalog.invalidate();
    Ok(Redirect::to(&format!("/admin/courses/{course}?msg=saved")).into_response())
}

// ---------------------------------------------------------------------------
// CSV import and export
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_import.html")]
struct ImportPage {
    chrome: Chrome,
    terms: Vec<Term>,
    problems: Vec<Problem>,
    more: usize,
    error: Option<String>,
    done: Option<Summary>,
    catalog_columns: String,
    student_columns: String,
}

async fn import_page(
    app: &AppState,
    ctx: Ctx,
    outcome: Option<Result<Summary, ImportError>>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("import");
    ctx.admin()?;
    let mut page = ImportPage {
        chrome: ctx.chrome.clone(),
        terms: terms(app).await?,
        problems: Vec::new(),
        more: 0,
        error: None,
        done: None,
        catalog_columns: csv_import::CATALOG_COLUMNS
            .iter()
            .chain(&csv_import::CATALOG_OPTIONAL)
            .copied()
            .collect::<Vec<_>>()
            .join(","),
        student_columns: csv_import::STUDENT_COLUMNS
            .iter()
            .chain(&csv_import::STUDENT_OPTIONAL)
            .copied()
            .collect::<Vec<_>>()
            .join(","),
    };
    let status = match outcome {
        None => StatusCode::OK,
        Some(Ok(summary)) => {
            page.done = Some(summary);
            StatusCode::OK
        }
        Some(Err(ImportError::Invalid(problems, more))) => {
            page.problems = problems;
            page.more = more;
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Some(Err(ImportError::Timeout(_))) => {
            page.error = Some(
                ctx.t(
                    "가져오기가 너무 오래 걸려 모두 취소했습니다. 파일을 나눠서 다시 시도하세요.",
                    "The import took too long and was rolled back. Split the file and try again.",
                )
                .to_string(),
            );
            StatusCode::SERVICE_UNAVAILABLE
        }
        Some(Err(ImportError::Db(e))) => {
            tracing::warn!(error = %e, "CSV import failed and was rolled back");
            page.error = Some(
                ctx.t(
                    "데이터베이스 오류로 아무것도 가져오지 않았습니다. 잠시 후 다시 시도하세요.",
                    "A database error stopped the import; nothing was imported. Try again shortly.",
                )
                .to_string(),
            );
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    Ok(web::render(page, status))
}

/// `GET /admin/import`
pub async fn import_form(State(app): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    import_page(&app, ctx, None).await
}

/// Largest CSV accepted.
pub const IMPORT_LIMIT: usize = 8 * 1024 * 1024;

/// `POST /admin/import`: multipart with `csrf`, `kind` (catalog|students),
/// `term` (catalog) and `file`.
pub async fn import(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> ApiResult<Response> {
    same_origin(&headers)?;
    let actor = ctx.registrar()?;
    let (mut csrf, mut kind, mut term, mut file) =
        (String::new(), String::new(), String::new(), Vec::new());
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Err(ApiError::Invalid(format!(
                    "the upload could not be read: {}",
                    e.body_text()
                )))
            }
        };
        let name = field.name().unwrap_or("").to_string();
        let bytes = field.bytes().await.map_err(|e| {
            ApiError::Invalid(format!("the upload could not be read: {}", e.body_text()))
        })?;
        match name.as_str() {
            "csrf" => csrf = String::from_utf8_lossy(&bytes).into_owned(),
            "kind" => kind = String::from_utf8_lossy(&bytes).into_owned(),
            "term" => term = String::from_utf8_lossy(&bytes).into_owned(),
            "file" => file = bytes.to_vec(),
            _ => {}
        }
    }
    ctx.check_csrf(&csrf)?;
    let pool = app.store.pool();
    let (kind, outcome) = match kind.as_str() {
        "catalog" => {
            let Ok(term) = term.trim().parse::<u32>() else {
                let p = Problem {
                    row: 0,
                    column: "term".into(),
                    problem: ctx.t("학기를 고르세요.", "Pick a term.").into(),
                };
                return import_page(&app, ctx, Some(Err(ImportError::Invalid(vec![p], 0)))).await;
            };
            (
                "catalog",
                csv_import::import_catalog(pool, term, &file, &actor).await,
            )
        }
        "students" => (
            "students",
            csv_import::import_students(pool, &file, &actor).await,
        ),
        _ => return Err(ApiError::Invalid("kind must be catalog or students".into())),
    };
    if outcome.is_ok() && kind == "catalog" {
        app.catalog.invalidate();
    }
    import_page(&app, ctx, Some(outcome)).await
}

/// `GET /admin/export/enrollments.csv`
pub async fn export_enrollments(State(app): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    ctx.admin()?;
    let tz = app.config.time_zone;
    csv_stream::export(
        app.store.pool(),
        "enrollments.csv",
        &[
            "student_number",
            "student_name",
            "course_code",
            "section",
            "enrolled_at",
        ],
        sqlx::query_as::<_, (String, String, String, u16, NaiveDateTime)>(
            "SELECT st.number, st.name, c.code, s.number, e.enrolled_at FROM enrollments e \
             JOIN students st ON st.id = e.student_id JOIN sections s ON s.id = e.section_id \
             JOIN courses c ON c.id = e.course_id ORDER BY c.code, s.number, st.number",
        ),
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

/// One decided command item, as exported.
type OutcomeRow = (
    Vec<u8>,
    u16,
    String,
    Option<String>,
    Option<u16>,
    String,
    String,
    Option<String>,
    NaiveDateTime,
    NaiveDateTime,
    String,
);

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
        app.store.pool(),
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
        sqlx::query_as::<_, OutcomeRow>(
            "SELECT o.command_id, o.item, st.number, c.code, s.number, o.action, o.outcome, o.reason, o.issued_at, o.decided_at, o.decided_by \
             FROM command_outcomes o JOIN students st ON st.id = o.student_id \
             LEFT JOIN sections s ON s.id = o.section_id LEFT JOIN courses c ON c.id = s.course_id \
             WHERE o.round_id = ? ORDER BY o.decided_at, o.command_id, o.item",
        )
        .bind(id),
        move |r: OutcomeRow| {
            vec![
                uuid::Uuid::from_slice(&r.0)
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
                r.1.to_string(),
                r.2,
                r.3.unwrap_or_default(),
                r.4.map(|n| n.to_string()).unwrap_or_default(),
                r.5,
                r.6,
                r.7.unwrap_or_default(),
                fmt(&r.8),
                fmt(&r.9),
                r.10,
            ]
        },
    )
    .await
}

/// Meeting text for templates.
pub fn meetings_text(ms: &[enrollment::rules::Meeting], lang: Lang) -> String {
    catalog::meetings_text(ms, lang)
}

/// The department choices of a course form: (code, "CODE name") in the
/// page's language.
fn department_options(catalog: &crate::catalog::Catalog, lang: Lang) -> Vec<(String, String)> {
    catalog
        .departments
        .iter()
        .map(|d| {
            let name = if lang == Lang::Ko {
                &d.name_ko
            } else {
                &d.name_en
            };
            (d.code.clone(), format!("{} {}", d.code, name))
        })
        .collect()
}
