//! `bench`: measures Sluice on this machine. See `docs/bench.md`.
//!
//! # Layout
//! Commands (thin: flags in, report out), each a file:
//! - `surge`: a registration-day surge; `chaos`: the same with faults;
//!   `cluster`: the same under emulated autoscalers; `gateway`: polls and
//!   joins of one gateway against a bare server (and, with
//!   `--instructions`, instructions per request counted by `callgrind`);
//!   `ledger`: how fast workers decide; `rehearse`: a bounded surge
//!   against a deployment's rehearsal round, reported to its ops panel.
//!
//! The engine and its plug-ins:
//! - `engine/`: runs a surge (the crowd, sign-in, tallies, the sampler) on
//!   a deployment or on a `local` cluster, and knows no plug-in by name: it
//!   calls the `Faults` and `Autoscaling` traits it is given.
//! - `faults/` (one file per fault, and the verdict) and `autoscale` (with
//!   `hpa`, the autoscaler's algorithm) implement them.
//!
//! What they share, below them:
//! - `student`, `client`, `arrivals`, `scenario`: the simulated students,
//!   the API they call, when they come and what they want.
//! - `stats`, `fairness`, `promises`, `analysis`: what was observed, and
//!   what it says (order, estimates, places kept, invariants).
//! - `report`, `svg`: the JSON report, the printed table and the charts.
//! - `local`, `fixture`, `depth`, `flags`: processes, throw-away databases
//!   and queues, the queue depth read from RabbitMQ, shared flag parsers.
//!
//! Direction: commands → engine → plug-ins → shared modules; nothing imports
//! a module above it (no cycles).

#![cfg_attr(test, allow(clippy::unwrap_used))]

use clap::{Parser, Subcommand};

mod analysis;
mod arrivals;
mod autoscale;
mod callgrind;
mod chaos;
mod choices;
mod classes;
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
mod rehearsal;
mod report;
mod scenario;
mod stats;
mod student;
mod surge;
mod svg;
mod tokens;

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
    /// A bounded surge against a deployment's rehearsal round (refused by
    /// the gateway unless the round is marked as a rehearsal); the report
    /// goes to the deployment's ops panel.
    Rehearse(Box<surge::Args>),
    /// One gateway: status polls/s and joins/s against a bare hyper baseline.
    Gateway(Box<gateway::Args>),
    /// A local surge with emulated HPAs scaling gateways and workers.
    Cluster(Box<cluster::Args>),
    /// A local surge with faults injected: kills, restarts, cut connections.
    Chaos(Box<chaos::Args>),
    /// The time to verify a queue token in each form, on this CPU.
    Tokens(tokens::Args),
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
        Cmd::Rehearse(args) => Box::pin(rehearsal::run(*args)).await,
        Cmd::Cluster(args) => Box::pin(cluster::run(*args)).await,
        Cmd::Gateway(args) => Box::pin(gateway::run(*args)).await,
        Cmd::Chaos(args) => Box::pin(chaos::run(*args)).await,
        Cmd::Tokens(args) => tokens::run(args),
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
