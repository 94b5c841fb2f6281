//! The registrar's live view of a round: numbers read from this gateway's
//! room snapshot, the command ledger and RabbitMQ, cached for a couple of
//! seconds so that ten open dashboards cost what one does.
//!
//! A sample is computed on demand and at most once per [`TTL`] per round
//! (the first caller computes under a lock, the others wait for it and
//! share the result). The ledger reads are aggregates over the last few
//! seconds on `ix_outcomes_round`; queue depth is one passive declare on a
//! channel kept open between samples.

use crate::db::{outcome_stats, MySqlStore};
use crate::AppState;
use dashmap::DashMap;
use enrollment::RoundId;
use secrecy::ExposeSecret;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long a sample is reused.
pub const TTL: Duration = Duration::from_secs(2);

/// The window commit and rejection rates are measured over.
const WINDOW_SECS: i64 = 10;

/// One live sample of a round.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Sample {
    pub at_ms: u64,
    /// `at_ms` as a clock in the university's zone (`SLUICE_TIME_ZONE`),
    /// with the zone's abbreviation (`14:03:07 KST`): the page shows it as
    /// is, whatever zone the browser is in.
    pub at: String,
    pub state: String,
    pub waiting: u64,
    pub admitted_total: u64,
    pub active: u32,
    pub admitted_per_min: Option<f64>,
    pub target_per_min: u32,
    pub max_active: u32,
    /// Ready messages in the command queue; `None` when RabbitMQ did not
    /// answer.
    pub queue_depth: Option<u32>,
    /// The longest a command decided in the window waited in the queue
    /// (issued to decided), in seconds: how far the workers lag.
    pub lag_secs: Option<f64>,
    pub commits_per_sec: f64,
    pub rejections: Vec<(String, u64)>,
    /// Workers that decided a command in the last minute.
    pub workers: u64,
    /// Gateways that reported themselves alive in the last seconds.
    pub gateways: u64,
    pub hot: Vec<HotSection>,
    /// `fixed`, or `auto` (the leader sets `target_per_min`).
    pub pace_mode: &'static str,
    /// In automatic pace: the range, and why the rate is where it is.
    pub pace_floor: Option<u32>,
    pub pace_ceiling: Option<u32>,
    pub pace_reason: Option<&'static str>,
    /// The backlog (commands) or latency (ms) behind the reason.
    pub pace_signal: Option<u64>,
    /// When the leader last changed the rate, on the university's clock.
    pub pace_changed_at: Option<String>,
    /// Admissions a minute the workers were measured to keep up with.
    pub pace_capacity_per_min: Option<u32>,
}

/// A section many students asked for lately.
#[derive(Debug, Clone, Serialize)]
pub struct HotSection {
    pub id: u32,
    pub label: String,
    pub requests: u64,
    pub seats_left: u32,
    pub capacity: u32,
}

/// Cached samples and the broker channel.
#[derive(Default)]
pub struct Live {
    samples: DashMap<RoundId, (Instant, Arc<Sample>)>,
    compute: Mutex<()>,
    channel: Mutex<Option<(broker_conn::Connection, broker_conn::Channel)>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("rounds", &self.samples.len())
            .finish_non_exhaustive()
    }
}

mod broker_conn {
    pub use lapin::{Channel, Connection};
}

impl Live {
    /// The round's sample, at most [`TTL`] old.
    pub async fn sample(&self, app: &AppState, round: RoundId) -> Option<Arc<Sample>> {
        if let Some(s) = self.fresh(round) {
            return Some(s);
        }
        let _guard = self.compute.lock().await;
        if let Some(s) = self.fresh(round) {
            return Some(s);
        }
        let sample = Arc::new(self.compute(app, round).await?);
        self.samples
            .insert(round, (Instant::now(), Arc::clone(&sample)));
        Some(sample)
    }

    fn fresh(&self, round: RoundId) -> Option<Arc<Sample>> {
        self.samples
            .get(&round)
            .filter(|e| e.0.elapsed() < TTL)
            .map(|e| Arc::clone(&e.1))
    }

    async fn compute(&self, app: &AppState, round: RoundId) -> Option<Sample> {
        let snapshot = app.rooms.snapshot();
        let room = snapshot.rounds.get(&round)?;
        let v = &room.view;
        let at_ms = crate::clock::now_ms();
        let mut s = Sample {
            at_ms,
            at: clock_in(app.config.time_zone, at_ms),
            state: v.state.as_str().to_string(),
            waiting: v.last_order_key.saturating_sub(v.serving_mark),
            admitted_total: v.admitted_total,
            active: v.active,
            admitted_per_min: room.measured_per_min,
            target_per_min: v.admission_per_min,
            max_active: v.max_active.unwrap_or(0),
            pace_mode: if v.pace.is_some() { "auto" } else { "fixed" },
            pace_floor: v.pace.map(|p| p.settings.floor),
            pace_ceiling: v.pace.map(|p| p.settings.ceiling),
            pace_reason: v.pace.and_then(|p| p.reason).map(|r| r.as_str()),
            pace_signal: v.pace.and_then(|p| p.signal),
            pace_capacity_per_min: v.pace.and_then(|p| p.capacity_per_min),
            pace_changed_at: v
                .pace
                .and_then(|p| p.changed_at_ms)
                .map(|ms| clock_in(app.config.time_zone, ms)),
            ..Sample::default()
        };
        if let Err(e) = ledger(&app.store, round, app, &mut s).await {
            tracing::warn!(round.id = %round, error = %e, "live view: ledger read failed");
        }
        s.queue_depth = self.depth(app).await;
        Some(s)
    }

    async fn depth(&self, app: &AppState) -> Option<u32> {
        let queue = broker::Topology::new(&app.config.amqp_prefix).commands_queue;
        let mut held = self.channel.lock().await;
        if held
            .as_ref()
            .is_none_or(|(c, ch)| !c.status().connected() || !ch.status().connected())
        {
            let conn = broker::connect(
                app.config.connections.amqp_url.expose_secret(),
                "sluice-gateway-live-view",
                Duration::from_secs(2),
            )
            .await
            .ok()?;
            let channel = conn.create_channel().await.ok()?;
            *held = Some((conn, channel));
        }
        let (_, channel) = held.as_ref()?;
        match tokio::time::timeout(Duration::from_secs(2), broker::queue_depth(channel, &queue))
            .await
        {
            Ok(Ok(n)) => Some(n),
            _ => {
                // Passive declares close the channel on failure: start over.
                *held = None;
                None
            }
        }
    }
}

async fn ledger(
    store: &MySqlStore,
    round: RoundId,
    app: &AppState,
    s: &mut Sample,
) -> Result<(), crate::db::StoreError> {
    let since = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(WINDOW_SECS);
    let minute = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(60);
    let mut commits = 0u64;
    let mut lag: Option<i64> = None;
    for d in outcome_stats::decided_since(store, round, since).await? {
        lag = lag.max(d.max_lag_us);
        // A `failed` command was not carried out either; its reason shows
        // among the refusals.
        if d.outcome == "rejected" || d.outcome == "failed" {
            s.rejections.push((d.reason, d.count));
        } else {
            commits += d.count;
        }
    }
    s.rejections.sort_by_key(|r| std::cmp::Reverse(r.1));
    s.commits_per_sec = commits as f64 / WINDOW_SECS as f64;
    s.lag_secs = lag.map(|us| us as f64 / 1e6);
    s.workers = outcome_stats::workers_since(store, round, minute).await?;
    s.gateways = crate::heartbeat::count_alive(store).await?;
    let hot = outcome_stats::busiest_sections(store, round, minute, 8).await?;
    let catalog = app.catalog.catalog();
    for (id, n) in hot {
        let seats = app.catalog.seats_of(id);
        s.hot.push(HotSection {
            id,
            label: catalog
                .section(id)
                .map(|c| format!("{}-{:02}", c.code, c.number))
                .unwrap_or_else(|| format!("#{id}")),
            requests: n,
            seats_left: seats.left(),
            capacity: seats.capacity,
        });
    }
    Ok(())
}

/// Epoch milliseconds as a wall clock in `tz`, with the zone's abbreviation.
fn clock_in(tz: chrono_tz::Tz, ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.with_timezone(&tz).format("%H:%M:%S %Z").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod clock_tests {
    use super::clock_in;

    #[test]
    fn the_clock_is_in_the_universitys_zone_not_the_servers() {
        // 2026-12-03 05:00:07 UTC is 14:00:07 in Seoul.
        assert_eq!(
            clock_in(chrono_tz::Asia::Seoul, 1_796_274_007_000),
            "14:00:07 KST"
        );
        assert_eq!(clock_in(chrono_tz::UTC, 1_796_274_007_000), "05:00:07 UTC");
    }
}
