//! The cart as one enroll command: which items go in, with which
//! alternates, and the check of alternates a student names. Pure; the
//! enroll form, the API and the admission-time sender all build the
//! command here, so they cannot differ.

use crate::catalog::{Catalog, Seats, Section};
use crate::db::cart::CartItem;
use enrollment::{Action, ItemOptions, SectionId, MAX_ALTERNATES, MAX_CART_SECTIONS};
use serde::Serialize;
use std::collections::HashSet;

/// The enroll command for `items`, without the sections already `held`;
/// `None` when nothing is left to send. Each item keeps the alternates
/// that are neither held nor named earlier in the command (a section is
/// decided at most once per command).
pub fn enroll_action(items: &[CartItem], held: &[u32], waitlist: bool) -> Option<Action> {
    let firsts: Vec<&CartItem> = items
        .iter()
        .filter(|i| !held.contains(&i.section))
        .take(MAX_CART_SECTIONS)
        .collect();
    if firsts.is_empty() {
        return None;
    }
    let mut used: HashSet<u32> = firsts.iter().map(|i| i.section).collect();
    let options: Vec<ItemOptions> = firsts
        .iter()
        .map(|i| ItemOptions {
            alternates: i
                .alternates
                .iter()
                .filter(|a| !held.contains(a) && used.insert(**a))
                .take(MAX_ALTERNATES)
                .map(|a| SectionId(*a))
                .collect(),
            // The item's own "join the waitlist if full", else the command's.
            waitlist: i.waitlist.then_some(true),
        })
        .collect();
    let options = if options.iter().all(ItemOptions::is_default) {
        Vec::new()
    } else {
        options
    };
    Some(Action::Enroll {
        sections: firsts.iter().map(|i| SectionId(i.section)).collect(),
        waitlist,
        options,
    })
}

/// Why a list of alternates was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAlternates {
    UnknownSection,
    OtherCourse,
    Repeated,
    TooMany,
}

impl BadAlternates {
    /// The message, in Korean and English.
    pub fn message(self) -> (&'static str, &'static str) {
        match self {
            BadAlternates::UnknownSection => ("없는 분반입니다.", "No such section."),
            BadAlternates::OtherCourse => (
                "대체 분반은 같은 과목의 다른 분반이어야 합니다.",
                "An alternate must be another section of the same course.",
            ),
            BadAlternates::Repeated => (
                "같은 분반을 두 번 고를 수 없습니다.",
                "A section can be named only once.",
            ),
            BadAlternates::TooMany => (
                "대체 분반은 4개까지 고를 수 있습니다.",
                "At most 4 alternates per item.",
            ),
        }
    }
}

/// Checks `wanted` as the alternates of cart item `item`: known sections
/// of the same course, none of them the item itself, none twice, at most
/// [`MAX_ALTERNATES`].
pub fn check_alternates(
    catalog: &Catalog,
    item: u32,
    wanted: &[u32],
) -> Result<Vec<u32>, BadAlternates> {
    let first = catalog.section(item).ok_or(BadAlternates::UnknownSection)?;
    if wanted.len() > MAX_ALTERNATES {
        return Err(BadAlternates::TooMany);
    }
    let mut seen = HashSet::from([item]);
    for a in wanted {
        let s = catalog.section(*a).ok_or(BadAlternates::UnknownSection)?;
        if s.course_id != first.course_id {
            return Err(BadAlternates::OtherCourse);
        }
        if !seen.insert(*a) {
            return Err(BadAlternates::Repeated);
        }
    }
    Ok(wanted.to_vec())
}

/// One section's seats as the waiting student sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SectionSeats {
    pub section: u32,
    pub code: String,
    pub number: u16,
    pub capacity: u32,
    pub left: u32,
    /// No seat left (and not closed).
    pub full: bool,
    pub closed: bool,
    /// Students on its waitlist.
    pub waitlist: u32,
}

/// A cart item's seats, its alternates' and, when it is full, the other
/// sections of its course that still have seats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ItemSeats {
    #[serde(flatten)]
    pub first: SectionSeats,
    pub alternates: Vec<SectionSeats>,
    /// Sections of the same course with seats left, when the first choice
    /// has none (empty otherwise).
    pub open_elsewhere: Vec<SectionSeats>,
}

/// The seat state of every cart item the catalog knows, from the
/// in-memory snapshot (`seats` and `waiting` read the catalog cache).
pub fn seat_state(
    catalog: &Catalog,
    items: &[CartItem],
    seats: impl Fn(u32) -> Seats,
    waiting: impl Fn(u32) -> u32,
) -> Vec<ItemSeats> {
    let of = |s: &Section| {
        let st = seats(s.id);
        SectionSeats {
            section: s.id,
            code: s.code.clone(),
            number: s.number,
            capacity: st.capacity,
            left: st.left(),
            full: !st.closed && st.left() == 0,
            closed: st.closed,
            waitlist: waiting(s.id),
        }
    };
    items
        .iter()
        .filter_map(|item| {
            let first = catalog.section(item.section)?;
            let head = of(first);
            let open_elsewhere = if head.left == 0 || head.closed {
                catalog
                    .sections
                    .iter()
                    .filter(|s| s.course_id == first.course_id && s.id != first.id)
                    .map(|s| of(s))
                    .filter(|s| s.left > 0 && !s.closed)
                    .collect()
            } else {
                Vec::new()
            };
            Some(ItemSeats {
                first: head,
                alternates: item
                    .alternates
                    .iter()
                    .filter_map(|a| catalog.section(*a))
                    .map(|s| of(s))
                    .collect(),
                open_elsewhere,
            })
        })
        .collect()
}

#[cfg(test)]
mod waitlist_choice_tests {
    use super::*;

    fn item(section: u32, waitlist: bool) -> CartItem {
        CartItem {
            section,
            alternates: Vec::new(),
            waitlist,
        }
    }

    #[test]
    fn only_items_that_ask_for_a_waitlist_say_so() {
        let plain = enroll_action(&[item(1, false), item(2, false)], &[], false);
        let Some(Action::Enroll { options, .. }) = plain else {
            panic!("an enroll")
        };
        assert!(options.is_empty());
        let chosen = enroll_action(&[item(1, false), item(2, true)], &[], false);
        let Some(Action::Enroll { options, .. }) = chosen else {
            panic!("an enroll")
        };
        assert_eq!(
            options.iter().map(|o| o.waitlist).collect::<Vec<_>>(),
            vec![None, Some(true)]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(section: u32, alternates: &[u32]) -> CartItem {
        CartItem {
            section,
            alternates: alternates.to_vec(),
            waitlist: false,
        }
    }

    #[test]
    fn the_command_skips_held_sections_and_repeats() {
        let items = [item(1, &[3, 2]), item(5, &[3, 6]), item(7, &[])];
        let Some(Action::Enroll {
            sections, options, ..
        }) = enroll_action(&items, &[6], false)
        else {
            panic!("an enroll");
        };
        assert_eq!(sections, vec![SectionId(1), SectionId(5), SectionId(7)]);
        assert_eq!(options[0].alternates, vec![SectionId(3), SectionId(2)]);
        // 3 is item 1's already, 6 is held.
        assert!(options[1].alternates.is_empty());
        assert!(options[2].alternates.is_empty());
        assert!(enroll_action(&items, &[1, 5, 7], false).is_none());
        // No alternates anywhere: the old shape, no options.
        let Some(Action::Enroll { options, .. }) = enroll_action(&[item(1, &[])], &[], false)
        else {
            panic!("an enroll");
        };
        assert!(options.is_empty());
    }

    #[test]
    fn a_full_item_names_the_open_sections_of_its_course() {
        let mk = |id: u32, course: u32, number: u16| {
            let mut s = crate::catalog::tests_support::section();
            s.id = id;
            s.course_id = course;
            s.number = number;
            s
        };
        let catalog = Catalog::for_tests(vec![mk(1, 1, 1), mk(2, 1, 2), mk(3, 1, 3), mk(4, 2, 1)]);
        let seats = |id: u32| Seats {
            capacity: 10,
            enrolled: if id == 1 || id == 3 { 10 } else { 4 },
            closed: false,
        };
        let items = [item(1, &[3]), item(4, &[])];
        let state = seat_state(&catalog, &items, seats, |id| if id == 1 { 7 } else { 0 });
        assert!(state[0].first.full);
        assert_eq!(state[0].first.waitlist, 7);
        assert_eq!(state[0].alternates[0].section, 3);
        assert!(state[0].alternates[0].full);
        let open: Vec<u32> = state[0].open_elsewhere.iter().map(|s| s.section).collect();
        assert_eq!(open, vec![2], "03 is full too; 02 has seats");
        assert!(!state[1].first.full);
        assert!(state[1].open_elsewhere.is_empty());
    }
}
