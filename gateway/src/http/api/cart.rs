//! The cart for apps: `GET /api/cart`, `POST /api/cart` (add a section),
//! `DELETE /api/cart/{section}`. The same rows as the cart page; writes
//! carry the session's CSRF value in `X-CSRF-Token`, as every
//! cookie-authenticated write does.

use super::catalog::SectionView;
use super::enrollments::mine;
use crate::db::{self, cart::Added};
use crate::error::{ApiError, ApiResult};
use crate::http::api::openapi::responses::{
    BadRequest, Conflict, Forbidden, Internal, JsonBodyErrors, TooMany, Unauthorized, Unavailable,
};
use crate::http::extract::{same_origin, JsonBody};
use crate::i18n::student::cart_notice;
use crate::i18n::Lang;
use crate::session::{check_csrf, StudentSession};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use enrollment::MAX_CART_SECTIONS;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The cart as an app shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cart {
    /// Sections to enroll in, in the order they were added (sections
    /// already held are left out).
    pub sections: Vec<SectionView>,
    /// Credits of `sections`.
    pub credits: u32,
    /// Credits already held.
    pub enrolled_credits: u32,
    pub max_credits: u8,
    /// The most sections a cart holds.
    pub max_sections: usize,
    /// Each item's choices, in cart order: what an enroll of the cart (or
    /// the cart sent at admission) carries with it.
    pub choices: Vec<ItemChoices>,
}

/// One cart item's choices.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemChoices {
    pub section: u32,
    /// Sections of the same course to try, in order, when `section` is
    /// refused (`PUT /api/cart/alternates`).
    pub alternates: Vec<u32>,
    /// Take a place on the waitlist when every choice is full.
    pub waitlist: bool,
}

/// `POST /api/cart` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    pub section: u32,
    /// The item's "join the waitlist if full" choice; on a section already
    /// in the cart it changes the choice, and without it the choice is
    /// left as it was (off for a new item).
    #[serde(default)]
    pub waitlist: Option<bool>,
}

async fn cart_of(app: &AppState, me: &StudentSession) -> ApiResult<Cart> {
    let mine = mine(app, me.id).await?;
    let sections: Vec<SectionView> = mine
        .to_enroll()
        .map(|s| SectionView::new(s, app.catalog.seats_of(s.id)))
        .collect();
    let choices = db::cart::items(&app.store, me.id)
        .await?
        .into_iter()
        .filter(|i| sections.iter().any(|s| s.id == i.section))
        .map(|i| ItemChoices {
            section: i.section,
            alternates: i.alternates,
            waitlist: i.waitlist,
        })
        .collect();
    Ok(Cart {
        choices,
        credits: sections.iter().map(|s| u32::from(s.credits)).sum(),
        enrolled_credits: mine.held().map(|s| u32::from(s.credits)).sum(),
        max_credits: mine.standing.max_credits,
        max_sections: MAX_CART_SECTIONS,
        sections,
    })
}

/// A cookie-authenticated write: same origin and the session's CSRF value.
pub(super) fn write_allowed(me: &StudentSession, headers: &HeaderMap) -> ApiResult<()> {
    same_origin(headers)?;
    check_csrf(&me.claims, headers, None)
}

/// A cart notice in both languages, for an API error message.
pub(super) fn both(code: &str) -> String {
    format!(
        "{} / {}",
        cart_notice(code, Lang::En),
        cart_notice(code, Lang::Ko)
    )
}

/// The signed-in student's cart.
#[utoipa::path(
    get,
    path = "/api/cart",
    tag = "student",
    security(("session" = [])),
    responses(
        (status = 200, description = "The cart", body = Cart),
        Unauthorized,
        Forbidden,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn show(State(app): State<AppState>, me: StudentSession) -> ApiResult<Json<Cart>> {
    app.limits.check_reads(me.id)?;
    Ok(Json(cart_of(&app, &me).await?))
}

/// Adds a section to the cart (adding one already there changes nothing).
#[utoipa::path(
    post,
    path = "/api/cart",
    tag = "student",
    security(("session" = [])),
    params(("X-CSRF-Token" = String, Header, description = "The session's `csrf` value")),
    request_body = AddBody,
    responses(
        (status = 201, description = "Added; the cart now", body = Cart),
        (status = 200, description = "It was in the cart already; the cart", body = Cart),
        JsonBodyErrors,
        Unauthorized,
        Forbidden,
        Conflict,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn add(
    State(app): State<AppState>,
    me: StudentSession,
    headers: HeaderMap,
    JsonBody(body): JsonBody<AddBody>,
) -> ApiResult<(StatusCode, Json<Cart>)> {
    write_allowed(&me, &headers)?;
    app.limits.check_student(me.id)?;
    let status = match db::cart::add(&app.store, me.id, body.section, MAX_CART_SECTIONS).await? {
        Added::Added => StatusCode::CREATED,
        Added::AlreadyThere => StatusCode::OK,
        Added::NoSuchSection => {
            return Err(ApiError::Invalid(format!("section: {}", both("unknown"))))
        }
        Added::Full => return Err(ApiError::Conflict(both("full"))),
    };
    if let Some(waitlist) = body.waitlist {
        db::cart::set_waitlist(&app.store, me.id, body.section, waitlist).await?;
    }
    Ok((status, Json(cart_of(&app, &me).await?)))
}

/// Takes a section out of the cart (one not in it changes nothing).
#[utoipa::path(
    delete,
    path = "/api/cart/{section}",
    tag = "student",
    security(("session" = [])),
    params(
        ("section" = u32, Path, description = "The section's id"),
        ("X-CSRF-Token" = String, Header, description = "The session's `csrf` value"),
    ),
    responses(
        (status = 200, description = "The cart now", body = Cart),
        BadRequest,
        Unauthorized,
        Forbidden,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn remove(
    State(app): State<AppState>,
    me: StudentSession,
    headers: HeaderMap,
    Path(section): Path<u32>,
) -> ApiResult<Json<Cart>> {
    write_allowed(&me, &headers)?;
    app.limits.check_student(me.id)?;
    db::cart::remove(&app.store, me.id, section).await?;
    Ok(Json(cart_of(&app, &me).await?))
}
