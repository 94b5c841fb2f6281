//! The plan step: a pure function of the [`World`] and the commands that
//! decides every command and says what to write. No I/O, no clock.

use super::outcome::{Decision, NewEntry, Outcome, OutcomeRow, Plan, Writes};
use super::world::{Checked, Round, World};
use chrono::{DateTime, Utc};
use enrollment::rules::{self, SectionInfo, StudentState};
use enrollment::{Action, CommandId, Reason, RoundId, SectionId, StudentId};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Where a waitlist entry lives.
#[derive(Debug, Clone, Copy)]
enum EntryRow {
    /// Read from the database, with this id.
    Stored(u64),
    /// Made by this group: this index into `Writes::waitlist_insert`.
    New(usize),
}

#[derive(Debug)]
struct Entry {
    row: EntryRow,
    student: StudentId,
    round: RoundId,
    command: CommandId,
    done: bool,
}

#[derive(Debug)]
struct Line {
    entries: Vec<Entry>,
    more: bool,
}

/// The world as the group's decisions change it.
struct Working<'a> {
    now: DateTime<Utc>,
    new_id: &'a mut dyn FnMut() -> CommandId,
    sections: HashMap<SectionId, SectionInfo>,
    students: HashMap<StudentId, StudentState>,
    rounds: HashMap<RoundId, Round>,
    lines: HashMap<SectionId, Line>,
    waiting: HashSet<(SectionId, StudentId)>,
    waiting_rows: HashMap<(SectionId, StudentId), u64>,
    writes: Writes,
    touched: HashSet<SectionId>,
    line_cut_short: bool,
}

/// Decides `commands` (in arrival order) against `world`, which must hold
/// everything the load step reads for them (see [`World`]). Free seats go
/// to the waiting students first; then each command is decided against a view
/// that includes the group's earlier decisions. `now` stamps the outcome
/// rows of resolved waitlist entries, each of which gets a fresh id from
/// `new_id` (their entry's command already has its `waitlisted` outcome).
pub fn plan(
    world: World,
    commands: &[Checked<'_>],
    now: DateTime<Utc>,
    new_id: &mut dyn FnMut() -> CommandId,
) -> Plan {
    let World {
        sections,
        lines,
        students,
        rounds,
        decided_before,
        mut lease_used,
        ended,
        waiting,
        waiting_rows,
    } = world;
    let lines = lines
        .into_iter()
        .map(|(sid, line)| {
            let entries = line
                .entries
                .into_iter()
                .map(|w| Entry {
                    row: EntryRow::Stored(w.id),
                    student: w.student,
                    round: w.round,
                    command: w.command,
                    done: false,
                })
                .collect();
            let more = line.more;
            (sid, Line { entries, more })
        })
        .collect();
    let mut w = Working {
        now,
        new_id,
        sections,
        students,
        rounds,
        lines,
        waiting,
        waiting_rows,
        writes: Writes::default(),
        touched: HashSet::new(),
        line_cut_short: false,
    };

    // Seats already free while students wait (a capacity raised, a line
    // cut short before) go to the line before any command can take them.
    let mut free_with_line: Vec<SectionId> = w
        .lines
        .iter()
        .filter(|(_, l)| !l.entries.is_empty())
        .map(|(s, _)| *s)
        .collect();
    free_with_line.sort_unstable();
    for sid in free_with_line {
        w.promote(sid);
    }

    // Decide, in arrival order.
    let mut decisions = Vec::with_capacity(commands.len());
    let mut seen_in_group: HashSet<CommandId> = HashSet::new();
    for c in commands {
        let cmd = c.cmd;
        let action = cmd.action.name();
        if decided_before.contains(&cmd.id) || !seen_in_group.insert(cmd.id) {
            decisions.push(Decision {
                command: cmd.id,
                action,
                items: Vec::new(),
                replayed: true,
            });
            continue;
        }
        let whole =
            c.early.or_else(
                || match (w.rounds.get(&cmd.round), w.students.get(&cmd.student)) {
                    (None, _) => Some(Reason::RoundClosed),
                    (_, None) => Some(Reason::UnknownStudent),
                    _ if c.lease.is_some_and(|l| ended.contains(&l)) => Some(Reason::PassRevoked),
                    (Some(round), Some(st)) => command_level(round, st, c, &lease_used),
                },
            );
        let items: Vec<Item> = match whole {
            Some(reason) => cmd
                .action
                .sections()
                .iter()
                .map(|s| Item::first(*s, Outcome::Rejected(reason)))
                .collect(),
            None => {
                if let Some(lease) = c.lease {
                    *lease_used.entry(lease).or_default() += 1;
                }
                w.decide(c)
            }
        };
        for (i, it) in items.iter().enumerate() {
            w.writes.outcomes.push(OutcomeRow {
                command: cmd.id,
                item: u16::try_from(i).unwrap_or(u16::MAX),
                student: cmd.student,
                round: cmd.round,
                section: it.section,
                action,
                outcome: it.outcome,
                lease: c.lease,
                issued_at: cmd.issued_at,
                choice: it.choice,
            });
        }
        decisions.push(Decision {
            command: cmd.id,
            action,
            items: items.iter().map(|it| (it.section, it.outcome)).collect(),
            replayed: false,
        });
    }

    let mut seat_counts: Vec<(SectionId, u32)> = w
        .touched
        .iter()
        .filter_map(|s| w.sections.get(s))
        .map(|s| (s.id, s.enrolled))
        .collect();
    seat_counts.sort_unstable();
    w.writes.seat_counts = seat_counts;
    Plan {
        decisions,
        writes: w.writes,
        line_cut_short: w.line_cut_short,
    }
}

/// Rule 2 and the pass budget: reasons that reject a whole command.
fn command_level(
    round: &Round,
    student: &StudentState,
    c: &Checked<'_>,
    lease_used: &HashMap<Uuid, u32>,
) -> Option<Reason> {
    if !round.accepting {
        return Some(Reason::RoundClosed);
    }
    if !rules::year_eligible(round.eligible_mask, student.class_year) {
        return Some(Reason::NotEligible);
    }
    let used = c
        .lease
        .and_then(|l| lease_used.get(&l))
        .copied()
        .unwrap_or(0);
    if used >= u32::from(c.budget) {
        return Some(Reason::PassExhausted);
    }
    None
}

/// How one item of a command was decided.
#[derive(Debug, Clone, Copy)]
struct Item {
    /// The section the outcome is about: the one enrolled in, or the first
    /// choice when none was.
    section: SectionId,
    outcome: Outcome,
    /// 0 for the first choice, k for the item's k-th alternate.
    choice: u8,
}

impl Item {
    fn first(section: SectionId, outcome: Outcome) -> Item {
        Item {
            section,
            outcome,
            choice: 0,
        }
    }
}

impl Working<'_> {
    /// Decides each section of a command that passed the command-level
    /// checks: one outcome per item, in order.
    fn decide(&mut self, c: &Checked<'_>) -> Vec<Item> {
        let cmd = c.cmd;
        let mut items = Vec::new();
        match &cmd.action {
            Action::Enroll {
                sections: wanted,
                waitlist,
                options,
            } => {
                for (i, sid) in wanted.iter().enumerate() {
                    // The item's own choice, else the command's.
                    let item_waitlist =
                        options.get(i).and_then(|o| o.waitlist).unwrap_or(*waitlist);
                    let alternates = cmd.action.alternates(i);
                    items.push(self.enroll_item(c, *sid, alternates, item_waitlist));
                }
            }
            Action::LeaveWaitlist { section: sid } => {
                items.push(Item::first(*sid, self.leave(cmd.student, *sid, cmd.id)));
            }
            Action::Drop { section: sid } => {
                let outcome = self.drop_seat(cmd.student, *sid);
                items.push(Item::first(*sid, outcome));
                if outcome == Outcome::Dropped {
                    self.promote(*sid);
                }
            }
            Action::Swap { drop, enroll } => {
                let (gained, given_up) = self.swap(c, *drop, *enroll);
                items.push(Item::first(*enroll, gained));
                items.push(Item::first(*drop, given_up));
                if given_up == Outcome::Dropped {
                    self.promote(*drop);
                }
            }
        }
        items
    }

    /// A swap: `enroll` is checked by every rule against the student as if
    /// `drop` were already given up (same course, overlapping meetings and
    /// credits of `drop` do not count), then the seat. Either both change
    /// or neither does; a refusal gives both items the same reason, so the
    /// student reads why the swap was refused on either. Returns the
    /// outcomes of (`enroll`, `drop`).
    fn swap(&mut self, c: &Checked<'_>, drop: SectionId, enroll: SectionId) -> (Outcome, Outcome) {
        let cmd = c.cmd;
        let refused = |reason| (Outcome::Rejected(reason), Outcome::Rejected(reason));
        let (Some(st), Some(target)) =
            (self.students.get(&cmd.student), self.sections.get(&enroll))
        else {
            return refused(Reason::UnknownSection);
        };
        if !self.sections.contains_key(&drop) {
            return refused(Reason::UnknownSection);
        }
        if let Err(reason) = rules::check_drop(st, drop) {
            return refused(reason);
        }
        let mut without = st.clone();
        without.remove(drop);
        if let Err(reason) =
            rules::check_enroll(&without, target).and_then(|()| rules::check_seat(target))
        {
            return refused(reason);
        }
        // Both sections were found above, so both sides always apply.
        if let (Some(st), Some(target)) = (
            self.students.get_mut(&cmd.student),
            self.sections.get_mut(&enroll),
        ) {
            st.add(target);
            target.enrolled += 1;
            self.touched.insert(enroll);
            record_insert(&mut self.writes, cmd.student, target, cmd.id);
        }
        let given_up = self.drop_seat(cmd.student, drop);
        (Outcome::Enrolled, given_up)
    }

    /// One cart item: the first choice, then each alternate in order, until
    /// one is enrolled. When none is, the outcome is the first choice's:
    /// its reason, or, when it was full and the student asked for the
    /// waitlist, a place on the first choice's waitlist, taken only after
    /// every alternate was tried (a free seat elsewhere beats a place in
    /// line).
    fn enroll_item(
        &mut self,
        c: &Checked<'_>,
        first: SectionId,
        alternates: &[SectionId],
        waitlist: bool,
    ) -> Item {
        if alternates.is_empty() {
            return Item::first(first, self.enroll(c, first, waitlist));
        }
        let first_outcome = self.enroll(c, first, false);
        if first_outcome == Outcome::Enrolled {
            return Item::first(first, first_outcome);
        }
        for (k, alt) in alternates.iter().enumerate() {
            if self.enroll(c, *alt, false) == Outcome::Enrolled {
                return Item {
                    section: *alt,
                    outcome: Outcome::Enrolled,
                    choice: u8::try_from(k + 1).unwrap_or(u8::MAX),
                };
            }
        }
        if waitlist && first_outcome == Outcome::Rejected(Reason::Full) {
            // Nothing changed since the first try: it is full again, and
            // this time the student joins its line.
            return Item::first(first, self.enroll(c, first, true));
        }
        Item::first(first, first_outcome)
    }

    fn enroll(&mut self, c: &Checked<'_>, sid: SectionId, waitlist: bool) -> Outcome {
        let cmd = c.cmd;
        let (Some(st), Some(section)) = (
            self.students.get_mut(&cmd.student),
            self.sections.get_mut(&sid),
        ) else {
            return Outcome::Rejected(Reason::UnknownSection);
        };
        match rules::check_enroll(st, section).and_then(|()| rules::check_seat(section)) {
            Ok(()) => {
                st.add(section);
                section.enrolled += 1;
                self.touched.insert(sid);
                record_insert(&mut self.writes, cmd.student, section, cmd.id);
                Outcome::Enrolled
            }
            Err(Reason::Full) if waitlist => {
                if !self.waiting.insert((sid, cmd.student)) {
                    return Outcome::Rejected(Reason::AlreadyWaitlisted);
                }
                // Behind everyone read, when they are the whole line: a seat
                // freed later in the group may come to this entry.
                if let Some(line) = self.lines.get_mut(&sid).filter(|l| !l.more) {
                    line.entries.push(Entry {
                        row: EntryRow::New(self.writes.waitlist_insert.len()),
                        student: cmd.student,
                        round: cmd.round,
                        command: cmd.id,
                        done: false,
                    });
                }
                self.writes.waitlist_insert.push(NewEntry {
                    section: sid,
                    student: cmd.student,
                    round: cmd.round,
                    command: cmd.id,
                    state: "waiting",
                    resolved_by: None,
                });
                Outcome::Waitlisted
            }
            Err(reason) => Outcome::Rejected(reason),
        }
    }

    fn drop_seat(&mut self, student: StudentId, sid: SectionId) -> Outcome {
        let (Some(st), Some(section)) =
            (self.students.get_mut(&student), self.sections.get_mut(&sid))
        else {
            return Outcome::Rejected(Reason::UnknownSection);
        };
        if let Err(reason) = rules::check_drop(st, sid) {
            return Outcome::Rejected(reason);
        }
        st.remove(sid);
        section.enrolled = section.enrolled.saturating_sub(1);
        self.touched.insert(sid);
        record_delete(&mut self.writes, student, sid);
        Outcome::Dropped
    }

    /// Takes the student out of the section's line: the entry becomes
    /// `left`, resolved by the leaving command. A seat freed later in the
    /// group passes over it.
    fn leave(&mut self, student: StudentId, sid: SectionId, command: CommandId) -> Outcome {
        if !self.sections.contains_key(&sid) {
            return Outcome::Rejected(Reason::UnknownSection);
        }
        if !self.waiting.remove(&(sid, student)) {
            return Outcome::Rejected(Reason::NotWaitlisted);
        }
        // Where the entry is: in a line read (then it must not be promoted
        // later in the group), stored, or made earlier in this group.
        let in_line = self.lines.get_mut(&sid).and_then(|line| {
            line.entries
                .iter_mut()
                .find(|e| !e.done && e.student == student)
                .map(|e| {
                    e.done = true;
                    e.row
                })
        });
        let row = in_line
            .or_else(|| {
                self.waiting_rows
                    .get(&(sid, student))
                    .map(|id| EntryRow::Stored(*id))
            })
            .or_else(|| {
                self.writes
                    .waitlist_insert
                    .iter()
                    .position(|e| e.section == sid && e.student == student && e.state == "waiting")
                    .map(EntryRow::New)
            });
        match row {
            Some(EntryRow::Stored(id)) => {
                self.writes.waitlist_resolve.push((id, "left", command));
            }
            Some(EntryRow::New(k)) => {
                if let Some(new) = self.writes.waitlist_insert.get_mut(k) {
                    new.state = "left";
                    new.resolved_by = Some(command);
                }
            }
            None => return Outcome::Rejected(Reason::NotWaitlisted),
        }
        Outcome::LeftWaitlist
    }

    /// Gives the section's free seats to the first waiting students who
    /// still qualify; those who no longer do (conflict, credits, ...) are
    /// skipped. Every entry resolved gets an outcome row its student can
    /// read: a promotion, or a rejection saying why it was passed over.
    /// Notes when a seat is left free while students wait beyond those read.
    fn promote(&mut self, sid: SectionId) {
        let (Some(section), Some(line)) = (self.sections.get_mut(&sid), self.lines.get_mut(&sid))
        else {
            return;
        };
        if section.closed {
            return;
        }
        for entry in line.entries.iter_mut().filter(|e| !e.done) {
            if rules::check_seat(section).is_err() {
                return;
            }
            entry.done = true;
            let verdict = match (
                self.students.get_mut(&entry.student),
                self.rounds.get(&entry.round),
            ) {
                (None, _) => Err(Reason::UnknownStudent),
                (Some(_), None) => Err(Reason::RoundClosed),
                (Some(st), Some(r)) => {
                    if !r.accepting {
                        Err(Reason::RoundClosed)
                    } else if !rules::year_eligible(r.eligible_mask, st.class_year) {
                        Err(Reason::NotEligible)
                    } else {
                        rules::check_enroll(st, section).map(|()| st)
                    }
                }
            };
            let resolution = (self.new_id)();
            let (outcome, new_state) = match verdict {
                Ok(st) => {
                    st.add(section);
                    section.enrolled += 1;
                    self.touched.insert(sid);
                    record_insert(&mut self.writes, entry.student, section, entry.command);
                    (Outcome::Promoted, "promoted")
                }
                Err(reason) => (Outcome::Rejected(reason), "skipped"),
            };
            self.waiting.remove(&(sid, entry.student));
            match entry.row {
                EntryRow::Stored(id) => {
                    self.writes
                        .waitlist_resolve
                        .push((id, new_state, resolution));
                }
                EntryRow::New(k) => {
                    if let Some(new) = self.writes.waitlist_insert.get_mut(k) {
                        new.state = new_state;
                        new.resolved_by = Some(resolution);
                    }
                }
            }
            self.writes.outcomes.push(OutcomeRow {
                command: resolution,
                item: 0,
                student: entry.student,
                round: entry.round,
                section: sid,
                action: "enroll",
                outcome,
                lease: None,
                issued_at: self.now,
                choice: 0,
            });
        }
        if rules::check_seat(section).is_ok() && line.more {
            self.line_cut_short = true;
        }
    }
}

fn record_insert(
    writes: &mut Writes,
    student: StudentId,
    section: &SectionInfo,
    command: CommandId,
) {
    writes
        .enroll_insert
        .push((student, section.id, section.course_id, command));
}

fn record_delete(writes: &mut Writes, student: StudentId, section: SectionId) {
    // An enrollment made earlier in this group was never written: cancel it.
    if let Some(pos) = writes
        .enroll_insert
        .iter()
        .position(|(st, s, _, _)| *st == student && *s == section)
    {
        writes.enroll_insert.remove(pos);
    } else {
        writes.enroll_delete.push((student, section));
    }
}
