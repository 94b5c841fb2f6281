//! `/api/session`: sign in (`{"student_number", "password"}` or
//! `{"username", "password"}` for admins), see the session, sign out.

use crate::error::{ApiError, ApiResult};
use crate::http::api::openapi::responses::{
    Forbidden, Internal, JsonBodyErrors, TooMany, Unauthorized, Unavailable,
};
use crate::http::extract::{same_origin, ClientIp, JsonBody};
use crate::session::{current, current_checked, issue, login, revoke, LoginBody, SESSION_COOKIE};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Serialize;
use utoipa::ToSchema;
use waitroom::Subject;

/// What a signed-in client learns about its session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    #[schema(value_type = crate::http::api::openapi::schemas::SubjectDoc)]
    pub subject: Subject,
    /// Send back as the `csrf` form field or `X-CSRF-Token` header.
    pub csrf: String,
    pub expires_at_ms: u64,
}

/// `POST /api/session`: signs in a student (`student_number`) or an admin
/// (`username`) and sets the session cookie.
#[utoipa::path(
    post,
    path = "/api/session",
    tag = "session",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in; the `sluice_session` cookie is set", body = SessionInfo,
            headers(("Set-Cookie" = String, description = "The session cookie"))),
        JsonBodyErrors,
        Unauthorized,
        Forbidden,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn create(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    JsonBody(body): JsonBody<LoginBody>,
) -> ApiResult<(CookieJar, Json<SessionInfo>)> {
    same_origin(&headers)?;
    app.limits.check_ip(ip)?;
    let subject = login(&app, body).await?;
    let (claims, cookie) = issue(&app, subject);
    let info = SessionInfo {
        subject: claims.subject,
        csrf: claims.csrf,
        expires_at_ms: claims.exp,
    };
    Ok((jar.add(cookie), Json(info)))
}

/// `GET /api/session`
#[utoipa::path(
    get,
    path = "/api/session",
    tag = "session",
    security(("session" = [])),
    responses(
        (status = 200, description = "The current session", body = SessionInfo),
        Unauthorized,
        Internal,
        Unavailable,
    )
)]
pub async fn show(State(app): State<AppState>, jar: CookieJar) -> ApiResult<Json<SessionInfo>> {
    let claims = current_checked(&app, &jar)
        .await?
        .ok_or(ApiError::SignInRequired)?;
    Ok(Json(SessionInfo {
        subject: claims.subject,
        csrf: claims.csrf,
        expires_at_ms: claims.exp,
    }))
}

/// `DELETE /api/session`: signs out (an admin's every session).
#[utoipa::path(
    delete,
    path = "/api/session",
    tag = "session",
    security((), ("session" = [])),
    responses(
        (status = 200, description = "Signed out; the cookie is removed"),
        Forbidden,
        Internal,
        Unavailable,
    )
)]
pub async fn destroy(
    State(app): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
) -> ApiResult<CookieJar> {
    same_origin(&headers)?;
    if let Some(claims) = current(&app, &jar) {
        revoke(&app, &claims).await?;
    }
    Ok(jar.remove(Cookie::build(SESSION_COOKIE).path("/")))
}
