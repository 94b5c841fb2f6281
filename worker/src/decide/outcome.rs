//! What a plan produces: a decision per command and the rows to write.

use chrono::{DateTime, Utc};
use enrollment::{CommandId, CourseId, Reason, RoundId, SectionId, StudentId};
use uuid::Uuid;

/// The result for one section of a command, or of a waitlist entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Enrolled,
    Dropped,
    Waitlisted,
    /// A waiting student took a freed seat.
    Promoted,
    /// The student left the section's waitlist.
    LeftWaitlist,
    Rejected(Reason),
    /// The command could not be decided; nothing changed.
    Failed(Reason),
}

impl Outcome {
    /// The stored `outcome` column.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Enrolled => "enrolled",
            Outcome::Dropped => "dropped",
            Outcome::Waitlisted => "waitlisted",
            Outcome::Promoted => "promoted",
            Outcome::LeftWaitlist => "left_waitlist",
            Outcome::Rejected(_) => "rejected",
            Outcome::Failed(_) => "failed",
        }
    }

    pub fn reason(self) -> Option<Reason> {
        match self {
            Outcome::Rejected(r) | Outcome::Failed(r) => Some(r),
            _ => None,
        }
    }
}

/// What happened to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub command: CommandId,
    pub action: &'static str,
    /// One entry per item of the command, in order, naming the section
    /// decided (an alternate, when one was enrolled); empty for a replay.
    pub items: Vec<(SectionId, Outcome)>,
    /// The command had been decided before (a redelivery): nothing written.
    pub replayed: bool,
}

/// Everything [`plan`](super::plan()) decided, not yet written.
#[derive(Debug, Clone)]
pub struct Plan {
    /// One per command, in arrival order.
    pub decisions: Vec<Decision>,
    pub writes: Writes,
    /// A seat was left free with students still waiting unread: the world
    /// should be read again with a longer read of the line.
    pub line_cut_short: bool,
}

/// The rows to write, net of the group's own changes: an enrollment made
/// and dropped in the same group is neither inserted nor deleted.
#[derive(Debug, Clone, Default)]
pub struct Writes {
    /// Enrollments that end, each read under the locks.
    pub enroll_delete: Vec<(StudentId, SectionId)>,
    /// New enrollments, with the command that made each.
    pub enroll_insert: Vec<(StudentId, SectionId, CourseId, CommandId)>,
    /// The new seat count of every section whose count changed, by id.
    pub seat_counts: Vec<(SectionId, u32)>,
    /// Stored entries resolved: (entry id, new state, the resolution's
    /// outcome-row command id). Each must still be waiting when written.
    pub waitlist_resolve: Vec<(u64, &'static str, CommandId)>,
    /// Entries made by this group, each with the state it ends in.
    pub waitlist_insert: Vec<NewEntry>,
    /// One per command item and per waitlist entry resolved.
    pub outcomes: Vec<OutcomeRow>,
}

/// One `command_outcomes` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRow {
    pub command: CommandId,
    pub item: u16,
    pub student: StudentId,
    pub round: RoundId,
    pub section: SectionId,
    pub action: &'static str,
    pub outcome: Outcome,
    pub lease: Option<Uuid>,
    pub issued_at: DateTime<Utc>,
    /// Which of the item's choices `section` is: 0 the first, k its k-th
    /// alternate.
    pub choice: u8,
}

/// A waitlist entry made by this group, written with the state it ends in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub section: SectionId,
    pub student: StudentId,
    pub round: RoundId,
    pub command: CommandId,
    pub state: &'static str,
    pub resolved_by: Option<CommandId>,
}
