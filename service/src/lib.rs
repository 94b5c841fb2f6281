//! What every Sluice process (gateway, worker, bench) shares at its edges.
//!
//! # Layout
//! - [`bind`]: opens a listening port, or says in one line which setting to
//!   change when it cannot.
//! - [`shutdown_signal`]: resolves on SIGINT or SIGTERM;
//!   [`cancel_on_signal`] turns it into a cancelled token.
//! - [`telemetry`]: logging from the environment and the Prometheus
//!   recorder, given each binary's histogram buckets.
//! - [`connections`]: the database and broker URLs, secrets that cannot be
//!   printed.
//!
//! This crate depends on no other Sluice crate; every binary depends on it.

pub mod connections;
pub mod telemetry;

use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Binds `addr`, which came from the setting `var`. The error names the
/// setting and what to do, because it is the last line an operator sees.
pub async fn bind(addr: SocketAddr, var: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let advice = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "another process is listening there; set it to a free address"
            }
            std::io::ErrorKind::PermissionDenied => {
                "this user may not listen there; use a port above 1023"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "no interface of this machine has that address; use 0.0.0.0 or 127.0.0.1"
            }
            _ => "check the address",
        };
        anyhow::anyhow!("cannot listen on {var}={addr} ({e}): {advice}")
    })
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}

/// Cancels `token` on SIGINT or SIGTERM, for processes whose tasks watch a
/// token rather than a future.
pub async fn cancel_on_signal(token: CancellationToken) {
    shutdown_signal().await;
    token.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_names_the_setting_and_what_to_do() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = taken.local_addr().expect("addr");
        let err = bind(addr, "SLUICE_LISTEN").await.expect_err("in use");
        let line = format!("{err:#}");
        assert!(line.contains(&format!("SLUICE_LISTEN={addr}")), "{line}");
        assert!(line.contains("set it to a free address"), "{line}");
        assert!(!line.contains('\n'), "one line: {line}");
    }
}
