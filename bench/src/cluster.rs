//! `bench cluster`: a local surge with an emulated HorizontalPodAutoscaler
//! for each deployment (see [`crate::autoscale`]); this file turns the
//! flags into the autoscaler's settings.

use crate::autoscale;
use crate::engine::{self, Engine};
use crate::flags::parse_duration;
use crate::hpa::{self, Rules, Select};
use crate::report::{self, Output};
use clap::Args as ClapArgs;
use std::time::Duration;

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub surge: engine::Args,
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
    let hpa = autoscale::Hpa {
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
    let out = Output {
        json: args.surge.report.clone(),
        charts: args.surge.charts.clone(),
    };
    let publish = Box::new(|r: &report::Report, ledger: Option<&_>| {
        report::print(r);
        report::save(r, ledger, &out)
    });
    let report = Engine::new(args.surge)
        .with_autoscaling(hpa)
        .run(publish)
        .await?;
    report::verdict(&report)
}
