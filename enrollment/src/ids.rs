//! Newtypes for the ids that cross process boundaries, so a section id can
//! never be passed where a student id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim().parse().map($name)
            }
        }
    };
}

int_id!(
    /// A row of `students`.
    StudentId
);
int_id!(
    /// A row of `sections`.
    SectionId
);
int_id!(
    /// A row of `courses`.
    CourseId
);
int_id!(
    /// A registration round (one waiting room).
    RoundId
);

/// A command's unique id: a UUID v7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandId(pub uuid::Uuid);

impl CommandId {
    /// A fresh time-ordered id.
    pub fn new() -> Self {
        CommandId(uuid::Uuid::now_v7())
    }

    /// When the id was minted, if it is a v7 UUID.
    pub fn created_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let ts = self.0.get_timestamp()?;
        let (secs, nanos) = ts.to_unix();
        chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
    }
}

impl Default for CommandId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for CommandId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s.trim()).map(CommandId)
    }
}
