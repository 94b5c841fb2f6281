//! Student pages: sign in and out, course search, the cart (장바구니) with
//! its warnings, enrolling and dropping after admission, request results
//! and the weekly timetable, one module per feature.
//!
//! Every write is a plain HTML form carrying the session's CSRF value, so
//! the pages work without JavaScript; the small script in `/static/app.js`
//! only adds live status, client-side cart warnings and confirmation.
//! Enrolling and dropping go through `http::api::commands::submit`,
//! the very code path of `POST /api/enroll`, so the page and the API cannot
//! drift. Handlers are thin: check the form, call [`crate::db`], render.

pub mod cart;
pub mod commands;
pub mod courses;
pub mod login;
pub mod results;
pub mod timetable;

// The registrar's pages name outcomes and reasons the way the results page
// does; the words live with the other texts.
pub use crate::i18n::outcomes::{outcome_words, reason_words};

use crate::catalog::Section;
use crate::db::{self, standing::Standing};
use crate::error::{ApiError, ApiResult};
use crate::http::api::queue::pass_token;
use crate::http::extract::same_origin;
use crate::i18n::Lang;
use crate::web::Ctx;
use crate::AppState;
use axum::http::HeaderMap;
use axum_extra::extract::cookie::CookieJar;
use enrollment::rules::Meeting;
use enrollment::StudentId;
use waitroom::{PassClaims, RoundState};

/// What the cart, search and timetable pages need about the signed-in
/// student.
#[derive(Debug, Default)]
struct Me {
    standing: Standing,
    cart: Vec<u32>,
}

impl Me {
    /// Every section on this student's pages: held and in the cart.
    fn sections(&self) -> Vec<u32> {
        self.standing
            .enrolled
            .iter()
            .chain(&self.cart)
            .copied()
            .collect()
    }

    /// The cart without the sections already held, which are not "to
    /// enroll" any more.
    fn to_enroll(&self) -> impl Iterator<Item = u32> + '_ {
        self.cart
            .iter()
            .filter(|id| !self.standing.enrolled.contains(id))
            .copied()
    }
}

async fn load_student(app: &AppState, id: StudentId) -> ApiResult<Me> {
    let (standing, cart) = tokio::try_join!(
        db::standing::of(&app.store, id),
        db::cart::sections(&app.store, id),
    )?;
    // The session outlived the account (deleted or re-imported).
    let standing = standing.ok_or(ApiError::SignInRequired)?;
    Ok(Me { standing, cart })
}

/// The admission pass in this browser, if it is valid now and this
/// student's; past its own end, the pass as renewed from an admission an
/// outage extended.
async fn current_pass(
    app: &AppState,
    headers: &HeaderMap,
    jar: &CookieJar,
    student: StudentId,
) -> Option<PassClaims> {
    let (token, _) = pass_token(headers, jar)?;
    let claims = app.keyring.open_pass(&token).ok()?;
    // Past its own end, an outage may have extended the admission (the
    // enroll forms renew it the same way).
    crate::http::api::commands::pass_in_time(app, claims, student, crate::clock::now_ms())
        .await
        .ok()
        .map(|(c, _)| c)
}

/// Checks what every student form needs: same origin, CSRF, a student.
fn student_form(ctx: &Ctx, headers: &HeaderMap, csrf: &str) -> ApiResult<StudentId> {
    same_origin(headers)?;
    let (student, _) = ctx.student()?;
    ctx.check_csrf(csrf)?;
    Ok(student)
}

/// A section number sent as form text: a bad value is a clear 400, not a
/// framework rejection.
fn section_number(text: &str) -> ApiResult<u32> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::Invalid("section must be a section number".into()))
}

/// `weekday:start:end` triples for the client-side conflict check.
fn slots_of(meetings: &[Meeting]) -> String {
    meetings
        .iter()
        .map(|m| format!("{}:{}:{}", m.weekday, m.start_min, m.end_min))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A section's course title in the reader's language.
fn title(s: &Section, lang: Lang) -> String {
    match lang {
        Lang::Ko => s.title_ko.clone(),
        Lang::En => s.title_en.clone(),
    }
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

/// Sections for the unit tests of the cart and timetable.
#[cfg(test)]
mod tests_support {
    use crate::catalog::{Seats, Section};
    use enrollment::rules::Meeting;
    use std::sync::Arc;

    pub fn sec(id: u32, course: u32, credits: u8, meetings: Vec<Meeting>) -> Arc<Section> {
        let mut s = crate::catalog::tests_support::section();
        s.id = id;
        s.course_id = course;
        s.credits = credits;
        s.meetings = meetings;
        Arc::new(s)
    }

    pub fn m(weekday: u8, start_min: u16, end_min: u16) -> Meeting {
        Meeting {
            weekday,
            start_min,
            end_min,
        }
    }

    pub fn open() -> Seats {
        Seats {
            capacity: 10,
            enrolled: 0,
            closed: false,
        }
    }
}
