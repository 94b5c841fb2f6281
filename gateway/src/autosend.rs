//! "Send my cart when I am admitted": an opted-in student's cart becomes
//! one enroll command the moment they are admitted, whether or not their
//! phone is awake.
//!
//! The admitting side sends: while this gateway leads admission, a task
//! looks every [`EVERY`] for opted-in students the leader admitted and
//! sends their carts. A student's own poll is the fallback (a leader that
//! just failed over, say): the first poll that finds them admitted with
//! the cart not yet sent starts a send too. Both may try, and a broker or
//! database outage makes both retry later; none of it can send twice,
//! because the command id is derived from the admission (the pass's lease
//! and the student, [`command_id`]), the same on every gateway and every
//! try, and the worker decides each id once. An opt-in is marked `sent`
//! only after the broker confirmed the command, so an outage loses
//! nothing: the opt-in waits in MySQL and is sent on the next try.

use crate::db::{self, auto_send::Due};
use crate::AppState;
use enrollment::{Command, CommandId};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use waitroom::room::PassTime;
use waitroom::{PassClaims, RoundState};

/// How often the leading gateway looks for carts to send.
pub const EVERY: Duration = Duration::from_millis(250);

/// Carts sent per look (at once: each waits for its own confirm).
const BATCH: u32 = 64;

/// Sends started by polls at once on one gateway; more are left to the
/// leader.
pub const POLL_SENDS: usize = 16;

/// The idempotency key every sender derives the command id with.
const KEY: &str = "auto-send";

/// The command id of the cart sent under `pass`'s admission.
pub fn command_id(app: &crate::App, pass: &str) -> Option<CommandId> {
    app.keyring.command_id(pass, KEY, b"").ok().map(CommandId)
}

/// What one try came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Confirmed by the broker.
    Sent(CommandId),
    /// Nothing in the cart to send.
    Empty,
    /// The admission ended first.
    Expired,
    /// Not now (the round's state is not known here yet); tried again.
    Later,
}

/// Sends carts while this gateway leads admission, until `stop`.
pub async fn run(app: AppState, stop: CancellationToken) {
    let mut interval = tokio::time::interval(EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => return,
        }
        if !app.is_leader.load(Ordering::Relaxed) {
            continue;
        }
        if let Err(e) = dispatch(&app).await {
            tracing::warn!(error = %e, "auto-send look failed; tried again");
        }
    }
}

/// Sends the carts of admitted students who opted in; returns how many
/// were sent.
pub async fn dispatch(app: &AppState) -> Result<usize, db::StoreError> {
    let due = db::auto_send::due(&app.store, BATCH).await?;
    let tries = futures_util::future::join_all(due.into_iter().map(|d| send(app, d))).await;
    Ok(tries
        .into_iter()
        .filter(|t| matches!(t, Ok(Sent::Sent(_))))
        .count())
}

/// Why a try must be made again later.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Store(#[from] db::StoreError),
    #[error("the broker did not confirm the command")]
    NotConfirmed,
}

/// Sends one admitted student's cart, or records why there is nothing to
/// send. Safe to call from several places at once (see the module docs).
pub async fn send(app: &AppState, d: Due) -> Result<Sent, SendError> {
    let ttl = u64::try_from(app.config.pass_ttl().as_millis()).unwrap_or(u64::MAX);
    let exp = waitroom::room::pass_end_ms(d.admitted_at_ms, ttl, d.pass_extra_ms);
    let now = crate::clock::now_ms();
    let snapshot = app.rooms.snapshot();
    let view = snapshot.rounds.get(&d.round).map(|r| &r.view);
    let state = view.map(|v| v.state);
    let time = view.map_or(waitroom::room::pass_time(now, exp, now), |v| {
        v.pass_time(now, exp)
    });
    if time == PassTime::Owed {
        // Ended during an outage whose time is about to be given back.
        return Ok(Sent::Later);
    }
    if time == PassTime::Over || state == Some(RoundState::Closed) {
        db::auto_send::record(&app.store, d.round, d.student, "expired", None).await?;
        counted("expired");
        return Ok(Sent::Expired);
    }
    if !matches!(state, Some(RoundState::Open | RoundState::Paused)) {
        return Ok(Sent::Later);
    }
    let pass = app.keyring.sign_pass(&PassClaims {
        round: d.round,
        student: d.student,
        lease: d.lease,
        budget: app.config.pass_budget,
        iat: d.admitted_at_ms,
        exp,
    });
    let Some(id) = command_id(app, &pass) else {
        return Ok(Sent::Later);
    };
    let Some(action) = cart_action(app, d.student).await? else {
        db::auto_send::record(&app.store, d.round, d.student, "empty", None).await?;
        counted("empty");
        return Ok(Sent::Empty);
    };
    let mut command = Command::new(d.student, d.round, pass, action);
    command.id = id;
    if command.validate().is_err() {
        // The cart is checked as it is written; a command it cannot make
        // is recorded as nothing to send rather than retried for ever.
        db::auto_send::record(&app.store, d.round, d.student, "empty", None).await?;
        counted("empty");
        return Ok(Sent::Empty);
    }
    if let Err(e) = app.sink.publish(&command).await {
        tracing::warn!(command.id = %id, reason = e.kind, "auto-send not confirmed; tried again");
        counted("not_confirmed");
        return Err(SendError::NotConfirmed);
    }
    metrics::counter!("sluice_commands_accepted_total", "action" => "enroll").increment(1);
    counted("sent");
    db::auto_send::record(&app.store, d.round, d.student, "sent", Some(id)).await?;
    Ok(Sent::Sent(id))
}

fn counted(result: &'static str) {
    metrics::counter!("sluice_auto_send_total", "result" => result).increment(1);
}

/// The poll's part, when it finds `student` admitted: whether they opted
/// in (one bounded read per admission per gateway, remembered; for an
/// opt-in not sent yet, also the cart, so that a cart with nothing to send
/// names no command), and if their cart is not sent yet, a send started
/// in the background. Returns
/// the command id to follow when they opted in. Students who did not opt
/// in pay one point read when admitted, never while waiting.
pub async fn on_admitted(
    app: &AppState,
    seq: u64,
    round: enrollment::RoundId,
    student: enrollment::StudentId,
    pass: &str,
) -> Option<CommandId> {
    let opted = match app.auto_sends.get(&seq).map(|v| *v) {
        Some(opted) => opted,
        None => {
            let _permit = app.lookups.try_acquire().ok()?;
            let row = db::auto_send::of(&app.store, round, student).await.ok()?;
            let mut opted = Opted::of(row.as_ref().map(|r| r.state.as_str()));
            if opted == Opted::Waiting {
                if cart_action(app, student).await.ok()?.is_some() {
                    fallback(app, round, student);
                } else {
                    // The send will find nothing: name no command, so no
                    // client waits for an outcome that cannot come.
                    opted = Opted::Nothing;
                }
            }
            if app.auto_sends.len() >= 200_000 {
                app.auto_sends.clear();
            }
            app.auto_sends.insert(seq, opted);
            opted
        }
    };
    match opted {
        Opted::Waiting | Opted::Sent => command_id(app, pass),
        Opted::No | Opted::Nothing => None,
    }
}

/// The enroll `student`'s cart makes (its sections not already held, with
/// their choices), or `None` when there is nothing to send.
async fn cart_action(
    app: &AppState,
    student: enrollment::StudentId,
) -> Result<Option<enrollment::Action>, db::StoreError> {
    let (items, standing) = tokio::try_join!(
        db::cart::items(&app.store, student),
        db::standing::of(&app.store, student),
    )?;
    let held = standing.map(|s| s.enrolled).unwrap_or_default();
    Ok(crate::cart::enroll_action(&items, &held, false))
}

/// What a gateway knows of an admitted student's opt-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opted {
    /// They did not ask.
    No,
    /// Not sent yet, with something in the cart to send.
    Waiting,
    Sent,
    /// Nothing was sent: the cart was empty, or the admission ended first.
    /// The student is named no command to follow, and enrolls by hand.
    Nothing,
}

impl Opted {
    fn of(state: Option<&str>) -> Opted {
        match state {
            None => Opted::No,
            Some("waiting") => Opted::Waiting,
            Some("sent") => Opted::Sent,
            Some(_) => Opted::Nothing,
        }
    }
}

/// Starts a send for one student in the background, if a slot is free.
fn fallback(app: &AppState, round: enrollment::RoundId, student: enrollment::StudentId) {
    let Ok(permit) = Arc::clone(&app.auto_send_polls).try_acquire_owned() else {
        return;
    };
    let app = Arc::clone(app);
    tokio::spawn(async move {
        let _permit = permit;
        match db::auto_send::due_for(&app.store, round, student).await {
            Ok(Some(d)) => {
                if let Err(e) = send(&app, d).await {
                    tracing::debug!(error = %e, "auto-send from a poll failed; the leader retries");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "auto-send lookup failed"),
        }
    });
}
