//! The registrar's live view of a round: numbers read from this gateway's
//! room snapshot, the command ledger and RabbitMQ, cached for a couple of
//! seconds so that ten open dashboards cost what one does.
//!
//! A sample is computed on demand and at most once per [`TTL`] per round
//! (the first caller computes under a lock, the others wait for it and
//! share the result). The ledger reads are aggregates over the last few
//! seconds on `ix_outcomes_round`; queue depth is one passive declare on a
//! channel kept open between samples.

use crate::db::MySqlStore;
use crate::AppState;
use dashmap::DashMap;
use enrollment::RoundId;
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::Row;
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
        let mut s = Sample {
            at_ms: crate::clock::now_ms(),
            state: v.state.as_str().to_string(),
            waiting: v.last_order_key.saturating_sub(v.serving_mark),
            admitted_total: v.admitted_total,
            active: v.active,
            admitted_per_min: room.measured_per_min,
            target_per_min: v.admission_per_min,
            max_active: v.max_active.unwrap_or(0),
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
                app.config.amqp_url.expose_secret(),
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
    let pool = store.pool();
    let since = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(WINDOW_SECS);
    let minute = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(60);
    let rows = store
        .timed(
            sqlx::query(
                "SELECT outcome, COALESCE(reason, '') AS reason, COUNT(*) AS n, \
                        MAX(TIMESTAMPDIFF(MICROSECOND, issued_at, decided_at)) AS lag_us \
                 FROM command_outcomes WHERE round_id = ? AND decided_at >= ? \
                 GROUP BY outcome, reason",
            )
            .bind(round.0)
            .bind(since)
            .fetch_all(pool),
        )
        .await?;
    let mut commits = 0u64;
    let mut lag: Option<i64> = None;
    for r in rows {
        let outcome: String = r.try_get("outcome")?;
        let reason: String = r.try_get("reason")?;
        let n: i64 = r.try_get("n")?;
        let n = u64::try_from(n).unwrap_or(0);
        let l: Option<i64> = r.try_get("lag_us")?;
        lag = lag.max(l);
        // A `failed` command was not carried out either; its reason shows
        // among the refusals.
        if outcome == "rejected" || outcome == "failed" {
            s.rejections.push((reason, n));
        } else {
            commits += n;
        }
    }
    s.rejections.sort_by_key(|r| std::cmp::Reverse(r.1));
    s.commits_per_sec = commits as f64 / WINDOW_SECS as f64;
    s.lag_secs = lag.map(|us| us as f64 / 1e6);
    let workers: i64 = store
        .timed(
            sqlx::query_scalar(
                "SELECT COUNT(DISTINCT decided_by) FROM command_outcomes \
                 WHERE round_id = ? AND decided_at >= ?",
            )
            .bind(round.0)
            .bind(minute)
            .fetch_one(pool),
        )
        .await?;
    s.workers = u64::try_from(workers).unwrap_or(0);
    s.gateways = crate::heartbeat::count_alive(store).await?;
    let hot = store
        .timed(
            sqlx::query(
                "SELECT section_id, COUNT(*) AS n FROM command_outcomes \
                 WHERE round_id = ? AND decided_at >= ? AND action = 'enroll' AND section_id IS NOT NULL \
                 GROUP BY section_id ORDER BY n DESC LIMIT 8",
            )
            .bind(round.0)
            .bind(minute)
            .fetch_all(pool),
        )
        .await?;
    let catalog = app.catalog.catalog();
    for r in hot {
        let id: u32 = r.try_get("section_id")?;
        let n: i64 = r.try_get("n")?;
        let seats = app.catalog.seats_of(id);
        s.hot.push(HotSection {
            id,
            label: catalog
                .section(id)
                .map(|c| format!("{}-{:02}", c.code, c.number))
                .unwrap_or_else(|| format!("#{id}")),
            requests: u64::try_from(n).unwrap_or(0),
            seats_left: seats.left(),
            capacity: seats.capacity,
        });
    }
    Ok(())
}
