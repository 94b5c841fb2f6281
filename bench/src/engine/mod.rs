//! The surge engine: replays a registration-day surge against a deployment
//! (`--base-url`) or against a cluster the bench starts itself (`--local`),
//! and reports what students experienced and whether every invariant held.
//! The commands give it plug-ins ([`Faults`], [`Autoscaling`]) and a way to
//! publish the report; it knows neither chaos nor autoscaling itself.
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
//!    [`student`] plan; a sampler records the timeline
//!    and prints progress.
//! 4. **Drain and judge.** Once every student is done, the bench waits for
//!    every accepted command to be decided, then reads MySQL: invariants,
//!    lost commands, admission order and pace, seat fairness.

mod args;
mod carts;
mod crowd;
mod plugin;
mod sign_in;
mod tally;

pub use args::{priority_body, Args, Login};
pub use plugin::{Autoscaling, Faults, Live, Publish};

use crate::analysis;
use crate::arrivals;
use crate::client::Api;
use crate::local::{self, Local, Replicas, Role};
use crate::promises;
use crate::report::{self, Report, ScaleEvent};
use crate::scenario::{self, Population};
use crate::stats::Stats;
use crate::student;
use anyhow::Context;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long the bench waits for the queue to drain after the last student.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);

/// Where the surge goes.
enum Target {
    Local(Arc<Mutex<Local>>),
    Remote { pool: Option<sqlx::MySqlPool> },
}

/// A surge to run, with the plug-ins it was given.
pub struct Engine {
    args: Args,
    faults: Option<Box<dyn Faults>>,
    autoscaling: Option<Box<dyn Autoscaling>>,
}

impl Engine {
    pub fn new(args: Args) -> Engine {
        Engine {
            args,
            faults: None,
            autoscaling: None,
        }
    }

    /// Faults injected into the local cluster while the surge runs.
    pub fn with_faults(mut self, faults: impl Faults + 'static) -> Engine {
        self.faults = Some(Box::new(faults));
        self
    }

    /// An autoscaler for the local cluster while the surge runs.
    pub fn with_autoscaling(mut self, autoscaling: impl Autoscaling + 'static) -> Engine {
        self.autoscaling = Some(Box::new(autoscaling));
        self
    }

    /// Runs the surge; `publish` shows and saves the report before the
    /// local cluster is torn down. With faults, MariaDB and RabbitMQ are
    /// running again before this returns, whatever happened.
    pub async fn run(self, publish: Publish<'_>) -> anyhow::Result<Report> {
        let Engine {
            args,
            faults,
            autoscaling,
        } = self;
        run(args, faults.as_deref(), autoscaling.as_deref(), publish).await
    }
}

async fn run(
    args: Args,
    faults: Option<&dyn Faults>,
    autoscaling: Option<&dyn Autoscaling>,
    publish: Publish<'_>,
) -> anyhow::Result<Report> {
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
            } else if args.priority.is_some() {
                // A priority is declared before the room opens: the room
                // waits in pre-queue and opens with the surge (phase 3).
                sqlx::query("UPDATE rounds SET state = 'prequeue', opens_at = NOW(3) + INTERVAL 12 HOUR WHERE id = ?")
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
        faults,
        autoscaling,
        publish,
    )
    .await;
    if let Some(faults) = faults {
        // Before the teardown, which needs MariaDB to drop the database.
        faults.restore().await;
    }
    if let Target::Local(cluster) = target {
        let cluster = Arc::try_unwrap(cluster)
            .map_err(|_| anyhow::anyhow!("the cluster is still shared at teardown"))?
            .into_inner();
        println!("surge: stopping the local cluster");
        cluster.teardown().await?;
    }
    result
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
    faults: Option<&dyn Faults>,
    autoscaling: Option<&dyn Autoscaling>,
    publish: Publish<'_>,
) -> anyhow::Result<Report> {
    // Opened now: a path that cannot be written fails before the surge,
    // not after it.
    let journeys_out = args
        .journeys
        .as_ref()
        .map(|p| std::fs::File::create(p).with_context(|| format!("creating {}", p.display())))
        .transpose()?;
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
            sign_in::mint_sessions(&keys, &population.students, &mut plans)?;
            println!("surge: minted {} session cookies", plans.len());
        }
        (Login::Mint, Target::Remote { .. }) => anyhow::bail!("--login mint needs --local"),
        (Login::Api, _) => {
            sign_in::sign_in(
                &api,
                args.login_concurrency,
                &population.students,
                &mut plans,
            )
            .await?
        }
    }

    carts::fill_carts(&api, args.login_concurrency, &mut plans).await?;

    // Phase 3: surge.
    let mut change = serde_json::json!({ "admission_per_min": args.rate });
    if args.max_active > 0 {
        change["max_active"] = args.max_active.into();
    }
    if schedule.opens_at.is_some() && !args.local {
        change["action"] = "prequeue".into();
    }
    if let Some(spec) = &args.priority {
        change["priority"] = priority_body(spec).context("--priority")?;
        if schedule.opens_at.is_none() && args.local {
            change["action"] = "open".into();
        }
    }
    api.admin_change(round, admin, &change)
        .await
        .map_err(|f| anyhow::anyhow!("setting the admission rate through the admin API: {f}"))?;
    if let Some(capacity) = args.pace_capacity {
        let pool = match target {
            Target::Local(cluster) => Some(cluster.lock().await.db.pool.clone()),
            Target::Remote { pool } => pool.clone(),
        }
        .context("--pace-capacity records an earlier round in MySQL: give --database-url")?;
        earlier_measurement(&pool, args.rate, capacity).await?;
        println!("surge: an earlier round measured the workers at {capacity} a minute");
    }
    if let Some(pace) = args.pace_body() {
        // After the rate: the automatic pace starts from it.
        api.admin_change(round, admin, &serde_json::json!({ "pace": pace }))
            .await
            .map_err(|f| anyhow::anyhow!("switching to the automatic pace: {f}"))?;
        println!("surge: automatic pace {pace}");
    }
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
    let live = match target {
        Target::Local(cluster) => Some(Live {
            cluster: Arc::clone(cluster),
            api: Arc::clone(&api),
            replicas: Arc::clone(&replicas),
            depth: depth_source.clone(),
            round,
            epoch,
            stop: stop.clone(),
        }),
        Target::Remote { .. } => None,
    };
    let autoscaler = autoscaling
        .zip(live.as_ref())
        .map(|(a, live)| a.start(live));

    let ctx = Arc::new(student::Context {
        api: Arc::clone(&api),
        round,
        result_poll: args.result_poll,
        deadline: epoch + args.deadline,
        max_tries: faults.map_or(student::MAX_TRIES, |f| f.patience()),
        epoch,
        password: schema::seed::DEMO_STUDENT_PASSWORD,
    });
    let injector = faults.zip(live.as_ref()).map(|(f, live)| f.start(live));
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
            f.surge_over();
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
    if let Some(autoscaling) = autoscaling {
        autoscaling.cool_down(&replicas).await;
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
    let mut report = tally::build_report(
        args,
        &stats,
        ledger.as_ref(),
        accepted.len() as u64,
        undecided,
        duration,
        timeline,
        scale_events,
        autoscaling.is_some(),
    );
    if let (Some(pool), Some(_)) = (&pool, args.auto_pace) {
        report.pace.capacity_per_min =
            sqlx::query_scalar("SELECT pace_capacity_per_min FROM rounds WHERE id = ?")
                .bind(round)
                .fetch_one(pool)
                .await
                .context("reading the measured capacity")?;
    }
    if let (Some(file), Some(path)) = (journeys_out, &args.journeys) {
        // The run's figures matter more than this file: a failed write is
        // reported, and the report still comes.
        if let Err(e) = promises::write_journeys(file, &journeys) {
            eprintln!("bench: writing {}: {e:#}", path.display());
        }
    }
    report.promises = promises::measure(
        &journeys,
        promises::Tickets {
            admitted_at: ledger.as_ref().map(|l| &l.admitted_at),
            skipped: ledger.as_ref().map(|l| l.skipped),
            reclaimed: ledger.as_ref().and_then(|l| l.reclaimed),
            decided_at: ledger.as_ref().map(|l| &l.decided_at),
        },
    );
    if let Some(p) = args
        .priority
        .as_deref()
        .and_then(|s| waitroom::Priority::parse(s).ok().flatten())
    {
        let years = population
            .students
            .iter()
            .map(|s| (s.id, s.class_year))
            .collect();
        report.priority = Some(crate::classes::measure(
            &p,
            &journeys,
            &years,
            ledger.as_ref().map(|l| &l.admitted_at),
        ));
    }
    if let (Some(faults), Some(log), Some(pool), Some(live)) = (faults, fault_log, &pool, &live) {
        report.chaos = Some(faults.judge(log, live, pool, &stats, &report).await?);
    }
    publish(&report, ledger.as_ref())?;
    Ok(report)
}

/// A closed round that measured the workers at `capacity` admissions a
/// minute a moment ago, as a rehearsal would leave it.
async fn earlier_measurement(
    pool: &sqlx::MySqlPool,
    rate: u32,
    capacity: u32,
) -> anyhow::Result<()> {
    let earlier = scenario::round(pool, rate, None).await?;
    sqlx::query(
        "UPDATE rounds SET state = 'closed', closes_at = NOW(3), name = 'Bench: earlier round', \
         pace_capacity_per_min = ?, pace_capacity_settled = TRUE, \
         pace_capacity_at = UTC_TIMESTAMP(3) WHERE id = ?",
    )
    .bind(capacity)
    .bind(earlier)
    .execute(pool)
    .await
    .context("recording the earlier round's measurement")?;
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
