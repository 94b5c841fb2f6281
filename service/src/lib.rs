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

/// Connections the kernel may hold for a listener before it accepts them
/// (capped by `net.core.somaxconn`, 4096 by default on Linux). The
/// standard library's 128 overflowed in a surge: a connection the queue
/// has no room for loses its SYN, and its client waits a second before
/// trying again.
pub const LISTEN_BACKLOG: u32 = 4_096;

/// Binds `addr`, which came from the setting `var`, with a listen queue of
/// [`LISTEN_BACKLOG`]. The error names the setting and what to do, because
/// it is the last line an operator sees.
pub async fn bind(addr: SocketAddr, var: &str) -> anyhow::Result<TcpListener> {
    let listen = || {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // As the standard library's bind does: a restarted process can
        // listen again at once while the last one's connections linger.
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|e: std::io::Error| {
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

    /// A surge's connections arrive faster than any accept loop takes
    /// them, and each one the kernel's accept queue has no room for loses
    /// its SYN: the client tries again only after a second (then three,
    /// then seven). A listener that takes five hundred connections at
    /// once, none accepted yet, keeps every one of them waiting in the
    /// queue. (The kernel caps the queue at `net.core.somaxconn`: 4,096 by
    /// default since Linux 5.4.)
    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_queue_not_in_retransmits() {
        const BURST: usize = 500;
        let listener = bind("127.0.0.1:0".parse().unwrap(), "SLUICE_LISTEN")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connects = (0..BURST).map(|_| async move {
            // Under a second: a dropped SYN is retried only after one.
            tokio::time::timeout(
                std::time::Duration::from_millis(800),
                tokio::net::TcpStream::connect(addr),
            )
            .await
        });
        let done = futures_util::future::join_all(connects).await;
        let connected = done.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
        let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn");
        assert_eq!(
            connected, BURST,
            "connections beyond the listen queue waited for a retransmit \
             (net.core.somaxconn: {somaxconn:?})"
        );
        drop(listener);
    }

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
