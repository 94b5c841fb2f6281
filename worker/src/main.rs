//! `sluice-worker`: see the library docs.

use clap::Parser;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

// Request handling allocates many small, short-lived buffers across
// threads; mimalloc's thread-local pools serve that far better than the
// system allocator (measured with `bench gateway`, see docs/bench.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    service::telemetry::init_tracing();
    // Configuration mistakes (a port in use, a bad URL, a missing key file)
    // end the process with one line that says what to change.
    let started = async {
        let config = worker::config::Config::parse().resolve_secrets()?;
        config.check()?;
        let listener = service::bind(config.metrics_addr, "SLUICE_METRICS_ADDR").await?;
        anyhow::Ok((config, listener))
    };
    let (config, listener) = match started.await {
        Ok(ready) => ready,
        Err(e) => {
            eprintln!("sluice-worker: {e:#}");
            return ExitCode::from(2);
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(service::cancel_on_signal(shutdown.clone()));
    match worker::run(config, listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
