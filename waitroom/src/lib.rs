//! The virtual waiting room, free of HTTP, AMQP and SQL types.
//!
//! Everything here is a pure function of its inputs (time is passed in), so
//! the gateway's admission leader, its status endpoint and the tests all run
//! the same code, the tests with a paused clock and fixed seeds.
//!
//! # Layout
//! - [`token`]: signed queue tokens (keyed BLAKE3) and admission passes
//!   (HMAC-SHA256), with key ids
//!   so keys can rotate while both stay valid; [`token::compact`] is the
//!   compact encoding of queue claims, the payload every poll opens.
//! - [`autopace`]: the automatic pace, a rate that follows the workers'
//!   backlog and decision latency within the registrar's floor and ceiling.
//! - [`pacing`]: the GCRA pacer that decides how many students each
//!   admission tick may let in.
//! - [`shuffle`]: the seeded, auditable order of the pre-queue cohort.
//! - [`estimate`]: places in line, measured admission rate, wait-time
//!   ranges and suggested poll intervals.
//! - [`priority`]: classes of students admitted in order or by weight
//!   inside a round: lanes, the budget split of a tick, lane estimates.
//! - [`room`]: rounds, tickets, the admission plan of one tick and the
//!   [`RoomStore`] trait that shared room state is kept behind.

// Tests may unwrap: a panic is how a test fails.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod autopace;
pub mod estimate;
pub mod pacing;
pub mod priority;
pub mod room;
pub mod shuffle;
pub mod token;

pub use estimate::{Estimate, RateMeter};
pub use pacing::Pacer;
pub use priority::{Priority, PriorityError, PriorityMode};
pub use room::{
    plan_admission, AdmissionPlan, Candidate, ChangeError, Hold, InvalidTransition, JoinRefused,
    JoinRequest, LaneView, LinePlace, PaceView, Place, RoomStore, RoundChange, RoundState,
    RoundView, TickInput, TickOutcome, Ticket, TicketState,
};
pub use shuffle::prequeue_order;
pub use token::{Keyring, PassClaims, QueueClaims, SessionClaims, Subject, TokenError};
