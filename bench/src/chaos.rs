//! `bench chaos`: a local surge (the `surge --local` machinery) with faults
//! injected on a schedule; see [`crate::faults`] for the faults and the
//! verdict.

use crate::engine::{self, Engine};
use crate::faults::{self, parse_spec, Chaos, Server, Spec};
use crate::flags::parse_duration;
use crate::report::{self, Output};
use clap::Args as ClapArgs;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub surge: engine::Args,
    /// A fault, `KIND@AT[/EVERY[/COUNT]]` (repeatable): KIND is worker-kill,
    /// rabbitmq-restart, mariadb-restart, mariadb-outage, rabbitmq-outage,
    /// leader-kill, gateway-kill or db-cut; AT is from the start of the
    /// surge. Default: each kind but the two outages once, worker-kill four
    /// times.
    #[arg(long = "fault", value_parser = parse_spec)]
    pub faults: Vec<Spec>,
    /// Tries per request before a student gives up on it (a browser page
    /// that keeps retrying; `bench surge` uses 8).
    #[arg(long, default_value_t = 60)]
    pub patience: u32,
    /// Longest a fault may take to recover before it counts as not recovered.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    pub recovery_timeout: Duration,
    /// Delay before a killed gateway or worker is started again.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub restart_after: Duration,
    /// How long `mariadb-outage` and `rabbitmq-outage` keep their server
    /// down (for MariaDB, longer than the gateways' grace,
    /// SLUICE_GRACE_SECS, 60 s by default).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub outage_for: Duration,
    /// Longest wait, before the run, for a test suite using the shared
    /// MariaDB/RabbitMQ to finish.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub wait_for_tests: Duration,
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    args.surge.local = true;
    args.surge.base_url.clear();
    let schedule = if args.faults.is_empty() {
        faults::default_schedule()
    } else {
        args.faults.clone()
    };
    let chaos = Chaos {
        mysql: Server::parse(&args.surge.mysql, 3306)?,
        amqp: Server::parse(&args.surge.amqp_url, 5672)?,
        amqp_url: args.surge.amqp_url.clone(),
        schedule,
        patience: args.patience,
        recovery_timeout: args.recovery_timeout,
        restart_after: args.restart_after,
        outage_for: args.outage_for,
        rate: args.surge.rate,
        seed: args.surge.seed,
        stop: CancellationToken::new(),
        surge_over: CancellationToken::new(),
    };
    chaos.prepare(args.wait_for_tests).await?;
    let out = Output {
        json: args.surge.report.clone(),
        charts: args.surge.charts.clone(),
    };
    let publish = Box::new(|r: &report::Report, ledger: Option<&_>| {
        report::print(r);
        if let Some(summary) = &r.chaos {
            faults::print(summary);
        }
        report::save(r, ledger, &out)
    });
    let report = Engine::new(args.surge)
        .with_faults(chaos)
        .run(publish)
        .await?;
    report::verdict(&report)
}
