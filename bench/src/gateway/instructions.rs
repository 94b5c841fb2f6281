//! `bench gateway --instructions`: user-space instructions per status poll
//! of the gateway and per response of the bare hyper server, each counted
//! under callgrind ([`crate::callgrind`]) on the same database, and their
//! ratio, which the machine's drift cannot fake (decision 069); and, in
//! the same gateway process after the polls, per join of a student who had
//! not joined (a new ticket each).
//!
//! Joins are counted over the same few connections as polls, so the join
//! batcher's batches are small (one to four joins) where a surge fills
//! them by the hundred: the count includes each batch's statements, and
//! is a measure of the code's cost per join at low concurrency, comparable
//! between builds, not the cost under a surge.

use super::{free_port, server_command, wait_ready_within, Conn, Serve, Target};
use crate::callgrind::Profiled;
use anyhow::Context;
use enrollment::{RoundId, StudentId};
use hyper::StatusCode;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests sent before counting starts, so that lazy initialisation
/// (connection setup, first-use allocations, prepared statements, caches)
/// is not counted as the cost of a request.
pub const WARM_UP: u64 = 500;

/// Client connections: few, so that the count is of requests, not of
/// connection handling; more than one, so that requests overlap as they
/// do under load.
const CONNECTIONS: usize = 4;

/// How long a server under callgrind (about 50 times slower) may take to
/// become ready.
const READY_WITHIN: Duration = Duration::from_secs(600);

/// What [`measure`] needs from the throughput run: the same environment
/// and the same database, with the students it joined.
pub struct Servers<'a> {
    pub gateway_env: &'a [(&'a str, &'a str)],
    pub round: RoundId,
    pub tokens: Arc<Vec<String>>,
    /// Students who have not joined: [`WARM_UP`] + `requests` of them.
    pub fresh: &'a [StudentId],
    /// Requests counted per server (and joins in the gateway).
    pub requests: u64,
    /// Where to keep the dumps; `None`: a temporary directory, removed.
    pub keep_in: Option<&'a Path>,
}

/// User-space instructions per request of each server (report keys).
#[derive(Debug, Serialize)]
pub struct Instructions {
    /// Requests counted per server.
    pub instruction_requests: u64,
    /// Per status poll, the gateway's idle background work subtracted.
    pub instructions_per_poll: f64,
    /// Per response of the bare hyper server, the same way.
    pub instructions_per_bare_request: f64,
    /// `instructions_per_poll / instructions_per_bare_request`.
    pub instructions_ratio: f64,
    /// Per join of a student not yet in the line, the same way.
    pub instructions_per_join: f64,
    /// The gateway's counts: requests window, idle window of the same
    /// length, and that length (seconds, under callgrind).
    pub gateway_window_instructions: u64,
    pub gateway_idle_instructions: u64,
    pub gateway_window_s: f64,
    /// The same for the joins (same gateway process, after the polls).
    pub join_window_instructions: u64,
    pub join_idle_instructions: u64,
    pub join_window_s: f64,
    /// The same for the bare server.
    pub baseline_window_instructions: u64,
    pub baseline_idle_instructions: u64,
    pub baseline_window_s: f64,
    /// Requests counted that were not answered 200, or failed.
    pub instruction_errors: u64,
}

/// Starts the gateway, then the bare server, each under callgrind, and
/// counts the instructions each executes for `requests` requests.
pub async fn measure(servers: &Servers<'_>) -> anyhow::Result<Instructions> {
    let dir = match servers.keep_in {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(crate::fixture::unique("sluice-bench-callgrind-")),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let counted = async {
        let round_path = format!("/api/rounds/{}", servers.round);
        println!("counting instructions: gateway under callgrind");
        let warm = usize::try_from(WARM_UP)?;
        let (first, rest) = servers
            .fresh
            .split_at_checked(warm)
            .context("too few students kept aside to count joins")?;
        let gateway = windows(
            &dir,
            Serve::Gateway,
            servers.gateway_env,
            // Until the snapshot holds the round, polls of its tickets fail.
            &["/readyz", &round_path],
            vec![
                Count {
                    what: "polls",
                    warm_up: Target::Poll(Arc::clone(&servers.tokens)),
                    counted: Target::Poll(Arc::clone(&servers.tokens)),
                },
                Count {
                    what: "joins",
                    warm_up: Target::joins(servers.round, first)?,
                    counted: Target::joins(servers.round, rest)?,
                },
            ],
            servers.requests,
        )
        .await?;
        println!("counting instructions: bare server under callgrind");
        let baseline = windows(
            &dir,
            Serve::Baseline,
            &[],
            &["/"],
            vec![Count {
                what: "responses",
                warm_up: Target::Fixed,
                counted: Target::Fixed,
            }],
            servers.requests,
        )
        .await?;
        anyhow::Ok((gateway, baseline))
    }
    .await;
    if servers.keep_in.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (gateway, baseline) = counted?;
    let [polls, joins] = <[Window; 2]>::try_from(gateway)
        .map_err(|_| anyhow::anyhow!("the gateway's counts are missing"))?;
    let [baseline] = <[Window; 1]>::try_from(baseline)
        .map_err(|_| anyhow::anyhow!("the bare server's count is missing"))?;
    let per_poll = polls.per_request(servers.requests);
    let per_bare = baseline.per_request(servers.requests);
    Ok(Instructions {
        instruction_requests: servers.requests,
        instructions_per_poll: per_poll,
        instructions_per_bare_request: per_bare,
        instructions_ratio: per_poll / per_bare.max(1.0),
        instructions_per_join: joins.per_request(servers.requests),
        gateway_window_instructions: polls.busy,
        gateway_idle_instructions: polls.idle,
        gateway_window_s: polls.seconds,
        join_window_instructions: joins.busy,
        join_idle_instructions: joins.idle,
        join_window_s: joins.seconds,
        baseline_window_instructions: baseline.busy,
        baseline_idle_instructions: baseline.idle,
        baseline_window_s: baseline.seconds,
        instruction_errors: polls.errors + joins.errors + baseline.errors,
    })
}

/// The counts of one server.
struct Window {
    /// Instructions while the requests were sent.
    busy: u64,
    /// Instructions in an idle window of the same length right after:
    /// the background work (timers) the busy window also contains.
    idle: u64,
    seconds: f64,
    errors: u64,
}

impl Window {
    fn per_request(&self, requests: u64) -> f64 {
        self.busy.saturating_sub(self.idle) as f64 / requests as f64
    }
}

/// One kind of request counted in a server: `warm_up` sends [`WARM_UP`]
/// requests first, then `counted` sends the counted ones.
struct Count {
    what: &'static str,
    warm_up: Target,
    counted: Target,
}

/// Starts `kind` under callgrind and waits until it is ready; then, for
/// each count in turn, warms it up, counts `requests` requests and an idle
/// window as long; stops the server.
async fn windows(
    dir: &Path,
    kind: Serve,
    env: &[(&str, &str)],
    ready: &[&str],
    counts: Vec<Count>,
    requests: u64,
) -> anyhow::Result<Vec<Window>> {
    let addr = free_port()?;
    let (program, args) = server_command(kind, addr)?;
    let mut server = Profiled::spawn(dir, kind.name(), &program, &args, env)?;
    let counted = async {
        for path in ready {
            wait_ready_within(addr, path, READY_WITHIN).await?;
        }
        let mut windows = Vec::with_capacity(counts.len());
        for count in counts {
            send_exactly(addr, &Arc::new(count.warm_up), WARM_UP).await?;
            let started = Instant::now();
            let (errors, busy) = server
                .count(send_exactly(addr, &Arc::new(count.counted), requests))
                .await?;
            let length = started.elapsed();
            let ((), idle) = server
                .count(async {
                    tokio::time::sleep(length).await;
                    Ok(())
                })
                .await?;
            println!(
                "  {}: {} instructions in {:.1} s, {} in as long idle",
                count.what,
                busy,
                length.as_secs_f64(),
                idle
            );
            windows.push(Window {
                busy,
                idle,
                seconds: length.as_secs_f64(),
                errors,
            });
        }
        anyhow::Ok(windows)
    }
    .await;
    server.stop().await;
    counted
}

/// Sends exactly `n` requests for `target` over [`CONNECTIONS`]
/// connections, one at a time each; returns how many were not answered 200.
async fn send_exactly(addr: SocketAddr, target: &Arc<Target>, n: u64) -> anyhow::Result<u64> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let (target, next) = (Arc::clone(target), Arc::clone(&next));
        tasks.spawn(async move {
            let mut errors = 0u64;
            let mut conn = Conn::open(addr).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                match conn.send(target.request(usize::try_from(i)?)?).await {
                    Ok((StatusCode::OK, _)) => {}
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = Conn::open(addr).await?;
                    }
                }
            }
            anyhow::Ok(errors)
        });
    }
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        errors += done??;
    }
    Ok(errors)
}
