//! The bound on requests handled at once: past it the gateway sheds load
//! at once (503) instead of queueing without limit.
//!
//! Only ever tried, never waited on, so a counter does what a semaphore
//! did at a tenth of the cost on every request (a status poll paid about
//! 180 instructions for the semaphore's permit and its release).

use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests under way, and how many may be.
#[derive(Debug)]
pub struct InFlight {
    now: AtomicUsize,
    max: usize,
}

/// One request counted while it lives.
#[derive(Debug)]
pub struct Entered<'a>(&'a InFlight);

impl InFlight {
    pub fn new(max: usize) -> InFlight {
        InFlight {
            now: AtomicUsize::new(0),
            max: max.max(1),
        }
    }

    /// Counts a request in, or `None` when `max` are already under way.
    /// The count only moves from below the bound to one more, so no more
    /// than `max` ever hold an [`Entered`], and a caller is refused only
    /// when `max` really are in (an add then a step back would count a
    /// refused caller for a moment and turn away another one with a place
    /// free).
    pub fn try_enter(&self) -> Option<Entered<'_>> {
        self.now
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(Entered(self))
    }

    /// Requests under way now.
    #[cfg(test)]
    fn current(&self) -> usize {
        self.now.load(Ordering::Relaxed)
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn refuses_past_the_bound_and_lets_in_again_once_one_leaves() {
        let bound = InFlight::new(2);
        let a = bound.try_enter().expect("first");
        let b = bound.try_enter().expect("second");
        assert!(bound.try_enter().is_none(), "a third is refused");
        assert_eq!(bound.current(), 2);
        drop(a);
        let c = bound.try_enter().expect("a place came free");
        assert!(bound.try_enter().is_none());
        drop((b, c));
        assert_eq!(bound.current(), 0);
        // A bound of 0 is taken as 1.
        let one = InFlight::new(0);
        let held = one.try_enter().expect("one");
        assert!(one.try_enter().is_none());
        drop(held);
    }

    #[test]
    fn racing_threads_never_hold_more_than_the_bound() {
        const MAX: usize = 3;
        let bound = Arc::new(InFlight::new(MAX));
        let holding = Arc::new(AtomicUsize::new(0));
        let over = Arc::new(AtomicBool::new(false));
        let admitted = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (bound, holding, over, admitted) = (
                    Arc::clone(&bound),
                    Arc::clone(&holding),
                    Arc::clone(&over),
                    Arc::clone(&admitted),
                );
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        if let Some(entered) = bound.try_enter() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                            if holding.fetch_add(1, Ordering::SeqCst) >= MAX {
                                over.store(true, Ordering::SeqCst);
                            }
                            std::hint::spin_loop();
                            holding.fetch_sub(1, Ordering::SeqCst);
                            drop(entered);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(!over.load(Ordering::SeqCst), "more than {MAX} held at once");
        assert!(admitted.load(Ordering::Relaxed) > 0);
        assert_eq!(bound.current(), 0, "every entry was counted out");
    }
}
