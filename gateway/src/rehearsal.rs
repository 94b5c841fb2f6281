//! The rehearsal-run contract shared by the gateway's admin API and the
//! bench: the bounds every run must stay within and the JSON bodies.
//!
//! A run registers first (`POST /api/admin/rehearsals`); the gateway
//! records it only when the target round is marked as a rehearsal and the
//! size and duration are within bounds. The bench checks the same bounds
//! before it sends anything, and stops its surge at the duration's
//! deadline; the report follows (`POST /api/admin/rehearsals/{id}/report`).

use serde::{Deserialize, Serialize};

/// The most students one rehearsal run may simulate.
pub const MAX_STUDENTS: u32 = 5_000;

/// The longest a rehearsal run may last, arrivals and all, in seconds.
pub const MAX_DURATION_S: u32 = 600;

/// The largest report (JSON) stored per run.
pub const MAX_REPORT_BYTES: usize = 12 * 1024;

/// `POST /api/admin/rehearsals`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct RunRequest {
    pub round: u32,
    pub students: u32,
    pub duration_s: u32,
}

impl RunRequest {
    /// Why the run is out of bounds, if it is.
    pub fn out_of_bounds(&self) -> Option<String> {
        if self.students == 0 || self.students > MAX_STUDENTS {
            return Some(format!(
                "students must be 1 to {MAX_STUDENTS} (was {})",
                self.students
            ));
        }
        if self.duration_s == 0 || self.duration_s > MAX_DURATION_S {
            return Some(format!(
                "duration_s must be 1 to {MAX_DURATION_S} (was {})",
                self.duration_s
            ));
        }
        None
    }
}

/// The answer to a registered run.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunStarted {
    pub id: u64,
}

/// `POST /api/admin/rehearsals/{id}/report`: key results, and the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct RunReport {
    pub summary: Summary,
    /// The bench's report without its timeline, at most
    /// [`MAX_REPORT_BYTES`] when encoded.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

/// What the ops panel shows of each run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
pub struct Summary {
    pub joined: u64,
    pub admitted: u64,
    pub accepted_commands: u64,
    pub http_5xx: u64,
    pub join_p99_ms: f64,
    pub decision_p99_ms: f64,
    pub duration_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_refuse_empty_and_oversized_runs() {
        let run = |students, duration_s| RunRequest {
            round: 1,
            students,
            duration_s,
        };
        assert_eq!(run(1, 1).out_of_bounds(), None);
        assert_eq!(run(MAX_STUDENTS, MAX_DURATION_S).out_of_bounds(), None);
        assert!(run(0, 10).out_of_bounds().is_some());
        assert!(run(MAX_STUDENTS + 1, 10).out_of_bounds().is_some());
        assert!(run(10, 0).out_of_bounds().is_some());
        assert!(run(10, MAX_DURATION_S + 1).out_of_bounds().is_some());
    }
}
