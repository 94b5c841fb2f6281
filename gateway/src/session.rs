//! Login sessions for students and admins: a signed, expiring cookie that
//! is the whole session (no server-side state, so any gateway pod accepts
//! it), and the CSRF value forms must echo.
//!
//! - [`issue`] signs a session cookie (`sluice_session`: HttpOnly,
//!   SameSite=Lax, Secure behind TLS) for whoever signed in; the JSON API's
//!   `/api/session` ([`crate::http::api::session`]) and the login page use it.
//! - [`StudentSession`] and [`AdminSession`] are extractors: a handler that
//!   takes one can only run for that kind of user. [`AdminSession::require`]
//!   checks roles.
//! - [`SessionClaims::csrf_matches`](waitroom::SessionClaims::csrf_matches)
//!   checks a submitted form's `csrf` field against the session's value.
//!
//! Passwords are checked with argon2 on the blocking pool behind a bound
//! (see [`crate::auth::Passwords`]); a session makes that cost once per
//! login instead of once per request.
//!
//! A student's session is trusted as signed: students are many, and the
//! waiting room must not read the database per request. An admin's is
//! checked against the `admins` row ([`current_checked`], cached for
//! [`ADMIN_CHECK_TTL`]): a demotion takes effect within seconds, a disabled
//! admin's sessions stop working, and signing out revokes every session the
//! admin had (`admins.sessions_valid_after_ms`), not only this cookie.

use crate::auth::{self, Passwords};
use crate::db::accounts::{self, AdminStanding};
use crate::db::MySqlStore;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use enrollment::StudentId;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use waitroom::{SessionClaims, Subject};

/// The session cookie.
pub const SESSION_COOKIE: &str = "sluice_session";

/// How long a login lasts.
pub const SESSION_TTL_MS: u64 = 8 * 3600 * 1000;

/// Admin roles, from least to most powerful where that applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads dashboards and reports.
    Viewer,
    /// Operations: dead letters, health; no registration changes.
    Ops,
    /// Runs registration: rounds, rates, catalog, imports.
    Registrar,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "ops" => Some(Role::Ops),
            "registrar" => Some(Role::Registrar),
            _ => None,
        }
    }
}

/// The session cookie for a freshly signed session.
pub fn cookie(app: &AppState, token: String) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, token))
        .path("/")
        .http_only(true)
        // Lax, not Strict: a student following a link from the university
        // portal should arrive signed in. Writes are protected by the CSRF
        // value and the Origin check, not by SameSite alone.
        .same_site(SameSite::Lax)
        .secure(app.config.secure_cookies)
        .build()
}

/// Signs a session for `subject` and returns (claims, cookie).
pub fn issue(app: &AppState, subject: Subject) -> (SessionClaims, Cookie<'static>) {
    let claims = SessionClaims::new(subject, crate::clock::now_ms(), SESSION_TTL_MS);
    let token = app.keyring.sign_session(&claims);
    (claims, cookie(app, token))
}

/// The current session, if the cookie holds a validly signed one. Admin
/// sessions must also pass [`current_checked`]; this alone is for
/// student-only paths.
pub fn current(app: &AppState, jar: &CookieJar) -> Option<SessionClaims> {
    let token = jar.get(SESSION_COOKIE)?.value();
    app.keyring
        .verify_session(token, crate::clock::now_ms())
        .ok()
}

/// How long an admin's row, once read, vouches for their sessions.
pub const ADMIN_CHECK_TTL: Duration = Duration::from_secs(3);

/// Admins remembered at most; beyond, the cache starts over (a handful of
/// admins is normal, so this only bounds the unexpected).
const ADMIN_CHECK_CAP: usize = 10_000;

/// Recently read admin rows, by admin id.
#[derive(Debug, Default)]
pub struct AdminChecks {
    /// `None`: no such admin, or disabled.
    seen: dashmap::DashMap<u32, (Instant, Option<AdminStanding>)>,
}

impl AdminChecks {
    async fn row(&self, store: &MySqlStore, id: u32) -> ApiResult<Option<AdminStanding>> {
        if let Some(hit) = self.seen.get(&id) {
            if hit.0.elapsed() < ADMIN_CHECK_TTL {
                return Ok(hit.1.clone());
            }
        }
        let row = accounts::admin_standing(store, id).await?;
        if self.seen.len() >= ADMIN_CHECK_CAP {
            self.seen.clear();
        }
        self.seen.insert(id, (Instant::now(), row.clone()));
        Ok(row)
    }

    /// Drops what this gateway remembers of admin `id` (after a sign-out).
    pub fn forget(&self, id: u32) {
        self.seen.remove(&id);
    }
}

/// The current session with an admin's checked against the database: none
/// when the admin is gone, disabled or signed out since it was issued; the
/// role in it is the one the admin has now.
pub async fn current_checked(app: &AppState, jar: &CookieJar) -> ApiResult<Option<SessionClaims>> {
    let Some(mut claims) = current(app, jar) else {
        return Ok(None);
    };
    let Subject::Admin { id, .. } = claims.subject else {
        return Ok(Some(claims));
    };
    match app.admin_checks.row(&app.store, id).await? {
        Some(row) if claims.iat >= row.valid_after_ms => {
            claims.subject = Subject::Admin {
                id,
                username: row.username,
                role: row.role,
            };
            Ok(Some(claims))
        }
        _ => Ok(None),
    }
}

/// Signs out server-side where there is state to change: an admin's
/// sessions issued until now stop working on every gateway (here at once,
/// elsewhere within [`ADMIN_CHECK_TTL`]).
pub async fn revoke(app: &AppState, claims: &SessionClaims) -> ApiResult<()> {
    let Subject::Admin { id, .. } = claims.subject else {
        return Ok(());
    };
    accounts::revoke_admin_sessions(&app.store, id, crate::clock::now_ms()).await?;
    app.admin_checks.forget(id);
    Ok(())
}

/// A signed-in student.
#[derive(Debug, Clone)]
pub struct StudentSession {
    pub id: StudentId,
    pub class_year: u8,
    pub claims: SessionClaims,
}

impl StudentSession {
    /// The student as the waiting room needs them.
    pub fn student(&self) -> auth::Student {
        auth::Student {
            id: self.id,
            class_year: self.class_year,
        }
    }

    /// The student of a session, if it is a student's.
    pub fn from_claims(claims: SessionClaims) -> Option<StudentSession> {
        match claims.subject {
            Subject::Student { id, class_year } => Some(StudentSession {
                id,
                class_year,
                claims,
            }),
            Subject::Admin { .. } => None,
        }
    }
}

impl FromRequestParts<AppState> for StudentSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> ApiResult<Self> {
        let jar = CookieJar::from_headers(&parts.headers);
        let claims = current(app, &jar).ok_or(ApiError::SignInRequired)?;
        StudentSession::from_claims(claims).ok_or(ApiError::Forbidden)
    }
}

/// A signed-in admin of any role.
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub id: u32,
    pub username: String,
    pub role: Role,
    pub claims: SessionClaims,
}

impl AdminSession {
    /// Refuses unless the admin has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> ApiResult<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> ApiResult<Self> {
        let jar = CookieJar::from_headers(&parts.headers);
        let claims = current_checked(app, &jar)
            .await?
            .ok_or(ApiError::SignInRequired)?;
        match &claims.subject {
            Subject::Admin { id, username, role } => Ok(AdminSession {
                id: *id,
                username: username.clone(),
                role: Role::parse(role).ok_or(ApiError::Forbidden)?,
                claims: claims.clone(),
            }),
            Subject::Student { .. } => Err(ApiError::Forbidden),
        }
    }
}

/// Checks an admin's username and password; any role.
pub async fn admin_login(
    store: &MySqlStore,
    passwords: &Passwords,
    username: &str,
    password: SecretString,
) -> ApiResult<Subject> {
    let admin = auth::admin(store, passwords, username, password).await?;
    Ok(Subject::Admin {
        id: admin.id,
        username: admin.username,
        role: admin.role,
    })
}

/// `POST /api/session` body: `student_number` or `username`, with
/// `password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub student_number: Option<String>,
    pub username: Option<String>,
    pub password: String,
}

/// Signs in whoever the credentials name.
pub async fn login(app: &AppState, body: LoginBody) -> ApiResult<Subject> {
    let password = SecretString::from(body.password);
    match (body.student_number, body.username) {
        (Some(number), None) => {
            let s = auth::student(&app.store, &app.passwords, number.trim(), password).await?;
            Ok(Subject::Student {
                id: s.id,
                class_year: s.class_year,
            })
        }
        (None, Some(username)) => {
            let subject =
                admin_login(&app.store, &app.admin_passwords, username.trim(), password).await?;
            if let Subject::Admin { id, .. } = &subject {
                // The row was just read: what this gateway remembered of it
                // (say, "disabled" until a minute ago) is out of date.
                app.admin_checks.forget(*id);
            }
            Ok(subject)
        }
        _ => Err(ApiError::Invalid(
            "give either student_number or username, with password".into(),
        )),
    }
}

/// Checks the CSRF value of a cookie-authenticated write: the `X-CSRF-Token`
/// header (JSON clients) or the form's `csrf` field.
pub fn check_csrf(
    claims: &SessionClaims,
    headers: &HeaderMap,
    form_value: Option<&str>,
) -> ApiResult<()> {
    let submitted =
        form_value.or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()));
    match submitted {
        Some(v) if claims.csrf_matches(v) => Ok(()),
        _ => Err(ApiError::Csrf),
    }
}
