//! The queue page's promises, measured from what each student saw: fair
//! from the click, estimates that come true, a place kept through absence
//! the student did not cause (or came back from), and shared addresses
//! treated like any other student.
//!
//! Each student task fills one [`Journey`]; after the run the pure
//! functions here turn the journeys (and, when the bench reads MySQL, the
//! server's admission times and ticket counts) into the report's figures.
//! Times are microseconds since the start of the surge, on the bench's
//! clock: what a student's browser would have seen.

pub use crate::choices::Got;
use crate::choices::{self, AutoSend, Choices};
use crate::fairness;
use serde::Serialize;
use std::collections::HashMap;

/// One estimate a student was shown: when the answer arrived, and the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    pub at_us: u64,
    pub min_secs: u64,
    pub max_secs: u64,
    /// Marked rough by the gateway: the speed is known only to lie between
    /// the pace's floor and ceiling.
    pub rough: bool,
}

/// What one student went through, as their page saw it.
#[derive(Debug, Clone, Default)]
pub struct Journey {
    /// The student's id (to match the server's ticket).
    pub student: u32,
    /// Clicked before the room opened: the pre-queue shuffle decides their
    /// order on purpose, so they are left out of click-order fairness.
    pub prequeue: bool,
    /// Sends the address many students share (`--shared-ip`).
    pub shared_ip: bool,
    /// When the first join request was sent (the click).
    pub clicked_us: Option<u64>,
    /// A join answered with a place.
    pub joined: bool,
    /// When the first answer saying "admitted" arrived.
    pub admitted_us: Option<u64>,
    /// An answer said "waiting" (estimated or not).
    pub waited: bool,
    /// Every estimate shown while waiting, in order.
    pub shown: Vec<Shown>,
    /// An answer said "skipped".
    pub skipped: bool,
    /// An answer carried `notice: "returned"` (a skipped place reclaimed).
    pub returned: bool,
    /// Stopped polling for a while, as a locked phone does (`--suspend-share`).
    pub suspended: bool,
    /// The cart's enroll command was answered 202.
    pub cart_accepted: bool,
    /// Answers with status 429.
    pub refused_429: u32,
    /// The cart's enroll, sent right after admission, was answered 401:
    /// the pass the gateway gave was refused (it ran out before the
    /// student could use it).
    pub pass_refused: bool,
    /// "Send my cart when I am admitted" was stored (`--auto-send`).
    pub auto_send: bool,
    /// The admitted answer named the command the gateway sent.
    pub sent_at_admission: bool,
    /// What each item of the cart's command came to, once decided.
    pub cart_items: Vec<Got>,
    /// When the answer carrying that outcome arrived.
    pub cart_decided_us: Option<u64>,
    /// That command.
    pub cart_command: Option<uuid::Uuid>,
}

impl Journey {
    /// Admitted without losing the turn: never skipped, or skipped and
    /// given the place back.
    pub fn kept_turn(&self) -> bool {
        self.admitted_us.is_some() && (!self.skipped || self.returned)
    }
}

/// How many students of a group reached each step (`--shared-ip`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Group {
    pub students: u64,
    pub joined: u64,
    /// Whose join never succeeded.
    pub never_placed: u64,
    pub skipped: u64,
    pub admitted: u64,
    pub cart_accepted: u64,
    /// Answers with status 429, summed over the group.
    pub refused_429: u64,
}

/// Tallies what happened to `journeys`.
pub fn tally<'a>(journeys: impl IntoIterator<Item = &'a Journey>) -> Group {
    let mut g = Group::default();
    for j in journeys {
        g.students += 1;
        g.joined += u64::from(j.joined);
        g.never_placed += u64::from(!j.joined);
        g.skipped += u64::from(j.skipped);
        g.admitted += u64::from(j.admitted_us.is_some());
        g.cart_accepted += u64::from(j.cart_accepted);
        g.refused_429 += u64::from(j.refused_429);
    }
    g
}

/// Kendall tau-b between click order and client-side admission order,
/// over admitted students outside the pre-queue cohort.
pub fn click_tau(journeys: &[Journey]) -> Option<f64> {
    let pairs: Vec<(u64, u64)> = journeys
        .iter()
        .filter(|j| !j.prequeue)
        .filter_map(|j| Some((j.clicked_us?, j.admitted_us?)))
        .collect();
    fairness::kendall_tau_b(&pairs)
}

/// The same with the server's admission time (`tickets.admitted_at`, any
/// unit as long as it orders), for students the server admitted.
pub fn click_tau_server(journeys: &[Journey], admitted_at: &HashMap<u32, i64>) -> Option<f64> {
    let pairs: Vec<(u64, i64)> = journeys
        .iter()
        .filter(|j| !j.prequeue)
        .filter_map(|j| Some((j.clicked_us?, *admitted_at.get(&j.student)?)))
        .collect();
    fairness::kendall_tau_b(&pairs)
}

/// How the estimates shown compared with the waits that followed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Eta {
    /// Admitted students who were shown at least one estimate (suspended
    /// students left out).
    pub eta_students: u64,
    /// Share of them whose wait from their first estimate to admission
    /// lay inside that first range.
    pub eta_inside_first_range: Option<f64>,
    /// Share of them for whom every range they were shown held.
    pub eta_every_range_held: Option<f64>,
    /// (student, estimate) pairs of admitted students...
    pub eta_pairs: u64,
    /// ...and the share whose remaining wait lay inside the range shown.
    pub eta_inside_range: Option<f64>,
    /// Median of actual wait / middle of the first range: above 1 the
    /// estimates promise too short a wait, below 1 too long a one.
    pub eta_ratio_median: Option<f64>,
    /// Admitted students (suspended ones left out) who were told they were
    /// waiting but never shown an estimate: what withholding an estimate
    /// costs, so that it cannot pass for estimates that hold.
    pub eta_unshown_students: u64,
    /// Median seconds from the click to the first estimate, over
    /// `eta_students` who clicked after the opening.
    pub eta_first_shown_s_median: Option<f64>,
    /// `eta_inside_first_range` for each fifth of those students, in click
    /// order: a surge's estimates can hold for the first to click and fail
    /// for those who came a few seconds later, which one share averages
    /// away.
    pub eta_first_range_by_arrival: [Option<f64>; ARRIVAL_PARTS],
    /// Of `eta_students`, those whose first range was marked rough (an
    /// automatic pace before the workers were measured: from the ceiling
    /// to the floor). Such a range holds by its width, so the figures
    /// below judge the first firm range apart.
    pub eta_first_rough_students: u64,
    /// Median width (max - min, seconds) of the first range: a range that
    /// holds only by being wide shows here.
    pub eta_first_width_s_median: Option<f64>,
    /// Of `eta_students`, those shown at least one range not marked rough.
    pub eta_firm_students: u64,
    /// Share of them whose wait from their first firm range lay inside it.
    pub eta_inside_first_firm_range: Option<f64>,
    /// Median of actual wait / middle of that range.
    pub eta_first_firm_ratio_median: Option<f64>,
    /// Median seconds from the click to the first firm range, over those
    /// who clicked after the opening.
    pub eta_first_firm_s_median: Option<f64>,
}

/// The parts `eta_first_range_by_arrival` splits the students into.
pub const ARRIVAL_PARTS: usize = 5;

/// The share of `held` in each of [`ARRIVAL_PARTS`] parts of `(clicked,
/// held)` in click order (as equal in size as the count allows).
fn by_arrival(mut v: Vec<(u64, bool)>) -> [Option<f64>; ARRIVAL_PARTS] {
    v.sort_by_key(|&(clicked, _)| clicked);
    let n = v.len();
    std::array::from_fn(|i| {
        let part = &v[i * n / ARRIVAL_PARTS..(i + 1) * n / ARRIVAL_PARTS];
        share(
            part.iter().filter(|&&(_, held)| held).count() as u64,
            part.len() as u64,
        )
    })
}

fn inside(s: &Shown, admitted_us: u64) -> bool {
    let wait = admitted_us.saturating_sub(s.at_us) as f64 / 1e6;
    s.min_secs as f64 <= wait && wait <= s.max_secs as f64
}

fn share(hits: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| hits as f64 / of as f64)
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Actual wait from `s` to `admitted_us` / the middle of its range; `None`
/// for a range of "0 to 0".
fn ratio(s: &Shown, admitted_us: u64) -> Option<f64> {
    let middle = (s.min_secs + s.max_secs) as f64 / 2.0;
    (middle > 0.0).then(|| admitted_us.saturating_sub(s.at_us) as f64 / 1e6 / middle)
}

/// Compares each estimate shown with the wait that followed it.
pub fn eta(journeys: &[Journey]) -> Eta {
    let (mut students, mut first_in, mut all_in, mut pairs, mut pairs_in) = (0, 0, 0, 0, 0);
    let (mut ratios, mut first_after, mut unshown) = (Vec::new(), Vec::new(), 0);
    let mut arrivals = Vec::new();
    let (mut rough_first, mut widths) = (0, Vec::new());
    let (mut firm, mut firm_in, mut firm_ratios, mut firm_after) = (0, 0, Vec::new(), Vec::new());
    // A suspended student learns of the admission only when they look
    // again: their lateness says nothing about the estimate.
    for j in journeys.iter().filter(|j| !j.suspended) {
        let Some(admitted) = j.admitted_us else {
            continue;
        };
        let Some(first) = j.shown.first() else {
            unshown += u64::from(j.waited);
            continue;
        };
        students += 1;
        // Before opening a pre-queue student waits for the opening, not
        // for an estimate.
        let held_first = inside(first, admitted);
        if let Some(clicked) = j.clicked_us.filter(|_| !j.prequeue) {
            first_after.push(first.at_us.saturating_sub(clicked) as f64 / 1e6);
            arrivals.push((clicked, held_first));
        }
        first_in += u64::from(held_first);
        let held = j.shown.iter().filter(|s| inside(s, admitted)).count() as u64;
        all_in += u64::from(held == j.shown.len() as u64);
        pairs += j.shown.len() as u64;
        pairs_in += held;
        ratios.extend(ratio(first, admitted));
        rough_first += u64::from(first.rough);
        widths.push(first.max_secs.saturating_sub(first.min_secs) as f64);
        if let Some(f) = j.shown.iter().find(|s| !s.rough) {
            firm += 1;
            firm_in += u64::from(inside(f, admitted));
            firm_ratios.extend(ratio(f, admitted));
            if let Some(clicked) = j.clicked_us.filter(|_| !j.prequeue) {
                firm_after.push(f.at_us.saturating_sub(clicked) as f64 / 1e6);
            }
        }
    }
    Eta {
        eta_students: students,
        eta_inside_first_range: share(first_in, students),
        eta_every_range_held: share(all_in, students),
        eta_pairs: pairs,
        eta_inside_range: share(pairs_in, pairs),
        eta_ratio_median: median(ratios),
        eta_unshown_students: unshown,
        eta_first_shown_s_median: median(first_after),
        eta_first_range_by_arrival: by_arrival(arrivals),
        eta_first_rough_students: rough_first,
        eta_first_width_s_median: median(widths),
        eta_firm_students: firm,
        eta_inside_first_firm_range: share(firm_in, firm),
        eta_first_firm_ratio_median: median(firm_ratios),
        eta_first_firm_s_median: median(firm_after),
    }
}

/// One line of `--journeys`: what a student saw, times in seconds since
/// the surge's start.
#[derive(Debug, Serialize)]
struct JourneyLine {
    student: u32,
    prequeue: bool,
    shared_ip: bool,
    suspended: bool,
    clicked_s: Option<f64>,
    admitted_s: Option<f64>,
    skipped: bool,
    returned: bool,
    /// `[answer_s, min_secs, max_secs, rough]` of every estimate shown, in
    /// order.
    estimates: Vec<(f64, u64, u64, bool)>,
    cart_decided_s: Option<f64>,
}

/// Writes `journeys` to `file`, one JSON object a line in student order:
/// the data behind the promise figures, for a look at who an estimate
/// failed and when.
pub fn write_journeys(file: std::fs::File, journeys: &[Journey]) -> anyhow::Result<()> {
    use std::io::Write;
    let s = |us: u64| us as f64 / 1e6;
    let mut out = std::io::BufWriter::new(file);
    let mut order: Vec<&Journey> = journeys.iter().collect();
    order.sort_by_key(|j| j.student);
    for j in order {
        let line = JourneyLine {
            student: j.student,
            prequeue: j.prequeue,
            shared_ip: j.shared_ip,
            suspended: j.suspended,
            clicked_s: j.clicked_us.map(s),
            admitted_s: j.admitted_us.map(s),
            skipped: j.skipped,
            returned: j.returned,
            estimates: j
                .shown
                .iter()
                .map(|e| (s(e.at_us), e.min_secs, e.max_secs, e.rough))
                .collect(),
            cart_decided_s: j.cart_decided_us.map(s),
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Ticket counts read from MySQL after the drain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tickets<'a> {
    pub admitted_at: Option<&'a HashMap<u32, i64>>,
    pub skipped: Option<u64>,
    /// `None` also when the schema has no `reclaimed_at` column yet.
    pub reclaimed: Option<u64>,
    /// When each command was first decided (ms since the surge's start).
    pub decided_at: Option<&'a HashMap<uuid::Uuid, i64>>,
}

/// The promise figures of the report (flattened into it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Promises {
    /// Kendall tau-b, click vs the leader's admission (`admitted_at`): the
    /// order the room gave, against the order the students clicked in.
    pub click_to_admission_tau: Option<f64>,
    /// The same against the moment the student saw "admitted" (their next
    /// poll): adds the noise of poll spacing to the room's order.
    pub click_to_seen_admission_tau: Option<f64>,
    #[serde(flatten)]
    pub eta: Eta,
    /// Students shown "skipped", and shown `notice: "returned"`.
    pub skipped: u64,
    pub reclaimed: u64,
    /// Tickets left `skipped`, and tickets with `reclaimed_at` (MySQL).
    pub skipped_tickets: Option<u64>,
    pub reclaimed_tickets: Option<u64>,
    /// Students who stopped polling for `--suspend-for`, and those of them
    /// admitted without losing their turn.
    pub suspended: u64,
    pub suspended_kept_turn: u64,
    /// Admitted students whose cart's enroll, sent within `--think` of
    /// admission, was refused with 401: the time they were promised to
    /// enroll in did not come true. Only an outage that took their pass's
    /// time can cause it.
    pub passes_refused: u64,
    /// (`--shared-ip`) the students behind the one address, and the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_ip: Option<Group>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own_ip: Option<Group>,
    /// What the carts came to: first choices, alternates, waitlist places.
    pub choices: Choices,
    /// Carts sent at admission against carts sent by a click.
    pub auto_send: AutoSend,
}

/// Every promise figure of a run.
pub fn measure(journeys: &[Journey], tickets: Tickets<'_>) -> Promises {
    let any_shared = journeys.iter().any(|j| j.shared_ip);
    let suspended = journeys.iter().filter(|j| j.suspended);
    Promises {
        click_to_admission_tau: tickets
            .admitted_at
            .and_then(|a| click_tau_server(journeys, a)),
        click_to_seen_admission_tau: click_tau(journeys),
        eta: eta(journeys),
        skipped: journeys.iter().filter(|j| j.skipped).count() as u64,
        reclaimed: journeys.iter().filter(|j| j.returned).count() as u64,
        skipped_tickets: tickets.skipped,
        reclaimed_tickets: tickets.reclaimed,
        suspended: suspended.clone().count() as u64,
        suspended_kept_turn: suspended.filter(|j| j.kept_turn()).count() as u64,
        passes_refused: journeys
            .iter()
            .filter(|j| j.admitted_us.is_some() && j.pass_refused)
            .count() as u64,
        shared_ip: any_shared.then(|| tally(journeys.iter().filter(|j| j.shared_ip))),
        own_ip: any_shared.then(|| tally(journeys.iter().filter(|j| !j.shared_ip))),
        choices: choices::choices(journeys),
        auto_send: choices::auto_send(journeys, tickets.admitted_at.zip(tickets.decided_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    fn admitted(clicked: u64, admitted: u64) -> Journey {
        Journey {
            clicked_us: Some(clicked),
            joined: true,
            admitted_us: Some(admitted),
            ..Journey::default()
        }
    }

    fn shown(at_s: u64, min_secs: u64, max_secs: u64) -> Shown {
        Shown {
            at_us: at_s * S,
            min_secs,
            max_secs,
            rough: false,
        }
    }

    #[test]
    fn admission_in_click_order_is_one_and_a_late_ticket_lowers_it() {
        let fair: Vec<Journey> = (0..10).map(|i| admitted(i * S, 100 * S + i * S)).collect();
        assert_eq!(click_tau(&fair), Some(1.0));
        // The earliest clicker waited behind everyone (refused joins, a
        // slow sign-in): 9 of 45 pairs discordant.
        let mut late = fair.clone();
        late[0].admitted_us = Some(1_000 * S);
        let tau = click_tau(&late).unwrap();
        assert!((tau - (36.0 - 9.0) / 45.0).abs() < 1e-12, "{tau}");
    }

    #[test]
    fn click_tau_leaves_out_the_prequeue_and_students_never_admitted() {
        let mut j: Vec<Journey> = (0..5).map(|i| admitted(i * S, 10 * S + i * S)).collect();
        // Shuffled on purpose, and not admitted: neither counts.
        j.push(Journey {
            prequeue: true,
            ..admitted(0, 99 * S)
        });
        j.push(Journey {
            clicked_us: Some(0),
            joined: true,
            ..Journey::default()
        });
        assert_eq!(click_tau(&j), Some(1.0));
        assert_eq!(click_tau(&j[..1]), None);
    }

    #[test]
    fn server_tau_matches_students_by_id() {
        let mut j: Vec<Journey> = (0..4).map(|i| admitted(i * S, 0)).collect();
        for (i, x) in j.iter_mut().enumerate() {
            x.student = 100 + i as u32;
        }
        let reversed: HashMap<u32, i64> = (0..4).map(|i| (100 + i, 10 - i64::from(i))).collect();
        assert_eq!(click_tau_server(&j, &reversed), Some(-1.0));
        assert_eq!(click_tau_server(&j, &HashMap::new()), None);
    }

    #[test]
    fn a_rough_first_range_is_counted_apart_and_the_first_firm_one_judged() {
        let rough = |at_s, min, max| Shown {
            rough: true,
            ..shown(at_s, min, max)
        };
        // Admitted at 30 s. A rough 1..300 at 0 s holds by its width; the
        // first firm range, 10..20 at 12 s, holds too (18 s left).
        let a = Journey {
            shown: vec![rough(0, 1, 300), shown(12, 10, 20), shown(20, 1, 2)],
            ..admitted(0, 30 * S)
        };
        // Rough throughout: no firm range to judge.
        let b = Journey {
            shown: vec![rough(2, 0, 100)],
            ..admitted(0, 30 * S)
        };
        // Firm from the start: 5..8 at 4 s does not hold (26 s).
        let c = Journey {
            shown: vec![shown(4, 5, 8)],
            ..admitted(0, 30 * S)
        };
        let e = eta(&[a, b, c]);
        assert_eq!(e.eta_students, 3);
        assert_eq!(e.eta_first_rough_students, 2);
        assert_eq!(e.eta_inside_first_range, Some(2.0 / 3.0), "by their width");
        // Widths 299, 100 and 3.
        assert_eq!(e.eta_first_width_s_median, Some(100.0));
        assert_eq!(e.eta_firm_students, 2);
        assert_eq!(e.eta_inside_first_firm_range, Some(0.5));
        // 18 s / 15 and 26 s / 6.5.
        let expected = (18.0 / 15.0 + 26.0 / 6.5) / 2.0;
        assert!((e.eta_first_firm_ratio_median.unwrap() - expected).abs() < 1e-12);
        // Shown 12 s and 4 s after the click at 0.
        assert_eq!(e.eta_first_firm_s_median, Some(8.0));
    }

    #[test]
    fn eta_shares_count_first_ranges_students_and_pairs() {
        // Admitted at 30 s. First range at 0 s: 20..40 holds (30 s).
        // Second at 20 s: 15..20 does not (10 s left).
        let a = Journey {
            shown: vec![shown(0, 20, 40), shown(20, 15, 20)],
            ..admitted(0, 30 * S)
        };
        // First range at 10 s: 5..8 does not hold (20 s).
        let b = Journey {
            shown: vec![shown(10, 5, 8)],
            ..admitted(0, 30 * S)
        };
        // Never shown an estimate, never admitted, or away: left out (the
        // first counted apart when it waited).
        let c = Journey {
            waited: true,
            ..admitted(0, 5 * S)
        };
        let away = Journey {
            shown: vec![shown(0, 1, 2)],
            suspended: true,
            ..admitted(0, 99 * S)
        };
        let d = Journey {
            shown: vec![shown(0, 1, 2)],
            joined: true,
            ..Journey::default()
        };
        let e = eta(&[a, b, c, d, away]);
        assert_eq!(e.eta_students, 2);
        assert_eq!(e.eta_inside_first_range, Some(0.5));
        assert_eq!(e.eta_every_range_held, Some(0.0));
        assert_eq!(e.eta_pairs, 3);
        assert!((e.eta_inside_range.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // Ratios 30 / 30 and 20 / 6.5.
        let expected = (1.0 + 20.0 / 6.5) / 2.0;
        assert!((e.eta_ratio_median.unwrap() - expected).abs() < 1e-12);
        assert_eq!(e.eta_unshown_students, 1, "c waited without one");
        // First estimates 0 s and 10 s after the click at 0.
        assert_eq!(e.eta_first_shown_s_median, Some(5.0));
        // Two students: the fifths that get one of them say whether it held.
        assert_eq!(
            e.eta_first_range_by_arrival,
            [None, None, Some(1.0), None, Some(0.0)],
            "a (clicked at 0, held) then b (clicked at 0, did not)"
        );
    }

    #[test]
    fn journeys_are_written_one_student_a_line() {
        let dir = std::env::temp_dir().join(format!("sluice-journeys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.jsonl");
        let j = [
            Journey {
                student: 8,
                prequeue: true,
                ..Journey::default()
            },
            Journey {
                student: 7,
                shown: vec![shown(1, 20, 40), shown(3, 10, 30)],
                ..admitted(500_000, 30 * S)
            },
        ];
        write_journeys(std::fs::File::create(&path).unwrap(), &j).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["student"], 7);
        assert_eq!(lines[0]["clicked_s"], 0.5);
        assert_eq!(lines[0]["admitted_s"], 30.0);
        assert_eq!(
            lines[0]["estimates"],
            serde_json::json!([[1.0, 20, 40, false], [3.0, 10, 30, false]])
        );
        assert_eq!(lines[1]["student"], 8, "in student order");
        assert_eq!(lines[1]["prequeue"], true);
        assert!(lines[1]["admitted_s"].is_null());
    }

    #[test]
    fn first_ranges_are_split_by_arrival_in_click_order() {
        // Ten students clicking a second apart, given in reverse order: the
        // first six ranges hold, the last four do not.
        let j: Vec<Journey> = (0..10u64)
            .rev()
            .map(|i| {
                let clicked = i * S;
                let range = if i < 6 { (10, 20) } else { (1, 2) };
                Journey {
                    shown: vec![shown(i, range.0, range.1)],
                    ..admitted(clicked, clicked + 15 * S)
                }
            })
            .collect();
        let e = eta(&j);
        assert_eq!(e.eta_inside_first_range, Some(0.6));
        assert_eq!(
            e.eta_first_range_by_arrival,
            [Some(1.0), Some(1.0), Some(1.0), Some(0.0), Some(0.0)]
        );
        // Pre-queue students have no place in click order.
        let pre: Vec<Journey> = j
            .into_iter()
            .map(|j| Journey {
                prequeue: true,
                ..j
            })
            .collect();
        assert_eq!(eta(&pre).eta_first_range_by_arrival, [None; ARRIVAL_PARTS]);
    }

    #[test]
    fn range_bounds_are_inclusive_in_fractional_seconds() {
        let at = |wait_us| {
            let j = Journey {
                shown: vec![shown(0, 2, 3)],
                ..admitted(0, wait_us)
            };
            eta(&[j]).eta_inside_first_range
        };
        assert_eq!(at(2 * S), Some(1.0));
        assert_eq!(at(3 * S), Some(1.0));
        assert_eq!(at(3 * S + 1), Some(0.0));
        assert_eq!(at(2 * S - 1), Some(0.0));
        assert_eq!(eta(&[]).eta_inside_first_range, None);
    }

    #[test]
    fn shared_address_students_are_tallied_apart() {
        let mut j = vec![
            Journey {
                shared_ip: true,
                cart_accepted: true,
                refused_429: 3,
                ..admitted(0, S)
            },
            Journey {
                shared_ip: true,
                refused_429: 8,
                ..Journey::default()
            },
            Journey {
                shared_ip: true,
                joined: true,
                skipped: true,
                ..Journey::default()
            },
            admitted(0, S),
        ];
        j[3].cart_accepted = true;
        let p = measure(&j, Tickets::default());
        assert_eq!(
            p.shared_ip,
            Some(Group {
                students: 3,
                joined: 2,
                never_placed: 1,
                skipped: 1,
                admitted: 1,
                cart_accepted: 1,
                refused_429: 11,
            })
        );
        assert_eq!(
            p.own_ip.map(|g| (g.students, g.cart_accepted)),
            Some((1, 1))
        );
        assert_eq!(p.skipped, 1);
        let nobody_shared = measure(&j[3..], Tickets::default());
        assert_eq!(
            (nobody_shared.shared_ip, nobody_shared.own_ip),
            (None, None)
        );
    }

    #[test]
    fn a_suspended_student_keeps_the_turn_unless_skipped_for_good() {
        let kept = Journey {
            suspended: true,
            ..admitted(0, S)
        };
        let reclaimed = Journey {
            suspended: true,
            skipped: true,
            returned: true,
            ..admitted(0, S)
        };
        let sent_back = Journey {
            suspended: true,
            skipped: true,
            ..admitted(0, S)
        };
        let never_admitted = Journey {
            suspended: true,
            joined: true,
            ..Journey::default()
        };
        let p = measure(
            &[kept, reclaimed, sent_back, never_admitted],
            Tickets::default(),
        );
        assert_eq!((p.suspended, p.suspended_kept_turn), (4, 2));
        assert_eq!((p.skipped, p.reclaimed), (2, 1));
    }

    #[test]
    fn a_refused_pass_counts_for_admitted_students_only() {
        let refused = Journey {
            pass_refused: true,
            ..admitted(0, S)
        };
        let fine = admitted(0, S);
        // Refused before any admission: a forged or foreign pass, not one
        // the room gave and took back.
        let stranger = Journey {
            pass_refused: true,
            joined: true,
            ..Journey::default()
        };
        let p = measure(&[refused.clone(), fine, stranger], Tickets::default());
        assert_eq!(p.passes_refused, 1);
        assert_eq!(
            measure(&[refused.clone(), refused], Tickets::default()).passes_refused,
            2
        );
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN]), None);
        assert_eq!(median(Vec::new()), None);
    }
}
