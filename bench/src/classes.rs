//! Per-class figures of a surge on a round with priority (`--priority`):
//! for each class line, who got in, how long they waited, whether the line
//! kept click order, and whether the first estimate held.
//!
//! The queue's promises hold per class: inside a line admission follows
//! the click, and each student's estimate counts the other lines that go
//! first. The run-wide `click_to_admission_tau` mixes the lines on purpose
//! and is no longer a fairness figure on such a round; these are.

use crate::promises::{self, Journey};
use serde::Serialize;
use std::collections::HashMap;
use waitroom::Priority;

/// The round's policy and each line's figures (`priority` in the report).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Classes {
    /// The policy as declared, e.g. `strict:4/1-3`.
    pub spec: String,
    pub classes: Vec<Class>,
}

/// One class line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Class {
    /// 0 first.
    pub lane: u8,
    /// Its class years, e.g. `4` or `1-3`.
    pub years: String,
    pub weight: u32,
    pub students: u64,
    pub admitted: u64,
    /// Share of every admission in the run that went to this line.
    pub admitted_share: Option<f64>,
    /// Median seconds from the click to seeing "admitted".
    pub median_wait_s: Option<f64>,
    /// Kendall tau-b, click vs the leader's admission, inside the line
    /// (students outside the pre-queue cohort).
    pub click_to_admission_tau: Option<f64>,
    /// Share of the line's admitted students whose wait lay inside the
    /// first range they were shown.
    pub eta_inside_first_range: Option<f64>,
}

/// The figures of `journeys` split by line; `class_year` maps a student
/// id to their class year, `admitted_at` is the server's admission time
/// (when the bench read MySQL).
pub fn measure(
    priority: &Priority,
    journeys: &[Journey],
    class_year: &HashMap<u32, u8>,
    admitted_at: Option<&HashMap<u32, i64>>,
) -> Classes {
    let mut lines: Vec<Vec<Journey>> = vec![Vec::new(); priority.lanes()];
    for j in journeys {
        let year = class_year.get(&j.student).copied().unwrap_or(0);
        if let Some(line) = lines.get_mut(usize::from(priority.lane_of(year))) {
            line.push(j.clone());
        }
    }
    let all_admitted = journeys.iter().filter(|j| j.admitted_us.is_some()).count() as u64;
    Classes {
        spec: priority.spec(),
        classes: lines
            .iter()
            .enumerate()
            .map(|(lane, line)| {
                let admitted = line.iter().filter(|j| j.admitted_us.is_some()).count() as u64;
                Class {
                    lane: lane as u8,
                    years: waitroom::priority::years_text(priority.lane_years(lane)),
                    weight: priority.weight(lane),
                    students: line.len() as u64,
                    admitted,
                    admitted_share: (all_admitted > 0)
                        .then(|| admitted as f64 / all_admitted as f64),
                    median_wait_s: promises::median(
                        line.iter()
                            .filter_map(|j| {
                                let wait = j.admitted_us?.checked_sub(j.clicked_us?)?;
                                Some(wait as f64 / 1e6)
                            })
                            .collect(),
                    ),
                    click_to_admission_tau: admitted_at
                        .and_then(|a| promises::click_tau_server(line, a)),
                    eta_inside_first_range: promises::eta(line).eta_inside_first_range,
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(student: u32, clicked_s: u64, admitted_s: u64) -> Journey {
        Journey {
            student,
            clicked_us: Some(clicked_s * 1_000_000),
            joined: true,
            admitted_us: Some(admitted_s * 1_000_000),
            ..Journey::default()
        }
    }

    #[test]
    fn figures_are_split_by_line() {
        let p = Priority::parse("strict:4/1-3").unwrap().unwrap();
        // Seniors 1 and 2, juniors 3 and 4; the juniors clicked first but
        // went after, in their own click order.
        let years: HashMap<u32, u8> = [(1, 4), (2, 4), (3, 1), (4, 2)].into_iter().collect();
        let journeys = [j(3, 0, 10), j(4, 1, 12), j(1, 2, 4), j(2, 3, 6)];
        let admitted_at: HashMap<u32, i64> = journeys
            .iter()
            .map(|j| (j.student, (j.admitted_us.unwrap() / 1_000) as i64))
            .collect();
        let c = measure(&p, &journeys, &years, Some(&admitted_at));
        assert_eq!(c.spec, "strict:4/1-3");
        assert_eq!(c.classes.len(), 3);
        let (seniors, juniors) = (&c.classes[0], &c.classes[1]);
        assert_eq!((seniors.years.as_str(), seniors.students), ("4", 2));
        assert_eq!((juniors.years.as_str(), juniors.admitted), ("1-3", 2));
        assert_eq!(seniors.median_wait_s, Some(2.5));
        assert_eq!(juniors.median_wait_s, Some(10.5));
        assert_eq!(seniors.click_to_admission_tau, Some(1.0));
        assert_eq!(juniors.click_to_admission_tau, Some(1.0));
        assert_eq!(seniors.admitted_share, Some(0.5));
        assert_eq!(c.classes[2].students, 0);
    }
}
