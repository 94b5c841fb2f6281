//! `bench chaos`: a local surge (the `surge --local` machinery) with faults
//! injected on a schedule: workers and gateways SIGKILLed and restarted as
//! a Deployment would, the admission leader killed, RabbitMQ and MariaDB
//! restarted, a worker's database connections cut mid-transaction, and
//! (as its own scenario) MariaDB down for longer than the gateways' grace
//! period, after which nobody may have lost their place and admission must
//! resume at the configured pace.
//!
//! Faults run one after another: each is injected, then watched until the
//! system has recovered (or `--recovery-timeout` passed) before the next
//! one is due, so every recovery time belongs to one fault. After the
//! queue drains the surge's own figures (oversold, duplicates, lost
//! commands) are joined by the waiting room's (one ticket per student,
//! nobody dropped) and the run fails unless all of them hold and every
//! fault recovered by itself.
//!
//! MariaDB and RabbitMQ are shared with whatever else runs on the machine:
//! the bench restarts them only while no test suite runs, and they are
//! running again when it exits, on success, on error and on Ctrl-C.

use crate::client::Api;
use crate::local::{Local, Role};
use crate::report::{Depth, Report};
use crate::stats::Stats;
use crate::surge::{self, parse_duration};
use anyhow::Context;
use clap::Args as ClapArgs;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often recovery is watched.
const WATCH_EVERY: Duration = Duration::from_millis(200);
/// Longest a dependency may take to stop or to start again.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(120);
/// Processes that mean a test suite is using the shared MariaDB/RabbitMQ.
const TEST_SUITE: &str = "scripts/test|nextest";
/// Bound on the occurrences a repeating fault expands to.
const MAX_OCCURRENCES: u32 = 1000;
/// How long admissions are counted once they resume after an outage.
const PACE_WINDOW: Duration = Duration::from_secs(10);
/// Admissions per minute after an outage within this factor of the
/// target count as the configured pace (the leader admits by ticks, and
/// the window is short).
const PACE_TOLERANCE: f64 = 1.25;

/// What to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// SIGKILL a random worker; start a new one after `--restart-after`.
    WorkerKill,
    /// Stop the RabbitMQ node and start it again.
    RabbitmqRestart,
    /// Shut MariaDB down and start it again.
    MariadbRestart,
    /// SIGKILL the gateway holding admission leadership; restart it.
    LeaderKill,
    /// Stop MariaDB for `--outage-for`, then start it.
    MariadbOutage,
    /// SIGKILL a gateway that is not the leader; restart it.
    GatewayKill,
    /// `KILL` a worker's MySQL connections while one is in a transaction.
    DbCut,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::WorkerKill,
        Kind::RabbitmqRestart,
        Kind::MariadbRestart,
        Kind::MariadbOutage,
        Kind::LeaderKill,
        Kind::GatewayKill,
        Kind::DbCut,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::WorkerKill => "worker-kill",
            Kind::RabbitmqRestart => "rabbitmq-restart",
            Kind::MariadbRestart => "mariadb-restart",
            Kind::MariadbOutage => "mariadb-outage",
            Kind::LeaderKill => "leader-kill",
            Kind::GatewayKill => "gateway-kill",
            Kind::DbCut => "db-cut",
        }
    }

    fn restarts_a_dependency(self) -> bool {
        matches!(
            self,
            Kind::RabbitmqRestart | Kind::MariadbRestart | Kind::MariadbOutage
        )
    }

    fn stops_mariadb(self) -> bool {
        matches!(self, Kind::MariadbRestart | Kind::MariadbOutage)
    }
}

/// One `--fault`: a kind, when it first happens, and how it repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub kind: Kind,
    pub at: Duration,
    pub every: Option<Duration>,
    pub count: Option<u32>,
}

/// Parses `KIND@AT[/EVERY[/COUNT]]`, e.g. `worker-kill@5s/4s/6`.
pub fn parse_spec(s: &str) -> Result<Spec, String> {
    let (kind, when) = s
        .trim()
        .split_once('@')
        .ok_or_else(|| format!("{s:?} is not KIND@AT[/EVERY[/COUNT]]"))?;
    let kind = Kind::ALL
        .into_iter()
        .find(|k| k.name() == kind.trim())
        .ok_or_else(|| {
            let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown fault {kind:?}; one of {}", names.join(", "))
        })?;
    let mut parts = when.split('/');
    let at = parse_duration(parts.next().unwrap_or(""))?;
    let every = parts.next().map(parse_duration).transpose()?;
    if every.is_some_and(|e| e < Duration::from_millis(100)) {
        return Err(format!("{s:?}: repeat at most every 100ms"));
    }
    let count = parts
        .next()
        .map(|c| {
            c.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{s:?}: COUNT must be a positive number"))
        })
        .transpose()?;
    if parts.next().is_some() {
        return Err(format!("{s:?} has too many parts"));
    }
    Ok(Spec {
        kind,
        at,
        every,
        count,
    })
}

/// Every occurrence, in time order. A repeat without a count goes on until
/// the crowd is gone (bounded by `MAX_OCCURRENCES`).
fn expand(specs: &[Spec]) -> Vec<(Duration, Kind)> {
    let mut events = Vec::new();
    for s in specs {
        let n = match (s.every, s.count) {
            (None, _) => 1,
            (Some(_), Some(n)) => n.min(MAX_OCCURRENCES),
            (Some(_), None) => MAX_OCCURRENCES,
        };
        for i in 0..n {
            let t = s.at + s.every.unwrap_or_default() * i;
            events.push((t, s.kind));
        }
    }
    events.sort();
    events
}

/// The schedule when no `--fault` is given: every kind once, worker kills
/// four times, spread over the first 100 s of the surge.
fn default_schedule() -> Vec<Spec> {
    let at = |kind, s: u64| Spec {
        kind,
        at: Duration::from_secs(s),
        every: None,
        count: None,
    };
    vec![
        Spec {
            kind: Kind::WorkerKill,
            at: Duration::from_secs(5),
            every: Some(Duration::from_secs(5)),
            count: Some(4),
        },
        at(Kind::RabbitmqRestart, 30),
        at(Kind::MariadbRestart, 50),
        at(Kind::LeaderKill, 70),
        at(Kind::GatewayKill, 85),
        at(Kind::DbCut, 95),
    ]
}

#[derive(Debug, Clone, ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub surge: surge::Args,
    /// A fault, `KIND@AT[/EVERY[/COUNT]]` (repeatable): KIND is worker-kill,
    /// rabbitmq-restart, mariadb-restart, mariadb-outage, leader-kill,
    /// gateway-kill or db-cut; AT is from the start of the surge. Default:
    /// each kind but mariadb-outage once, worker-kill four times.
    #[arg(long = "fault", value_parser = parse_spec)]
    pub faults: Vec<Spec>,
    /// Tries per request before a student gives up on it (a browser page
    /// that keeps retrying; `bench surge` uses 8).
    #[arg(long, default_value_t = 60)]
    pub patience: u32,
    /// Longest a fault may take to recover before it counts as not recovered.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    pub recovery_timeout: Duration,
    /// Delay before a killed gateway or worker is started again.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub restart_after: Duration,
    /// How long `mariadb-outage` keeps MariaDB down (the gateways' grace,
    /// SLUICE_GRACE_SECS, is 60 s by default).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub outage_for: Duration,
    /// Longest wait, before the run, for a test suite using the shared
    /// MariaDB/RabbitMQ to finish.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub wait_for_tests: Duration,
}

/// A server the bench reaches by host and port.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
}

impl Server {
    fn parse(url: &str, default_port: u16) -> anyhow::Result<Server> {
        let u = reqwest::Url::parse(url).with_context(|| format!("parsing {url}"))?;
        Ok(Server {
            host: u.host_str().context("the URL has no host")?.to_string(),
            port: u.port().unwrap_or(default_port),
            user: u.username().to_string(),
        })
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// What `surge` needs to run the faults.
#[derive(Debug, Clone)]
pub struct Faults {
    pub schedule: Vec<Spec>,
    /// Tries per request for every student.
    pub patience: u32,
    pub recovery_timeout: Duration,
    pub restart_after: Duration,
    pub outage_for: Duration,
    /// The admission rate the room should resume at, per minute.
    pub rate: u32,
    pub mysql: Server,
    pub amqp: Server,
    pub amqp_url: String,
    pub seed: u64,
    /// Stops the injector for good (the run is ending).
    pub stop: CancellationToken,
    /// Every student finished: no new fault starts.
    pub surge_over: CancellationToken,
}

impl Faults {
    fn restarts(&self, kind: Kind) -> bool {
        self.schedule.iter().any(|s| s.kind == kind)
    }

    fn stops_mariadb(&self) -> bool {
        self.schedule.iter().any(|s| s.kind.stops_mariadb())
    }
}

pub async fn run(mut args: Args) -> anyhow::Result<()> {
    args.surge.local = true;
    args.surge.base_url.clear();
    let schedule = if args.faults.is_empty() {
        default_schedule()
    } else {
        args.faults.clone()
    };
    let faults = Faults {
        mysql: Server::parse(&args.surge.mysql, 3306)?,
        amqp: Server::parse(&args.surge.amqp_url, 5672)?,
        amqp_url: args.surge.amqp_url.clone(),
        schedule,
        patience: args.patience,
        recovery_timeout: args.recovery_timeout,
        restart_after: args.restart_after,
        outage_for: args.outage_for,
        rate: args.surge.rate,
        seed: args.surge.seed,
        stop: CancellationToken::new(),
        surge_over: CancellationToken::new(),
    };
    if faults.stops_mariadb() {
        anyhow::ensure!(
            faults.mysql.is_loopback(),
            "mariadb-restart and mariadb-outage restart the MariaDB on this machine; --mysql points at {}",
            faults.mysql.host
        );
    }
    if faults.restarts(Kind::RabbitmqRestart) {
        anyhow::ensure!(
            faults.amqp.is_loopback(),
            "rabbitmq-restart restarts the RabbitMQ on this machine; --amqp-url points at {}",
            faults.amqp.host
        );
    }
    if faults
        .schedule
        .iter()
        .any(|s| s.kind.restarts_a_dependency())
    {
        wait_for_tests(args.wait_for_tests).await?;
    }
    for s in &faults.schedule {
        let repeat = match (s.every, s.count) {
            (None, _) => String::new(),
            (Some(e), Some(n)) => format!(", every {e:?}, {n} times"),
            (Some(e), None) => format!(", every {e:?} until the crowd is gone"),
        };
        println!("chaos: {} at {:?}{repeat}", s.kind.name(), s.at);
    }
    surge::run_with_faults(args.surge, None, Some(faults)).await
}

/// One fault as it happened.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    pub kind: Kind,
    /// The process or service hit.
    pub target: String,
    /// When it was due and when it happened, from the start of the surge.
    pub scheduled_s: f64,
    pub at_s: f64,
    /// From the fault until the killed process's replacement was ready,
    /// or the restarted dependency answered again.
    pub restored_s: Option<f64>,
    /// From the fault until a command was decided after `restored_s` (or
    /// nothing was left to decide).
    pub commits_resumed_s: Option<f64>,
    /// From the fault until the serving mark moved after `restored_s` (or
    /// nobody was waiting).
    pub admission_resumed_s: Option<f64>,
    /// (gateway kills) from the fault until a gateway held leadership.
    pub leader_s: Option<f64>,
    /// The largest of the above: everything back and working.
    pub recovery_s: Option<f64>,
    /// (db-cut) connections killed, and whether one was in a transaction.
    pub connections_killed: Option<u64>,
    pub in_transaction: Option<bool>,
    /// (rabbitmq-restart) the commands queue was there after the restart.
    pub queue_kept: Option<bool>,
    /// (mariadb-outage) how long MariaDB was down.
    pub down_s: Option<f64>,
    /// (mariadb-outage) tickets skipped, and reclaimed, from just before
    /// the outage until `PACE_WINDOW` after admission resumed.
    pub skipped_after: Option<u64>,
    pub reclaimed_after: Option<u64>,
    /// (mariadb-outage) admissions per minute over `PACE_WINDOW` once
    /// admission resumed, and whether that is the configured pace (`None`
    /// when the queue ran empty within the window).
    pub admission_per_min_after: Option<f64>,
    pub pace_held: Option<bool>,
    /// Whether the fault was injected at all.
    pub ran: bool,
    pub recovered: bool,
    pub note: String,
}

impl FaultRecord {
    fn new(kind: Kind, scheduled: Duration, at: Duration) -> FaultRecord {
        FaultRecord {
            kind,
            target: String::new(),
            scheduled_s: scheduled.as_secs_f64(),
            at_s: at.as_secs_f64(),
            restored_s: None,
            commits_resumed_s: None,
            admission_resumed_s: None,
            leader_s: None,
            recovery_s: None,
            connections_killed: None,
            in_transaction: None,
            queue_kept: None,
            down_s: None,
            skipped_after: None,
            reclaimed_after: None,
            admission_per_min_after: None,
            pace_held: None,
            ran: false,
            recovered: false,
            note: String::new(),
        }
    }
}

/// What the injector shares with each fault.
struct Ctx {
    faults: Faults,
    cluster: Arc<Mutex<Local>>,
    api: Arc<Api>,
    pool: sqlx::MySqlPool,
    db_name: String,
    prefix: String,
    round: u32,
    http: reqwest::Client,
}

/// Injects the schedule into the running surge; returns what happened.
pub async fn inject(
    faults: Faults,
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
        let mut record = FaultRecord::new(kind, due, epoch.elapsed());
        println!(
            "[{:>5.0}s] chaos: {} (due at {:.0}s)",
            record.at_s,
            kind.name(),
            due.as_secs_f64()
        );
        one(&ctx, &mut rng, &mut record).await;
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

fn describe(r: &FaultRecord) -> String {
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
async fn one(ctx: &Ctx, rng: &mut ChaCha8Rng, r: &mut FaultRecord) {
    if r.kind.restarts_a_dependency() && tests_running().await {
        r.note = "a test suite was using the shared dependency".to_string();
        return;
    }
    // Finding the leader, or a connection mid-transaction, takes a
    // moment; the clock starts at the kill.
    let mut connections = Connections::default();
    let victim = match r.kind {
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
    let before = match r.kind {
        Kind::MariadbOutage => ticket_counts(&ctx.pool, ctx.round).await,
        _ => None,
    };
    let t0 = Instant::now();
    let armed = CancellationToken::new();
    let injecting = async {
        let injected = match r.kind {
            Kind::WorkerKill => kill_worker(ctx, rng, r, &armed).await,
            Kind::LeaderKill | Kind::GatewayKill => kill_gateway(ctx, victim, r, &armed, t0).await,
            Kind::RabbitmqRestart => restart_rabbitmq(ctx, r).await,
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
    let needs_leader = r.kind == Kind::LeaderKill;
    r.recovered =
        commits.is_some() && admission.is_some() && (!needs_leader || r.leader_s.is_some());
    if r.kind == Kind::MariadbOutage && admission.is_some() {
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

/// Skipped tickets, reclaimed tickets (`None` without the column) and
/// admitted tickets of the round.
async fn ticket_counts(pool: &sqlx::MySqlPool, round: u32) -> Option<(u64, Option<u64>, u64)> {
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
async fn after_outage(ctx: &Ctx, before: Option<(u64, Option<u64>, u64)>, r: &mut FaultRecord) {
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
fn pace_held(per_min: f64, rate: u32) -> bool {
    let target = f64::from(rate);
    per_min >= target / PACE_TOLERANCE && per_min <= target * PACE_TOLERANCE
}

/// Decided commands and the serving mark, read with a short timeout (the
/// database may be the thing that is down).
async fn progress(pool: &sqlx::MySqlPool, round: u32) -> Option<(u64, u64)> {
    let read = sqlx::query_as::<_, (i64, u64)>(
        "SELECT (SELECT COUNT(DISTINCT command_id) FROM command_outcomes WHERE round_id = ?), \
                (SELECT serving_mark FROM rounds WHERE id = ?)",
    )
    .bind(round)
    .bind(round)
    .fetch_one(pool);
    match tokio::time::timeout(Duration::from_secs(1), read).await {
        Ok(Ok((decided, mark))) => Some((u64::try_from(decided).unwrap_or(0), mark)),
        _ => None,
    }
}

/// Watches, from when `armed` fires, until commits and admission move
/// again; returns when each did, in seconds since `t0`. Work that is not
/// there counts as resumed: nothing left to decide, nobody waiting.
async fn watch(ctx: &Ctx, t0: Instant, armed: &CancellationToken) -> (Option<f64>, Option<f64>) {
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

async fn kill_worker(
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
async fn leaders(http: &reqwest::Client, urls: &[String]) -> Vec<Option<bool>> {
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
fn leader_flag(metrics: &str) -> Option<bool> {
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
async fn find_gateway(ctx: &Ctx, rng: &mut ChaCha8Rng, leader: bool) -> anyhow::Result<usize> {
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

async fn kill_gateway(
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

/// Runs a command to its end with a time limit; fails on a non-zero exit.
async fn sh(program: &str, args: &[&str], timeout: Duration) -> anyhow::Result<()> {
    let run = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, run)
        .await
        .with_context(|| format!("{program} did not finish within {timeout:?}"))?
        .with_context(|| format!("running {program}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Starts a daemon whose launcher forks and returns; its output goes
/// nowhere so that nothing waits on a pipe the daemon keeps open.
async fn launch(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let status = tokio::time::timeout(DEPENDENCY_TIMEOUT, status)
        .await
        .with_context(|| format!("{program} did not return"))?
        .with_context(|| format!("running {program}"))?;
    anyhow::ensure!(status.success(), "{program} {} failed", args.join(" "));
    Ok(())
}

async fn succeeds(program: &str, args: &[&str]) -> bool {
    sh(program, args, Duration::from_secs(15)).await.is_ok()
}

/// Polls `check` until it holds or `limit` passed.
async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

async fn tests_running() -> bool {
    succeeds("pgrep", &["-f", TEST_SUITE]).await
}

/// Waits (bounded) until no test suite is using the shared dependencies.
async fn wait_for_tests(limit: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut said = false;
    while tests_running().await {
        anyhow::ensure!(
            Instant::now() < deadline,
            "a test suite has been running for {limit:?}; not restarting the MariaDB/RabbitMQ it uses"
        );
        if !said {
            println!("chaos: a test suite is using MariaDB/RabbitMQ; waiting for it to finish (at most {limit:?})");
            said = true;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    Ok(())
}

fn mysql_args<'a>(s: &'a Server, port: &'a str, command: &'a str) -> Vec<&'a str> {
    let mut args = vec!["-h", s.host.as_str(), "-P", port];
    if !s.user.is_empty() {
        args.extend(["-u", s.user.as_str()]);
    }
    args.extend(["--connect-timeout=2", command]);
    args
}

async fn mariadb_up(s: &Server) -> bool {
    let port = s.port.to_string();
    succeeds("mysqladmin", &mysql_args(s, &port, "ping")).await
}

async fn start_mariadb(s: &Server) -> anyhow::Result<()> {
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
    launch(
        "start-stop-daemon",
        &[
            "--start",
            "--oknodo",
            "--background",
            "--exec",
            "/usr/sbin/mariadbd",
        ],
    )
    .await?;
    anyhow::ensure!(
        wait_until(DEPENDENCY_TIMEOUT, || mariadb_up(s)).await,
        "MariaDB did not answer within {DEPENDENCY_TIMEOUT:?} of starting"
    );
    Ok(())
}

async fn restart_mariadb(f: &Faults, r: &mut FaultRecord) -> anyhow::Result<()> {
    r.target = format!("mariadb {}:{}", f.mysql.host, f.mysql.port);
    let port = f.mysql.port.to_string();
    let stopped = sh(
        "mysqladmin",
        &mysql_args(&f.mysql, &port, "shutdown"),
        DEPENDENCY_TIMEOUT,
    )
    .await;
    // `--oknodo` would take a server still shutting down for a running one.
    let gone = wait_until(DEPENDENCY_TIMEOUT, || async {
        !succeeds("pgrep", &["-x", "mariadbd"]).await
    })
    .await;
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
async fn mariadb_outage(f: &Faults, r: &mut FaultRecord) -> anyhow::Result<()> {
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
    let gone = wait_until(DEPENDENCY_TIMEOUT, || async {
        !succeeds("pgrep", &["-x", "mariadbd"]).await
    })
    .await;
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

async fn port_open(s: &Server) -> bool {
    let connect = tokio::net::TcpStream::connect((s.host.as_str(), s.port));
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

async fn rabbitmq_up(s: &Server) -> bool {
    succeeds("rabbitmq-diagnostics", &["-q", "ping"]).await && port_open(s).await
}

async fn start_rabbitmq(s: &Server) -> anyhow::Result<()> {
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

/// Stops the whole node (the Erlang VM exits, as a pod's container would)
/// and starts it again; quorum queue contents live on disk and must
/// survive it.
async fn restart_rabbitmq(ctx: &Ctx, r: &mut FaultRecord) -> anyhow::Result<()> {
    let s = &ctx.faults.amqp;
    r.target = format!("rabbitmq {}:{}", s.host, s.port);
    let stopped = sh("rabbitmqctl", &["-q", "stop"], DEPENDENCY_TIMEOUT).await;
    let started = start_rabbitmq(s).await;
    stopped.context("stopping the RabbitMQ node")?;
    started?;
    let mut depth = Depth::new(ctx.faults.amqp_url.clone(), &ctx.prefix);
    r.queue_kept = Some(depth.read().await.is_some());
    depth.close().await;
    anyhow::ensure!(
        r.queue_kept == Some(true),
        "the commands queue was missing after the restart"
    );
    Ok(())
}

/// Local ports of the TCP connections `pid` holds to `remote_port`.
fn client_ports(pid: u32, remote_port: u16) -> Vec<u16> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let inodes: HashSet<u64> = fds
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|table| tcp_table_ports(&table, remote_port, &inodes))
        .collect()
}

/// Parses a `/proc/net/tcp` table: local ports of rows whose remote port
/// is `remote_port` and whose socket inode is in `inodes`.
fn tcp_table_ports(table: &str, remote_port: u16, inodes: &HashSet<u64>) -> Vec<u16> {
    let port_of = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, inode) = (f.get(1)?, f.get(2)?, f.get(9)?.parse::<u64>().ok()?);
            (port_of(remote)? == remote_port && inodes.contains(&inode)).then(|| port_of(local))?
        })
        .collect()
}

/// The client port in a processlist `host` (`localhost:54321`).
fn host_port(host: &str) -> Option<u16> {
    host.rsplit(':').next()?.parse().ok()
}

/// A worker's MySQL connections, found at a moment when one of them is
/// inside a transaction if such a moment comes within a few seconds.
#[derive(Debug, Default)]
struct Connections {
    worker: String,
    ids: Vec<i64>,
    in_transaction: bool,
}

/// Samples a random worker's connections (the bench's own and the
/// gateways' are told apart by their client ports) until one is in a
/// transaction, for at most about 10 s. Worker transactions last a few
/// milliseconds, so the sampling does not sleep: each round trip paces it.
async fn find_worker_connections(ctx: &Ctx, rng: &mut ChaCha8Rng) -> anyhow::Result<Connections> {
    let (worker, pid) = {
        let c = ctx.cluster.lock().await;
        anyhow::ensure!(!c.workers.is_empty(), "no worker");
        let w = &c.workers[rng.gen_range(0..c.workers.len())];
        (w.name.clone(), w.pid())
    };
    let port = ctx.faults.mysql.port;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ports = HashSet::new();
    let mut found = Connections {
        worker,
        ..Connections::default()
    };
    for attempt in 0u32.. {
        if attempt % 20 == 0 {
            // The pool opens and closes connections now and then.
            ports = tokio::task::spawn_blocking(move || client_ports(pid, port))
                .await
                .unwrap_or_default()
                .into_iter()
                .collect();
        }
        let rows: Vec<(i64, String, bool)> = sqlx::query_as(
            "SELECT p.id, p.host, t.trx_mysql_thread_id IS NOT NULL \
             FROM information_schema.processlist p \
             LEFT JOIN information_schema.innodb_trx t ON t.trx_mysql_thread_id = p.id \
             WHERE p.db = ?",
        )
        .bind(&ctx.db_name)
        .fetch_all(&ctx.pool)
        .await?;
        let mine: Vec<(i64, bool)> = rows
            .into_iter()
            .filter(|(_, host, _)| host_port(host).is_some_and(|p| ports.contains(&p)))
            .map(|(id, _, busy)| (id, busy))
            .collect();
        found.in_transaction = mine.iter().any(|c| c.1);
        found.ids = mine.into_iter().map(|c| c.0).collect();
        if found.in_transaction || Instant::now() >= deadline {
            break;
        }
    }
    Ok(found)
}

/// `KILL CONNECTION` each of them, as a failing network or a DBA would.
async fn cut_worker_connections(
    ctx: &Ctx,
    found: &Connections,
    r: &mut FaultRecord,
) -> anyhow::Result<()> {
    r.target = format!("{} ({} connection(s))", found.worker, found.ids.len());
    let mut killed = 0u64;
    for id in &found.ids {
        if sqlx::query(&format!("KILL CONNECTION {id}"))
            .execute(&ctx.pool)
            .await
            .is_ok()
        {
            killed += 1;
        }
    }
    r.connections_killed = Some(killed);
    r.in_transaction = Some(found.in_transaction);
    anyhow::ensure!(
        killed > 0,
        "no connection of {} was found to kill",
        found.worker
    );
    Ok(())
}

/// Brings MariaDB and RabbitMQ back if a fault of the schedule left them
/// down (an error, a cancelled run). Never fails: it reports.
pub async fn restore(f: &Faults) {
    if f.stops_mariadb() && !mariadb_up(&f.mysql).await {
        println!("chaos: MariaDB is down; starting it");
        if let Err(e) = start_mariadb(&f.mysql).await {
            println!("chaos: starting MariaDB failed: {e:#}");
        }
    }
    if f.restarts(Kind::RabbitmqRestart) && !rabbitmq_up(&f.amqp).await {
        println!("chaos: RabbitMQ is down; starting it");
        if let Err(e) = start_rabbitmq(&f.amqp).await {
            println!("chaos: starting RabbitMQ failed: {e:#}");
        }
    }
}

/// On Ctrl-C: stop injecting, bring the dependencies back, kill the
/// cluster's processes and exit. The throw-away database stays.
async fn interrupt_guard(f: Faults, cluster: Weak<Mutex<Local>>) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    println!("chaos: interrupted; restoring MariaDB and RabbitMQ before exiting");
    f.stop.cancel();
    restore(&f).await;
    if let Some(cluster) = cluster.upgrade() {
        if let Ok(c) = tokio::time::timeout(Duration::from_secs(5), cluster.lock()).await {
            for pid in c.pids() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status()
                    .await;
            }
            println!("chaos: left database {} behind", c.db.url);
        }
    }
    std::process::exit(130);
}

/// What the waiting room did with every place.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Places {
    pub tickets: u64,
    /// Students holding more than one ticket in the round.
    pub two_tickets: u64,
    pub admitted: u64,
    /// Ticket rows whose state, admission time and lease disagree.
    pub admitted_inconsistent: u64,
    /// Tickets the room skipped as abandoned, and still waiting at the end.
    pub skipped: u64,
    pub still_waiting: u64,
    /// Students told their place ended (skipped, left, expired) while
    /// they kept polling.
    pub place_ended: u64,
    /// Students who stopped polling because no answer came for all their
    /// tries (or the deadline).
    pub stopped_waiting: u64,
    /// Students whose join never succeeded.
    pub join_failed: u64,
    /// `place_ended + stopped_waiting`: waiting students not served.
    pub dropped: u64,
}

/// The `chaos` section of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub faults: Vec<FaultRecord>,
    pub faults_run: usize,
    /// Per kind: how many ran, and the longest and median recovery.
    pub by_kind: BTreeMap<&'static str, KindSummary>,
    pub oversold: u64,
    pub duplicates: u64,
    pub lost_commands: u64,
    /// Every 5xx (503 + Retry-After during an outage is by design)...
    pub http_5xx: u64,
    /// ...and those that are not a 503.
    pub http_5xx_unexpected: u64,
    /// Requests refused at the TCP level (a dead gateway), retried
    /// elsewhere by the student.
    pub connection_errors: u64,
    pub places: Places,
    pub processes_ready_at_end: bool,
    pub dependencies_up_at_end: bool,
    pub passed: bool,
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct KindSummary {
    pub runs: usize,
    pub recovered: usize,
    pub recovery_s_median: Option<f64>,
    pub recovery_s_max: Option<f64>,
}

fn is_unexpected_5xx(error_kind: &str) -> bool {
    error_kind
        .rsplit(' ')
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .is_some_and(|code| (500..600).contains(&code) && code != 503)
}

fn summarize(faults: &[FaultRecord]) -> BTreeMap<&'static str, KindSummary> {
    let mut m: BTreeMap<&'static str, KindSummary> = BTreeMap::new();
    for f in faults.iter().filter(|f| f.ran) {
        let k = m.entry(f.kind.name()).or_default();
        k.runs += 1;
        k.recovered += usize::from(f.recovered);
    }
    for (name, k) in &mut m {
        let mut times: Vec<f64> = faults
            .iter()
            .filter(|f| f.kind.name() == *name)
            .filter_map(|f| f.recovery_s)
            .collect();
        times.sort_by(f64::total_cmp);
        k.recovery_s_median = times.get(times.len() / 2).copied();
        k.recovery_s_max = times.last().copied();
    }
    m
}

/// After the drain: the waiting room's figures, the state of the cluster,
/// and the verdict.
pub async fn judge(
    faults: Vec<FaultRecord>,
    pool: &sqlx::MySqlPool,
    round: u32,
    stats: &Stats,
    report: &Report,
    cluster: &Arc<Mutex<Local>>,
) -> anyhow::Result<Summary> {
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(round)
            .fetch_one(pool)
            .await
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    let place_ended = report
        .errors
        .iter()
        .filter(|(k, _)| k.starts_with("queue ended") && !k.ends_with("closed"))
        .map(|(_, n)| n)
        .sum::<u64>();
    let stopped_waiting = Stats::get(&stats.stopped_waiting);
    let places = Places {
        tickets: count("SELECT COUNT(*) FROM tickets WHERE round_id = ?").await?,
        two_tickets: count(
            "SELECT COUNT(*) FROM (SELECT student_id FROM tickets WHERE round_id = ? \
             GROUP BY student_id HAVING COUNT(*) > 1) t",
        )
        .await?,
        admitted: count("SELECT COUNT(*) FROM tickets WHERE round_id = ? AND state = 'admitted'")
            .await?,
        admitted_inconsistent: count(
            "SELECT COUNT(*) FROM tickets WHERE round_id = ? AND \
             ((state = 'admitted' AND (admitted_at IS NULL OR lease_id IS NULL)) \
              OR (state IN ('waiting', 'skipped') AND admitted_at IS NOT NULL))",
        )
        .await?,
        skipped: count("SELECT COUNT(*) FROM tickets WHERE round_id = ? AND state = 'skipped'")
            .await?,
        still_waiting: count(
            "SELECT COUNT(*) FROM tickets WHERE round_id = ? AND state = 'waiting'",
        )
        .await?,
        place_ended,
        stopped_waiting,
        join_failed: report.students.saturating_sub(report.joined),
        dropped: place_ended + stopped_waiting,
    };
    let (urls, dead, amqp_url, prefix) = {
        let c = cluster.lock().await;
        let urls: Vec<String> = c
            .gateways
            .iter()
            .chain(&c.workers)
            .map(|p| format!("{}/readyz", p.base_url()))
            .collect();
        (
            urls,
            c.gateways.is_empty() || c.workers.is_empty(),
            c.settings.amqp_url.clone(),
            c.prefix.clone(),
        )
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .context("building a probe client")?;
    let ready = futures_util::future::join_all(urls.iter().map(|u| {
        let http = &http;
        async move {
            http.get(u)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    }))
    .await;
    let processes_ready_at_end = !dead && ready.iter().all(|r| *r);
    let mut depth = Depth::new(amqp_url, &prefix);
    let queue_answers = depth.read().await.is_some();
    depth.close().await;
    let dependencies_up_at_end = queue_answers && progress(pool, round).await.is_some();
    let errors = |f: &dyn Fn(&str) -> bool| -> u64 {
        report
            .errors
            .iter()
            .filter(|(k, _)| f(k))
            .map(|(_, n)| n)
            .sum()
    };
    let lost_commands = report.lost_commands.unwrap_or(0);
    let mut summary = Summary {
        faults_run: faults.iter().filter(|f| f.ran).count(),
        by_kind: summarize(&faults),
        faults,
        oversold: report.oversold,
        duplicates: report.duplicates,
        lost_commands,
        http_5xx: report.http_5xx,
        http_5xx_unexpected: errors(&is_unexpected_5xx),
        connection_errors: errors(&|k| k.ends_with(" connect")),
        places,
        processes_ready_at_end,
        dependencies_up_at_end,
        passed: false,
        failures: Vec::new(),
    };
    summary.failures = failures(&summary);
    summary.passed = summary.failures.is_empty();
    Ok(summary)
}

fn failures(s: &Summary) -> Vec<String> {
    let mut v = Vec::new();
    let mut nonzero = |name: &str, n: u64| {
        if n != 0 {
            v.push(format!("{name} = {n}"));
        }
    };
    nonzero("oversold", s.oversold);
    nonzero("duplicates", s.duplicates);
    nonzero("lost_commands", s.lost_commands);
    nonzero("http_5xx_unexpected", s.http_5xx_unexpected);
    nonzero("two_tickets", s.places.two_tickets);
    nonzero("admitted_inconsistent", s.places.admitted_inconsistent);
    nonzero("dropped", s.places.dropped);
    if s.faults_run == 0 {
        v.push("no fault ran".to_string());
    }
    for f in &s.faults {
        if !f.ran {
            v.push(format!(
                "{} at {:.0}s not run: {}",
                f.kind.name(),
                f.at_s,
                f.note
            ));
        } else if !f.recovered {
            v.push(format!(
                "{} at {:.0}s did not recover: {}",
                f.kind.name(),
                f.at_s,
                f.note
            ));
        }
    }
    if !s.processes_ready_at_end {
        v.push("not every process was ready at the end".to_string());
    }
    if !s.dependencies_up_at_end {
        v.push("MariaDB or RabbitMQ did not answer at the end".to_string());
    }
    v
}

/// The human table of the faults and the verdict.
pub fn print(s: &Summary) {
    let f1 = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    println!();
    println!(
        "{:<17} {:<26} {:>7} {:>9} {:>8} {:>9} {:>7} {:>9}",
        "fault", "target", "at s", "restored", "commits", "admission", "leader", "recovery"
    );
    for f in &s.faults {
        println!(
            "{:<17} {:<26} {:>7.1} {:>9} {:>8} {:>9} {:>7} {:>9}{}",
            f.kind.name(),
            f.target.chars().take(26).collect::<String>(),
            f.at_s,
            f1(f.restored_s),
            f1(f.commits_resumed_s),
            f1(f.admission_resumed_s),
            f1(f.leader_s),
            f1(f.recovery_s),
            if f.recovered {
                String::new()
            } else {
                format!("  {}", f.note)
            }
        );
    }
    println!("(seconds from the fault)");
    for f in s.faults.iter().filter(|f| f.down_s.is_some()) {
        println!(
            "{} at {:.0}s: down {} s; then {} tickets skipped, {} reclaimed; admission {} /min, pace held {}",
            f.kind.name(),
            f.at_s,
            f1(f.down_s),
            f.skipped_after.map_or("-".to_string(), |n| n.to_string()),
            f.reclaimed_after.map_or("-".to_string(), |n| n.to_string()),
            f.admission_per_min_after
                .map_or("-".to_string(), |n| format!("{n:.0}")),
            f.pace_held.map_or("-".to_string(), |b| b.to_string()),
        );
    }
    println!();
    let row = |k: &str, v: String| println!("{k:<34} {v:>14}");
    row("faults run", s.faults_run.to_string());
    row(
        "oversold / duplicates",
        format!("{} / {}", s.oversold, s.duplicates),
    );
    row("lost commands (202)", s.lost_commands.to_string());
    row(
        "http 5xx / not 503",
        format!("{} / {}", s.http_5xx, s.http_5xx_unexpected),
    );
    row("refused connections", s.connection_errors.to_string());
    row(
        "tickets / two per student",
        format!("{} / {}", s.places.tickets, s.places.two_tickets),
    );
    row(
        "admitted / inconsistent rows",
        format!("{} / {}", s.places.admitted, s.places.admitted_inconsistent),
    );
    row(
        "dropped (ended / stopped)",
        format!(
            "{} ({} / {})",
            s.places.dropped, s.places.place_ended, s.places.stopped_waiting
        ),
    );
    row("join failed", s.places.join_failed.to_string());
    row(
        "ready at the end",
        format!("{}", s.processes_ready_at_end && s.dependencies_up_at_end),
    );
    row("passed", s.passed.to_string());
    for f in &s.failures {
        println!("  failed: {f}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse_with_repeats() {
        assert_eq!(
            parse_spec("worker-kill@5s/4s/6").unwrap(),
            Spec {
                kind: Kind::WorkerKill,
                at: Duration::from_secs(5),
                every: Some(Duration::from_secs(4)),
                count: Some(6),
            }
        );
        assert_eq!(parse_spec("db-cut@1m").unwrap().at, Duration::from_secs(60));
        assert_eq!(
            parse_spec("mariadb-outage@20s").unwrap().kind,
            Kind::MariadbOutage
        );
        assert!(parse_spec("reboot@5s").is_err());
        assert!(parse_spec("db-cut").is_err());
        assert!(parse_spec("db-cut@5s/10ms").is_err());
        assert!(parse_spec("db-cut@5s/1s/0").is_err());
        assert!(parse_spec("db-cut@5s/1s/2/3").is_err());
    }

    #[test]
    fn schedules_expand_in_time_order_and_stay_bounded() {
        let specs = [
            parse_spec("mariadb-restart@6s").unwrap(),
            parse_spec("worker-kill@2s/3s/3").unwrap(),
        ];
        let kinds: Vec<_> = expand(&specs)
            .into_iter()
            .map(|(t, k)| (t.as_secs(), k))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (2, Kind::WorkerKill),
                (5, Kind::WorkerKill),
                (6, Kind::MariadbRestart),
                (8, Kind::WorkerKill)
            ]
        );
        let forever = [parse_spec("worker-kill@1s/1s").unwrap()];
        assert_eq!(expand(&forever).len(), MAX_OCCURRENCES as usize);
        assert_eq!(expand(&default_schedule()).len(), 9);
    }

    #[test]
    fn the_leader_gauge_is_read_from_metrics_text() {
        let text = "# HELP sluice_waitroom_leader x\n# TYPE sluice_waitroom_leader gauge\nsluice_waitroom_leader 1\nsluice_waitroom_leaderx 0\n";
        assert_eq!(leader_flag(text), Some(true));
        assert_eq!(leader_flag("sluice_waitroom_leader 0\n"), Some(false));
        assert_eq!(leader_flag("other 1\n"), None);
    }

    #[test]
    fn worker_connections_are_found_in_the_tcp_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:D431 0100007F:0CEA 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 30 10 -1\n\
   1: 0100007F:D432 0100007F:0CEA 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0 20 4 30 10 -1\n\
   2: 0100007F:D433 0100007F:1628 01 00000000:00000000 00:00000000 00000000     0        0 4244 1 0 20 4 30 10 -1\n";
        let inodes: HashSet<u64> = [4242, 4244].into_iter().collect();
        assert_eq!(tcp_table_ports(table, 3306, &inodes), vec![0xD431]);
        assert_eq!(host_port("localhost:54321"), Some(54321));
        assert_eq!(host_port("127.0.0.1:3307"), Some(3307));
        assert_eq!(host_port("localhost"), None);
    }

    #[test]
    fn the_pace_after_an_outage_is_the_target_within_the_tolerance() {
        assert!(pace_held(6000.0, 6000));
        assert!(pace_held(5000.0, 6000));
        assert!(!pace_held(4000.0, 6000), "too slow");
        assert!(!pace_held(9000.0, 6000), "a stampede");
        assert!(Kind::MariadbOutage.stops_mariadb() && Kind::MariadbOutage.restarts_a_dependency());
        assert!(!default_schedule()
            .iter()
            .any(|s| s.kind == Kind::MariadbOutage));
    }

    #[test]
    fn only_5xx_other_than_503_are_unexpected() {
        assert!(is_unexpected_5xx("enroll 500"));
        assert!(is_unexpected_5xx("poll 502"));
        assert!(!is_unexpected_5xx("enroll 503"));
        assert!(!is_unexpected_5xx("poll connect"));
        assert!(!is_unexpected_5xx("join 429"));
    }

    #[test]
    fn servers_parse_from_urls() {
        let s = Server::parse("mysql://root@127.0.0.1:3306", 3306).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.user.as_str()),
            ("127.0.0.1", 3306, "root")
        );
        assert!(s.is_loopback());
        let a = Server::parse("amqp://guest:guest@rabbit/%2f", 5672).unwrap();
        assert_eq!(a.port, 5672);
        assert!(!a.is_loopback());
    }
}
