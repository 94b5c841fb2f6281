//! Error answers of page routes as pages in the reader's language (or, for
//! "please sign in", a redirect to the login form).

use super::{render, urlencode, Chrome, Ctx};
use crate::AppState;
use askama::Template;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// Error bodies are tiny JSON; anything bigger is not ours to rewrite.
const ERROR_BODY_LIMIT: usize = 4096;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    headline: &'static str,
    detail: String,
}

/// Turns error answers of page routes into pages: "sign in first" becomes
/// a redirect to the login form that comes back here afterwards; anything
/// else an HTML page with the status kept (and Retry-After kept).
pub async fn html_errors(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let ctx = match Ctx::from_request_parts(&mut parts, &app).await {
        Ok(ctx) => ctx,
        Err(never) => match never {},
    };
    let is_get = parts.method == axum::http::Method::GET;
    let response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let is_json = kind.starts_with(b"application/json");
    // The framework's own rejections (a path segment that is not a
    // number, a form that cannot be decoded) come as plain text.
    let is_text = kind.starts_with(b"text/plain");
    if !(status.is_client_error() || status.is_server_error()) || !(is_json || is_text) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, ERROR_BODY_LIMIT).await else {
        return (parts.status, "error").into_response();
    };
    let (code, message) = if is_json {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                Some((
                    v.get("code")?.as_str()?.to_string(),
                    v.get("message")?.as_str()?.to_string(),
                ))
            })
            .unwrap_or_default()
    } else {
        (
            "invalid_request".to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    };
    if code == "sign_in_required" {
        let next = if is_get {
            ctx.chrome.here.clone()
        } else {
            "/".to_string()
        };
        let target = format!("/login?next={}", urlencode(&next));
        return Redirect::to(&target).into_response();
    }
    let c = &ctx.chrome;
    let (headline, detail) = match code.as_str() {
        "forbidden" => (
            c.t("접근 권한이 없습니다", "You may not open this page"),
            c.t(
                "이 페이지는 권한이 있는 계정만 볼 수 있습니다. 다른 계정으로 로그인하세요.",
                "This page needs an account with the right role. Sign in with another account.",
            )
            .to_string(),
        ),
        "csrf" => (
            c.t("요청을 처리하지 않았습니다", "The form was not accepted"),
            c.t(
                "페이지가 오래되었거나 다른 사이트에서 보낸 요청입니다. 페이지를 새로 고친 뒤 다시 시도하세요.",
                "The page was stale or the request came from another site. Reload the page and try again.",
            )
            .to_string(),
        ),
        "not_found" => (
            c.t("찾을 수 없습니다", "Not found"),
            c.t("주소를 확인하세요.", "Check the address.").to_string(),
        ),
        "pass_required" | "bad_token" | "token_expired" => (
            c.t("입장권이 필요합니다", "An admission pass is needed"),
            c.t(
                "대기열에서 입장한 뒤에 신청할 수 있습니다.",
                "Wait in the queue until you are admitted, then register.",
            )
            .to_string(),
        ),
        "round_not_open" => (
            c.t("지금은 신청 기간이 아닙니다", "Registration is not open"),
            message,
        ),
        "sign_in_throttled" => (
            c.t("잠시 후 다시 로그인하세요", "Please wait before signing in again"),
            c.t(
                "이 계정에 잘못된 비밀번호가 여러 번 입력되었습니다. 잠시 후 다시 시도하세요.",
                "This account had several wrong passwords in a row. Try again in a moment.",
            )
            .to_string(),
        ),
        "rate_limited" | "overloaded" | "unavailable" => (
            c.t(
                "잠시 후 다시 시도하세요",
                "Please try again in a moment",
            ),
            c.t(
                "요청이 많아 처리하지 못했습니다. 장바구니와 대기 순서는 그대로입니다.",
                "Too many requests right now. Your cart and your place are kept.",
            )
            .to_string(),
        ),
        "internal" => (
            c.t("문제가 발생했습니다", "Something went wrong"),
            c.t(
                "잠시 후 다시 시도하세요. 문제가 계속되면 학사지원팀에 문의하세요.",
                "Try again shortly. If it keeps happening, contact the registrar.",
            )
            .to_string(),
        ),
        _ => (c.t("요청을 처리할 수 없습니다", "The request was not valid"), message),
    };
    let mut out = render(
        ErrorPage {
            chrome: ctx.chrome.clone(),
            status: parts.status.as_u16(),
            headline,
            detail,
        },
        parts.status,
    );
    if let Some(after) = parts.headers.get(header::RETRY_AFTER) {
        out.headers_mut().insert(header::RETRY_AFTER, after.clone());
    }
    out
}
