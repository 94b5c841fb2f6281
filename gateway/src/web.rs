//! What every server-rendered page shares: who is asking and in which
//! language ([`Ctx`]), the layout's data ([`Chrome`]), rendering, error
//! pages, form validation messages, and the embedded static assets.
//!
//! Page handlers return [`ApiResult`] like the JSON API and use `?` freely:
//! the [`html_errors`] middleware turns an error answer on a page route into
//! an HTML page in the reader's language (or, for "please sign in", a
//! redirect to the login form), so one error type serves both surfaces.
//! Validation problems are not errors in that sense: handlers re-render the
//! form with a message next to each field ([`FieldErrors`]).

use crate::error::{ApiError, ApiResult};
use crate::i18n::{self, Lang};
use crate::session::{self, Role};
use crate::AppState;
use askama::Template;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use enrollment::StudentId;
use waitroom::{SessionClaims, Subject};

/// The cookie carrying the CSRF value of forms shown before signing in
/// (double-submit: the form field must equal the cookie).
pub const ANON_CSRF_COOKIE: &str = "sluice_csrf";

/// Error bodies are tiny JSON; anything bigger is not ours to rewrite.
const ERROR_BODY_LIMIT: usize = 4096;

/// Who is signed in, as the layout and handlers need it.
#[derive(Debug, Clone)]
pub enum Who {
    Anonymous,
    Student { id: StudentId, class_year: u8 },
    Admin { username: String, role: Role },
}

/// The request context of a page: language, session, time zone.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub chrome: Chrome,
    pub claims: Option<SessionClaims>,
}

/// The data the layout (`base.html`) reads.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub lang: Lang,
    pub who: Who,
    /// The session's CSRF value (empty when signed out).
    pub csrf: String,
    /// Path and query of this page without `lang`, for the switch link.
    pub here: String,
    pub tz: Tz,
    /// Which top-level section the page belongs to, for `aria-current`.
    pub section: &'static str,
}

impl Chrome {
    pub fn t(&self, ko: &'static str, en: &'static str) -> &'static str {
        self.lang.t(ko, en)
    }

    pub fn lang_code(&self) -> &'static str {
        self.lang.code()
    }

    pub fn switch_label(&self) -> &'static str {
        self.lang.switch_label()
    }

    /// This page in the other language.
    pub fn switch_href(&self) -> String {
        let sep = if self.here.contains('?') { '&' } else { '?' };
        format!("{}{sep}lang={}", self.here, self.lang.other().code())
    }

    pub fn is_student(&self) -> bool {
        matches!(self.who, Who::Student { .. })
    }

    pub fn is_admin(&self) -> bool {
        matches!(self.who, Who::Admin { .. })
    }

    pub fn signed_in(&self) -> bool {
        !matches!(self.who, Who::Anonymous)
    }

    /// Whether the admin may change things (registrar), not only look.
    pub fn can_edit(&self) -> bool {
        matches!(
            self.who,
            Who::Admin {
                role: Role::Registrar,
                ..
            }
        )
    }

    pub fn username(&self) -> &str {
        match &self.who {
            Who::Admin { username, .. } => username,
            _ => "",
        }
    }

    pub fn role_name(&self) -> &'static str {
        match &self.who {
            Who::Admin { role, .. } => match role {
                Role::Registrar => self.t("학사 담당", "registrar"),
                Role::Ops => self.t("운영", "ops"),
                Role::Viewer => self.t("열람 전용", "viewer (read-only)"),
            },
            _ => "",
        }
    }

    /// `aria-current` for a nav link of `section`.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }

    /// A time (epoch milliseconds) in the university's zone.
    pub fn at_ms(&self, ms: u64) -> String {
        i64::try_from(ms)
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .map(|t| self.fmt_utc(t))
            .unwrap_or_default()
    }

    /// A stored UTC `DATETIME` in the university's zone.
    pub fn at(&self, t: &NaiveDateTime) -> String {
        self.fmt_utc(t.and_utc())
    }

    /// An optional stored time, or a dash.
    pub fn at_opt(&self, t: &Option<NaiveDateTime>) -> String {
        t.as_ref().map_or_else(|| "–".to_string(), |t| self.at(t))
    }

    fn fmt_utc(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }

    /// The zone's name, shown next to time inputs.
    pub fn tz_name(&self) -> &'static str {
        self.tz.name()
    }
}

impl Ctx {
    pub fn lang(&self) -> Lang {
        self.chrome.lang
    }

    pub fn t(&self, ko: &'static str, en: &'static str) -> &'static str {
        self.chrome.lang.t(ko, en)
    }

    /// Marks the page's top-level section.
    pub fn in_section(mut self, section: &'static str) -> Ctx {
        self.chrome.section = section;
        self
    }

    /// The signed-in student, or "please sign in".
    pub fn student(&self) -> ApiResult<(StudentId, u8)> {
        match self.chrome.who {
            Who::Student { id, class_year } => Ok((id, class_year)),
            Who::Anonymous => Err(ApiError::SignInRequired),
            Who::Admin { .. } => Err(ApiError::Forbidden),
        }
    }

    /// The signed-in admin (any role), or a refusal.
    pub fn admin(&self) -> ApiResult<(String, Role)> {
        match &self.chrome.who {
            Who::Admin { username, role } => Ok((username.clone(), *role)),
            Who::Anonymous => Err(ApiError::SignInRequired),
            Who::Student { .. } => Err(ApiError::Forbidden),
        }
    }

    /// A registrar, for every change to registration.
    pub fn registrar(&self) -> ApiResult<String> {
        let (username, role) = self.admin()?;
        if role == Role::Registrar {
            Ok(username)
        } else {
            Err(ApiError::Forbidden)
        }
    }

    /// Checks a submitted form's CSRF value against the session.
    pub fn check_csrf(&self, submitted: &str) -> ApiResult<()> {
        match &self.claims {
            Some(claims) if claims.csrf_matches(submitted) => Ok(()),
            _ => Err(ApiError::Csrf),
        }
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let lang = Lang::of_request(i18n::query_lang(parts.uri.query()), &jar, &parts.headers);
        // Pages fail closed: an admin session that cannot be checked now
        // (database unreachable) is treated as signed out.
        let claims = match session::current_checked(app, &jar).await {
            Ok(c) => c,
            Err(_) => {
                session::current(app, &jar).filter(|c| matches!(c.subject, Subject::Student { .. }))
            }
        };
        let who = match claims.as_ref().map(|c| &c.subject) {
            Some(Subject::Student { id, class_year }) => Who::Student {
                id: *id,
                class_year: *class_year,
            },
            Some(Subject::Admin { username, role, .. }) => match Role::parse(role) {
                Some(role) => Who::Admin {
                    username: username.clone(),
                    role,
                },
                None => Who::Anonymous,
            },
            None => Who::Anonymous,
        };
        let query: Vec<&str> = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("lang="))
            .collect();
        let here = if query.is_empty() {
            parts.uri.path().to_string()
        } else {
            format!("{}?{}", parts.uri.path(), query.join("&"))
        };
        Ok(Ctx {
            chrome: Chrome {
                lang,
                csrf: claims.as_ref().map(|c| c.csrf.clone()).unwrap_or_default(),
                who,
                here,
                tz: app.config.time_zone,
                section: "",
            },
            claims,
        })
    }
}

/// Renders a template into a response.
pub fn render(page: impl Template, status: StatusCode) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => ApiError::Internal(anyhow::anyhow!("rendering a page: {e}")).into_response(),
    }
}

/// Renders with 200.
pub fn page(page: impl Template) -> ApiResult<Response> {
    Ok(render(page, StatusCode::OK))
}

/// The CSRF value for forms shown before signing in, creating the cookie
/// when missing.
pub fn anon_csrf(app: &AppState, jar: CookieJar) -> (CookieJar, String) {
    if let Some(c) = jar.get(ANON_CSRF_COOKIE) {
        let v = c.value().to_string();
        if v.len() >= 16 {
            return (jar, v);
        }
    }
    use base64::Engine;
    let bytes: [u8; 18] = rand::random();
    let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let cookie = Cookie::build((ANON_CSRF_COOKIE, value.clone()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(app.config.secure_cookies)
        .build();
    (jar.add(cookie), value)
}

/// Checks a pre-login form's CSRF field against its cookie, in constant time.
pub fn check_anon_csrf(jar: &CookieJar, submitted: &str) -> ApiResult<()> {
    use subtle::ConstantTimeEq;
    match jar.get(ANON_CSRF_COOKIE) {
        Some(c)
            if c.value().len() >= 16
                && bool::from(c.value().as_bytes().ct_eq(submitted.as_bytes())) =>
        {
            Ok(())
        }
        _ => Err(ApiError::Csrf),
    }
}

/// Validation messages keyed by form field, shown next to the field.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors {
    items: Vec<(&'static str, String)>,
}

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.items.push((field, message.into()));
    }

    /// The message for `field`, if any.
    pub fn of(&self, field: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn all(&self) -> &[(&'static str, String)] {
        &self.items
    }
}

/// Parses a university-local `datetime-local` value (`2026-11-21T09:00`).
pub fn parse_local(tz: Tz, s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .ok()?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// A UTC time as a `datetime-local` value in the university's zone.
pub fn local_input(tz: Tz, t: &NaiveDateTime) -> String {
    t.and_utc()
        .with_timezone(&tz)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

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

/// Remembers an explicit `?lang=` choice in a cookie.
pub async fn remember_lang(req: Request, next: Next) -> Response {
    let chosen = i18n::query_lang(req.uri().query()).and_then(Lang::parse);
    let mut response = next.run(req).await;
    if let Some(lang) = chosen {
        if let Ok(v) = HeaderValue::from_str(&lang.cookie().to_string()) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// Percent-encodes a value for a query string.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Only same-site paths may be a post-login destination (no open redirect).
pub fn safe_next(next: Option<&str>) -> Option<String> {
    let next = next?.trim();
    // Browsers drop tabs and newlines inside a URL, so `/\t/evil.example`
    // would become `//evil.example`: no control characters at all.
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    ok.then(|| next.to_string())
}

/// The embedded stylesheet and script: no build step, no CDN, and no inline
/// script anywhere, so a strict Content-Security-Policy can be added.
pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let (body, kind): (&'static str, &'static str) = match name.as_str() {
        "app.css" => (include_str!("../static/app.css"), "text/css; charset=utf-8"),
        "app.js" => (
            include_str!("../static/app.js"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_must_stay_on_this_site() {
        assert_eq!(safe_next(Some("/cart")), Some("/cart".into()));
        assert_eq!(safe_next(Some("//evil.example")), None);
        assert_eq!(safe_next(Some("https://evil.example")), None);
        assert_eq!(safe_next(Some("/\\evil")), None);
        assert_eq!(safe_next(Some("/\t/evil.example")), None);
        assert_eq!(safe_next(Some("/cart\r\nSet-Cookie: x=1")), None);
        assert_eq!(safe_next(None), None);
    }

    #[test]
    fn local_times_are_read_in_the_zone() {
        let t = parse_local(chrono_tz::Asia::Seoul, "2026-11-21T09:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-21T00:00:00+00:00");
        assert!(parse_local(chrono_tz::Asia::Seoul, "tomorrow").is_none());
        assert_eq!(
            local_input(chrono_tz::Asia::Seoul, &t.naive_utc()),
            "2026-11-21T09:00"
        );
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(urlencode("/courses?q=a b"), "/courses%3Fq%3Da%20b");
    }
}
