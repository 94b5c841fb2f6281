//! `sluice-db`: creates, migrates, seeds and drops a Sluice database.
//!
//! A thin command line over [`schema::db`] and [`schema::seed`]. The seeded
//! accounts are published demo data; their credentials are printed on
//! purpose.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use schema::seed::{self, Progress, SeedConfig, SeedOutcome, DEMO_ADMINS, DEMO_STUDENT_PASSWORD};
use std::time::Instant;

// No Debug derive: the URL may carry a password.
#[derive(Parser)]
#[command(
    name = "sluice-db",
    version,
    about = "Create, migrate, seed and drop a Sluice database"
)]
struct Cli {
    /// MySQL/MariaDB URL naming the database.
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "mysql://root@127.0.0.1:3306/sluice"
    )]
    database_url: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the database if missing and apply pending migrations.
    Migrate,
    /// Fill an empty database with the deterministic demo data set.
    Seed(SeedArgs),
    /// Drop the database.
    #[command(name = "drop")]
    DropDatabase,
    /// Set a student's or an admin's password, read from standard input
    /// (never from the command line, which shells and `ps` keep).
    SetPassword(SetPasswordArgs),
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct SetPasswordArgs {
    /// The student's number.
    #[arg(long)]
    student: Option<String>,
    /// The admin's username.
    #[arg(long)]
    admin: Option<String>,
}

#[derive(Args)]
struct SeedArgs {
    /// Seed of the generator; the same seed always gives the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of students, spread over class years 1 to 4.
    #[arg(long, default_value_t = 40_000)]
    students: u32,
    /// Number of sections, one to four per course.
    #[arg(long, default_value_t = 4_000)]
    sections: u32,
    /// Also keep an open "Demo round" for every class year (opens now,
    /// closes in 7 days).
    #[arg(long)]
    demo: bool,
    /// First empty every table but the migration history: catalog, people,
    /// rounds, tickets and ledger.
    #[arg(long)]
    reset: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let url = cli.database_url.as_str();
    match cli.command {
        Command::Migrate => migrate(url).await,
        Command::Seed(args) => seed(url, args).await,
        Command::DropDatabase => drop_database(url).await,
        Command::SetPassword(args) => set_password(url, args).await,
    }
}

async fn set_password(url: &str, args: SetPasswordArgs) -> anyhow::Result<()> {
    use schema::accounts::{self, Account};
    let account = match (args.student, args.admin) {
        (Some(n), None) => Account::Student(n),
        (None, Some(u)) => Account::Admin(u),
        _ => anyhow::bail!("give --student NUMBER or --admin USERNAME"),
    };
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| anyhow::anyhow!("reading the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    let pool = schema::db::connect(url, 1).await?;
    accounts::set_password(&pool, &account, password).await?;
    println!("password set for {account:?}");
    Ok(())
}

async fn migrate(url: &str) -> anyhow::Result<()> {
    let (_, name) = schema::db::split_url(url)?;
    println!("migrate: ensuring database `{name}` exists");
    let applied = schema::db::create_and_migrate(url).await?;
    let known = schema::MIGRATOR.iter().count();
    println!("migrate: applied {applied} migration(s); {known} known, database is up to date");
    Ok(())
}

async fn seed(url: &str, args: SeedArgs) -> anyhow::Result<()> {
    let (_, name) = schema::db::split_url(url)?;
    let config = SeedConfig {
        seed: args.seed,
        students: args.students,
        sections: args.sections,
    };
    config.validate()?;
    let pool = schema::db::connect(url, 2)
        .await
        .with_context(|| format!("connecting to `{name}` (run `sluice-db migrate` first)"))?;

    if args.reset {
        seed::reset(&pool).await?;
        println!("seed: --reset emptied every table of `{name}`");
    }

    println!(
        "seed: `{name}` with seed {}, {} students, {} sections",
        config.seed, config.students, config.sections
    );
    let started = Instant::now();
    let mut printer = ProgressPrinter::default();
    match seed::seed_with_progress(&pool, &config, |p| printer.report(p)).await? {
        SeedOutcome::Seeded(s) => println!(
            "seed: term {}: {} departments, {} courses ({} prerequisites), {} sections \
             ({} meetings), {} students ({} completed courses), {} admins in {:.1} s",
            s.term_code,
            s.departments,
            s.courses,
            s.prerequisites,
            s.sections,
            s.meetings,
            s.students,
            s.completed_courses,
            s.admins,
            started.elapsed().as_secs_f64()
        ),
        SeedOutcome::AlreadySeeded(c) => println!(
            "seed: already seeded ({} students, {} sections); use --reset",
            c.students, c.sections
        ),
    }

    if args.demo {
        let round = seed::ensure_demo_round(&pool, chrono::Utc::now()).await?;
        let verb = if round.created { "created" } else { "kept" };
        println!(
            "seed: {verb} round {} \"{}\" for class years 1-4, open {} .. {} (UTC)",
            round.id,
            seed::DEMO_ROUND_NAME,
            round.opens_at.format("%Y-%m-%d %H:%M"),
            round.closes_at.format("%Y-%m-%d %H:%M")
        );
    }

    println!("demo credentials (published demo data, never for real accounts):");
    for (year, number) in seed::demo_students(&pool).await? {
        println!("  student, year {year}: {number} / {DEMO_STUDENT_PASSWORD}");
    }
    for admin in DEMO_ADMINS {
        println!("  {}: {} / {}", admin.role, admin.username, admin.password);
    }
    pool.close().await;
    Ok(())
}

async fn drop_database(url: &str) -> anyhow::Result<()> {
    let (_, name) = schema::db::split_url(url)?;
    schema::db::drop_database(url).await?;
    println!("drop: database `{name}` dropped (if it existed)");
    Ok(())
}

/// Prints each table's progress at every quarter, not after every chunk.
#[derive(Default)]
struct ProgressPrinter {
    last: Option<(&'static str, usize)>,
}

impl ProgressPrinter {
    fn report(&mut self, p: Progress) {
        let quarter = (p.done * 4).checked_div(p.total).unwrap_or(4);
        if self.last != Some((p.table, quarter)) {
            self.last = Some((p.table, quarter));
            println!("  {p}");
        }
    }
}
