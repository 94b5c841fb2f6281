//! One error type for every handler, mapped to HTTP in one place.
//!
//! Clients see a stable machine-readable `code` and a short message, never
//! internals. Bad input is always a 4xx; a 5xx means the gateway or a
//! dependency failed, and comes with `Retry-After` when waiting helps.
//! Unexpected failures are logged here, once.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Duration;

/// Everything a handler can answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Invalid(String),
    #[error("student number or password is wrong")]
    BadCredentials,
    /// Wrong HTTP Basic credentials: 401 with a challenge, so scripts and
    /// their libraries know to send (other) credentials.
    #[error("username or password is wrong")]
    BadBasicCredentials,
    #[error("too many failed sign-ins for this account; try again later")]
    SignInThrottled { retry_after: Duration },
    #[error("please sign in first")]
    SignInRequired,
    #[error("the token is missing, malformed or not valid here")]
    BadToken,
    #[error("the token has expired; join the queue again")]
    TokenExpired,
    #[error("an admission pass is required")]
    PassRequired,
    #[error("this admission pass has carried all the commands it may; join the queue again")]
    PassExhausted,
    #[error("you may not do that")]
    Forbidden,
    #[error("cross-site request refused")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("the request body is too large")]
    TooLarge,
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    #[error("this round is not open to your class year")]
    NotEligible,
    #[error("the round does not take students now")]
    RoundNotOpen,
    #[error("{0}")]
    Conflict(String),
    /// A rehearsal run may target only a round marked as a rehearsal.
    #[error("this round is not marked as a rehearsal; rehearsal runs may target only rehearsal rounds (이 차수는 리허설로 지정되지 않았습니다)")]
    NotRehearsal,
    #[error("too many requests; slow down")]
    RateLimited { retry_after: Duration },
    #[error("the service is busy; try again shortly")]
    Overloaded { retry_after: Duration },
    #[error("the service is temporarily unavailable; your place and cart are kept")]
    Unavailable { retry_after: Duration },
    /// No confirm for a command: a copy may still be queued and decided.
    #[error(
        "the command was not confirmed and may still be decided; retry with the same \
         Idempotency-Key and it keeps its command id and is decided at most once"
    )]
    NotConfirmed { retry_after: Duration },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// Every `reason` label of `sluice_http_rejected_total`, registered at
/// start so dashboards see zeros rather than gaps.
pub const REJECTED_REASONS: &[&str] = &[
    "rate_limited",
    "overloaded",
    "csrf",
    "forbidden",
    "bad_token",
    "pass_exhausted",
    "bad_credentials",
    "invalid",
    "too_large",
];

/// The JSON body of every error.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ApiErrorBody {
    /// Stable and machine-readable: clients branch on it.
    #[schema(value_type = String, example = "invalid_request")]
    pub code: &'static str,
    /// For people: what went wrong and what to do.
    pub message: String,
}

impl ApiError {
    /// The stable code clients may branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_request",
            ApiError::BadCredentials | ApiError::BadBasicCredentials => "bad_credentials",
            ApiError::SignInThrottled { .. } => "sign_in_throttled",
            ApiError::SignInRequired => "sign_in_required",
            ApiError::BadToken => "bad_token",
            ApiError::TokenExpired => "token_expired",
            ApiError::PassRequired => "pass_required",
            ApiError::PassExhausted => "pass_exhausted",
            ApiError::Forbidden => "forbidden",
            ApiError::Csrf => "csrf",
            ApiError::NotFound => "not_found",
            ApiError::TooLarge => "too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::NotEligible => "not_eligible",
            ApiError::RoundNotOpen => "round_not_open",
            ApiError::Conflict(_) => "conflict",
            ApiError::NotRehearsal => "not_rehearsal",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Overloaded { .. } => "overloaded",
            // Still `unavailable`: clients already retry on it.
            ApiError::Unavailable { .. } | ApiError::NotConfirmed { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::BadCredentials
            | ApiError::BadBasicCredentials
            | ApiError::SignInRequired
            | ApiError::BadToken
            | ApiError::TokenExpired
            | ApiError::PassRequired => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden
            | ApiError::Csrf
            | ApiError::NotEligible
            | ApiError::PassExhausted => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RoundNotOpen | ApiError::Conflict(_) | ApiError::NotRehearsal => {
                StatusCode::CONFLICT
            }
            ApiError::RateLimited { .. } | ApiError::SignInThrottled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Overloaded { .. }
            | ApiError::Unavailable { .. }
            | ApiError::NotConfirmed { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `sluice_http_rejected_total` reason, for rejections ops watch
    /// (every value is listed in [`REJECTED_REASONS`]).
    fn rejected_reason(&self) -> Option<&'static str> {
        match self {
            ApiError::RateLimited { .. } | ApiError::SignInThrottled { .. } => Some("rate_limited"),
            ApiError::Overloaded { .. } => Some("overloaded"),
            ApiError::Csrf => Some("csrf"),
            ApiError::Forbidden => Some("forbidden"),
            ApiError::BadToken | ApiError::TokenExpired | ApiError::PassRequired => {
                Some("bad_token")
            }
            ApiError::PassExhausted => Some("pass_exhausted"),
            ApiError::BadCredentials | ApiError::BadBasicCredentials => Some("bad_credentials"),
            ApiError::Invalid(_) | ApiError::UnsupportedMediaType => Some("invalid"),
            ApiError::TooLarge => Some("too_large"),
            _ => None,
        }
    }

    /// A dependency failed: log it (once, here) and tell the client to retry.
    pub fn unavailable(what: &'static str, err: &dyn std::error::Error) -> ApiError {
        tracing::warn!(dependency = what, error = %err, "dependency unavailable");
        ApiError::Unavailable {
            retry_after: Duration::from_secs(2),
        }
    }
}

/// The one crossing from the database layer: what waiting cures is a 503
/// with Retry-After ("your place and cart are kept"); anything else is a
/// bug or bad data, a 500 logged once with its cause chain. Call sites that
/// give a constraint violation a meaning (a duplicate code, say) match on it
/// before this conversion.
impl From<crate::db::StoreError> for ApiError {
    fn from(e: crate::db::StoreError) -> Self {
        if e.is_transient() {
            ApiError::unavailable("mysql", &e)
        } else {
            ApiError::Internal(anyhow::Error::new(e).context("database"))
        }
    }
}

impl From<waitroom::TokenError> for ApiError {
    fn from(e: waitroom::TokenError) -> Self {
        match e {
            waitroom::TokenError::Expired => ApiError::TokenExpired,
            _ => ApiError::BadToken,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "request failed");
        }
        if let Some(reason) = self.rejected_reason() {
            metrics::counter!("sluice_http_rejected_total", "reason" => reason).increment(1);
        }
        let retry_after = match &self {
            ApiError::RateLimited { retry_after }
            | ApiError::SignInThrottled { retry_after }
            | ApiError::Overloaded { retry_after }
            | ApiError::Unavailable { retry_after }
            | ApiError::NotConfirmed { retry_after } => Some(*retry_after),
            _ => None,
        };
        let body = ApiErrorBody {
            code: self.code(),
            message: self.to_string(),
        };
        let challenge = matches!(self, ApiError::BadBasicCredentials);
        let mut response = (self.status(), Json(body)).into_response();
        if challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"sluice admin\", charset=\"UTF-8\""),
            );
        }
        if let Some(after) = retry_after {
            let secs = after.as_secs_f64().ceil().max(1.0) as u64;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Handler result.
pub type ApiResult<T> = Result<T, ApiError>;
