//! The HTTP surface: routes and middleware.
//!
//! Direction: this module routes to the handlers in [`api`] (JSON) and
//! [`pages`] (server-rendered HTML); handlers use the extractors of
//! [`extract`] and the response plumbing of [`headers`] and [`csv_stream`],
//! and reach the database only through [`crate::db`]. Nothing below imports
//! this module back.
//!
//! Health and metrics sit outside the load-shedding guard so they answer
//! under any load; everything else is bounded (in-flight requests, body
//! size, time) and shed with 503 + Retry-After beyond capacity.

pub mod api;
pub mod csv_stream;
pub mod extract;
pub mod headers;
pub mod lane;
pub mod metrics;
pub mod ops;
pub mod pages;

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use std::time::Instant;

/// Builds the router.
pub fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .merge(api::router())
        .merge(pages::router(state.clone()))
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state.clone(), guard));
    // Metrics stay here only without an operations port of their own.
    let open = if state.config.metrics_addr.is_none() {
        operations()
    } else {
        probes()
    };
    open.merge(guarded)
        .layer(middleware::from_fn_with_state(state.clone(), headers::edge))
        .with_state(state)
}

/// The separate operations port (`SLUICE_METRICS_ADDR`): metrics and
/// probes only, nothing a student can reach.
pub fn ops_router(state: AppState) -> Router {
    operations().with_state(state)
}

fn probes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
}

fn operations() -> Router<AppState> {
    probes().route("/metrics", get(ops::metrics))
}

/// Bounds in-flight requests and their duration: beyond capacity the
/// gateway answers at once instead of queueing without limit.
async fn guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let Some(_entered) = app.in_flight.try_enter() else {
        return axum::response::IntoResponse::into_response(ApiError::Overloaded {
            retry_after: std::time::Duration::from_secs(1),
        });
    };
    match tokio::time::timeout(app.config.request_timeout(), next.run(req)).await {
        Ok(response) => response,
        Err(_) => axum::response::IntoResponse::into_response(ApiError::Unavailable {
            retry_after: std::time::Duration::from_secs(2),
        }),
    }
}

/// The route every waiting student polls, answered before the router.
pub const STATUS_ROUTE: &str = "/api/queue/status";

/// One connection's service once [`lane`] has handed it to hyper: status
/// polls still take the direct path, the rest goes through the router with
/// the peer's address as axum's `ConnectInfo`.
fn service(
    state: AppState,
    router: Router,
    peer: std::net::SocketAddr,
) -> impl tower::Service<
    Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send,
> + Clone
       + Send {
    tower::service_fn(move |mut req: Request| {
        let (state, router) = (Arc::clone(&state), router.clone());
        async move {
            if req.method() == Method::GET && req.uri().path() == STATUS_ROUTE {
                return Ok(status_direct(&state, req.headers(), peer.ip()).await);
            }
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            tower::ServiceExt::oneshot(router, req).await
        }
    })
}

/// A status poll's answer: the status, for the caller to write (with
/// every header the edge adds, [`headers::json_answer_headers`], and the
/// jar's cookies), or any other response, already secured.
// The large variant is the usual one: boxing it would allocate per poll.
#[allow(clippy::large_enum_variant)]
pub(crate) enum PollAnswer {
    Status {
        jar: axum_extra::extract::cookie::CookieJar,
        status: api::queue::Status,
    },
    Other(Response),
}

/// A status poll answered before the router, as a response (hyper's path).
async fn status_direct(
    app: &AppState,
    headers: &axum::http::HeaderMap,
    peer: std::net::IpAddr,
) -> Response {
    let token = api::queue::header_token(headers);
    match poll_answer(app, headers, token, peer).await {
        PollAnswer::Status { jar, status } => {
            status.secured_response(jar, app.config.secure_cookies)
        }
        PollAnswer::Other(response) => response,
    }
}

/// A status poll, answered before the router.
///
/// A poll is most of a registration-day load and does little work of its
/// own (verify a token, read the snapshot); the router's per-request
/// layers (route matching, boxed service clones, middleware futures) cost
/// as much again. This path keeps every guarantee of the routed one: the
/// in-flight bound, the same handler logic ([`api::queue::poll`]), the
/// security headers and the request metrics. It reads the queue token
/// header (`token`), and from `headers` only the cookies and the
/// forwarded address: [`lane`] copies no others.
pub(crate) async fn poll_answer(
    app: &AppState,
    headers: &axum::http::HeaderMap,
    token: Option<&str>,
    peer: std::net::IpAddr,
) -> PollAnswer {
    use axum::response::IntoResponse;
    let started = Instant::now();
    let mut response = match app.in_flight.try_enter() {
        None => {
            // Shed, but the student was here: a refused poll keeps the place.
            let jar = axum_extra::extract::cookie::CookieJar::from_headers(headers);
            if let Some(token) = api::queue::token_or_cookie(token, &jar) {
                api::queue::seen(app, token);
            }
            ApiError::Overloaded {
                retry_after: std::time::Duration::from_secs(1),
            }
            .into_response()
        }
        Some(_entered) => {
            let ip = extract::client_ip(app, headers, Some(peer));
            // Apps send the token in a header and no cookies: an empty jar
            // then, not one parsed (and hashed into sets) from nothing.
            let jar = if headers.contains_key(axum::http::header::COOKIE) {
                axum_extra::extract::cookie::CookieJar::from_headers(headers)
            } else {
                axum_extra::extract::cookie::CookieJar::new()
            };
            match api::queue::status_for(app, ip, token, jar).await {
                Ok((jar, status)) => {
                    metrics::record_status_poll(200, started);
                    return PollAnswer::Status { jar, status };
                }
                Err(e) => e.into_response(),
            }
        }
    };
    headers::secure(response.headers_mut(), app.config.secure_cookies);
    metrics::record_status_poll(response.status().as_u16(), started);
    PollAnswer::Other(response)
}
