//! `sluice_section_seats_remaining` for the hottest sections.
//!
//! Every gateway runs one small query every few seconds: the 20 sections
//! with the most commands decided in the last minute (read through the
//! `(round_id, decided_at)` index, for the rounds that are running), or,
//! when nothing was decided lately, the 20 fullest sections. The label set
//! is bounded to those 20: a section that leaves the set stops being
//! reported and its series goes idle (see [`crate::telemetry`]).

use crate::db::seats::hottest;
use crate::db::MySqlStore;
use crate::rooms::Rooms;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use waitroom::RoundState;

/// Refreshes the gauges every `every` until `shutdown`.
pub async fn report(
    store: Arc<MySqlStore>,
    rooms: Arc<Rooms>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        crate::telemetry::keep_alive();
        let rounds: Vec<u32> = rooms
            .snapshot()
            .rounds
            .values()
            .filter(|r| matches!(r.view.state, RoundState::Open | RoundState::Paused))
            .map(|r| r.view.id.0)
            .collect();
        match hottest(&store, &rounds, crate::clock::now_ms()).await {
            Ok(counts) => {
                failing = false;
                for c in counts {
                    metrics::gauge!("sluice_section_seats_remaining", "section" => c.code)
                        .set(c.remaining as f64);
                }
            }
            Err(e) => {
                // The room snapshot already reports the outage; say it once.
                if !failing {
                    tracing::warn!(error = %e, "seat gauges not refreshed");
                }
                failing = true;
            }
        }
    }
}
