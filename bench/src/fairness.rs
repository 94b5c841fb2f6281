//! Fairness measures: did the waiting room admit students in ticket order,
//! and did each full section's seats go to the students admitted earlier?

/// Kendall's tau-b between the two orders of `pairs` (`x`, `y`), by
/// Knight's O(n log n) algorithm. Ties in either order (students admitted
/// in the same tick share an admission time) are corrected for, as in
/// tau-b. `None` when fewer than two pairs, or when one order is all ties.
pub fn kendall_tau_b<X: Ord + Copy, Y: Ord + Copy>(pairs: &[(X, Y)]) -> Option<f64> {
    let n = pairs.len();
    if n < 2 {
        return None;
    }
    let mut v = pairs.to_vec();
    v.sort_unstable();
    let pairs_total = (n as u128) * (n as u128 - 1) / 2;
    let x_ties = tied_pairs(&v, |a, b| a.0 == b.0);
    let joint_ties = tied_pairs(&v, |a, b| a == b);
    let mut ys: Vec<Y> = v.iter().map(|p| p.1).collect();
    let mut buffer = ys.clone();
    let swaps = merge_count(&mut ys, &mut buffer);
    let y_ties = tied_pairs(&ys, |a, b| a == b);
    let concordant_minus_discordant =
        pairs_total as f64 - x_ties as f64 - y_ties as f64 + joint_ties as f64 - 2.0 * swaps as f64;
    let denominator = ((pairs_total - x_ties) as f64 * (pairs_total - y_ties) as f64).sqrt();
    (denominator > 0.0).then(|| concordant_minus_discordant / denominator)
}

/// Pairs within runs of equal neighbours in a sorted slice.
fn tied_pairs<T>(sorted: &[T], eq: impl Fn(&T, &T) -> bool) -> u128 {
    let mut total = 0u128;
    let mut run = 1u128;
    for w in sorted.windows(2) {
        if eq(&w[0], &w[1]) {
            run += 1;
        } else {
            total += run * (run - 1) / 2;
            run = 1;
        }
    }
    total + run * (run - 1) / 2
}

/// Sorts `v` (stable merge sort) and returns the number of inversions.
fn merge_count<T: Ord + Copy>(v: &mut [T], buffer: &mut [T]) -> u128 {
    let n = v.len();
    if n < 2 {
        return 0;
    }
    let mid = n / 2;
    let mut swaps = {
        let (left, right) = v.split_at_mut(mid);
        let (bl, br) = buffer.split_at_mut(mid);
        merge_count(left, bl) + merge_count(right, br)
    };
    let (mut i, mut j, mut k) = (0, mid, 0);
    while i < mid && j < n {
        if v[j] < v[i] {
            buffer[k] = v[j];
            swaps += (mid - i) as u128;
            j += 1;
        } else {
            buffer[k] = v[i];
            i += 1;
        }
        k += 1;
    }
    buffer[k..k + mid - i].copy_from_slice(&v[i..mid]);
    let k = k + mid - i;
    buffer[k..k + n - j].copy_from_slice(&v[j..n]);
    v.copy_from_slice(&buffer[..n]);
    swaps
}

/// The probability that a seat holder of a section was admitted before a
/// student the same section turned away as full (ties count half): the
/// area under the ROC curve of "admitted earlier" for "got the seat". 1.0
/// means every holder was admitted before every turned-away student; 0.5
/// means seats went out regardless of admission order. `None` without
/// both holders and turned-away students.
pub fn earlier_admitted_share(holders: &[u64], turned_away: &[u64]) -> Option<f64> {
    if holders.is_empty() || turned_away.is_empty() {
        return None;
    }
    let mut away = turned_away.to_vec();
    away.sort_unstable();
    let mut wins = 0.0;
    for &h in holders {
        let later = away.len() - away.partition_point(|&a| a <= h);
        let tied = away.partition_point(|&a| a <= h) - away.partition_point(|&a| a < h);
        wins += later as f64 + 0.5 * tied as f64;
    }
    Some(wins / (holders.len() as f64 * away.len() as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The definition, in O(n²), to check the fast one against.
    fn tau_b_slow(p: &[(i64, i64)]) -> f64 {
        let (mut c, mut d, mut tx, mut ty) = (0i64, 0i64, 0i64, 0i64);
        for i in 0..p.len() {
            for j in i + 1..p.len() {
                let dx = (p[i].0 - p[j].0).signum();
                let dy = (p[i].1 - p[j].1).signum();
                match (dx, dy) {
                    (0, 0) => {}
                    (0, _) => tx += 1,
                    (_, 0) => ty += 1,
                    _ if dx == dy => c += 1,
                    _ => d += 1,
                }
            }
        }
        (c - d) as f64 / (((c + d + tx) as f64) * ((c + d + ty) as f64)).sqrt()
    }

    #[test]
    fn identical_orders_give_one_and_reversed_give_minus_one() {
        let same: Vec<(u32, u32)> = (0..100).map(|i| (i, i)).collect();
        assert_eq!(kendall_tau_b(&same), Some(1.0));
        let reversed: Vec<(u32, u32)> = (0..100).map(|i| (i, 100 - i)).collect();
        assert_eq!(kendall_tau_b(&reversed), Some(-1.0));
    }

    #[test]
    fn one_swap_in_four_is_the_textbook_value() {
        // 6 pairs, 1 discordant: (5 - 1) / 6.
        let p = [(1, 1), (2, 3), (3, 2), (4, 4)];
        let tau = kendall_tau_b(&p).unwrap();
        assert!((tau - 4.0 / 6.0).abs() < 1e-12, "{tau}");
    }

    #[test]
    fn admissions_in_the_same_tick_are_ties_not_discordances() {
        // Tickets 0..100 admitted ten per tick, in order: no discordant
        // pair, and tau-b's tie correction leaves sqrt(1 - 450 / 4950).
        let p: Vec<(u32, u32)> = (0..100).map(|i| (i, i / 10)).collect();
        let expected = (1.0f64 - 450.0 / 4950.0).sqrt();
        assert!((kendall_tau_b(&p).unwrap() - expected).abs() < 1e-12);
    }

    #[test]
    fn matches_the_definition_on_random_data_with_ties() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let n = rng.gen_range(2..200);
            let p: Vec<(i64, i64)> = (0..n)
                .map(|_| (rng.gen_range(0..30), rng.gen_range(0..30)))
                .collect();
            let fast = kendall_tau_b(&p).unwrap();
            assert!((fast - tau_b_slow(&p)).abs() < 1e-9);
        }
    }

    #[test]
    fn degenerate_inputs_have_no_tau() {
        assert_eq!(kendall_tau_b::<u8, u8>(&[]), None);
        assert_eq!(kendall_tau_b(&[(1, 1)]), None);
        assert_eq!(kendall_tau_b(&[(1, 1), (1, 2)]), None, "x all tied");
    }

    #[test]
    fn seats_to_earlier_students_score_one_and_interleaved_score_half() {
        assert_eq!(earlier_admitted_share(&[1, 2, 3], &[4, 5]), Some(1.0));
        assert_eq!(earlier_admitted_share(&[4, 5], &[1, 2, 3]), Some(0.0));
        assert_eq!(earlier_admitted_share(&[1, 4], &[2, 3]), Some(0.5));
        assert_eq!(earlier_admitted_share(&[1, 3], &[2, 4]), Some(0.75));
        assert_eq!(earlier_admitted_share(&[2], &[2]), Some(0.5));
        assert_eq!(earlier_admitted_share(&[], &[2]), None);
    }
}
