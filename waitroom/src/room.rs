//! Rounds, tickets and the shared room state behind [`RoomStore`].
//!
//! A round is one waiting room. Every join gets a ticket with a global
//! sequence number; once the round is open each ticket also has an *order
//! key*, dense per round, that fixes its place (the pre-queue cohort gets
//! keys 1..=n in the published shuffle, later arrivals follow in sequence
//! order). Admission moves the round's *serving mark* over the keys: a
//! ticket at or below the mark has been decided, admitted or skipped.
//!
//! The store is a trait so this crate stays free of SQL; the gateway keeps
//! the state in MySQL, and the decision of one admission tick
//! ([`plan_admission`]) is a pure function tested here.

use crate::autopace::{AutoPace, PaceReason};
use crate::estimate::Estimate;
use crate::priority::Priority;
use enrollment::{RoundId, StudentId};
use std::future::Future;

/// Where a round is in its life. Transitions: scheduled → prequeue → open
/// ⇄ paused → closed (an admin may also open or close early).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundState {
    Scheduled,
    Prequeue,
    Open,
    Paused,
    Closed,
}

impl RoundState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RoundState::Scheduled => "scheduled",
            RoundState::Prequeue => "prequeue",
            RoundState::Open => "open",
            RoundState::Paused => "paused",
            RoundState::Closed => "closed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<RoundState> {
        [
            RoundState::Scheduled,
            RoundState::Prequeue,
            RoundState::Open,
            RoundState::Paused,
            RoundState::Closed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether students may take a ticket.
    pub fn accepts_joins(self) -> bool {
        matches!(
            self,
            RoundState::Prequeue | RoundState::Open | RoundState::Paused
        )
    }
}

/// Why admission is held although the round is open: the system fails
/// closed when a dependency is down, and says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// RabbitMQ is unreachable: admitted students could not enroll.
    Broker,
}

impl Hold {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::Broker => "broker",
        }
    }

    /// Parses a stored name. There is one reason today; any stored reason,
    /// known or not, holds admission (fail closed).
    pub fn parse(_stored: &str) -> Hold {
        Hold::Broker
    }
}

/// What every gateway knows about a round, refreshed a few times a second.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundView {
    pub id: RoundId,
    pub name: String,
    pub state: RoundState,
    /// Bit `y - 1` set when class year `y` may take part.
    pub eligible_years_mask: u8,
    pub admission_per_min: u32,
    /// When the rate was last lowered (by a registrar or the automatic
    /// pace); `None` if never.
    pub rate_lowered_at_ms: Option<u64>,
    /// `None`: no cap on students admitted at once.
    pub max_active: Option<u32>,
    pub serving_mark: u64,
    /// The highest order key handed out so far.
    pub last_order_key: u64,
    pub admitted_total: u64,
    /// Admitted students whose pass is still running, as of the last tick.
    pub active: u32,
    pub hold: Option<Hold>,
    pub prequeue_at_ms: u64,
    pub opens_at_ms: u64,
    pub closes_at_ms: u64,
    /// Published once the round is open; `None` before.
    pub shuffle_seed: Option<u64>,
    pub cohort_size: u64,
    /// Automatic pace, when the registrar chose it; `admission_per_min` is
    /// then the rate the leader set last.
    pub pace: Option<PaceView>,
    /// Classes of students admitted in order or by weight; `None`: one line.
    pub priority: Option<Priority>,
    /// Each lane's line, when `priority` is set (lane 0 first); the round's
    /// `serving_mark` and `last_order_key` are then the sums over them.
    pub lanes: Vec<LaneView>,
    /// When the leader last found admission running (see
    /// [`pass_reference_ms`]); `None` before the first tick since the
    /// round opened.
    pub pass_clock_ms: Option<u64>,
    /// Every extension given to the round's passes, added up: a pass whose
    /// own end is further back than this was never extended enough to be
    /// alive, so nothing need be read to refuse it.
    pub pass_extended_ms: u64,
}

/// Admission that has not run for this long (held while RabbitMQ is down,
/// or no tick at all while MySQL is unreachable) is a gap: every pass alive
/// when it began gets its length back. Ticks come every fraction of a
/// second and the clock is written about once a second, so a normal tick
/// never finds a gap this long.
pub const PASS_GAP_MS: u64 = 3_000;

/// The instant a pass must outlive to still hold its admission.
///
/// Normally `now_ms`. Once admission has not run for [`PASS_GAP_MS`] (held,
/// or not ticked), it is `clock_ms`, the instant admission last ran: a pass
/// alive then is not over, whatever its own end says, because the time
/// since is going to be given back when admission runs again. A shorter
/// pause is given nothing back, so it changes nothing here either.
pub fn pass_reference_ms(now_ms: u64, clock_ms: Option<u64>) -> u64 {
    match clock_ms {
        Some(c) if now_ms.saturating_sub(c) >= PASS_GAP_MS => c,
        _ => now_ms,
    }
}

/// Where a pass that ends at some instant stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassTime {
    /// Its end is ahead.
    Running,
    /// Its end is past, but it was alive when admission last ran: the time
    /// since is about to be given back, so it is not over (the student
    /// waits, the place kept).
    Owed,
    /// Over.
    Over,
}

/// Where a pass ending at `end_ms` stands at `now_ms`, admission having
/// last run at `reference_ms` ([`pass_reference_ms`]).
pub fn pass_time(now_ms: u64, end_ms: u64, reference_ms: u64) -> PassTime {
    if now_ms < end_ms {
        PassTime::Running
    } else if reference_ms < end_ms {
        PassTime::Owed
    } else {
        PassTime::Over
    }
}

/// When a pass ends: admitted at `admitted_at_ms`, living `ttl_ms` plus
/// `extra_ms` that outages gave back.
pub fn pass_end_ms(admitted_at_ms: u64, ttl_ms: u64, extra_ms: u64) -> u64 {
    admitted_at_ms
        .saturating_add(ttl_ms)
        .saturating_add(extra_ms)
}

/// One lane of a round with priority, counted inside the lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LaneView {
    /// The lane's last key handed out.
    pub last_key: u64,
    /// Every ticket of the lane up to this key has been decided.
    pub serving_mark: u64,
}

/// Where an order key stands in its own line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinePlace {
    /// 0 without priority.
    pub lane: u8,
    /// The ticket's number inside its lane.
    pub key: u64,
    /// The lane's serving mark (the round's, without priority).
    pub mark: u64,
}

impl LinePlace {
    /// Whether the ticket has been decided (admitted or skipped).
    pub fn decided(&self) -> bool {
        self.key <= self.mark
    }
}

/// An unmeasured pace counts as the room's speed once the line was measured
/// moving at this share of the current rate, the workers keeping up...
pub const STEADY_SHARE: f64 = 0.8;

/// ...for at least this long without a break. A surge's first seconds look
/// calm too (the commands admitted have not reached the queue yet); ten
/// seconds in, the queue shows whether the workers keep up.
pub const STEADY_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// A round's automatic pace: the registrar's settings and the leader's last
/// decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceView {
    pub settings: AutoPace,
    /// Why the rate is where it is; `None` before the leader's first step.
    pub reason: Option<PaceReason>,
    /// The measured value behind the reason (backlog, or latency in ms).
    pub signal: Option<u64>,
    /// When the leader last changed the rate.
    pub changed_at_ms: Option<u64>,
    /// Admissions a minute the workers were measured to keep up with
    /// ([`crate::autopace::capacity_sample`]), in this round or, until it
    /// has its own, the last round measured; `None` when never measured.
    pub capacity_per_min: Option<u32>,
    /// Whether that speed has settled ([`crate::autopace::settles`]): waits
    /// are estimated with it only then.
    pub capacity_settled: bool,
}

impl PaceView {
    /// The admissions a minute a wait is estimated with: what the workers
    /// keep up with, within the registrar's range, once that was measured.
    /// The controller's rate swings around it (halved while a backlog
    /// drains, climbing after), but over a wait of more than a few steps
    /// the round admits at about the workers' speed.
    pub fn expected_per_min(&self) -> Option<f64> {
        let c = self.capacity_per_min?;
        let (floor, ceiling) = (self.settings.floor, self.settings.ceiling.max(1));
        Some(f64::from(c.clamp(floor.min(ceiling), ceiling)))
    }

    /// The wait for `before` admissions ahead of a student under this pace,
    /// the room running at `current` a minute and its line measured moving
    /// at `steady` for at least [`STEADY_FOR`] since the rate last changed
    /// (`None` for less) ([`crate::estimate`]'s ranges; decision 095):
    /// - never measured (or the speed not yet settled), and the workers
    ///   keeping up (the leader's last step
    ///   found them healthy) while the line moved at the current rate: the
    ///   room is where it runs, so the wait is at that rate, as with a
    ///   fixed one. A round whose workers never fall behind is never
    ///   measured, and keeps this;
    /// - never measured (or not settled) otherwise: nothing tells where between the floor
    ///   and the ceiling the room will run, so the range spans both, marked
    ///   rough;
    /// - measured: at the workers' speed, counting the admissions held back
    ///   to work off a backlog ([`PaceView::excess_backlog`]); but no wait
    ///   is longer than at the floor, which the controller never goes
    ///   below (workers measured at nothing, or a backlog far over the
    ///   target, would otherwise give waits of an hour for a few places).
    pub fn estimate(&self, before: u64, current: u32, steady: Option<f64>) -> Option<Estimate> {
        let (floor, ceiling) = self.settings.bounds();
        let settled = self.expected_per_min().filter(|_| self.capacity_settled);
        let Some(expected) = settled else {
            let keeping_up = self.reason == Some(PaceReason::Healthy)
                && steady.is_some_and(|m| m >= f64::from(current) * STEADY_SHARE);
            return if keeping_up {
                Estimate::new(before, crate::estimate::effective_rate(steady, current))
            } else {
                Estimate::between(before, f64::from(ceiling), f64::from(floor))
            };
        };
        let places = before.saturating_add(self.excess_backlog());
        let at_floor = before as f64 / f64::from(floor);
        if floor > 0 && at_floor < places as f64 / expected {
            Estimate::new(before, f64::from(floor))
        } else {
            Estimate::new(places, expected)
        }
    }

    /// Commands queued beyond what the controller aims at, at its last
    /// step, once the workers' speed is known: the controller holds back
    /// about that many admissions to work them off, so a wait counts them
    /// as places ahead (a queued command is taken for one admission, as the
    /// controller takes it). 0 without a speed or a backlog reading.
    pub fn excess_backlog(&self) -> u64 {
        let (Some(c), Some(signal)) = (self.capacity_per_min, self.signal) else {
            return 0;
        };
        // With the speed known every step's signal is the backlog; a latency
        // reason is the blind rule's, whose signal is in ms.
        if self.reason == Some(PaceReason::Latency) {
            return 0;
        }
        let aim = crate::autopace::aim(&self.settings, c);
        (signal as f64 - aim).max(0.0) as u64
    }
}

impl RoundView {
    /// The line `order_key` is in and its place there.
    pub fn line_place(&self, order_key: u64) -> LinePlace {
        if self.priority.is_none() {
            return LinePlace {
                lane: 0,
                key: order_key,
                mark: self.serving_mark,
            };
        }
        let (lane, key) = crate::priority::split_key(order_key);
        LinePlace {
            lane,
            key,
            mark: self
                .lanes
                .get(usize::from(lane))
                .map_or(0, |l| l.serving_mark),
        }
    }

    /// Students in line per lane (lanes beyond the round's read 0).
    pub fn lane_waiting(&self) -> [u64; crate::priority::MAX_GROUPS] {
        let mut out = [0; crate::priority::MAX_GROUPS];
        for (o, l) in out.iter_mut().zip(&self.lanes) {
            *o = l.last_key.saturating_sub(l.serving_mark);
        }
        out
    }

    /// Whether `class_year` may join this round.
    pub fn admits_year(&self, class_year: u8) -> bool {
        (1..=8).contains(&class_year) && self.eligible_years_mask & (1 << (class_year - 1)) != 0
    }

    /// [`pass_reference_ms`] for this round at `now_ms`.
    pub fn pass_reference_ms(&self, now_ms: u64) -> u64 {
        pass_reference_ms(now_ms, self.pass_clock_ms)
    }

    /// [`pass_time`] of a pass of this round ending at `end_ms`.
    pub fn pass_time(&self, now_ms: u64, end_ms: u64) -> PassTime {
        pass_time(now_ms, end_ms, self.pass_reference_ms(now_ms))
    }

    /// Whether the leader may admit now.
    pub fn admitting(&self) -> bool {
        self.state == RoundState::Open && self.hold.is_none() && self.admission_per_min > 0
    }

    /// The state the clock says the round should be in, if it should move.
    pub fn due_transition(&self, now_ms: u64) -> Option<RoundState> {
        match self.state {
            RoundState::Scheduled if now_ms >= self.opens_at_ms => Some(RoundState::Open),
            RoundState::Scheduled if now_ms >= self.prequeue_at_ms => Some(RoundState::Prequeue),
            RoundState::Prequeue if now_ms >= self.opens_at_ms => Some(RoundState::Open),
            RoundState::Scheduled
            | RoundState::Prequeue
            | RoundState::Open
            | RoundState::Paused
                if now_ms >= self.closes_at_ms =>
            {
                Some(RoundState::Closed)
            }
            _ => None,
        }
    }
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Waiting,
    Admitted,
    /// Passed over because it stopped polling for longer than the grace.
    Skipped,
    Left,
}

impl TicketState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Waiting => "waiting",
            TicketState::Admitted => "admitted",
            TicketState::Skipped => "skipped",
            TicketState::Left => "left",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<TicketState> {
        match s {
            "waiting" => Some(TicketState::Waiting),
            "admitted" => Some(TicketState::Admitted),
            "skipped" => Some(TicketState::Skipped),
            "left" => Some(TicketState::Left),
            _ => None,
        }
    }
}

/// One student's place in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub seq: u64,
    pub round: RoundId,
    pub student: StudentId,
    /// `None` while the round is in pre-queue.
    pub order_key: Option<u64>,
    pub state: TicketState,
    pub admitted_at_ms: Option<u64>,
    /// Identifies the admission; the pass carries it.
    pub lease: Option<uuid::Uuid>,
    /// When the leader passed over this ticket as abandoned.
    pub skipped_at_ms: Option<u64>,
    /// The skipped student came back and asked for their turn; the leader
    /// admits them at its next tick.
    pub reclaim_requested: bool,
    /// Time added to the pass because admission was held or could not run
    /// while it was alive (an outage is not the student's to pay for).
    pub pass_extra_ms: u64,
}

impl Ticket {
    /// When this admission's pass ends, for passes that live `ttl_ms`
    /// plus what outages gave back; `None` when not admitted.
    pub fn pass_expires_at_ms(&self, ttl_ms: u64) -> Option<u64> {
        Some(pass_end_ms(
            self.admitted_at_ms?,
            ttl_ms,
            self.pass_extra_ms,
        ))
    }

    /// Whether this skipped ticket may still be reclaimed at `now_ms`: its
    /// student returns within `window_ms` of being passed over.
    pub fn reclaimable(&self, now_ms: u64, window_ms: u64) -> bool {
        self.state == TicketState::Skipped
            && self
                .skipped_at_ms
                .is_some_and(|at| now_ms.saturating_sub(at) <= window_ms)
    }
}

/// A join waiting for the sequencer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinRequest {
    pub round: RoundId,
    pub student: StudentId,
    pub at_ms: u64,
}

/// The place a join got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub ticket: Ticket,
    /// The serving mark when the place was taken (for progress).
    pub mark_at_join: u64,
    /// The student already had a live place (another device, a reload) and
    /// keeps it.
    pub kept: bool,
}

/// Why a join got no place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinRefused {
    #[error("no such round")]
    UnknownRound,
    #[error("the round does not take students now")]
    NotOpen,
}

/// A waiting ticket the leader may admit, in order-key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub seq: u64,
    pub order_key: u64,
    pub last_seen_ms: u64,
}

/// What one admission tick does to a round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdmissionPlan {
    pub admit: Vec<u64>,
    pub skip: Vec<u64>,
    /// The new serving mark, when it moves.
    pub mark: Option<u64>,
}

/// Walks `candidates` (waiting tickets past the mark, in order) admitting up
/// to `budget` live ones and skipping those not seen for longer than
/// `grace_ms`. The mark stops at the last ticket decided, so a ticket beyond
/// it is never passed over unseen.
///
/// Absence before `grace_from_ms` does not count: until then the room was
/// held (an outage, a pause, a gateway that could not report what it saw),
/// and nobody may lose their place for an absence the system caused. So a
/// ticket is skipped only when it was not seen for `grace_ms` of time the
/// room was running.
pub fn plan_admission(
    candidates: &[Candidate],
    budget: u64,
    now_ms: u64,
    grace_ms: u64,
    grace_from_ms: u64,
) -> AdmissionPlan {
    let mut plan = AdmissionPlan::default();
    if budget == 0 {
        return plan;
    }
    for c in candidates {
        let seen = c.last_seen_ms.max(grace_from_ms);
        if now_ms.saturating_sub(seen) > grace_ms {
            plan.skip.push(c.seq);
        } else {
            plan.admit.push(c.seq);
        }
        plan.mark = Some(c.order_key);
        if plan.admit.len() as u64 == budget {
            break;
        }
    }
    plan
}

/// The inputs of one admission tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickInput {
    pub now_ms: u64,
    /// Tickets not seen for longer than this are skipped.
    pub grace_ms: u64,
    /// Absence before this instant does not count (the room was held until
    /// then); see [`plan_admission`].
    pub grace_from_ms: u64,
    /// Admissions the pacer granted.
    pub budget: u64,
    /// Admissions after this instant still count against max-active.
    pub active_since_ms: u64,
}

/// What one admission tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickOutcome {
    /// Admitted this tick, reclaimed turns included.
    pub admitted: u64,
    pub skipped: u64,
    /// Of `admitted`, skipped students who came back and kept their turn.
    pub reclaimed: u64,
    pub serving_mark: u64,
    pub active: u32,
    /// Passes given back a gap in admission this tick, and the gap.
    pub passes_extended: u64,
    pub extended_by_ms: u64,
}

/// An admin's change to a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundChange {
    /// Admissions per minute (0 stops admission without pausing).
    Rate(u32),
    /// Cap on admitted students at once; `None` removes it.
    MaxActive(Option<u32>),
    /// Automatic pace within these settings; `None` goes back to the fixed
    /// rate (the rate the leader set last, unless a `Rate` comes with it).
    Pace(Option<AutoPace>),
    /// Declares (or with `None` removes) the round's priority; only before
    /// the round opens, since the lines are formed at opening.
    Priority(Option<Priority>),
    /// Opens the pre-queue early.
    Prequeue,
    /// Opens the room now, shuffling the pre-queue cohort with `seed`.
    Open {
        seed: u64,
    },
    Pause,
    Resume,
    Close,
}

/// Why a change does not apply to the round's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {from} round cannot be changed that way")]
pub struct InvalidTransition {
    pub from: &'static str,
}

impl RoundChange {
    /// The state after applying this change to `from`, or why it cannot be.
    pub fn next_state(self, from: RoundState) -> Result<RoundState, InvalidTransition> {
        use RoundState::*;
        let to = match (self, from) {
            (RoundChange::Rate(_) | RoundChange::MaxActive(_) | RoundChange::Pace(_), s)
                if s != Closed =>
            {
                s
            }
            (RoundChange::Priority(_), s @ (Scheduled | Prequeue)) => s,
            (RoundChange::Prequeue, Scheduled | Prequeue) => Prequeue,
            (RoundChange::Open { .. }, Scheduled | Prequeue) => Open,
            (RoundChange::Pause, Open | Paused) => Paused,
            (RoundChange::Resume, Open | Paused) => Open,
            (RoundChange::Close, _) => Closed,
            _ => {
                return Err(InvalidTransition {
                    from: from.as_str(),
                })
            }
        };
        Ok(to)
    }

    /// The audit-log action name.
    pub fn name(self) -> &'static str {
        match self {
            RoundChange::Rate(_) => "round.rate",
            RoundChange::MaxActive(_) => "round.max_active",
            RoundChange::Pace(_) => "round.pace",
            RoundChange::Priority(_) => "round.priority",
            RoundChange::Prequeue => "round.prequeue",
            RoundChange::Open { .. } => "round.open",
            RoundChange::Pause => "round.pause",
            RoundChange::Resume => "round.resume",
            RoundChange::Close => "round.close",
        }
    }
}

/// Shared room state. Implementations must make every method safe to call
/// from many gateways at once: the sequencer and the serving mark are the
/// only order there is.
pub trait RoomStore: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Every round that is not long closed.
    fn rounds(&self) -> impl Future<Output = Result<Vec<RoundView>, Self::Error>> + Send;

    /// The pre-queue cohort of an open round: `(seq, order_key)`.
    fn cohort(
        &self,
        round: RoundId,
    ) -> impl Future<Output = Result<Vec<(u64, u64)>, Self::Error>> + Send;

    /// Gives each request a place (or the one the student already has), in
    /// one go; answers are in request order.
    fn join(
        &self,
        batch: &[JoinRequest],
    ) -> impl Future<Output = Result<Vec<Result<Place, JoinRefused>>, Self::Error>> + Send;

    /// One ticket by sequence number.
    fn ticket(&self, seq: u64) -> impl Future<Output = Result<Option<Ticket>, Self::Error>> + Send;

    /// Records that these tickets' students were seen: `(seq, at_ms)`.
    fn touch(&self, seen: &[(u64, u64)]) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// A skipped student came back within the reclaim window: marks their
    /// ticket so the leader admits it at its next tick. Whether it was
    /// marked (false when it was not skipped, or skipped too long ago).
    fn request_reclaim(
        &self,
        seq: u64,
        now_ms: u64,
        window_ms: u64,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Gives up a student's place (or ends their admission); whether there
    /// was one.
    fn leave(
        &self,
        round: RoundId,
        student: StudentId,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;

    /// Runs one admission tick on an open round.
    fn tick(
        &self,
        round: RoundId,
        input: TickInput,
    ) -> impl Future<Output = Result<TickOutcome, Self::Error>> + Send;

    /// Applies changes atomically and records them in the audit log under
    /// `actor`. `Ok(None)` when the round does not exist.
    fn change(
        &self,
        round: RoundId,
        changes: &[RoundChange],
        actor: &str,
        now_ms: u64,
    ) -> impl Future<Output = Result<Option<RoundView>, ChangeError<Self::Error>>> + Send;

    /// Holds admission in every open round (or lifts the hold).
    fn set_hold(&self, hold: Option<Hold>) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Why a round change failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError<E> {
    #[error(transparent)]
    Invalid(#[from] InvalidTransition),
    #[error(transparent)]
    Store(E),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn waits_follow_the_measured_capacity_within_the_registrars_range() {
        let pace = |capacity_per_min| PaceView {
            settings: AutoPace {
                floor: 600,
                ceiling: 30_000,
                target_latency_ms: 2_000,
                target_backlog: 500,
            },
            reason: None,
            signal: None,
            changed_at_ms: None,
            capacity_per_min,
            capacity_settled: true,
        };
        assert_eq!(pace(None).expected_per_min(), None, "never measured");
        assert_eq!(pace(Some(11_000)).expected_per_min(), Some(11_000.0));
        assert_eq!(
            pace(Some(50)).expected_per_min(),
            Some(600.0),
            "the floor holds"
        );
        assert_eq!(pace(Some(90_000)).expected_per_min(), Some(30_000.0));
        // Commands beyond the aim count as places ahead: 2,000 queued, 500
        // aimed at (11,000 a minute reaches 2 s at 366, fewer than 500).
        let backlogged = PaceView {
            reason: Some(PaceReason::Backlog),
            signal: Some(2_000),
            ..pace(Some(11_000))
        };
        assert_eq!(backlogged.excess_backlog(), 1_633, "2,000 - 366.7");
        assert_eq!(pace(Some(11_000)).excess_backlog(), 0, "no reading");
        let blind = PaceView {
            reason: Some(PaceReason::Latency),
            signal: Some(9_000),
            ..pace(Some(11_000))
        };
        assert_eq!(blind.excess_backlog(), 0, "a latency in ms is no backlog");
    }

    #[test]
    fn a_wait_under_the_automatic_pace_is_rough_until_measured_and_never_past_the_floor() {
        let pace = |capacity_per_min, backlog| PaceView {
            settings: AutoPace {
                floor: 600,
                ceiling: 30_000,
                target_latency_ms: 2_000,
                target_backlog: 500,
            },
            reason: Some(PaceReason::Backlog),
            signal: backlog,
            changed_at_ms: None,
            capacity_per_min,
            capacity_settled: true,
        };
        // Never measured: from 3,000 places at the ceiling (6 s) to at the
        // floor (300 s), marked rough.
        let rough = pace(None, Some(2_000))
            .estimate(3_000, 30_000, Some(30_000.0))
            .unwrap();
        assert_eq!(rough, Estimate::between(3_000, 30_000.0, 600.0).unwrap());
        assert!(rough.rough);
        assert_eq!((rough.min_secs, rough.max_secs), (4, 375));
        // Measured but not settled (a surge's first window): as unmeasured.
        let unsettled = PaceView {
            capacity_settled: false,
            ..pace(Some(11_000), Some(2_000))
        };
        assert_eq!(unsettled.estimate(3_000, 30_000, None), Some(rough));
        // Measured: at the speed, the backlog's excess counted as places.
        let firm = pace(Some(11_000), Some(2_000))
            .estimate(3_000, 30_000, None)
            .unwrap();
        assert!(!firm.rough);
        assert_eq!(firm, Estimate::new(3_000 + 1_633, 11_000.0).unwrap());
        // Workers measured at nothing (down while commands stayed queued),
        // or a backlog far beyond what the speed drains: the floor still
        // admits, so 5 places take 0.5 s at 600 a minute, not hours.
        for p in [pace(Some(0), Some(2_000)), pace(Some(700), Some(400_000))] {
            assert_eq!(p.estimate(5, 600, None), Estimate::new(5, 600.0), "{p:?}");
        }
        // A floor of nothing bounds nothing: the speed decides.
        let no_floor = PaceView {
            settings: AutoPace {
                floor: 0,
                ..pace(None, None).settings
            },
            ..pace(Some(11_000), Some(2_000))
        };
        assert_eq!(
            no_floor.estimate(3_000, 600, None),
            Estimate::new(3_000 + 1_633, 11_000.0)
        );
        assert_eq!(
            PaceView {
                capacity_per_min: None,
                ..no_floor
            }
            .estimate(3_000, 600, None),
            None,
            "unmeasured with no floor: the room may stand still"
        );
        // Unmeasured, the workers keeping up and the line moving at the
        // current rate: the room is where it runs (a round whose workers
        // never fall behind is never measured).
        let calm = PaceView {
            reason: Some(PaceReason::Healthy),
            ..pace(None, Some(3))
        };
        assert_eq!(
            calm.estimate(3_000, 6_000, Some(5_900.0)),
            Estimate::new(3_000, 5_900.0)
        );
        // Not yet measured moving, moving well below the rate, or the
        // workers not keeping up: rough.
        for (p, measured) in [
            (calm, None),
            (calm, Some(3_000.0)),
            (pace(None, Some(450)), Some(6_000.0)),
        ] {
            assert!(
                p.estimate(3_000, 6_000, measured).unwrap().rough,
                "{p:?} {measured:?}"
            );
        }
    }

    fn c(seq: u64, order_key: u64, last_seen_ms: u64) -> Candidate {
        Candidate {
            seq,
            order_key,
            last_seen_ms,
        }
    }

    #[test]
    fn admits_live_tickets_in_order_and_skips_abandoned_ones() {
        let cands = [c(10, 1, 100), c(11, 2, 0), c(12, 3, 100), c(13, 4, 100)];
        let plan = plan_admission(&cands, 2, 400, 300, 0);
        assert_eq!(plan.admit, vec![10, 12]);
        assert_eq!(plan.skip, vec![11]);
        assert_eq!(
            plan.mark,
            Some(3),
            "the mark stops at the last decided ticket"
        );
    }

    #[test]
    fn a_student_seen_within_the_grace_keeps_their_place() {
        let plan = plan_admission(&[c(1, 1, 500)], 1, 1_000, 500, 0);
        assert_eq!(plan.admit, vec![1]);
    }

    #[test]
    fn absence_while_the_room_was_held_does_not_count() {
        // Last seen at 0, the room held until 120 s, grace 60 s: at 150 s the
        // student has been away 30 s of running time and keeps their place;
        // at 181 s the grace has run out for real.
        let cands = [c(1, 1, 0), c(2, 2, 170_000)];
        let plan = plan_admission(&cands, 1, 150_000, 60_000, 120_000);
        assert_eq!(plan.admit, vec![1]);
        assert!(plan.skip.is_empty());
        let plan = plan_admission(&cands, 1, 181_000, 60_000, 120_000);
        assert_eq!(plan.skip, vec![1]);
        assert_eq!(plan.admit, vec![2]);
        let never_held = plan_admission(&cands, 1, 150_000, 60_000, 0);
        assert_eq!(never_held.skip, vec![1]);
    }

    #[test]
    fn a_skipped_ticket_is_reclaimable_within_the_window_only() {
        let t = Ticket {
            seq: 1,
            round: RoundId(1),
            student: StudentId(1),
            order_key: Some(1),
            state: TicketState::Skipped,
            admitted_at_ms: None,
            lease: None,
            skipped_at_ms: Some(1_000),
            reclaim_requested: false,
            pass_extra_ms: 0,
        };
        assert!(t.reclaimable(1_000 + 600_000, 600_000));
        assert!(!t.reclaimable(1_000 + 600_001, 600_000));
        let waiting = Ticket {
            state: TicketState::Waiting,
            ..t.clone()
        };
        assert!(!waiting.reclaimable(1_000, 600_000));
        let unknown_time = Ticket {
            skipped_at_ms: None,
            ..t
        };
        assert!(!unknown_time.reclaimable(1_000, 600_000));
    }

    #[test]
    fn passes_are_judged_at_the_last_running_instant_once_admission_stopped() {
        // Running normally: now.
        assert_eq!(pass_reference_ms(10_000, Some(9_500)), 10_000);
        assert_eq!(pass_reference_ms(10_000, None), 10_000);
        // Not run for the gap's length: the extension is due.
        assert_eq!(pass_reference_ms(10_000, Some(10_000 - PASS_GAP_MS)), 7_000);
        assert_eq!(
            pass_reference_ms(10_000, Some(10_000 - PASS_GAP_MS + 1)),
            10_000
        );
        // A clock ahead of this pod's (skew) never moves the end later.
        assert_eq!(pass_reference_ms(10_000, Some(12_000)), 10_000);
    }

    #[test]
    fn a_pass_past_its_end_is_owed_only_if_alive_when_admission_last_ran() {
        assert_eq!(pass_time(999, 1_000, 999), PassTime::Running);
        assert_eq!(pass_time(1_000, 1_000, 999), PassTime::Owed);
        assert_eq!(pass_time(5_000, 1_000, 999), PassTime::Owed);
        assert_eq!(pass_time(1_000, 1_000, 1_000), PassTime::Over);
        assert_eq!(pass_time(5_000, 1_000, 5_000), PassTime::Over);
    }

    #[test]
    fn a_pass_ends_after_its_lifetime_and_what_outages_gave_back() {
        let t = Ticket {
            seq: 1,
            round: RoundId(1),
            student: StudentId(1),
            order_key: Some(1),
            state: TicketState::Admitted,
            admitted_at_ms: Some(1_000),
            lease: None,
            skipped_at_ms: None,
            reclaim_requested: false,
            pass_extra_ms: 0,
        };
        assert_eq!(t.pass_expires_at_ms(600_000), Some(601_000));
        let extended = Ticket {
            pass_extra_ms: 120_000,
            ..t.clone()
        };
        assert_eq!(extended.pass_expires_at_ms(600_000), Some(721_000));
        let waiting = Ticket {
            admitted_at_ms: None,
            ..t
        };
        assert_eq!(waiting.pass_expires_at_ms(600_000), None);
    }

    #[test]
    fn no_budget_decides_nothing() {
        assert_eq!(
            plan_admission(&[c(1, 1, 0)], 0, 1_000, 10, 0),
            AdmissionPlan::default()
        );
    }

    #[test]
    fn transitions() {
        use RoundState::*;
        assert_eq!(RoundChange::Open { seed: 1 }.next_state(Prequeue), Ok(Open));
        assert!(RoundChange::Open { seed: 1 }.next_state(Open).is_err());
        assert_eq!(RoundChange::Pause.next_state(Open), Ok(Paused));
        assert_eq!(RoundChange::Resume.next_state(Paused), Ok(Open));
        assert!(RoundChange::Resume.next_state(Closed).is_err());
        assert!(RoundChange::Rate(5).next_state(Closed).is_err());
        assert_eq!(
            RoundChange::Priority(None).next_state(Prequeue),
            Ok(Prequeue)
        );
        assert!(RoundChange::Priority(None).next_state(Open).is_err());
        assert!(RoundChange::Priority(None).next_state(Paused).is_err());
        for s in [Scheduled, Prequeue, Open, Paused, Closed] {
            assert_eq!(RoundState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn the_clock_moves_rounds_along() {
        let mut r = RoundView {
            id: RoundId(1),
            name: "r".into(),
            state: RoundState::Scheduled,
            eligible_years_mask: 0b10,
            admission_per_min: 60,
            rate_lowered_at_ms: None,
            max_active: None,
            serving_mark: 0,
            last_order_key: 0,
            admitted_total: 0,
            active: 0,
            hold: None,
            prequeue_at_ms: 100,
            opens_at_ms: 200,
            closes_at_ms: 300,
            shuffle_seed: None,
            cohort_size: 0,
            pace: None,
            priority: None,
            lanes: Vec::new(),
            pass_clock_ms: None,
            pass_extended_ms: 0,
        };
        assert!(r.admits_year(2) && !r.admits_year(1) && !r.admits_year(0) && !r.admits_year(9));
        assert_eq!(r.due_transition(50), None);
        assert_eq!(r.due_transition(150), Some(RoundState::Prequeue));
        r.state = RoundState::Prequeue;
        assert_eq!(r.due_transition(250), Some(RoundState::Open));
        r.state = RoundState::Paused;
        assert_eq!(r.due_transition(250), None);
        assert_eq!(r.due_transition(300), Some(RoundState::Closed));
    }

    proptest! {
        #[test]
        fn plans_are_consistent(
            seen in proptest::collection::vec(0u64..2_000, 0..100),
            budget in 0u64..50,
            grace in 0u64..2_000,
            held_until in 0u64..2_000,
        ) {
            let cands: Vec<Candidate> = seen.iter().enumerate()
                .map(|(i, &s)| c(i as u64 + 100, i as u64 + 1, s)).collect();
            let plan = plan_admission(&cands, budget, 2_000, grace, held_until);
            prop_assert!(plan.admit.len() as u64 <= budget);
            // Every candidate up to the mark is decided exactly once, in order.
            let decided = plan.mark.unwrap_or(0) as usize;
            let mut all: Vec<u64> = plan.admit.iter().chain(&plan.skip).copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (100..100 + decided as u64).collect::<Vec<_>>());
            for s in &plan.skip {
                let seen = cands[(*s - 100) as usize].last_seen_ms.max(held_until);
                prop_assert!(2_000 - seen > grace, "skipped for time the room was held");
            }
        }
    }
}
