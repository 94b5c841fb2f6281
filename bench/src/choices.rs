//! What each cart came to, and what sending it at admission changed: the
//! figures behind "alternates and the waitlist turn a full first choice
//! into something" and "the cart goes in the moment you are admitted".
//!
//! Each student records the outcome items of their cart's command (the
//! first one they sent, or the one the gateway sent for them); the pure
//! functions here tally them.

use crate::client::OutcomeItem;
use crate::promises::Journey;
use serde::Serialize;

/// What one cart item came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Got {
    /// Enrolled in the section first named.
    First,
    /// Enrolled in one of the item's alternates.
    Alternate,
    /// A place on the waitlist.
    Waitlist,
    /// Refused.
    Nothing,
}

impl Got {
    pub fn of(item: &OutcomeItem) -> Got {
        match item.outcome.as_str() {
            "enrolled" if item.choice == 0 => Got::First,
            "enrolled" => Got::Alternate,
            "waitlisted" => Got::Waitlist,
            _ => Got::Nothing,
        }
    }
}

/// Cart items and students by what their cart came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Choices {
    /// Students whose cart command they saw decided.
    pub carts: u64,
    /// Their cart items, and what each came to.
    pub items: u64,
    pub first_choice: u64,
    pub alternate: u64,
    pub waitlisted: u64,
    pub nothing: u64,
    /// Students who got the first choice of every item.
    pub students_all_first_choice: u64,
    /// Students with at least one item enrolled through an alternate.
    pub students_some_alternate: u64,
    /// Students with at least one waitlist place.
    pub students_some_waitlist: u64,
    /// Students with no seat and no waitlist place at all.
    pub students_nothing: u64,
}

pub fn choices<'a>(journeys: impl IntoIterator<Item = &'a Journey>) -> Choices {
    let mut c = Choices::default();
    for j in journeys {
        let items = &j.cart_items;
        if items.is_empty() {
            continue;
        }
        c.carts += 1;
        c.items += items.len() as u64;
        let count = |g: Got| items.iter().filter(|i| **i == g).count() as u64;
        c.first_choice += count(Got::First);
        c.alternate += count(Got::Alternate);
        c.waitlisted += count(Got::Waitlist);
        c.nothing += count(Got::Nothing);
        c.students_all_first_choice += u64::from(count(Got::First) == items.len() as u64);
        c.students_some_alternate += u64::from(count(Got::Alternate) > 0);
        c.students_some_waitlist += u64::from(count(Got::Waitlist) > 0);
        c.students_nothing += u64::from(count(Got::Nothing) == items.len() as u64);
    }
    c
}

/// A spread of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spread {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentiles of `us` (microseconds).
pub fn spread(mut us: Vec<u64>) -> Option<Spread> {
    if us.is_empty() {
        return None;
    }
    us.sort_unstable();
    let at = |q: f64| {
        let rank = (q * us.len() as f64).ceil() as usize;
        us[rank.clamp(1, us.len()) - 1] as f64 / 1000.0
    };
    Some(Spread {
        count: us.len() as u64,
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    })
}

/// Sending the cart at admission against clicking after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AutoSend {
    /// Students whose "send my cart when I am admitted" was stored.
    pub opted_in: u64,
    /// Admitted students whose admission answer named the command the
    /// gateway sent for them.
    pub sent_at_admission: u64,
    /// Opted-in students admitted without such a command, who clicked.
    pub fell_back_to_click: u64,
    /// From the first answer saying "admitted" to the answer carrying the
    /// cart's outcome: carts sent at admission, and carts sent by a click
    /// (think time included, as the student lives it).
    pub admitted_to_decided_sent: Option<Spread>,
    pub admitted_to_decided_clicked: Option<Spread>,
    /// The same on the server's clock, free of the students' polling:
    /// from the ticket's `admitted_at` to the cart command's first
    /// `decided_at` (MySQL; millisecond resolution).
    pub admission_to_decision_sent: Option<Spread>,
    pub admission_to_decision_clicked: Option<Spread>,
}

/// Server times: each student's admission and each command's decision,
/// ms on one clock.
pub type ServerTimes<'a> = (
    &'a std::collections::HashMap<u32, i64>,
    &'a std::collections::HashMap<uuid::Uuid, i64>,
);

pub fn auto_send(journeys: &[Journey], server: Option<ServerTimes<'_>>) -> AutoSend {
    let on_server = |sent: bool| {
        let (admitted, decided) = server?;
        spread(
            journeys
                .iter()
                .filter(|j| j.sent_at_admission == sent)
                .filter_map(|j| {
                    let ms = decided.get(&j.cart_command?)? - admitted.get(&j.student)?;
                    Some(u64::try_from(ms).unwrap_or(0) * 1000)
                })
                .collect(),
        )
    };
    let waits = |sent: bool| {
        spread(
            journeys
                .iter()
                .filter(|j| j.sent_at_admission == sent)
                .filter_map(|j| Some(j.cart_decided_us?.saturating_sub(j.admitted_us?)))
                .collect(),
        )
    };
    AutoSend {
        opted_in: journeys.iter().filter(|j| j.auto_send).count() as u64,
        sent_at_admission: journeys.iter().filter(|j| j.sent_at_admission).count() as u64,
        fell_back_to_click: journeys
            .iter()
            .filter(|j| j.auto_send && j.admitted_us.is_some() && !j.sent_at_admission)
            .count() as u64,
        admitted_to_decided_sent: waits(true),
        admitted_to_decided_clicked: waits(false),
        admission_to_decision_sent: on_server(true),
        admission_to_decision_clicked: on_server(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(outcome: &str, choice: u8) -> OutcomeItem {
        OutcomeItem {
            section: Some(1),
            outcome: outcome.into(),
            choice,
        }
    }

    fn cart(got: &[Got]) -> Journey {
        Journey {
            cart_items: got.to_vec(),
            ..Journey::default()
        }
    }

    #[test]
    fn items_are_told_apart_by_outcome_and_choice() {
        assert_eq!(Got::of(&item("enrolled", 0)), Got::First);
        assert_eq!(Got::of(&item("enrolled", 2)), Got::Alternate);
        assert_eq!(Got::of(&item("waitlisted", 0)), Got::Waitlist);
        assert_eq!(Got::of(&item("rejected", 0)), Got::Nothing);
    }

    #[test]
    fn carts_are_tallied_by_item_and_by_student() {
        use Got::*;
        let j = [
            cart(&[First, First]),
            cart(&[First, Alternate]),
            cart(&[Waitlist, Nothing]),
            cart(&[Nothing]),
            cart(&[]),
        ];
        let c = choices(&j);
        assert_eq!(
            c,
            Choices {
                carts: 4,
                items: 7,
                first_choice: 3,
                alternate: 1,
                waitlisted: 1,
                nothing: 2,
                students_all_first_choice: 1,
                students_some_alternate: 1,
                students_some_waitlist: 1,
                students_nothing: 1,
            }
        );
    }

    #[test]
    fn spreads_use_nearest_ranks() {
        assert_eq!(spread(Vec::new()), None);
        let s = spread((1..=100).map(|ms| ms * 1000).collect()).unwrap();
        assert_eq!(
            (s.count, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms),
            (100, 50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(spread(vec![7_000]).unwrap().p99_ms, 7.0);
    }

    #[test]
    fn admission_to_decision_is_split_by_who_sent_the_cart() {
        let sent = Journey {
            auto_send: true,
            sent_at_admission: true,
            admitted_us: Some(1_000_000),
            cart_decided_us: Some(1_300_000),
            ..Journey::default()
        };
        let fell_back = Journey {
            auto_send: true,
            admitted_us: Some(0),
            cart_decided_us: Some(2_000_000),
            ..Journey::default()
        };
        let clicked = Journey {
            admitted_us: Some(0),
            cart_decided_us: Some(1_500_000),
            ..Journey::default()
        };
        let command = |n: u128| Some(uuid::Uuid::from_u128(n));
        let journeys = [
            Journey {
                student: 1,
                cart_command: command(1),
                ..sent
            },
            Journey {
                student: 2,
                cart_command: command(2),
                ..fell_back
            },
            Journey {
                student: 3,
                cart_command: command(3),
                ..clicked
            },
        ];
        let a = auto_send(&journeys, None);
        assert_eq!(a.admission_to_decision_sent, None);
        let admitted = [(1, 1_000), (2, 0), (3, 500)].into_iter().collect();
        let decided = [(command(1).unwrap(), 1_040), (command(2).unwrap(), 900)]
            .into_iter()
            .collect();
        let b = auto_send(&journeys, Some((&admitted, &decided)));
        assert_eq!(b.admission_to_decision_sent.unwrap().p50_ms, 40.0);
        // Student 3's command has no decision on record: left out.
        let c = b.admission_to_decision_clicked.unwrap();
        assert_eq!((c.count, c.p50_ms), (1, 900.0));
        assert_eq!(
            (a.opted_in, a.sent_at_admission, a.fell_back_to_click),
            (2, 1, 1)
        );
        assert_eq!(a.admitted_to_decided_sent.unwrap().p50_ms, 300.0);
        let c = a.admitted_to_decided_clicked.unwrap();
        assert_eq!((c.count, c.max_ms), (2, 2000.0));
    }
}
