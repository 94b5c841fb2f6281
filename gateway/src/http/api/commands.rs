//! Enrollment commands: an admitted student's enroll, drop or swap becomes a
//! command on RabbitMQ. The answer is 202 with the command id only after the
//! broker confirmed it; without a confirm, 503 + Retry-After (the client
//! keeps its cart and retries).
//!
//! A missing confirm does not mean nothing was queued: the confirm may come
//! late, after a copy is on the queue and will be decided. So a request may
//! carry an `Idempotency-Key` header (the student pages' forms carry one as
//! a hidden field): the command id is then derived from the pass, the key
//! and the request ([`waitroom::Keyring::command_id`]), the same on every
//! gateway, and the worker decides each id once. A retry with the same key
//! and the same request names the copy that may already be queued instead
//! of sending a second command; a new admission (pass) or another request
//! is another command.

use super::queue::{pass_token, queue_token};
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::http::api::openapi::responses::{
    BadRequest, Conflict, Forbidden, Internal, JsonBodyErrors, TooMany, Unauthorized, Unavailable,
};
use crate::http::extract::{same_origin, ClientIp, JsonBody};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use enrollment::{Action, Command, CommandId, ItemOptions, Reason, SectionId, StudentId};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;
use waitroom::room::PassTime;
use waitroom::{PassClaims, RoundState};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    /// 1-12 distinct section ids, decided in order.
    #[schema(min_items = 1, max_items = 12)]
    pub sections: Vec<u32>,
    /// Join a full section's waitlist instead of being refused.
    #[serde(default)]
    pub waitlist: bool,
    /// Per-item choices, parallel to `sections`, as the command carries
    /// them: `[{"waitlist": true, "alternates": [12, 9]}, {}]`.
    #[serde(default)]
    #[schema(value_type = Vec<crate::http::api::openapi::schemas::ItemOptionsDoc>)]
    pub options: Vec<ItemOptions>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DropBody {
    pub section: u32,
}

/// `{"drop":7,"enroll":9}`: give up section 7 for section 9, both or
/// neither.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwapBody {
    pub drop: u32,
    pub enroll: u32,
}

/// The `Idempotency-Key` header, as the document describes it.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// Makes retries of one request one command: 1-128 visible ASCII
    /// characters, no spaces.
    #[param(rename = "Idempotency-Key", pattern = "^[!-~]{1,128}$")]
    #[serde(rename = "Idempotency-Key")]
    pub key: Option<String>,
}

/// The header a client sends to make retries of one request one command.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Longest idempotency key accepted (a UUID is 36 characters).
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// The idempotency key of a request, if it carries a valid one.
pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    match headers.get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map_err(|_| bad_idempotency_key())
            .and_then(|k| checked_key(k).map(Some)),
    }
}

/// Checks a key's shape: 1-128 visible ASCII characters, no spaces.
pub fn checked_key(key: &str) -> ApiResult<&str> {
    let ok = !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY
        && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(key)
    } else {
        Err(bad_idempotency_key())
    }
}

fn bad_idempotency_key() -> ApiError {
    ApiError::Invalid("Idempotency-Key must be 1-128 visible ASCII characters, no spaces".into())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    #[schema(value_type = String, format = Uuid)]
    pub command_id: CommandId,
    pub status_url: String,
}

/// `POST /api/enroll`: an admitted student's enroll command.
#[utoipa::path(
    post,
    path = "/api/enroll",
    tag = "commands",
    security(("pass" = []), ("pass_cookie" = [])),
    params(IdempotencyKey),
    request_body = EnrollBody,
    responses(
        (status = 202, description = "Confirmed by the broker; the worker decides it", body = Accepted),
        JsonBodyErrors,
        Unauthorized,
        Forbidden,
        Conflict,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn enroll(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    JsonBody(body): JsonBody<EnrollBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let key = idempotency_key(&headers)?;
    let action = Action::Enroll {
        sections: body.sections.into_iter().map(SectionId).collect(),
        waitlist: body.waitlist,
        options: body.options,
    };
    submit(&app, Some(ip), &headers, &jar, action, key).await
}

/// `POST /api/drop`: an admitted student's drop command.
#[utoipa::path(
    post,
    path = "/api/drop",
    tag = "commands",
    security(("pass" = []), ("pass_cookie" = [])),
    params(IdempotencyKey),
    request_body = DropBody,
    responses(
        (status = 202, description = "Confirmed by the broker; the worker decides it", body = Accepted),
        JsonBodyErrors,
        Unauthorized,
        Forbidden,
        Conflict,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn drop(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    JsonBody(body): JsonBody<DropBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let key = idempotency_key(&headers)?;
    submit(
        &app,
        Some(ip),
        &headers,
        &jar,
        Action::Drop {
            section: SectionId(body.section),
        },
        key,
    )
    .await
}

/// `POST /api/swap`: one command that enrolls in `enroll` and gives up
/// `drop` in one decision; the outcome's item 0 is `enroll`, item 1 `drop`.
#[utoipa::path(
    post,
    path = "/api/swap",
    tag = "commands",
    security(("pass" = []), ("pass_cookie" = [])),
    params(IdempotencyKey),
    request_body = SwapBody,
    responses(
        (status = 202, description = "Confirmed by the broker; the worker decides it", body = Accepted),
        JsonBodyErrors,
        Unauthorized,
        Forbidden,
        Conflict,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn swap(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    JsonBody(body): JsonBody<SwapBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let key = idempotency_key(&headers)?;
    let action = swap_action(body.drop, body.enroll)?;
    submit(&app, Some(ip), &headers, &jar, action, key).await
}

/// A swap of two different sections, or a 400 saying why not.
pub(crate) fn swap_action(drop: u32, enroll: u32) -> ApiResult<Action> {
    if drop == enroll {
        return Err(ApiError::Invalid(
            "swap needs two different sections (drop and enroll)".into(),
        ));
    }
    Ok(Action::Swap {
        drop: SectionId(drop),
        enroll: SectionId(enroll),
    })
}

/// Verifies the pass, then publishes and waits for the confirm. The
/// student pages' enroll, drop and swap forms call this too, so both surfaces
/// share one path. With an idempotency key (already checked), the command
/// id is derived from it.
///
/// A command with a valid pass is limited per student: many students share
/// one campus address. Without one it is anonymous traffic, and `ip` (the
/// API's caller) meets the per-address ceiling.
pub(crate) async fn submit(
    app: &AppState,
    ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    jar: &CookieJar,
    action: Action,
    idempotency_key: Option<&str>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let anonymous = |e: ApiError| -> ApiError {
        match ip.map(|ip| app.limits.check_ip(ip)) {
            Some(Err(limited)) => limited,
            _ => e,
        }
    };
    let (pass, from_cookie) =
        pass_token(headers, jar).ok_or_else(|| anonymous(ApiError::PassRequired))?;
    if from_cookie {
        same_origin(headers)?;
    }
    // Signed by us or anonymous traffic; once signed, the student's own
    // limit counts, never the address's, whatever the answer.
    let claims = app
        .keyring
        .open_pass(&pass)
        .map_err(|e| anonymous(e.into()))?;
    app.limits.check_student(claims.student)?;
    let student = claims.student;
    let (claims, renewed) = pass_in_time(app, claims, student, crate::clock::now_ms()).await?;
    let snapshot = app.rooms.snapshot();
    let open = snapshot
        .rounds
        .get(&claims.round)
        .is_some_and(|r| matches!(r.view.state, RoundState::Open | RoundState::Paused));
    if !open {
        return Err(ApiError::RoundNotOpen);
    }
    let mut command = Command::new(
        claims.student,
        claims.round,
        renewed.unwrap_or_else(|| pass.clone()),
        action,
    );
    command
        .validate()
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    if let Some(key) = idempotency_key {
        // The action as it travels: a retry sends the same request, so
        // the same bytes; another request under the same key is another
        // command, never swallowed as a duplicate of the first.
        let request =
            serde_json::to_vec(&command.action).map_err(|e| ApiError::Internal(e.into()))?;
        // Keyed on the pass as presented, so a retry of a request whose
        // pass was renewed on the way is still the same command.
        command.id = CommandId(app.keyring.command_id(&pass, key, &request)?);
    }
    app.pass_use.reserve(&claims, crate::clock::now_ms())?;
    if let Err(e) = app.sink.publish(&command).await {
        app.pass_use.release(claims.lease);
        tracing::warn!(command.id = %command.id, reason = e.kind, "command not confirmed");
        return Err(ApiError::NotConfirmed {
            retry_after: Duration::from_secs(3),
        });
    }
    metrics::counter!("sluice_commands_accepted_total", "action" => command.action.name())
        .increment(1);
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            command_id: command.id,
            status_url: format!("/api/commands/{}", command.id),
        }),
    ))
}

/// Admissions tracked before expired ones are swept out.
const PASS_USE_CAP: usize = 200_000;

/// Commands this gateway accepted per admission (lease), so a pass cannot
/// carry more than its budget through one pod. The worker counts across
/// every pod and is the authority; this bound answers a replaying client at
/// once and keeps its flood off RabbitMQ and the workers. Entries live
/// until their pass expires.
#[derive(Debug, Default)]
pub struct PassUse {
    used: dashmap::DashMap<uuid::Uuid, Used>,
}

#[derive(Debug, Clone, Copy)]
struct Used {
    commands: u16,
    exp_ms: u64,
}

impl PassUse {
    /// Counts one more command on `claims`' lease, or refuses when its
    /// budget is spent.
    pub fn reserve(&self, claims: &PassClaims, now_ms: u64) -> ApiResult<()> {
        if self.used.len() >= PASS_USE_CAP {
            self.used.retain(|_, u| u.exp_ms > now_ms);
            if self.used.len() >= PASS_USE_CAP {
                // Only live passes left: forget them rather than grow; the
                // worker still enforces every budget.
                tracing::warn!(tracked = self.used.len(), "pass budget table full; cleared");
                self.used.clear();
            }
        }
        let mut entry = self.used.entry(claims.lease).or_insert(Used {
            commands: 0,
            exp_ms: claims.exp,
        });
        if entry.commands >= claims.budget {
            return Err(ApiError::PassExhausted);
        }
        entry.commands += 1;
        Ok(())
    }

    /// Gives back a reservation whose command was not accepted.
    pub fn release(&self, lease: uuid::Uuid) {
        if let Some(mut u) = self.used.get_mut(&lease) {
            u.commands = u.commands.saturating_sub(1);
        }
    }
}

/// A signed pass of `student` that is in time at `now`. One whose own end
/// is past still serves when its admission was extended since it was
/// signed (an outage given back, see `waitroom::room::pass_reference_ms`):
/// it comes back re-signed with the admission's end, as the second value.
/// Commands, the student pages and the queue's holder all judge passes
/// here.
pub(crate) async fn pass_in_time(
    app: &AppState,
    claims: PassClaims,
    student: StudentId,
    now: u64,
) -> ApiResult<(PassClaims, Option<String>)> {
    match claims.check(student, claims.round, now) {
        Ok(()) => Ok((claims, None)),
        Err(waitroom::TokenError::Expired) if now >= claims.exp => {
            let (claims, token) = renewed(app, claims, now).await?;
            Ok((claims, Some(token)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `claims` (signed, its end past) with the end its admission has now, and
/// the pass re-signed with it; "expired" when that is past too or the
/// admission is not this pass's.
pub(crate) async fn renewed(
    app: &AppState,
    claims: PassClaims,
    now: u64,
) -> ApiResult<(PassClaims, String)> {
    // Only a pass the round's extensions could have kept alive, in a round
    // still taking commands, is worth a read: an old pass in a browser's
    // cookie, or a replayed one, is refused from memory.
    let snapshot = app.rooms.snapshot();
    let Some(view) = snapshot
        .rounds
        .get(&claims.round)
        .map(|r| &r.view)
        .filter(|v| matches!(v.state, RoundState::Open | RoundState::Paused))
    else {
        return Err(ApiError::TokenExpired);
    };
    let could_live = view.pass_time(now, claims.exp) == PassTime::Owed
        || claims.exp.saturating_add(view.pass_extended_ms) > now;
    if !could_live {
        return Err(ApiError::TokenExpired);
    }
    // One read per request, within the gateway's bound on reads at once
    // (the student's own limit is counted by the caller).
    let Ok(_permit) = app.lookups.try_acquire() else {
        return Err(ApiError::Unavailable {
            retry_after: super::queue::jittered_retry(),
        });
    };
    let ttl = u64::try_from(app.config.pass_ttl().as_millis()).unwrap_or(u64::MAX);
    let ticket = app.store.admission(claims.round, claims.student).await?;
    let exp = ticket
        .filter(|t| t.state == waitroom::TicketState::Admitted && t.lease == Some(claims.lease))
        .and_then(|t| t.pass_expires_at_ms(ttl))
        .ok_or(ApiError::TokenExpired)?;
    match view.pass_time(now, exp) {
        PassTime::Running => {}
        // Alive when admission last ran (held, or not run for a while):
        // the time is about to be given back, so this is "try again
        // later", like any command while held, not "expired".
        PassTime::Owed => {
            return Err(ApiError::Unavailable {
                retry_after: super::queue::jittered_retry(),
            })
        }
        PassTime::Over => return Err(ApiError::TokenExpired),
    }
    let claims = PassClaims { exp, ..claims };
    let token = app.keyring.sign_pass(&claims);
    metrics::counter!("sluice_passes_renewed_total").increment(1);
    Ok((claims, token))
}

/// One decided item of a command.
#[derive(Debug, Serialize, ToSchema)]
pub struct Item {
    pub section: Option<u32>,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    #[schema(value_type = Option<String>)]
    pub message_ko: Option<&'static str>,
    #[schema(value_type = Option<String>)]
    pub message_en: Option<&'static str>,
    /// 0 when `section` is the item's first choice, k when it is its k-th
    /// alternate.
    pub choice: u8,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Outcome {
    #[schema(value_type = String, format = Uuid)]
    pub command_id: CommandId,
    /// `queued` until the worker recorded the outcome, then `decided`.
    #[schema(value_type = String)]
    pub state: &'static str,
    pub items: Vec<Item>,
    /// While `queued`: when to ask again. Clients that follow it spread
    /// their reads over time instead of hammering the database in step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_after_ms: Option<u64>,
}

/// Suggested wait between result reads while a command is queued.
const RESULT_POLL_MS: (u64, u64) = (750, 1_500);

/// `GET /api/commands/{id}`: the outcome once the worker recorded it. Only
/// the student who sent the command may read it.
#[utoipa::path(
    get,
    path = "/api/commands/{id}",
    tag = "commands",
    params(("id" = String, Path, format = Uuid, description = "The command id (a UUID)")),
    security(("pass" = []), ("pass_cookie" = []), ("queue_token" = []), ("queue_cookie" = [])),
    responses(
        (status = 200, description = "`queued`, or `decided` with its items", body = Outcome),
        BadRequest,
        Unauthorized,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn outcome(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    jar: CookieJar,
    Path(id): Path<String>,
) -> ApiResult<Json<Outcome>> {
    let id: CommandId = id
        .parse()
        .map_err(|_| ApiError::Invalid("not a command id".into()))?;
    let student = match reader(&app, &headers, &jar) {
        Ok(student) => student,
        Err(e) => {
            app.limits.check_ip(ip)?;
            return Err(e);
        }
    };
    // Result reads have a budget of their own, per student: a page watching
    // a long backlog must not lock its owner out of enrolling, and many
    // students share one address. Clients are told how often to ask.
    app.limits.check_reads(student)?;
    let items: Vec<Item> = db::outcomes::of_command(&app.store, id, student)
        .await?
        .into_iter()
        .map(|i| {
            let known = i.reason.as_deref().and_then(Reason::from_code);
            Item {
                section: i.section_id,
                action: i.action,
                outcome: i.outcome,
                reason: i.reason,
                message_ko: known.map(Reason::message_ko),
                message_en: known.map(Reason::message_en),
                choice: i.choice,
            }
        })
        .collect();
    let state = if items.is_empty() {
        "queued"
    } else {
        "decided"
    };
    let poll_after_ms = (state == "queued")
        .then(|| rand::thread_rng().gen_range(RESULT_POLL_MS.0..=RESULT_POLL_MS.1));
    Ok(Json(Outcome {
        command_id: id,
        state,
        items,
        poll_after_ms,
    }))
}

/// The student a pass or queue token speaks for; results stay readable
/// after the pass expired, so only the signature is checked.
pub(super) fn reader(app: &AppState, headers: &HeaderMap, jar: &CookieJar) -> ApiResult<StudentId> {
    if let Some((pass, _)) = pass_token(headers, jar) {
        if let Ok(c) = app.keyring.open_pass(&pass) {
            return Ok(c.student);
        }
    }
    let token = queue_token(headers, jar).ok_or(ApiError::BadToken)?;
    Ok(app
        .keyring
        .verify_queue(&token, crate::clock::now_ms())?
        .student)
}
