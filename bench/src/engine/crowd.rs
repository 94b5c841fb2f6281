//! The crowd of a surge, decided before it starts: each student's cart and
//! habits, the client address they send, whether they share it with many
//! others (a campus NAT), and whether their phone locks while they wait.

use super::Args;
use crate::arrivals::Zipf;
use crate::client::{Identity, ItemChoice};
use crate::scenario::Population;
use crate::student::{Plan, Suspend};
use rand::seq::{index, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::header::HeaderValue;

/// The address every `--shared-ip` student sends (outside the 10/8 range
/// the others use).
pub const SHARED_IP: &str = "172.16.0.1";

/// Decides every student's cart, flags and client address up front.
/// Students `0..cohort` arrive before the room opens.
pub fn plans(
    args: &Args,
    rng: &mut ChaCha8Rng,
    population: &Population,
    cohort: usize,
) -> Vec<Plan> {
    // Popularity is a property of the section, not of its id: a seeded
    // shuffle decides which sections are the hot ones.
    let mut by_popularity = population.sections.clone();
    by_popularity.shuffle(rng);
    let zipf = Zipf::new(by_popularity.len(), args.zipf);
    let mut plans: Vec<Plan> = population
        .students
        .iter()
        .enumerate()
        .map(|(i, person)| Plan {
            who: Identity {
                cookie: None,
                csrf: None,
                forwarded_for: HeaderValue::from_str(&client_ip(i)).ok(),
            },
            student: person.id,
            credentials: args.join_with_credentials.then(|| person.number.clone()),
            prequeue: i < cohort,
            shared_ip: false,
            cart: zipf
                .distinct(rng, args.cart)
                .into_iter()
                .map(|r| by_popularity[r])
                .collect(),
            double_submit: rng.gen_bool(args.double_submit.clamp(0.0, 1.0)),
            drop_and_retake: rng.gen_bool(args.drop_share.clamp(0.0, 1.0)),
            think: args.think.mul_f64(rng.gen::<f64>()),
            suspend: None,
            rejoin_skipped: args.rejoin_skipped,
            choices: Vec::new(),
            auto_send: false,
        })
        .collect();
    // A stream of its own, so that these options leave the carts and
    // habits of a seed as they were.
    let mut field = ChaCha8Rng::seed_from_u64(args.seed ^ 0x5eed_f1e1_d000_0001);
    let shared = HeaderValue::from_static(SHARED_IP);
    // Random students, not the first ones: arrivals are in plan order.
    for i in index::sample(&mut field, plans.len(), args.shared_ip.min(plans.len())) {
        plans[i].shared_ip = true;
        plans[i].who.forwarded_for = Some(shared.clone());
    }
    let share = args.suspend_share.clamp(0.0, 1.0);
    for plan in &mut plans {
        if field.gen_bool(share) {
            plan.suspend = Some(Suspend {
                at_fraction: field.gen(),
                lasts: args.suspend_for,
            });
        }
    }
    choose(args, population, &mut plans);
    plans
}

/// Each cart item's alternates and waitlist choice, and who sends their
/// cart at admission: a stream of its own again, so carts stay as they
/// were.
fn choose(args: &Args, population: &Population, plans: &mut [Plan]) {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ 0x5eed_c401_ce50_0002);
    let waitlist = args.waitlist.clamp(0.0, 1.0);
    let auto_send = args.auto_send.clamp(0.0, 1.0);
    for plan in plans {
        let wants_waitlist = rng.gen_bool(waitlist);
        plan.auto_send = rng.gen_bool(auto_send);
        // No section twice in one command: not another item, not an
        // earlier item's alternate.
        let mut taken: Vec<u32> = plan.cart.clone();
        plan.choices = plan
            .cart
            .iter()
            .map(|&section| {
                let mut others: Vec<u32> = population
                    .siblings(section)
                    .into_iter()
                    .filter(|s| !taken.contains(s))
                    .collect();
                others.shuffle(&mut rng);
                others.truncate(usize::from(args.alternates));
                taken.extend(&others);
                ItemChoice {
                    alternates: others,
                    waitlist: wants_waitlist,
                }
            })
            .collect();
    }
}

/// A distinct private address per student (10.0.0.1, 10.0.0.2, ...).
fn client_ip(i: usize) -> String {
    let n = (i as u32).wrapping_add(1) & 0x00ff_ffff;
    format!("10.{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["bench", "--local"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    }

    fn population(n: u32) -> Population {
        Population {
            students: (0..n)
                .map(|i| crate::scenario::Person {
                    id: 1000 + i,
                    number: format!("2025{i:05}"),
                    class_year: 1,
                })
                .collect(),
            sections: (1..=20).collect(),
            // Courses of four sections: 1-4, 5-8, ...
            course_of: (1..=20).map(|s| (s, (s - 1) / 4)).collect(),
        }
    }

    #[test]
    fn client_addresses_are_distinct_and_private() {
        assert_eq!(client_ip(0), "10.0.0.1");
        assert_eq!(client_ip(255), "10.0.1.0");
        assert_ne!(client_ip(70_000), client_ip(70_001));
    }

    #[test]
    fn shared_address_goes_to_exactly_n_students_and_leaves_carts_alone() {
        let people = population(500);
        let plain = plans(&args(&[]), &mut ChaCha8Rng::seed_from_u64(1), &people, 0);
        let shared = plans(
            &args(&["--shared-ip", "120", "--suspend-share", "0.5"]),
            &mut ChaCha8Rng::seed_from_u64(1),
            &people,
            0,
        );
        let behind: Vec<&Plan> = shared.iter().filter(|p| p.shared_ip).collect();
        assert_eq!(behind.len(), 120);
        assert!(behind
            .iter()
            .all(|p| p.who.forwarded_for.as_ref().map(|v| v.as_bytes())
                == Some(SHARED_IP.as_bytes())));
        // Spread over the arrivals, not bunched at the start.
        assert!(shared[250..].iter().any(|p| p.shared_ip));
        assert!(plain
            .iter()
            .zip(&shared)
            .all(|(a, b)| a.cart == b.cart && a.think == b.think));
        let suspended = shared.iter().filter(|p| p.suspend.is_some()).count();
        assert!((200..300).contains(&suspended), "{suspended}");
        assert!(plain.iter().all(|p| p.suspend.is_none() && !p.shared_ip));
    }

    #[test]
    fn alternates_come_from_the_items_course_and_leave_carts_alone() {
        let people = population(300);
        let plain = plans(&args(&[]), &mut ChaCha8Rng::seed_from_u64(7), &people, 0);
        let chosen = plans(
            &args(&[
                "--alternates",
                "2",
                "--waitlist",
                "0.5",
                "--auto-send",
                "0.3",
            ]),
            &mut ChaCha8Rng::seed_from_u64(7),
            &people,
            0,
        );
        assert!(plain
            .iter()
            .zip(&chosen)
            .all(|(a, b)| a.cart == b.cart && a.think == b.think));
        assert!(plain.iter().all(|p| !p.auto_send
            && p.choices
                .iter()
                .all(|c| c.alternates.is_empty() && !c.waitlist)));
        let mut named = 0;
        for p in &chosen {
            assert_eq!(p.choices.len(), p.cart.len());
            let mut seen: Vec<u32> = p.cart.clone();
            for (item, c) in p.cart.iter().zip(&p.choices) {
                assert!(c.alternates.len() <= 2);
                for a in &c.alternates {
                    assert_eq!(people.course_of[a], people.course_of[item]);
                    assert!(!seen.contains(a), "section {a} twice in one cart");
                    seen.push(*a);
                }
                named += c.alternates.len();
                assert_eq!(c.waitlist, p.choices[0].waitlist, "one choice per student");
            }
        }
        assert!(named > 300, "{named}");
        let waitlisting = chosen.iter().filter(|p| p.choices[0].waitlist).count();
        assert!((100..200).contains(&waitlisting), "{waitlisting}");
        let sending = chosen.iter().filter(|p| p.auto_send).count();
        assert!((50..130).contains(&sending), "{sending}");
    }

    #[test]
    fn credentials_ride_along_only_when_asked_for() {
        let people = population(3);
        let rng = &mut ChaCha8Rng::seed_from_u64(1);
        assert!(plans(&args(&[]), rng, &people, 0)
            .iter()
            .all(|p| p.credentials.is_none()));
        let with = plans(&args(&["--join-with-credentials"]), rng, &people, 2);
        assert_eq!(with[1].credentials.as_deref(), Some("202500001"));
        assert_eq!(with[1].student, 1001);
        assert_eq!(
            with.iter().map(|p| p.prequeue).collect::<Vec<_>>(),
            [true, true, false]
        );
    }
}
