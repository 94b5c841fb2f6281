//! `bench cluster`: a local surge with an emulated HorizontalPodAutoscaler
//! for each deployment: workers scaled on ready commands per worker (the
//! External metric of decision 020), gateways on CPU utilization read from
//! `/proc`. Scale-up starts processes and waits until they are ready;
//! scale-down takes a gateway out of the routing before SIGTERM, and sends
//! a worker SIGTERM so it finishes its batch and requeues the rest.

use crate::hpa::{self, Autoscaler, Metric, Rules, Select};
use crate::local::{Local, Replicas, Role};
use crate::report::Depth;
use crate::surge::{self, parse_duration};
use clap::Args as ClapArgs;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a gateway taken out of the routing keeps serving before
/// SIGTERM (what an endpoint update plus `preStop` give a pod).
const DRAIN_BEFORE_STOP: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub surge: surge::Args,
    /// Fewest workers the autoscaler keeps.
    #[arg(long, default_value_t = 1)]
    pub min_workers: u32,
    /// Most workers (bound it by MySQL connections in production).
    #[arg(long, default_value_t = 6)]
    pub max_workers: u32,
    /// Target ready commands per worker (AverageValue).
    #[arg(long, default_value_t = 200.0)]
    pub worker_target: f64,
    #[arg(long, default_value_t = 1)]
    pub min_gateways: u32,
    #[arg(long, default_value_t = 4)]
    pub max_gateways: u32,
    /// CPU a gateway "requests", in cores; utilization is measured against it.
    #[arg(long, default_value_t = 0.5)]
    pub gateway_cpu_request: f64,
    /// Target CPU utilization of gateways, percent of the request.
    #[arg(long, default_value_t = 70.0)]
    pub gateway_cpu_target: f64,
    /// How often the autoscaler reconciles (the controller's sync period).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub sync_period: Duration,
    /// Scale-down stabilization window (Kubernetes: 300s).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub scale_down_window: Duration,
    /// Period of the default scaling policies (Kubernetes: 15s).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub policy_period: Duration,
    /// Which scale-up policy wins (Kubernetes: max).
    #[arg(long, value_enum, default_value_t = Select::Max)]
    pub scale_up_select: Select,
    /// Tolerance around a ratio of 1 (Kubernetes: 0.1).
    #[arg(long, default_value_t = 0.1)]
    pub tolerance: f64,
    /// After the queue drained, how long to wait for the scale-down.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    pub cool_down: Duration,
}

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

/// One scaling step, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleEvent {
    pub t_s: f64,
    pub deployment: &'static str,
    pub from: u32,
    pub to: u32,
    /// The metric that drove it: ready messages, or CPU utilization %.
    pub metric: f64,
}

fn spec(args: &Args, min: u32, max: u32) -> hpa::Spec {
    // Kubernetes' default behavior with the policy period shortened, so a
    // bench-length surge shows whole scaling cycles.
    let mut up = Rules::default_up();
    up.select = args.scale_up_select;
    let mut down = Rules::default_down();
    down.stabilization = args.scale_down_window;
    for p in up.policies.iter_mut().chain(down.policies.iter_mut()) {
        p.period = args.policy_period;
    }
    hpa::Spec {
        min_replicas: min,
        max_replicas: max.max(min),
        tolerance: args.tolerance,
        scale_up: up,
        scale_down: down,
    }
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.min_workers >= 1 && args.min_gateways >= 1,
        "keep at least one worker and one gateway"
    );
    args.surge.local = true;
    args.surge.base_url.clear();
    let hpa = Hpa {
        period: args.sync_period,
        workers: spec(&args, args.min_workers, args.max_workers),
        worker_target: args.worker_target,
        gateways: spec(&args, args.min_gateways, args.max_gateways),
        gateway_cpu_request: args.gateway_cpu_request,
        gateway_cpu_target: args.gateway_cpu_target,
        cool_down: args.cool_down,
    };
    println!(
        "cluster: workers {}..{} at {} ready/worker, gateways {}..{} at {}% of {} core(s); sync {:?}, scale-down window {:?}",
        args.min_workers,
        args.max_workers,
        args.worker_target,
        args.min_gateways,
        args.max_gateways,
        args.gateway_cpu_target,
        args.gateway_cpu_request,
        args.sync_period,
        args.scale_down_window
    );
    surge::run_with(args.surge, Some(hpa)).await
}

/// Reconciles both deployments every period until `stop`; returns the
/// scale events.
pub async fn autoscale(
    hpa: Hpa,
    cluster: Arc<Mutex<Local>>,
    api: Arc<crate::client::Api>,
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

async fn scale(c: &mut Local, api: &crate::client::Api, role: Role, from: u32, to: u32) {
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
