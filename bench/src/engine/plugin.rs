//! What the engine can be given besides the surge itself: faults to inject
//! (`bench chaos`) and an autoscaler (`bench cluster`). Both are traits on
//! the engine's side so that the engine never names the modules that
//! implement them.

use crate::analysis::Ledger;
use crate::client::Api;
use crate::local::{Local, Replicas};
use crate::report::{FaultRecord, FaultSummary, Report, ScaleEvent};
use crate::stats::Stats;
use futures_util::future::LocalBoxFuture;
use std::sync::Arc;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The running local surge, as a plug-in sees it.
#[derive(Clone)]
pub struct Live {
    pub cluster: Arc<Mutex<Local>>,
    pub api: Arc<Api>,
    pub replicas: Arc<Replicas>,
    /// The broker URL and queue prefix, to read the commands queue's depth.
    pub depth: Option<(String, String)>,
    pub round: u32,
    /// When the surge started.
    pub epoch: Instant,
    /// Fires once the queue drained (and any cool-down ended).
    pub stop: CancellationToken,
}

/// Faults injected into a local surge while it runs.
pub trait Faults {
    /// Tries per request before a student gives up on it.
    fn patience(&self) -> u32;
    /// Starts injecting; the task returns what happened once
    /// [`Faults::surge_over`] or [`Faults::restore`] stopped it.
    fn start(&self, live: &Live) -> JoinHandle<Vec<FaultRecord>>;
    /// Every student finished: no new fault starts (the one under way
    /// finishes its recovery).
    fn surge_over(&self);
    /// After the drain: the verdict on the faults and the waiting room.
    fn judge<'a>(
        &'a self,
        log: Vec<FaultRecord>,
        live: &'a Live,
        pool: &'a sqlx::MySqlPool,
        stats: &'a Stats,
        report: &'a Report,
    ) -> LocalBoxFuture<'a, anyhow::Result<FaultSummary>>;
    /// Stops injecting for good and brings back whatever a fault left
    /// down. Never fails: it reports. Runs before the cluster's teardown,
    /// whatever happened.
    fn restore(&self) -> LocalBoxFuture<'_, ()>;
}

/// Scales the local cluster's gateways and workers while the surge runs.
pub trait Autoscaling {
    /// Starts reconciling; the task returns the scale events once
    /// `live.stop` fires.
    fn start(&self, live: &Live) -> JoinHandle<Vec<ScaleEvent>>;
    /// After the drain: waits, bounded, for the cluster to scale down.
    fn cool_down<'a>(&'a self, replicas: &'a Replicas) -> LocalBoxFuture<'a, ()>;
}

/// Shows and saves the report; run before the local cluster is torn down.
pub type Publish<'a> = Box<dyn FnOnce(&Report, Option<&Ledger>) -> anyhow::Result<()> + 'a>;
