//! The RabbitMQ fault: the whole node stopped and started again; the
//! commands queue must survive it.

use super::system::{launch, sh, succeeds, wait_until, DEPENDENCY_TIMEOUT};
use super::{Ctx, Server};
use crate::depth::Depth;
use crate::report::FaultRecord;
use anyhow::Context;
use std::time::Duration;

pub(super) async fn port_open(s: &Server) -> bool {
    let connect = tokio::net::TcpStream::connect((s.host.as_str(), s.port));
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

pub(super) async fn rabbitmq_up(s: &Server) -> bool {
    succeeds("rabbitmq-diagnostics", &["-q", "ping"]).await && port_open(s).await
}

pub(super) async fn start_rabbitmq(s: &Server) -> anyhow::Result<()> {
    if !succeeds("rabbitmq-diagnostics", &["-q", "ping"]).await {
        launch("rabbitmq-server", &["-detached"]).await?;
        anyhow::ensure!(
            wait_until(DEPENDENCY_TIMEOUT, || succeeds(
                "rabbitmq-diagnostics",
                &["-q", "ping"]
            ))
            .await,
            "the RabbitMQ node did not answer within {DEPENDENCY_TIMEOUT:?}"
        );
    } else if !port_open(s).await {
        // The node is up with the broker application stopped.
        let _ = sh("rabbitmqctl", &["-q", "start_app"], DEPENDENCY_TIMEOUT).await;
    }
    // The node answers pings before the broker has booted.
    sh(
        "rabbitmqctl",
        &["-q", "--timeout", "120", "await_startup"],
        DEPENDENCY_TIMEOUT + Duration::from_secs(10),
    )
    .await?;
    anyhow::ensure!(
        wait_until(DEPENDENCY_TIMEOUT, || port_open(s)).await,
        "RabbitMQ's AMQP port did not open"
    );
    Ok(())
}

/// Stops the whole node (the Erlang VM exits, as a pod's container would),
/// keeps it down for `down_for` (zero: a restart) and starts it again;
/// quorum queue contents live on disk and must survive it.
pub(super) async fn rabbitmq_down(
    ctx: &Ctx,
    r: &mut FaultRecord,
    down_for: Duration,
) -> anyhow::Result<()> {
    let s = &ctx.faults.amqp;
    r.target = if down_for.is_zero() {
        format!("rabbitmq {}:{}", s.host, s.port)
    } else {
        format!("rabbitmq {}:{} for {down_for:?}", s.host, s.port)
    };
    let stopped = sh("rabbitmqctl", &["-q", "stop"], DEPENDENCY_TIMEOUT).await;
    let down = tokio::time::Instant::now();
    if stopped.is_ok() && !down_for.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep_until(down + down_for) => {}
            // Ctrl-C: the guard brings RabbitMQ back; stop waiting.
            _ = ctx.faults.stop.cancelled() => {}
        }
    }
    let started = start_rabbitmq(s).await;
    if !down_for.is_zero() {
        r.down_s = Some(down.elapsed().as_secs_f64());
    }
    stopped.context("stopping the RabbitMQ node")?;
    started?;
    let mut depth = Depth::new(ctx.faults.amqp_url.clone(), &ctx.prefix);
    r.queue_kept = Some(depth.read().await.is_some());
    depth.close().await;
    anyhow::ensure!(
        r.queue_kept == Some(true),
        "the commands queue was missing after RabbitMQ came back"
    );
    Ok(())
}
