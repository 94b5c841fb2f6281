//! The JSON API: sign-in sessions, the queue, enrollment commands, the
//! student's catalog, cart, enrollments, timetable, results and
//! waitlists, and the registrar's round controls and rehearsal runs.
//! Thin handlers over [`crate::db`] and the
//! room snapshot.
//!
//! Every route is described by the OpenAPI document ([`openapi`], served
//! at `/api/openapi.json`). To add one: annotate the handler with
//! `#[utoipa::path(...)]`, list it in [`openapi::ApiDoc`]'s `paths(...)`,
//! and add the route below; the document test fails while a served route
//! is missing from the document (`docs/api.md`).

pub mod admin;
pub mod alternates;
pub mod cart;
pub mod catalog;
pub mod commands;
pub mod enrollments;
pub mod openapi;
pub mod queue;
pub mod rehearsals;
pub mod results;
pub mod session;
pub mod timetable;
pub mod waitlist;

use crate::AppState;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;

/// The API's routes, with the path of each kept so the document test can
/// ask the running gateway which methods every path serves.
#[derive(Debug, Default)]
pub struct Routes {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl Routes {
    /// Adds `path` like [`Router::route`], remembering the path.
    pub fn route(mut self, path: &'static str, method_router: MethodRouter<AppState>) -> Routes {
        if !self.paths.contains(&path) {
            self.paths.push(path);
        }
        self.router = self.router.route(path, method_router);
        self
    }
}

/// Every JSON API route.
pub fn routes() -> Routes {
    Routes::default()
        .route("/api/openapi.json", get(openapi::document))
        .route(
            "/api/session",
            post(session::create)
                .get(session::show)
                .delete(session::destroy),
        )
        .route("/api/rounds/{id}", get(queue::round))
        .route("/api/rounds/{id}/join", post(queue::join))
        .route("/api/queue/status", get(queue::status))
        .route("/api/queue/leave", post(queue::leave))
        .route("/api/queue/cart", get(queue::cart::show))
        .route("/api/queue/auto-send", put(queue::cart::set))
        .route("/api/cart/alternates", put(alternates::set))
        .route("/api/enroll", post(commands::enroll))
        .route("/api/drop", post(commands::drop))
        .route("/api/swap", post(commands::swap))
        .route("/api/commands/{id}", get(commands::outcome))
        .route("/api/waitlist", get(waitlist::places))
        .route("/api/waitlist/leave", post(waitlist::leave))
        .route("/api/catalog", get(catalog::search))
        .route("/api/cart", get(cart::show).post(cart::add))
        .route("/api/cart/{section}", delete(cart::remove))
        .route("/api/enrollments", get(enrollments::list))
        .route("/api/timetable", get(timetable::show))
        .route("/api/results", get(results::list))
        .route(
            "/api/admin/rounds/{id}",
            get(admin::show).post(admin::change),
        )
        .route("/api/admin/rehearsals", post(rehearsals::start))
        .route(
            "/api/admin/rehearsals/{id}/report",
            post(rehearsals::report),
        )
}

/// The router of every JSON API route.
pub fn router() -> Router<AppState> {
    routes().router
}

/// The path of every JSON API route, as routed (`{id}` for parameters).
pub fn paths() -> Vec<&'static str> {
    routes().paths
}
