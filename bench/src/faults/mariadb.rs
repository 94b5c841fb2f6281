//! MariaDB faults: a restart, and an outage longer than the gateways'
//! grace period after which admission must resume at the configured pace.

use super::system::{launch, sh, succeeds, wait_until, DEPENDENCY_TIMEOUT};
use super::{Chaos, Ctx, Server};
use crate::report::FaultRecord;
use crate::stats::Stats;
use anyhow::Context;
use std::time::Duration;
use tokio::time::Instant;

/// How long admissions are counted once they resume after an outage.
const PACE_WINDOW: Duration = Duration::from_secs(10);
/// Admissions per minute after an outage within this factor of the
/// target count as the configured pace (the leader admits by ticks, and
/// the window is short).
const PACE_TOLERANCE: f64 = 1.25;

pub(super) fn mysql_args<'a>(s: &'a Server, port: &'a str, command: &'a str) -> Vec<&'a str> {
    let mut args = vec!["-h", s.host.as_str(), "-P", port];
    if !s.user.is_empty() {
        args.extend(["-u", s.user.as_str()]);
    }
    args.extend(["--connect-timeout=2", command]);
    args
}

pub(super) async fn mariadb_up(s: &Server) -> bool {
    let port = s.port.to_string();
    succeeds("mysqladmin", &mysql_args(s, &port, "ping")).await
}

/// The MariaDB server binary the faults stop and start.
const MARIADBD: &str = "/usr/sbin/mariadbd";

/// Whether a live mariadbd runs, as start-stop-daemon judges it (by the
/// process's executable): a process that exited but was not yet reaped by
/// its parent (an init that reaps late) still shows in `pgrep`, and would
/// hold a restart back.
async fn mariadbd_running() -> bool {
    succeeds("start-stop-daemon", &["--status", "--exec", MARIADBD]).await
}

pub(super) async fn start_mariadb(s: &Server) -> anyhow::Result<()> {
    // /run is a tmpfs: the socket directory may be gone, and mariadbd
    // (which drops to the mysql user) cannot create it.
    if !std::path::Path::new("/run/mysqld").is_dir() {
        sh(
            "install",
            &["-d", "-o", "mysql", "-g", "mysql", "/run/mysqld"],
            Duration::from_secs(10),
        )
        .await?;
    }
    // start-stop-daemon starts nothing while a mariadbd still runs (a
    // shutdown that is not finished counts), and a server that then exits
    // would stay down: start whenever no mariadbd runs and MariaDB does not
    // answer, until it answers.
    let deadline = Instant::now() + DEPENDENCY_TIMEOUT;
    let mut launched: anyhow::Result<()> = Ok(());
    loop {
        if mariadb_up(s).await {
            return Ok(());
        }
        if Instant::now() >= deadline {
            launched?;
            anyhow::bail!("MariaDB did not answer within {DEPENDENCY_TIMEOUT:?} of starting");
        }
        if !mariadbd_running().await {
            launched = launch(
                "start-stop-daemon",
                &["--start", "--oknodo", "--background", "--exec", MARIADBD],
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(super) async fn restart_mariadb(f: &Chaos, r: &mut FaultRecord) -> anyhow::Result<()> {
    r.target = format!("mariadb {}:{}", f.mysql.host, f.mysql.port);
    let port = f.mysql.port.to_string();
    let stopped = sh(
        "mysqladmin",
        &mysql_args(&f.mysql, &port, "shutdown"),
        DEPENDENCY_TIMEOUT,
    )
    .await;
    // `--oknodo` would take a server still shutting down for a running one.
    let gone = wait_until(DEPENDENCY_TIMEOUT, || async { !mariadbd_running().await }).await;
    let started = start_mariadb(&f.mysql).await;
    stopped.context("shutting MariaDB down")?;
    anyhow::ensure!(
        gone,
        "mariadbd was still running {DEPENDENCY_TIMEOUT:?} after shutdown"
    );
    started
}

/// Stops MariaDB, keeps it down for `--outage-for` from the moment it
/// stopped answering, and starts it again.
pub(super) async fn mariadb_outage(f: &Chaos, r: &mut FaultRecord) -> anyhow::Result<()> {
    r.target = format!(
        "mariadb {}:{} for {:?}",
        f.mysql.host, f.mysql.port, f.outage_for
    );
    let port = f.mysql.port.to_string();
    let stopped = sh(
        "mysqladmin",
        &mysql_args(&f.mysql, &port, "shutdown"),
        DEPENDENCY_TIMEOUT,
    )
    .await;
    let down = Instant::now();
    let gone = wait_until(DEPENDENCY_TIMEOUT, || async { !mariadbd_running().await }).await;
    if stopped.is_ok() && gone {
        tokio::select! {
            _ = tokio::time::sleep_until(down + f.outage_for) => {}
            // Ctrl-C: the guard brings MariaDB back; stop waiting.
            _ = f.stop.cancelled() => {}
        }
    }
    let started = start_mariadb(&f.mysql).await;
    r.down_s = Some(down.elapsed().as_secs_f64());
    stopped.context("shutting MariaDB down")?;
    anyhow::ensure!(
        gone,
        "mariadbd was still running {DEPENDENCY_TIMEOUT:?} after shutdown"
    );
    started
}

/// Skipped tickets, reclaimed tickets (`None` without the column) and
/// admitted tickets of the round.
pub(super) async fn ticket_counts(
    pool: &sqlx::MySqlPool,
    round: u32,
) -> Option<(u64, Option<u64>, u64)> {
    let read = sqlx::query_as::<_, (i64, i64)>(
        // SUM is DECIMAL in MySQL and MariaDB; cast it to what is decoded.
        "SELECT CAST(COALESCE(SUM(state = 'skipped'), 0) AS SIGNED), \
         CAST(COALESCE(SUM(admitted_at IS NOT NULL), 0) AS SIGNED) \
         FROM tickets WHERE round_id = ?",
    )
    .bind(round)
    .fetch_one(pool);
    let (skipped, admitted) = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()?
        .ok()?;
    let reclaimed = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM tickets WHERE round_id = ? AND reclaimed_at IS NOT NULL",
    )
    .bind(round)
    .fetch_one(pool);
    let reclaimed = match tokio::time::timeout(Duration::from_secs(5), reclaimed).await {
        Ok(Ok(n)) => Some(u64::try_from(n).unwrap_or(0)),
        _ => None,
    };
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Some((n(skipped), reclaimed, n(admitted)))
}

/// Once admission moved after an outage: counts admissions over
/// `PACE_WINDOW` against the configured rate, then the tickets skipped
/// and reclaimed since just before the outage.
pub(super) async fn after_outage(
    ctx: &Ctx,
    before: Option<(u64, Option<u64>, u64)>,
    r: &mut FaultRecord,
) {
    let start = ticket_counts(&ctx.pool, ctx.round).await;
    let t = Instant::now();
    tokio::time::sleep(PACE_WINDOW).await;
    let end = ticket_counts(&ctx.pool, ctx.round).await;
    let still_waiting = Stats::get(&ctx.api.stats.waiting) > 0;
    if let (Some(start), Some(end)) = (start, end) {
        let per_min = end.2.saturating_sub(start.2) as f64 * 60.0 / t.elapsed().as_secs_f64();
        r.admission_per_min_after = Some(per_min);
        r.pace_held = still_waiting.then(|| pace_held(per_min, ctx.faults.rate));
    }
    if let (Some(before), Some(end)) = (before, end) {
        r.skipped_after = Some(end.0.saturating_sub(before.0));
        r.reclaimed_after = before.1.zip(end.1).map(|(b, e)| e.saturating_sub(b));
    }
}

/// Whether `per_min` admissions a minute is the configured `rate`.
pub(super) fn pace_held(per_min: f64, rate: u32) -> bool {
    let target = f64::from(rate);
    per_min >= target / PACE_TOLERANCE && per_min <= target * PACE_TOLERANCE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_after_an_outage_is_the_target_within_the_tolerance() {
        assert!(pace_held(6000.0, 6000));
        assert!(pace_held(5000.0, 6000));
        assert!(!pace_held(4000.0, 6000), "too slow");
        assert!(!pace_held(9000.0, 6000), "a stampede");
    }
}
