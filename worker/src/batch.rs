//! Splitting the deliveries a worker holds into transactions.
//!
//! Commands that share a section or a student must be decided in one
//! transaction, in arrival order, so that the in-memory view of seats and of
//! each student's timetable is exact. Commands that share neither can go to
//! separate transactions that run side by side. [`plan`] finds those
//! independent groups (a union-find over sections and students), then packs
//! small groups together so a batch of a thousand single-section commands
//! over fifty sections becomes a handful of transactions, not fifty.

use enrollment::{Command, SectionId, StudentId};
use std::collections::HashMap;

/// Indices into the batch, one `Vec` per transaction, each in arrival order.
pub type Plan = Vec<Vec<usize>>;

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            // Keep the smaller index as root so groups are ordered by their
            // first arrival.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi] = lo;
        }
    }
}

/// Groups `commands` into transactions of at least `min_txn` commands where
/// possible, never splitting commands that share a section or a student.
pub fn plan(commands: &[&Command], min_txn: usize) -> Plan {
    let mut uf = UnionFind::new(commands.len());
    let mut by_section: HashMap<SectionId, usize> = HashMap::new();
    let mut by_student: HashMap<StudentId, usize> = HashMap::new();
    for (i, cmd) in commands.iter().enumerate() {
        if let Some(&j) = by_student.get(&cmd.student) {
            uf.union(i, j);
        } else {
            by_student.insert(cmd.student, i);
        }
        for s in cmd.action.every_section() {
            if let Some(&j) = by_section.get(&s) {
                uf.union(i, j);
            } else {
                by_section.insert(s, i);
            }
        }
    }
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut slot: HashMap<usize, usize> = HashMap::new();
    for i in 0..commands.len() {
        let root = uf.find(i);
        let g = *slot.entry(root).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    // Pack small independent groups together; order inside a packed
    // transaction stays arrival order because each group keeps its own.
    let mut packed: Plan = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for g in groups {
        current.extend(g);
        if current.len() >= min_txn.max(1) {
            current.sort_unstable();
            packed.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        current.sort_unstable();
        packed.push(current);
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;
    use enrollment::{Action, RoundId};
    use proptest::prelude::*;

    fn enroll(student: u32, sections: &[u32]) -> Command {
        Command::new(
            StudentId(student),
            RoundId(1),
            String::new(),
            Action::Enroll {
                sections: sections.iter().copied().map(SectionId).collect(),
                waitlist: false,
                options: Vec::new(),
            },
        )
    }

    #[test]
    fn independent_commands_split_and_shared_ones_stay_together() {
        let cmds = [
            enroll(1, &[10]),
            enroll(2, &[20]),
            enroll(3, &[10]),
            enroll(1, &[30]),
        ];
        let refs: Vec<&Command> = cmds.iter().collect();
        let plan = plan(&refs, 1);
        // 0 and 2 share section 10; 0 and 3 share student 1.
        assert_eq!(plan, vec![vec![0, 2, 3], vec![1]]);
        assert_eq!(super::plan(&refs, 4), vec![vec![0, 1, 2, 3]]);
    }

    proptest! {
        #[test]
        fn plan_is_a_partition_that_never_splits_a_conflict(
            raw in proptest::collection::vec((0u32..30, proptest::collection::btree_set(0u32..40, 1..4)), 0..200),
            min_txn in 1usize..50,
        ) {
            let cmds: Vec<Command> = raw
                .iter()
                .map(|(st, secs)| enroll(*st, &secs.iter().copied().collect::<Vec<_>>()))
                .collect();
            let refs: Vec<&Command> = cmds.iter().collect();
            let plan = plan(&refs, min_txn);
            let mut where_is = vec![usize::MAX; cmds.len()];
            for (t, txn) in plan.iter().enumerate() {
                prop_assert!(txn.windows(2).all(|w| w[0] < w[1]), "arrival order kept");
                for &i in txn {
                    prop_assert_eq!(where_is[i], usize::MAX, "in two transactions");
                    where_is[i] = t;
                }
            }
            prop_assert!(where_is.iter().all(|&t| t != usize::MAX), "every command planned");
            for i in 0..cmds.len() {
                for j in 0..i {
                    let shares = cmds[i].student == cmds[j].student
                        || cmds[i].action.sections().iter().any(|s| cmds[j].action.sections().contains(s));
                    if shares {
                        prop_assert_eq!(where_is[i], where_is[j]);
                    }
                }
            }
        }
    }
}
