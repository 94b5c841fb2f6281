//! Courses: the searchable list with the create form, one course's page
//! (its fields and its sections), create and update.

use super::{change_form, department_options, not_saved, status, terms, MsgQuery, Term};
use crate::db::courses::Fields;
use crate::error::{ApiError, ApiResult};
use crate::i18n::outcomes::waitlist_state_words;
use crate::i18n::registrar as text;
use crate::i18n::Lang;
use crate::web::{self, Chrome, Ctx, FieldErrors};
use crate::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

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

#[derive(Debug, Default, Deserialize)]
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
    let search = q.q.unwrap_or_default().trim().to_string();
    if search.chars().count() > 100 {
        errors.add("q", text::SEARCH_LENGTH.get(lang));
    }
    let page = match q.page.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => 1,
        Some(p) => match p.parse::<u32>() {
            Ok(p) if (1..=100_000).contains(&p) => p,
            _ => {
                errors.add("page", text::PAGE_NUMBER.get(lang));
                1
            }
        },
    };
    let like = format!(
        "%{}%",
        search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let rows = crate::db::courses::search(
        &app.store,
        &like,
        COURSES_PER_PAGE + 1,
        (page - 1) * COURSES_PER_PAGE,
    )
    .await?;
    let more = rows.len() > COURSES_PER_PAGE as usize;
    let courses = rows
        .into_iter()
        .take(COURSES_PER_PAGE as usize)
        .map(|r| CourseRow {
            id: r.id,
            code: r.code,
            title: match lang {
                Lang::Ko => r.title_ko,
                Lang::En => r.title_en,
            },
            department: r.dept,
            credits: r.credits,
            sections: r.n,
        })
        .collect();
    let href = |p: u32| format!("/admin/courses?q={}&page={p}", web::urlencode(&search));
    let departments = department_options(&app.catalog.catalog(), lang);
    let status = status(&errors);
    Ok(web::render(
        CoursesPage {
            chrome: ctx.chrome,
            q: search.clone(),
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

fn code_ok(code: &str) -> bool {
    code.len() <= 16 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The course form's fields, each problem added to `errors`.
async fn validate_course(
    app: &AppState,
    lang: Lang,
    form: &CourseForm,
    errors: &mut FieldErrors,
    need_code: bool,
) -> ApiResult<Option<Fields>> {
    let code = form.code.trim().to_ascii_uppercase();
    if need_code && (code.is_empty() || !code_ok(&code)) {
        errors.add("code", text::COURSE_CODE.get(lang));
    }
    for (field, v) in [("title_ko", &form.title_ko), ("title_en", &form.title_en)] {
        if v.trim().is_empty() || v.trim().chars().count() > 200 {
            errors.add(field, text::TITLE_LENGTH.get(lang));
        }
    }
    let credits = match form.credits.trim().parse::<u8>() {
        Ok(c) if c <= 12 => Some(c),
        _ => {
            errors.add("credits", text::CREDITS.get(lang));
            None
        }
    };
    let department = crate::db::courses::department_id(&app.store, form.department.trim()).await?;
    if department.is_none() {
        errors.add("department", text::PICK_DEPARTMENT.get(lang));
    }
    let mut prerequisites = Vec::new();
    for p in form
        .prerequisites
        .split([' ', ',', ';'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let p = p.to_ascii_uppercase();
        if !code_ok(&p) {
            errors.add(
                "prerequisites",
                format!("{p:?}: {}", text::NOT_A_COURSE_CODE.get(lang)),
            );
        } else if !prerequisites.contains(&p) {
            prerequisites.push(p);
        }
    }
    if !errors.is_empty() {
        return Ok(None);
    }
    Ok(Some(Fields {
        code,
        title_ko: form.title_ko.trim().to_string(),
        title_en: form.title_en.trim().to_string(),
        department: department.unwrap_or(0),
        credits: credits.unwrap_or(0),
        prerequisites,
    }))
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
        errors.add("term", text::PICK_TERM.get(lang));
    }
    let valid = validate_course(&app, lang, &form, &mut errors, true).await?;
    let (Some(c), Some(term)) = (valid, term) else {
        return courses_page(&app, ctx, CoursesQuery::default(), form, errors).await;
    };
    let id = match crate::db::courses::create(&app.store, term, &c, &actor).await {
        Err(e) if e.is_unique_violation() => {
            errors.add("code", text::DUPLICATE_COURSE.get(lang));
            return courses_page(&app, ctx, CoursesQuery::default(), form, errors).await;
        }
        Err(e) if e.is_foreign_key_violation() => {
            errors.add("term", text::NO_SUCH_TERM.get(lang));
            return courses_page(&app, ctx, CoursesQuery::default(), form, errors).await;
        }
        r => r.map_err(not_saved)?,
    };
    app.catalog.invalidate();
    Ok(Redirect::to(&format!("/admin/courses/{id}?msg=saved")).into_response())
}

/// The section form: on the course's page, read by [`super::sections`].
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
    sections: Vec<crate::db::sections::Listed>,
    /// Each section's waitlist, by section id.
    waitlists: Vec<SectionLine>,
    new_section: SectionForm,
    errors: FieldErrors,
    /// Which section a section error belongs to (0: the new-section form).
    error_section: u32,
    message: Option<&'static str>,
}

/// One section's waitlist as the registrar sees it: counts per state,
/// then the line (those waiting, in order) and those resolved.
struct SectionLine {
    section_id: u32,
    waiting: i64,
    promoted: i64,
    skipped: i64,
    left: i64,
    entries: Vec<LineRow>,
}

struct LineRow {
    /// The place in line while waiting; empty once resolved.
    place: String,
    number: String,
    name: String,
    since: String,
    state: &'static str,
    state_code: String,
}

/// The waitlists of a course's sections, those with no entry left out.
async fn section_lines(
    app: &AppState,
    chrome: &Chrome,
    course: u32,
    lang: Lang,
) -> ApiResult<Vec<SectionLine>> {
    let counts = crate::db::waitlist::counts_of_course(&app.store, course).await?;
    let mut ids: Vec<u32> = counts.iter().map(|(s, _, _)| *s).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut lines = Vec::with_capacity(ids.len());
    for id in ids {
        let n = |state: &str| {
            counts
                .iter()
                .filter(|(s, st, _)| *s == id && st == state)
                .map(|(_, _, n)| *n)
                .sum()
        };
        let mut place = 0;
        let entries = crate::db::waitlist::line(&app.store, id)
            .await?
            .into_iter()
            .map(|e| {
                let waiting = e.state == "waiting";
                if waiting {
                    place += 1;
                }
                LineRow {
                    place: if waiting {
                        place.to_string()
                    } else {
                        String::new()
                    },
                    number: e.student_number,
                    name: e.name,
                    since: chrome.at(&e.since),
                    state: waitlist_state_words(&e.state, lang),
                    state_code: e.state,
                }
            })
            .collect();
        lines.push(SectionLine {
            section_id: id,
            waiting: n("waiting"),
            promoted: n("promoted"),
            skipped: n("skipped"),
            left: n("left"),
            entries,
        });
    }
    Ok(lines)
}

/// What a course's page re-shows after a refused form: the course form's
/// values, the new-section form's, the errors and which section they are
/// about (0: the new-section form).
#[derive(Default)]
pub(super) struct Kept {
    pub course: Option<CourseForm>,
    pub new_section: SectionForm,
    pub errors: FieldErrors,
    pub error_section: u32,
}

pub(super) async fn course_page(
    app: &AppState,
    ctx: Ctx,
    id: u32,
    kept: Kept,
    message: Option<&'static str>,
) -> ApiResult<Response> {
    let ctx = ctx.in_section("courses_admin");
    ctx.admin()?;
    let lang = ctx.lang();
    let store = &app.store;
    let c = crate::db::courses::get(store, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let prereqs = crate::db::courses::prerequisites(store, id).await?;
    let form = kept.course.unwrap_or(CourseForm {
        code: c.code,
        title_ko: c.title_ko,
        title_en: c.title_en,
        department: c.dept,
        credits: c.credits.to_string(),
        prerequisites: prereqs.join(" "),
        ..CourseForm::default()
    });
    let sections = crate::db::sections::of_course(store, id).await?;
    let waitlists = section_lines(app, &ctx.chrome, id, lang).await?;
    let departments = department_options(&app.catalog.catalog(), lang);
    let status = status(&kept.errors);
    Ok(web::render(
        CoursePage {
            chrome: ctx.chrome,
            id,
            form,
            departments,
            sections,
            waitlists,
            new_section: kept.new_section,
            errors: kept.errors,
            error_section: kept.error_section,
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
    let message = q.msg.as_deref().map(|_| text::SAVED.get(ctx.lang()));
    course_page(&app, ctx, id, Kept::default(), message).await
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
        let kept = Kept {
            course: Some(form),
            errors,
            ..Kept::default()
        };
        return course_page(&app, ctx, id, kept, None).await;
    };
    crate::db::courses::update(&app.store, id, &c, &actor)
        .await
        .map_err(not_saved)?;
    app.catalog.invalidate();
    Ok(Redirect::to(&format!("/admin/courses/{id}?msg=saved")).into_response())
}
