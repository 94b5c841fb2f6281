//! When simulated students arrive and what they want: arrival schedules
//! for an open-loop surge, and the Zipf-skewed popularity of sections.
//!
//! Open loop means arrivals follow the schedule whatever the server does: a
//! slow gateway does not slow the crowd down, exactly as on registration
//! day. Everything here is a pure function of a seed, so two runs with the
//! same flags replay the same crowd.

use rand::seq::SliceRandom;
use rand::Rng;
use std::time::Duration;

/// How arrivals are spread over the surge.
#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum Shape {
    /// Arrival times drawn uniformly over the whole window (a Poisson
    /// stream with N arrivals).
    Uniform,
    /// Most students in the first seconds, then a tail: an exponential
    /// decay with a time constant of a fifth of the window, truncated to it.
    Spike,
    /// A pre-queue cohort joins before the room opens (its order is the
    /// published shuffle), then the rest stream in uniformly after opening.
    Cohort,
}

/// Who arrives when, relative to the start of the surge.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Arrival offsets in increasing order; entry `i` is student `i`.
    pub arrivals: Vec<Duration>,
    /// When the room opens; `None` when it is open from the start.
    pub opens_at: Option<Duration>,
    /// How many of the first arrivals come before opening.
    pub cohort: usize,
}

/// Builds the schedule of `n` arrivals over `over` with `shape`. For
/// [`Shape::Cohort`], `cohort_share` of the students arrive during
/// `prequeue` before opening and the rest during `over` after it.
pub fn schedule<R: Rng>(
    rng: &mut R,
    shape: Shape,
    n: usize,
    over: Duration,
    cohort_share: f64,
    prequeue: Duration,
) -> Schedule {
    let window = over.as_secs_f64().max(1e-3);
    let mut arrivals: Vec<f64> = match shape {
        Shape::Uniform => (0..n).map(|_| rng.gen::<f64>() * window).collect(),
        Shape::Spike => {
            let tau = window / 5.0;
            let mass = 1.0 - (-window / tau).exp();
            (0..n)
                .map(|_| -tau * (1.0 - rng.gen::<f64>() * mass).ln())
                .collect()
        }
        Shape::Cohort => {
            let cohort = cohort_size(n, cohort_share);
            let pre = prequeue.as_secs_f64();
            let mut v: Vec<f64> = (0..cohort).map(|_| rng.gen::<f64>() * pre).collect();
            v.extend((cohort..n).map(|_| pre + rng.gen::<f64>() * window));
            v
        }
    };
    arrivals.sort_by(f64::total_cmp);
    let (opens_at, cohort) = match shape {
        Shape::Cohort => (Some(prequeue), cohort_size(n, cohort_share)),
        Shape::Uniform | Shape::Spike => (None, 0),
    };
    Schedule {
        arrivals: arrivals.into_iter().map(Duration::from_secs_f64).collect(),
        opens_at,
        cohort,
    }
}

fn cohort_size(n: usize, share: f64) -> usize {
    ((n as f64) * share.clamp(0.0, 1.0)).round() as usize
}

/// Samples ranks `0..n` with probability proportional to `1 / (rank + 1)^s`
/// (rank 0 is the most popular), by inverting a precomputed CDF.
#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// A sampler over `n ≥ 1` ranks with exponent `s ≥ 0` (0 is uniform).
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=n.max(1))
            .map(|k| {
                total += (k as f64).powf(-s.max(0.0));
                total
            })
            .collect();
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    pub fn len(&self) -> usize {
        self.cdf.len()
    }

    /// The probability of rank `k`.
    #[cfg(test)]
    pub fn probability(&self, k: usize) -> f64 {
        let below = if k == 0 { 0.0 } else { self.cdf[k - 1] };
        self.cdf.get(k).map_or(0.0, |c| c - below)
    }

    pub fn sample<R: Rng>(&self, rng: &mut R) -> usize {
        let u: f64 = rng.gen();
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }

    /// `k` distinct ranks (fewer if there are fewer ranks), most popular
    /// more likely, in the order drawn.
    pub fn distinct<R: Rng>(&self, rng: &mut R, k: usize) -> Vec<usize> {
        let k = k.min(self.len());
        let mut picked = Vec::with_capacity(k);
        // Rejection is cheap while k is far below n; the bound keeps a
        // steep distribution from spinning, falling back to the unpicked.
        for _ in 0..k * 64 {
            if picked.len() == k {
                return picked;
            }
            let r = self.sample(rng);
            if !picked.contains(&r) {
                picked.push(r);
            }
        }
        let mut rest: Vec<usize> = (0..self.len()).filter(|r| !picked.contains(r)).collect();
        rest.shuffle(rng);
        picked.extend(rest.into_iter().take(k - picked.len()));
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    fn secs(d: &[Duration]) -> Vec<f64> {
        d.iter().map(Duration::as_secs_f64).collect()
    }

    #[test]
    fn uniform_arrivals_fill_the_window_evenly_and_in_order() {
        let s = schedule(
            &mut rng(),
            Shape::Uniform,
            10_000,
            Duration::from_secs(10),
            0.0,
            Duration::ZERO,
        );
        let t = secs(&s.arrivals);
        assert_eq!(t.len(), 10_000);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        assert!(t.iter().all(|&x| (0.0..10.0).contains(&x)));
        let first_half = t.iter().filter(|&&x| x < 5.0).count();
        assert!((4_800..5_200).contains(&first_half), "{first_half}");
        assert_eq!((s.opens_at, s.cohort), (None, 0));
    }

    #[test]
    fn a_spike_front_loads_the_window() {
        let s = schedule(
            &mut rng(),
            Shape::Spike,
            10_000,
            Duration::from_secs(10),
            0.0,
            Duration::ZERO,
        );
        let t = secs(&s.arrivals);
        // With tau = 2 s, 1 - e^-1 of the (truncated) mass lands in 2 s.
        let early = t.iter().filter(|&&x| x < 2.0).count() as f64 / 10_000.0;
        let expected = (1.0 - (-1.0f64).exp()) / (1.0 - (-5.0f64).exp());
        assert!((early - expected).abs() < 0.02, "{early} vs {expected}");
        assert!(t.iter().all(|&x| (0.0..=10.0).contains(&x)));
    }

    #[test]
    fn a_cohort_arrives_before_opening_and_the_stream_after() {
        let s = schedule(
            &mut rng(),
            Shape::Cohort,
            1_000,
            Duration::from_secs(10),
            0.3,
            Duration::from_secs(5),
        );
        assert_eq!(s.cohort, 300);
        assert_eq!(s.opens_at, Some(Duration::from_secs(5)));
        let t = secs(&s.arrivals);
        assert!(t[..300].iter().all(|&x| x < 5.0));
        assert!(t[300..].iter().all(|&x| (5.0..15.0).contains(&x)));
    }

    #[test]
    fn zipf_probabilities_follow_the_power_law() {
        let z = Zipf::new(50, 1.0);
        let h: f64 = (1..=50).map(|k| 1.0 / k as f64).sum();
        assert!((z.probability(0) - 1.0 / h).abs() < 1e-12);
        assert!((z.probability(9) - 0.1 / h).abs() < 1e-12);
        assert!((0..50).map(|k| z.probability(k)).sum::<f64>() - 1.0 < 1e-9);
        let mut r = rng();
        let mut counts = [0u32; 50];
        for _ in 0..200_000 {
            counts[z.sample(&mut r)] += 1;
        }
        let top = f64::from(counts[0]) / 200_000.0;
        assert!((top - z.probability(0)).abs() < 0.005, "{top}");
        assert!(counts[0] > counts[1] && counts[1] > counts[10]);
    }

    #[test]
    fn zipf_with_exponent_zero_is_uniform() {
        let z = Zipf::new(4, 0.0);
        for k in 0..4 {
            assert!((z.probability(k) - 0.25).abs() < 1e-12);
        }
    }

    #[test]
    fn distinct_draws_never_repeat_and_stop_at_the_population() {
        let z = Zipf::new(5, 3.0);
        let mut r = rng();
        for _ in 0..100 {
            let mut d = z.distinct(&mut r, 4);
            assert_eq!(d.len(), 4);
            d.sort_unstable();
            d.dedup();
            assert_eq!(d.len(), 4);
        }
        assert_eq!(z.distinct(&mut r, 9).len(), 5);
    }
}
