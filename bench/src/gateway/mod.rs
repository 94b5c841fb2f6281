//! `bench gateway`: how many status polls and joins one gateway answers on
//! this machine, and how much memory each waiting student costs it.
//!
//! The gateway runs as a separate process (this binary, re-executed with
//! `--serve gateway`, so it is the same release build) on a fresh database
//! holding W students and one open round whose admission rate is 0, so
//! every student who joins stays waiting. The run:
//!
//! 1. reads the gateway's resident memory (`VmRSS`) once it has idled
//!    3 s, as the least of ten readings (every reading below is taken so),
//! 2. joins all W students through `POST /api/rounds/{id}/join` with login
//!    session cookies minted with the signing key the gateway was started
//!    with (the password check happens once per login, not per join, so it
//!    is not part of a join's cost) and keeps their queue tokens; the joins
//!    run in two halves with a reading after each, so that what the second
//!    half adds, per student, is a waiting student's cost at the margin,
//! 3. starts a bare hyper server answering a fixed small response (also a
//!    separate process, `--serve baseline`): the most this machine can
//!    answer over HTTP/1.1 on loopback while generating the load,
//! 4. alternates two-second slices of polling `GET /api/queue/status` (the
//!    tokens round-robin) and of loading the baseline with the same load
//!    generator, for the same total time each. Interleaving matters here:
//!    the CPU speed of a virtual machine drifts over tens of seconds, and
//!    two back-to-back phases would measure the drift as much as the code,
//! 5. reads `VmRSS` again: the growth over the whole run divided by W is
//!    the memory each waiting student costs, next to the cost at the margin
//!    (both signed: freed pages given back can make either negative).
//!
//! The load generator is N keep-alive HTTP/1.1 connections, each sending
//! one request at a time; the phases end on their own (W joins, or the
//! poll duration).

mod instructions;

use crate::callgrind;
use crate::fixture::{self, BenchDb};
use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use enrollment::{RoundId, StudentId};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use sqlx::QueryBuilder;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::process::{Child, Command as Process};
use waitroom::{Keyring, SessionClaims, Subject};

/// The signing key the gateway under test is started with; the bench mints
/// login sessions with it.
const KEYS: &str = "bench:bench-gateway-signing-key-0123456789abcdef";

/// Rows per bulk insert of students.
const INSERT_CHUNK: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Serve {
    /// The Sluice gateway, configured from the environment.
    Gateway,
    /// A bare hyper server answering a fixed small response.
    Baseline,
}

impl Serve {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Serve::Gateway => "gateway",
            Serve::Baseline => "baseline",
        }
    }
}

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Students waiting in the room.
    #[arg(long, default_value_t = 100_000)]
    waiting: usize,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Total time of polling, and again of the baseline, in seconds (run in
    /// alternating two-second slices).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// MySQL server (a database is created and dropped).
    #[arg(
        long,
        env = "BENCH_MYSQL",
        default_value = service::connections::DEFAULT_MYSQL_SERVER
    )]
    mysql: String,
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = service::connections::DEFAULT_AMQP_URL
    )]
    amqp_url: String,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// After the throughput phases, count the instructions each server
    /// executes per request under callgrind (needs valgrind).
    #[arg(long)]
    instructions: bool,
    /// Requests counted per server with --instructions.
    #[arg(long, default_value_t = 20_000)]
    instruction_requests: u64,
    /// With --instructions: keep the callgrind dumps in this directory
    /// (for `callgrind_annotate`) instead of deleting them.
    #[arg(long)]
    callgrind_dir: Option<PathBuf>,
    /// Internal: serve instead of measuring (the bench starts itself so).
    #[arg(long, hide = true)]
    serve: Option<Serve>,
    /// Internal: the address to serve on.
    #[arg(long, hide = true)]
    listen: Option<SocketAddr>,
}

#[derive(Debug, Serialize)]
struct Report {
    waiting: usize,
    connections: usize,
    seconds: u64,
    /// Status polls answered 200 per second.
    polls_per_s: f64,
    /// The bare hyper server's responses per second, same generator.
    baseline_per_s: f64,
    /// `polls_per_s / baseline_per_s`.
    poll_ratio: f64,
    /// Joins answered 200 per second, all W students.
    joins_per_s: f64,
    /// Gateway resident memory growth per waiting student, in bytes.
    rss_bytes_per_waiting: f64,
    /// What the second half of the joins added to the gateway's memory,
    /// per student of that half: the cost at the margin.
    rss_marginal_bytes_per_waiting: f64,
    rss_before_bytes: u64,
    /// Readings after the first half of the joins and after all of them.
    rss_half_joined_bytes: u64,
    rss_joined_bytes: u64,
    rss_after_bytes: u64,
    /// Requests answered otherwise than 200 (each phase), or failed.
    join_errors: u64,
    poll_errors: u64,
    baseline_errors: u64,
    /// Poll latency percentiles, in milliseconds.
    poll_p50_ms: f64,
    poll_p99_ms: f64,
    /// With `--instructions`: user-space instructions per request.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    instructions: Option<instructions::Instructions>,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    match args.serve {
        Some(Serve::Gateway) => return serve_gateway(args.listen).await,
        Some(Serve::Baseline) => return serve_baseline(args.listen).await,
        None => {}
    }
    if args.waiting == 0 || args.connections == 0 {
        bail!("--waiting and --connections must be positive");
    }
    if args.instructions {
        if args.instruction_requests == 0 {
            bail!("--instruction-requests must be positive");
        }
        // Before the long throughput run, not after it.
        callgrind::check_tools().await?;
    }
    let db = BenchDb::create(&args.mysql).await?;
    let prefix = fixture::unique("sluice-bench-gw-");
    let result = measure(&args, &db, &prefix).await;
    if let Err(e) = db.drop().await {
        eprintln!("could not drop the bench database: {e:#}");
    }
    fixture::delete_queues(&args.amqp_url, &prefix).await;
    let report = result?;

    println!();
    println!(
        "| waiting | polls/s | baseline/s | ratio | joins/s | RSS per waiting | at the margin |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {} | {:.0} | {:.0} | {:.0}% | {:.0} | {:.0} B | {:.0} B |",
        report.waiting,
        report.polls_per_s,
        report.baseline_per_s,
        report.poll_ratio * 100.0,
        report.joins_per_s,
        report.rss_bytes_per_waiting,
        report.rss_marginal_bytes_per_waiting
    );
    if let Some(i) = &report.instructions {
        println!();
        println!("| instructions per poll | per bare request | ratio | per join |");
        println!("| --- | --- | --- | --- |");
        println!(
            "| {:.0} | {:.0} | {:.2} | {:.0} |",
            i.instructions_per_poll,
            i.instructions_per_bare_request,
            i.instructions_ratio,
            i.instructions_per_join
        );
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("report: {}", path.display());
    }
    if report.join_errors > 0 || report.poll_errors > 0 {
        bail!(
            "{} joins and {} polls were not answered 200",
            report.join_errors,
            report.poll_errors
        );
    }
    if let Some(errors) = report.instructions.as_ref().map(|i| i.instruction_errors) {
        if errors > 0 {
            bail!("{errors} counted requests were not answered 200");
        }
    }
    Ok(())
}

async fn measure(args: &Args, db: &BenchDb, prefix: &str) -> anyhow::Result<Report> {
    let round = fixture::round(&db.pool).await?;
    sqlx::query("UPDATE rounds SET admission_per_min = 0 WHERE id = ?")
        .bind(round.0)
        .execute(&db.pool)
        .await?;
    // With --instructions, students who have not joined yet are kept
    // aside for counting joins (each joins once, warm-up included).
    let aside = if args.instructions {
        usize::try_from(instructions::WARM_UP + args.instruction_requests)?
    } else {
        0
    };
    println!("inserting {} students", args.waiting + aside);
    let mut students = insert_students(db, args.waiting + aside).await?;
    let fresh = students.split_off(args.waiting);

    let gateway_env = [
        ("DATABASE_URL", db.url.as_str()),
        ("AMQP_URL", args.amqp_url.as_str()),
        ("SLUICE_QUEUE_PREFIX", prefix),
        ("SLUICE_SIGNING_KEYS", KEYS),
        // Every client of the bench is one loopback address; per-IP
        // limits would measure the limiter, not the gateway.
        ("SLUICE_IP_RATE", "100000000"),
        ("SLUICE_IP_BURST", "100000000"),
        // The load polls each student far more often than a browser
        // would (which waits seconds between polls); the per-student
        // check still runs on every request, it just never refuses.
        ("SLUICE_STUDENT_RATE", "100000000"),
        ("SLUICE_STUDENT_BURST", "100000000"),
        ("RUST_LOG", "warn"),
    ];
    let gateway_addr = free_port()?;
    let mut gateway = spawn(Serve::Gateway, gateway_addr, &gateway_env)?;
    let outcome = async {
        wait_ready(gateway_addr, "/readyz").await?;
        // Until the snapshot holds the round, joins answer 404.
        wait_ready(gateway_addr, &format!("/api/rounds/{round}")).await?;
        let pid = gateway.id().context("gateway pid")?;
        let rss_before = settled_rss(pid).await?;

        // In two halves, memory read after each: what the second half
        // added is the cost of a waiting student at the margin, with the
        // fixed cost of a loaded gateway (connections, buffers, pools)
        // already in the first reading.
        println!("joining {} students", students.len());
        let half = students.len() / 2;
        let (first_secs, mut tokens, first_errors) =
            joins(gateway_addr, round, &students[..half], args.connections).await?;
        let rss_half = settled_rss(pid).await?;
        let (second_secs, more, second_errors) =
            joins(gateway_addr, round, &students[half..], args.connections).await?;
        let rss_joined = settled_rss(pid).await?;
        tokens.extend(more);
        let join_errors = first_errors + second_errors;
        let joins_per_s = tokens.len() as f64 / (first_secs + second_secs).max(f64::EPSILON);
        let marginal = (rss_half, rss_joined, students.len() - half);
        println!("  {joins_per_s:.0} joins/s");
        if tokens.is_empty() {
            bail!("no join succeeded");
        }

        let baseline_addr = free_port()?;
        let mut baseline = spawn(Serve::Baseline, baseline_addr, &[])?;
        let compared = async {
            wait_ready(baseline_addr, "/").await?;
            let slices = (args.seconds / SLICE_SECS).max(1);
            let slice = Duration::from_secs(args.seconds) / u32::try_from(slices).unwrap_or(1);
            println!(
                "polling and baseline, {slices} alternating slices of {:.1} s each",
                slice.as_secs_f64()
            );
            let tokens = Arc::new(tokens);
            let (mut polls, mut base) = (Sample::new()?, Sample::new()?);
            for _ in 0..slices {
                polls.add(
                    load(
                        gateway_addr,
                        args.connections,
                        slice,
                        Target::Poll(Arc::clone(&tokens)),
                    )
                    .await?,
                )?;
                base.add(load(baseline_addr, args.connections, slice, Target::Fixed).await?)?;
            }
            anyhow::Ok(((polls.finish(), base.finish()), tokens))
        }
        .await;
        stop(&mut baseline).await;
        let ((polls, base), tokens) = compared?;
        println!("  {:.0} polls/s", polls.per_s);
        println!("  {:.0} responses/s (baseline)", base.per_s);
        let rss_after = settled_rss(pid).await?;

        Ok((
            joins_per_s,
            join_errors,
            polls,
            base,
            rss_before,
            rss_after,
            marginal,
            tokens,
        ))
    }
    .await;
    stop(&mut gateway).await;
    let (joins_per_s, join_errors, polls, base, rss_before, rss_after, marginal, tokens) = outcome?;
    let (rss_half, rss_joined, second_half) = marginal;
    let instructions = if args.instructions {
        let servers = instructions::Servers {
            gateway_env: &gateway_env,
            round,
            tokens,
            fresh: &fresh,
            requests: args.instruction_requests,
            keep_in: args.callgrind_dir.as_deref(),
        };
        Some(instructions::measure(&servers).await?)
    } else {
        None
    };

    Ok(Report {
        waiting: students.len(),
        connections: args.connections,
        seconds: args.seconds,
        polls_per_s: polls.per_s,
        baseline_per_s: base.per_s,
        poll_ratio: polls.per_s / base.per_s.max(1.0),
        joins_per_s,
        // Signed: the allocator may give back more than a phase added, and
        // a reading below the one before is worth seeing as it is.
        rss_bytes_per_waiting: (rss_after as f64 - rss_before as f64) / students.len() as f64,
        rss_marginal_bytes_per_waiting: (rss_joined as f64 - rss_half as f64)
            / second_half.max(1) as f64,
        rss_before_bytes: rss_before,
        rss_half_joined_bytes: rss_half,
        rss_joined_bytes: rss_joined,
        rss_after_bytes: rss_after,
        join_errors,
        poll_errors: polls.errors,
        baseline_errors: base.errors,
        poll_p50_ms: polls.p50_ms,
        poll_p99_ms: polls.p99_ms,
        instructions,
    })
}

/// Inserts `n` first-year students (no password: they arrive signed in).
async fn insert_students(db: &BenchDb, n: usize) -> anyhow::Result<Vec<StudentId>> {
    for start in (0..n).step_by(INSERT_CHUNK) {
        let end = (start + INSERT_CHUNK).min(n);
        let mut q = QueryBuilder::new("INSERT INTO students (number, name, class_year) ");
        q.push_values(start..end, |mut b, i| {
            b.push_bind(format!("B{i:09}"))
                .push_bind(format!("Bench student {i}"))
                .push_bind(1u8);
        });
        q.build().execute(&db.pool).await?;
    }
    let ids: Vec<u32> = sqlx::query_scalar("SELECT id FROM students ORDER BY id")
        .fetch_all(&db.pool)
        .await?;
    Ok(ids.into_iter().map(StudentId).collect())
}

/// Joins every student once; returns the seconds it took, the queue
/// tokens and the number of joins not answered 200.
async fn joins(
    addr: SocketAddr,
    round: RoundId,
    students: &[StudentId],
    connections: usize,
) -> anyhow::Result<(f64, Vec<String>, u64)> {
    // Minted before the clock starts: signing is the client's cost.
    let target = Arc::new(Target::joins(round, students)?);
    let n = students.len();
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections.min(students.len()) {
        let (target, next, errors) = (Arc::clone(&target), Arc::clone(&next), Arc::clone(&errors));
        tasks.spawn(async move {
            let mut tokens = Vec::new();
            let mut conn = Conn::open(addr).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                match conn.send(target.request(i)?).await {
                    Ok((StatusCode::OK, body)) => {
                        let v: Joined = serde_json::from_slice(&body)?;
                        tokens.push(v.token);
                    }
                    Ok(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        conn = Conn::open(addr).await?;
                    }
                }
            }
            anyhow::Ok(tokens)
        });
    }
    let mut tokens = Vec::with_capacity(students.len());
    while let Some(done) = tasks.join_next().await {
        tokens.extend(done??);
    }
    Ok((
        started.elapsed().as_secs_f64(),
        tokens,
        errors.load(Ordering::Relaxed),
    ))
}

#[derive(serde::Deserialize)]
struct Joined {
    token: String,
}

/// What the load generator asks a server for.
pub(crate) enum Target {
    /// `GET /api/queue/status` with these queue tokens, round-robin.
    Poll(Arc<Vec<String>>),
    /// `POST /api/rounds/{id}/join` as these signed-in students, the i-th
    /// request as the i-th (each student joins once).
    Join {
        path: Arc<str>,
        cookies: Arc<Vec<String>>,
    },
    /// The bare server's fixed response.
    Fixed,
}

impl Target {
    /// Joins of `students` to `round`, each with a login session cookie
    /// minted with the gateway's signing key (the password check happens
    /// once per login, not per join, so it is not part of a join's cost).
    pub(crate) fn joins(round: RoundId, students: &[StudentId]) -> anyhow::Result<Target> {
        let keyring = Keyring::from_spec(KEYS).map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = now_ms();
        let cookies = students
            .iter()
            .map(|&id| {
                let claims =
                    SessionClaims::new(Subject::Student { id, class_year: 1 }, now, 3_600_000);
                format!("sluice_session={}", keyring.sign_session(&claims))
            })
            .collect();
        Ok(Target::Join {
            path: Arc::from(format!("/api/rounds/{round}/join")),
            cookies: Arc::new(cookies),
        })
    }

    /// The `i`-th request of this target.
    pub(crate) fn request(&self, i: usize) -> anyhow::Result<Request<Full<Bytes>>> {
        let req = match self {
            Target::Poll(tokens) => Request::get("/api/queue/status")
                .header("host", "bench")
                .header("x-queue-token", &tokens[i % tokens.len()])
                .body(Full::new(Bytes::new())),
            Target::Join { path, cookies } => Request::post(&**path)
                .header("host", "bench")
                .header("content-type", "application/json")
                .header("cookie", cookies.get(i).context("no student left to join")?)
                .body(Full::new(Bytes::from_static(b"{}"))),
            Target::Fixed => Request::get("/")
                .header("host", "bench")
                .body(Full::new(Bytes::new())),
        };
        Ok(req?)
    }
}

struct Load {
    per_s: f64,
    errors: u64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Length of one measuring slice (polls and baseline alternate).
const SLICE_SECS: u64 = 2;

/// Raw counts of one or more slices against one server.
struct Sample {
    ok: u64,
    errors: u64,
    seconds: f64,
    histogram: hdrhistogram::Histogram<u64>,
}

impl Sample {
    fn new() -> anyhow::Result<Sample> {
        Ok(Sample {
            ok: 0,
            errors: 0,
            seconds: 0.0,
            histogram: hdrhistogram::Histogram::new(3)?,
        })
    }

    fn add(&mut self, other: Sample) -> anyhow::Result<()> {
        self.ok += other.ok;
        self.errors += other.errors;
        self.seconds += other.seconds;
        self.histogram.add(other.histogram)?;
        Ok(())
    }

    fn finish(self) -> Load {
        Load {
            per_s: self.ok as f64 / self.seconds.max(f64::MIN_POSITIVE),
            errors: self.errors,
            p50_ms: self.histogram.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: self.histogram.value_at_quantile(0.99) as f64 / 1000.0,
        }
    }
}

/// Sends requests over `connections` connections for `duration`.
async fn load(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    target: Target,
) -> anyhow::Result<Sample> {
    let target = Arc::new(target);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (target, next) = (Arc::clone(&target), Arc::clone(&next));
        tasks.spawn(async move {
            let mut histogram = hdrhistogram::Histogram::<u64>::new(3)?;
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut conn = Conn::open(addr).await?;
            while Instant::now() < deadline {
                let req = target.request(next.fetch_add(1, Ordering::Relaxed))?;
                let sent = Instant::now();
                match conn.send(req).await {
                    Ok((StatusCode::OK, _)) => {
                        ok += 1;
                        histogram.record(sent.elapsed().as_micros() as u64)?;
                    }
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        conn = Conn::open(addr).await?;
                    }
                }
            }
            anyhow::Ok((ok, errors, histogram))
        });
    }
    let (mut ok, mut errors) = (0u64, 0u64);
    let mut histogram = hdrhistogram::Histogram::<u64>::new(3)?;
    while let Some(done) = tasks.join_next().await {
        let (o, e, h) = done??;
        ok += o;
        errors += e;
        histogram.add(h)?;
    }
    Ok(Sample {
        ok,
        errors,
        seconds: started.elapsed().as_secs_f64(),
        histogram,
    })
}

/// One keep-alive HTTP/1.1 client connection.
pub(crate) struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes.
            let _ = connection.await;
        });
        Ok(Conn { sender })
    }

    pub(crate) async fn send(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.sender.ready().await?;
        let response = self.sender.send_request(req).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Starts this binary as a server of `kind` on `addr`.
fn spawn(kind: Serve, addr: SocketAddr, env: &[(&str, &str)]) -> anyhow::Result<Child> {
    let (exe, args) = server_command(kind, addr)?;
    Process::new(exe)
        .args(args)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the {} server", kind.name()))
}

/// The program and arguments that serve `kind` on `addr`: this binary.
pub(crate) fn server_command(
    kind: Serve,
    addr: SocketAddr,
) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let exe = std::env::current_exe().context("locating the bench binary")?;
    let args = [
        "gateway",
        "--serve",
        kind.name(),
        "--listen",
        &addr.to_string(),
    ];
    Ok((exe, args.map(String::from).to_vec()))
}

/// Stops a server started by [`spawn`] (it has nothing to keep).
async fn stop(child: &mut Child) {
    let _ = child.start_kill();
    let _ = child.wait().await;
}

/// Waits until `GET path` answers 200.
async fn wait_ready(addr: SocketAddr, path: &str) -> anyhow::Result<()> {
    wait_ready_within(addr, path, Duration::from_secs(60)).await
}

/// Waits until `GET path` answers 200, at most `limit`.
pub(crate) async fn wait_ready_within(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(mut conn) = Conn::open(addr).await {
            let req = Request::get(path)
                .header("host", "bench")
                .body(Full::new(Bytes::new()))?;
            if let Ok((StatusCode::OK, _)) = conn.send(req).await {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "{addr}{path} did not answer 200 within {} s",
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// The gateway's resident memory once it has been idle a moment: the
/// least of several readings after [`SETTLE`]. The allocator gives freed
/// pages back on its own schedule, so one reading taken right after a load
/// phase counts whatever the last requests left to be purged (single runs
/// of 100,000 students read anywhere from 0 to 390 B each).
async fn settled_rss(pid: u32) -> anyhow::Result<u64> {
    tokio::time::sleep(SETTLE).await;
    let mut least = rss(pid)?;
    for _ in 1..READINGS {
        tokio::time::sleep(Duration::from_millis(200)).await;
        least = least.min(rss(pid)?);
    }
    Ok(least)
}

/// How many readings [`settled_rss`] takes, 200 ms apart.
const READINGS: usize = 10;

/// How long the gateway idles before its memory is read.
const SETTLE: Duration = Duration::from_secs(3);

/// Resident memory of process `pid`, from `/proc/<pid>/status`.
fn rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS not found")?;
    Ok(kib * 1024)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The gateway, exactly as `sluice-gateway` runs it, on `listen`.
async fn serve_gateway(listen: Option<SocketAddr>) -> anyhow::Result<()> {
    use clap::Parser;
    let mut config = ::gateway::config::Config::try_parse_from(["sluice-gateway"])?;
    if let Some(addr) = listen {
        config.listen = addr;
    }
    // Bound as `sluice-gateway` binds, with its listen queue.
    let listener = service::bind(config.listen, "SLUICE_LISTEN").await?;
    let gateway = ::gateway::Gateway::build(config, None).await?;
    gateway.run(listener, ::gateway::shutdown_signal()).await
}

/// A bare hyper server: every request gets the same small JSON body.
async fn serve_baseline(listen: Option<SocketAddr>) -> anyhow::Result<()> {
    // The same listen queue as the gateway's: the comparison is of the
    // servers, not of how many connections the kernel holds for them.
    let listener = service::bind(listen.context("--listen")?, "--listen").await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(
                    Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from_static(b"{\"ok\":true}")))
                        .unwrap_or_default(),
                )
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
