//! The waiting-room API: join, status, leave, and a round's public facts.
//!
//! A status poll reads only the signed token and this gateway's snapshot;
//! the one exception is the moment a student's key passes the serving mark,
//! when one bounded point read learns whether they were admitted (and their
//! lease), cached so later polls do not repeat it.

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::http::api::openapi::responses::{
    BadRequest, Conflict, Forbidden, Internal, JsonBodyErrors, NotFound, TooMany, Unauthorized,
    Unavailable,
};
use crate::http::extract::{same_origin, ClientIp, JsonBody};
use crate::rooms::Room;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use axum_extra::extract::cookie::{Cookie, CookieJar};
use enrollment::{RoundId, StudentId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use waitroom::estimate::{self, Estimate};
pub mod cart;
mod json;
mod tokens;

pub use tokens::{
    header_token, pass_token, queue_token, queue_token_in, token_or_cookie, with_cookies,
    QueueTokenHeader, PASS_COOKIE, PASS_HEADER, QUEUE_COOKIE, QUEUE_HEADER,
};
use waitroom::{
    JoinRefused, JoinRequest, PassClaims, QueueClaims, RoundState, Ticket, TicketState,
};

/// A queue token older than this is re-signed by the next poll.
const RENEW_AFTER_MS: u64 = 60_000;

/// Decided tickets kept per gateway before the cache is cleared.
const DECIDED_CAP: usize = 200_000;

/// Where a student stands, as the API and the queue page show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The room is not open yet; the place is held.
    Prequeue,
    Waiting,
    /// Admission is stopped; the place is kept.
    Paused,
    Admitted,
    /// Not seen for longer than the grace period; join again.
    Skipped,
    Left,
    /// The admission pass ran out; join again.
    Expired,
    Closed,
}

/// Why the page shows a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// An admin paused admission.
    Paused,
    /// A dependency is down; admission is held.
    Held,
    /// This gateway cannot reach the room state.
    Unavailable,
    /// The admission rate was lowered recently.
    Slowed,
    /// Every admission slot is taken; waiting for students to finish.
    SeatsBusy,
    /// The student's turn passed while they were away; they came back
    /// within the reclaim window and are admitted at the next tick.
    Returned,
    /// The automatic pace lowered the rate lately because the workers are
    /// behind; `pace` says when and why.
    WorkersBusy,
}

impl Notice {
    /// Every notice.
    pub const ALL: [Notice; 7] = [
        Notice::Paused,
        Notice::Held,
        Notice::Unavailable,
        Notice::Slowed,
        Notice::SeatsBusy,
        Notice::Returned,
        Notice::WorkersBusy,
    ];
}

/// A round's automatic pace as the student sees it: the rate the estimate
/// follows, and when and why it last changed.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct PaceInfo {
    pub mode: &'static str,
    pub per_min: u32,
    pub floor: u32,
    pub ceiling: u32,
    /// `backlog`, `latency`, `healthy`, `steady` or `unknown`; absent before
    /// the leader's first step.
    #[schema(value_type = Option<String>)]
    pub reason: Option<waitroom::autopace::PaceReason>,
    /// The backlog (commands) or the latency (ms) behind the reason.
    pub signal: Option<u64>,
    pub changed_at_ms: Option<u64>,
    /// Admissions a minute the workers were measured to keep up with (in
    /// this round, or the last round measured); waits are estimated with it
    /// once it has settled (until then `estimate.rough`). `null` before any
    /// measurement.
    pub capacity_per_min: Option<u32>,
}

impl PaceInfo {
    /// The pace of `view`, when automatic.
    pub fn of(view: &waitroom::RoundView) -> Option<PaceInfo> {
        view.pace.map(|p| PaceInfo {
            mode: "auto",
            per_min: view.admission_per_min,
            floor: p.settings.floor,
            ceiling: p.settings.ceiling,
            reason: p.reason,
            signal: p.signal,
            changed_at_ms: p.changed_at_ms,
            capacity_per_min: p.capacity_per_min,
        })
    }

    /// Whether the rate went down lately because the workers are behind.
    pub fn workers_busy(&self, now_ms: u64) -> bool {
        self.reason.is_some_and(|r| r.workers_behind())
            && self
                .changed_at_ms
                .is_some_and(|t| now_ms.saturating_sub(t) < WORKERS_BUSY_SHOWN_MS)
    }
}

/// How long a lowered automatic pace is explained on the queue page.
const WORKERS_BUSY_SHOWN_MS: u64 = 300_000;

/// The answer to join and status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Status {
    pub state: Phase,
    #[schema(value_type = u32)]
    pub round: RoundId,
    #[schema(value_type = String)]
    pub round_name: Arc<str>,
    pub position: Option<u64>,
    pub ahead: Option<u64>,
    #[schema(value_type = Option<crate::http::api::openapi::schemas::EstimateDoc>)]
    pub estimate: Option<Estimate>,
    pub progress: Option<f64>,
    pub notice: Option<Notice>,
    pub opens_in_secs: Option<u64>,
    /// When to poll next (with jitter); 0 when there is nothing to wait for.
    pub poll_after_ms: u64,
    /// The renewed queue token (also set as a cookie), when it was renewed:
    /// new tokens, tokens that learned their place, and tokens older than
    /// a minute. Clients keep the last token they were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The admission pass once admitted (also set as a cookie).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_expires_at_ms: Option<u64>,
    /// The automatic pace, on rounds that use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace: Option<PaceInfo>,
    /// Once admitted, for a student who opted in to send their cart at
    /// admission: the command to follow (sent, or about to be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_send: Option<AutoSendCommand>,
    /// On rounds that give some classes an earlier turn: the student's
    /// class line. `position` and `ahead` are then places in that line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<PriorityInfo>,
}

/// A waiting student's class line in a round with priority.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PriorityInfo {
    /// `strict` (earlier classes first) or `weighted` (turns by weight).
    pub mode: &'static str,
    /// The student's line, 0 first.
    pub lane: u8,
    /// How many lines the round has.
    pub lanes: u8,
    /// The class years of the student's line, e.g. `4` or `1-3`.
    pub years: String,
    /// Admissions from other lines expected before the student's turn, if
    /// nobody else arrives; the estimate counts them.
    pub ahead_in_other_classes: u64,
    /// Whether students arriving later in other lines can still go
    /// first (every line but the first under strict order; every line
    /// under weights), so the estimate may grow.
    pub may_grow: bool,
}

/// The command a student's cart is sent as at admission.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AutoSendCommand {
    #[schema(value_type = String, format = Uuid)]
    pub command_id: enrollment::CommandId,
    pub status_url: String,
}

impl AutoSendCommand {
    pub fn new(command_id: enrollment::CommandId) -> AutoSendCommand {
        AutoSendCommand {
            command_id,
            status_url: format!("/api/commands/{command_id}"),
        }
    }
}

/// Credentials for joining without a session (apps); with a session
/// cookie the body may be `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    pub student_number: Option<String>,
    pub password: Option<String>,
}

/// `POST /api/rounds/{id}/join`: takes (or keeps) the student's place.
#[utoipa::path(
    post,
    path = "/api/rounds/{id}/join",
    tag = "queue",
    params(("id" = u32, Path, description = "The round's id")),
    security((), ("session" = [])),
    request_body(content = JoinBody, description = "Credentials, or `{}` with a session cookie"),
    responses(
        (status = 200, description = "Where the student stands; the queue token (and pass) cookies are set", body = Status),
        JsonBodyErrors,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        TooMany,
        Internal,
        Unavailable,
    )
)]
pub async fn join(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(round): Path<u32>,
    headers: HeaderMap,
    jar: CookieJar,
    JsonBody(body): JsonBody<JoinBody>,
) -> ApiResult<(CookieJar, Status)> {
    let student = match (body.student_number, body.password) {
        (Some(number), Some(password)) => {
            // Credentials are anonymous until checked: the per-address
            // ceiling applies, sized for a campus behind one address.
            app.limits.check_ip(ip)?;
            auth::student(
                &app.store,
                &app.passwords,
                number.trim(),
                SecretString::from(password),
            )
            .await?
        }
        (None, None) => {
            // Cookie-authenticated: refuse another site's page.
            same_origin(&headers)?;
            crate::session::current(&app, &jar)
                .and_then(crate::session::StudentSession::from_claims)
                .map(|s| s.student())
                .ok_or(ApiError::SignInRequired)?
        }
        _ => {
            return Err(ApiError::Invalid(
                "give student_number and password, or sign in first".into(),
            ))
        }
    };
    let status = join_as(&app, RoundId(round), student).await?;
    Ok((with_cookies(&app, jar, &status), status))
}

/// Takes (or keeps) `student`'s place in `round`.
pub async fn join_as(app: &AppState, round: RoundId, student: auth::Student) -> ApiResult<Status> {
    app.limits.check_student(student.id)?;
    // Fail closed and fast: while the room state is unreachable a join could
    // only wait for the database; answer at once and spread the retries.
    if !app.rooms.is_fresh(app.config.stale_after()) {
        return Err(ApiError::Unavailable {
            retry_after: jittered_retry(),
        });
    }
    let snapshot = app.rooms.snapshot();
    let room = snapshot.rounds.get(&round).ok_or(ApiError::NotFound)?;
    if !room.view.admits_year(student.class_year) {
        return Err(ApiError::NotEligible);
    }
    if !room.view.state.accepts_joins() {
        return Err(ApiError::RoundNotOpen);
    }
    let now = crate::clock::now_ms();
    let place = match app
        .joiner
        .join(JoinRequest {
            round,
            student: student.id,
            at_ms: now,
        })
        .await?
    {
        Ok(place) => place,
        Err(JoinRefused::UnknownRound) => return Err(ApiError::NotFound),
        Err(JoinRefused::NotOpen) => return Err(ApiError::RoundNotOpen),
    };
    room.counters.joins.increment(1);
    if place.kept {
        app.liveness.record(place.ticket.seq);
    } else {
        // The new ticket's `last_seen_at` is the join's time, written
        // with it.
        app.liveness.joined(place.ticket.seq, now);
    }
    let claims = QueueClaims {
        round,
        student: student.id,
        seq: place.ticket.seq,
        order_key: place.ticket.order_key,
        mark_at_join: place.mark_at_join,
        iat: now,
        exp: now,
    };
    if place.ticket.state != TicketState::Waiting {
        app.remember(&place.ticket);
    }
    resolve(app, room, claims, now).await
}

/// `GET /api/queue/status`: where the holder of a queue token stands.
#[utoipa::path(
    get,
    path = "/api/queue/status",
    tag = "queue",
    security(("queue_token" = []), ("queue_cookie" = [])),
    responses(
        (status = 200, description = "Where the student stands", body = Status),
        Unauthorized,
        NotFound,
        TooMany,
        Unavailable,
    )
)]
pub async fn status(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    QueueTokenHeader(header_token): QueueTokenHeader,
    jar: CookieJar,
) -> ApiResult<(CookieJar, Status)> {
    status_for(&app, ip, header_token.as_deref(), jar).await
}

/// The status poll itself, shared by the routed handler and the listener's
/// direct path ([`crate::http::lane`]).
pub async fn status_for(
    app: &AppState,
    ip: std::net::IpAddr,
    header_token: Option<&str>,
    jar: CookieJar,
) -> ApiResult<(CookieJar, Status)> {
    let Some(token) = token_or_cookie(header_token, &jar) else {
        // Anonymous: only the per-address ceiling applies.
        app.limits.check_ip(ip)?;
        return Err(ApiError::BadToken);
    };
    let status = match poll(app, token).await {
        Err(e @ (ApiError::BadToken | ApiError::TokenExpired)) => {
            // A forged or expired token is anonymous traffic.
            app.limits.check_ip(ip)?;
            return Err(e);
        }
        other => other?,
    };
    Ok((with_cookies(app, jar, &status), status))
}

/// Records that the holder of `token` is here, if it is a valid queue
/// token: a poll that is refused or shed still proves the student is
/// present, and must keep their place (the refusal is the system's, not
/// theirs).
pub fn seen(app: &AppState, token: &str) {
    if let Ok(claims) = app.keyring.verify_queue(token, crate::clock::now_ms()) {
        app.liveness.record(claims.seq);
    }
}

/// One poll with a queue token. Limited per student, never per address:
/// hundreds of students share one campus or carrier address.
pub async fn poll(app: &AppState, token: &str) -> ApiResult<Status> {
    let now = crate::clock::now_ms();
    let claims = app.keyring.verify_queue(token, now)?;
    // Seen before the limit: a flooded or refused poll still keeps the place.
    app.liveness.record(claims.seq);
    app.limits.check_student(claims.student)?;
    let snapshot = app.rooms.snapshot();
    let room = snapshot
        .rounds
        .get(&claims.round)
        .ok_or(ApiError::NotFound)?;
    room.counters.polls.increment(1);
    resolve(app, room, claims, now).await
}

/// Works out where the holder of `claims` stands.
async fn resolve(
    app: &AppState,
    room: &Arc<Room>,
    mut claims: QueueClaims,
    now: u64,
) -> ApiResult<Status> {
    let view = &room.view;
    let (poll_min, poll_max) = app.config.poll_bounds();
    let jitter: f64 = rand::random();
    let mut status = Status {
        state: Phase::Waiting,
        round: view.id,
        round_name: Arc::clone(&room.name),
        position: None,
        ahead: None,
        estimate: None,
        progress: None,
        notice: None,
        opens_in_secs: None,
        poll_after_ms: ms(estimate::poll_interval(None, poll_min, poll_max, jitter)),
        token: None,
        pass: None,
        pass_expires_at_ms: None,
        pace: PaceInfo::of(view),
        auto_send: None,
        priority: None,
    };
    // Re-signing costs an HMAC, a cookie and bytes on every poll; a token
    // is renewed only when new, when it learns its place in the shuffled
    // order, or once it is a minute old (it lives for many minutes).
    let key_before = claims.order_key;
    if claims.order_key.is_none() {
        claims.order_key = room.cohort_key(claims.seq);
    }
    let renewal = |claims: &QueueClaims| {
        (claims.exp <= claims.iat
            || claims.order_key != key_before
            || now.saturating_sub(claims.iat) >= RENEW_AFTER_MS)
            .then(|| renew(app, claims, now))
    };

    match view.state {
        RoundState::Closed => {
            status.state = Phase::Closed;
            status.poll_after_ms = 0;
            return Ok(status);
        }
        RoundState::Scheduled | RoundState::Prequeue => {
            status.state = Phase::Prequeue;
            let opens_in = view.opens_at_ms.saturating_sub(now) / 1000;
            status.opens_in_secs = Some(opens_in);
            // Poll faster as opening nears, so nobody learns their place late.
            let until = std::time::Duration::from_secs(opens_in / 2);
            status.poll_after_ms = ms(until.clamp(poll_min, poll_max).mul_f64(0.8 + 0.4 * jitter));
            status.token = renewal(&claims);
            return Ok(status);
        }
        RoundState::Open | RoundState::Paused => {}
    }

    let fresh = app.rooms.is_fresh(app.config.stale_after());
    let mut key = claims.order_key;
    let decided = key.is_none_or(|k| view.line_place(k).decided());
    // A stale snapshot means the database is unreachable: the place is kept
    // and nothing is asked of the database until the snapshot recovers. A
    // ticket this gateway already saw decided is answered from memory either
    // way (admitted, skipped and left never change back).
    // (When fresh, `lookup` consults the same memory first.)
    let known = if fresh {
        None
    } else {
        app.decided.get(&claims.seq).map(|t| t.clone())
    };
    if (fresh || known.is_some())
        && decided
        && (key.is_some() || room.cohort.is_some() || view.cohort_size == 0)
    {
        let found = match known {
            Some(t) => Lookup::Found(t),
            // The awaits of the decided paths are boxed (here and below):
            // in place, their futures made every poll's future as large as
            // the largest of them, copied by value on each poll, though
            // a waiting student's poll awaits nothing.
            None => Box::pin(lookup(app, claims.seq)).await,
        };
        match found {
            Lookup::Found(t) if t.student == claims.student && t.round == claims.round => {
                match t.state {
                    TicketState::Admitted => {
                        let mut status = admitted(app, status, &t, now, view);
                        if status.state == Phase::Paused {
                            // Spread out: every student admitted before an
                            // outage asks again when it ends.
                            status.notice = Some(if view.hold.is_some() {
                                Notice::Held
                            } else {
                                Notice::Unavailable
                            });
                            status.poll_after_ms = ms(poll_max.mul_f64(0.5 + 0.5 * jitter));
                            status.token = renewal(&claims);
                        }
                        if status.state == Phase::Admitted {
                            // A join that finds the student admitted (a
                            // second device) needs a token to poll with.
                            status.token = renewal(&claims);
                            if let Some(pass) = &status.pass {
                                status.auto_send = Box::pin(crate::autosend::on_admitted(
                                    app, t.seq, t.round, t.student, pass,
                                ))
                                .await
                                .map(AutoSendCommand::new);
                            }
                        }
                        return Ok(status);
                    }
                    TicketState::Skipped => match Box::pin(reclaim(app, &t, now)).await {
                        Reclaim::Kept => {
                            status.notice = Some(Notice::Returned);
                            status.position = Some(1);
                            status.ahead = Some(0);
                            status.progress = Some(1.0);
                            // Each such poll reads the ticket: ask often only
                            // while the next tick can admit.
                            let moving = view.admitting() && !room.saturated();
                            status.poll_after_ms = ms(if moving {
                                poll_min
                            } else {
                                poll_max.mul_f64(0.5 + 0.5 * jitter)
                            });
                            status.token = renewal(&claims);
                            return Ok(status);
                        }
                        Reclaim::TooLate => return Ok(ended(status, Phase::Skipped)),
                        Reclaim::Busy => {
                            status.state = Phase::Paused;
                            status.notice = Some(Notice::Unavailable);
                            status.poll_after_ms = ms(poll_min);
                            status.token = renewal(&claims);
                            return Ok(status);
                        }
                    },
                    TicketState::Left => return Ok(ended(status, Phase::Left)),
                    TicketState::Waiting => {
                        key = t.order_key;
                        claims.order_key = t.order_key;
                    }
                }
            }
            // Replaced by a newer ticket (joined again) or never ours.
            Lookup::Found(_) | Lookup::Missing => return Ok(ended(status, Phase::Left)),
            Lookup::Busy => {
                status.poll_after_ms = ms(poll_min);
            }
        }
    }

    let notice = if !fresh {
        Some(Notice::Unavailable)
    } else if view.state == RoundState::Paused {
        Some(Notice::Paused)
    } else if view.hold.is_some() {
        Some(Notice::Held)
    } else if room.saturated() {
        Some(Notice::SeatsBusy)
    } else if status.pace.is_some_and(|p| p.workers_busy(now)) {
        Some(Notice::WorkersBusy)
    } else if room.slowed {
        Some(Notice::Slowed)
    } else {
        None
    };
    status.notice = notice;
    if let Some(k) = key {
        // With priority, the place is in the student's class line, and the
        // wait counts the other lines' admissions that come first.
        let place = view.line_place(k);
        let ahead = estimate::ahead(place.key, place.mark);
        status.ahead = Some(ahead);
        status.position = Some(ahead + 1);
        status.progress = Some(estimate::progress(
            place.key,
            claims.mark_at_join,
            place.mark,
        ));
        let before = match &view.priority {
            Some(p) => {
                let waiting = view.lane_waiting();
                let lanes = p.lanes().min(waiting.len());
                let lane = usize::from(place.lane);
                let before = p.admissions_before(&waiting[..lanes], lane, ahead);
                status.priority = Some(PriorityInfo {
                    mode: p.mode().as_str(),
                    lane: place.lane,
                    lanes: lanes as u8,
                    years: waitroom::priority::years_text(p.lane_years(lane)),
                    ahead_in_other_classes: before - ahead,
                    may_grow: p.may_grow(lane),
                });
                before
            }
            None => ahead,
        };
        if !fresh {
            // Everyone who polls during an outage would otherwise come back
            // in the same instant: spread them over the longest interval.
            status.state = Phase::Paused;
            status.poll_after_ms = ms(poll_max.mul_f64(0.5 + 0.5 * jitter));
        } else if room.halted() {
            status.state = Phase::Paused;
        } else {
            // In automatic pace the rate swings around what the workers keep
            // up with; once that was measured, waits are estimated with it,
            // counting the admissions held back to work off a backlog.
            // Before, unless the workers are seen keeping up at the current
            // rate, nothing tells where between the floor and the ceiling
            // the room will run: the range spans both, marked rough
            // ([`waitroom::PaceView::estimate`]). A full max-active cap slows the room below
            // any pace: then the measured speed counts, as in fixed mode.
            let estimate = match view.pace {
                Some(p) if !room.saturated() => {
                    let steady = room
                        .measured_per_min
                        .filter(|_| room.measured_for >= waitroom::room::STEADY_FOR);
                    p.estimate(before, view.admission_per_min, steady)
                }
                _ => Estimate::new(
                    before,
                    estimate::effective_rate(room.measured_per_min, view.admission_per_min),
                ),
            };
            let poll = estimate::poll_interval(estimate, poll_min, poll_max, jitter);
            status.poll_after_ms = ms(poll);
            status.estimate = estimate.map(|e| e.until_seen(poll));
        }
    } else {
        // Just opened: this gateway has not loaded the shuffled order yet.
        status.poll_after_ms = ms(poll_min);
        if room.halted() || !fresh {
            status.state = Phase::Paused;
        }
    }
    status.token = renewal(&claims);
    Ok(status)
}

fn ended(mut status: Status, phase: Phase) -> Status {
    status.state = phase;
    status.poll_after_ms = 0;
    status
}

/// The answer for an admitted ticket of `view`'s round: its pass, or, once
/// the pass has ended, "expired"; unless the time lost is about to be given
/// back ([`PassTime::Owed`]), when the student is told to wait, their place
/// kept.
fn admitted(
    app: &AppState,
    mut status: Status,
    t: &Ticket,
    now: u64,
    view: &waitroom::RoundView,
) -> Status {
    let ttl = ms(app.config.pass_ttl());
    let (Some(at), Some(exp), Some(lease)) = (t.admitted_at_ms, t.pass_expires_at_ms(ttl), t.lease)
    else {
        return ended(status, Phase::Left);
    };
    match view.pass_time(now, exp) {
        waitroom::room::PassTime::Running => {}
        waitroom::room::PassTime::Owed => {
            status.state = Phase::Paused;
            status.progress = Some(1.0);
            return status;
        }
        waitroom::room::PassTime::Over => return ended(status, Phase::Expired),
    }
    let pass = app.keyring.sign_pass(&PassClaims {
        round: t.round,
        student: t.student,
        lease,
        budget: app.config.pass_budget,
        iat: at,
        exp,
    });
    status.state = Phase::Admitted;
    status.position = Some(0);
    status.ahead = Some(0);
    status.progress = Some(1.0);
    status.poll_after_ms = 0;
    status.pass = Some(pass);
    status.pass_expires_at_ms = Some(exp);
    status
}

enum Reclaim {
    /// Came back in time: admitted at the next tick.
    Kept,
    /// Skipped longer ago than the reclaim window.
    TooLate,
    /// The database could not be asked; the place is not given up.
    Busy,
}

/// A skipped student is back: within the reclaim window their turn is
/// kept (the leader admits them at its next tick), otherwise it is gone.
async fn reclaim(app: &AppState, t: &Ticket, now: u64) -> Reclaim {
    // The window is for coming back; once back, the turn is kept however
    // long a pause, a hold or a full cap then delays the admission.
    if t.reclaim_requested {
        return Reclaim::Kept;
    }
    let window = app.config.reclaim_window();
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
    if !t.reclaimable(now, window_ms) {
        return Reclaim::TooLate;
    }
    let Ok(_permit) = app.lookups.try_acquire() else {
        return Reclaim::Busy;
    };
    use waitroom::RoomStore;
    match app.store.request_reclaim(t.seq, now, window_ms).await {
        Ok(true) => {
            metrics::counter!("sluice_waitroom_reclaim_requests_total").increment(1);
            Reclaim::Kept
        }
        // Admitted meanwhile (another device), or no longer skipped: the
        // next poll reads the ticket again.
        Ok(false) => Reclaim::Busy,
        Err(e) => {
            tracing::warn!(error = %e, "reclaim request failed");
            Reclaim::Busy
        }
    }
}

enum Lookup {
    Found(Ticket),
    Missing,
    /// Too many lookups at once, or the database is down: poll again.
    Busy,
}

/// The decided ticket `seq`, from the cache or one bounded point read.
async fn lookup(app: &AppState, seq: u64) -> Lookup {
    if let Some(t) = app.decided.get(&seq).map(|t| t.clone()) {
        // An admission stays one, but its pass may have been extended
        // since (an outage given back): once the end remembered is past,
        // the database is asked again.
        let ttl = ms(app.config.pass_ttl());
        let ended = t.state == TicketState::Admitted
            && t.pass_expires_at_ms(ttl)
                .is_some_and(|exp| crate::clock::now_ms() >= exp);
        if !ended {
            return Lookup::Found(t);
        }
    }
    let Ok(_permit) = app.lookups.try_acquire() else {
        return Lookup::Busy;
    };
    use waitroom::RoomStore;
    let read = app.store.ticket(seq).await;
    if read.is_ok() {
        metrics::counter!("sluice_waitroom_ticket_reads_total").increment(1);
    }
    match read {
        Ok(Some(t)) => {
            if t.state != TicketState::Waiting {
                app.remember(&t);
            }
            Lookup::Found(t)
        }
        Ok(None) => Lookup::Missing,
        Err(e) => {
            tracing::warn!(error = %e, "ticket lookup failed");
            Lookup::Busy
        }
    }
}

impl crate::App {
    /// Caches a decided ticket (admitted and left never change back; a
    /// skipped one only once its reclaim window has passed).
    fn remember(&self, t: &Ticket) {
        let window = u64::try_from(self.config.reclaim_window().as_millis()).unwrap_or(u64::MAX);
        if t.state == TicketState::Skipped
            && (t.reclaim_requested || t.reclaimable(crate::clock::now_ms(), window))
        {
            return;
        }
        if self.decided.len() >= DECIDED_CAP {
            self.decided.clear();
        }
        self.decided.insert(t.seq, t.clone());
    }
}

fn renew(app: &AppState, claims: &QueueClaims, now: u64) -> String {
    let ttl = ms(app.config.queue_token_ttl());
    app.keyring.sign_queue(&QueueClaims {
        iat: now,
        exp: now.saturating_add(ttl),
        ..claims.clone()
    })
}

/// A Retry-After of two to four seconds, so that clients told to retry
/// do not all return in the same second.
pub(crate) fn jittered_retry() -> std::time::Duration {
    std::time::Duration::from_millis(2_000 + rand::random::<u64>() % 2_000)
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whether a place was given up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Left {
    /// False when there was no place to give up.
    pub left: bool,
}

/// `POST /api/queue/leave`: gives up the place (or ends the admission).
#[utoipa::path(
    post,
    path = "/api/queue/leave",
    tag = "queue",
    security(("queue_token" = []), ("queue_cookie" = []), ("pass" = []), ("pass_cookie" = [])),
    responses(
        (status = 200, description = "The place is given up; the cookies are removed", body = Left),
        Unauthorized,
        Forbidden,
        Internal,
        Unavailable,
    )
)]
pub async fn leave(
    State(app): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
) -> ApiResult<(CookieJar, Json<Left>)> {
    let now = crate::clock::now_ms();
    let from_header = headers.contains_key(QUEUE_HEADER) || headers.contains_key(PASS_HEADER);
    if !from_header {
        same_origin(&headers)?;
    }
    let (round, student) = holder(&app, &headers, &jar, now).await?;
    let left = leave_as(&app, round, student).await?;
    // This gateway may hold the ticket as admitted; forget it, so its
    // next poll reads "left" instead of minting a pass again.
    if let Some(token) = queue_token(&headers, &jar) {
        if let Ok(c) = app.keyring.verify_queue(&token, now) {
            app.decided.remove(&c.seq);
        }
    }
    let jar = jar
        .remove(Cookie::build(QUEUE_COOKIE).path("/"))
        .remove(Cookie::build(PASS_COOKIE).path("/"));
    Ok((jar, Json(Left { left })))
}

/// Gives up `student`'s place in `round`.
pub async fn leave_as(app: &AppState, round: RoundId, student: StudentId) -> ApiResult<bool> {
    use waitroom::RoomStore;
    app.store
        .leave(round, student)
        .await
        .map_err(ApiError::from)
}

/// The round and student a queue token or pass speaks for.
///
/// A pass whose own end passed while its admission was given outage time
/// (an app holding only the pass) still speaks for its holder: it is
/// checked against the admission's extended end, as a command's is
/// (`commands::renewed`), after the student's own limit.
pub async fn holder(
    app: &AppState,
    headers: &HeaderMap,
    jar: &CookieJar,
    now: u64,
) -> ApiResult<(RoundId, StudentId)> {
    if let Some(token) = queue_token(headers, jar) {
        if let Ok(c) = app.keyring.verify_queue(&token, now) {
            return Ok((c.round, c.student));
        }
    }
    let (pass, _) = pass_token(headers, jar).ok_or(ApiError::BadToken)?;
    let c = app.keyring.open_pass(&pass)?;
    if now >= c.exp {
        // Its renewal would read the admission.
        app.limits.check_student(c.student)?;
    }
    let student = c.student;
    let (c, _) = super::commands::pass_in_time(app, c, student, now).await?;
    Ok((c.round, c.student))
}

/// A round's public facts, including the shuffle seed once published.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoundInfo {
    #[schema(value_type = u32)]
    pub id: RoundId,
    pub name: String,
    #[schema(value_type = crate::http::api::openapi::schemas::RoundStateDoc)]
    pub state: RoundState,
    pub prequeue_at_ms: u64,
    pub opens_at_ms: u64,
    pub closes_at_ms: u64,
    pub admission_per_min: u32,
    pub waiting: u64,
    pub serving_mark: u64,
    pub cohort_size: u64,
    /// Decimal string: JavaScript cannot hold every u64 as a number.
    pub shuffle_seed: Option<String>,
    #[schema(value_type = String)]
    pub shuffle_algorithm: &'static str,
}

/// `GET /api/rounds/{id}`
#[utoipa::path(
    get,
    path = "/api/rounds/{id}",
    tag = "queue",
    params(("id" = u32, Path, description = "The round's id")),
    responses(
        (status = 200, description = "The round's public facts", body = RoundInfo),
        BadRequest,
        NotFound,
        Unavailable,
    )
)]
pub async fn round(State(app): State<AppState>, Path(id): Path<u32>) -> ApiResult<Json<RoundInfo>> {
    let snapshot = app.rooms.snapshot();
    let room = snapshot
        .rounds
        .get(&RoundId(id))
        .ok_or(ApiError::NotFound)?;
    let v = &room.view;
    Ok(Json(RoundInfo {
        id: v.id,
        name: v.name.clone(),
        state: v.state,
        prequeue_at_ms: v.prequeue_at_ms,
        opens_at_ms: v.opens_at_ms,
        closes_at_ms: v.closes_at_ms,
        admission_per_min: v.admission_per_min,
        waiting: v.last_order_key.saturating_sub(v.serving_mark),
        serving_mark: v.serving_mark,
        cohort_size: v.cohort_size,
        shuffle_seed: v.shuffle_seed.map(|s| s.to_string()),
        shuffle_algorithm: "sluice-prequeue-v1",
    }))
}
