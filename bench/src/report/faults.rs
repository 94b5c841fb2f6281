//! The `chaos` section of the report: every fault as it happened, what the
//! waiting room did with every place, and the verdict.

use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    /// The fault's name, as `--fault` spells it.
    pub kind: &'static str,
    /// The process or service hit.
    pub target: String,
    /// When it was due and when it happened, from the start of the surge.
    pub scheduled_s: f64,
    pub at_s: f64,
    /// From the fault until the killed process's replacement was ready,
    /// or the restarted dependency answered again.
    pub restored_s: Option<f64>,
    /// From the fault until a command was decided after `restored_s` (or
    /// nothing was left to decide).
    pub commits_resumed_s: Option<f64>,
    /// From the fault until the serving mark moved after `restored_s` (or
    /// nobody was waiting).
    pub admission_resumed_s: Option<f64>,
    /// (gateway kills) from the fault until a gateway held leadership.
    pub leader_s: Option<f64>,
    /// The largest of the above: everything back and working.
    pub recovery_s: Option<f64>,
    /// (db-cut) connections killed, and whether one was in a transaction.
    pub connections_killed: Option<u64>,
    pub in_transaction: Option<bool>,
    /// (rabbitmq-restart, rabbitmq-outage) the commands queue was there
    /// after the node came back.
    pub queue_kept: Option<bool>,
    /// (mariadb-outage, rabbitmq-outage) how long the server was down.
    pub down_s: Option<f64>,
    /// (both outages) tickets skipped, and reclaimed, from just before
    /// the outage until the pace window after admission resumed.
    pub skipped_after: Option<u64>,
    pub reclaimed_after: Option<u64>,
    /// (both outages) admissions per minute over the pace window once
    /// admission resumed, and whether that is the configured pace (`None`
    /// when the queue ran empty within the window).
    pub admission_per_min_after: Option<f64>,
    pub pace_held: Option<bool>,
    /// Whether the fault was injected at all.
    pub ran: bool,
    pub recovered: bool,
    pub note: String,
}

impl FaultRecord {
    pub fn new(kind: &'static str, scheduled: Duration, at: Duration) -> FaultRecord {
        FaultRecord {
            kind,
            target: String::new(),
            scheduled_s: scheduled.as_secs_f64(),
            at_s: at.as_secs_f64(),
            restored_s: None,
            commits_resumed_s: None,
            admission_resumed_s: None,
            leader_s: None,
            recovery_s: None,
            connections_killed: None,
            in_transaction: None,
            queue_kept: None,
            down_s: None,
            skipped_after: None,
            reclaimed_after: None,
            admission_per_min_after: None,
            pace_held: None,
            ran: false,
            recovered: false,
            note: String::new(),
        }
    }
}

/// What the waiting room did with every place.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Places {
    pub tickets: u64,
    /// Students holding more than one ticket in the round.
    pub two_tickets: u64,
    pub admitted: u64,
    /// Ticket rows whose state, admission time and lease disagree.
    pub admitted_inconsistent: u64,
    /// Tickets the room skipped as abandoned, and still waiting at the end.
    pub skipped: u64,
    pub still_waiting: u64,
    /// Students told their place ended (skipped, left, expired) while
    /// they kept polling.
    pub place_ended: u64,
    /// Students who stopped polling because no answer came for all their
    /// tries (or the deadline).
    pub stopped_waiting: u64,
    /// Students whose join never succeeded.
    pub join_failed: u64,
    /// `place_ended + stopped_waiting`: waiting students not served.
    pub dropped: u64,
}

/// The `chaos` section of the report.
#[derive(Debug, Clone, Serialize)]
pub struct FaultSummary {
    pub faults: Vec<FaultRecord>,
    pub faults_run: usize,
    /// Per kind: how many ran, and the longest and median recovery.
    pub by_kind: BTreeMap<&'static str, KindSummary>,
    pub oversold: u64,
    pub duplicates: u64,
    pub lost_commands: u64,
    /// Every 5xx (503 + Retry-After during an outage is by design)...
    pub http_5xx: u64,
    /// ...and those that are not a 503.
    pub http_5xx_unexpected: u64,
    /// Requests refused at the TCP level (a dead gateway), retried
    /// elsewhere by the student.
    pub connection_errors: u64,
    pub places: Places,
    /// Admitted students whose pass was refused before they could use it
    /// (`passes_refused` of the report): an outage must not cost the time
    /// a pass promises.
    pub passes_refused: u64,
    pub processes_ready_at_end: bool,
    pub dependencies_up_at_end: bool,
    pub passed: bool,
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct KindSummary {
    pub runs: usize,
    pub recovered: usize,
    pub recovery_s_median: Option<f64>,
    pub recovery_s_max: Option<f64>,
}
