//! What a waiting student's cart looks like from the queue: the seats of
//! each section in it (`GET /api/queue/cart`), and the opt-in to send the
//! cart the moment they are admitted (`PUT /api/queue/auto-send`).
//!
//! Kept off the status poll, the hottest path: the poll reads no cart and
//! stays the same for everyone. This read is a separate one, per student
//! and rate-limited like result reads, that the queue page asks for every
//! few seconds and only while it shows the cart: one cart read from MySQL,
//! the seats from the gateway's in-memory snapshot.

use super::{holder, pass_token, queue_token, PASS_HEADER, QUEUE_HEADER};
use crate::cart::{seat_state, ItemSeats};
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{same_origin, JsonBody};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use enrollment::{CommandId, RoundId, StudentId};
use serde::{Deserialize, Serialize};

/// How often the queue page asks (the seats refresh about as often).
pub const CART_POLL_MS: u64 = 3_000;

/// The opt-in as the queue shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AutoSendState {
    pub on: bool,
    /// `waiting`, `sent`, `empty` or `expired`; absent when off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub command_id: Option<CommandId>,
}

/// `GET /api/queue/cart`
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CartView {
    #[schema(value_type = u32)]
    pub round: RoundId,
    pub auto_send: AutoSendState,
    pub items: Vec<ItemSeats>,
    /// Sections in the cart (first choices) with no seat left.
    pub filled: Vec<u32>,
    /// When to ask again.
    pub poll_after_ms: u64,
}

/// The cart and opt-in of `student` in `round`, with the seats as this
/// gateway last read them.
pub async fn view(app: &AppState, round: RoundId, student: StudentId) -> ApiResult<CartView> {
    let (items, opt) = tokio::try_join!(
        db::cart::items(&app.store, student),
        db::auto_send::of(&app.store, round, student),
    )?;
    let catalog = app
        .catalog
        .covering(&items.iter().map(|i| i.section).collect::<Vec<_>>())
        .await;
    let items = seat_state(
        &catalog,
        &items,
        |s| app.catalog.seats_of(s),
        |s| app.catalog.waiting_of(s),
    );
    let filled = items
        .iter()
        .filter(|i| i.first.full)
        .map(|i| i.first.section)
        .collect();
    Ok(CartView {
        round,
        auto_send: AutoSendState {
            on: opt.is_some(),
            state: opt.as_ref().map(|o| o.state.clone()),
            command_id: opt.and_then(|o| o.command_id),
        },
        items,
        filled,
        poll_after_ms: CART_POLL_MS,
    })
}

/// Who asks: a queue token or pass, from a header or (same origin) a
/// cookie.
async fn asker(
    app: &AppState,
    headers: &HeaderMap,
    jar: &CookieJar,
) -> ApiResult<(RoundId, StudentId)> {
    let from_header = headers.contains_key(QUEUE_HEADER) || headers.contains_key(PASS_HEADER);
    if !from_header {
        if queue_token(headers, jar).is_none() && pass_token(headers, jar).is_none() {
            return Err(ApiError::BadToken);
        }
        same_origin(headers)?;
    }
    holder(app, headers, jar, crate::clock::now_ms()).await
}

/// `GET /api/queue/cart`
#[utoipa::path(
    get,
    path = "/api/queue/cart",
    tag = "queue",
    security(("queue_token" = []), ("queue_cookie" = []), ("pass" = []), ("pass_cookie" = [])),
    responses(
        (status = 200, description = "The cart's seats and the send-at-admission choice", body = CartView),
        crate::http::api::openapi::responses::Unauthorized,
        crate::http::api::openapi::responses::TooMany,
        crate::http::api::openapi::responses::Internal,
        crate::http::api::openapi::responses::Unavailable,
    )
)]
pub async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
) -> ApiResult<Json<CartView>> {
    let (round, student) = asker(&app, &headers, &jar).await?;
    app.limits.check_reads(student)?;
    Ok(Json(view(&app, round, student).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoSendBody {
    pub on: bool,
}

/// `PUT /api/queue/auto-send` with `{"on": true}` or `{"on": false}`.
#[utoipa::path(
    put,
    path = "/api/queue/auto-send",
    tag = "queue",
    security(("queue_token" = []), ("queue_cookie" = []), ("pass" = []), ("pass_cookie" = [])),
    request_body = AutoSendBody,
    responses(
        (status = 200, description = "The choice as stored", body = AutoSendState),
        crate::http::api::openapi::responses::JsonBodyErrors,
        crate::http::api::openapi::responses::Unauthorized,
        crate::http::api::openapi::responses::Forbidden,
        crate::http::api::openapi::responses::Conflict,
        crate::http::api::openapi::responses::TooMany,
        crate::http::api::openapi::responses::Internal,
        crate::http::api::openapi::responses::Unavailable,
    )
)]
pub async fn set(
    State(app): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    JsonBody(body): JsonBody<AutoSendBody>,
) -> ApiResult<Json<AutoSendState>> {
    let (round, student) = asker(&app, &headers, &jar).await?;
    app.limits.check_student(student)?;
    set_as(&app, round, student, body.on).await?;
    let opt = db::auto_send::of(&app.store, round, student).await?;
    Ok(Json(AutoSendState {
        on: opt.is_some(),
        state: opt.as_ref().map(|o| o.state.clone()),
        command_id: opt.and_then(|o| o.command_id),
    }))
}

/// Opts `student` in or out in `round`; the page's form calls this too.
pub async fn set_as(app: &AppState, round: RoundId, student: StudentId, on: bool) -> ApiResult<()> {
    db::auto_send::set(&app.store, round, student, on).await?;
    Ok(())
}
