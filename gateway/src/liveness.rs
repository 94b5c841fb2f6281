//! Liveness seen by status polls, written back to MySQL in bulk.
//!
//! A poll only records its ticket and the time in a map; a flusher drains
//! the map every second into one `UPDATE` per thousand tickets. So the
//! database sees at most one write per polling student per flush, not one
//! per poll. The map's lock is a std mutex: it is held for one insert or
//! one swap, never across an `.await`.
//!
//! A failed write-back keeps what it could not write and tries again at the
//! next flush: during a database outage the students who keep polling are
//! exactly the ones who must not lose their place when it returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use waitroom::RoomStore;

/// Sightings kept while the database cannot take them. At 16 bytes each a
/// million is 16 MB: a whole university polling through a long outage.
const RETAIN_CAP: usize = 1_000_000;

/// Tickets seen since the last successful flush, with when.
#[derive(Debug, Default)]
pub struct Liveness {
    seen: Mutex<HashMap<u64, u64>>,
}

impl Liveness {
    fn map(&self) -> MutexGuard<'_, HashMap<u64, u64>> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that ticket `seq`'s student was seen now.
    pub fn record(&self, seq: u64) {
        self.record_at(seq, crate::clock::now_ms());
    }

    fn record_at(&self, seq: u64, at_ms: u64) {
        let mut map = self.map();
        let at = map.entry(seq).or_insert(at_ms);
        *at = (*at).max(at_ms);
    }

    /// Sightings waiting to be written.
    pub fn pending(&self) -> usize {
        self.map().len()
    }

    fn drain(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.map()).into_iter().collect()
    }

    /// Puts back what a failed flush could not write (newer sightings made
    /// meanwhile win), up to the cap.
    fn retain(&self, unwritten: Vec<(u64, u64)>) {
        let mut map = self.map();
        for (seq, at) in unwritten {
            if map.len() >= RETAIN_CAP && !map.contains_key(&seq) {
                metrics::counter!("sluice_waitroom_liveness_dropped_total").increment(1);
                continue;
            }
            let kept = map.entry(seq).or_insert(at);
            *kept = (*kept).max(at);
        }
    }
}

/// Flushes `liveness` every `every` until `shutdown`, then once more.
pub async fn flush<S: RoomStore>(
    store: Arc<S>,
    liveness: Arc<Liveness>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        let stopping = tokio::select! {
            _ = interval.tick() => false,
            _ = shutdown.cancelled() => true,
        };
        let seen = liveness.drain();
        if !seen.is_empty() {
            match store.touch(&seen).await {
                Ok(()) => {
                    if failing {
                        tracing::info!(tickets = seen.len(), "liveness written back again");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, tickets = seen.len(),
                            "liveness write-back failed; kept for the next flush");
                    }
                    failing = true;
                    liveness.retain(seen);
                }
            }
        }
        metrics::gauge!("sluice_waitroom_liveness_pending").set(liveness.pending() as f64);
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_sighting_wins_and_a_failed_flush_keeps_what_it_had() {
        let l = Liveness::default();
        l.record_at(1, 100);
        l.record_at(1, 50);
        l.record_at(2, 70);
        let mut drained = l.drain();
        drained.sort_unstable();
        assert_eq!(drained, vec![(1, 100), (2, 70)]);
        assert_eq!(l.pending(), 0);
        // Seen again while the write failed: the newer time stays.
        l.record_at(2, 90);
        l.retain(drained);
        let mut again = l.drain();
        again.sort_unstable();
        assert_eq!(again, vec![(1, 100), (2, 90)]);
    }
}
