//! `bench`: measures Sluice on this machine. See `docs/bench.md`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

use clap::{Parser, Subcommand};

mod analysis;
mod arrivals;
mod autoscale;
mod chaos;
mod client;
mod cluster;
mod depth;
mod engine;
mod fairness;
mod faults;
mod fixture;
mod flags;
mod gateway;
mod hpa;
mod ledger;
mod local;
mod promises;
mod report;
mod scenario;
mod stats;
mod student;
mod surge;
mod svg;

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Measure Sluice: throughput, latency, fairness and correctness."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Worker throughput: batched decisions vs one transaction per command.
    Ledger(ledger::Args),
    /// A registration-day surge against a deployment or a local cluster.
    Surge(Box<surge::Args>),
    /// One gateway: status polls/s and joins/s against a bare hyper baseline.
    Gateway(Box<gateway::Args>),
    /// A local surge with emulated HPAs scaling gateways and workers.
    Cluster(Box<cluster::Args>),
    /// A local surge with faults injected: kills, restarts, cut connections.
    Chaos(Box<chaos::Args>),
}

// Request handling allocates many small, short-lived buffers across
// threads; mimalloc's thread-local pools serve that far better than the
// system allocator (measured with `bench gateway`, see docs/bench.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service::telemetry::init_tracing();
    match Cli::parse().command {
        Cmd::Ledger(args) => ledger::run(args).await,
        Cmd::Surge(args) => Box::pin(surge::run(*args)).await,
        Cmd::Cluster(args) => Box::pin(cluster::run(*args)).await,
        Cmd::Gateway(args) => Box::pin(gateway::run(*args)).await,
        Cmd::Chaos(args) => Box::pin(chaos::run(*args)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_is_a_valid_clap_command() {
        Cli::command().debug_assert();
    }
}
