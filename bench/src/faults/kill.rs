//! Process faults: a worker or a gateway (the admission leader, or
//! another) SIGKILLed and started again as a Deployment would.

use super::Ctx;
use crate::local::Role;
use crate::report::FaultRecord;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(super) async fn kill_worker(
    ctx: &Ctx,
    rng: &mut ChaCha8Rng,
    r: &mut FaultRecord,
    armed: &CancellationToken,
) -> anyhow::Result<()> {
    {
        let mut c = ctx.cluster.lock().await;
        anyhow::ensure!(!c.workers.is_empty(), "no worker to kill");
        let i = rng.gen_range(0..c.workers.len());
        r.target = c.kill(Role::Worker, i).await?;
    }
    armed.cancel();
    tokio::time::sleep(ctx.faults.restart_after).await;
    ctx.cluster.lock().await.start(Role::Worker, 1).await
}

/// Which gateways say `sluice_waitroom_leader 1` (None: no answer).
pub(super) async fn leaders(http: &reqwest::Client, urls: &[String]) -> Vec<Option<bool>> {
    let reads = urls.iter().map(|u| async move {
        let body = http
            .get(format!("{u}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        leader_flag(&body)
    });
    futures_util::future::join_all(reads).await
}

/// Reads the leader gauge from a Prometheus text exposition.
pub(super) fn leader_flag(metrics: &str) -> Option<bool> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(char::is_whitespace)?;
            (name.trim() == "sluice_waitroom_leader").then(|| value.trim().parse::<f64>().ok())?
        })
        .map(|v| v >= 1.0)
}

/// Index of the gateway holding leadership, or of a random other one.
pub(super) async fn find_gateway(
    ctx: &Ctx,
    rng: &mut ChaCha8Rng,
    leader: bool,
) -> anyhow::Result<usize> {
    // Leadership can be in flux for a moment (another fault just ended):
    // look for a few seconds.
    for _ in 0..50 {
        let urls = ctx.cluster.lock().await.gateway_urls();
        let flags = leaders(&ctx.http, &urls).await;
        let with = |want: bool| -> Vec<usize> {
            flags
                .iter()
                .enumerate()
                .filter(|(_, f)| **f == Some(want))
                .map(|(i, _)| i)
                .collect()
        };
        let candidates = with(leader);
        if !candidates.is_empty() {
            return Ok(candidates[rng.gen_range(0..candidates.len())]);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!(
        "no gateway reported sluice_waitroom_leader {}",
        u8::from(leader)
    )
}

pub(super) async fn kill_gateway(
    ctx: &Ctx,
    victim: usize,
    r: &mut FaultRecord,
    armed: &CancellationToken,
    t0: Instant,
) -> anyhow::Result<()> {
    r.target = ctx.cluster.lock().await.kill(Role::Gateway, victim).await?;
    armed.cancel();
    // Students keep sending to the dead address (connection refused, they
    // retry elsewhere) until the replacement is in the routing, as an
    // endpoint update lags a pod's death.
    let restart = async {
        tokio::time::sleep(ctx.faults.restart_after).await;
        let mut c = ctx.cluster.lock().await;
        let started = c.start(Role::Gateway, 1).await;
        ctx.api.set_gateways(c.gateway_urls());
        started
    };
    let takeover = async {
        let deadline = t0 + ctx.faults.recovery_timeout;
        while Instant::now() < deadline {
            let urls: Vec<String> = ctx.api.gateways().to_vec();
            if leaders(&ctx.http, &urls).await.contains(&Some(true)) {
                return Some(t0.elapsed().as_secs_f64());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    };
    let (started, took_over) = tokio::join!(restart, takeover);
    r.leader_s = took_over;
    started
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_gauge_is_read_from_metrics_text() {
        let text = "# HELP sluice_waitroom_leader x\n# TYPE sluice_waitroom_leader gauge\nsluice_waitroom_leader 1\nsluice_waitroom_leaderx 0\n";
        assert_eq!(leader_flag(text), Some(true));
        assert_eq!(leader_flag("sluice_waitroom_leader 0\n"), Some(false));
        assert_eq!(leader_flag("other 1\n"), None);
    }
}
