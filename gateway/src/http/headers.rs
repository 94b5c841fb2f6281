//! The response edge: security headers on every answer, and the
//! framework's own rejections reshaped into the API's JSON error.
//!
//! This layer sits outside every other, so it also sees what no handler
//! wrote: unknown routes (404), wrong methods (405), bodies over the limit
//! (413) and extractor rejections that axum answers in plain text. Those
//! become `{"code", "message"}` bodies like every [`ApiError`], so a client
//! branches on one shape whatever went wrong.
//!
//! Headers are only added when a handler did not set its own (static
//! assets choose their caching). The Content-Security-Policy allows no
//! inline script or style: pages load `/static/app.js` and
//! `/static/app.css` only. `Strict-Transport-Security` is sent only when
//! the gateway is served over TLS (`SLUICE_SECURE_COOKIES`), since a
//! browser that saw it over plain HTTP on a developer machine would refuse
//! that host's plain HTTP for a year.
//!
//! Answers hyper gives before any request reaches the router (431 for a
//! header section over its limit, 400 for a request line it cannot parse)
//! carry none of this; they have no body worth protecting.

use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// No inline script or style, no plug-ins, no framing, forms post home.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// A year; no `includeSubDomains`, which would bind the university's
/// other hosts to a choice made here.
const HSTS: &str = "max-age=31536000";

/// Framework rejection texts longer than this are replaced, not quoted.
const REJECTION_TEXT_LIMIT: usize = 512;

/// No route reads a body larger than this (the CSV import is the largest).
const LARGEST_BODY: u64 = super::extract::IMPORT_BODY_LIMIT as u64;

/// The body length a request declares, if it declares a readable one.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Adds the security headers and reshapes plain-text error answers.
pub async fn edge(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let method = req.method().clone();
    // A body no route would read is refused before anyone waits for it:
    // body limits count bytes as they arrive, so a client that declares a
    // huge length and then stalls would otherwise hold the request until
    // its timeout.
    let response = if declared_length(req.headers()).is_some_and(|n| n > LARGEST_BODY) {
        ApiError::TooLarge.into_response()
    } else {
        next.run(req).await
    };
    let mut response = reshape_rejection(response).await;
    secure(response.headers_mut(), app.config.secure_cookies);
    super::metrics::record_request(
        route.as_ref().map(|r| r.as_str()),
        &method,
        response.status().as_u16(),
        started,
    );
    response
}

/// Sets every header a handler left unset.
///
/// The values are built once, at compile time: `from_static` checks every
/// byte, and the policy is long; a clone of a static value copies no bytes.
/// This runs on every answer, status polls included.
pub(crate) fn secure(headers: &mut HeaderMap, tls: bool) {
    const CSP: HeaderValue = HeaderValue::from_static(CONTENT_SECURITY_POLICY);
    const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
    const REFERRER: HeaderValue = HeaderValue::from_static("strict-origin-when-cross-origin");
    const DENY: HeaderValue = HeaderValue::from_static("DENY");
    // Answers carry tokens, passes, CSRF values and personal pages: no
    // browser or proxy may keep them unless the handler said otherwise.
    const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
    const STRICT: HeaderValue = HeaderValue::from_static(HSTS);
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, NOSNIFF),
        (header::REFERRER_POLICY, REFERRER),
        (header::X_FRAME_OPTIONS, DENY),
        (header::CACHE_CONTROL, NO_STORE),
    ];
    for (name, value) in defaults {
        headers.entry(name).or_insert(value);
    }
    if tls {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(STRICT);
    }
}

/// The headers of a JSON answer that sets none of its own: its type and
/// every header [`secure`] would add, made once per TLS setting. A status
/// poll's answer starts from a clone of this (two allocations) instead of
/// taking the headers one by one (a hash and a probe each, and the map
/// growing twice): those were 7 % of a poll.
pub(crate) fn json_answer_headers(tls: bool) -> HeaderMap {
    fn build(tls: bool) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(12);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        secure(&mut headers, tls);
        headers
    }
    static PLAIN: std::sync::LazyLock<HeaderMap> = std::sync::LazyLock::new(|| build(false));
    static TLS: std::sync::LazyLock<HeaderMap> = std::sync::LazyLock::new(|| build(true));
    if tls {
        TLS.clone()
    } else {
        PLAIN.clone()
    }
}

/// [`json_answer_headers`] as the lines of an HTTP/1.1 head (each
/// `name: value\r\n`), made once per TLS setting, for answers written
/// without a header map ([`super::lane`]).
pub(crate) fn json_answer_head(tls: bool) -> &'static [u8] {
    fn build(tls: bool) -> Vec<u8> {
        let mut head = Vec::new();
        for (name, value) in &json_answer_headers(tls) {
            head.extend_from_slice(name.as_str().as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        head
    }
    static PLAIN: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| build(false));
    static TLS: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| build(true));
    if tls {
        &TLS
    } else {
        &PLAIN
    }
}

/// Whether an error answer is already ours: JSON from [`ApiError`], or an
/// HTML page from the page layer.
fn is_shaped(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"))
}

/// Turns an error answer written by the framework (empty or plain text)
/// into the JSON error body, keeping its status and headers such as
/// `Allow`.
async fn reshape_rejection(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_shaped(response.headers()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, REJECTION_TEXT_LIMIT)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .filter(|t| !t.trim().is_empty());
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        StatusCode::METHOD_NOT_ALLOWED => {
            return reshaped(
                parts,
                "method_not_allowed",
                "this method is not allowed here",
            );
        }
        s if s.is_client_error() => {
            ApiError::Invalid(text.unwrap_or_else(|| "the request is malformed".to_string()))
        }
        // Readiness answers a plain 503 while a dependency is down: an
        // expected state, reported as such and not logged as a failure.
        StatusCode::SERVICE_UNAVAILABLE => {
            return reshaped(parts, "unavailable", "not ready; try again shortly");
        }
        // A 5xx without our body: log-worthy, but its text stays inside.
        _ => {
            tracing::error!(status = status.as_u16(), "unshaped server error");
            return reshaped(parts, "internal", "internal error");
        }
    };
    let shaped = error.into_response();
    // Keep the framework's status (422 stays 422) and its headers.
    let (ours, body) = shaped.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(ours.headers);
    Response::from_parts(parts, body)
}

/// A JSON error body for statuses [`ApiError`] has no variant for.
fn reshaped(
    mut parts: axum::http::response::Parts,
    code: &'static str,
    message: &'static str,
) -> Response {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_headers_win_and_hsts_follows_tls() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        secure(&mut h, false);
        assert_eq!(h[header::CACHE_CONTROL], "public, max-age=300");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert!(!h.contains_key(header::STRICT_TRANSPORT_SECURITY));
        let mut h = HeaderMap::new();
        secure(&mut h, true);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::STRICT_TRANSPORT_SECURITY], HSTS);
    }

    #[test]
    fn policy_allows_no_inline_code() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-eval"));
        assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
    }

    #[tokio::test]
    async fn plain_rejections_become_json_with_their_status() {
        let plain = (StatusCode::UNPROCESSABLE_ENTITY, "Failed to deserialize").into_response();
        let shaped = reshape_rejection(plain).await;
        assert_eq!(shaped.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(is_shaped(shaped.headers()));
        let body = axum::body::to_bytes(shaped.into_body(), 4096)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "invalid_request");

        let mut empty = StatusCode::METHOD_NOT_ALLOWED.into_response();
        empty
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        let shaped = reshape_rejection(empty).await;
        assert_eq!(shaped.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(shaped.headers()[header::ALLOW], "GET,HEAD");
        let body = axum::body::to_bytes(shaped.into_body(), 4096)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).contains("method_not_allowed"));
    }
}
