//! `sluice-worker`: see the library docs.

use clap::Parser;
use tokio_util::sync::CancellationToken;

// Request handling allocates many small, short-lived buffers across
// threads; mimalloc's thread-local pools serve that far better than the
// system allocator (measured with `bench gateway`, see docs/bench.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    worker::telemetry::init_logging();
    let config = worker::config::Config::parse().resolve_secrets()?;
    let listener = tokio::net::TcpListener::bind(config.metrics_addr).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(worker::cancel_on_signal(shutdown.clone()));
    worker::run(config, listener, shutdown).await
}
