//! The error answers an operation may give, one type per status, so an
//! annotation lists them like `responses((status = 200, body = Cart),
//! Unauthorized, TooMany, Internal)`. Each carries the one error body
//! ([`crate::error::ApiErrorBody`]) and, where the gateway sends it,
//! `Retry-After`.

use std::collections::BTreeMap;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::IntoResponses;

/// The error body's schema name in the document.
pub const ERROR_BODY: &str = "ApiErrorBody";

/// One error response: the JSON error body, with `Retry-After` when the
/// gateway tells the client when to come back.
pub fn error(description: &str, retry_after: bool) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ERROR_BODY)))
            .build(),
    );
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                )
                .description(Some("Seconds to wait before trying again."))
                .build(),
        );
    }
    response.build()
}

macro_rules! error_response {
    ($(#[$doc:meta])* $name:ident, $status:literal, $retry:literal, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                BTreeMap::from([(
                    $status.to_string(),
                    RefOr::T(error($description, $retry)),
                )])
            }
        }
    };
}

error_response!(
    /// 400: the request is malformed (`invalid_request`).
    BadRequest, "400", false,
    "The request is malformed (`invalid_request`); `message` says what to change."
);
error_response!(
    /// 401: credentials, a session, a token or a pass are missing or wrong.
    Unauthorized, "401", false,
    "Not signed in, or the credentials, token or pass are missing, wrong or expired \
     (`sign_in_required`, `bad_credentials`, `bad_token`, `token_expired`, `pass_required`)."
);
error_response!(
    /// 403: signed in, but not allowed.
    Forbidden, "403", false,
    "Not allowed: another kind of account, a missing or wrong CSRF value, another \
     site's page, or an admission pass that is used up \
     (`forbidden`, `csrf`, `not_eligible`, `pass_exhausted`)."
);
error_response!(
    /// 404: no such thing.
    NotFound, "404", false,
    "No such round, section or command (`not_found`)."
);
error_response!(
    /// 409: the request conflicts with the state of a round or a cart.
    Conflict, "409", false,
    "The request conflicts with the current state (`conflict`, `round_not_open`)."
);
error_response!(
    /// 413: the body is larger than the gateway reads.
    TooLarge, "413", false,
    "The request body is too large (`too_large`)."
);
error_response!(
    /// 415: the body is not JSON.
    UnsupportedMediaType, "415", false,
    "The body must be sent as application/json (`unsupported_media_type`)."
);
error_response!(
    /// 429: a rate limit or the sign-in throttle.
    TooMany, "429", true,
    "Too many requests from this student or address, or too many failed sign-ins \
     for this account (`rate_limited`, `sign_in_throttled`)."
);
error_response!(
    /// 500: a bug or bad data, logged by the gateway.
    Internal, "500", false,
    "An unexpected failure, logged by the gateway (`internal`)."
);
error_response!(
    /// 503: overloaded, or a dependency is down; waiting cures it.
    Unavailable, "503", true,
    "The gateway is busy or a dependency is down; nothing was lost, retry after \
     `Retry-After` (`overloaded`, `unavailable`)."
);

/// 400, 413 and 415: what reading a JSON body can refuse.
#[derive(Debug)]
pub struct JsonBodyErrors;

impl IntoResponses for JsonBodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = BadRequest::responses();
        all.extend(TooLarge::responses());
        all.extend(UnsupportedMediaType::responses());
        all
    }
}
