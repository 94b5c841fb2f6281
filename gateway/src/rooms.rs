//! Each gateway's in-memory snapshot of every round, refreshed a few times a
//! second, so that status polls never touch MySQL.
//!
//! The refresher task owns everything that changes (rate meters, the loaded
//! pre-queue cohorts) and publishes an immutable [`Snapshot`] behind an
//! `Arc`; readers clone the `Arc` under a lock held for a pointer copy, never
//! across an `.await`.

use crate::telemetry::RoundCounters;
use enrollment::RoundId;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use waitroom::{RateMeter, RoomStore, RoundState, RoundView};

/// How long a lowered rate is explained on the queue page, in ms.
const SLOWED_FOR_MS: u64 = 300_000;

/// The window the admission speed is measured over: long enough to smooth
/// the ticks, short enough to follow a changed rate or cap within seconds.
const RATE_WINDOW: Duration = Duration::from_secs(20);

/// One round as polls see it.
#[derive(Debug)]
pub struct Room {
    pub view: RoundView,
    /// The round's name, shared by every answer that names it (a poll
    /// clones a pointer, not the text).
    pub name: Arc<str>,
    /// How fast the serving mark moved lately, in keys per minute.
    pub measured_per_min: Option<f64>,
    /// How long the mark has been measured moving without a break (a line
    /// admitted at an unchanged rate), up to the meter's window.
    pub measured_for: Duration,
    /// The pre-queue cohort's order keys by ticket sequence, once open.
    pub cohort: Option<Arc<HashMap<u64, u64>>>,
    /// The admin lowered the rate recently: estimates grew for that reason.
    pub slowed: bool,
    /// This round's counters, registered once (polls stay allocation-free).
    pub counters: RoundCounters,
}

impl Room {
    /// The order key of ticket `seq`, when this gateway knows it.
    pub fn cohort_key(&self, seq: u64) -> Option<u64> {
        self.cohort.as_ref().and_then(|c| c.get(&seq).copied())
    }

    /// Whether admission is stopped (paused by an admin, or held because a
    /// dependency is down).
    pub fn halted(&self) -> bool {
        self.view.state == RoundState::Paused || self.view.hold.is_some()
    }

    /// Whether every admission slot is taken (max-active reached).
    pub fn saturated(&self) -> bool {
        self.view
            .max_active
            .is_some_and(|cap| self.view.active >= cap)
    }
}

/// Every round, as of one refresh.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub rounds: HashMap<RoundId, Arc<Room>>,
    /// When the database last answered; `None` before the first answer.
    pub taken_at: Option<Instant>,
}

/// The current snapshot, shared by every request.
#[derive(Debug, Default)]
pub struct Rooms {
    current: RwLock<Arc<Snapshot>>,
}

impl Rooms {
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn publish(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        match self.current.write() {
            Ok(mut guard) => *guard = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }

    /// Whether the snapshot is recent enough to answer from. When it is not,
    /// MySQL is unreachable and every room counts as paused.
    pub fn is_fresh(&self, stale_after: Duration) -> bool {
        self.snapshot()
            .taken_at
            .is_some_and(|t| t.elapsed() <= stale_after)
    }
}

/// State the refresher keeps between refreshes.
#[derive(Debug, Default)]
struct Memory {
    meters: HashMap<RoundId, RateMeter>,
    cohorts: HashMap<RoundId, Arc<HashMap<u64, u64>>>,
    rates: HashMap<RoundId, u32>,
    counters: HashMap<RoundId, RoundCounters>,
}

/// Refreshes `rooms` every `every` until `shutdown`. Once the snapshot is
/// older than `stale_after`, every round reports itself paused.
pub async fn refresh<S: RoomStore>(
    store: Arc<S>,
    rooms: Arc<Rooms>,
    every: Duration,
    stale_after: Duration,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let mut memory = Memory::default();
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        match refresh_once(store.as_ref(), &rooms, &mut memory, started).await {
            Ok(()) => {
                if failing {
                    tracing::info!("room snapshot refreshed again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "room snapshot refresh failed; rooms read as paused until it recovers");
                }
                failing = true;
                if !rooms.is_fresh(stale_after) {
                    for room in rooms.snapshot().rounds.values() {
                        publish_gauges(&room.view, true);
                    }
                }
            }
        }
    }
}

async fn refresh_once<S: RoomStore>(
    store: &S,
    rooms: &Rooms,
    memory: &mut Memory,
    started: Instant,
) -> Result<(), S::Error> {
    let views = store.rounds().await?;
    let now = Instant::now();
    let wall_ms = crate::clock::now_ms();
    let mut snapshot = Snapshot {
        rounds: HashMap::new(),
        taken_at: Some(now),
    };
    for view in views {
        let id = view.id;
        let meter = memory
            .meters
            .entry(id)
            .or_insert_with(|| RateMeter::new(RATE_WINDOW));
        // The mark's speed says how fast the line moves only while there is
        // a line: time with nobody waiting (before the surge, between
        // waves), paused or held would read as a slow room and inflate
        // every estimate. Such time starts a fresh measurement.
        let backlog = view.last_order_key > view.serving_mark;
        let rate_changed = memory
            .rates
            .get(&id)
            .is_some_and(|&before| before != view.admission_per_min);
        if view.admitting() && backlog && !rate_changed {
            meter.record(now - started, view.serving_mark);
        } else {
            meter.reset();
        }
        let measured = meter.per_min();
        let measured_for = meter.span();

        let opened = matches!(
            view.state,
            RoundState::Open | RoundState::Paused | RoundState::Closed
        );
        if opened && view.cohort_size > 0 && !memory.cohorts.contains_key(&id) {
            let pairs = store.cohort(id).await?;
            memory
                .cohorts
                .insert(id, Arc::new(pairs.into_iter().collect()));
        }

        memory.rates.insert(id, view.admission_per_min);
        // From the time on the round, not from this gateway's memory of the
        // rate: a gateway started after the change (a restart, one more pod
        // in the surge) explains it as the others do, and polls spread over
        // them do not see the message come and go.
        let slowed = view
            .rate_lowered_at_ms
            .is_some_and(|t| wall_ms.saturating_sub(t) < SLOWED_FOR_MS);

        publish_gauges(&view, false);
        let counters = memory
            .counters
            .entry(id)
            .or_insert_with(|| crate::telemetry::register_round(&id.to_string()))
            .clone();
        let room = Room {
            name: Arc::from(view.name.as_str()),
            counters,
            cohort: memory.cohorts.get(&id).cloned(),
            measured_per_min: measured,
            measured_for,
            slowed,
            view,
        };
        snapshot.rounds.insert(id, Arc::new(room));
    }
    // Forget rounds that disappeared (long closed).
    memory
        .meters
        .retain(|id, _| snapshot.rounds.contains_key(id));
    memory
        .cohorts
        .retain(|id, _| snapshot.rounds.contains_key(id));
    memory
        .counters
        .retain(|id, _| snapshot.rounds.contains_key(id));
    rooms.publish(snapshot);
    Ok(())
}

/// Sets a round's gauges; `unreachable` reports it paused whatever its
/// last known state (admission cannot run without the database).
fn publish_gauges(view: &RoundView, unreachable: bool) {
    let round = view.id.to_string();
    let waiting = if matches!(view.state, RoundState::Closed) {
        0
    } else {
        view.last_order_key.saturating_sub(view.serving_mark)
    };
    metrics::gauge!("sluice_waitroom_waiting", "round" => round.clone()).set(waiting as f64);
    if let Some(p) = &view.priority {
        let lanes = view.lane_waiting();
        for (lane, &n) in lanes.iter().enumerate().take(p.lanes()) {
            let n = if matches!(view.state, RoundState::Closed) {
                0
            } else {
                n
            };
            metrics::gauge!("sluice_waitroom_lane_waiting", "round" => round.clone(),
                "lane" => lane.to_string(),
                "years" => waitroom::priority::years_text(p.lane_years(lane)))
            .set(n as f64);
        }
    }
    metrics::gauge!("sluice_waitroom_active", "round" => round.clone()).set(f64::from(view.active));
    metrics::gauge!("sluice_waitroom_max_active", "round" => round.clone())
        .set(f64::from(view.max_active.unwrap_or(0)));
    metrics::gauge!("sluice_waitroom_admission_rate_per_min", "round" => round.clone())
        .set(f64::from(view.admission_per_min));
    let paused = unreachable || view.state == RoundState::Paused || view.hold.is_some();
    metrics::gauge!("sluice_waitroom_paused", "round" => round).set(if paused { 1.0 } else { 0.0 });
}
