//! What handlers take from a request: JSON bodies with our own
//! rejections, the client's address, and the same-origin check.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};

/// Largest request body accepted (a full cart is far below).
pub const BODY_LIMIT: usize = 16 * 1024;

/// Largest CSV the registrar's import accepts.
pub const IMPORT_LIMIT: usize = 8 * 1024 * 1024;

/// The import form's body: the CSV and the form fields around it.
pub const IMPORT_BODY_LIMIT: usize = IMPORT_LIMIT + 64 * 1024;

/// JSON bodies whose rejections are ours (a 400 with a stable code), not
/// the framework's plain-text ones.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // Refuse a declared oversize at once rather than wait for bytes the
        // limit would refuse anyway (a stalling client holds the request).
        if super::headers::declared_length(req.headers()).is_some_and(|n| n > BODY_LIMIT as u64) {
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
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(client_ip(app, &parts.headers, peer)))
    }
}

/// The client's address: the peer, or the hop the trusted ingress appended.
pub fn client_ip(app: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> IpAddr {
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
    peer.unwrap_or(IpAddr::from([0, 0, 0, 0]))
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
