//! `sluice-gateway`: parse configuration, start telemetry, serve.

use anyhow::Context;
use clap::Parser;

// Request handling allocates many small, short-lived buffers across
// threads; mimalloc's thread-local pools serve that far better than the
// system allocator (measured with `bench gateway`, see docs/bench.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gateway::telemetry::init_tracing();
    let config = gateway::config::Config::parse();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let gateway = gateway::Gateway::build(config, None).await?;
    gateway.run(listener, gateway::shutdown_signal()).await
}
