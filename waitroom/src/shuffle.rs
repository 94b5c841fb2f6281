//! The pre-queue shuffle.
//!
//! Students who join before a round opens all arrived "early", so their
//! arrival order carries no meaning worth rewarding (it mostly measures who
//! has the fastest script). At opening they are put in a random order drawn
//! from a seed; the seed is published once the round is open so anyone can
//! recompute the order from the list of cohort tickets and check it.
//!
//! The algorithm is fixed here, independent of any crate's shuffle (which may
//! change between versions), so the published seed stays auditable forever:
//!
//! 1. sort the cohort's ticket sequence numbers ascending;
//! 2. key ChaCha20 with `SHA-256("sluice-prequeue-v1" || seed as 8 bytes LE)`;
//! 3. Fisher-Yates from the last position down: for `i = n-1 .. 1`, draw
//!    `j` uniform in `0..=i` by rejection sampling on `next_u64()` (reject
//!    values at or above the largest multiple of `i + 1`), swap `i` and `j`.
//!
//! The result lists the sequence numbers in admission order.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

/// Domain separation for the seed derivation; bump the version to change
/// the algorithm.
const CONTEXT: &[u8] = b"sluice-prequeue-v1";

/// Orders the pre-queue cohort (ticket sequence numbers, in any order) for
/// admission, reproducibly from `seed`.
pub fn prequeue_order(cohort: &[u64], seed: u64) -> Vec<u64> {
    let mut order = cohort.to_vec();
    order.sort_unstable();
    let mut rng = rng(seed);
    for i in (1..order.len()).rev() {
        let j = uniform(&mut rng, i as u64 + 1);
        // `j <= i < len`, so the cast cannot truncate.
        order.swap(i, j as usize);
    }
    order
}

fn rng(seed: u64) -> ChaCha20Rng {
    let mut hasher = Sha256::new();
    hasher.update(CONTEXT);
    hasher.update(seed.to_le_bytes());
    ChaCha20Rng::from_seed(hasher.finalize().into())
}

/// A uniform draw from `0..n` without modulo bias.
fn uniform(rng: &mut ChaCha20Rng, n: u64) -> u64 {
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let x = rng.next_u64();
        if x < zone {
            return x % n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn is_reproducible_and_independent_of_input_order() {
        let a = prequeue_order(&[5, 1, 9, 3, 7], 42);
        let b = prequeue_order(&[9, 7, 5, 3, 1], 42);
        assert_eq!(a, b);
        assert_ne!(
            prequeue_order(&(1..=20).collect::<Vec<_>>(), 42),
            (1..=20).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_algorithm_is_pinned() {
        // If this changes, published seeds no longer reproduce past rounds.
        assert_eq!(
            prequeue_order(&(1..=10).collect::<Vec<_>>(), 20261121),
            PINNED.to_vec()
        );
    }

    const PINNED: [u64; 10] = [5, 2, 10, 1, 3, 7, 8, 4, 6, 9];

    #[test]
    fn first_place_is_roughly_uniform() {
        let cohort: Vec<u64> = (0..4).collect();
        let mut firsts = [0u32; 4];
        for seed in 0..4000 {
            firsts[prequeue_order(&cohort, seed)[0] as usize] += 1;
        }
        assert!(
            firsts.iter().all(|&c| (850..1150).contains(&c)),
            "{firsts:?}"
        );
    }

    proptest! {
        #[test]
        fn is_a_permutation(mut cohort in proptest::collection::hash_set(any::<u64>(), 0..300), seed in any::<u64>()) {
            let cohort: Vec<u64> = cohort.drain().collect();
            let mut order = prequeue_order(&cohort, seed);
            let mut sorted = cohort.clone();
            sorted.sort_unstable();
            order.sort_unstable();
            prop_assert_eq!(order, sorted);
        }
    }
}
