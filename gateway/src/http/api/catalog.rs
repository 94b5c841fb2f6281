//! `GET /api/catalog`: course search for apps, from the gateway's
//! in-memory catalog like the search page. Open to anyone, as the page is:
//! a signed-in student spends their own read budget, anyone else the
//! per-address ceiling.

use crate::catalog::{self, Filter, Seats, Section};
use crate::error::{ApiError, ApiResult};
use crate::http::api::openapi::responses::{BadRequest, TooMany, Unavailable};
use crate::http::extract::ClientIp;
use crate::i18n::student::FilterProblem;
use crate::i18n::Lang;
use crate::session::{current, StudentSession};
use crate::AppState;
use axum::extract::{Query, State};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use enrollment::rules::Meeting;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Results per page unless `per_page` says otherwise.
const PER_PAGE: usize = 20;
/// The most results one page may carry.
const MAX_PER_PAGE: usize = 100;

/// Every filter is optional and read as text, so that a bad value gets a
/// message naming its field.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    /// Words matched against course code, titles (ko/en) and instructor.
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// A department code such as `CSE`.
    #[param(max_length = 16, pattern = "^[A-Za-z0-9]*$")]
    pub dept: Option<String>,
    /// A weekday: 1-7 (1 = Monday), `mon`, `월`, ...
    pub day: Option<String>,
    /// Meetings start at or after this time (`HH:MM`).
    #[param(pattern = "^[0-9]{1,2}(:[0-9]{2})?$")]
    pub from: Option<String>,
    /// Meetings end at or before this time (`HH:MM`).
    #[param(pattern = "^[0-9]{1,2}(:[0-9]{2})?$")]
    pub to: Option<String>,
    /// Credits, 0-12.
    #[param(value_type = Option<u8>, minimum = 0, maximum = 12)]
    pub credits: Option<String>,
    /// Any value but `0`, `false` or empty: only sections with a free seat.
    pub open: Option<String>,
    /// 1-based page, at most 10000.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 10_000)]
    pub page: Option<String>,
    /// Results per page, 1-100 (20 unless given).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub per_page: Option<String>,
}

/// A weekly meeting: weekday 1-7 (1 = Monday), `[start, end)`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MeetingView {
    pub weekday: u8,
    /// `HH:MM`.
    pub start: String,
    /// `HH:MM`.
    pub end: String,
    /// Minutes after midnight.
    pub start_min: u16,
    pub end_min: u16,
}

impl From<&Meeting> for MeetingView {
    fn from(m: &Meeting) -> Self {
        MeetingView {
            weekday: m.weekday,
            start: catalog::hhmm(m.start_min),
            end: catalog::hhmm(m.end_min),
            start_min: m.start_min,
            end_min: m.end_min,
        }
    }
}

/// A section as apps see it, with its seats as of the last refresh (at
/// most a couple of seconds old).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SectionView {
    pub id: u32,
    pub course_id: u32,
    /// The course code, such as `CSE2010`.
    pub code: String,
    /// The section number within the course.
    pub number: u16,
    pub title_ko: String,
    pub title_en: String,
    pub credits: u8,
    pub department: String,
    pub instructor: String,
    pub room: String,
    /// Empty for a section without fixed times (online).
    pub meetings: Vec<MeetingView>,
    /// Course codes to have completed first.
    pub prerequisites: Vec<String>,
    pub capacity: u32,
    pub seats_left: u32,
    pub closed: bool,
}

impl SectionView {
    pub fn new(s: &Section, seats: Seats) -> SectionView {
        SectionView {
            id: s.id,
            course_id: s.course_id,
            code: s.code.clone(),
            number: s.number,
            title_ko: s.title_ko.clone(),
            title_en: s.title_en.clone(),
            credits: s.credits,
            department: s.department.clone(),
            instructor: s.instructor.clone(),
            room: s.room.clone(),
            meetings: s.meetings.iter().map(MeetingView::from).collect(),
            prerequisites: s.prerequisites.clone(),
            capacity: seats.capacity,
            seats_left: seats.left(),
            closed: seats.closed,
        }
    }
}

/// One page of search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogPage {
    /// Sections matching the filters, on every page.
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
    pub sections: Vec<SectionView>,
    /// True until this gateway's first catalog load finished (the
    /// results are then empty; ask again shortly).
    pub loading: bool,
}

fn problem(field: &str, p: FilterProblem) -> ApiError {
    ApiError::Invalid(format!(
        "{field}: {} / {}",
        p.words(Lang::En),
        p.words(Lang::Ko)
    ))
}

/// The filter, page and page size of a query, or the first bad field.
pub fn parse(q: &CatalogQuery) -> ApiResult<(Filter, usize, usize)> {
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let mut filter = Filter::default();
    if let Some(text) = given(&q.q) {
        if text.chars().count() > 100 {
            return Err(problem("q", FilterProblem::TextTooLong));
        }
        filter.text = Some(text.to_lowercase());
    }
    if let Some(d) = given(&q.dept) {
        if d.len() > 16 || !d.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(problem("dept", FilterProblem::Department));
        }
        filter.department = Some(d);
    }
    if let Some(d) = given(&q.day) {
        let day =
            catalog::parse_weekday(&d).ok_or_else(|| problem("day", FilterProblem::Weekday))?;
        filter.weekday = Some(day);
    }
    if let Some(v) = given(&q.from) {
        filter.from_min =
            Some(catalog::parse_hhmm(&v).ok_or_else(|| problem("from", FilterProblem::Time))?);
    }
    if let Some(v) = given(&q.to) {
        filter.to_min =
            Some(catalog::parse_hhmm(&v).ok_or_else(|| problem("to", FilterProblem::Time))?);
    }
    if let (Some(f), Some(t)) = (filter.from_min, filter.to_min) {
        if f >= t {
            return Err(problem("to", FilterProblem::EndBeforeStart));
        }
    }
    if let Some(c) = given(&q.credits) {
        match c.parse::<u8>() {
            Ok(c) if c <= 12 => filter.credits = Some(c),
            _ => return Err(problem("credits", FilterProblem::Credits)),
        }
    }
    filter.open_only = given(&q.open).is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
    let page = match given(&q.page) {
        None => 1,
        Some(p) => match p.parse::<usize>() {
            Ok(p) if (1..=10_000).contains(&p) => p,
            _ => return Err(problem("page", FilterProblem::Page)),
        },
    };
    let per_page = match given(&q.per_page) {
        None => PER_PAGE,
        Some(p) => match p.parse::<usize>() {
            Ok(p) if (1..=MAX_PER_PAGE).contains(&p) => p,
            _ => {
                return Err(ApiError::Invalid(
                    "per_page: a number from 1 to 100 / 1에서 100 사이의 숫자".into(),
                ))
            }
        },
    };
    Ok((filter, page, per_page))
}

/// Search the catalog.
#[utoipa::path(
    get,
    path = "/api/catalog",
    tag = "student",
    params(CatalogQuery),
    security((), ("session" = [])),
    responses(
        (status = 200, description = "One page of matching sections", body = CatalogPage),
        BadRequest,
        TooMany,
        Unavailable,
    )
)]
pub async fn search(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    Query(q): Query<CatalogQuery>,
) -> ApiResult<Json<CatalogPage>> {
    match current(&app, &jar).and_then(StudentSession::from_claims) {
        Some(s) => app.limits.check_reads(s.id)?,
        None => app.limits.check_ip(ip)?,
    }
    let (filter, page, per_page) = parse(&q)?;
    let found = app.catalog.search(&filter, page, per_page);
    Ok(Json(CatalogPage {
        total: found.total,
        page,
        per_page,
        sections: found
            .sections
            .iter()
            .map(|(s, seats)| SectionView::new(s, *seats))
            .collect(),
        loading: !app.catalog.is_loaded(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(f: impl FnOnce(&mut CatalogQuery)) -> CatalogQuery {
        let mut q = CatalogQuery::default();
        f(&mut q);
        q
    }

    #[test]
    fn filters_are_parsed_and_bad_ones_name_their_field() {
        let (filter, page, per_page) = parse(&query(|q| {
            q.q = Some(" Data ".into());
            q.day = Some("wed".into());
            q.from = Some("9:00".into());
            q.open = Some("1".into());
            q.page = Some("2".into());
        }))
        .unwrap();
        assert_eq!(filter.text.as_deref(), Some("data"));
        assert_eq!(filter.weekday, Some(3));
        assert_eq!(filter.from_min, Some(540));
        assert!(filter.open_only);
        assert_eq!((page, per_page), (2, PER_PAGE));
        for (bad, field) in [
            (query(|q| q.day = Some("someday".into())), "day"),
            (query(|q| q.credits = Some("-1".into())), "credits"),
            (query(|q| q.page = Some("0".into())), "page"),
            (query(|q| q.per_page = Some("101".into())), "per_page"),
            (
                query(|q| {
                    q.from = Some("10:00".into());
                    q.to = Some("09:00".into());
                }),
                "to",
            ),
        ] {
            let Err(ApiError::Invalid(message)) = parse(&bad) else {
                panic!("{field} accepted");
            };
            assert!(message.starts_with(field), "{message}");
        }
        assert!(
            !parse(&query(|q| q.open = Some("false".into())))
                .unwrap()
                .0
                .open_only
        );
    }
}
