//! The API's OpenAPI 3.1 document, generated from the handlers'
//! `#[utoipa::path]` annotations and the types they answer with, served
//! at `GET /api/openapi.json`. `docs/api.md` says how to annotate a new
//! route; the document test checks that every served route is in it.

pub mod responses;
pub mod schemas;

use super::{
    admin, alternates, cart, catalog, commands, enrollments, queue, rehearsals, results, session,
    timetable, waitlist,
};
use axum::http::header;
use axum::response::IntoResponse;
use std::sync::LazyLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

/// The document's description of the API as a whole.
const DESCRIPTION: &str = "Sluice's JSON API for apps: sign in, the waiting room, \
enrollment commands, the catalog, the cart, enrollments, the timetable and results, \
and the registrar's round controls. Every error answers with the same body \
(`ApiErrorBody`: a stable `code` and a `message`). Cookie-authenticated writes \
need the session's `csrf` value in `X-CSRF-Token` and a same-origin `Origin` (or none).";

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Sluice API", description = DESCRIPTION, license(name = "Apache-2.0")),
    paths(
        document,
        session::create,
        session::show,
        session::destroy,
        queue::round,
        queue::join,
        queue::status,
        queue::leave,
        queue::cart::show,
        queue::cart::set,
        commands::enroll,
        commands::drop,
        commands::swap,
        commands::outcome,
        waitlist::places,
        waitlist::leave,
        alternates::set,
        catalog::search,
        cart::show,
        cart::add,
        cart::remove,
        enrollments::list,
        timetable::show,
        results::list,
        admin::show,
        admin::change,
        rehearsals::start,
        rehearsals::report,
    ),
    components(schemas(crate::error::ApiErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "session", description = "Signing in and out"),
        (name = "queue", description = "The waiting room"),
        (name = "commands", description = "Enrollment commands and their outcomes"),
        (name = "student", description = "The signed-in student's catalog, cart, enrollments, timetable and results"),
        (name = "admin", description = "The registrar's round controls"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// The credentials the gateway accepts, as the document names them.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let key = |kind: fn(ApiKeyValue) -> ApiKey, name: &str, what: &str| {
            SecurityScheme::ApiKey(kind(ApiKeyValue::with_description(name, what)))
        };
        components.add_security_scheme(
            "session",
            key(
                ApiKey::Cookie,
                crate::session::SESSION_COOKIE,
                "The login session set by `POST /api/session`.",
            ),
        );
        components.add_security_scheme(
            "queue_token",
            key(
                ApiKey::Header,
                "X-Queue-Token",
                "The queue token from a join or the last status (also sent as the `sluice_queue` cookie).",
            ),
        );
        components.add_security_scheme(
            "queue_cookie",
            key(
                ApiKey::Cookie,
                queue::QUEUE_COOKIE,
                "The queue token as a cookie.",
            ),
        );
        components.add_security_scheme(
            "pass",
            key(
                ApiKey::Header,
                "X-Pass",
                "The admission pass from the status once admitted (also sent as the `sluice_pass` cookie).",
            ),
        );
        components.add_security_scheme(
            "pass_cookie",
            key(
                ApiKey::Cookie,
                queue::PASS_COOKIE,
                "The admission pass as a cookie.",
            ),
        );
        components.add_security_scheme(
            "registrar_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("A registrar's username and password, for scripts."))
                    .build(),
            ),
        );
    }
}

/// The document, built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
});

/// The document as a value (tests and tools).
pub fn spec() -> Document {
    ApiDoc::openapi()
}

/// This API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object),
        responses::Unavailable,
    )
)]
pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}
