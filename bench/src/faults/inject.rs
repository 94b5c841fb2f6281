//! The injector: runs the schedule one fault after another, each injected
//! and then watched until commits and admission move again (or
//! `--recovery-timeout` passed), so every recovery time belongs to one
//! fault.

use super::broker::rabbitmq_down;
use super::db_cut::{cut_worker_connections, find_worker_connections, Connections};
use super::kill::{find_gateway, kill_gateway, kill_worker};
use super::mariadb::{after_outage, mariadb_outage, restart_mariadb, ticket_counts};
use super::system::tests_running;
use super::{expand, interrupt_guard, progress, Chaos, Ctx, Kind};
use crate::client::Api;
use crate::local::Local;
use crate::report::FaultRecord;
use crate::stats::Stats;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often recovery is watched.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// Injects the schedule into the running surge; returns what happened.
pub async fn inject(
    faults: Chaos,
    cluster: Arc<Mutex<Local>>,
    api: Arc<Api>,
    round: u32,
    epoch: Instant,
) -> Vec<FaultRecord> {
    tokio::spawn(interrupt_guard(faults.clone(), Arc::downgrade(&cluster)));
    let (pool, db_name, prefix) = {
        let c = cluster.lock().await;
        let name = c.db.url.rsplit('/').next().unwrap_or("").to_string();
        (c.db.pool.clone(), name, c.prefix.clone())
    };
    let http = match reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            println!("chaos: no HTTP client ({e}); no fault injected");
            return Vec::new();
        }
    };
    let ctx = Ctx {
        faults,
        cluster,
        api,
        pool,
        db_name,
        prefix,
        round,
        http,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.faults.seed ^ 0xc4a0_5c4a_05c4_a05c);
    let mut log = Vec::new();
    for (due, kind) in expand(&ctx.faults.schedule) {
        tokio::select! {
            _ = tokio::time::sleep_until(epoch + due) => {}
            _ = ctx.faults.surge_over.cancelled() => break,
            _ = ctx.faults.stop.cancelled() => break,
        }
        if ctx.faults.surge_over.is_cancelled() || ctx.faults.stop.is_cancelled() {
            break;
        }
        let mut record = FaultRecord::new(kind.name(), due, epoch.elapsed());
        println!(
            "[{:>5.0}s] chaos: {} (due at {:.0}s)",
            record.at_s,
            kind.name(),
            due.as_secs_f64()
        );
        one(&ctx, &mut rng, kind, &mut record).await;
        println!(
            "[{:>5.0}s] chaos: {} on {}: {}",
            epoch.elapsed().as_secs_f64(),
            kind.name(),
            if record.target.is_empty() {
                "-"
            } else {
                &record.target
            },
            describe(&record)
        );
        log.push(record);
    }
    log
}

pub(super) fn describe(r: &FaultRecord) -> String {
    if !r.ran {
        return format!("not run ({})", r.note);
    }
    let s = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} s"));
    format!(
        "restored {}, commits {}, admission {}{}{}{}",
        s(r.restored_s),
        s(r.commits_resumed_s),
        s(r.admission_resumed_s),
        r.leader_s
            .map_or(String::new(), |v| format!(", leader {v:.1} s")),
        r.down_s.map_or(String::new(), |d| format!(
            "; down {d:.0} s, then {} skipped, {} reclaimed, {} admitted /min",
            r.skipped_after.map_or("-".to_string(), |n| n.to_string()),
            r.reclaimed_after.map_or("-".to_string(), |n| n.to_string()),
            r.admission_per_min_after
                .map_or("-".to_string(), |n| format!("{n:.0}")),
        )),
        if r.recovered {
            String::new()
        } else {
            format!("; NOT RECOVERED {}", r.note)
        }
    )
}

/// Injects one fault and watches its recovery.
///
/// The watch starts once the fault has hit: right after the kill for
/// processes (the rest of the system carries on meanwhile, so progress
/// may never stop), after the restart for MariaDB and RabbitMQ (nothing
/// can progress while they are down, and work decided just before the
/// stop must not count as recovery).
pub(super) async fn one(ctx: &Ctx, rng: &mut ChaCha8Rng, kind: Kind, r: &mut FaultRecord) {
    if kind.restarts_a_dependency() && tests_running().await {
        r.note = "a test suite was using the shared dependency".to_string();
        return;
    }
    // Finding the leader, or a connection mid-transaction, takes a
    // moment; the clock starts at the kill.
    let mut connections = Connections::default();
    let victim = match kind {
        Kind::LeaderKill => find_gateway(ctx, rng, true).await,
        Kind::GatewayKill => find_gateway(ctx, rng, false).await,
        Kind::DbCut => find_worker_connections(ctx, rng)
            .await
            .map(|found| connections = found)
            .map(|()| 0),
        _ => Ok(0),
    };
    let victim = match victim {
        Ok(i) => i,
        Err(e) => {
            r.note = format!("{e:#}");
            return;
        }
    };
    let before = if kind.is_outage() {
        ticket_counts(&ctx.pool, ctx.round).await
    } else {
        None
    };
    let t0 = Instant::now();
    let armed = CancellationToken::new();
    let injecting = async {
        let injected = match kind {
            Kind::WorkerKill => kill_worker(ctx, rng, r, &armed).await,
            Kind::LeaderKill | Kind::GatewayKill => kill_gateway(ctx, victim, r, &armed, t0).await,
            Kind::RabbitmqRestart => rabbitmq_down(ctx, r, None).await,
            Kind::RabbitmqOutage => rabbitmq_down(ctx, r, Some(ctx.faults.outage_for)).await,
            Kind::MariadbRestart => restart_mariadb(&ctx.faults, r).await,
            Kind::MariadbOutage => mariadb_outage(&ctx.faults, r).await,
            Kind::DbCut => cut_worker_connections(ctx, &connections, r).await,
        };
        if injected.is_ok() {
            r.restored_s = Some(t0.elapsed().as_secs_f64());
        }
        armed.cancel();
        injected
    };
    let (injected, (commits, admission)) = tokio::join!(injecting, watch(ctx, t0, &armed));
    if let Err(e) = injected {
        // A fault that failed half-way may still have broken something;
        // it counts as run (and not recovered) once it hit its target.
        r.note = format!("{e:#}");
        r.ran = !r.target.is_empty();
        return;
    }
    r.ran = true;
    r.commits_resumed_s = commits;
    r.admission_resumed_s = admission;
    let needs_leader = kind == Kind::LeaderKill;
    r.recovered =
        commits.is_some() && admission.is_some() && (!needs_leader || r.leader_s.is_some());
    if kind.is_outage() && admission.is_some() {
        after_outage(ctx, before, r).await;
        r.recovered &= r.pace_held != Some(false);
    }
    if r.recovered {
        r.recovery_s = [r.restored_s, commits, admission, r.leader_s]
            .into_iter()
            .flatten()
            .reduce(f64::max);
    } else if r.pace_held == Some(false) {
        r.note = format!(
            "admission resumed at {:.0} /min, not {} /min",
            r.admission_per_min_after.unwrap_or(0.0),
            ctx.faults.rate
        );
    } else {
        r.note = format!("no progress within {:?}", ctx.faults.recovery_timeout);
    }
}

/// Watches, from when `armed` fires, until commits and admission move
/// again; returns when each did, in seconds since `t0`. Work that is not
/// there counts as resumed: nothing left to decide, nobody waiting.
pub(super) async fn watch(
    ctx: &Ctx,
    t0: Instant,
    armed: &CancellationToken,
) -> (Option<f64>, Option<f64>) {
    let stats = &ctx.api.stats;
    armed.cancelled().await;
    let deadline = Instant::now() + ctx.faults.recovery_timeout;
    let mut base: Option<(u64, u64)> = None;
    let (mut commits, mut admission) = (None, None);
    loop {
        if let Some((decided, mark)) = progress(&ctx.pool, ctx.round).await {
            let now = t0.elapsed().as_secs_f64();
            let (d0, m0) = *base.get_or_insert((decided, mark));
            if commits.is_none() && (decided > d0 || Stats::get(&stats.accepted) <= decided) {
                commits = Some(now);
            }
            if admission.is_none() && (mark > m0 || Stats::get(&stats.waiting) == 0) {
                admission = Some(now);
            }
        }
        if (commits.is_some() && admission.is_some()) || Instant::now() >= deadline {
            return (commits, admission);
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}
