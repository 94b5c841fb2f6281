//! The enrollment contract: domain ids, the versioned command that travels
//! from gateway to worker over RabbitMQ, and the rules a command must pass.
//!
//! # Layout
//! - [`ids`]: newtypes for every id that crosses a boundary.
//! - [`command`]: the JSON wire format (version 1) and its strict decoder.
//! - [`rules`]: the enrollment rules of the domain, as pure functions over a
//!   student's current state and a section, in the order they are checked.
//! - [`reason`]: stable machine-readable rejection reasons with Korean and
//!   English messages.

pub mod command;
pub mod ids;
pub mod reason;
pub mod rules;

pub use command::{Action, Command, DecodeError, ItemOptions, MAX_ALTERNATES, MAX_CART_SECTIONS};
pub use ids::{CommandId, CourseId, RoundId, SectionId, StudentId};
pub use reason::Reason;
