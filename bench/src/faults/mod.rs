//! Faults for a local surge (`bench chaos`): workers and gateways
//! SIGKILLed and restarted as a Deployment would, the admission leader
//! killed, RabbitMQ and MariaDB restarted, a worker's database connections
//! cut mid-transaction, and (as scenarios of their own) MariaDB or
//! RabbitMQ down for minutes (MariaDB longer than the gateways' grace
//! period), after which nobody may have lost their place and admission must
//! resume at the configured pace.
//!
//! [`Chaos`] is the engine's [`Faults`] plug-in: it injects the schedule
//! (`inject`), one fault per file (`kill`, `broker`, `mariadb`, `db_cut`),
//! and judges the run after the drain (`verdict`): the surge's own figures
//! (oversold, duplicates, lost commands) are joined by the waiting room's
//! (one ticket per student, nobody dropped) and the run fails unless all
//! of them hold and every fault recovered by itself.
//!
//! MariaDB and RabbitMQ are shared with whatever else runs on the machine:
//! the bench restarts them only while no test suite runs, and they are
//! running again when it exits, on success, on error and on Ctrl-C.

mod broker;
mod db_cut;
mod inject;
mod kill;
mod mariadb;
mod system;
mod verdict;

pub use verdict::print;

use crate::client::Api;
use crate::engine::{Faults, Live};
use crate::flags::parse_duration;
use crate::local::Local;
use crate::report::{FaultRecord, FaultSummary, Report};
use crate::stats::Stats;
use anyhow::Context;
use futures_util::future::LocalBoxFuture;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Bound on the occurrences a repeating fault expands to.
const MAX_OCCURRENCES: u32 = 1000;

/// What to break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
    /// Stop the RabbitMQ node for `--outage-for`, then start it.
    RabbitmqOutage,
    /// SIGKILL a gateway that is not the leader; restart it.
    GatewayKill,
    /// `KILL` a worker's MySQL connections while one is in a transaction.
    DbCut,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::WorkerKill,
        Kind::RabbitmqRestart,
        Kind::MariadbRestart,
        Kind::MariadbOutage,
        Kind::RabbitmqOutage,
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
            Kind::RabbitmqOutage => "rabbitmq-outage",
            Kind::LeaderKill => "leader-kill",
            Kind::GatewayKill => "gateway-kill",
            Kind::DbCut => "db-cut",
        }
    }

    fn restarts_a_dependency(self) -> bool {
        matches!(
            self,
            Kind::RabbitmqRestart
                | Kind::MariadbRestart
                | Kind::MariadbOutage
                | Kind::RabbitmqOutage
        )
    }

    fn stops_rabbitmq(self) -> bool {
        matches!(self, Kind::RabbitmqRestart | Kind::RabbitmqOutage)
    }

    /// A dependency stays down for `--outage-for`: the report then has
    /// what the outage cost (skips, the pace after).
    pub fn is_outage(self) -> bool {
        matches!(self, Kind::MariadbOutage | Kind::RabbitmqOutage)
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
pub fn default_schedule() -> Vec<Spec> {
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

/// A server the bench reaches by host and port.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
}

impl Server {
    pub fn parse(url: &str, default_port: u16) -> anyhow::Result<Server> {
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

/// A chaos run: the schedule and how faults are injected and judged.
#[derive(Debug, Clone)]
pub struct Chaos {
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

impl Chaos {
    fn stops_mariadb(&self) -> bool {
        self.schedule.iter().any(|s| s.kind.stops_mariadb())
    }

    fn stops_rabbitmq(&self) -> bool {
        self.schedule.iter().any(|s| s.kind.stops_rabbitmq())
    }
}

impl Chaos {
    /// Refuses to restart a MariaDB or RabbitMQ that is not on this
    /// machine, waits (bounded) for test suites using them, and prints
    /// the schedule.
    pub async fn prepare(&self, wait_for_tests: Duration) -> anyhow::Result<()> {
        if self.stops_mariadb() {
            anyhow::ensure!(
                self.mysql.is_loopback(),
                "mariadb-restart and mariadb-outage restart the MariaDB on this machine; --mysql points at {}",
                self.mysql.host
            );
        }
        if self.stops_rabbitmq() {
            anyhow::ensure!(
                self.amqp.is_loopback(),
                "rabbitmq-restart and rabbitmq-outage restart the RabbitMQ on this machine; --amqp-url points at {}",
                self.amqp.host
            );
        }
        if self.schedule.iter().any(|s| s.kind.restarts_a_dependency()) {
            system::wait_for_tests(wait_for_tests).await?;
        }
        for s in &self.schedule {
            let repeat = match (s.every, s.count) {
                (None, _) => String::new(),
                (Some(e), Some(n)) => format!(", every {e:?}, {n} times"),
                (Some(e), None) => format!(", every {e:?} until the crowd is gone"),
            };
            println!("chaos: {} at {:?}{repeat}", s.kind.name(), s.at);
        }
        Ok(())
    }
}

impl Faults for Chaos {
    fn patience(&self) -> u32 {
        self.patience
    }

    fn start(&self, live: &Live) -> JoinHandle<Vec<FaultRecord>> {
        tokio::spawn(inject::inject(
            self.clone(),
            Arc::clone(&live.cluster),
            Arc::clone(&live.api),
            live.round,
            live.epoch,
        ))
    }

    fn surge_over(&self) {
        self.surge_over.cancel();
    }

    fn judge<'a>(
        &'a self,
        log: Vec<FaultRecord>,
        live: &'a Live,
        pool: &'a sqlx::MySqlPool,
        stats: &'a Stats,
        report: &'a Report,
    ) -> LocalBoxFuture<'a, anyhow::Result<FaultSummary>> {
        Box::pin(verdict::judge(
            log,
            pool,
            live.round,
            stats,
            report,
            &live.cluster,
        ))
    }

    fn restore(&self) -> LocalBoxFuture<'_, ()> {
        Box::pin(async {
            self.stop.cancel();
            restore(self).await;
        })
    }
}

/// What the injector shares with each fault.
struct Ctx {
    faults: Chaos,
    cluster: Arc<Mutex<Local>>,
    api: Arc<Api>,
    pool: sqlx::MySqlPool,
    db_name: String,
    prefix: String,
    round: u32,
    http: reqwest::Client,
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

/// Brings MariaDB and RabbitMQ back if a fault of the schedule left them
/// down (an error, a cancelled run). Never fails: it reports.
async fn restore(f: &Chaos) {
    if f.stops_mariadb() && !mariadb::mariadb_up(&f.mysql).await {
        println!("chaos: MariaDB is down; starting it");
        if let Err(e) = mariadb::start_mariadb(&f.mysql).await {
            println!("chaos: starting MariaDB failed: {e:#}");
        }
    }
    if f.stops_rabbitmq() && !broker::rabbitmq_up(&f.amqp).await {
        println!("chaos: RabbitMQ is down; starting it");
        if let Err(e) = broker::start_rabbitmq(&f.amqp).await {
            println!("chaos: starting RabbitMQ failed: {e:#}");
        }
    }
}

/// On Ctrl-C: stop injecting, bring the dependencies back, kill the
/// cluster's processes and exit. The throw-away database stays.
async fn interrupt_guard(f: Chaos, cluster: Weak<Mutex<Local>>) {
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
    fn the_outages_stop_their_server_and_are_not_in_the_default_schedule() {
        assert!(Kind::MariadbOutage.stops_mariadb() && Kind::MariadbOutage.restarts_a_dependency());
        assert_eq!(
            parse_spec("rabbitmq-outage@10s").unwrap().kind,
            Kind::RabbitmqOutage
        );
        assert!(Kind::RabbitmqOutage.stops_rabbitmq() && !Kind::RabbitmqOutage.stops_mariadb());
        assert!(Kind::RabbitmqOutage.restarts_a_dependency());
        assert!(Kind::MariadbOutage.is_outage() && Kind::RabbitmqOutage.is_outage());
        assert!(!Kind::RabbitmqRestart.is_outage());
        assert!(!default_schedule().iter().any(|s| s.kind.is_outage()));
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
