//! The HTTP surface: routes, middleware and the extractors they share.
//!
//! Health and metrics sit outside the load-shedding guard so they answer
//! under any load; everything else is bounded (in-flight requests, body
//! size, time) and shed with 503 + Retry-After beyond capacity.

pub mod admin;
pub mod commands;
pub mod csv_stream;
pub mod headers;
pub mod ops;
pub mod queue;
pub mod registrar;
pub mod student;

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// Largest request body accepted (a full cart is far below).
const BODY_LIMIT: usize = 16 * 1024;

/// Builds the router.
pub fn router(state: AppState) -> Router {
    let guarded = Router::new()
        .route(
            "/api/session",
            post(crate::session::create)
                .get(crate::session::show)
                .delete(crate::session::destroy),
        )
        .route("/api/rounds/{id}", get(queue::round))
        .route("/api/rounds/{id}/join", post(queue::join))
        .route("/api/queue/status", get(queue::status))
        .route("/api/queue/leave", post(queue::leave))
        .route("/api/enroll", post(commands::enroll))
        .route("/api/drop", post(commands::drop))
        .route("/api/commands/{id}", get(commands::outcome))
        .route(
            "/api/admin/rounds/{id}",
            get(admin::show).post(admin::change),
        )
        .merge(crate::pages::router(state.clone()))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
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
    let Ok(_permit) = app.in_flight.try_acquire() else {
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

/// Counts and times a request by route template (never by raw path, which
/// would put ids in label values). Called by the edge middleware
/// ([`headers::edge`]), so every request passes one middleware, not two.
pub(crate) fn record_request(route: Option<&str>, method: &Method, status: u16, started: Instant) {
    let (requests, duration) = HTTP_METRICS.handles(route.unwrap_or("unmatched"), method, status);
    duration.record(started.elapsed().as_secs_f64());
    requests.increment(1);
}

/// Metric handles per (route, method, status). Building a label set and
/// hashing it into the registry on every request costs more than the poll
/// it measures; the handles are made once per combination and reused.
static HTTP_METRICS: std::sync::LazyLock<HttpMetrics> =
    std::sync::LazyLock::new(HttpMetrics::default);

#[derive(Default)]
struct HttpMetrics {
    routes: dashmap::DashMap<Arc<str>, Arc<RouteMetrics>>,
}

type Handles = (metrics::Counter, metrics::Histogram);

#[derive(Default)]
struct RouteMetrics {
    // A handful of (method, status) pairs per route: a scan beats a map.
    entries: std::sync::RwLock<Vec<(Method, u16, Handles)>>,
}

impl HttpMetrics {
    fn handles(&self, route: &str, method: &Method, status: u16) -> Handles {
        let per_route = match self.routes.get(route) {
            Some(r) => Arc::clone(&r),
            None => Arc::clone(&self.routes.entry(Arc::from(route)).or_default()),
        };
        if let Ok(entries) = per_route.entries.read() {
            if let Some((_, _, h)) = entries.iter().find(|(m, s, _)| m == method && *s == status) {
                return h.clone();
            }
        }
        let handles = (
            metrics::counter!("sluice_http_requests_total",
                "route" => route.to_string(), "method" => method.as_str().to_string(), "status" => status.to_string()),
            metrics::histogram!("sluice_http_request_duration_seconds",
                "route" => route.to_string(), "method" => method.as_str().to_string()),
        );
        match per_route.entries.write() {
            Ok(mut entries) => entries.push((method.clone(), status, handles.clone())),
            Err(poisoned) => poisoned
                .into_inner()
                .push((method.clone(), status, handles.clone())),
        }
        handles
    }
}

/// JSON bodies whose rejections are ours (a 400 with a stable code), not
/// the framework's plain-text ones.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // Refuse a declared oversize at once rather than wait for bytes the
        // limit would refuse anyway (a stalling client holds the request).
        if headers::declared_length(req.headers()).is_some_and(|n| n > BODY_LIMIT as u64) {
            return Err(ApiError::TooLarge);
        }
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
                StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
                _ => ApiError::Invalid(e.body_text()),
            }),
        }
    }
}

/// The client's address: the peer, or the last forwarded hop (the one the
/// ingress appended) when the gateway is configured to trust its ingress.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(app, &parts.headers, &parts.extensions)))
    }
}

/// The client's address: the peer, or the hop the trusted ingress appended.
fn client_ip(app: &AppState, headers: &HeaderMap, extensions: &axum::http::Extensions) -> IpAddr {
    if app.config.trust_forwarded {
        // The last hop is the one the ingress appended; any before it
        // were written by the client and prove nothing.
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The route every waiting student polls, answered before the router.
pub const STATUS_ROUTE: &str = "/api/queue/status";

/// The service the listener serves: status polls take a direct path, the
/// rest goes through the router.
///
/// A poll is most of a registration-day load and does little work of its
/// own (verify a token, read the snapshot); the router's per-request
/// layers (route matching, boxed service clones, middleware futures) cost
/// as much again. The direct path keeps every guarantee of the routed one:
/// the in-flight bound, the same handler logic ([`queue::poll`]), the
/// security headers and the request metrics.
pub fn service(
    state: AppState,
) -> impl tower::Service<
    Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send,
> + Clone
       + Send {
    let router = router(Arc::clone(&state));
    tower::service_fn(move |req: Request| {
        let (state, router) = (Arc::clone(&state), router.clone());
        async move {
            if req.method() == Method::GET && req.uri().path() == STATUS_ROUTE {
                return Ok(status_direct(&state, req).await);
            }
            tower::ServiceExt::oneshot(router, req).await
        }
    })
}

async fn status_direct(app: &AppState, req: Request) -> Response {
    use axum::response::IntoResponse;
    let started = Instant::now();
    let mut response = match app.in_flight.try_acquire() {
        Err(_) => {
            // Shed, but the student was here: a refused poll keeps the place.
            let jar = axum_extra::extract::cookie::CookieJar::from_headers(req.headers());
            if let Some(token) = queue::queue_token(req.headers(), &jar) {
                queue::seen(app, &token);
            }
            ApiError::Overloaded {
                retry_after: std::time::Duration::from_secs(1),
            }
            .into_response()
        }
        Ok(_permit) => {
            let (parts, _body) = req.into_parts();
            let ip = client_ip(app, &parts.headers, &parts.extensions);
            let jar = axum_extra::extract::cookie::CookieJar::from_headers(&parts.headers);
            let header_token = queue::header_token(&parts.headers);
            queue::status_for(app, ip, header_token, jar)
                .await
                .into_response()
        }
    };
    headers::secure(response.headers_mut(), app.config.secure_cookies);
    record_request(
        Some(STATUS_ROUTE),
        &Method::GET,
        response.status().as_u16(),
        started,
    );
    response
}

/// Refuses a cookie-authenticated request sent from another origin. Cookies
/// are also `SameSite=Strict`, and JSON bodies cannot be sent cross-site
/// without a preflight; this is the third line.
pub fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin)
        .trim_end_matches('/');
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(ApiError::Csrf)
    }
}
