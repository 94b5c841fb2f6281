//! The rounds list and creating a round.

use super::{change_form, not_saved, parse_cap, parse_rate, parse_years, status, terms, Term};
use crate::db::rounds::Schedule;
use crate::error::ApiResult;
use crate::i18n::registrar as text;
use crate::web::{self, parse_local, Chrome, Ctx, FieldErrors};
use crate::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;

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

/// The create-round form's values, kept when re-shown with errors (the
/// schedule form of a round's page too).
#[derive(Debug, Default, serde::Deserialize)]
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

async fn rounds_page(
    app: &AppState,
    ctx: Ctx,
    form: RoundForm,
    errors: FieldErrors,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("rounds");
    ctx.admin()?;
    let rounds = crate::db::rounds::list(&app.store)
        .await?
        .into_iter()
        .map(|r| RoundRow {
            id: r.id,
            name: r.name,
            term: r.term,
            state: r.state,
            years: super::years_text(r.eligible_years_mask),
            prequeue_at: ctx.chrome.at(&r.prequeue_at),
            opens_at: ctx.chrome.at(&r.opens_at),
            closes_at: ctx.chrome.at(&r.closes_at),
            rate: r.admission_per_min,
        })
        .collect();
    let terms = terms(app).await?;
    let status = status(&errors);
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

/// `GET /admin`
pub async fn rounds(State(app): State<AppState>, ctx: Ctx) -> ApiResult<Response> {
    let form = RoundForm {
        years: "1-4".into(),
        rate: "600".into(),
        ..RoundForm::default()
    };
    rounds_page(&app, ctx, form, FieldErrors::default()).await
}

/// The name, years and times of a round form, each problem added to
/// `errors`.
pub(super) fn parse_schedule(
    ctx: &Ctx,
    form: &RoundForm,
    errors: &mut FieldErrors,
) -> Option<Schedule> {
    let lang = ctx.lang();
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add("name", text::ROUND_NAME.get(lang));
    }
    let mask = parse_years(&form.years);
    if mask.is_none() {
        errors.add("years", text::YEARS.get(lang));
    }
    let tz = ctx.chrome.tz;
    let mut time = |field: &'static str, v: &str| {
        let t = parse_local(tz, v);
        if t.is_none() {
            errors.add(field, text::DATE_TIME.get(lang));
        }
        t
    };
    let pre = time("prequeue_at", &form.prequeue_at);
    let open = time("opens_at", &form.opens_at);
    let close = time("closes_at", &form.closes_at);
    if let (Some(p), Some(o)) = (pre, open) {
        if p > o {
            errors.add("prequeue_at", text::PREQUEUE_BEFORE_OPEN.get(lang));
        }
    }
    if let (Some(o), Some(c)) = (open, close) {
        if o >= c {
            errors.add("closes_at", text::CLOSE_AFTER_OPEN.get(lang));
        }
    }
    Some(Schedule {
        name: name.to_string(),
        years_mask: mask?,
        prequeue_at: pre?.naive_utc(),
        opens_at: open?.naive_utc(),
        closes_at: close?.naive_utc(),
    })
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
        errors.add("term", text::PICK_TERM.get(lang));
    }
    let rate = parse_rate(lang, &form.rate, &mut errors);
    let cap = parse_cap(lang, &form.max_active, &mut errors);
    let (Some(s), Some(term), Some(rate), Some(cap), true) =
        (schedule, term, rate, cap, errors.is_empty())
    else {
        return rounds_page(&app, ctx, form, errors).await;
    };
    let id = match crate::db::rounds::create(&app.store, term, &s, rate, cap, &actor).await {
        Err(e) if e.is_foreign_key_violation() => {
            errors.add("term", text::NO_SUCH_TERM.get(lang));
            return rounds_page(&app, ctx, form, errors).await;
        }
        r => r.map_err(not_saved)?,
    };
    Ok(Redirect::to(&format!("/admin/rounds/{id}")).into_response())
}
