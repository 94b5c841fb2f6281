//! The command wire format, version 1.
//!
//! ```json
//! {"v":1,"id":"0192…","student":42,"round":3,"pass":"k1.…",
//!  "issued_at":"2026-11-21T00:00:00.000Z",
//!  "action":{"kind":"enroll","sections":[7,9],"waitlist":false}}
//! ```
//! `action` is `enroll` (one section, or a whole cart as one command),
//! `drop` (one section), `leave_waitlist` (one section) or `swap`
//! (`{"kind":"swap","drop":7,"enroll":9}`: enroll in one section and give up
//! another in one decision, or change nothing). The decoder is strict:
//! unknown versions, unknown fields, empty or oversized carts, repeated
//! sections and a swap of a section for itself are refused, so nothing
//! malformed reaches the rules.

use crate::ids::{CommandId, RoundId, SectionId, StudentId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The only version this build reads and writes.
pub const VERSION: u16 = 1;

/// The most sections one cart command may carry.
pub const MAX_CART_SECTIONS: usize = 12;

/// The most alternates one cart item may name.
pub const MAX_ALTERNATES: usize = 4;

/// The largest encoded command accepted (a full cart with a pass is far below).
pub const MAX_ENCODED_BYTES: usize = 4096;

/// What a student chose for one cart item beyond its first section.
///
/// Carried in `Action::Enroll::options`, parallel to `sections`; an absent
/// list means the defaults for every item, so version 1 commands written
/// before these choices existed read the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemOptions {
    /// Sections of the same course to try, in order, when the first is
    /// refused for a seat or a rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<SectionId>,
    /// Join the waitlist when every choice is full; `None` follows the
    /// command's `waitlist`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waitlist: Option<bool>,
}

impl ItemOptions {
    /// True when nothing differs from the defaults.
    pub fn is_default(&self) -> bool {
        self.alternates.is_empty() && self.waitlist.is_none()
    }
}

/// What the student asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Enroll in each section, in order. With `waitlist`, a full section puts
    /// the student on its waitlist instead of rejecting.
    Enroll {
        sections: Vec<SectionId>,
        #[serde(default)]
        waitlist: bool,
        /// Per-item choices, parallel to `sections`; empty means the
        /// defaults for every item.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        options: Vec<ItemOptions>,
    },
    /// Give up the seat in one section.
    Drop { section: SectionId },
    /// Enroll in `enroll` and give up `drop` together: `enroll` is checked
    /// as if `drop` were already given up, and if it is refused the student
    /// keeps `drop`.
    Swap { drop: SectionId, enroll: SectionId },
    /// Leave the waitlist of one section (wire `leave_waitlist`).
    LeaveWaitlist { section: SectionId },
}

impl Action {
    /// The sections this action touches, in the order of its outcome
    /// items: a swap's is `[enroll, drop]` (item 0 the section gained,
    /// item 1 the section given up).
    pub fn sections(&self) -> std::borrow::Cow<'_, [SectionId]> {
        use std::borrow::Cow;
        match self {
            Action::Enroll { sections, .. } => Cow::Borrowed(sections),
            Action::Drop { section } | Action::LeaveWaitlist { section } => {
                Cow::Borrowed(std::slice::from_ref(section))
            }
            Action::Swap { drop, enroll } => Cow::Owned(vec![*enroll, *drop]),
        }
    }

    /// Every section the action may decide: the first choices, then each
    /// item's alternates. Workers lock and group by these.
    pub fn every_section(&self) -> impl Iterator<Item = SectionId> + '_ {
        let alternates = match self {
            Action::Enroll { options, .. } => options.as_slice(),
            _ => &[],
        };
        let firsts = self.sections().into_owned();
        firsts
            .into_iter()
            .chain(alternates.iter().flat_map(|o| o.alternates.iter().copied()))
    }

    /// The alternates of item `i`, in the order they are tried.
    pub fn alternates(&self, i: usize) -> &[SectionId] {
        match self {
            Action::Enroll { options, .. } => options
                .get(i)
                .map(|o| o.alternates.as_slice())
                .unwrap_or_default(),
            _ => &[],
        }
    }

    /// `enroll`, `drop`, `swap` or `leave_waitlist`, as stored in outcomes.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Enroll { .. } => "enroll",
            Action::Drop { .. } => "drop",
            Action::Swap { .. } => "swap",
            Action::LeaveWaitlist { .. } => "leave_waitlist",
        }
    }
}

/// One enrollment command as it travels over RabbitMQ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    pub v: u16,
    pub id: CommandId,
    pub student: StudentId,
    pub round: RoundId,
    /// The admission pass, as issued by the gateway (signed, student-bound).
    pub pass: String,
    /// When the gateway accepted the command.
    pub issued_at: DateTime<Utc>,
    pub action: Action,
}

/// Why bytes are not a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("command is {0} bytes, more than the {MAX_ENCODED_BYTES} allowed")]
    TooLarge(usize),
    #[error("command is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("command version {0} is not supported (expected {VERSION})")]
    Version(u16),
    #[error("enroll names no section")]
    EmptyCart,
    #[error("enroll names {0} sections, more than {MAX_CART_SECTIONS}")]
    CartTooLarge(usize),
    #[error("enroll names section {0} twice")]
    RepeatedSection(SectionId),
    #[error("enroll has {options} item options for {sections} sections")]
    OptionsMismatch { options: usize, sections: usize },
    #[error("a cart item names {0} alternates, more than {MAX_ALTERNATES}")]
    TooManyAlternates(usize),
    #[error("swap names section {0} as both the one to drop and the one to enroll in")]
    SwapSameSection(SectionId),
}

impl Command {
    /// A new command with a fresh id, stamped now.
    pub fn new(student: StudentId, round: RoundId, pass: String, action: Action) -> Self {
        Command {
            v: VERSION,
            id: CommandId::new(),
            student,
            round,
            pass,
            issued_at: Utc::now(),
            action,
        }
    }

    /// Serialises to the wire format.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses and validates the wire format.
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        if bytes.len() > MAX_ENCODED_BYTES {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        let cmd: Command =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        cmd.validate()?;
        Ok(cmd)
    }

    /// Checks what the type system cannot.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.v != VERSION {
            return Err(DecodeError::Version(self.v));
        }
        if let Action::Swap { drop, enroll } = &self.action {
            if drop == enroll {
                return Err(DecodeError::SwapSameSection(*drop));
            }
        }
        if let Action::Enroll {
            sections, options, ..
        } = &self.action
        {
            if sections.is_empty() {
                return Err(DecodeError::EmptyCart);
            }
            if sections.len() > MAX_CART_SECTIONS {
                return Err(DecodeError::CartTooLarge(sections.len()));
            }
            if !options.is_empty() && options.len() != sections.len() {
                return Err(DecodeError::OptionsMismatch {
                    options: options.len(),
                    sections: sections.len(),
                });
            }
            if let Some(o) = options.iter().find(|o| o.alternates.len() > MAX_ALTERNATES) {
                return Err(DecodeError::TooManyAlternates(o.alternates.len()));
            }
            // A section appears once in the whole command, first choice or
            // alternate, so each is decided at most once.
            let every = sections
                .iter()
                .chain(options.iter().flat_map(|o| o.alternates.iter()));
            let mut seen = std::collections::HashSet::new();
            for s in every {
                if !seen.insert(*s) {
                    return Err(DecodeError::RepeatedSection(*s));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(action: Action) -> Command {
        Command::new(StudentId(42), RoundId(3), "k1.payload.sig".into(), action)
    }

    #[test]
    fn round_trips_enroll_and_drop() {
        for action in [
            Action::Enroll {
                sections: vec![SectionId(7), SectionId(9)],
                waitlist: true,
                options: Vec::new(),
            },
            Action::Drop {
                section: SectionId(7),
            },
            Action::Swap {
                drop: SectionId(7),
                enroll: SectionId(9),
            },
            Action::LeaveWaitlist {
                section: SectionId(7),
            },
        ] {
            let cmd = sample(action);
            assert_eq!(Command::decode(&cmd.encode()).unwrap(), cmd);
        }
    }

    #[test]
    fn wire_format_is_stable() {
        let json = r#"{"v":1,"id":"01936f6e-8b4a-7cc0-8000-000000000001","student":42,"round":3,
            "pass":"p","issued_at":"2026-11-21T00:00:00Z",
            "action":{"kind":"enroll","sections":[7]}}"#;
        let cmd = Command::decode(json.as_bytes()).unwrap();
        assert_eq!(cmd.student, StudentId(42));
        assert_eq!(
            cmd.action,
            Action::Enroll {
                sections: vec![SectionId(7)],
                waitlist: false,
                options: Vec::new(),
            }
        );
    }

    #[test]
    fn swap_wire_format_and_checks() {
        let json = r#"{"v":1,"id":"01936f6e-8b4a-7cc0-8000-000000000001","student":42,"round":3,
            "pass":"p","issued_at":"2026-11-21T00:00:00Z",
            "action":{"kind":"swap","drop":7,"enroll":9}}"#;
        let cmd = Command::decode(json.as_bytes()).unwrap();
        let swap = Action::Swap {
            drop: SectionId(7),
            enroll: SectionId(9),
        };
        assert_eq!(cmd.action, swap);
        assert_eq!(swap.name(), "swap");
        // Item 0 is the section gained, item 1 the section given up.
        assert_eq!(&*swap.sections(), &[SectionId(9), SectionId(7)]);
        let same = json.replace(r#""enroll":9"#, r#""enroll":7"#);
        assert_eq!(
            Command::decode(same.as_bytes()),
            Err(DecodeError::SwapSameSection(SectionId(7)))
        );
        for bad in [
            r#""drop":7}"#,
            r#""enroll":9}"#,
            r#""drop":7,"enroll":9,"waitlist":true}"#,
            r#""drop":-1,"enroll":9}"#,
            r#""drop":[7],"enroll":9}"#,
        ] {
            let text = json.replace(r#""drop":7,"enroll":9}"#, bad);
            assert!(
                matches!(
                    Command::decode(text.as_bytes()),
                    Err(DecodeError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_what_is_not_a_command() {
        let mut cmd = sample(Action::Enroll {
            sections: vec![],
            waitlist: false,
            options: Vec::new(),
        });
        assert_eq!(Command::decode(&cmd.encode()), Err(DecodeError::EmptyCart));
        cmd.action = Action::Enroll {
            sections: vec![SectionId(1), SectionId(1)],
            waitlist: false,
            options: Vec::new(),
        };
        assert_eq!(
            Command::decode(&cmd.encode()),
            Err(DecodeError::RepeatedSection(SectionId(1)))
        );
        cmd.action = Action::Enroll {
            sections: (1..=13).map(SectionId).collect(),
            waitlist: false,
            options: Vec::new(),
        };
        assert_eq!(
            Command::decode(&cmd.encode()),
            Err(DecodeError::CartTooLarge(13))
        );
        cmd.action = Action::Drop {
            section: SectionId(1),
        };
        cmd.v = 2;
        assert_eq!(Command::decode(&cmd.encode()), Err(DecodeError::Version(2)));
        assert!(matches!(
            Command::decode(b"{}"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Command::decode(&[0xff, 0xfe]),
            Err(DecodeError::Malformed(_))
        ));
        let big = vec![b' '; MAX_ENCODED_BYTES + 1];
        assert_eq!(
            Command::decode(&big),
            Err(DecodeError::TooLarge(MAX_ENCODED_BYTES + 1))
        );
        let extra = r#"{"v":1,"id":"01936f6e-8b4a-7cc0-8000-000000000001","student":1,"round":1,
            "pass":"p","issued_at":"2026-11-21T00:00:00Z","admin":true,
            "action":{"kind":"drop","section":7}}"#;
        assert!(matches!(
            Command::decode(extra.as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn leave_waitlist_wire_shape_is_strict() {
        let json = |action: &str| {
            format!(
                r#"{{"v":1,"id":"01936f6e-8b4a-7cc0-8000-000000000001","student":1,"round":1,
                "pass":"p","issued_at":"2026-11-21T00:00:00Z","action":{action}}}"#
            )
        };
        let cmd =
            Command::decode(json(r#"{"kind":"leave_waitlist","section":7}"#).as_bytes()).unwrap();
        assert_eq!(
            cmd.action,
            Action::LeaveWaitlist {
                section: SectionId(7)
            }
        );
        assert_eq!(cmd.action.name(), "leave_waitlist");
        assert_eq!(&*cmd.action.sections(), &[SectionId(7)]);
        for bad in [
            r#"{"kind":"leave_waitlist"}"#,
            r#"{"kind":"leave_waitlist","section":7,"waitlist":true}"#,
            r#"{"kind":"leave_waitlist","sections":[7]}"#,
            r#"{"kind":"leave-waitlist","section":7}"#,
        ] {
            assert!(
                matches!(
                    Command::decode(json(bad).as_bytes()),
                    Err(DecodeError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn item_options_round_trip_and_are_checked() {
        let with = |options: Vec<ItemOptions>| {
            sample(Action::Enroll {
                sections: vec![SectionId(1), SectionId(2)],
                waitlist: false,
                options,
            })
        };
        let chosen = with(vec![
            ItemOptions {
                alternates: vec![SectionId(3), SectionId(4)],
                waitlist: Some(true),
            },
            ItemOptions::default(),
        ]);
        assert_eq!(Command::decode(&chosen.encode()).unwrap(), chosen);
        // Defaults are not written, so commands without choices keep the
        // exact bytes they had before options existed.
        let plain = with(Vec::new());
        assert!(!String::from_utf8(plain.encode())
            .unwrap()
            .contains("options"));
        assert_eq!(
            Command::decode(&with(vec![ItemOptions::default()]).encode()),
            Err(DecodeError::OptionsMismatch {
                options: 1,
                sections: 2
            })
        );
        let repeat = with(vec![
            ItemOptions {
                alternates: vec![SectionId(2)],
                waitlist: None,
            },
            ItemOptions::default(),
        ]);
        assert_eq!(
            Command::decode(&repeat.encode()),
            Err(DecodeError::RepeatedSection(SectionId(2)))
        );
        let many = with(vec![
            ItemOptions {
                alternates: (10..10 + MAX_ALTERNATES as u32 + 1)
                    .map(SectionId)
                    .collect(),
                waitlist: None,
            },
            ItemOptions::default(),
        ]);
        assert_eq!(
            Command::decode(&many.encode()),
            Err(DecodeError::TooManyAlternates(MAX_ALTERNATES + 1))
        );
        let unknown = r#"{"v":1,"id":"01936f6e-8b4a-7cc0-8000-000000000001","student":1,"round":1,
            "pass":"p","issued_at":"2026-11-21T00:00:00Z",
            "action":{"kind":"enroll","sections":[7],"options":[{"priority":1}]}}"#;
        assert!(matches!(
            Command::decode(unknown.as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Command::decode(&bytes);
        }

        #[test]
        fn swaps_round_trip(drop in any::<u32>(), enroll in any::<u32>()) {
            let cmd = sample(Action::Swap { drop: SectionId(drop), enroll: SectionId(enroll) });
            let decoded = Command::decode(&cmd.encode());
            if drop == enroll {
                prop_assert_eq!(decoded, Err(DecodeError::SwapSameSection(SectionId(drop))));
            } else {
                prop_assert_eq!(decoded.unwrap(), cmd);
            }
        }

        #[test]
        fn valid_commands_round_trip(
            student in any::<u32>(), round in any::<u32>(),
            sections in proptest::collection::btree_set(any::<u32>(), 1..=MAX_CART_SECTIONS),
            waitlist in any::<bool>(), pass in "[A-Za-z0-9._-]{0,200}",
        ) {
            let cmd = Command::new(StudentId(student), RoundId(round), pass, Action::Enroll {
                sections: sections.into_iter().map(SectionId).collect(), waitlist,
                options: Vec::new(),
            });
            prop_assert_eq!(Command::decode(&cmd.encode()).unwrap(), cmd);
        }

        /// The decoder accepts exactly the well-formed commands: version 1,
        /// a cart of 1 to 12 distinct sections, one drop, or a swap of two
        /// different sections.
        #[test]
        fn decoding_accepts_exactly_the_valid_shapes(
            v in 0u16..3,
            sections in proptest::collection::vec(0u32..20, 0..16),
            kind in 0u8..3,
            swap in (0u32..4, 0u32..4),
        ) {
            let action = match kind {
                1 => serde_json::json!({ "kind": "drop", "section": sections.first().copied().unwrap_or(1) }),
                2 => serde_json::json!({ "kind": "swap", "drop": swap.0, "enroll": swap.1 }),
                _ => serde_json::json!({ "kind": "enroll", "sections": sections }),
            };
            let json = serde_json::json!({
                "v": v, "id": "01936f6e-8b4a-7cc0-8000-000000000001", "student": 1,
                "round": 1, "pass": "p", "issued_at": "2026-11-21T00:00:00Z", "action": action,
            });
            let mut distinct = sections.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let valid_cart = !sections.is_empty()
                && sections.len() <= MAX_CART_SECTIONS
                && distinct.len() == sections.len();
            let valid = v == VERSION
                && match kind {
                    1 => true,
                    2 => swap.0 != swap.1,
                    _ => valid_cart,
                };
            let decoded = Command::decode(json.to_string().as_bytes());
            prop_assert_eq!(decoded.is_ok(), valid, "{:?}", decoded);
        }
    }
}
