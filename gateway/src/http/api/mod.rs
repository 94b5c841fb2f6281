//! The JSON API: sign-in sessions, the queue, enrollment commands and the
//! registrar's round controls. Thin handlers over [`crate::db`] and the
//! room snapshot.

pub mod admin;
pub mod cart;
pub mod commands;
pub mod queue;
pub mod session;

use crate::AppState;
use axum::routing::{get, post, put};
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
        .route("/api/queue/cart", get(queue::cart::show))
        .route("/api/queue/auto-send", put(queue::cart::set))
        .route("/api/cart/alternates", put(cart::set))
        .route("/api/enroll", post(commands::enroll))
        .route("/api/drop", post(commands::drop))
        .route("/api/commands/{id}", get(commands::outcome))
        .route(
            "/api/admin/rounds/{id}",
            get(admin::show).post(admin::change),
        )
}
