//! Liveness seen by status polls, written back to MySQL in bulk.
//!
//! A poll only records its ticket and the time in a map; a flusher writes
//! from it every second, in one `UPDATE` per thousand tickets. A student's
//! sighting is written when it is new (a join that creates a ticket has
//! written its own, [`Liveness::joined`]), and then again only once the one
//! written is `refresh` old (a fraction of the grace period): a student
//! polling every two seconds costs the database one write every few
//! seconds, not one per poll, and the time MySQL holds for them is behind
//! their true last sighting by at most `refresh` plus a flush, far inside
//! the grace period that would skip them. A student who stops polling has their last sighting
//! written within `refresh`, with its own time, so the grace clock runs
//! from when they were really last seen. The map's lock is a std mutex:
//! it is held for one insert or one pass over the map, never across an
//! `.await`.
//!
//! A failed write-back marks what it could not write as never written, so
//! the next flush tries it again: during a database outage the students
//! who keep polling are exactly the ones who must not lose their place
//! when it returns.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use waitroom::RoomStore;

/// Sightings kept while the database cannot take them. At about 40 bytes
/// each a million is 40 MB: a whole university polling through a long
/// outage.
const RETAIN_CAP: usize = 1_000_000;

/// A ticket seen and written longer ago than this is forgotten (it is
/// added again, and written at once, if its student polls again).
const FORGET_AFTER: Duration = Duration::from_secs(120);

/// When a ticket was last seen, and the sighting last written (0: never).
#[derive(Debug, Clone, Copy)]
struct Sighting {
    seen: u64,
    written: u64,
}

/// Tickets seen lately, with when, and what of it MySQL has. Keyed by
/// ticket numbers from tokens this system signed (nobody picks them), so
/// the map hashes with foldhash, seeded per process, not SipHash: every
/// poll records a sighting.
#[derive(Debug, Default)]
pub struct Liveness {
    seen: Mutex<Sightings>,
}

type Sightings = HashMap<u64, Sighting, foldhash::fast::RandomState>;

impl Liveness {
    fn map(&self) -> MutexGuard<'_, Sightings> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that ticket `seq`'s student was seen now.
    pub fn record(&self, seq: u64) {
        self.record_at(seq, crate::clock::now_ms());
    }

    /// Records that ticket `seq` was created at `at_ms` by a join, which
    /// wrote that sighting itself (`last_seen_at`): nothing is owed to the
    /// database until the student is seen again past the refresh.
    pub fn joined(&self, seq: u64, at_ms: u64) {
        let mut map = self.map();
        let s = map.entry(seq).or_insert(Sighting {
            seen: at_ms,
            written: at_ms,
        });
        s.seen = s.seen.max(at_ms);
    }

    fn record_at(&self, seq: u64, at_ms: u64) {
        let mut map = self.map();
        let s = map.entry(seq).or_insert(Sighting {
            seen: at_ms,
            written: 0,
        });
        s.seen = s.seen.max(at_ms);
    }

    /// Sightings owed to MySQL now: of students seen for the first time
    /// since the last flush, or whose write failed. (A polling student's
    /// newer sightings wait for the refresh on purpose and do not count.)
    pub fn pending(&self) -> usize {
        self.map().values().filter(|s| s.written == 0).count()
    }

    /// The sightings to write at `now_ms`: those never written, and those
    /// seen since a write at least `refresh_ms` old. They are marked written
    /// (a failed write undoes it, [`Liveness::unwritten`]). Tickets written
    /// and not seen for [`FORGET_AFTER`] are dropped, and the map's memory
    /// is given back once it is mostly empty (after an outage). One pass
    /// over the map, under the lock.
    fn due(&self, now_ms: u64, refresh_ms: u64) -> Vec<(u64, u64)> {
        let forget = u64::try_from(FORGET_AFTER.as_millis()).unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut map = self.map();
        map.retain(|&seq, s| {
            if s.seen > s.written
                && (s.written == 0 || now_ms.saturating_sub(s.written) >= refresh_ms)
            {
                out.push((seq, s.seen));
                s.written = s.seen;
            }
            s.seen > s.written || now_ms.saturating_sub(s.seen) <= forget
        });
        if map.capacity() > 1024 && map.len() < map.capacity() / 4 {
            let len = map.len();
            map.shrink_to(len * 2);
        }
        out
    }

    /// Marks what a failed flush could not write as never written, so the
    /// next flush tries it again (newer sightings made meanwhile win), up
    /// to the cap.
    fn unwritten(&self, sightings: Vec<(u64, u64)>) {
        let mut map = self.map();
        for (seq, at) in sightings {
            if map.len() >= RETAIN_CAP && !map.contains_key(&seq) {
                metrics::counter!("sluice_waitroom_liveness_dropped_total").increment(1);
                continue;
            }
            let s = map.entry(seq).or_insert(Sighting {
                seen: at,
                written: 0,
            });
            s.seen = s.seen.max(at);
            s.written = 0;
        }
    }
}

/// How long a written sighting stands before a newer one of the same
/// student is written: a sixth of the grace period, at most 10 s, so a
/// student who keeps polling is never near being skipped.
pub fn refresh_for(grace: Duration) -> Duration {
    (grace / 6).min(Duration::from_secs(10))
}

/// Flushes `liveness` every `every` until `shutdown`, then once more with
/// everything not yet written. A sighting is written again after `refresh`
/// ([`refresh_for`]).
pub async fn flush<S: RoomStore>(
    store: Arc<S>,
    liveness: Arc<Liveness>,
    every: Duration,
    refresh: Duration,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let refresh_ms = u64::try_from(refresh.as_millis()).unwrap_or(u64::MAX);
    let mut failing = false;
    loop {
        let stopping = tokio::select! {
            _ = interval.tick() => false,
            _ = shutdown.cancelled() => true,
        };
        let seen = liveness.due(
            crate::clock::now_ms(),
            if stopping { 0 } else { refresh_ms },
        );
        if !seen.is_empty() {
            match store.touch(&seen).await {
                Ok(()) => {
                    metrics::counter!("sluice_waitroom_liveness_written_total")
                        .increment(seen.len() as u64);
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
                    liveness.unwritten(seen);
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

    fn sorted(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
        v.sort_unstable();
        v
    }

    #[test]
    fn the_latest_sighting_wins_and_a_failed_flush_keeps_what_it_had() {
        let l = Liveness::default();
        l.record_at(1, 100);
        l.record_at(1, 50);
        l.record_at(2, 70);
        let drained = l.due(100, 10_000);
        assert_eq!(sorted(drained.clone()), vec![(1, 100), (2, 70)]);
        assert_eq!(l.pending(), 0);
        // Seen again while the write failed: the newer time stays, and
        // both are written at the next flush whatever the refresh.
        l.record_at(2, 90);
        l.unwritten(drained);
        assert_eq!(l.pending(), 2);
        assert_eq!(sorted(l.due(200, 10_000)), vec![(1, 100), (2, 90)]);
    }

    #[test]
    fn a_join_owes_nothing_until_the_student_is_seen_past_the_refresh() {
        let l = Liveness::default();
        l.joined(3, 1_000);
        assert_eq!(l.pending(), 0);
        assert!(l.due(1_000, 10_000).is_empty());
        // Polled two seconds later: within the refresh of the join's write.
        l.record_at(3, 3_000);
        assert!(l.due(3_000, 10_000).is_empty());
        // Polled past it: that sighting is written, with its own time.
        l.record_at(3, 11_500);
        assert_eq!(l.due(11_500, 10_000), vec![(3, 11_500)]);
    }

    #[test]
    fn a_polling_student_is_written_once_per_refresh_and_their_last_sighting_always() {
        const T0: u64 = 1_000_000;
        let l = Liveness::default();
        let mut writes = Vec::new();
        // Polls every 2 s for 50 s, flushes every second, refresh 10 s.
        for t in 0..=60_000u64 {
            if t % 2_000 == 0 && t <= 50_000 {
                l.record_at(7, T0 + t);
            }
            if t % 1_000 == 0 {
                writes.extend(l.due(T0 + t, 10_000).into_iter().map(|(_, at)| at - T0));
            }
        }
        // The first sighting at once, then one every 10 s, not 26 writes.
        assert_eq!(writes, vec![0, 10_000, 20_000, 30_000, 40_000, 50_000]);
    }

    /// Polls at uneven gaps (some longer than the refresh), flushes every
    /// second: at every flush, what MySQL holds is behind the student's
    /// true last sighting by at most the refresh and a flush, and the last
    /// sighting is written with its own time.
    #[test]
    fn mysql_is_never_further_behind_than_the_refresh_and_a_flush() {
        use rand::{Rng, SeedableRng};
        const REFRESH: u64 = 10_000;
        for seed in 0..20u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let l = Liveness::default();
            let mut next_poll = 1_000_000u64;
            let (mut last_seen, mut held) = (0u64, 0u64);
            for now in (1_000_000u64..1_200_000).step_by(100) {
                if now == next_poll && now < 1_150_000 {
                    l.record_at(9, now);
                    last_seen = now;
                    next_poll = now + rng.gen_range(1..=180) * 100;
                }
                if now % 1_000 == 0 {
                    for (_, at) in l.due(now, REFRESH) {
                        assert!(at > held, "seed {seed}: sightings only move forward");
                        held = at;
                    }
                    assert!(
                        last_seen - held <= REFRESH + 1_000,
                        "seed {seed}: at {now} MySQL has {held}, last seen {last_seen}"
                    );
                }
            }
            assert_eq!(held, last_seen, "seed {seed}: the last sighting is written");
        }
    }

    #[test]
    fn a_sighting_forgotten_while_its_write_failed_is_written_after_all() {
        let l = Liveness::default();
        l.record_at(5, 1_000);
        // Written (optimistically) and, at the same pass, long unseen: gone.
        let lost = l.due(1_000 + FORGET_AFTER.as_millis() as u64 + 1, 10_000);
        assert_eq!(lost, vec![(5, 1_000)]);
        assert_eq!(l.map().len(), 0);
        // The write failed: it is owed again and goes out at the next flush.
        l.unwritten(lost);
        assert_eq!(l.pending(), 1);
        assert_eq!(l.due(200_000, 10_000), vec![(5, 1_000)]);
    }

    #[test]
    fn the_last_sighting_before_a_student_stops_is_written_with_its_own_time() {
        let l = Liveness::default();
        l.record_at(3, 1_000);
        assert_eq!(l.due(1_000, 10_000), vec![(3, 1_000)]);
        l.record_at(3, 4_000);
        assert!(
            l.due(5_000, 10_000).is_empty(),
            "too soon after the last write"
        );
        assert_eq!(l.pending(), 0, "a refresh not yet due is not owed");
        assert_eq!(l.due(11_000, 10_000), vec![(3, 4_000)]);
        // Written and gone quiet: forgotten after a while, not kept forever.
        assert!(l.due(200_000, 10_000).is_empty());
        assert_eq!(l.map().len(), 0);
        // A stop flushes what is pending at once (refresh 0).
        l.record_at(3, 201_000);
        l.record_at(3, 202_000);
        assert_eq!(l.due(201_500, 10_000), vec![(3, 202_000)]);
        l.record_at(3, 203_000);
        assert_eq!(l.due(203_500, 0), vec![(3, 203_000)]);
    }

    #[test]
    fn the_refresh_is_a_sixth_of_the_grace_at_most_ten_seconds() {
        assert_eq!(
            refresh_for(Duration::from_secs(60)),
            Duration::from_secs(10)
        );
        assert_eq!(
            refresh_for(Duration::from_secs(300)),
            Duration::from_secs(10)
        );
        assert_eq!(
            refresh_for(Duration::from_secs(3)),
            Duration::from_millis(500)
        );
    }
}
