//! Course search (`GET /courses`): filters read as text and checked here,
//! so a bad value gets a message next to its field; for a signed-in
//! student, what the page needs to warn about a clash before adding.

use super::{load_student, slots_of, title};
use crate::catalog::{self, Filter};
use crate::error::ApiResult;
use crate::i18n::student::FilterProblem;
use crate::i18n::Lang;
use crate::web::{self, Chrome, Ctx, FieldErrors};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

/// Results per search page.
const PER_PAGE: usize = 20;

/// Every parameter is read as text and parsed here, so that a bad value
/// gets a message next to its field instead of a framework rejection.
#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
    pub dept: Option<String>,
    pub day: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub credits: Option<String>,
    pub open: Option<String>,
    pub page: Option<String>,
    pub lang: Option<String>,
}

/// A search result row as the template shows it.
struct Found {
    id: u32,
    code: String,
    title: String,
    credits: u8,
    department: String,
    number: u16,
    instructor: String,
    room: String,
    times: String,
    left: u32,
    capacity: u32,
    closed: bool,
    in_cart: bool,
    /// `weekday:start:end` triples for the client-side conflict check.
    slots: String,
    course_id: u32,
}

#[derive(Template)]
#[template(path = "courses.html")]
struct SearchPage {
    chrome: Chrome,
    form: SearchQuery,
    errors: FieldErrors,
    departments: Vec<(String, String)>,
    rows: Vec<Found>,
    total: usize,
    page: usize,
    pages: usize,
    prev_href: Option<String>,
    next_href: Option<String>,
    loading: bool,
    cart: CartSummary,
    weekdays: Vec<(&'static str, &'static str)>,
}

/// What the search page knows about the cart, for client-side warnings.
#[derive(Debug, Default)]
struct CartSummary {
    credits: u32,
    max_credits: u32,
    /// Sections in the cart or enrolled, encoded like [`Found::slots`].
    slots: String,
    courses: String,
    count: usize,
}

impl SearchPage {
    /// The submitted value of a filter field, to show it again.
    fn v(&self, field: &str) -> &str {
        let f = &self.form;
        match field {
            "q" => &f.q,
            "dept" => &f.dept,
            "day" => &f.day,
            "from" => &f.from,
            "to" => &f.to,
            "credits" => &f.credits,
            _ => &None,
        }
        .as_deref()
        .unwrap_or("")
    }

    fn day_selected(&self, v: &str) -> bool {
        self.v("day") == v
    }

    fn dept_selected(&self, code: &str) -> bool {
        self.v("dept").eq_ignore_ascii_case(code)
    }
}

/// Turns the raw query into a filter, collecting a message per bad field.
pub fn parse_filter(q: &SearchQuery, lang: Lang) -> (Filter, usize, FieldErrors) {
    let mut errors = FieldErrors::default();
    let mut filter = Filter::default();
    let some = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Some(text) = some(&q.q) {
        if text.chars().count() > 100 {
            errors.add("q", FilterProblem::TextTooLong.words(lang));
        } else {
            filter.text = Some(text.to_lowercase());
        }
    }
    if let Some(d) = some(&q.dept) {
        if d.len() > 16 || !d.chars().all(|c| c.is_ascii_alphanumeric()) {
            errors.add("dept", FilterProblem::Department.words(lang));
        } else {
            filter.department = Some(d);
        }
    }
    if let Some(d) = some(&q.day) {
        match catalog::parse_weekday(&d) {
            Some(day) => filter.weekday = Some(day),
            None => errors.add("day", FilterProblem::Weekday.words(lang)),
        }
    }
    for (field, value, slot) in [
        ("from", &q.from, &mut filter.from_min),
        ("to", &q.to, &mut filter.to_min),
    ] {
        if let Some(v) = some(value) {
            match catalog::parse_hhmm(&v) {
                Some(m) => *slot = Some(m),
                None => errors.add(field, FilterProblem::Time.words(lang)),
            }
        }
    }
    if let (Some(f), Some(t)) = (filter.from_min, filter.to_min) {
        if f >= t {
            errors.add("to", FilterProblem::EndBeforeStart.words(lang));
        }
    }
    if let Some(c) = some(&q.credits) {
        match c.parse::<u8>() {
            Ok(c) if c <= 12 => filter.credits = Some(c),
            _ => errors.add("credits", FilterProblem::Credits.words(lang)),
        }
    }
    filter.open_only = some(&q.open).is_some();
    let mut page = 1;
    if let Some(p) = some(&q.page) {
        match p.parse::<usize>() {
            Ok(p) if (1..=10_000).contains(&p) => page = p,
            _ => errors.add("page", FilterProblem::Page.words(lang)),
        }
    }
    (filter, page, errors)
}

/// `GET /courses`: search and browse; open to anyone, adding to a cart
/// needs a student session.
pub async fn search(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("courses");
    let lang = ctx.lang();
    let (filter, page, errors) = parse_filter(&q, lang);
    let mut cart = CartSummary::default();
    let mut in_cart: Vec<u32> = Vec::new();
    if let Ok((student, _)) = ctx.student() {
        let me = load_student(&app, student).await?;
        let catalog = app.catalog.covering(&me.sections()).await;
        let mut slots = Vec::new();
        let mut courses = Vec::new();
        for id in me.cart.iter().chain(&me.standing.enrolled) {
            if let Some(s) = catalog.section(*id) {
                cart.credits += u32::from(s.credits);
                slots.push(slots_of(&s.meetings));
                courses.push(s.course_id.to_string());
            }
        }
        cart.max_credits = u32::from(me.standing.max_credits);
        cart.slots = slots.join(" ");
        cart.courses = courses.join(" ");
        cart.count = me.cart.len();
        in_cart = me.cart.clone();
    }
    let loading = !app.catalog.is_loaded();
    let (rows, total) = if errors.is_empty() {
        let found = app.catalog.search(&filter, page, PER_PAGE);
        let rows = found
            .sections
            .iter()
            .map(|(s, seats)| Found {
                id: s.id,
                code: s.code.clone(),
                title: title(s, lang),
                credits: s.credits,
                department: s.department.clone(),
                number: s.number,
                instructor: s.instructor.clone(),
                room: s.room.clone(),
                times: catalog::meetings_text(&s.meetings, lang),
                left: seats.left(),
                capacity: seats.capacity,
                closed: seats.closed,
                in_cart: in_cart.contains(&s.id),
                slots: slots_of(&s.meetings),
                course_id: s.course_id,
            })
            .collect();
        (rows, found.total)
    } else {
        (Vec::new(), 0)
    };
    let pages = total.div_ceil(PER_PAGE).max(1);
    let href = |p: usize| {
        let mut pairs: Vec<String> = Vec::new();
        for (k, v) in [
            ("q", &q.q),
            ("dept", &q.dept),
            ("day", &q.day),
            ("from", &q.from),
            ("to", &q.to),
            ("credits", &q.credits),
            ("open", &q.open),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                pairs.push(format!("{k}={}", web::urlencode(v)));
            }
        }
        pairs.push(format!("page={p}"));
        format!("/courses?{}", pairs.join("&"))
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    let departments = app
        .catalog
        .catalog()
        .departments
        .iter()
        .map(|d| {
            let name = match lang {
                Lang::Ko => &d.name_ko,
                Lang::En => &d.name_en,
            };
            (d.code.clone(), format!("{} ({})", name, d.code))
        })
        .collect();
    let page_view = SearchPage {
        chrome: ctx.chrome,
        departments,
        rows,
        total,
        page,
        pages,
        prev_href: (page > 1).then(|| href(page - 1)),
        next_href: (page < pages).then(|| href(page + 1)),
        loading,
        cart,
        weekdays: (1..=6u8)
            .zip(["1", "2", "3", "4", "5", "6"])
            .map(|(d, v)| (v, catalog::weekday_name(d, lang)))
            .collect(),
        form: q,
        errors,
    };
    Ok(web::render(page_view, status))
}
