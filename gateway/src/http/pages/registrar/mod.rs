//! Registrar pages: rounds (create, schedule, open/pause/resume/close, live
//! rate and max-active controls with a live view), courses and sections,
//! CSV import and export, the fairness report, per-student timelines, and
//! the rehearsal flag and the ops panel of rehearsal runs.
//!
//! Any admin may look (viewers are read-only); every change needs the
//! registrar role, the session's CSRF value and a same-origin request, and
//! is written to the audit log with who and when, in the change's own
//! transaction. Round state changes go through the same store call as the
//! JSON admin API, so both are audited alike.
//!
//! This module holds what every registrar page shares: the form check and
//! the small parsers. Each feature is a file of thin handlers over
//! [`crate::db`].

pub mod courses;
pub mod exports;
pub mod fairness;
pub mod imports;
pub mod rehearsals;
pub mod round;
pub mod rounds;
pub mod sections;
pub mod students;

use crate::catalog::Catalog;
use crate::db::StoreError;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::same_origin;
use crate::i18n::registrar as text;
use crate::i18n::Lang;
use crate::web::{Ctx, FieldErrors};
use crate::AppState;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use waitroom::priority::years_text;

/// Checks what every registrar form needs and returns the actor.
fn change_form(ctx: &Ctx, headers: &HeaderMap, csrf: &str) -> ApiResult<String> {
    same_origin(headers)?;
    let actor = ctx.registrar()?;
    ctx.check_csrf(csrf)?;
    Ok(actor)
}

/// A registrar's change the database refused as a whole (a trigger, or a
/// constraint no form field names): nothing was saved, and the page says
/// to try again (503), as it always has. Other failures cross by the one
/// `From` impl.
fn not_saved(e: StoreError) -> ApiError {
    if e.database().is_some() {
        ApiError::unavailable("mysql", &e)
    } else {
        e.into()
    }
}

/// `?msg=` after a redirect.
#[derive(Debug, Deserialize)]
pub struct MsgQuery {
    pub msg: Option<String>,
}

/// A page re-shown with field errors is a 400.
fn status(errors: &FieldErrors) -> StatusCode {
    if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
}

/// A term as the forms offer it.
struct Term {
    id: u32,
    label: String,
}

async fn terms(app: &AppState) -> ApiResult<Vec<Term>> {
    Ok(crate::db::terms::all(&app.store)
        .await?
        .into_iter()
        .map(|t| Term {
            id: t.id,
            label: format!("{} {}", t.code, t.name),
        })
        .collect())
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

/// An admission rate per minute.
fn parse_rate(lang: Lang, v: &str, errors: &mut FieldErrors) -> Option<u32> {
    match v.trim().parse::<u32>() {
        Ok(r) if r <= 1_000_000 => Some(r),
        _ => {
            errors.add("rate", text::RATE.get(lang));
            None
        }
    }
}

/// A max-active cap; empty or 0 is none.
fn parse_cap(lang: Lang, v: &str, errors: &mut FieldErrors) -> Option<Option<u32>> {
    let v = v.trim();
    if v.is_empty() || v == "0" {
        return Some(None);
    }
    match v.parse::<u32>() {
        Ok(c) if c <= 10_000_000 => Some(Some(c)),
        _ => {
            errors.add("max_active", text::CAP.get(lang));
            None
        }
    }
}

/// The department choices of a course form: (code, "CODE name") in the
/// page's language.
fn department_options(catalog: &Catalog, lang: Lang) -> Vec<(String, String)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_read_as_lists_and_ranges() {
        assert_eq!(parse_years("1-4"), Some(0b1111));
        assert_eq!(parse_years("1, 3"), Some(0b101));
        assert_eq!(parse_years("2 4"), Some(0b1010));
        assert_eq!(parse_years("0"), None);
        assert_eq!(parse_years("4-2"), None);
        assert_eq!(parse_years(""), None);
        for mask in 1..=u8::MAX {
            assert_eq!(parse_years(&years_text(mask)), Some(mask));
        }
    }
}
