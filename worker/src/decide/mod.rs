//! Deciding commands: one MySQL transaction for a group of commands.
//!
//! [`decide`] is the whole of the worker's decision logic, a plain function
//! of (commands, transaction) so tests can drive it without a broker. It
//! runs in four steps, one file each after the first:
//!
//! 1. **check** each command's pass (signature, student and round binding,
//!    expiry at the time the gateway accepted the command), with no I/O;
//!    a command its pass refuses locks and reads nothing;
//! 2. **load** (`load.rs`) one [`World`] (`world.rs`), plain values read
//!    under locks: every section the
//!    group touches, in id order; under those locks, the head of the
//!    waitlist of every section that has a free seat or a drop in the
//!    group; then every student (the commands' and the waiting ones), in
//!    id order. Sections before students, each in id order, is one global
//!    order, so two workers cannot deadlock on them. Then what the rules
//!    need: the commands already decided (a redelivery, left alone), the
//!    pass budgets used, admissions that ended, rounds, held sections,
//!    credits, prerequisites, meetings and transcripts;
//! 3. **plan** ([`plan()`], `plan.rs`), a pure function of the world, the
//!    commands and `now` (no I/O, no clock): gives free seats to waiting students, then decides every
//!    command in arrival order against an in-memory view that includes the
//!    group's earlier decisions, and returns a [`Plan`] (`outcome.rs`):
//!    the decisions with the [`Writes`] they need;
//! 4. **write** (`write.rs`) enrollments, waitlist changes (each guarded on
//!    the state it was read in), one seat-count update per section and one
//!    outcome row per command item and per waitlist entry resolved.
//!
//! The waitlist is read only under the section lock: every writer of a
//! section's waitlist holds that lock, so what is read is what is there. A
//! seat is never left free while the line is not exhausted: if every
//! candidate read was passed over, the world is loaded again with a longer
//! read of the line (nothing is written yet and the locks stay held) and
//! the group planned again.
//!
//! [`fill`] runs the same steps with no command for sections whose line
//! waits behind a free seat ([`fillable`]): a registrar raised the
//! capacity or reopened the section, and no student will act on it.
//!
//! The caller commits, then acks. Because the outcome rows (keyed by command
//! id) commit atomically with the seat changes, a command redelivered after a
//! crash finds itself among the commands already decided and has no second
//! effect.

mod load;
mod outcome;
mod plan;
mod sql;
mod world;
mod write;

pub use outcome::{Decision, NewEntry, Outcome, OutcomeRow, Plan, Writes};
pub use plan::plan;
pub use world::{Checked, Line, Round, Waiting, World};
pub use write::record_failed;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use enrollment::{Command, CommandId, Reason, SectionId};
use load::{load, WAITLIST_MAX, WAITLIST_SPARE};
use sqlx::MySqlConnection;
use uuid::Uuid;
use waitroom::{Keyring, TokenError};
use write::write;

/// Why [`decide`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A row was not in the state read under the locks held. Only a writer
    /// that skips the section lock can cause it; the transaction is rolled
    /// back and tried again.
    #[error("{0} changed under the section lock")]
    Stale(&'static str),
}

/// What the decision depends on besides the commands and the database.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub keyring: &'a Keyring,
    /// Written to `command_outcomes.decided_by`.
    pub worker: &'a str,
    pub now: DateTime<Utc>,
    /// A command older than this when decided is refused as expired, so an
    /// expired pass cannot be replayed with a back-dated command.
    pub max_command_age: ChronoDuration,
}

/// Decides `commands` (in arrival order) inside the caller's transaction.
/// Returns one [`Decision`] per command, in the same order.
pub async fn decide(
    tx: &mut MySqlConnection,
    ctx: &Context<'_>,
    commands: &[&Command],
) -> Result<Vec<Decision>, DecideError> {
    let checked: Vec<Checked<'_>> = commands.iter().map(|c| check_pass(ctx, c)).collect();
    Ok(run(tx, ctx, &checked, &[]).await?.decisions)
}

/// Gives the free seats of `sections` to their waiting students, with no
/// command: what a capacity raised or a section reopened by a registrar
/// needs, since no student acts then. Locks, plans and writes exactly as
/// a command touching those sections would (promotions and skips get
/// their outcome rows). Returns the waitlist entries resolved.
pub async fn fill(
    tx: &mut MySqlConnection,
    ctx: &Context<'_>,
    sections: &[SectionId],
) -> Result<usize, DecideError> {
    let planned = run(tx, ctx, &[], sections).await?;
    Ok(planned.writes.outcomes.len())
}

/// Up to `limit` open sections, in id order, with a free seat and a
/// student of an accepting round waiting: the sections [`fill`] has work
/// in. Reads without locks; `fill` decides under them.
pub async fn fillable(
    conn: &mut MySqlConnection,
    limit: u32,
) -> Result<Vec<SectionId>, DecideError> {
    load::fillable(conn, limit).await
}

/// Load, plan and write, reading longer stretches of the lines while
/// seats would stay free with students unread.
async fn run(
    tx: &mut MySqlConnection,
    ctx: &Context<'_>,
    checked: &[Checked<'_>],
    fill: &[SectionId],
) -> Result<Plan, DecideError> {
    // Each waitlist entry resolved gets an outcome row of its own: its
    // command already has one (`waitlisted`).
    let mut new_id = || CommandId(Uuid::now_v7());
    let mut spare = WAITLIST_SPARE;
    loop {
        let world = load(tx, checked, fill, spare).await?;
        let planned = plan(world, checked, ctx.now, &mut new_id);
        if planned.line_cut_short && spare < WAITLIST_MAX {
            // Nothing is written yet and the locks stay held: plan again
            // with a longer read of the line.
            spare = spare.saturating_mul(8).min(WAITLIST_MAX);
            continue;
        }
        write(tx, ctx, &planned.writes).await?;
        return Ok(planned);
    }
}

fn unix_ms(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

/// Checks `cmd`'s pass against the keys, `ctx.now` and the command itself.
fn check_pass<'c>(ctx: &Context<'_>, cmd: &'c Command) -> Checked<'c> {
    let mut checked = Checked {
        cmd,
        lease: None,
        budget: 0,
        early: None,
    };
    let claims = match ctx.keyring.open_pass(&cmd.pass) {
        Ok(c) => c,
        Err(_) => {
            checked.early = Some(Reason::PassInvalid);
            return checked;
        }
    };
    checked.lease = Some(claims.lease);
    checked.budget = claims.budget;
    let issued = cmd.issued_at;
    let skew = ChronoDuration::milliseconds(waitroom::token::CLOCK_SKEW_MS as i64);
    if issued > ctx.now + skew || ctx.now - issued > ctx.max_command_age {
        checked.early = Some(Reason::PassExpired);
        return checked;
    }
    checked.early = match claims.check(cmd.student, cmd.round, unix_ms(issued)) {
        Ok(()) => None,
        Err(TokenError::Mismatch) => Some(Reason::PassMismatch),
        Err(TokenError::Expired) => Some(Reason::PassExpired),
        Err(_) => Some(Reason::PassInvalid),
    };
    checked
}
