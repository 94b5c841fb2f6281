//! Server-rendered pages (Korean and English, phones, no JavaScript
//! needed): the queue page, the student's pages and the registrar's.
//! Errors become HTML pages in the reader's language.

pub mod queue;
pub mod registrar;
pub mod student;

use crate::web;
use crate::AppState;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;

/// Every page route. Errors become HTML pages in the reader's language.
pub fn router(state: AppState) -> Router<AppState> {
    let import = Router::new()
        .route(
            "/admin/import",
            get(registrar::imports::import_form).post(registrar::imports::import),
        )
        .layer(DefaultBodyLimit::max(
            crate::http::extract::IMPORT_BODY_LIMIT,
        ));
    Router::new()
        .route("/", get(queue::index))
        .route("/rounds/{id}", get(queue::queue))
        .route("/rounds/{id}/join", post(queue::join))
        .route("/rounds/{id}/leave", post(queue::leave))
        .route("/rounds/{id}/auto-send", post(queue::auto_send))
        .route(
            "/login",
            get(student::login::form).post(student::login::login),
        )
        .route("/logout", post(student::login::logout))
        .route("/courses", get(student::courses::search))
        .route("/cart", get(student::cart::page))
        .route("/cart/add", post(student::cart::add))
        .route("/cart/remove", post(student::cart::remove))
        .route("/cart/waitlist", post(student::cart::waitlist_choice))
        .route("/waitlist/leave", post(student::commands::leave_waitlist))
        .route("/cart/alternates", post(student::cart::alternates))
        .route("/enroll", post(student::commands::enroll))
        .route("/drop", post(student::commands::drop))
        .route("/swap", post(student::commands::swap))
        .route("/results", get(student::results::page))
        .route("/timetable", get(student::timetable::page))
        .route("/admin", get(registrar::rounds::rounds))
        .route("/admin/rounds", post(registrar::rounds::create_round))
        .route("/admin/rounds/{id}", get(registrar::round::round))
        .route(
            "/admin/rounds/{id}/control",
            post(registrar::round::control),
        )
        .route(
            "/admin/rounds/{id}/schedule",
            post(registrar::round::schedule),
        )
        .route("/admin/rounds/{id}/live", get(registrar::round::live))
        .route(
            "/admin/rounds/{id}/rehearsal",
            post(registrar::rehearsals::set_flag),
        )
        .route("/admin/rehearsals", get(registrar::rehearsals::runs))
        .route("/admin/rehearsals/{id}", get(registrar::rehearsals::report))
        .route(
            "/admin/rounds/{id}/fairness",
            get(registrar::fairness::fairness),
        )
        .route(
            "/admin/rounds/{id}/outcomes.csv",
            get(registrar::exports::export_outcomes),
        )
        .route("/admin/students", get(registrar::students::student))
        .route(
            "/admin/courses",
            get(registrar::courses::courses).post(registrar::courses::create_course),
        )
        .route(
            "/admin/courses/{id}",
            get(registrar::courses::course).post(registrar::courses::update_course),
        )
        .route(
            "/admin/courses/{id}/sections",
            post(registrar::sections::create_section),
        )
        .route(
            "/admin/sections/{id}",
            post(registrar::sections::update_section),
        )
        .route(
            "/admin/export/enrollments.csv",
            get(registrar::exports::export_enrollments),
        )
        .merge(import)
        .route("/static/{name}", get(web::asset))
        .layer(middleware::from_fn(web::remember_lang))
        .layer(middleware::from_fn_with_state(state, web::html_errors))
}
