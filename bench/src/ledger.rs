//! `bench ledger`: how fast workers decide commands, batched versus one
//! transaction per command, on the same machine in the same run.
//!
//! Each phase gets a fresh database and queue. All K enroll commands (one
//! section each, by K distinct students, spread round-robin over N
//! sections) are published and confirmed first, so the phase measures the
//! workers alone: from the moment they start to the last decision's commit
//! time recorded in `command_outcomes`. Then the invariants are checked and
//! every published command must have exactly one outcome.

use crate::fixture::{self, BenchDb};
use anyhow::Context;
use broker::{Publisher, Topology};
use chrono::Utc;
use clap::Args as ClapArgs;
use enrollment::{Action, Command, RoundId, SectionId, StudentId};
use serde::Serialize;
use service::connections::SecretString;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use waitroom::{Keyring, PassClaims};

const KEYS: &str = "bench:bench-signing-key-0123456789abcdef0123";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Sections the commands are spread over (1 = one hot section).
    #[arg(long, default_value_t = 50)]
    sections: usize,
    /// Enroll commands to decide.
    #[arg(long, default_value_t = 20_000)]
    commands: usize,
    /// Seats per section, as a share of the commands aimed at it.
    #[arg(long, default_value_t = 1.1)]
    capacity_factor: f64,
    /// Worker instances (each with its own AMQP connection and MySQL pool).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Commands for the one-per-transaction baseline (it is slow; a sample
    /// gives its rate). Defaults to min(commands, 3000).
    #[arg(long)]
    naive_commands: Option<usize>,
    /// MySQL server (a database is created and dropped per phase).
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
    report: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct Phase {
    commands: usize,
    enrolled: u64,
    rejected: u64,
    oversold: u64,
    duplicates: u64,
    lost: u64,
    seconds: f64,
    commits_per_s: f64,
    publish_per_s: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    sections: usize,
    workers: usize,
    commands: usize,
    enrolled: u64,
    rejected: u64,
    oversold: u64,
    duplicates: u64,
    lost: u64,
    commits_per_s: f64,
    naive_commands: usize,
    naive_commits_per_s: f64,
    speedup: f64,
    duration_s: f64,
    publish_per_s: f64,
    naive: Phase,
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Batched,
    Naive,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.sections > 0 && args.commands > 0,
        "--sections and --commands must be positive"
    );
    let naive_n = args
        .naive_commands
        .unwrap_or(args.commands.min(3000))
        .min(args.commands);
    println!(
        "ledger bench: {} commands over {} section(s), {} worker(s); baseline on {} commands",
        args.commands, args.sections, args.workers, naive_n
    );
    let started = Instant::now();
    let batched = phase(&args, args.commands, Mode::Batched).await?;
    let naive = phase(&args, naive_n, Mode::Naive).await?;
    let report = Report {
        sections: args.sections,
        workers: args.workers,
        commands: batched.commands,
        enrolled: batched.enrolled,
        rejected: batched.rejected,
        oversold: batched.oversold,
        duplicates: batched.duplicates,
        lost: batched.lost,
        commits_per_s: batched.commits_per_s,
        naive_commands: naive.commands,
        naive_commits_per_s: naive.commits_per_s,
        speedup: batched.commits_per_s / naive.commits_per_s.max(f64::MIN_POSITIVE),
        duration_s: started.elapsed().as_secs_f64(),
        publish_per_s: batched.publish_per_s,
        naive,
    };
    println!();
    println!("{:<26} {:>14} {:>14}", "", "batched", "one per txn");
    println!(
        "{:<26} {:>14} {:>14}",
        "commands", report.commands, report.naive.commands
    );
    println!(
        "{:<26} {:>14} {:>14}",
        "enrolled", report.enrolled, report.naive.enrolled
    );
    println!(
        "{:<26} {:>14} {:>14}",
        "rejected", report.rejected, report.naive.rejected
    );
    println!(
        "{:<26} {:>14} {:>14}",
        "oversold / duplicates",
        format!("{} / {}", report.oversold, report.duplicates),
        format!("{} / {}", report.naive.oversold, report.naive.duplicates)
    );
    println!(
        "{:<26} {:>14} {:>14}",
        "lost", report.lost, report.naive.lost
    );
    println!(
        "{:<26} {:>14.0} {:>14.0}",
        "commits/s", report.commits_per_s, report.naive_commits_per_s
    );
    println!("{:<26} {:>14.1}", "speedup", report.speedup);
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    anyhow::ensure!(
        report.oversold == 0
            && report.duplicates == 0
            && report.lost == 0
            && report.naive.oversold == 0
            && report.naive.duplicates == 0
            && report.naive.lost == 0,
        "correctness violated: see the report"
    );
    Ok(())
}

async fn phase(args: &Args, n: usize, mode: Mode) -> anyhow::Result<Phase> {
    let label = match mode {
        Mode::Batched => "batched",
        Mode::Naive => "one per transaction",
    };
    let db = BenchDb::create(&args.mysql).await?;
    let round = fixture::round(&db.pool).await?;
    let per_section = n.div_ceil(args.sections);
    let capacity = ((per_section as f64) * args.capacity_factor).ceil() as u32;
    let sections = fixture::sections(&db.pool, args.sections, capacity).await?;
    let students = fixture::students(&db.pool, n).await?;
    let commands = make_commands(round, &sections, &students);

    let prefix = fixture::unique("bench");
    let topology = Topology::new(&prefix);
    let publisher =
        Publisher::connect(&args.amqp_url, topology.clone(), Duration::from_secs(30)).await?;
    let t = Instant::now();
    for chunk in commands.chunks(1000) {
        for r in futures_util::future::join_all(chunk.iter().map(|c| publisher.publish(c))).await {
            r.context("publishing")?;
        }
    }
    let publish_per_s = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "[{label}] published {n} commands ({publish_per_s:.0}/s); starting {} worker(s)",
        args.workers
    );

    let token = CancellationToken::new();
    let start = Utc::now();
    let mut handles = Vec::new();
    for i in 0..args.workers {
        let mut c = worker::config::Config::dev();
        c.connections.database_url = SecretString::from(db.url.clone());
        c.connections.amqp_url = SecretString::from(args.amqp_url.clone());
        c.queue_prefix = prefix.clone();
        c.signing_keys = KEYS.to_string();
        c.name = Some(format!("bench-{i}"));
        if let Mode::Naive = mode {
            c.max_batch = 1;
            c.min_txn = 1;
            c.parallel_txns = 1;
            c.prefetch = 50;
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        handles.push(tokio::spawn(worker::run(c, listener, token.clone())));
    }
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut last_print = Instant::now();
    loop {
        let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM command_outcomes")
            .fetch_one(&db.pool)
            .await?;
        if done as usize >= n {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {done} of {n} decided after 30 minutes"
        );
        if last_print.elapsed() > Duration::from_secs(2) {
            println!("[{label}] decided {done}/{n}");
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token.cancel();
    for h in handles {
        h.await.context("worker task")??;
    }
    let end: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT MAX(decided_at) FROM command_outcomes")
            .fetch_one(&db.pool)
            .await?;
    let seconds = ((end - start).num_milliseconds().max(1) as f64) / 1000.0;

    let report = worker::invariants::check(&db.pool).await?;
    let (decided, enrolled): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(DISTINCT command_id), CAST(COALESCE(SUM(outcome = 'enrolled'), 0) AS SIGNED) FROM command_outcomes",
    )
    .fetch_one(&db.pool)
    .await?;
    let phase = Phase {
        commands: n,
        enrolled: enrolled as u64,
        rejected: (decided - enrolled).max(0) as u64,
        oversold: report.oversold + report.miscounted,
        duplicates: report.duplicates,
        lost: (n as i64 - decided).max(0) as u64,
        seconds,
        commits_per_s: n as f64 / seconds,
        publish_per_s,
    };
    println!(
        "[{label}] {n} decided in {seconds:.2}s: {:.0} commits/s",
        phase.commits_per_s
    );
    fixture::delete_queues(&args.amqp_url, &prefix).await;
    db.drop().await?;
    Ok(phase)
}

fn make_commands(round: RoundId, sections: &[SectionId], students: &[StudentId]) -> Vec<Command> {
    let ring = Keyring::from_spec(KEYS).unwrap_or_else(|_| unreachable!("the bench key is valid"));
    let now = Utc::now().timestamp_millis() as u64;
    students
        .iter()
        .enumerate()
        .map(|(i, &student)| {
            let pass = ring.sign_pass(&PassClaims {
                round,
                student,
                lease: uuid::Uuid::now_v7(),
                budget: 10,
                iat: now,
                exp: now + 3_600_000,
            });
            let section = sections[i % sections.len()];
            Command::new(
                student,
                round,
                pass,
                Action::Enroll {
                    sections: vec![section],
                    waitlist: false,
                    options: Vec::new(),
                },
            )
        })
        .collect()
}
