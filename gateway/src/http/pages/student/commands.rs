//! The enroll, drop, swap and leave-the-waitlist forms: after admission, a
//! student's cart (or one section, or a change of section) becomes a
//! command through the API's own path, each cart item with its "join the
//! waitlist if full" choice.

use super::{load_student, section_number, student_form};
use crate::error::{ApiError, ApiResult};
use crate::http::api::commands;
use crate::http::api::queue::pass_token;
use crate::web::Ctx;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::CookieJar;
use enrollment::{Action, SectionId, StudentId};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct EnrollForm {
    #[serde(default)]
    pub csrf: String,
    /// One section; absent or empty: the whole cart.
    #[serde(default)]
    pub section: String,
    /// Fresh per rendered form, so a resubmitted form is one command.
    #[serde(default)]
    pub idempotency_key: String,
}

/// `POST /enroll`: the whole cart in one command, or one section.
pub async fn enroll(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<EnrollForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let action = if form.section.trim().is_empty() {
        // The whole cart, each item with its alternates, built as the
        // admission-time sender builds it.
        let (me, items) = tokio::try_join!(load_student(&app, student), async {
            Ok(crate::db::cart::items(&app.store, student).await?)
        })?;
        crate::cart::enroll_action(&items, &me.standing.enrolled, false)
    } else {
        Some(Action::Enroll {
            sections: vec![SectionId(section_number(&form.section)?)],
            waitlist: false,
            options: Vec::new(),
        })
    };
    let Some(action) = action else {
        return Ok(Redirect::to("/cart?msg=empty").into_response());
    };
    send(&app, &headers, &jar, student, action, &form.idempotency_key).await
}

/// `POST /waitlist/leave`: leaves one section's waitlist, sent like a drop.
pub async fn leave_waitlist(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<DropForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let section = SectionId(section_number(&form.section)?);
    send(
        &app,
        &headers,
        &jar,
        student,
        Action::LeaveWaitlist { section },
        &form.idempotency_key,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct DropForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub section: String,
    #[serde(default)]
    pub idempotency_key: String,
}

/// `POST /drop`
pub async fn drop(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<DropForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let section = SectionId(section_number(&form.section)?);
    send(
        &app,
        &headers,
        &jar,
        student,
        Action::Drop { section },
        &form.idempotency_key,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct SwapForm {
    #[serde(default)]
    pub csrf: String,
    /// The section held now.
    #[serde(default)]
    pub drop: String,
    /// The section of the same course to change to.
    #[serde(default)]
    pub enroll: String,
    #[serde(default)]
    pub idempotency_key: String,
}

/// `POST /swap`: the timetable's "change section" form.
pub async fn swap(
    State(app): State<AppState>,
    ctx: Ctx,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<SwapForm>,
) -> ApiResult<Response> {
    let student = student_form(&ctx, &headers, &form.csrf)?;
    let action = commands::swap_action(section_number(&form.drop)?, section_number(&form.enroll)?)?;
    send(&app, &headers, &jar, student, action, &form.idempotency_key).await
}

/// A fresh idempotency key for a form about to be shown.
pub(super) fn form_key() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Publishes through the API's own path and shows the live result. An
/// empty `idempotency_key` (a form from before keys) means none.
async fn send(
    app: &AppState,
    headers: &HeaderMap,
    jar: &CookieJar,
    student: StudentId,
    action: Action,
    idempotency_key: &str,
) -> ApiResult<Response> {
    let key = match idempotency_key.trim() {
        "" => None,
        k => Some(commands::checked_key(k)?),
    };
    // The pass in this browser must be the signed-in student's: a shared
    // computer must not let one student act on another's admission.
    let (token, _) = pass_token(headers, jar).ok_or(ApiError::PassRequired)?;
    let claims = app.keyring.open_pass(&token)?;
    if claims.student != student {
        return Err(ApiError::PassRequired);
    }
    let (_, axum::Json(accepted)) = commands::submit(app, None, headers, jar, action, key).await?;
    Ok(Redirect::to(&format!("/results?pending={}", accepted.command_id)).into_response())
}
