//! The enrollment rules (`docs/domain.md`), as pure functions.
//!
//! The worker loads a [`StudentState`] and the [`SectionInfo`]s a batch
//! touches, then calls [`check_enroll`] / [`check_drop`] per command in
//! arrival order, applying each accepted change to the in-memory state so
//! that later commands in the same batch see it. Rules 1 (well-formed, pass,
//! not decided before) and 2 (eligibility) need the pass key and the round,
//! so the worker checks those itself before calling in here; the seat check
//! (rule 8) comes last and is the caller's, under the section row lock.

use crate::ids::{CourseId, SectionId};
use crate::reason::Reason;

/// One weekly meeting: weekday 1..=7, minutes after midnight, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meeting {
    pub weekday: u8,
    pub start_min: u16,
    pub end_min: u16,
}

impl Meeting {
    /// Touching meetings (one ends when the other starts) do not overlap.
    pub fn overlaps(&self, other: &Meeting) -> bool {
        self.weekday == other.weekday
            && self.start_min < other.end_min
            && other.start_min < self.end_min
    }
}

/// What the rules need to know about a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionInfo {
    pub id: SectionId,
    pub course_id: CourseId,
    pub credits: u8,
    pub closed: bool,
    pub capacity: u32,
    pub enrolled: u32,
    pub meetings: Vec<Meeting>,
    /// Course codes the student must have completed.
    pub prerequisites: Vec<String>,
}

impl SectionInfo {
    pub fn seats_left(&self) -> u32 {
        self.capacity.saturating_sub(self.enrolled)
    }
}

/// A section the student holds, as far as the rules care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub section_id: SectionId,
    pub course_id: CourseId,
    pub credits: u8,
    pub meetings: Vec<Meeting>,
}

/// A student's standing at the moment a command is decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StudentState {
    pub class_year: u8,
    pub max_credits: u8,
    pub completed: Vec<String>,
    pub held: Vec<Held>,
}

impl StudentState {
    pub fn credits(&self) -> u32 {
        self.held.iter().map(|h| u32::from(h.credits)).sum()
    }

    pub fn holds(&self, section: SectionId) -> bool {
        self.held.iter().any(|h| h.section_id == section)
    }

    /// Records an accepted enrollment.
    pub fn add(&mut self, section: &SectionInfo) {
        self.held.push(Held {
            section_id: section.id,
            course_id: section.course_id,
            credits: section.credits,
            meetings: section.meetings.clone(),
        });
    }

    /// Records an accepted drop.
    pub fn remove(&mut self, section: SectionId) {
        self.held.retain(|h| h.section_id != section);
    }
}

/// Rules 3 to 7 for enrolling in `section`: everything but the seat.
pub fn check_enroll(student: &StudentState, section: &SectionInfo) -> Result<(), Reason> {
    if section.closed {
        return Err(Reason::SectionClosed);
    }
    if student
        .held
        .iter()
        .any(|h| h.course_id == section.course_id)
    {
        return Err(Reason::AlreadyEnrolled);
    }
    let conflict = student.held.iter().any(|h| {
        h.meetings
            .iter()
            .any(|m| section.meetings.iter().any(|n| m.overlaps(n)))
    });
    if conflict {
        return Err(Reason::TimeConflict);
    }
    if section
        .prerequisites
        .iter()
        .any(|code| !student.completed.iter().any(|c| c == code))
    {
        return Err(Reason::PrerequisiteMissing);
    }
    if student.credits() + u32::from(section.credits) > u32::from(student.max_credits) {
        return Err(Reason::CreditLimit);
    }
    Ok(())
}

/// Rule 8, checked last and under the section row lock.
pub fn check_seat(section: &SectionInfo) -> Result<(), Reason> {
    if section.enrolled < section.capacity {
        Ok(())
    } else {
        Err(Reason::Full)
    }
}

/// A drop is allowed only for a section the student holds.
pub fn check_drop(student: &StudentState, section: SectionId) -> Result<(), Reason> {
    if student.holds(section) {
        Ok(())
    } else {
        Err(Reason::NotEnrolled)
    }
}

/// Whether `mask` (bit y-1 for class year y) lets `class_year` take part.
pub fn year_eligible(mask: u8, class_year: u8) -> bool {
    (1..=8).contains(&class_year) && mask & (1 << (class_year - 1)) != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mtg(weekday: u8, start_min: u16, end_min: u16) -> Meeting {
        Meeting {
            weekday,
            start_min,
            end_min,
        }
    }

    fn section(id: u32, course: u32, credits: u8, meetings: Vec<Meeting>) -> SectionInfo {
        SectionInfo {
            id: SectionId(id),
            course_id: CourseId(course),
            credits,
            closed: false,
            capacity: 30,
            enrolled: 0,
            meetings,
            prerequisites: vec![],
        }
    }

    fn student() -> StudentState {
        StudentState {
            class_year: 2,
            max_credits: 9,
            ..Default::default()
        }
    }

    #[test]
    fn touching_meetings_do_not_conflict() {
        let mut st = student();
        st.add(&section(1, 1, 3, vec![mtg(1, 540, 615)]));
        assert_eq!(
            check_enroll(&st, &section(2, 2, 3, vec![mtg(1, 615, 690)])),
            Ok(())
        );
        assert_eq!(
            check_enroll(&st, &section(3, 3, 3, vec![mtg(1, 600, 690)])),
            Err(Reason::TimeConflict)
        );
        assert_eq!(
            check_enroll(&st, &section(4, 4, 3, vec![mtg(2, 540, 615)])),
            Ok(())
        );
        assert_eq!(
            check_enroll(&st, &section(5, 5, 3, vec![])),
            Ok(()),
            "no meetings never conflict"
        );
    }

    #[test]
    fn rules_are_checked_in_domain_order() {
        let mut st = student();
        st.add(&section(1, 1, 3, vec![mtg(1, 540, 615)]));
        // Same course and overlapping and closed: closed is reported first.
        let mut s = section(2, 1, 3, vec![mtg(1, 540, 615)]);
        s.closed = true;
        assert_eq!(check_enroll(&st, &s), Err(Reason::SectionClosed));
        s.closed = false;
        assert_eq!(check_enroll(&st, &s), Err(Reason::AlreadyEnrolled));
        s.course_id = CourseId(2);
        assert_eq!(check_enroll(&st, &s), Err(Reason::TimeConflict));
        s.meetings = vec![];
        s.prerequisites = vec!["CS101".into()];
        s.credits = 12;
        assert_eq!(check_enroll(&st, &s), Err(Reason::PrerequisiteMissing));
        st.completed.push("CS101".into());
        assert_eq!(check_enroll(&st, &s), Err(Reason::CreditLimit));
        s.credits = 6;
        assert_eq!(
            check_enroll(&st, &s),
            Ok(()),
            "3 + 6 = 9 is exactly the maximum"
        );
    }

    #[test]
    fn seat_and_drop() {
        let mut s = section(1, 1, 3, vec![]);
        s.capacity = 1;
        assert_eq!(check_seat(&s), Ok(()));
        s.enrolled = 1;
        assert_eq!(check_seat(&s), Err(Reason::Full));
        let mut st = student();
        assert_eq!(check_drop(&st, SectionId(1)), Err(Reason::NotEnrolled));
        st.add(&s);
        assert_eq!(check_drop(&st, SectionId(1)), Ok(()));
        st.remove(SectionId(1));
        assert_eq!(check_drop(&st, SectionId(1)), Err(Reason::NotEnrolled));
    }

    #[test]
    fn eligibility_mask() {
        assert!(year_eligible(0b0000_0001, 1));
        assert!(!year_eligible(0b0000_0001, 2));
        assert!(year_eligible(0b0000_1010, 4));
        assert!(!year_eligible(0xff, 0));
        assert!(!year_eligible(0xff, 9));
    }

    fn arb_meeting() -> impl Strategy<Value = Meeting> {
        (1u8..=7, 480u16..1200, 30u16..180).prop_map(|(d, s, len)| mtg(d, s, s + len))
    }

    proptest! {
        /// Whatever sequence of sections is accepted, the student's held set
        /// keeps the invariants: no overlap, one section per course, credits
        /// within the maximum.
        #[test]
        fn accepted_sets_keep_invariants(
            offers in proptest::collection::vec(
                (1u32..20, 1u8..=4, proptest::collection::vec(arb_meeting(), 0..3)), 0..40),
            max in 3u8..=21,
        ) {
            let mut st = StudentState { class_year: 1, max_credits: max, ..Default::default() };
            for (i, (course, credits, meetings)) in offers.into_iter().enumerate() {
                let s = section(i as u32, course, credits, meetings);
                if check_enroll(&st, &s).is_ok() {
                    st.add(&s);
                }
            }
            prop_assert!(st.credits() <= u32::from(max));
            for (i, a) in st.held.iter().enumerate() {
                for b in &st.held[i + 1..] {
                    prop_assert_ne!(a.course_id, b.course_id);
                    for m in &a.meetings {
                        for n in &b.meetings {
                            prop_assert!(!m.overlaps(n));
                        }
                    }
                }
            }
        }

        #[test]
        fn overlap_is_symmetric(a in arb_meeting(), b in arb_meeting()) {
            prop_assert_eq!(a.overlaps(&b), b.overlaps(&a));
        }
    }
}
