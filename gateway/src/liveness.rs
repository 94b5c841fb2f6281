//! Liveness seen by status polls, written back to MySQL in bulk.
//!
//! A poll only records its ticket in a set; a flusher drains the set every
//! second into one `UPDATE ... WHERE seq IN (...)` per thousand tickets. So
//! the database sees at most one write per polling student per flush, not
//! one per poll. The set's lock is a std mutex: it is held for one insert or
//! one swap, never across an `.await`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use waitroom::RoomStore;

/// Tickets seen since the last flush.
#[derive(Debug, Default)]
pub struct Liveness {
    seen: Mutex<HashSet<u64>>,
}

impl Liveness {
    pub fn record(&self, seq: u64) {
        match self.seen.lock() {
            Ok(mut set) => {
                set.insert(seq);
            }
            Err(poisoned) => {
                poisoned.into_inner().insert(seq);
            }
        }
    }

    fn drain(&self) -> Vec<u64> {
        let set = match self.seen.lock() {
            Ok(mut set) => std::mem::take(&mut *set),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        set.into_iter().collect()
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
    loop {
        let stopping = tokio::select! {
            _ = interval.tick() => false,
            _ = shutdown.cancelled() => true,
        };
        let seqs = liveness.drain();
        if !seqs.is_empty() {
            if let Err(e) = store.touch(&seqs, crate::clock::now_ms()).await {
                // Losing one flush costs nothing: the next poll records again,
                // and the grace period is many flushes long.
                tracing::warn!(error = %e, tickets = seqs.len(), "liveness write-back failed");
            }
        }
        if stopping {
            return;
        }
    }
}
