//! Signing in and out: one form for students (student number) and staff
//! (username), and sign-out, which also forgets this browser's queue place
//! and pass.

use crate::error::{ApiError, ApiResult};
use crate::http::api::queue::{PASS_COOKIE, QUEUE_COOKIE};
use crate::http::extract::{same_origin, ClientIp};
use crate::i18n::student::sign_in_failed;
use crate::session::{self, LoginBody, SESSION_COOKIE};
use crate::web::{self, Chrome, Ctx};
use crate::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;
use waitroom::Subject;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    form_csrf: String,
    next: String,
    next_enc: String,
    staff: bool,
    name: String,
    error: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    pub next: Option<String>,
    pub staff: Option<String>,
}

/// `GET /login`
pub async fn form(
    State(app): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> ApiResult<Response> {
    let (jar, form_csrf) = web::anon_csrf(&app, jar);
    let next = web::safe_next(q.next.as_deref()).unwrap_or_default();
    let staff = q.staff.is_some() || next.starts_with("/admin");
    let page = LoginPage {
        chrome: ctx.in_section("login").chrome,
        form_csrf,
        next_enc: web::urlencode(&next),
        next,
        staff,
        name: String::new(),
        error: None,
    };
    Ok((jar, web::render(page, StatusCode::OK)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub next: String,
}

/// `POST /login`
pub async fn login(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> ApiResult<Response> {
    same_origin(&headers)?;
    web::check_anon_csrf(&jar, &form.csrf)?;
    app.limits.check_ip(ip)?;
    let staff = form.kind == "staff";
    let name = form.name.trim().to_string();
    let body = LoginBody {
        student_number: (!staff).then(|| name.clone()),
        username: staff.then(|| name.clone()),
        password: form.password,
    };
    let next = web::safe_next(Some(&form.next));
    match session::login(&app, body).await {
        Ok(subject) => {
            let target = next.unwrap_or_else(|| match subject {
                Subject::Student { .. } => "/courses".to_string(),
                Subject::Admin { .. } => "/admin".to_string(),
            });
            let (_, cookie) = session::issue(&app, subject);
            // A new person at this browser: drop the previous one's queue
            // place and pass cookies.
            let jar = jar
                .add(cookie)
                .remove(Cookie::build(QUEUE_COOKIE).path("/"))
                .remove(Cookie::build(PASS_COOKIE).path("/"));
            Ok((jar, Redirect::to(&target)).into_response())
        }
        Err(ApiError::BadCredentials) => {
            let error = sign_in_failed(staff, ctx.lang());
            let (jar, form_csrf) = web::anon_csrf(&app, jar);
            let page = LoginPage {
                chrome: ctx.in_section("login").chrome,
                form_csrf,
                next_enc: web::urlencode(next.as_deref().unwrap_or("")),
                next: next.unwrap_or_default(),
                staff,
                name,
                error: Some(error),
            };
            Ok((jar, web::render(page, StatusCode::UNAUTHORIZED)).into_response())
        }
        Err(e) => Err(e),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /logout`
pub async fn logout(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> ApiResult<Response> {
    same_origin(&headers)?;
    if let Some(claims) = &ctx.claims {
        ctx.check_csrf(&form.csrf)?;
        session::revoke(&app, claims).await?;
    }
    let jar = jar
        .remove(Cookie::build(SESSION_COOKIE).path("/"))
        .remove(Cookie::build(QUEUE_COOKIE).path("/"))
        .remove(Cookie::build(PASS_COOKIE).path("/"));
    Ok((jar, Redirect::to("/login")).into_response())
}
