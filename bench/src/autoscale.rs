//! The autoscaling plug-in of a local surge: an emulated
//! HorizontalPodAutoscaler for each deployment, workers scaled on ready
//! commands per worker (the External metric of decision 020), gateways on
//! CPU utilization read from `/proc`. Scale-up starts processes and waits
//! until they are ready; scale-down takes a gateway out of the routing
//! before SIGTERM, and sends a worker SIGTERM so it finishes its batch and
//! requeues the rest.

use crate::client::Api;
use crate::depth::Depth;
use crate::engine::{Autoscaling, Live};
use crate::hpa::{self, Autoscaler, Metric};
use crate::local::{Local, Replicas, Role};
use crate::report::ScaleEvent;
use futures_util::future::LocalBoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a gateway taken out of the routing keeps serving before
/// SIGTERM (what an endpoint update plus `preStop` give a pod).
const DRAIN_BEFORE_STOP: Duration = Duration::from_secs(2);

/// The autoscaler's settings for one run.
#[derive(Debug, Clone)]
pub struct Hpa {
    pub period: Duration,
    pub workers: hpa::Spec,
    pub worker_target: f64,
    pub gateways: hpa::Spec,
    pub gateway_cpu_request: f64,
    pub gateway_cpu_target: f64,
    pub cool_down: Duration,
}

impl Autoscaling for Hpa {
    fn start(&self, live: &Live) -> JoinHandle<Vec<ScaleEvent>> {
        tokio::spawn(autoscale(
            self.clone(),
            Arc::clone(&live.cluster),
            Arc::clone(&live.api),
            Arc::clone(&live.replicas),
            live.depth.clone(),
            live.epoch,
            live.stop.clone(),
        ))
    }

    fn cool_down<'a>(&'a self, replicas: &'a Replicas) -> LocalBoxFuture<'a, ()> {
        Box::pin(cool_down(self, replicas))
    }
}

/// Lets the autoscaler scale the workers back down (bounded in time).
async fn cool_down(hpa: &Hpa, replicas: &Replicas) {
    let deadline = Instant::now() + hpa.cool_down;
    println!(
        "surge: waiting up to {:?} for the autoscaler to scale down",
        hpa.cool_down
    );
    while Instant::now() < deadline {
        if replicas.get(Role::Worker) <= hpa.workers.min_replicas as usize
            && replicas.get(Role::Gateway) <= hpa.gateways.min_replicas as usize
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
/// Reconciles both deployments every period until `stop`; returns the
/// scale events.
async fn autoscale(
    hpa: Hpa,
    cluster: Arc<Mutex<Local>>,
    api: Arc<Api>,
    replicas: Arc<Replicas>,
    depth: Option<(String, String)>,
    epoch: Instant,
    stop: CancellationToken,
) -> Vec<ScaleEvent> {
    let mut depth = depth.map(|(url, prefix)| Depth::new(url, &prefix));
    let mut workers = Autoscaler::new(hpa.workers.clone());
    let mut gateways = Autoscaler::new(hpa.gateways.clone());
    let mut events = Vec::new();
    let mut interval = tokio::time::interval(hpa.period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => break,
        }
        let ready = match depth.as_mut() {
            Some(d) => d.read().await,
            None => None,
        };
        let mut c = cluster.lock().await;
        let now = epoch.elapsed();

        // Workers: a missing metric means no change, as in the controller.
        if let Some(ready) = ready {
            let current = u32::try_from(c.workers.len()).unwrap_or(u32::MAX);
            let metric = Metric::AverageValue {
                total: f64::from(ready),
                target: hpa.worker_target,
            };
            let desired = workers.reconcile(now, current, metric);
            if desired != current {
                events.push(event(now, "worker", current, desired, f64::from(ready)));
                scale(&mut c, &api, Role::Worker, current, desired).await;
                replicas.set(Role::Worker, c.workers.len());
            }
        }

        // Gateways: average CPU of the gateways that have a reading.
        let cpu: Vec<f64> = c
            .gateways
            .iter_mut()
            .filter_map(|g| g.cpu_cores())
            .collect();
        if !cpu.is_empty() {
            let current = u32::try_from(c.gateways.len()).unwrap_or(u32::MAX);
            let utilization =
                cpu.iter().sum::<f64>() / cpu.len() as f64 / hpa.gateway_cpu_request.max(1e-3)
                    * 100.0;
            let metric = Metric::Utilization {
                average: utilization,
                target: hpa.gateway_cpu_target,
            };
            let desired = gateways.reconcile(now, current, metric);
            if desired != current {
                events.push(event(now, "gateway", current, desired, utilization));
                scale(&mut c, &api, Role::Gateway, current, desired).await;
                replicas.set(Role::Gateway, c.gateways.len());
            }
        }
    }
    if let Some(d) = depth {
        d.close().await;
    }
    events
}

fn event(now: Duration, deployment: &'static str, from: u32, to: u32, metric: f64) -> ScaleEvent {
    println!(
        "[{:>5.0}s] autoscaler: {deployment}s {from} -> {to} (metric {metric:.0})",
        now.as_secs_f64()
    );
    ScaleEvent {
        t_s: now.as_secs_f64(),
        deployment,
        from,
        to,
        metric,
    }
}

async fn scale(c: &mut Local, api: &Api, role: Role, from: u32, to: u32) {
    if to > from {
        let n = (to - from) as usize;
        if let Err(e) = c.start(role, n).await {
            println!("autoscaler: starting {n} process(es) failed: {e:#}");
        }
        if role == Role::Gateway {
            api.set_gateways(c.gateway_urls());
        }
        return;
    }
    for _ in to..from {
        if role == Role::Gateway {
            let mut urls = c.gateway_urls();
            urls.pop();
            api.set_gateways(urls);
            tokio::time::sleep(DRAIN_BEFORE_STOP).await;
        }
        if let Err(e) = c.stop_newest(role).await {
            println!("autoscaler: stopping a process failed: {e:#}");
        }
    }
}
