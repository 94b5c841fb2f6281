//! The RabbitMQ faults: the whole node stopped and started again, at once
//! or after an outage; the commands queue must survive it.

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
/// keeps it down for `outage` (`None`: a restart, started again at once)
/// and starts it again; quorum queue contents live on disk and must survive
/// it. Interrupted (Ctrl-C), it leaves the start to the interrupt guard, so
/// that two starts do not race.
pub(super) async fn rabbitmq_down(
    ctx: &Ctx,
    r: &mut FaultRecord,
    outage: Option<Duration>,
) -> anyhow::Result<()> {
    let s = &ctx.faults.amqp;
    r.target = match outage {
        None => format!("rabbitmq {}:{}", s.host, s.port),
        Some(d) => format!("rabbitmq {}:{} for {d:?}", s.host, s.port),
    };
    let stopped = sh("rabbitmqctl", &["-q", "stop"], DEPENDENCY_TIMEOUT).await;
    let down = tokio::time::Instant::now();
    if let (Ok(_), Some(d)) = (&stopped, outage) {
        tokio::select! {
            _ = tokio::time::sleep_until(down + d) => {}
            _ = ctx.faults.stop.cancelled() => {}
        }
    }
    anyhow::ensure!(
        !ctx.faults.stop.is_cancelled(),
        "interrupted; RabbitMQ is started by the interrupt guard"
    );
    let started = start_rabbitmq(s).await;
    if outage.is_some() {
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
