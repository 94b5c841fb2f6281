//! The JSON API: sign-in sessions, the queue, enrollment commands, the
//! student's waitlists and the
//! registrar's round controls. Thin handlers over [`crate::db`] and the
//! room snapshot.

pub mod admin;
pub mod commands;
pub mod queue;
pub mod rehearsals;
pub mod session;
pub mod waitlist;

use crate::AppState;
use axum::routing::{get, post};
use axum::Router;

/// Every JSON API route.
pub fn router() -> Router<AppState> {
    Router::new()
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
        .route("/api/enroll", post(commands::enroll))
        .route("/api/drop", post(commands::drop))
        .route("/api/swap", post(commands::swap))
        .route("/api/commands/{id}", get(commands::outcome))
        .route("/api/waitlist", get(waitlist::places))
        .route("/api/waitlist/leave", post(waitlist::leave))
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
