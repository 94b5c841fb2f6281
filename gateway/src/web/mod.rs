//! What every server-rendered page shares: who is asking and in which
//! language ([`Ctx`]), the layout's data ([`Chrome`]) and rendering; error
//! pages (`errors`), forms (`forms`: CSRF before sign-in, validation
//! messages, local times) and the embedded static assets (`assets`).
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
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use enrollment::StudentId;
use waitroom::{SessionClaims, Subject};

mod assets;
mod errors;
mod forms;

pub use assets::asset;
pub use errors::html_errors;
pub use forms::{anon_csrf, check_anon_csrf, local_input, parse_local, FieldErrors};

/// The cookie carrying the CSRF value of forms shown before signing in
/// (double-submit: the form field must equal the cookie).
pub const ANON_CSRF_COOKIE: &str = "sluice_csrf";

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
    fn encodes_query_values() {
        assert_eq!(urlencode("/courses?q=a b"), "/courses%3Fq%3Da%20b");
    }
}
