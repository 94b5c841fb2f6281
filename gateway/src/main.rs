//! `sluice-gateway`: parse configuration, start telemetry, serve.

use clap::Parser;
use std::process::ExitCode;

// Request handling allocates many small, short-lived buffers across
// threads; mimalloc's thread-local pools serve that far better than the
// system allocator (measured with `bench gateway`, see docs/bench.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    service::telemetry::init_tracing();
    let config = gateway::config::Config::parse();
    // Configuration mistakes (a port in use, a bad URL, a missing key file)
    // end the process with one line that says what to change.
    let started = async {
        config.check()?;
        let listener = service::bind(config.listen, "SLUICE_LISTEN").await?;
        let ops = match config.metrics_addr {
            Some(addr) => Some(service::bind(addr, "SLUICE_METRICS_ADDR").await?),
            None => None,
        };
        let mut gateway = gateway::Gateway::build(config, None).await?;
        if let Some(ops) = ops {
            gateway = gateway.with_metrics_listener(ops);
        }
        anyhow::Ok((gateway, listener))
    };
    let (gateway, listener) = match started.await {
        Ok(ready) => ready,
        Err(e) => {
            eprintln!("sluice-gateway: {e:#}");
            return ExitCode::from(2);
        }
    };
    match gateway.run(listener, gateway::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}
