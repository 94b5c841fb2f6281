//! What a group of commands is decided against: the rows read under the
//! locks, as plain values, and each command with what its pass said.

use enrollment::rules::{SectionInfo, StudentState};
use enrollment::{Command, CommandId, Reason, RoundId, SectionId, StudentId};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// A command with what its pass said, checked before anything is read.
#[derive(Debug, Clone)]
pub struct Checked<'c> {
    pub cmd: &'c Command,
    /// The pass's lease, when the pass could be opened.
    pub lease: Option<Uuid>,
    /// How many commands the pass may carry.
    pub budget: u16,
    /// Why the pass refuses the whole command, if it does. Such a command
    /// locks and reads nothing.
    pub early: Option<Reason>,
}

impl Checked<'_> {
    /// The pass let the command through to the rules.
    pub fn live(&self) -> bool {
        self.early.is_none()
    }
}

/// One read of the world, under the section and student locks.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Every section the live commands touch, with its course's credits
    /// and prerequisites and its meetings.
    pub sections: HashMap<SectionId, SectionInfo>,
    /// The head of the waitlist of every open section that has a free seat
    /// or a drop in the group. A section without an entry here gives no
    /// seat to its line in this group.
    pub lines: HashMap<SectionId, Line>,
    /// Every student locked (the commands' and the waiting ones), with the
    /// sections held and, when a section asked for has prerequisites, the
    /// courses completed.
    pub students: HashMap<StudentId, StudentState>,
    /// The rounds of the live commands and of the waiting students.
    pub rounds: HashMap<RoundId, Round>,
    /// Commands of the group that already have outcomes (redeliveries).
    pub decided_before: HashSet<CommandId>,
    /// Commands already carried by each lease of the group.
    pub lease_used: HashMap<Uuid, u32>,
    /// Leases whose admission is over: the student left the queue, or
    /// holds a newer place.
    pub ended: HashSet<Uuid>,
    /// (section, student) of every waitlist entry still waiting, for the
    /// students locked; read only when a live command asks for a waitlist
    /// or leaves one.
    pub waiting: HashSet<(SectionId, StudentId)>,
    /// The stored row id of each entry in `waiting`, so a student who
    /// leaves a line that was not read can still be taken out of it.
    pub waiting_rows: HashMap<(SectionId, StudentId), u64>,
}

/// What the rules need of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Round {
    /// Open or paused: commands are still decided.
    pub accepting: bool,
    pub eligible_mask: u8,
}

/// The head of one section's waitlist, in line order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line {
    pub entries: Vec<Waiting>,
    /// More students wait behind the entries read.
    pub more: bool,
}

/// One stored waitlist entry still waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// The row's id, which is also its place in line.
    pub id: u64,
    pub student: StudentId,
    pub round: RoundId,
    /// The command that put the student in line.
    pub command: CommandId,
}
