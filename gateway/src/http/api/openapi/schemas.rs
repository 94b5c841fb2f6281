//! Schemas of the values the API shows from the pure crates (`waitroom`,
//! `enrollment`), written here so those crates stay free of HTTP
//! concerns. Each mirrors its type's serde shape; the document test
//! (`gateway/tests/gateway/openapi.rs`) and the fuzzer check the answers
//! against them.

// Never built: these types only describe the JSON of others.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::ToSchema;

/// Where a round is in its life.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RoundState)]
pub enum RoundStateDoc {
    Scheduled,
    Prequeue,
    Open,
    Paused,
    Closed,
}

/// Who a session belongs to (`t` tells which).
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "t", rename_all = "snake_case")]
#[schema(as = Subject)]
pub enum SubjectDoc {
    Student {
        /// The student's id.
        #[serde(rename = "s")]
        id: u32,
        #[serde(rename = "y")]
        class_year: u8,
    },
    Admin {
        #[serde(rename = "a")]
        id: u32,
        #[serde(rename = "n")]
        username: String,
        /// `registrar`, `ops` or `viewer`.
        #[serde(rename = "o")]
        role: String,
    },
}

/// A wait-time range in whole seconds.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Estimate)]
pub struct EstimateDoc {
    pub min_secs: u64,
    pub max_secs: u64,
    /// The room's speed is not known yet, only the bounds it runs between
    /// (an automatic pace before the workers were measured): the range
    /// runs from the wait at the ceiling to the wait at the floor, and
    /// narrows once the speed is measured.
    pub rough: bool,
}

/// `enrollment::ItemOptions` as the document shows it: one cart item's
/// choices beyond its first section.
#[derive(Debug, ToSchema)]
pub struct ItemOptionsDoc {
    /// Sections of the same course to try, in order (at most 4), when the
    /// first is refused.
    #[schema(max_items = 4)]
    pub alternates: Option<Vec<u32>>,
    /// Join the first choice's waitlist when every choice is full; absent:
    /// the command's `waitlist`.
    pub waitlist: Option<bool>,
}
