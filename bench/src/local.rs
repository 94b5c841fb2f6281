//! A Sluice cluster on this machine: `sluice-gateway` and `sluice-worker`
//! release processes sharing a throw-away database and a unique queue
//! prefix, started, scaled and stopped by the bench.
//!
//! Processes stop the way Kubernetes stops pods: SIGTERM, a grace period
//! for in-flight work (workers finish their batch and requeue the rest),
//! then SIGKILL. SIGTERM is sent with the `kill` utility so the bench needs
//! no unsafe code or extra crate for one system call.

use crate::fixture::{self, BenchDb};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// How long a process may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process may take to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// What kind of process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Gateway,
    Worker,
}

impl Role {
    fn binary(self) -> &'static str {
        match self {
            Role::Gateway => "sluice-gateway",
            Role::Worker => "sluice-worker",
        }
    }
}

/// One running process.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    /// The gateway's HTTP address, or the worker's metrics address.
    pub addr: SocketAddr,
    child: Child,
    pid: u32,
    cpu: CpuMeter,
}

impl Proc {
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// CPU used since the last call, in cores (1.0 = one core busy).
    pub fn cpu_cores(&mut self) -> Option<f64> {
        self.cpu.sample(self.pid)
    }
}

/// Replica counts, updated as processes start and stop, read by the
/// sampler without waiting for a scaling step to finish.
#[derive(Debug, Default)]
pub struct Replicas {
    gateways: AtomicUsize,
    workers: AtomicUsize,
}

impl Replicas {
    pub fn set(&self, role: Role, n: usize) {
        match role {
            Role::Gateway => self.gateways.store(n, Ordering::Relaxed),
            Role::Worker => self.workers.store(n, Ordering::Relaxed),
        }
    }

    pub fn get(&self, role: Role) -> usize {
        match role {
            Role::Gateway => self.gateways.load(Ordering::Relaxed),
            Role::Worker => self.workers.load(Ordering::Relaxed),
        }
    }
}

/// Settings for the processes.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mysql: String,
    pub amqp_url: String,
    pub gateway_env: Vec<(String, String)>,
    pub worker_env: Vec<(String, String)>,
    /// Keep the database and the logs afterwards.
    pub keep: bool,
}

/// The cluster.
#[derive(Debug)]
pub struct Local {
    pub db: BenchDb,
    pub prefix: String,
    pub keys: String,
    pub settings: Settings,
    pub gateways: Vec<Proc>,
    pub workers: Vec<Proc>,
    bin_dir: PathBuf,
    pub log_dir: PathBuf,
    started: usize,
}

impl Local {
    /// Creates the database (migrated, empty) and names the queues; starts
    /// nothing yet.
    pub async fn create(settings: Settings) -> anyhow::Result<Local> {
        let bin_dir = std::env::current_exe()
            .context("locating the bench binary")?
            .parent()
            .map(Path::to_path_buf)
            .context("the bench binary has no directory")?;
        for role in [Role::Gateway, Role::Worker] {
            anyhow::ensure!(
                bin_dir.join(role.binary()).exists(),
                "{} is not built next to the bench; run `cargo build --release -p bench -p gateway -p worker -p schema`",
                role.binary()
            );
        }
        let prefix = fixture::unique("surge");
        let log_dir = std::env::temp_dir().join(format!("sluice-{prefix}"));
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let db = BenchDb::create(&settings.mysql).await?;
        let secret = fixture::unique("bench-surge-signing-key-");
        Ok(Local {
            db,
            keys: format!("surge:{secret}"),
            prefix,
            settings,
            gateways: Vec::new(),
            workers: Vec::new(),
            bin_dir,
            log_dir,
            started: 0,
        })
    }

    pub fn gateway_urls(&self) -> Vec<String> {
        self.gateways.iter().map(Proc::base_url).collect()
    }

    /// Starts `n` processes of `role` and waits until each is ready.
    pub async fn start(&mut self, role: Role, n: usize) -> anyhow::Result<()> {
        let mut starting = Vec::with_capacity(n);
        for _ in 0..n {
            starting.push(self.spawn(role)?);
        }
        for p in &starting {
            wait_ready(p).await?;
        }
        match role {
            Role::Gateway => self.gateways.extend(starting),
            Role::Worker => self.workers.extend(starting),
        }
        Ok(())
    }

    fn spawn(&mut self, role: Role) -> anyhow::Result<Proc> {
        self.started += 1;
        let name = match role {
            Role::Gateway => format!("gateway-{}", self.started),
            Role::Worker => format!("worker-{}", self.started),
        };
        let addr = free_port()?;
        let log = std::fs::File::create(self.log_dir.join(format!("{name}.log")))
            .context("creating a process log")?;
        let mut cmd = Command::new(self.bin_dir.join(role.binary()));
        cmd.env("DATABASE_URL", &self.db.url)
            .env("AMQP_URL", &self.settings.amqp_url)
            .env("SLUICE_SIGNING_KEYS", &self.keys)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                log.try_clone().context("cloning a log handle")?,
            ))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        match role {
            Role::Gateway => {
                cmd.env("SLUICE_LISTEN", addr.to_string())
                    .env("SLUICE_QUEUE_PREFIX", &self.prefix)
                    // Students send X-Forwarded-For with their own address,
                    // as they would arrive through an ingress.
                    .env("SLUICE_TRUST_FORWARDED", "true")
                    .envs(self.settings.gateway_env.iter().map(|(k, v)| (k, v)));
            }
            Role::Worker => {
                cmd.env("SLUICE_METRICS_ADDR", addr.to_string())
                    .env("SLUICE_QUEUE_PREFIX", &self.prefix)
                    .env("SLUICE_WORKER_NAME", &name)
                    .envs(self.settings.worker_env.iter().map(|(k, v)| (k, v)));
            }
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", role.binary()))?;
        let pid = child.id().context("the process exited at once")?;
        Ok(Proc {
            name,
            addr,
            child,
            pid,
            cpu: CpuMeter::default(),
        })
    }

    /// Stops the most recently started process of `role` (SIGTERM, then
    /// SIGKILL after the grace period). Returns its name.
    pub async fn stop_newest(&mut self, role: Role) -> anyhow::Result<Option<String>> {
        let p = match role {
            Role::Gateway => self.gateways.pop(),
            Role::Worker => self.workers.pop(),
        };
        match p {
            Some(p) => {
                let name = p.name.clone();
                stop(p).await?;
                Ok(Some(name))
            }
            None => Ok(None),
        }
    }

    /// SIGKILLs the process of `role` at `index`, as a crash or an OOM kill
    /// would end it (no grace, nothing flushed), and forgets it. Returns
    /// its name.
    pub async fn kill(&mut self, role: Role, index: usize) -> anyhow::Result<String> {
        let procs = match role {
            Role::Gateway => &mut self.gateways,
            Role::Worker => &mut self.workers,
        };
        anyhow::ensure!(index < procs.len(), "no {role:?} process #{index}");
        let mut p = procs.remove(index);
        p.child.kill().await.context("killing a process")?;
        Ok(p.name)
    }

    /// Process ids of every running gateway and worker.
    pub fn pids(&self) -> Vec<u32> {
        self.gateways
            .iter()
            .chain(&self.workers)
            .map(|p| p.pid)
            .collect()
    }

    /// Stops everything and drops the database and queues (unless kept).
    pub async fn teardown(mut self) -> anyhow::Result<()> {
        let procs: Vec<Proc> = self
            .gateways
            .drain(..)
            .chain(self.workers.drain(..))
            .collect();
        let stops = procs.into_iter().map(stop);
        for r in futures_util::future::join_all(stops).await {
            if let Err(e) = r {
                tracing::warn!(error = %e, "stopping a process");
            }
        }
        if self.settings.keep {
            println!(
                "kept database {} and logs in {}",
                self.db.url,
                self.log_dir.display()
            );
            return Ok(());
        }
        fixture::delete_queues(&self.settings.amqp_url, &self.prefix).await;
        let _ = std::fs::remove_dir_all(&self.log_dir);
        self.db.drop().await
    }
}

async fn stop(mut p: Proc) -> anyhow::Result<()> {
    let term = Command::new("kill")
        .arg("-TERM")
        .arg(p.pid.to_string())
        .status()
        .await
        .context("running kill")?;
    if term.success() {
        if tokio::time::timeout(STOP_GRACE, p.child.wait())
            .await
            .is_ok()
        {
            return Ok(());
        }
        tracing::warn!(process = %p.name, "did not stop within the grace period; killing");
    }
    p.child.kill().await.context("killing a process")?;
    Ok(())
}

/// Binds port 0 to learn a free port, then releases it for the child.
fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    l.local_addr().context("reading the free port")
}

/// Waits for `/readyz` (database and broker reachable).
async fn wait_ready(p: &Proc) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("building a probe client")?;
    let url = format!("{}/readyz", p.base_url());
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(r) = http.get(&url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{} was not ready after {READY_TIMEOUT:?}", p.name)
}

/// CPU time of a process from `/proc/<pid>/stat`, turned into cores used
/// between two samples.
#[derive(Debug, Default)]
struct CpuMeter {
    last: Option<(Instant, f64)>,
}

/// Clock ticks per second of `/proc` times: 100 on every Linux platform
/// Sluice targets (`getconf CLK_TCK`).
const CLOCK_TICKS: f64 = 100.0;

impl CpuMeter {
    fn sample(&mut self, pid: u32) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let seconds = cpu_seconds(&stat)?;
        let now = Instant::now();
        let cores = self.last.map(|(at, before)| {
            (seconds - before) / now.duration_since(at).as_secs_f64().max(1e-3)
        });
        self.last = Some((now, seconds));
        cores
    }
}

/// utime + stime, in seconds, from a `/proc/<pid>/stat` line. The command
/// name may contain spaces and parentheses, so fields are counted after
/// the last `)`.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3; utime and stime are 14 and 15.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_are_read_after_the_command_name() {
        let stat = "4242 (sluice gw (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(cpu_seconds("garbage"), None);
    }
}
