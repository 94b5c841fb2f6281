//! Where a queue token and a pass travel: cookies for browsers, headers
//! for apps, read in place on the hot status path.

use super::{Phase, Status};
use crate::AppState;
use axum::http::{HeaderMap, HeaderName};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

/// Cookie holding the queue token.
pub const QUEUE_COOKIE: &str = "sluice_queue";
/// Cookie holding the admission pass.
pub const PASS_COOKIE: &str = "sluice_pass";
/// Header alternatives for apps.
pub const QUEUE_HEADER: &str = "x-queue-token";
pub const PASS_HEADER: &str = "x-pass";

/// [`QUEUE_HEADER`] as a header name, made once: looking a header up by a
/// string parses and checks the name on every call.
static QUEUE_HEADER_NAME: HeaderName = HeaderName::from_static(QUEUE_HEADER);

/// Sets the queue token and pass cookies from a status.
pub fn with_cookies(app: &AppState, mut jar: CookieJar, status: &Status) -> CookieJar {
    if let Some(token) = &status.token {
        jar = jar.add(cookie(app, QUEUE_COOKIE, token.clone()));
    }
    if let Some(pass) = &status.pass {
        jar = jar.add(cookie(app, PASS_COOKIE, pass.clone()));
    }
    if matches!(
        status.state,
        Phase::Skipped | Phase::Left | Phase::Expired | Phase::Closed
    ) {
        jar = jar.remove(Cookie::build(QUEUE_COOKIE).path("/"));
    }
    jar
}

/// Session cookies: the token inside carries its own expiry, which is what
/// counts; the browser forgets the cookie when it closes.
fn cookie(app: &AppState, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(app.config.secure_cookies)
        .build()
}

/// The `x-queue-token` header, read in place: the status poll is the
/// hottest route, and taking the whole `HeaderMap` would clone every header
/// of every poll.
#[derive(Debug)]
pub struct QueueTokenHeader(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for QueueTokenHeader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(QueueTokenHeader(
            header_token(&parts.headers).map(str::to_string),
        ))
    }
}

/// The queue token from the `x-queue-token` header alone, borrowed.
pub fn header_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(&QUEUE_HEADER_NAME)
        .and_then(|v| v.to_str().ok())
}

/// The queue token from the header or the cookie, borrowed.
pub fn queue_token_in<'a>(headers: &'a HeaderMap, jar: &'a CookieJar) -> Option<&'a str> {
    token_or_cookie(header_token(headers), jar)
}

/// The queue token from the header's value, else from the cookie.
pub fn token_or_cookie<'a>(header: Option<&'a str>, jar: &'a CookieJar) -> Option<&'a str> {
    header.or_else(|| jar.get(QUEUE_COOKIE).map(|c| c.value()))
}

/// The queue token from the header or the cookie.
pub fn queue_token(headers: &HeaderMap, jar: &CookieJar) -> Option<String> {
    queue_token_in(headers, jar).map(str::to_string)
}

/// The pass from the header or the cookie, and whether it came from a cookie.
pub fn pass_token(headers: &HeaderMap, jar: &CookieJar) -> Option<(String, bool)> {
    headers
        .get(PASS_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|v| (v.to_string(), false))
        .or_else(|| jar.get(PASS_COOKIE).map(|c| (c.value().to_string(), true)))
}
