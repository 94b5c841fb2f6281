//! One student's timeline, for appeals: queue tickets (joined, admitted,
//! skipped or left) and every decided command item, in time order.

use crate::db::students::{Outcome, Ticket};
use crate::error::ApiResult;
use crate::http::pages::student::{outcome_words, reason_words};
use crate::i18n::registrar as text;
use crate::i18n::Lang;
use crate::web::{self, Chrome, Ctx};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDateTime;
use serde::Deserialize;

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
        page.error = Some(text::DIGITS_ONLY.get(lang));
        return Ok(web::render(page, StatusCode::BAD_REQUEST));
    }
    let Some(s) = crate::db::students::by_number(&app.store, &number).await? else {
        page.error = Some(text::NO_SUCH_STUDENT.get(lang));
        return Ok(web::render(page, StatusCode::NOT_FOUND));
    };
    page.found = Some((s.name, s.class_year));
    for t in crate::db::students::tickets(&app.store, s.id).await? {
        ticket_events(&ctx.chrome, lang, t, &mut page.events);
    }
    for o in crate::db::students::outcomes(&app.store, s.id).await? {
        page.events.push(outcome_event(&ctx.chrome, lang, o));
    }
    page.events.sort_by_key(|e| e.sort);
    web::page(page)
}

/// A ticket's joining, its admission, and its skip or leave.
/// An order key as a place in its line: the key itself, or on a round
/// with priority, beyond the first line, `line/key` (decision 090).
fn key_text(order_key: u64) -> String {
    match waitroom::priority::split_key(order_key) {
        (0, key) => key.to_string(),
        (lane, key) => format!("{}/{key}", u16::from(lane) + 1),
    }
}

fn ticket_events(chrome: &Chrome, lang: Lang, t: Ticket, events: &mut Vec<Event>) {
    events.push(Event {
        at: chrome.at(&t.joined_at),
        sort: t.joined_at,
        what: text::JOINED.get(lang).to_string(),
        detail: format!(
            "{} · seq {} · {} {} {}",
            t.round,
            t.seq,
            text::ORDER_KEY.get(lang),
            t.order_key.map_or("–".to_string(), key_text),
            if t.prequeue {
                text::PREQUEUE_NOTE.get(lang)
            } else {
                ""
            }
        ),
    });
    if let Some(at) = t.admitted_at {
        events.push(Event {
            at: chrome.at(&at),
            sort: at,
            what: text::ADMITTED.get(lang).to_string(),
            detail: t.round.clone(),
        });
    }
    if t.state == "skipped" || t.state == "left" {
        let what = if t.state == "skipped" {
            text::SKIPPED
        } else {
            text::LEFT
        };
        events.push(Event {
            at: chrome.at(&t.last_seen_at),
            sort: t.last_seen_at,
            what: what.get(lang).to_string(),
            detail: t.round,
        });
    }
}

/// A decided command item: what, on which section, how it ended and why.
fn outcome_event(chrome: &Chrome, lang: Lang, o: Outcome) -> Event {
    let id = uuid::Uuid::from_slice(&o.command_id)
        .map(|u| u.to_string())
        .unwrap_or_default();
    Event {
        at: chrome.at(&o.decided_at),
        sort: o.decided_at,
        what: format!(
            "{} {}: {}",
            o.action,
            o.code
                .zip(o.number)
                .map(|(c, n)| format!("{c}-{n:02}"))
                .unwrap_or_default(),
            outcome_words(&o.outcome, lang)
        ),
        detail: format!(
            "{} · {} {} · {} {} · {}",
            reason_words(o.reason.as_deref(), lang),
            text::ISSUED.get(lang),
            chrome.at(&o.issued_at),
            text::DECIDED_BY.get(lang),
            o.decided_by,
            id
        ),
    }
}
