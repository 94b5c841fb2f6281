//! The admission leader: exactly one gateway advances the serving marks.
//!
//! Leadership is a MySQL named lock (`GET_LOCK`) held on a dedicated
//! connection, named after the database so that several Sluice databases can
//! share a server. If the leader dies, MySQL drops its connection and the
//! lock with it, and another gateway's next campaign (once a second) takes
//! over. A leader re-checks that it still holds the lock every second and
//! steps down when it cannot tell; even so, admission itself never relies on
//! being the only leader: every tick locks the round row, so two leaders in
//! a split second of failover only pace twice, never admit a ticket twice.
//!
//! Each tick the leader moves rounds along their schedule (opening shuffles
//! the pre-queue), holds admission while RabbitMQ is unreachable (fail
//! closed), and admits what the pacer grants in every open round. Every
//! [`Leader::pace_every`] it also steps the automatic pace of the open
//! rounds that use it ([`waitroom::autopace`]): the command backlog and the
//! recent decision latency in, a rate within the registrar's range out.

use crate::clock::now_ms;
use crate::db::{gateways, MySqlStore};
use crate::publish::CommandSink;
use enrollment::RoundId;
use secrecy::SecretString;
use sqlx::mysql::MySqlConnection;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use waitroom::room::TickInput;
use waitroom::{Hold, Pacer, RoomStore, RoundChange, RoundState};

const CAMPAIGN_EVERY: Duration = Duration::from_secs(1);
const CHECK_EVERY: Duration = Duration::from_secs(1);
const PROBE_EVERY: Duration = Duration::from_secs(2);

/// What the leader needs.
pub struct Leader {
    pub store: Arc<MySqlStore>,
    pub database_url: SecretString,
    pub sink: Arc<dyn CommandSink>,
    pub tick: Duration,
    pub grace: Duration,
    pub pass_ttl: Duration,
    pub db_timeout: Duration,
    /// Shared with `/metrics` and tests.
    pub is_leader: Arc<AtomicBool>,
    /// The command backlog, for the automatic pace.
    pub depth: Arc<crate::backlog::QueueDepth>,
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader")
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl Leader {
    /// Campaigns, and leads while elected, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        metrics::gauge!("sluice_waitroom_leader").set(0.0);
        loop {
            match self.campaign().await {
                Ok(Some(conn)) => self.lead(conn, &shutdown).await,
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "leader campaign failed"),
            }
            metrics::gauge!("sluice_waitroom_leader").set(0.0);
            tokio::select! {
                _ = tokio::time::sleep(CAMPAIGN_EVERY) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn campaign(&self) -> Result<Option<MySqlConnection>, sqlx::Error> {
        gateways::try_lead(&self.database_url, self.db_timeout).await
    }

    async fn still_leader(&self, conn: &mut MySqlConnection) -> bool {
        gateways::still_leads(conn, self.db_timeout).await
    }

    async fn lead(&self, mut conn: MySqlConnection, shutdown: &CancellationToken) {
        tracing::info!("admission leadership acquired");
        self.is_leader.store(true, Ordering::SeqCst);
        metrics::gauge!("sluice_waitroom_leader").set(1.0);
        let epoch = Instant::now();
        let mut state = LeadState {
            pacers: HashMap::new(),
            clocks: HashMap::new(),
            broker_ok: true,
            gateways_silent: false,
            last_probe: None,
            last_pace: None,
            last_backlog: None,
            busy_since: None,
            last_step: HashMap::new(),
        };
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_check = Instant::now();
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            if last_check.elapsed() >= CHECK_EVERY {
                last_check = Instant::now();
                if !self.still_leader(&mut conn).await {
                    tracing::warn!("admission leadership lost");
                    break;
                }
                // Set again, not only on change: idle gauges leave /metrics.
                metrics::gauge!("sluice_waitroom_leader").set(1.0);
            }
            if let Err(e) = self.tick_all(&mut state, epoch).await {
                tracing::warn!(error = %e, "admission tick failed");
            }
        }
        self.is_leader.store(false, Ordering::SeqCst);
        metrics::gauge!("sluice_waitroom_leader").set(0.0);
        gateways::resign(conn, self.db_timeout).await;
    }

    async fn tick_all(
        &self,
        st: &mut LeadState,
        epoch: Instant,
    ) -> Result<(), crate::db::StoreError> {
        let rounds = self.store.rounds().await?;
        let now = now_ms();

        // Fail closed: without RabbitMQ, admitted students could not enroll.
        if st
            .last_probe
            .is_none_or(|t: Instant| t.elapsed() >= PROBE_EVERY)
        {
            st.last_probe = Some(Instant::now());
            let ok = self.sink.probe().await;
            if ok != st.broker_ok {
                tracing::warn!(broker_ok = ok, "admission hold changed");
            }
            st.broker_ok = ok;
            // A gateway that stopped reporting may hold sightings MySQL never
            // got; unknown counts as silent (fail closed: skip nobody).
            let silent = crate::heartbeat::count_silent(&self.store, self.grace)
                .await
                .map_or(true, |n| n > 0);
            if silent != st.gateways_silent {
                tracing::warn!(silent, "a gateway stopped reporting; skipping held");
            }
            st.gateways_silent = silent;
        }
        let hold = (!st.broker_ok).then_some(Hold::Broker);
        let active_rounds = rounds.iter().filter(|r| {
            matches!(
                r.state,
                RoundState::Prequeue | RoundState::Open | RoundState::Paused
            )
        });
        if active_rounds.clone().any(|r| r.hold != hold) {
            self.store.set_hold(hold).await?;
        }

        for r in &rounds {
            if let Some(next) = r.due_transition(now) {
                let change = match next {
                    RoundState::Prequeue => RoundChange::Prequeue,
                    RoundState::Open => RoundChange::Open {
                        seed: rand::random(),
                    },
                    _ => RoundChange::Close,
                };
                match self.store.change(r.id, &[change], "scheduler", now).await {
                    Ok(_) => {
                        tracing::info!(round.id = %r.id, to = next.as_str(), "round moved on schedule")
                    }
                    Err(e) => {
                        tracing::warn!(round.id = %r.id, error = %e, "scheduled round change failed")
                    }
                }
            }
        }

        if st
            .last_pace
            .is_none_or(|t: Instant| t.elapsed() >= self.pace_every())
        {
            st.last_pace = Some(Instant::now());
            self.step_pace(
                &rounds,
                now,
                &mut st.last_backlog,
                &mut st.busy_since,
                &mut st.last_step,
            )
            .await;
        }

        let elapsed = epoch.elapsed();
        let grace_ms = millis(self.grace);
        let ttl_ms = millis(self.pass_ttl);
        let interrupted_after = (self.tick * 4).max(INTERRUPTED_AFTER);
        // A paused round admits nobody, but its admitted students keep
        // enrolling: a tick with no budget keeps its pass clock (and gives
        // back an outage that came during the pause).
        for r in rounds.iter().filter(|r| r.state == RoundState::Paused) {
            let input = TickInput {
                now_ms: now,
                grace_ms,
                grace_from_ms: now,
                budget: 0,
                active_since_ms: now.saturating_sub(ttl_ms),
            };
            let outcome = self.store.tick(r.id, input).await?;
            extended(r.id, &outcome);
        }
        for r in rounds.iter().filter(|r| r.state == RoundState::Open) {
            // The grace clock runs only while admission runs: a hold, a gap
            // in this leader's ticks (the database was unreachable, the round
            // was paused, leadership just moved) or a silent gateway restarts
            // it, so nobody is skipped for an absence the system caused.
            let clock = st.clocks.entry(r.id).or_insert(GraceClock {
                last_tick: None,
                from_ms: now,
            });
            let interrupted = clock
                .last_tick
                .is_none_or(|t: Instant| t.elapsed() > interrupted_after);
            if hold.is_some() || st.gateways_silent || interrupted {
                clock.from_ms = now;
            }
            let grace_from_ms = clock.from_ms;
            let pacer = st
                .pacers
                .entry(r.id)
                .or_insert_with(|| Pacer::new(r.admission_per_min, self.tick));
            pacer.set_rate(r.admission_per_min, elapsed);
            let budget = if hold.is_some() {
                0
            } else {
                pacer.grant(elapsed, 10_000)
            };
            let outcome = self
                .store
                .tick(
                    r.id,
                    TickInput {
                        now_ms: now,
                        grace_ms,
                        grace_from_ms,
                        budget,
                        active_since_ms: now.saturating_sub(ttl_ms),
                    },
                )
                .await?;
            if let Some(clock) = st.clocks.get_mut(&r.id) {
                clock.last_tick = Some(Instant::now());
            }
            extended(r.id, &outcome);
            if outcome.reclaimed > 0 {
                metrics::counter!("sluice_waitroom_reclaims_total", "round" => r.id.to_string())
                    .increment(outcome.reclaimed);
            }
            if outcome.skipped > 0 {
                metrics::counter!("sluice_waitroom_skips_total", "round" => r.id.to_string())
                    .increment(outcome.skipped);
            }
            pacer.refund(budget.saturating_sub(outcome.admitted));
            if outcome.admitted > 0 {
                metrics::counter!("sluice_waitroom_admissions_total", "round" => r.id.to_string())
                    .increment(outcome.admitted);
            }
            if outcome.admitted > 0 || outcome.skipped > 0 {
                tracing::debug!(round.id = %r.id, admitted = outcome.admitted, skipped = outcome.skipped,
                    mark = outcome.serving_mark, "admission tick");
            }
        }
        st.pacers
            .retain(|id: &RoundId, _| rounds.iter().any(|r| r.id == *id));
        st.clocks
            .retain(|id: &RoundId, _| rounds.iter().any(|r| r.id == *id));
        Ok(())
    }
}

impl Leader {
    /// How often the automatic pace steps: ten ticks, at least a second,
    /// so the backlog has time to answer the last step before the next.
    pub fn pace_every(&self) -> Duration {
        (self.tick * 10).max(Duration::from_secs(1))
    }

    /// One controller step for every open round in automatic mode. A
    /// failed read or write leaves the rate where it was: the pace never
    /// stops admission on its own, the floor holds.
    async fn step_pace(
        &self,
        rounds: &[waitroom::RoundView],
        now: u64,
        last_backlog: &mut Option<u32>,
        busy_since: &mut Option<u64>,
        last_step: &mut HashMap<RoundId, u64>,
    ) {
        let auto: Vec<_> = rounds
            .iter()
            .filter(|r| r.state == RoundState::Open)
            .filter_map(|r| r.pace.map(|p| (r, p)))
            .collect();
        for r in rounds.iter().filter(|r| r.state != RoundState::Closed) {
            let round = r.id.to_string();
            metrics::gauge!("sluice_waitroom_pace_auto", "round" => round.clone())
                .set(if r.pace.is_some() { 1.0 } else { 0.0 });
            // Registered at zero, so a dashboard sees no gap before the first change.
            for direction in ["down", "up"] {
                metrics::counter!("sluice_waitroom_pace_changes_total",
                    "round" => round.clone(), "direction" => direction)
                .increment(0);
            }
        }
        last_step.retain(|id, _| auto.iter().any(|(r, _)| r.id == *id));
        if auto.is_empty() {
            *busy_since = None;
            return;
        }
        // One queue serves every round: one read for all of them.
        let backlog = self.depth.read().await;
        // Whether the queue grows or shrinks at this rate: the controller
        // holds while it shrinks.
        let backlog_before = std::mem::replace(last_backlog, backlog);
        if let Some(b) = backlog {
            metrics::gauge!("sluice_waitroom_pace_backlog").set(f64::from(b));
        }
        // Busy: as many commands queued as the emptiest round's pace counts
        // as drained (half its target), so a few stragglers in the queue do
        // not pass for workers at full speed.
        let busy_from = auto
            .iter()
            .map(|(_, p)| p.settings.target_backlog)
            .min()
            .map_or(1, |t| {
                ((f64::from(t) * waitroom::autopace::DRAINED) as u32).max(1)
            });
        let busy_window = busy_window(busy_since, backlog.map(|b| b >= busy_from), now);
        let since = now.saturating_sub(millis(LATENCY_WINDOW));
        let total_capacity: u64 = auto
            .iter()
            .filter_map(|(_, p)| p.capacity_per_min)
            .map(u64::from)
            .sum();
        for (r, pace) in auto {
            let latency = match crate::db::pace::recent_latencies(&self.store, r.id, since).await {
                Ok(mut v) => waitroom::autopace::percentile(&mut v, LATENCY_QUANTILE),
                Err(e) => {
                    tracing::debug!(round.id = %r.id, error = %e, "pace: latency read failed");
                    None
                }
            };
            let round = r.id.to_string();
            let mut capacity = pace.capacity_per_min;
            if let Some((from, to)) = busy_window {
                if let Some(c) = self
                    .measure_capacity(r, capacity, pace.capacity_settled, from, to)
                    .await
                {
                    capacity = Some(c);
                }
            }
            if let Some(l) = latency {
                metrics::gauge!("sluice_waitroom_pace_latency_seconds", "round" => round.clone())
                    .set(f64::from(l) / 1000.0);
            }
            // The queue drained at this step and the last: the workers kept
            // up with what they decided since the last step, whatever was
            // measured when they were fewer, slower or down. (What they
            // decided, not what was admitted: admissions reach the queue
            // seconds later, and raising to them let the rate run ahead of
            // the backlog that would have shown it.)
            let since_step = last_step.insert(r.id, now);
            if keeping_up(&pace.settings, backlog_before, backlog) {
                if let (Some(c), Some(from)) = (capacity, since_step) {
                    if let Some(decided) = self.decided_rate(r, from, now).await {
                        // Kept up with: a speed seen, so a settled one.
                        if decided > c && self.store_capacity(r.id, decided, true, now).await {
                            tracing::debug!(round.id = %r.id, from = c, to = decided,
                                "pace: capacity raised to decisions the workers kept up with");
                            capacity = Some(decided);
                        }
                    }
                }
            }
            if let Some(c) = capacity {
                metrics::gauge!("sluice_waitroom_pace_capacity_per_min", "round" => round.clone())
                    .set(f64::from(c));
            }
            // Several rounds in automatic pace share one queue: each answers
            // for its share of the backlog, by its share of the workers.
            let share = match (pace.capacity_per_min, total_capacity) {
                (Some(c), t) if t > 0 => f64::from(c) / t as f64,
                _ => 1.0,
            };
            let mine = |b: Option<u32>| b.map(|b| (f64::from(b) * share).round() as u32);
            let step = waitroom::autopace::next_pace(
                r.admission_per_min,
                &pace.settings,
                waitroom::autopace::Signals {
                    backlog: mine(backlog),
                    latency_ms: latency,
                    backlog_before: mine(backlog_before),
                    capacity,
                },
            );
            let changed = step.per_min != r.admission_per_min;
            if let Err(e) =
                crate::db::pace::record_step(&self.store, r.id, &step, changed, now).await
            {
                tracing::warn!(round.id = %r.id, error = %e, "pace step not recorded");
                continue;
            }
            if changed {
                let direction = if step.per_min < r.admission_per_min {
                    "down"
                } else {
                    "up"
                };
                metrics::counter!("sluice_waitroom_pace_changes_total",
                    "round" => round, "direction" => direction)
                .increment(1);
                tracing::info!(round.id = %r.id, from = r.admission_per_min, to = step.per_min,
                    reason = step.reason.as_str(), signal = ?step.signal, "pace changed");
            }
        }
    }
}

impl Leader {
    /// Reads the workers' speed over a busy window into round `r`'s
    /// capacity ([`waitroom::autopace::capacity_sample`]); the new capacity,
    /// or `None` (the last one kept) when a read or write failed.
    async fn measure_capacity(
        &self,
        r: &waitroom::RoundView,
        last: Option<u32>,
        settled: bool,
        from: u64,
        to: u64,
    ) -> Option<u32> {
        let students = self.students_decided(r, from, to).await?;
        let sample = waitroom::autopace::capacity_sample(students, to - from)?;
        let capacity = waitroom::autopace::next_capacity(last, sample);
        let settled = waitroom::autopace::settles(settled, last, sample);
        tracing::debug!(round.id = %r.id, students, sample, capacity, settled,
            "pace: capacity measured");
        self.store_capacity(r.id, capacity, settled, to)
            .await
            .then_some(capacity)
    }

    /// Students of round `r` with a command decided in `[from, to)`, read
    /// [`DECIDED_LAG_MS`] earlier: a worker stamps a batch's decisions with
    /// the time the batch began, and commits them a moment later.
    async fn students_decided(&self, r: &waitroom::RoundView, from: u64, to: u64) -> Option<u64> {
        let (from, to) = (
            from.saturating_sub(DECIDED_LAG_MS),
            to.saturating_sub(DECIDED_LAG_MS),
        );
        match crate::db::pace::students_decided_between(&self.store, r.id, from, to).await {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::debug!(round.id = %r.id, error = %e, "pace: decision count failed");
                None
            }
        }
    }

    /// Students decided a minute in `[from, to)` (at least a second).
    async fn decided_rate(&self, r: &waitroom::RoundView, from: u64, to: u64) -> Option<u32> {
        if to < from + 1_000 {
            return None;
        }
        let n = self.students_decided(r, from, to).await?;
        Some((n as f64 * 60_000.0 / (to - from) as f64).min(f64::from(u32::MAX)) as u32)
    }

    /// Writes a round's capacity and its gauge; whether it was written.
    async fn store_capacity(&self, round: RoundId, per_min: u32, settled: bool, now: u64) -> bool {
        if let Err(e) =
            crate::db::pace::record_capacity(&self.store, round, per_min, settled, now).await
        {
            tracing::warn!(round.id = %round, error = %e, "pace: capacity not recorded");
            return false;
        }
        true
    }
}

/// Whether the workers evidently keep up with what they are given: the
/// queue was drained (under half its target) at this pace step and the
/// last. The latency is not read: it lags by its 15 s window, and a drained
/// queue already says the workers wait for work.
fn keeping_up(
    settings: &waitroom::autopace::AutoPace,
    backlog_before: Option<u32>,
    backlog: Option<u32>,
) -> bool {
    let drained = |b: Option<u32>| {
        b.is_some_and(|b| {
            f64::from(b) < f64::from(settings.target_backlog) * waitroom::autopace::DRAINED
        })
    };
    drained(backlog_before) && drained(backlog)
}

/// Decisions are counted this long after they were stamped (see
/// [`Leader::students_decided`]).
const DECIDED_LAG_MS: u64 = 1_000;

/// The window to measure the workers' speed over, if one just ended: the
/// queue was busy (`busy`: enough commands queued that the workers never
/// wait for work) at its start and now, and it spans at least
/// [`waitroom::autopace::MIN_CAPACITY_WINDOW_MS`]. `busy_since` is when
/// the current busy stretch's unmeasured part began; `busy` is `None` when
/// the queue could not be read.
fn busy_window(busy_since: &mut Option<u64>, busy: Option<bool>, now: u64) -> Option<(u64, u64)> {
    if busy != Some(true) {
        *busy_since = None;
        return None;
    }
    let window = busy_since
        .filter(|&from| now.saturating_sub(from) >= waitroom::autopace::MIN_CAPACITY_WINDOW_MS)
        .map(|from| (from, now));
    if window.is_some() || busy_since.is_none() {
        *busy_since = Some(now);
    }
    window
}

/// Decisions over this window make the latency signal: long enough for a
/// few hundred decisions, short enough to see the workers recover.
const LATENCY_WINDOW: Duration = Duration::from_secs(15);

/// The latency percentile the controller holds to its target.
const LATENCY_QUANTILE: f64 = 0.9;

/// Ticks further apart than this mean admission was interrupted.
const INTERRUPTED_AFTER: Duration = Duration::from_secs(2);

/// Logs and counts the passes a tick gave back a gap.
fn extended(round: RoundId, outcome: &waitroom::TickOutcome) {
    if outcome.passes_extended > 0 {
        tracing::info!(round.id = %round, passes = outcome.passes_extended,
            by_ms = outcome.extended_by_ms,
            "admission had not run; passes alive then extended by the gap");
        metrics::counter!("sluice_waitroom_passes_extended_total", "round" => round.to_string())
            .increment(outcome.passes_extended);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Where a round's grace clock stands on this leader.
struct GraceClock {
    /// The last tick that reached the database.
    last_tick: Option<Instant>,
    /// Absence before this instant does not count.
    from_ms: u64,
}

struct LeadState {
    pacers: HashMap<RoundId, Pacer>,
    clocks: HashMap<RoundId, GraceClock>,
    broker_ok: bool,
    /// A gateway stopped reporting without a clean stop.
    gateways_silent: bool,
    last_probe: Option<Instant>,
    last_pace: Option<Instant>,
    /// The command backlog at the last pace step.
    last_backlog: Option<u32>,
    /// Since when commands have been queued at every pace step, not yet
    /// measured (see [`busy_window`]).
    busy_since: Option<u64>,
    /// When each automatic round was last stepped.
    last_step: HashMap<RoundId, u64>,
}

#[cfg(test)]
mod tests {
    use super::{busy_window, keeping_up};

    #[test]
    fn keeping_up_means_drained_at_two_steps_in_a_row() {
        let s = waitroom::autopace::AutoPace {
            floor: 60,
            ceiling: 6_000,
            target_latency_ms: 2_000,
            target_backlog: 500,
        };
        assert!(keeping_up(&s, Some(0), Some(249)));
        assert!(
            !keeping_up(&s, Some(0), Some(250)),
            "half the target is not drained"
        );
        assert!(!keeping_up(&s, Some(300), Some(0)), "drained only now");
        assert!(!keeping_up(&s, None, Some(0)), "unread before");
        assert!(!keeping_up(&s, Some(0), None), "unread now");
    }

    #[test]
    fn busy_windows_span_five_seconds_of_queued_commands_and_do_not_overlap() {
        let mut since = None;
        assert_eq!(busy_window(&mut since, Some(true), 0), None, "a start");
        assert_eq!(
            busy_window(&mut since, Some(true), 2_500),
            None,
            "too short"
        );
        assert_eq!(busy_window(&mut since, Some(true), 5_000), Some((0, 5_000)));
        assert_eq!(busy_window(&mut since, Some(true), 7_500), None);
        assert_eq!(
            busy_window(&mut since, Some(true), 10_100),
            Some((5_000, 10_100))
        );
        // Drained, or unread: the stretch ends, the next one starts afresh.
        for gap in [Some(false), None] {
            assert_eq!(busy_window(&mut since, gap, 12_000), None);
            assert_eq!(busy_window(&mut since, Some(true), 13_000), None);
            assert_eq!(busy_window(&mut since, Some(true), 17_900), None);
            assert_eq!(
                busy_window(&mut since, Some(true), 18_000),
                Some((13_000, 18_000))
            );
        }
    }
}
