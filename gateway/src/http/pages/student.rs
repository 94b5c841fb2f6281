//! Student pages: sign in and out, course search, the cart (장바구니) with
//! its warnings, enrolling and dropping after admission, request results
//! and the weekly timetable.
//!
//! Every write is a plain HTML form carrying the session's CSRF value, so
//! the pages work without JavaScript; the small script in `/static/app.js`
//! only adds live status, client-side cart warnings and confirmation.
//! Enrolling and dropping go through [`commands::submit`], the very
//! code path of `POST /api/enroll`, so the page and the API cannot drift.

use crate::catalog::{self, Filter, Seats, Section};
use crate::error::{ApiError, ApiResult};
use crate::http::api::commands;
use crate::http::api::queue::{pass_token, PASS_COOKIE, QUEUE_COOKIE};
use crate::http::extract::{same_origin, ClientIp};
use crate::i18n::Lang;
use crate::session::{self, LoginBody, SESSION_COOKIE};
use crate::web::{self, Chrome, Ctx, FieldErrors};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use enrollment::rules::{self, Held, Meeting, SectionInfo, StudentState};
use enrollment::{Action, CourseId, Reason, SectionId, StudentId, MAX_CART_SECTIONS};
use serde::Deserialize;
use sqlx::Row;
use std::sync::Arc;
use waitroom::{PassClaims, RoundState, Subject};

/// Results per search page.
const PER_PAGE: usize = 20;

// ---------------------------------------------------------------------------
// Sign in, sign out
// ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    form_csrf: String,
    next: String,
    next_enc: String,
    staff: bool,
    name: String,
    error: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    pub next: Option<String>,
    pub staff: Option<String>,
}

/// `GET /login`
pub async fn login_form(
    State(app): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> ApiResult<Response> {
    let (jar, form_csrf) = web::anon_csrf(&app, jar);
    let next = web::safe_next(q.next.as_deref()).unwrap_or_default();
    let staff = q.staff.is_some() || next.starts_with("/admin");
    let page = LoginPage {
        chrome: ctx.in_section("login").chrome,
        form_csrf,
        next_enc: web::urlencode(&next),
        next,
        staff,
        name: String::new(),
        error: None,
    };
    Ok((jar, web::render(page, StatusCode::OK)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub next: String,
}

/// `POST /login`
pub async fn login(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> ApiResult<Response> {
    same_origin(&headers)?;
    web::check_anon_csrf(&jar, &form.csrf)?;
    app.limits.check_ip(ip)?;
    let staff = form.kind == "staff";
    let name = form.name.trim().to_string();
    let body = LoginBody {
        student_number: (!staff).then(|| name.clone()),
        username: staff.then(|| name.clone()),
        password: form.password,
    };
    let next = web::safe_next(Some(&form.next));
    match session::login(&app, body).await {
        Ok(subject) => {
            let target = next.unwrap_or_else(|| match subject {
                Subject::Student { .. } => "/courses".to_string(),
                Subject::Admin { .. } => "/admin".to_string(),
            });
            let (_, cookie) = session::issue(&app, subject);
            // A new person at this browser: drop the previous one's queue
            // place and pass cookies.
            let jar = jar
                .add(cookie)
                .remove(Cookie::build(QUEUE_COOKIE).path("/"))
                .remove(Cookie::build(PASS_COOKIE).path("/"));
            Ok((jar, Redirect::to(&target)).into_response())
        }
        Err(ApiError::BadCredentials) => {
            let error = if staff {
                ctx.t(
                    "아이디 또는 비밀번호가 올바르지 않습니다.",
                    "The username or password is wrong.",
                )
            } else {
                ctx.t(
                    "학번 또는 비밀번호가 올바르지 않습니다.",
                    "The student number or password is wrong.",
                )
            };
            let (jar, form_csrf) = web::anon_csrf(&app, jar);
            let page = LoginPage {
                chrome: ctx.in_section("login").chrome,
                form_csrf,
                next_enc: web::urlencode(next.as_deref().unwrap_or("")),
                next: next.unwrap_or_default(),
                staff,
                name,
                error: Some(error),
            };
            Ok((jar, web::render(page, StatusCode::UNAUTHORIZED)).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /logout`
pub async fn logout(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> ApiResult<Response> {
    same_origin(&headers)?;
    if let Some(claims) = &ctx.claims {
        ctx.check_csrf(&form.csrf)?;
        session::revoke(&app, claims).await?;
    }
    let jar = jar
        .remove(Cookie::build(SESSION_COOKIE).path("/"))
        .remove(Cookie::build(QUEUE_COOKIE).path("/"))
        .remove(Cookie::build(PASS_COOKIE).path("/"));
    Ok((jar, Redirect::to("/login")).into_response())
}

// ---------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------

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
struct Row_ {
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
    rows: Vec<Row_>,
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
    /// Sections in the cart or enrolled, encoded like [`Row_::slots`].
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
            errors.add(
                "q",
                lang.t(
                    "검색어는 100자 이하로 입력하세요.",
                    "Use at most 100 characters.",
                ),
            );
        } else {
            filter.text = Some(text.to_lowercase());
        }
    }
    if let Some(d) = some(&q.dept) {
        if d.len() > 16 || !d.chars().all(|c| c.is_ascii_alphanumeric()) {
            errors.add(
                "dept",
                lang.t("학과 코드가 올바르지 않습니다.", "Not a department code."),
            );
        } else {
            filter.department = Some(d);
        }
    }
    if let Some(d) = some(&q.day) {
        match catalog::parse_weekday(&d) {
            Some(day) => filter.weekday = Some(day),
            None => errors.add(
                "day",
                lang.t("요일을 목록에서 고르세요.", "Pick a weekday from the list."),
            ),
        }
    }
    for (field, value, slot) in [
        ("from", &q.from, &mut filter.from_min),
        ("to", &q.to, &mut filter.to_min),
    ] {
        if let Some(v) = some(value) {
            match catalog::parse_hhmm(&v) {
                Some(m) => *slot = Some(m),
                None => errors.add(
                    field,
                    lang.t("시각은 09:00처럼 입력하세요.", "Enter a time like 09:00."),
                ),
            }
        }
    }
    if let (Some(f), Some(t)) = (filter.from_min, filter.to_min) {
        if f >= t {
            errors.add(
                "to",
                lang.t(
                    "끝 시각은 시작 시각보다 늦어야 합니다.",
                    "The end must be after the start.",
                ),
            );
        }
    }
    if let Some(c) = some(&q.credits) {
        match c.parse::<u8>() {
            Ok(c) if c <= 12 => filter.credits = Some(c),
            _ => errors.add(
                "credits",
                lang.t(
                    "학점은 0에서 12 사이의 숫자입니다.",
                    "Credits are a number from 0 to 12.",
                ),
            ),
        }
    }
    filter.open_only = some(&q.open).is_some();
    let mut page = 1;
    if let Some(p) = some(&q.page) {
        match p.parse::<usize>() {
            Ok(p) if (1..=10_000).contains(&p) => page = p,
            _ => errors.add(
                "page",
                lang.t("쪽 번호가 올바르지 않습니다.", "Not a valid page number."),
            ),
        }
    }
    (filter, page, errors)
}

fn slots_of(meetings: &[Meeting]) -> String {
    meetings
        .iter()
        .map(|m| format!("{}:{}:{}", m.weekday, m.start_min, m.end_min))
        .collect::<Vec<_>>()
        .join(" ")
}

fn title(s: &Section, lang: Lang) -> String {
    match lang {
        Lang::Ko => s.title_ko.clone(),
        Lang::En => s.title_en.clone(),
    }
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
        for id in me.cart.iter().chain(&me.enrolled) {
            if let Some(s) = catalog.section(*id) {
                cart.credits += u32::from(s.credits);
                slots.push(slots_of(&s.meetings));
                courses.push(s.course_id.to_string());
            }
        }
        cart.max_credits = u32::from(me.max_credits);
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
            .map(|(s, seats)| Row_ {
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

// ---------------------------------------------------------------------------
// The student's own data
// ---------------------------------------------------------------------------

/// What the cart and timetable need about the signed-in student.
#[derive(Debug, Default)]
struct Me {
    number: String,
    name: String,
    max_credits: u8,
    completed: Vec<String>,
    enrolled: Vec<u32>,
    cart: Vec<u32>,
}

impl Me {
    /// Every section on this student's pages: held and in the cart.
    fn sections(&self) -> Vec<u32> {
        self.enrolled.iter().chain(&self.cart).copied().collect()
    }
}

async fn load_student(app: &AppState, id: StudentId) -> ApiResult<Me> {
    let store = &app.store;
    let pool = store.pool();
    let db = |e| ApiError::unavailable("mysql", &e);
    let (student, completed, enrolled, cart) = tokio::try_join!(
        store.timed(
            sqlx::query("SELECT number, name, max_credits FROM students WHERE id = ?")
                .bind(id.0)
                .fetch_optional(pool)
        ),
        store.timed(
            sqlx::query_scalar::<_, String>("SELECT course_code FROM student_completed_courses WHERE student_id = ?")
                .bind(id.0)
                .fetch_all(pool)
        ),
        store.timed(
            sqlx::query_scalar::<_, u32>("SELECT section_id FROM enrollments WHERE student_id = ? ORDER BY enrolled_at")
                .bind(id.0)
                .fetch_all(pool)
        ),
        store.timed(
            sqlx::query_scalar::<_, u32>("SELECT section_id FROM cart_items WHERE student_id = ? ORDER BY added_at, section_id")
                .bind(id.0)
                .fetch_all(pool)
        ),
    )
    .map_err(db)?;
    // The session outlived the account (deleted or re-imported).
    let student = student.ok_or(ApiError::SignInRequired)?;
    Ok(Me {
        number: student
            .try_get("number")
            .map_err(|e| ApiError::Internal(e.into()))?,
        name: student
            .try_get("name")
            .map_err(|e| ApiError::Internal(e.into()))?,
        max_credits: student
            .try_get("max_credits")
            .map_err(|e| ApiError::Internal(e.into()))?,
        completed,
        enrolled,
        cart,
    })
}

/// The admission pass in this browser, if it is valid now and this
/// student's.
fn current_pass(
    app: &AppState,
    headers: &HeaderMap,
    jar: &CookieJar,
    student: StudentId,
) -> Option<PassClaims> {
    let (token, _) = pass_token(headers, jar)?;
    let claims = app.keyring.open_pass(&token).ok()?;
    claims
        .check(student, claims.round, crate::clock::now_ms())
        .ok()?;
    Some(claims)
}

// ---------------------------------------------------------------------------
// The cart
// ---------------------------------------------------------------------------

/// One warning about a cart item, in words.
#[derive(Debug, Clone)]
pub struct Warning {
    pub code: &'static str,
    pub text: String,
}

/// A cart or enrolled section as the cart page shows it.
struct Item {
    id: u32,
    code: String,
    title: String,
    number: u16,
    credits: u8,
    times: String,
    instructor: String,
    left: u32,
    capacity: u32,
    warnings: Vec<Warning>,
    slots: String,
    course_id: u32,
}

/// The cart's warnings, computed with the worker's own rules so that what
/// the page warns about is what the worker will refuse.
///
/// For each cart item: the rules against what the student already holds
/// (closed, same course, time conflict, prerequisites, credit limit), then
/// the cart against itself (two sections of one course, overlapping
/// meetings), and the whole cart against the credit maximum.
pub fn cart_warnings(
    lang: Lang,
    held: &[Arc<Section>],
    cart: &[(Arc<Section>, Seats)],
    completed: &[String],
    max_credits: u8,
) -> (Vec<Vec<Warning>>, Option<Warning>) {
    let info = |s: &Section, seats: Seats| SectionInfo {
        id: SectionId(s.id),
        course_id: CourseId(s.course_id),
        credits: s.credits,
        closed: seats.closed,
        capacity: seats.capacity,
        enrolled: seats.enrolled,
        meetings: s.meetings.clone(),
        prerequisites: s.prerequisites.clone(),
    };
    let state = StudentState {
        class_year: 0,
        max_credits,
        completed: completed.to_vec(),
        held: held
            .iter()
            .map(|s| Held {
                section_id: SectionId(s.id),
                course_id: CourseId(s.course_id),
                credits: s.credits,
                meetings: s.meetings.clone(),
            })
            .collect(),
    };
    let reason = |r: Reason| Warning {
        code: r.code(),
        text: match lang {
            Lang::Ko => r.message_ko(),
            Lang::En => r.message_en(),
        }
        .to_string(),
    };
    let mut out = Vec::with_capacity(cart.len());
    for (i, (s, seats)) in cart.iter().enumerate() {
        let mut w = Vec::new();
        let si = info(s, *seats);
        match rules::check_enroll(&state, &si) {
            Ok(()) => {}
            // The whole-cart credit warning below says it better.
            Err(Reason::CreditLimit) => {}
            Err(r) => w.push(reason(r)),
        }
        if !seats.closed && rules::check_seat(&si).is_err() {
            w.push(reason(Reason::Full));
        }
        for (j, (other, _)) in cart.iter().enumerate() {
            if i == j {
                continue;
            }
            if other.course_id == s.course_id {
                w.push(Warning {
                    code: "duplicate_course",
                    text: format!(
                        "{} {} ({})",
                        lang.t(
                            "장바구니에 같은 과목의 다른 분반이 있습니다:",
                            "Another section of this course is in the cart:"
                        ),
                        other.code,
                        other.number
                    ),
                });
            } else if s
                .meetings
                .iter()
                .any(|m| other.meetings.iter().any(|n| m.overlaps(n)))
            {
                w.push(Warning {
                    code: "time_overlap",
                    text: format!(
                        "{} {} ({})",
                        lang.t(
                            "장바구니의 다른 과목과 시간이 겹칩니다:",
                            "Overlaps another cart section:"
                        ),
                        other.code,
                        other.number
                    ),
                });
            }
        }
        out.push(w);
    }
    let total: u32 = state.credits() + cart.iter().map(|(s, _)| u32::from(s.credits)).sum::<u32>();
    let over = (total > u32::from(max_credits)).then(|| Warning {
        code: "credit_limit",
        text: format!(
            "{} ({total} / {max_credits})",
            match lang {
                Lang::Ko => Reason::CreditLimit.message_ko(),
                Lang::En => Reason::CreditLimit.message_en(),
            }
        ),
    });
    (out, over)
}

/// A round the student can join now, for the "go to the queue" link.
struct OpenRound {
    id: u32,
    name: String,
}

#[derive(Template)]
#[template(path = "cart.html")]
struct CartPage {
    chrome: Chrome,
    number: String,
    name: String,
    items: Vec<Item>,
    enrolled: Vec<Item>,
    cart_credits: u32,
    enrolled_credits: u32,
    max_credits: u8,
    over: Option<Warning>,
    pass_until: Option<String>,
    rounds: Vec<OpenRound>,
    message: Option<String>,
    cart_full: bool,
    /// The enroll and drop forms' idempotency key.
    form_key: String,
}

#[derive(Debug, Deserialize)]
pub struct CartQuery {
    pub msg: Option<String>,
}

fn item(s: &Section, seats: Seats, lang: Lang, warnings: Vec<Warning>) -> Item {
    Item {
        id: s.id,
        code: s.code.clone(),
        title: title(s, lang),
        number: s.number,
        credits: s.credits,
        times: catalog::meetings_text(&s.meetings, lang),
        instructor: s.instructor.clone(),
        left: seats.left(),
        capacity: seats.capacity,
        warnings,
        slots: slots_of(&s.meetings),
        course_id: s.course_id,
    }
}

/// `GET /cart`
pub async fn cart(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Query(q): Query<CartQuery>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("cart");
    let (student, class_year) = ctx.student()?;
    let lang = ctx.lang();
    let me = load_student(&app, student).await?;
    let catalog = app.catalog.covering(&me.sections()).await;
    let held: Vec<Arc<Section>> = me
        .enrolled
        .iter()
        .filter_map(|id| catalog.section(*id).cloned())
        .collect();
    // Sections already held are not "to enroll" any more.
    let cart: Vec<(Arc<Section>, Seats)> = me
        .cart
        .iter()
        .filter(|id| !me.enrolled.contains(id))
        .filter_map(|id| {
            catalog
                .section(*id)
                .map(|s| (Arc::clone(s), app.catalog.seats_of(*id)))
        })
        .collect();
    let (warnings, over) = cart_warnings(lang, &held, &cart, &me.completed, me.max_credits);
    let items: Vec<Item> = cart
        .iter()
        .zip(warnings)
        .map(|((s, seats), w)| item(s, *seats, lang, w))
        .collect();
    let enrolled: Vec<Item> = held
        .iter()
        .map(|s| item(s, app.catalog.seats_of(s.id), lang, Vec::new()))
        .collect();
    let pass = current_pass(&app, &headers, &jar, student);
    let snapshot = app.rooms.snapshot();
    let mut rounds: Vec<OpenRound> = snapshot
        .rounds
        .values()
        .filter(|r| r.view.state.accepts_joins() && r.view.admits_year(class_year))
        .map(|r| OpenRound {
            id: r.view.id.0,
            name: r.view.name.clone(),
        })
        .collect();
    rounds.sort_by_key(|r| r.id);
    let message = q.msg.as_deref().map(|m| cart_message(m, lang).to_string());
    let page = CartPage {
        pass_until: pass.map(|p| ctx.chrome.at_ms(p.exp)),
        cart_credits: items.iter().map(|i| u32::from(i.credits)).sum(),
        enrolled_credits: enrolled.iter().map(|i| u32::from(i.credits)).sum(),
        cart_full: me.cart.len() >= MAX_CART_SECTIONS,
        chrome: ctx.chrome,
        number: me.number,
        name: me.name,
        items,
        enrolled,
        max_credits: me.max_credits,
        over,
        rounds,
        message,
        form_key: form_key(),
    };
    web::page(page)
}

fn cart_message(code: &str, lang: Lang) -> &'static str {
    match code {
        "added" => lang.t("장바구니에 담았습니다.", "Added to your cart."),
        "removed" => lang.t("장바구니에서 뺐습니다.", "Removed from your cart."),
        "full" => lang.t(
            "장바구니에는 최대 12개 분반까지 담을 수 있습니다.",
            "A cart holds at most 12 sections.",
        ),
        "unknown" => lang.t("존재하지 않는 분반입니다.", "No such section."),
        "empty" => lang.t(
            "신청할 분반이 장바구니에 없습니다.",
            "There is nothing in your cart to enroll in.",
        ),
        _ => "",
    }
}

#[derive(Debug, Deserialize)]
pub struct SectionForm {
    #[serde(default)]
    pub csrf: String,
    /// Read as text so that a bad value is a clear 400, not a rejection.
    #[serde(default)]
    pub section: String,
    #[serde(default)]
    pub back: String,
}

impl SectionForm {
    fn section(&self) -> ApiResult<u32> {
        self.section
            .trim()
            .parse()
            .map_err(|_| ApiError::Invalid("section must be a section number".into()))
    }
}

/// Checks what every student form needs: same origin, CSRF, a student.
fn student_form(ctx: &Ctx, headers: &HeaderMap, csrf: &str) -> ApiResult<StudentId> {
    same_origin(headers)?;
    let (student, _) = ctx.student()?;
    ctx.check_csrf(csrf)?;
    Ok(student)
}

fn back_to(back: &str, msg: &str) -> Redirect {
    let base = web::safe_next(Some(back)).unwrap_or_else(|| "/cart".to_string());
    let sep = if base.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{base}{sep}msg={msg}"))
}

/// `POST /cart/add`
pub async fn cart_add(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<SectionForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let section = form.section()?;
    app.limits.check_student(student)?;
    let store = &app.store;
    // Count and insert in one statement, so two quick clicks cannot push
    // the cart past its size. The database, not the catalog cache, decides
    // whether the section exists: a section opened since the cache's last
    // refresh must be addable at once.
    let inserted = store
        .timed(
            sqlx::query(
                "INSERT IGNORE INTO cart_items (student_id, section_id) \
                 SELECT ?, s.id FROM sections s \
                 WHERE s.id = ? AND (SELECT COUNT(*) FROM cart_items c WHERE c.student_id = ?) < ?",
            )
            .bind(student.0)
            .bind(section)
            .bind(student.0)
            .bind(MAX_CART_SECTIONS as u32)
            .execute(store.pool()),
        )
        .await
        .map_err(|e| ApiError::unavailable("mysql", &e))?
        .rows_affected();
    let msg = if inserted == 1 {
        "added"
    } else {
        // Why nothing was inserted: already there, no such section, or full.
        let (present, exists): (i64, i64) = store
            .timed(
                sqlx::query_as(
                    "SELECT \
                       (SELECT COUNT(*) FROM cart_items WHERE student_id = ? AND section_id = ?), \
                       (SELECT COUNT(*) FROM sections WHERE id = ?)",
                )
                .bind(student.0)
                .bind(section)
                .bind(section)
                .fetch_one(store.pool()),
            )
            .await
            .map_err(|e| ApiError::unavailable("mysql", &e))?;
        if present > 0 {
            "added"
        } else if exists == 0 {
            "unknown"
        } else {
            "full"
        }
    };
    Ok(back_to(&form.back, msg).into_response())
}

/// `POST /cart/remove`
pub async fn cart_remove(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<SectionForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let section = form.section()?;
    let store = &app.store;
    store
        .timed(
            sqlx::query("DELETE FROM cart_items WHERE student_id = ? AND section_id = ?")
                .bind(student.0)
                .bind(section)
                .execute(store.pool()),
        )
        .await
        .map_err(|e| ApiError::unavailable("mysql", &e))?;
    Ok(back_to(&form.back, "removed").into_response())
}

// ---------------------------------------------------------------------------
// Enroll and drop
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct EnrollForm {
    #[serde(default)]
    pub csrf: String,
    /// One section; absent or empty: the whole cart.
    #[serde(default)]
    pub section: String,
    /// Fresh per rendered form, so a resubmitted form is one command.
    #[serde(default)]
    pub idempotency_key: String,
}

/// `POST /enroll`: the whole cart in one command, or one section.
pub async fn enroll(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<EnrollForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let sections: Vec<SectionId> = if form.section.trim().is_empty() {
        let me = load_student(&app, student).await?;
        me.cart
            .iter()
            .filter(|id| !me.enrolled.contains(id))
            .take(MAX_CART_SECTIONS)
            .map(|&id| SectionId(id))
            .collect()
    } else {
        vec![SectionId(form.section.trim().parse().map_err(|_| {
            ApiError::Invalid("section must be a section number".into())
        })?)]
    };
    if sections.is_empty() {
        return Ok(Redirect::to("/cart?msg=empty").into_response());
    }
    send(
        &app,
        &headers,
        &jar,
        student,
        Action::Enroll {
            sections,
            waitlist: false,
        },
        &form.idempotency_key,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct DropForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub section: String,
    #[serde(default)]
    pub idempotency_key: String,
}

/// `POST /drop`
pub async fn drop(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<DropForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let section = SectionId(
        form.section
            .trim()
            .parse()
            .map_err(|_| ApiError::Invalid("section must be a section number".into()))?,
    );
    send(
        &app,
        &headers,
        &jar,
        student,
        Action::Drop { section },
        &form.idempotency_key,
    )
    .await
}

/// A fresh idempotency key for a form about to be shown.
fn form_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Publishes through the API's own path and shows the live result. An
/// empty `idempotency_key` (a form from before keys) means none.
async fn send(
    app: &AppState,
    headers: &HeaderMap,
    jar: &CookieJar,
    student: StudentId,
    action: Action,
    idempotency_key: &str,
) -> ApiResult<Response> {
    let key = match idempotency_key.trim() {
        "" => None,
        k => Some(commands::checked_key(k)?),
    };
    // The pass in this browser must be the signed-in student's: a shared
    // computer must not let one student act on another's admission.
    let (token, _) = pass_token(headers, jar).ok_or(ApiError::PassRequired)?;
    let claims = app.keyring.open_pass(&token)?;
    if claims.student != student {
        return Err(ApiError::PassRequired);
    }
    let (_, axum::Json(accepted)) = commands::submit(app, None, headers, jar, action, key).await?;
    Ok(Redirect::to(&format!("/results?pending={}", accepted.command_id)).into_response())
}

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

struct ResultRow {
    command: String,
    at: String,
    action: &'static str,
    section: String,
    outcome: String,
    outcome_class: &'static str,
    reason: String,
}

#[derive(Template)]
#[template(path = "results.html")]
struct ResultsPage {
    chrome: Chrome,
    pending: Vec<String>,
    rows: Vec<ResultRow>,
}

#[derive(Debug, Deserialize)]
pub struct ResultsQuery {
    pub pending: Option<String>,
}

/// An outcome in words.
pub fn outcome_words(outcome: &str, lang: Lang) -> &'static str {
    match outcome {
        "enrolled" => lang.t("신청 완료", "Enrolled"),
        "dropped" => lang.t("취소 완료", "Dropped"),
        "waitlisted" => lang.t("대기 명단 등록", "Waitlisted"),
        "promoted" => lang.t("대기 후 신청 완료", "Enrolled from the waitlist"),
        "rejected" => lang.t("실패", "Not enrolled"),
        "failed" => lang.t("처리 실패", "Not processed"),
        _ => lang.t("처리 중", "Queued"),
    }
}

/// A reason code in words.
pub fn reason_words(code: Option<&str>, lang: Lang) -> String {
    match code.and_then(Reason::from_code) {
        Some(r) => match lang {
            Lang::Ko => r.message_ko(),
            Lang::En => r.message_en(),
        }
        .to_string(),
        None => code.unwrap_or("").to_string(),
    }
}

/// `GET /results`: every decided request of the student, newest first,
/// plus the ones still queued (live on the page).
pub async fn results(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(q): Query<ResultsQuery>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("results");
    let (student, _) = ctx.student()?;
    let lang = ctx.lang();
    let store = &app.store;
    let rows = store
        .timed(
            sqlx::query(
                "SELECT o.command_id, o.item, o.action, o.outcome, o.reason, o.decided_at, \
                        c.code, s.number \
                 FROM command_outcomes o \
                 LEFT JOIN sections s ON s.id = o.section_id \
                 LEFT JOIN courses c ON c.id = s.course_id \
                 WHERE o.student_id = ? ORDER BY o.decided_at DESC, o.item LIMIT 200",
            )
            .bind(student.0)
            .fetch_all(store.pool()),
        )
        .await
        .map_err(|e| ApiError::unavailable("mysql", &e))?;
    let mut out = Vec::with_capacity(rows.len());
    let mut decided = Vec::new();
    for r in rows {
        let id: Vec<u8> = r
            .try_get("command_id")
            .map_err(|e| ApiError::Internal(e.into()))?;
        let id = uuid::Uuid::from_slice(&id)
            .map(|u| u.to_string())
            .unwrap_or_default();
        let outcome: String = r
            .try_get("outcome")
            .map_err(|e| ApiError::Internal(e.into()))?;
        let reason: Option<String> = r
            .try_get("reason")
            .map_err(|e| ApiError::Internal(e.into()))?;
        let code: Option<String> = r
            .try_get("code")
            .map_err(|e| ApiError::Internal(e.into()))?;
        let number: Option<u16> = r
            .try_get("number")
            .map_err(|e| ApiError::Internal(e.into()))?;
        let action: String = r
            .try_get("action")
            .map_err(|e| ApiError::Internal(e.into()))?;
        let at: chrono::NaiveDateTime = r
            .try_get("decided_at")
            .map_err(|e| ApiError::Internal(e.into()))?;
        decided.push(id.clone());
        out.push(ResultRow {
            command: id,
            at: ctx.chrome.at(&at),
            action: if action == "drop" {
                lang.t("취소", "Drop")
            } else {
                lang.t("신청", "Enroll")
            },
            section: match (code, number) {
                (Some(c), Some(n)) => format!("{c}-{n:02}"),
                _ => "–".into(),
            },
            outcome_class: match outcome.as_str() {
                "enrolled" | "dropped" | "promoted" => "good",
                "waitlisted" => "warn",
                _ => "bad",
            },
            outcome: outcome_words(&outcome, lang).to_string(),
            reason: reason_words(reason.as_deref(), lang),
        });
    }
    let pending = q
        .pending
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter_map(|s| s.trim().parse::<uuid::Uuid>().ok())
        .map(|u| u.to_string())
        .filter(|id| !decided.contains(id))
        .take(12)
        .collect();
    web::page(ResultsPage {
        chrome: ctx.chrome,
        pending,
        rows: out,
    })
}

// ---------------------------------------------------------------------------
// Timetable
// ---------------------------------------------------------------------------

/// Grid rows are this many minutes.
const SLOT_MIN: u16 = 15;

/// A section's meeting drawn on the timetable.
#[derive(Debug)]
pub struct Block {
    pub rows: u16,
    pub code: String,
    pub title: String,
    pub room: String,
    pub time: String,
    pub color: usize,
    /// A cart section shown on top of the enrolled ones.
    pub preview: bool,
}

/// One cell of the timetable table.
#[derive(Debug)]
pub enum Cell {
    Empty,
    /// Covered by a block that started in an earlier row.
    Covered,
    Block(Block),
}

impl Cell {
    pub fn block(&self) -> Option<&Block> {
        match self {
            Cell::Block(b) => Some(b),
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Cell::Empty)
    }
}

#[derive(Debug)]
pub struct GridRow {
    pub label: String,
    pub hour: bool,
    pub cells: Vec<Cell>,
}

#[derive(Template)]
#[template(path = "timetable.html")]
struct TimetablePage {
    chrome: Chrome,
    days: Vec<&'static str>,
    rows: Vec<GridRow>,
    unplaced: Vec<String>,
    online: Vec<String>,
    credits: u32,
    with_cart: bool,
    empty: bool,
}

#[derive(Debug, Deserialize)]
pub struct TimetableQuery {
    pub cart: Option<String>,
}

/// Lays sections out on a weekday × 15-minute grid. Sections that would
/// overlap one already placed (possible only in a cart preview) are not
/// drawn but listed, and sections without meetings are listed apart.
pub fn layout(
    lang: Lang,
    sections: &[(Arc<Section>, bool)],
) -> (Vec<&'static str>, Vec<GridRow>, Vec<String>, Vec<String>) {
    let last_day = sections
        .iter()
        .flat_map(|(s, _)| s.meetings.iter().map(|m| m.weekday))
        .max()
        .unwrap_or(5)
        .max(5);
    let days: Vec<u8> = (1..=last_day).collect();
    let start = sections
        .iter()
        .flat_map(|(s, _)| s.meetings.iter().map(|m| m.start_min))
        .min()
        .unwrap_or(540)
        .min(540)
        / 60
        * 60;
    let end = sections
        .iter()
        .flat_map(|(s, _)| s.meetings.iter().map(|m| m.end_min))
        .max()
        .unwrap_or(1080)
        .max(1080)
        .div_ceil(60)
        * 60;
    let n_rows = usize::from((end - start) / SLOT_MIN);
    let mut cells: Vec<Vec<Cell>> = (0..n_rows)
        .map(|_| days.iter().map(|_| Cell::Empty).collect())
        .collect();
    let mut unplaced = Vec::new();
    let mut online = Vec::new();
    for (i, (s, preview)) in sections.iter().enumerate() {
        let name = format!("{}-{:02} {}", s.code, s.number, title(s, lang));
        if s.meetings.is_empty() {
            online.push(name);
            continue;
        }
        for m in &s.meetings {
            let day = usize::from(m.weekday - 1);
            let first = usize::from((m.start_min - start) / SLOT_MIN);
            let last = usize::from((m.end_min - start).div_ceil(SLOT_MIN)).min(n_rows);
            let free = (first..last).all(|r| matches!(cells[r][day], Cell::Empty));
            if !free || first >= last {
                unplaced.push(format!("{name} ({})", catalog::meeting_text(m, lang)));
                continue;
            }
            cells[first][day] = Cell::Block(Block {
                rows: u16::try_from(last - first).unwrap_or(1),
                code: format!("{}-{:02}", s.code, s.number),
                title: title(s, lang),
                room: s.room.clone(),
                time: format!(
                    "{}-{}",
                    catalog::hhmm(m.start_min),
                    catalog::hhmm(m.end_min)
                ),
                color: i % 8,
                preview: *preview,
            });
            for row in cells.iter_mut().take(last).skip(first + 1) {
                row[day] = Cell::Covered;
            }
        }
    }
    let rows = cells
        .into_iter()
        .enumerate()
        .map(|(r, cells)| {
            let at = start + SLOT_MIN * u16::try_from(r).unwrap_or(0);
            GridRow {
                label: catalog::hhmm(at),
                hour: at.is_multiple_of(60),
                cells,
            }
        })
        .collect();
    let names = days
        .iter()
        .map(|&d| catalog::weekday_name(d, lang))
        .collect();
    (names, rows, unplaced, online)
}

/// `GET /timetable` (`?cart=1` previews the cart on top).
pub async fn timetable(
    State(app): State<AppState>,
    ctx: Ctx,
    Query(q): Query<TimetableQuery>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("timetable");
    let (student, _) = ctx.student()?;
    let lang = ctx.lang();
    let me = load_student(&app, student).await?;
    let catalog = app.catalog.covering(&me.sections()).await;
    let with_cart = q.cart.as_deref().is_some_and(|v| !v.is_empty() && v != "0");
    let mut sections: Vec<(Arc<Section>, bool)> = me
        .enrolled
        .iter()
        .filter_map(|id| catalog.section(*id).map(|s| (Arc::clone(s), false)))
        .collect();
    let credits = sections.iter().map(|(s, _)| u32::from(s.credits)).sum();
    if with_cart {
        sections.extend(
            me.cart
                .iter()
                .filter(|id| !me.enrolled.contains(id))
                .filter_map(|id| catalog.section(*id).map(|s| (Arc::clone(s), true))),
        );
    }
    let (days, rows, unplaced, online) = layout(lang, &sections);
    web::page(TimetablePage {
        chrome: ctx.chrome,
        empty: sections.is_empty(),
        days,
        rows,
        unplaced,
        online,
        credits,
        with_cart,
    })
}

/// Rounds a student may join, for the home page.
pub fn joinable(app: &AppState, class_year: Option<u8>) -> Vec<(u32, String, RoundState)> {
    let snapshot = app.rooms.snapshot();
    let mut out: Vec<(u32, String, RoundState)> = snapshot
        .rounds
        .values()
        .filter(|r| r.view.state != RoundState::Closed)
        .filter(|r| class_year.is_none_or(|y| r.view.admits_year(y)))
        .map(|r| (r.view.id.0, r.view.name.clone(), r.view.state))
        .collect();
    out.sort_by_key(|r| r.0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(id: u32, course: u32, credits: u8, meetings: Vec<Meeting>) -> Arc<Section> {
        let mut s = test_section();
        s.id = id;
        s.course_id = course;
        s.credits = credits;
        s.meetings = meetings;
        Arc::new(s)
    }

    fn test_section() -> Section {
        crate::catalog::tests_support::section()
    }

    fn m(weekday: u8, start_min: u16, end_min: u16) -> Meeting {
        Meeting {
            weekday,
            start_min,
            end_min,
        }
    }

    fn open() -> Seats {
        Seats {
            capacity: 10,
            enrolled: 0,
            closed: false,
        }
    }

    #[test]
    fn cart_warns_about_overlaps_duplicates_and_credits() {
        let held = vec![sec(1, 1, 3, vec![m(1, 540, 615)])];
        let cart = vec![
            (sec(2, 2, 3, vec![m(1, 600, 675)]), open()),
            (sec(3, 3, 3, vec![m(2, 540, 615)]), open()),
            (sec(4, 3, 3, vec![m(4, 540, 615)]), open()),
            (sec(5, 5, 3, vec![m(2, 600, 700)]), open()),
        ];
        let (w, over) = cart_warnings(Lang::En, &held, &cart, &[], 12);
        let codes = |i: usize| w[i].iter().map(|w| w.code).collect::<Vec<_>>();
        assert_eq!(codes(0), vec!["time_conflict"]);
        assert_eq!(codes(1), vec!["duplicate_course", "time_overlap"]);
        assert_eq!(codes(2), vec!["duplicate_course"]);
        assert_eq!(codes(3), vec!["time_overlap"]);
        assert_eq!(over.unwrap().code, "credit_limit");
        let (_, over) = cart_warnings(Lang::En, &held, &cart, &[], 15);
        assert!(over.is_none(), "3 + 4 * 3 = 15 is within 15");
    }

    #[test]
    fn timetable_places_blocks_and_lists_conflicts() {
        let sections = vec![
            (sec(1, 1, 3, vec![m(1, 540, 615), m(3, 540, 615)]), false),
            (sec(2, 2, 3, vec![m(1, 600, 700)]), true),
            (sec(3, 3, 3, vec![]), false),
        ];
        let (days, rows, unplaced, online) = layout(Lang::En, &sections);
        assert_eq!(days.len(), 5);
        assert_eq!(rows[0].label, "09:00");
        assert_eq!(rows[0].cells[0].block().map(|b| b.rows), Some(5));
        assert!(matches!(rows[1].cells[0], Cell::Covered));
        assert_eq!(unplaced.len(), 1);
        assert_eq!(online.len(), 1);
    }
}
