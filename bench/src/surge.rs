//! `bench surge`: replays a registration-day surge against a deployment
//! (`--base-url`) or against a cluster the bench starts itself (`--local`),
//! and reports what students experienced and whether every invariant held.
//!
//! A run has four phases:
//! 1. **Set up.** Locally: a fresh database seeded for the bench, a unique
//!    queue prefix, G gateways and W workers. Remotely: the seed generator
//!    names the deployment's students and sections.
//! 2. **Sign in.** Students sign in before 09:00, as real ones do: through
//!    `POST /api/session` with bounded concurrency, or, when the bench
//!    started the gateways and holds their key, by minting session cookies.
//! 3. **Surge.** The admission rate is set through the admin API, then
//!    students arrive open-loop on the schedule and each runs its
//!    [`student`](crate::student) plan; a sampler records the timeline
//!    and prints progress.
//! 4. **Drain and judge.** Once every student is done, the bench waits for
//!    every accepted command to be decided, then reads MySQL: invariants,
//!    lost commands, admission order and pace, seat fairness.

use crate::analysis::{self, Ledger};
use crate::arrivals::{self, Shape};
use crate::chaos::{self, Faults};
use crate::client::{Api, Failure};
use crate::cluster::{self, Hpa, ScaleEvent};
use crate::crowd;
use crate::local::{self, Local, Replicas, Role};
use crate::promises;
use crate::report::{self, Report, Sample};
use crate::scenario::{self, Person, Population};
use crate::stats::{Latency, Stats};
use crate::student::{self, Plan};
use anyhow::Context;
use clap::Args as ClapArgs;
use enrollment::StudentId;
use futures_util::StreamExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use reqwest::header::HeaderValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use waitroom::{Keyring, SessionClaims, Subject};

/// How long the bench waits for the queue to drain after the last student.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);

/// Lifetime of minted sessions (the gateway's own is 8 h).
const SESSION_TTL_MS: u64 = 8 * 3600 * 1000;

/// How students sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Login {
    /// `POST /api/session` with each student's number and password.
    Api,
    /// Session cookies signed with the key the bench gave its gateways
    /// (`--local` only).
    Mint,
}

// `cluster` and `chaos` flatten these into their own `Args`; a group id of
// its own keeps clap from seeing two groups named `Args`.
#[derive(Debug, Clone, ClapArgs)]
#[group(id = "surge")]
pub struct Args {
    /// Gateways of a running deployment (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', conflicts_with = "local")]
    pub base_url: Vec<String>,
    /// Start gateways and workers here, on a fresh database and queues.
    #[arg(long)]
    pub local: bool,
    /// Gateways to start (`--local`).
    #[arg(long, default_value_t = 2)]
    pub gateways: usize,
    /// Workers to start (`--local`).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Students in the surge.
    #[arg(long, default_value_t = 20_000)]
    pub students: usize,
    /// How long arrivals last (e.g. 10s, 500ms, 2m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub over: Duration,
    #[arg(long, value_enum, default_value_t = Shape::Uniform)]
    pub shape: Shape,
    /// Share of students in the pre-queue cohort (`--shape cohort`).
    #[arg(long, default_value_t = 0.3)]
    pub cohort_share: f64,
    /// How long the pre-queue lasts before the room opens (`--shape cohort`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub prequeue: Duration,
    /// Sections students choose from.
    #[arg(long, default_value_t = 50)]
    pub sections: usize,
    /// Seats per section (`--local`).
    #[arg(long, default_value_t = 40)]
    pub seats: u32,
    /// Sections in each cart.
    #[arg(long, default_value_t = 4)]
    pub cart: usize,
    /// Zipf exponent of section popularity (0 = uniform).
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Admission rate, students per minute, set through the admin API.
    #[arg(long, default_value_t = 12_000)]
    pub rate: u32,
    /// Cap on students admitted at once (0 = none).
    #[arg(long, default_value_t = 0)]
    pub max_active: u32,
    /// Share of students who submit their cart twice.
    #[arg(long, default_value_t = 0.05)]
    pub double_submit: f64,
    /// Share of students who drop a section they got and take it again.
    #[arg(long, default_value_t = 0.05)]
    pub drop_share: f64,
    /// Longest pause between admission and the first click.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub think: Duration,
    /// First wait before reading a command's outcome; later reads back off
    /// (x1.5 each, at most 4 s).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub result_poll: Duration,
    /// How students sign in (default: mint with --local, api otherwise).
    #[arg(long, value_enum)]
    pub login: Option<Login>,
    /// Sign-ins in flight at once (`--login api`).
    #[arg(long, default_value_t = 4)]
    pub login_concurrency: usize,
    /// HTTP requests in flight at once.
    #[arg(long, default_value_t = 512)]
    pub max_in_flight: usize,
    /// Hard limit on the whole surge; students still waiting then stop.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub deadline: Duration,
    /// Round to queue for (`--base-url`; `--local` creates one).
    #[arg(long)]
    pub round: Option<u32>,
    /// Registrar credentials for the admin API, `user:password`.
    #[arg(long, default_value = "registrar:registrar-demo")]
    pub admin: String,
    /// Seed of the data set (and of the crowd).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Students the deployment was seeded with (`--base-url`).
    #[arg(long, default_value_t = 40_000)]
    pub seed_students: u32,
    /// Sections the deployment was seeded with (`--base-url`).
    #[arg(long, default_value_t = 4_000)]
    pub seed_sections: u32,
    /// The deployment's database, to check invariants and fairness
    /// (`--base-url`; without it those figures are left out).
    #[arg(long)]
    pub database_url: Option<String>,
    /// MySQL server for `--local` (a database is created and dropped).
    #[arg(
        long,
        env = "BENCH_MYSQL",
        default_value = "mysql://root@127.0.0.1:3306"
    )]
    pub mysql: String,
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// Queue prefix of the deployment, to chart queue depth (`--base-url`).
    #[arg(long)]
    pub queue_prefix: Option<String>,
    /// Extra environment for started gateways, `KEY=VALUE` (repeatable).
    #[arg(long, value_parser = parse_env)]
    pub gateway_env: Vec<(String, String)>,
    /// Extra environment for started workers, `KEY=VALUE` (repeatable).
    #[arg(long, value_parser = parse_env)]
    pub worker_env: Vec<(String, String)>,
    /// Keep the database and process logs of a `--local` run.
    #[arg(long)]
    pub keep: bool,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
    /// Write SVG charts into this directory.
    #[arg(long)]
    pub charts: Option<std::path::PathBuf>,
    /// Students (chosen at random) who all send one client address, as
    /// behind a campus NAT.
    #[arg(long, default_value_t = 0)]
    pub shared_ip: usize,
    /// Students send their number and password in the join request, as
    /// the app does, instead of signing in before the surge.
    #[arg(long)]
    pub join_with_credentials: bool,
    /// Share of students who stop polling once while waiting, as a locked
    /// phone does, then resume with the token they had.
    #[arg(long, default_value_t = 0.0)]
    pub suspend_share: f64,
    /// How long a suspended student stops polling.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    pub suspend_for: Duration,
    /// Every student told "skipped" joins again (suspended students always
    /// do), as the page asks them to.
    #[arg(long)]
    pub rejoin_skipped: bool,
}

/// Parses `10s`, `250ms`, `2m`, `1.5s` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 10s, 250ms or 2m"))?;
    if !(0.0..=86_400.0 * 7.0).contains(&(v * scale)) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

/// Where the surge goes.
enum Target {
    Local(Arc<Mutex<Local>>),
    Remote { pool: Option<sqlx::MySqlPool> },
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    run_with(args, None).await
}

/// Runs a surge; with `hpa`, the local cluster is autoscaled while it runs.
pub async fn run_with(args: Args, hpa: Option<Hpa>) -> anyhow::Result<()> {
    run_with_faults(args, hpa, None).await
}

/// Runs a surge; with `faults`, they are injected into the local cluster
/// while it runs (`bench chaos`), and MariaDB and RabbitMQ are running
/// again before this returns, whatever happened.
pub async fn run_with_faults(
    args: Args,
    hpa: Option<Hpa>,
    faults: Option<Faults>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.local || !args.base_url.is_empty(),
        "give --local or --base-url"
    );
    anyhow::ensure!(
        args.students > 0 && args.sections > 0 && args.cart > 0,
        "--students, --sections and --cart must be positive"
    );
    anyhow::ensure!(
        args.gateways > 0 && args.workers > 0,
        "--gateways and --workers must be positive"
    );
    anyhow::ensure!(
        args.shared_ip <= args.students,
        "--shared-ip cannot exceed --students"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.suspend_share),
        "--suspend-share is a share between 0 and 1"
    );
    let login = args
        .login
        .unwrap_or(if args.local { Login::Mint } else { Login::Api });
    anyhow::ensure!(
        args.local || login == Login::Api,
        "--login mint needs --local (only the bench's own gateways share its key)"
    );
    let admin = args
        .admin
        .split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .context("--admin must be user:password")?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let schedule = arrivals::schedule(
        &mut rng,
        args.shape,
        args.students,
        args.over,
        args.cohort_share,
        args.prequeue,
    );
    let replicas = Arc::new(Replicas::default());

    // Phase 1: set up.
    let (target, population, round, gateways, queue_prefix) = if args.local {
        println!(
            "surge: starting a local cluster ({} gateway(s), {} worker(s)); seeding {} students, {} sections x {} seats",
            args.gateways, args.workers, args.students, args.sections, args.seats
        );
        let mut cluster = Local::create(local::Settings {
            mysql: args.mysql.clone(),
            amqp_url: args.amqp_url.clone(),
            gateway_env: args.gateway_env.clone(),
            worker_env: args.worker_env.clone(),
            keep: args.keep,
        })
        .await?;
        let setup = async {
            let population = scenario::seed_local(
                &cluster.db.pool,
                args.seed,
                u32::try_from(args.students).context("--students")?,
                u32::try_from(args.sections).context("--sections")?,
                args.seats,
            )
            .await?;
            // The surge clock starts once the cluster is up; the pre-queue
            // lead is added then through the admin API's schedule.
            let round = scenario::round(&cluster.db.pool, args.rate, None).await?;
            if schedule.opens_at.is_some() {
                sqlx::query("UPDATE rounds SET state = 'prequeue', opens_at = NOW(3) + INTERVAL 1 DAY WHERE id = ?")
                    .bind(round)
                    .execute(&cluster.db.pool)
                    .await?;
            }
            cluster.start(Role::Worker, args.workers).await?;
            cluster.start(Role::Gateway, args.gateways).await?;
            Ok::<_, anyhow::Error>((population, round))
        };
        let (population, round) = match setup.await {
            Ok(v) => v,
            Err(e) => {
                let _ = cluster.teardown().await;
                return Err(e);
            }
        };
        replicas.set(Role::Gateway, cluster.gateways.len());
        replicas.set(Role::Worker, cluster.workers.len());
        println!("surge: processes log to {}", cluster.log_dir.display());
        let urls = cluster.gateway_urls();
        let prefix = cluster.prefix.clone();
        (
            Target::Local(Arc::new(Mutex::new(cluster))),
            population,
            round,
            urls,
            Some(prefix),
        )
    } else {
        let round = args.round.context("--base-url needs --round")?;
        let population = scenario::remote(
            &schema::seed::SeedConfig {
                seed: args.seed,
                students: args.seed_students,
                sections: args.seed_sections,
            },
            args.students,
            args.sections,
        );
        anyhow::ensure!(
            population.students.len() == args.students,
            "the seed has only {} students",
            population.students.len()
        );
        let pool = match &args.database_url {
            Some(url) => Some(schema::db::connect(url, 4).await?),
            None => None,
        };
        replicas.set(Role::Gateway, args.base_url.len());
        let urls = args
            .base_url
            .iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        (
            Target::Remote { pool },
            population,
            round,
            urls,
            args.queue_prefix.clone(),
        )
    };

    let result = surge(
        &args,
        login,
        &admin,
        &mut rng,
        &schedule,
        &target,
        &population,
        round,
        gateways,
        queue_prefix,
        replicas,
        hpa,
        faults.as_ref(),
    )
    .await;
    if let Some(faults) = &faults {
        // Before the teardown, which needs MariaDB to drop the database.
        faults.stop.cancel();
        chaos::restore(faults).await;
    }
    if let Target::Local(cluster) = target {
        let cluster = Arc::try_unwrap(cluster)
            .map_err(|_| anyhow::anyhow!("the cluster is still shared at teardown"))?
            .into_inner();
        println!("surge: stopping the local cluster");
        cluster.teardown().await?;
    }
    let report = result?;
    if let Some(summary) = &report.chaos {
        anyhow::ensure!(summary.passed, "chaos: {}", summary.failures.join("; "));
        return Ok(());
    }
    anyhow::ensure!(
        report.oversold == 0
            && report.duplicates == 0
            && report.lost_commands.unwrap_or(0) == 0
            && report.http_5xx == 0,
        "correctness violated: see the report"
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn surge(
    args: &Args,
    login: Login,
    admin: &(String, String),
    rng: &mut ChaCha8Rng,
    schedule: &arrivals::Schedule,
    target: &Target,
    population: &Population,
    round: u32,
    gateways: Vec<String>,
    queue_prefix: Option<String>,
    replicas: Arc<Replicas>,
    hpa: Option<Hpa>,
    faults: Option<&Faults>,
) -> anyhow::Result<Report> {
    let stats = Arc::new(Stats::default());
    let api = Arc::new(Api::new(gateways, args.max_in_flight, Arc::clone(&stats))?);
    let mut plans = crowd::plans(args, rng, population, schedule.cohort);

    // Phase 2: sign in (unless the join itself signs in).
    match (login, target) {
        _ if args.join_with_credentials => {
            println!("surge: students sign in with their join request");
        }
        (Login::Mint, Target::Local(cluster)) => {
            let keys = cluster.lock().await.keys.clone();
            mint_sessions(&keys, &population.students, &mut plans)?;
            println!("surge: minted {} session cookies", plans.len());
        }
        (Login::Mint, Target::Remote { .. }) => anyhow::bail!("--login mint needs --local"),
        (Login::Api, _) => {
            sign_in(
                &api,
                args.login_concurrency,
                &population.students,
                &mut plans,
            )
            .await?
        }
    }

    // Phase 3: surge.
    let mut change = serde_json::json!({ "admission_per_min": args.rate });
    if args.max_active > 0 {
        change["max_active"] = args.max_active.into();
    }
    if schedule.opens_at.is_some() && !args.local {
        change["action"] = "prequeue".into();
    }
    api.admin_change(round, admin, &change)
        .await
        .map_err(|f| anyhow::anyhow!("setting the admission rate through the admin API: {f}"))?;
    println!(
        "surge: {} students over {:?} ({:?}), admission {} /min, round {round}",
        args.students, args.over, args.shape, args.rate
    );

    if let (Some(opens_at), Target::Local(cluster)) = (schedule.opens_at, target) {
        // Opening on the round's own schedule makes pre-queue polls speed
        // up as the moment nears, as they would on the day.
        let pool = cluster.lock().await.db.pool.clone();
        sqlx::query(
            "UPDATE rounds SET opens_at = NOW(3) + INTERVAL (? * 1000) MICROSECOND WHERE id = ?",
        )
        .bind(u64::try_from(opens_at.as_millis()).unwrap_or(u64::MAX))
        .bind(round)
        .execute(&pool)
        .await?;
    }
    let epoch = Instant::now();
    let wall_start = chrono::Utc::now();
    let stop = CancellationToken::new();
    let depth_source = queue_prefix.map(|p| (args.amqp_url.clone(), p));
    let sampler = tokio::spawn(report::sample(
        Arc::clone(&stats),
        Arc::clone(&replicas),
        depth_source.clone(),
        epoch,
        stop.clone(),
    ));
    let autoscaler = match (&hpa, target) {
        (Some(hpa), Target::Local(cluster)) => Some(tokio::spawn(cluster::autoscale(
            hpa.clone(),
            Arc::clone(cluster),
            Arc::clone(&api),
            Arc::clone(&replicas),
            depth_source.clone(),
            epoch,
            stop.clone(),
        ))),
        _ => None,
    };

    let ctx = Arc::new(student::Context {
        api: Arc::clone(&api),
        round,
        result_poll: args.result_poll,
        deadline: epoch + args.deadline,
        max_tries: faults.map_or(student::MAX_TRIES, |f| f.patience),
        epoch,
        password: schema::seed::DEMO_STUDENT_PASSWORD,
    });
    let injector = match (faults, target) {
        (Some(f), Target::Local(cluster)) => Some(tokio::spawn(chaos::inject(
            f.clone(),
            Arc::clone(cluster),
            Arc::clone(&api),
            round,
            epoch,
        ))),
        _ => None,
    };
    if let Some(opens_at) = schedule.opens_at {
        let api = Arc::clone(&api);
        let admin = admin.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(epoch + opens_at).await;
            let open = serde_json::json!({ "action": "open" });
            match api.admin_change(round, &admin, &open).await {
                Ok(_) => println!("surge: the room opened (pre-queue shuffled)"),
                Err(f) => println!("surge: opening the room: {f} (it may have opened on schedule)"),
            }
        });
    }
    let mut students = tokio::task::JoinSet::new();
    for (plan, at) in plans.into_iter().zip(&schedule.arrivals) {
        tokio::time::sleep_until(epoch + *at).await;
        students.spawn(student::run(Arc::clone(&ctx), plan));
    }
    let mut accepted = Vec::new();
    let mut undecided = 0u64;
    let mut journeys = Vec::with_capacity(args.students);
    while let Some(r) = students.join_next().await {
        match r {
            Ok(r) => {
                accepted.extend(r.accepted);
                undecided += u64::from(r.undecided);
                journeys.push(r.journey);
            }
            Err(e) => stats.error(format!("student task {e}")),
        }
    }
    let students_done = epoch.elapsed();
    println!(
        "surge: every student finished after {:.1} s; draining the queue",
        students_done.as_secs_f64()
    );
    let fault_log = match (faults, injector) {
        (Some(f), Some(task)) => {
            // No new fault once the crowd is gone; the one under way
            // finishes its recovery first.
            f.surge_over.cancel();
            Some(task.await.context("fault injector task")?)
        }
        _ => None,
    };

    // Phase 4: drain and judge.
    let pool = match target {
        Target::Local(cluster) => Some(cluster.lock().await.db.pool.clone()),
        Target::Remote { pool } => pool.clone(),
    };
    if let Some(pool) = &pool {
        drain(pool, round, accepted.len()).await?;
    }
    let duration = epoch.elapsed();
    if let Some(hpa) = &hpa {
        cool_down(hpa, &replicas).await;
    }
    stop.cancel();
    let timeline = sampler.await.context("sampler task")?;
    let scale_events: Vec<ScaleEvent> = match autoscaler {
        Some(task) => task.await.context("autoscaler task")?,
        None => Vec::new(),
    };
    let ledger = match &pool {
        Some(pool) => {
            Some(analysis::read(pool, round, &population.sections, &accepted, wall_start).await?)
        }
        None => None,
    };
    let mut report = build_report(
        args,
        &stats,
        ledger.as_ref(),
        accepted.len() as u64,
        undecided,
        duration,
        timeline,
        scale_events,
        hpa.is_some(),
    );
    report.promises = promises::measure(
        &journeys,
        promises::Tickets {
            admitted_at: ledger.as_ref().map(|l| &l.admitted_at),
            skipped: ledger.as_ref().map(|l| l.skipped),
            reclaimed: ledger.as_ref().and_then(|l| l.reclaimed),
        },
    );
    if let (Some(log), Some(pool), Target::Local(cluster)) = (fault_log, &pool, target) {
        report.chaos = Some(chaos::judge(log, pool, round, &stats, &report, cluster).await?);
    }
    report::print(&report);
    if let Some(summary) = &report.chaos {
        chaos::print(summary);
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    if let Some(dir) = &args.charts {
        report::charts(dir, &report, ledger.as_ref())?;
        println!("charts written to {}", dir.display());
    }
    Ok(report)
}

fn mint_sessions(keys: &str, people: &[Person], plans: &mut [Plan]) -> anyhow::Result<()> {
    let keyring = Keyring::from_spec(keys).map_err(|e| anyhow::anyhow!("bench keys: {e}"))?;
    let now = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    for (plan, person) in plans.iter_mut().zip(people) {
        let claims = SessionClaims::new(
            Subject::Student {
                id: StudentId(person.id),
                class_year: person.class_year,
            },
            now,
            SESSION_TTL_MS,
        );
        let cookie = format!("sluice_session={}", keyring.sign_session(&claims));
        plan.who.cookie = Some(HeaderValue::from_str(&cookie).context("session cookie")?);
    }
    Ok(())
}

/// Signs every student in through the API, `concurrency` at a time
/// (password checks are bounded per gateway; beyond, it answers 503 and
/// the bench retries after a moment).
async fn sign_in(
    api: &Api,
    concurrency: usize,
    people: &[Person],
    plans: &mut [Plan],
) -> anyhow::Result<()> {
    let started = Instant::now();
    println!(
        "surge: signing in {} students through the API",
        people.len()
    );
    let total = people.len();
    let mut done = 0usize;
    let mut last_print = Instant::now();
    let mut results = futures_util::stream::iter(plans.iter().zip(people).enumerate())
        .map(|(i, (plan, person))| async move {
            for _ in 0..200 {
                match api
                    .login(
                        &plan.who,
                        &person.number,
                        schema::seed::DEMO_STUDENT_PASSWORD,
                    )
                    .await
                {
                    Ok(cookie) => return (i, Some(cookie)),
                    Err(f @ Failure::Status(..)) if f.retryable() => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(Failure::Transport(_)) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(_) => return (i, None),
                }
            }
            (i, None)
        })
        .buffer_unordered(concurrency.max(1));
    let mut cookies = vec![None; total];
    while let Some((i, cookie)) = results.next().await {
        cookies[i] = cookie;
        done += 1;
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            println!("surge: signed in {done}/{total}");
        }
    }
    drop(results);
    let mut failed = 0;
    for (plan, cookie) in plans.iter_mut().zip(cookies) {
        if cookie.is_none() {
            failed += 1;
        }
        plan.who.cookie = cookie;
    }
    println!(
        "surge: {} signed in in {:.1} s ({failed} failed)",
        total - failed,
        started.elapsed().as_secs_f64()
    );
    anyhow::ensure!(failed < total, "no student could sign in");
    Ok(())
}

/// Waits until `expected` commands of `round` have outcomes.
async fn drain(pool: &sqlx::MySqlPool, round: u32, expected: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    let mut last_print = Instant::now();
    loop {
        let decided: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT command_id) FROM command_outcomes WHERE round_id = ?",
        )
        .bind(round)
        .fetch_one(pool)
        .await?;
        let decided = usize::try_from(decided).unwrap_or(0);
        if decided >= expected {
            return Ok(());
        }
        if Instant::now() >= deadline {
            println!("surge: {decided}/{expected} commands decided after {DRAIN_TIMEOUT:?}; judging anyway");
            return Ok(());
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = Instant::now();
            println!("surge: draining, {decided}/{expected} commands decided");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Lets the autoscaler scale the workers back down (bounded in time).
async fn cool_down(hpa: &Hpa, replicas: &Replicas) {
    let deadline = Instant::now() + hpa.cool_down;
    println!(
        "surge: waiting up to {:?} for the autoscaler to scale down",
        hpa.cool_down
    );
    while Instant::now() < deadline {
        if replicas.get(Role::Worker) <= hpa.workers.min_replicas as usize
            && replicas.get(Role::Gateway) <= hpa.gateways.min_replicas as usize
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    args: &Args,
    stats: &Stats,
    ledger: Option<&Ledger>,
    accepted: u64,
    undecided: u64,
    duration: Duration,
    timeline: Vec<Sample>,
    scale_events: Vec<ScaleEvent>,
    cluster: bool,
) -> Report {
    let p = |k| stats.percentiles(k);
    let (join, poll, enroll, decision) = (
        p(Latency::Join),
        p(Latency::Poll),
        p(Latency::Enroll),
        p(Latency::Decision),
    );
    let max_of = |f: fn(&Sample) -> usize| timeline.iter().map(f).max();
    Report {
        mode: if args.local { "local" } else { "remote" },
        shape: format!("{:?}", args.shape).to_lowercase(),
        students: args.students as u64,
        sections: args.sections as u64,
        seats: ledger.map(|l| l.seats),
        enrolled: ledger.map(|l| l.enrolled),
        oversold: ledger.map_or(0, |l| l.invariants.oversold + l.invariants.miscounted),
        duplicates: ledger.map_or(0, |l| l.invariants.duplicates),
        lost_commands: ledger.map(|l| l.lost_commands),
        undecided_seen_by_students: undecided,
        http_5xx: Stats::get(&stats.http_5xx),
        joined: Stats::get(&stats.joined),
        admitted: Stats::get(&stats.admitted),
        decided_students: Stats::get(&stats.decided),
        gave_up: Stats::get(&stats.gave_up),
        accepted_commands: accepted,
        requests: Stats::get(&stats.requests),
        join_p99_ms: join.p99_ms,
        poll_p99_ms: poll.p99_ms,
        enroll_p99_ms: enroll.p99_ms,
        decision_p99_ms: decision.p99_ms,
        latency: report::Latencies {
            join,
            poll,
            enroll,
            decision,
        },
        admission_rate_target: args.rate,
        admission_rate_achieved: ledger.map(|l| l.admission_rate_achieved),
        kendall_tau: ledger.and_then(|l| l.kendall_tau),
        cohort_share: match args.shape {
            Shape::Cohort => args.cohort_share,
            Shape::Uniform | Shape::Spike => 0.0,
        },
        seat_fairness_mean: ledger.and_then(|l| l.seat_fairness_mean),
        seat_fairness_min: ledger.and_then(|l| l.seat_fairness_min),
        sections_full: ledger.map(|l| l.sections_full),
        commits_per_s_peak: ledger.map(Ledger::commits_per_s_peak),
        duration_s: duration.as_secs_f64(),
        gateways: args.gateways,
        workers: args.workers,
        max_workers: cluster.then(|| max_of(|s| s.workers).unwrap_or(0)),
        max_gateways: cluster.then(|| max_of(|s| s.gateways).unwrap_or(0)),
        errors: stats.errors(),
        outcomes: ledger.map(|l| l.outcomes.clone()).unwrap_or_default(),
        invariants: ledger.map(|l| l.invariants.clone()),
        scale_events,
        timeline,
        promises: promises::Promises::default(),
        chaos: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
