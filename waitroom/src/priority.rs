//! Priority inside a round: classes of students admitted in order or by
//! weight.
//!
//! A round may declare a [`Priority`]: groups of class years, each with its
//! own line (*lane*). Under [`PriorityMode::Strict`] a group is admitted only
//! when no live waiting ticket of an earlier group remains; under
//! [`PriorityMode::Weighted`] each tick's budget is split by weight among the
//! groups that have someone waiting, rounding carried from tick to tick so a
//! 2:1 split holds over time. Class years no group names form one last group
//! ("other years", weight 1).
//!
//! Inside a lane nothing changes: tickets are admitted in order-key order,
//! which is ticket (click) order, and a student's place is their key minus
//! the lane's serving mark. A lane is a band of the round's order-key space
//! ([`lane_key`]): lane `l` hands out keys `l·2^40 + 1, l·2^40 + 2, ...`, so
//! the one ticket index serves every lane, the queue token carries the lane
//! inside the key it already has, and a round without a policy (one lane,
//! lane 0) keeps exactly the keys and the bytes it had before.

use crate::room::{plan_admission, AdmissionPlan, Candidate};

/// At most this many groups (there are eight class years).
pub const MAX_GROUPS: usize = 8;

/// Weights are whole numbers in `1..=MAX_WEIGHT`.
pub const MAX_WEIGHT: u32 = 100;

/// Bits of an order key that number the ticket inside its lane.
pub const LANE_SHIFT: u32 = 40;

/// The order key of the `key`-th ticket of `lane`.
pub fn lane_key(lane: u8, key: u64) -> u64 {
    (u64::from(lane) << LANE_SHIFT) | (key & ((1 << LANE_SHIFT) - 1))
}

/// The lane of an order key and the ticket's number inside the lane.
pub fn split_key(order_key: u64) -> (u8, u64) {
    let lane = u8::try_from(order_key >> LANE_SHIFT).unwrap_or(u8::MAX);
    (lane, order_key & ((1 << LANE_SHIFT) - 1))
}

/// How groups take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorityMode {
    /// Earlier groups first: a later group waits while an earlier one has
    /// live waiting tickets.
    Strict,
    /// Each tick's admissions are split by weight.
    Weighted,
}

impl PriorityMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PriorityMode::Strict => "strict",
            PriorityMode::Weighted => "weighted",
        }
    }
}

/// One group: a set of class years (bit `y - 1` for year `y`) and its
/// weight (1 under strict order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Group {
    pub years: u8,
    pub weight: u32,
}

/// A round's declared priority. Fixed size, so round changes stay `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Priority {
    mode: PriorityMode,
    groups: [Group; MAX_GROUPS],
    len: u8,
}

/// Why a priority was refused. Messages are in English and Korean: they go
/// to registrars as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriorityError {
    #[error("name at least one group of class years (학년 그룹을 하나 이상 지정하세요)")]
    NoGroups,
    #[error("at most {MAX_GROUPS} groups (그룹은 최대 {MAX_GROUPS}개입니다)")]
    TooManyGroups,
    #[error("group {0} names no class year (그룹 {0}에 학년이 없습니다)")]
    EmptyGroup(usize),
    #[error("class year {0} is not between 1 and 8 (학년 {0}은(는) 1~8 사이가 아닙니다)")]
    Year(u32),
    #[error("class year {0} is in more than one group (학년 {0}이(가) 여러 그룹에 있습니다)")]
    YearTwice(u8),
    #[error(
        "weights are whole numbers from 1 to {MAX_WEIGHT} (가중치는 1~{MAX_WEIGHT}의 정수입니다)"
    )]
    Weight,
    #[error("every group needs a weight under weighted turns, e.g. weighted:4=2/1-3=1 (가중치 방식에서는 그룹마다 가중치가 필요합니다)")]
    MissingWeight,
    #[error(
        "strict order takes no weights, e.g. strict:4/1-3 (순서 방식에는 가중치를 쓰지 않습니다)"
    )]
    UnexpectedWeight,
    #[error("unreadable priority {0:?}; write none, strict:4/1-3 or weighted:4=2/1-3=1 (우선순위 형식을 읽을 수 없습니다)")]
    Syntax(String),
}

impl Priority {
    /// A priority from its groups (years mask, weight), validated. Under
    /// strict order weights must be absent (`None`).
    pub fn new(
        mode: PriorityMode,
        groups: &[(Vec<u32>, Option<u32>)],
    ) -> Result<Priority, PriorityError> {
        if groups.is_empty() {
            return Err(PriorityError::NoGroups);
        }
        if groups.len() > MAX_GROUPS {
            return Err(PriorityError::TooManyGroups);
        }
        let mut out = Priority {
            mode,
            groups: [Group {
                years: 0,
                weight: 1,
            }; MAX_GROUPS],
            len: 0,
        };
        let mut seen = 0u8;
        for (i, (years, weight)) in groups.iter().enumerate() {
            if years.is_empty() {
                return Err(PriorityError::EmptyGroup(i + 1));
            }
            let mut mask = 0u8;
            for &y in years {
                if !(1..=8).contains(&y) {
                    return Err(PriorityError::Year(y));
                }
                let bit = 1u8 << (y - 1);
                if seen & bit != 0 {
                    return Err(PriorityError::YearTwice(y as u8));
                }
                seen |= bit;
                mask |= bit;
            }
            let weight = match (mode, weight) {
                (PriorityMode::Strict, None) => 1,
                (PriorityMode::Strict, Some(_)) => return Err(PriorityError::UnexpectedWeight),
                (PriorityMode::Weighted, None) => return Err(PriorityError::MissingWeight),
                (PriorityMode::Weighted, Some(w)) if (1..=MAX_WEIGHT).contains(w) => *w,
                (PriorityMode::Weighted, Some(_)) => return Err(PriorityError::Weight),
            };
            out.groups[i] = Group {
                years: mask,
                weight,
            };
            out.len += 1;
        }
        Ok(out)
    }

    /// Parses `none` (or nothing), `strict:4/1-3` or `weighted:4=2/1-3=1`
    /// (groups separated by `/`; under weights a group ends at its `=w`, so
    /// `weighted:4=2,1-3=1` reads the same). Years are `1,2,3` or `1-3`.
    pub fn parse(spec: &str) -> Result<Option<Priority>, PriorityError> {
        let spec = spec.trim();
        if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        let syntax = || PriorityError::Syntax(spec.chars().take(80).collect());
        let (mode, body) = spec.split_once(':').ok_or_else(syntax)?;
        let mode = match mode.trim().to_ascii_lowercase().as_str() {
            "strict" => PriorityMode::Strict,
            "weighted" => PriorityMode::Weighted,
            _ => return Err(syntax()),
        };
        let mut groups: Vec<(Vec<u32>, Option<u32>)> = Vec::new();
        match mode {
            PriorityMode::Strict => {
                for g in body.split('/') {
                    let mut years = Vec::new();
                    for item in g.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if item.contains('=') {
                            return Err(PriorityError::UnexpectedWeight);
                        }
                        years.extend(parse_years(item).ok_or_else(syntax)?);
                    }
                    groups.push((years, None));
                }
            }
            PriorityMode::Weighted => {
                let mut years = Vec::new();
                for item in body
                    .split([',', '/'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
                    match item.split_once('=') {
                        Some((y, w)) => {
                            years.extend(parse_years(y.trim()).ok_or_else(syntax)?);
                            let w: u32 = w.trim().parse().map_err(|_| PriorityError::Weight)?;
                            groups.push((std::mem::take(&mut years), Some(w)));
                        }
                        None => years.extend(parse_years(item).ok_or_else(syntax)?),
                    }
                }
                if !years.is_empty() {
                    return Err(PriorityError::MissingWeight);
                }
            }
        }
        Priority::new(mode, &groups).map(Some)
    }

    /// The canonical spec [`Priority::parse`] reads back: `strict:4/1-3`.
    pub fn spec(&self) -> String {
        let groups: Vec<String> = self
            .named()
            .iter()
            .map(|g| match self.mode {
                PriorityMode::Strict => years_text(g.years),
                PriorityMode::Weighted => format!("{}={}", years_text(g.years), g.weight),
            })
            .collect();
        format!("{}:{}", self.mode.as_str(), groups.join("/"))
    }

    pub fn mode(&self) -> PriorityMode {
        self.mode
    }

    /// The groups the registrar named, in order.
    pub fn named(&self) -> &[Group] {
        &self.groups[..usize::from(self.len)]
    }

    fn named_years(&self) -> u8 {
        self.named().iter().fold(0, |m, g| m | g.years)
    }

    /// How many lanes: the named groups, and one for the years none names.
    pub fn lanes(&self) -> usize {
        usize::from(self.len) + usize::from(self.named_years() != 0xFF)
    }

    /// The lane (0 first) of a student in `class_year`; a year outside
    /// 1..=8 goes to the last lane.
    pub fn lane_of(&self, class_year: u8) -> u8 {
        let bit = class_year
            .checked_sub(1)
            .filter(|b| *b < 8)
            .map_or(0, |b| 1u8 << b);
        let last = self.lanes().saturating_sub(1) as u8;
        self.named()
            .iter()
            .position(|g| g.years & bit != 0)
            .map_or(last, |i| i as u8)
    }

    /// Whether a wait in lane `lane` may grow as students of other lanes
    /// arrive: every lane under weights, every lane but the first under
    /// strict order.
    pub fn may_grow(&self, lane: usize) -> bool {
        self.mode() == PriorityMode::Weighted || lane > 0
    }

    /// The years of lane `lane` (the last lane may be "every other year").
    pub fn lane_years(&self, lane: usize) -> u8 {
        match self.named().get(lane) {
            Some(g) => g.years,
            None => !self.named_years(),
        }
    }

    /// The weight of lane `lane` (other years weigh 1).
    pub fn weight(&self, lane: usize) -> u32 {
        self.named().get(lane).map_or(1, |g| g.weight)
    }

    /// Admissions, across every lane, that come before a student with
    /// `ahead` places ahead in `lane`, when lane `j` has `waiting[j]`
    /// students in line and nobody else arrives. Strict: every earlier lane
    /// drains first. Weighted: while lane `j` has people it gets
    /// `w_j / w_lane` admissions for each of this lane's, and a lane that
    /// runs dry passes its share on, which keeps that ratio between the
    /// lanes still waiting; so by this student's turn lane `j` has had
    /// `min(waiting[j], ahead · w_j / w_lane)`. Divided by the round's
    /// admission rate this is the student's wait.
    pub fn admissions_before(&self, waiting: &[u64], lane: usize, ahead: u64) -> u64 {
        match self.mode {
            PriorityMode::Strict => waiting.iter().take(lane).sum::<u64>() + ahead,
            PriorityMode::Weighted => {
                let own = u128::from(self.weight(lane));
                let others: u64 = waiting
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != lane)
                    .map(|(j, &w)| {
                        let share = u128::from(ahead) * u128::from(self.weight(j)) / own;
                        u64::try_from(share).unwrap_or(u64::MAX).min(w)
                    })
                    .sum();
                ahead.saturating_add(others)
            }
        }
    }
}

/// `"1-3"`, `"4"`, `"2,5"` or `"1-3,5-8"`: the years of a mask, each run
/// of consecutive years as a range.
pub fn years_text(mask: u8) -> String {
    let mut runs: Vec<String> = Vec::new();
    let mut y = 1u8;
    while y <= 8 {
        if mask & (1 << (y - 1)) == 0 {
            y += 1;
            continue;
        }
        let start = y;
        while y < 8 && mask & (1 << y) != 0 {
            y += 1;
        }
        runs.push(if y > start {
            format!("{start}-{y}")
        } else {
            start.to_string()
        });
        y += 1;
    }
    runs.join(",")
}

/// `"3"` or `"1-3"` as years; `None` when unreadable (out-of-range years
/// are left for [`Priority::new`] to name).
fn parse_years(item: &str) -> Option<Vec<u32>> {
    match item.split_once('-') {
        Some((a, b)) => {
            let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if a > b || b > 64 {
                return None;
            }
            Some((a..=b).collect())
        }
        None => Some(vec![item.parse().ok()?]),
    }
}

/// One lane at the start of a tick.
#[derive(Debug, Clone, Copy)]
pub struct LaneTick<'a> {
    /// The lane's waiting tickets past its mark, in key order (a prefix).
    pub candidates: &'a [Candidate],
    /// `candidates` is every waiting ticket of the lane: when the plan
    /// walks past them all, nobody live is left in it.
    pub complete: bool,
    /// Rounding carried from earlier ticks (weighted turns).
    pub credit: i64,
}

/// What one tick does to each lane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LanesPlan {
    pub plans: Vec<AdmissionPlan>,
    /// The rounding to carry to the next tick, per lane.
    pub credits: Vec<i64>,
}

impl LanesPlan {
    pub fn admitted(&self) -> u64 {
        self.plans.iter().map(|p| p.admit.len() as u64).sum()
    }
}

/// Plans one tick over the lanes of a round with `priority`, admitting at
/// most `budget` in all; each lane's plan is [`plan_admission`] over its own
/// candidates, so order inside a lane is key order and skipping works as
/// without priority.
pub fn plan_lanes(
    priority: &Priority,
    lanes: &[LaneTick<'_>],
    budget: u64,
    now_ms: u64,
    grace_ms: u64,
    grace_from_ms: u64,
) -> LanesPlan {
    let plan = |c: &[Candidate], b: u64| plan_admission(c, b, now_ms, grace_ms, grace_from_ms);
    let mut out = LanesPlan {
        plans: vec![AdmissionPlan::default(); lanes.len()],
        credits: lanes.iter().map(|l| l.credit).collect(),
    };
    match priority.mode {
        PriorityMode::Strict => {
            let mut left = budget;
            for (i, lane) in lanes.iter().enumerate() {
                if left == 0 {
                    break;
                }
                let p = plan(lane.candidates, left);
                left -= p.admit.len() as u64;
                let walked_all = p.admit.len() + p.skip.len() == lane.candidates.len();
                out.plans[i] = p;
                // A lane walked to its end has nobody live left; otherwise
                // someone live may still wait beyond what was read, and
                // every later lane waits for them.
                if left > 0 && !(lane.complete && walked_all) {
                    break;
                }
                out.credits[i] = 0;
            }
        }
        PriorityMode::Weighted => {
            let weights: Vec<i64> = (0..lanes.len())
                .map(|i| i64::from(priority.weight(i)))
                .collect();
            let active: Vec<bool> = lanes.iter().map(|l| !l.candidates.is_empty()).collect();
            for (i, a) in active.iter().enumerate() {
                if !a {
                    out.credits[i] = 0;
                }
            }
            let mut shares = vec![0u64; lanes.len()];
            smooth_split(budget, &weights, &active, &mut out.credits, &mut shares);
            // A lane that cannot use its share (everyone left in it was
            // admitted or skipped) passes the rest to the lanes that can,
            // by weight, without debt: its rounding is not charged for it.
            let mut room = active.clone();
            loop {
                let mut used = 0;
                for (i, lane) in lanes.iter().enumerate() {
                    out.plans[i] = plan(lane.candidates, shares[i]);
                    let p = &out.plans[i];
                    used += p.admit.len() as u64;
                    let walked_all = p.admit.len() + p.skip.len() == lane.candidates.len();
                    if (p.admit.len() as u64) < shares[i] || walked_all {
                        room[i] = false;
                    }
                }
                let left = budget.saturating_sub(used);
                if left == 0 || !room.iter().any(|&r| r) {
                    break;
                }
                let mut scratch = vec![0i64; lanes.len()];
                let mut extra = vec![0u64; lanes.len()];
                smooth_split(left, &weights, &room, &mut scratch, &mut extra);
                for (s, e) in shares.iter_mut().zip(extra) {
                    *s += e;
                }
            }
        }
    }
    out
}

/// Hands out `n` admissions one at a time by smooth weighted round robin:
/// each active lane earns its weight per admission, the lane with the most
/// credit (the earlier lane on a tie) takes it and pays the total weight.
/// Credits carry the rounding, so over any run of admissions each lane's
/// count stays within one of its exact share.
fn smooth_split(n: u64, weights: &[i64], active: &[bool], credits: &mut [i64], out: &mut [u64]) {
    let total: i64 = weights
        .iter()
        .zip(active)
        .filter(|(_, &a)| a)
        .map(|(w, _)| w)
        .sum();
    if total == 0 {
        return;
    }
    for _ in 0..n {
        let mut best: Option<usize> = None;
        for i in 0..weights.len() {
            if !active[i] {
                continue;
            }
            credits[i] += weights[i];
            if best.is_none_or(|b| credits[i] > credits[b]) {
                best = Some(i);
            }
        }
        if let Some(b) = best {
            credits[b] -= total;
            out[b] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cands(lane: u8, n: u64, seen: u64) -> Vec<Candidate> {
        (1..=n)
            .map(|k| Candidate {
                seq: u64::from(lane) * 1_000 + k,
                order_key: lane_key(lane, k),
                last_seen_ms: seen,
            })
            .collect()
    }

    fn p(spec: &str) -> Priority {
        Priority::parse(spec).unwrap().unwrap()
    }

    #[test]
    fn specs_parse_validate_and_print_back() {
        let s = p("strict:4/1,2,3");
        assert_eq!(s.spec(), "strict:4/1-3");
        assert_eq!(s.lanes(), 3, "years 5-8 form the last lane");
        assert_eq!((s.lane_of(4), s.lane_of(2), s.lane_of(7)), (0, 1, 2));
        assert_eq!(s.lane_of(0), 2, "an unknown year goes last");
        let all = p("strict:4/1-3,5-8");
        assert_eq!((all.lanes(), all.lane_of(0), all.lane_of(9)), (2, 1, 1));
        let w = p("weighted:4=2,1-3=1");
        assert_eq!(w, p("weighted:4=2/1,2,3=1"));
        assert_eq!(w.spec(), "weighted:4=2/1-3=1");
        assert_eq!((w.weight(0), w.weight(1), w.weight(2)), (2, 1, 1));
        assert_eq!(Priority::parse(" none "), Ok(None));
        assert_eq!(Priority::parse(""), Ok(None));
        assert_eq!(p("strict:1-8").lanes(), 1);
        assert_eq!(
            Priority::parse("strict:4/3-4"),
            Err(PriorityError::YearTwice(4))
        );
        assert_eq!(Priority::parse("strict:9"), Err(PriorityError::Year(9)));
        assert_eq!(Priority::parse("strict:0"), Err(PriorityError::Year(0)));
        assert_eq!(
            Priority::parse("weighted:4=0/1=1"),
            Err(PriorityError::Weight)
        );
        assert_eq!(
            Priority::parse("weighted:4=101"),
            Err(PriorityError::Weight)
        );
        assert_eq!(
            Priority::parse("weighted:4=2/1"),
            Err(PriorityError::MissingWeight)
        );
        assert_eq!(
            Priority::parse("strict:4=2"),
            Err(PriorityError::UnexpectedWeight)
        );
        assert_eq!(
            Priority::parse("strict:4//1"),
            Err(PriorityError::EmptyGroup(2))
        );
        assert!(matches!(
            Priority::parse("fastest:4"),
            Err(PriorityError::Syntax(_))
        ));
        assert!(matches!(
            Priority::parse("strict:x"),
            Err(PriorityError::Syntax(_))
        ));
        let nine: Vec<(Vec<u32>, Option<u32>)> = (1..=9).map(|y| (vec![y], None)).collect();
        assert_eq!(
            Priority::new(PriorityMode::Strict, &nine),
            Err(PriorityError::TooManyGroups)
        );
        for e in [PriorityError::Weight, PriorityError::YearTwice(3)] {
            let m = e.to_string();
            assert!(m.is_ascii() || m.contains('('), "bilingual: {m}");
        }
    }

    #[test]
    fn years_read_as_runs_and_read_back() {
        assert_eq!(years_text(0b1111_0111), "1-3,5-8");
        assert_eq!(years_text(0b0000_1011), "1-2,4");
        assert_eq!(years_text(0b0001_0010), "2,5");
        assert_eq!(years_text(0b1000_0000), "8");
        assert_eq!(years_text(0), "");
        for mask in 1..=u8::MAX {
            let text = years_text(mask);
            let back = text
                .split(',')
                .flat_map(|item| parse_years(item).unwrap())
                .fold(0u8, |m, y| m | 1 << (y - 1));
            assert_eq!(back, mask, "{text}");
        }
    }

    #[test]
    fn keys_carry_their_lane() {
        assert_eq!(lane_key(0, 17), 17, "lane 0 keys are the keys of old");
        assert_eq!(split_key(lane_key(3, 17)), (3, 17));
        assert_eq!(split_key(17), (0, 17));
    }

    #[test]
    fn strict_order_admits_later_lanes_only_when_earlier_ones_are_empty() {
        let pr = p("strict:4/1-3");
        let (a, b) = (cands(0, 3, 100), cands(1, 5, 100));
        let lanes = [
            LaneTick {
                candidates: &a,
                complete: true,
                credit: 0,
            },
            LaneTick {
                candidates: &b,
                complete: true,
                credit: 0,
            },
        ];
        let plan = plan_lanes(&pr, &lanes, 2, 200, 1_000, 0);
        assert_eq!(plan.plans[0].admit, vec![1, 2]);
        assert!(plan.plans[1].admit.is_empty());
        let plan = plan_lanes(&pr, &lanes, 5, 200, 1_000, 0);
        assert_eq!(plan.plans[0].admit, vec![1, 2, 3]);
        assert_eq!(plan.plans[1].admit, vec![1_001, 1_002]);
        // The first lane was read only in part and all it held was
        // abandoned: someone live may be further back, so the second waits.
        let gone = cands(0, 3, 0);
        let partial = [
            LaneTick {
                candidates: &gone,
                complete: false,
                credit: 0,
            },
            lanes[1],
        ];
        let plan = plan_lanes(&pr, &partial, 5, 5_000, 1_000, 0);
        assert_eq!(plan.plans[0].skip.len(), 3);
        assert_eq!(plan.admitted(), 0);
    }

    #[test]
    fn weights_split_two_to_one_over_time_with_the_rounding_carried() {
        let pr = p("weighted:4=2/1-3=1");
        let (a, b) = (cands(0, 100, 100), cands(1, 100, 100));
        let mut credits = vec![0i64, 0];
        let (mut na, mut nb) = (0usize, 0usize);
        for tick in 0..30 {
            let lanes = [
                LaneTick {
                    candidates: &a[na..],
                    complete: true,
                    credit: credits[0],
                },
                LaneTick {
                    candidates: &b[nb..],
                    complete: true,
                    credit: credits[1],
                },
            ];
            let plan = plan_lanes(&pr, &lanes, 1, 200, 1_000, 0);
            assert_eq!(plan.admitted(), 1);
            na += plan.plans[0].admit.len();
            nb += plan.plans[1].admit.len();
            credits = plan.credits;
            let n = tick + 1;
            // Within one of the exact 2:1 share after every tick.
            assert!((3 * na).abs_diff(2 * n) <= 3, "tick {n}: {na}:{nb}");
        }
        assert_eq!((na, nb), (20, 10));
    }

    #[test]
    fn a_lane_that_runs_dry_passes_its_share_on() {
        let pr = p("weighted:4=2/1-3=1");
        let (a, b) = (cands(0, 1, 100), cands(1, 10, 100));
        let lanes = [
            LaneTick {
                candidates: &a,
                complete: true,
                credit: 0,
            },
            LaneTick {
                candidates: &b,
                complete: true,
                credit: 0,
            },
        ];
        let plan = plan_lanes(&pr, &lanes, 6, 200, 1_000, 0);
        assert_eq!(plan.plans[0].admit.len(), 1);
        assert_eq!(plan.plans[1].admit.len(), 5);
        // An empty lane earns nothing while empty.
        let none: Vec<Candidate> = Vec::new();
        let lanes = [
            LaneTick {
                candidates: &none,
                complete: true,
                credit: 7,
            },
            lanes[1],
        ];
        let plan = plan_lanes(&pr, &lanes, 3, 200, 1_000, 0);
        assert_eq!(plan.credits[0], 0);
        assert_eq!(plan.plans[1].admit.len(), 3);
    }

    #[test]
    fn estimates_follow_the_lane() {
        let s = p("strict:4/1-3");
        // A junior behind 30 seniors and 4 juniors: 34 admissions first.
        assert_eq!(s.admissions_before(&[30, 10, 0], 1, 4), 34);
        assert_eq!(s.admissions_before(&[30, 10, 0], 0, 4), 4);
        let w = p("weighted:4=2/1-3=1");
        // 10th junior: seniors get 2 per junior, 20 of them.
        assert_eq!(w.admissions_before(&[100, 50, 0], 1, 10), 30);
        // Only 6 seniors wait: they run dry, the juniors get the rest.
        assert_eq!(w.admissions_before(&[6, 50, 0], 1, 10), 16);
        // 10th senior: 5 juniors in the meantime.
        assert_eq!(w.admissions_before(&[100, 50, 0], 0, 10), 15);
    }

    fn arb_priority() -> impl Strategy<Value = Priority> {
        (any::<bool>(), proptest::collection::vec(1u32..=5, 1..4)).prop_map(|(strict, ws)| {
            let groups: Vec<(Vec<u32>, Option<u32>)> = ws
                .iter()
                .enumerate()
                .map(|(i, &w)| (vec![i as u32 + 1], (!strict).then_some(w)))
                .collect();
            let mode = if strict {
                PriorityMode::Strict
            } else {
                PriorityMode::Weighted
            };
            Priority::new(mode, &groups).unwrap()
        })
    }

    proptest! {
        #[test]
        fn lane_plans_keep_every_promise(
            pr in arb_priority(),
            seen in proptest::collection::vec(proptest::collection::vec(0u64..2_000, 0..40), 1..5),
            complete in proptest::collection::vec(any::<bool>(), 5),
            credits in proptest::collection::vec(-10i64..10, 5),
            budget in 0u64..60,
            grace in 0u64..2_000,
        ) {
            let lanes_n = seen.len().min(pr.lanes());
            let all: Vec<Vec<Candidate>> = seen.iter().take(lanes_n).enumerate().map(|(l, s)| {
                s.iter().enumerate().map(|(i, &t)| Candidate {
                    seq: l as u64 * 1_000 + i as u64,
                    order_key: lane_key(l as u8, i as u64 + 1),
                    last_seen_ms: t,
                }).collect()
            }).collect();
            let lanes: Vec<LaneTick> = all.iter().enumerate().map(|(l, c)| LaneTick {
                candidates: c, complete: complete[l], credit: credits[l],
            }).collect();
            let plan = plan_lanes(&pr, &lanes, budget, 2_000, grace, 0);
            prop_assert!(plan.admitted() <= budget, "never over budget");
            for (l, p) in plan.plans.iter().enumerate() {
                // Each lane decides a prefix of its line, in order.
                let decided = p.mark.map_or(0, |m| split_key(m).1) as usize;
                let mut got: Vec<u64> = p.admit.iter().chain(&p.skip).copied().collect();
                got.sort_unstable();
                let want: Vec<u64> = all[l][..decided].iter().map(|c| c.seq).collect();
                prop_assert_eq!(got, want);
                let mut admits = p.admit.clone();
                admits.sort_unstable();
                prop_assert_eq!(&admits, &p.admit, "admitted in key order");
            }
            let live = |l: usize| all[l].iter().filter(|c| 2_000 - c.last_seen_ms <= grace).count() as u64;
            let total_live: u64 = (0..lanes_n).map(live).sum();
            if pr.mode() == PriorityMode::Strict {
                // A later lane gets admissions only once every earlier lane
                // was walked to its complete end.
                for l in 1..lanes_n {
                    if !plan.plans[l].admit.is_empty() {
                        for e in 0..l {
                            let p = &plan.plans[e];
                            prop_assert!(lanes[e].complete);
                            prop_assert_eq!(p.admit.len() + p.skip.len(), all[e].len());
                        }
                    }
                }
            } else {
                // Work-conserving: the budget is used while anyone live waits.
                prop_assert_eq!(plan.admitted(), budget.min(total_live));
                for c in &plan.credits {
                    prop_assert!(c.abs() <= 30, "credits stay bounded: {:?}", plan.credits);
                }
            }
        }
    }
}
