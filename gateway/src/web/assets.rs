//! The embedded static assets.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The embedded stylesheet and script: no build step, no CDN, and no inline
/// script anywhere, so a strict Content-Security-Policy can be added.
pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, kind): (&'static str, &'static str) = match name.as_str() {
        "app.css" => (
            include_str!("../../static/app.css"),
            "text/css; charset=utf-8",
        ),
        "app.js" => (
            include_str!("../../static/app.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            // Short: a deploy changes them, and they are tiny.
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        Body::from(body),
    )
        .into_response()
}
