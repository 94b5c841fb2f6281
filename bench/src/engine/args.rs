//! The flags of a surge, shared by `bench surge`, `bench cluster` and
//! `bench chaos` (the last two flatten them into their own).

use crate::arrivals::Shape;
use crate::flags::{parse_duration, parse_env};
use clap::Args as ClapArgs;
use std::time::Duration;

/// A `--priority` value, validated and written canonically.
fn parse_priority(s: &str) -> Result<String, String> {
    match waitroom::Priority::parse(s) {
        Ok(Some(p)) => Ok(p.spec()),
        Ok(None) => Err("give strict:... or weighted:... (or leave --priority out)".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The admin API's body for a priority spec.
pub fn priority_body(spec: &str) -> Option<serde_json::Value> {
    let p = waitroom::Priority::parse(spec).ok()??;
    let groups: Vec<serde_json::Value> = p
        .named()
        .iter()
        .map(|g| {
            let years: Vec<u8> = (1..=8).filter(|y| g.years & (1 << (y - 1)) != 0).collect();
            match p.mode() {
                waitroom::PriorityMode::Strict => serde_json::json!({ "years": years }),
                waitroom::PriorityMode::Weighted => {
                    serde_json::json!({ "years": years, "weight": g.weight })
                }
            }
        })
        .collect();
    Some(serde_json::json!({ "mode": p.mode().as_str(), "groups": groups }))
}

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
    #[arg(long, env = "BENCH_ROUND")]
    pub round: Option<u32>,
    /// Registrar credentials for the admin API, `user:password` (the
    /// rehearsal Job gives them from a Secret).
    #[arg(
        long,
        env = "BENCH_ADMIN",
        hide_env_values = true,
        default_value = "registrar:registrar-demo"
    )]
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
        default_value = service::connections::DEFAULT_MYSQL_SERVER
    )]
    pub mysql: String,
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = service::connections::DEFAULT_AMQP_URL
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
    /// Write what each student saw here, one JSON object a line: the click,
    /// every estimate shown, the admission (`docs/bench.md`).
    #[arg(long)]
    pub journeys: Option<std::path::PathBuf>,
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
    /// Gives classes an earlier turn: `strict:4/1-3` (4th years first) or
    /// `weighted:4=2,1-3=1` (two turns for 4th years to one for the
    /// others), set through the admin API before the room opens; the
    /// report then has per-class figures under `priority`.
    #[arg(long, value_parser = parse_priority)]
    pub priority: Option<String>,
    /// Every student told "skipped" joins again (suspended students always
    /// do), as the page asks them to.
    #[arg(long)]
    pub rejoin_skipped: bool,
    /// Share of students who fill their cart on the server before the day
    /// (`POST /api/cart`) and, while waiting, ask for it to be sent the
    /// moment they are admitted (`PUT /api/queue/auto-send`). The others
    /// click "enroll" after admission.
    #[arg(long, default_value_t = 0.0)]
    pub auto_send: f64,
    /// Alternates per cart item (0-4): other sections of the item's course,
    /// tried in order when the first choice is refused.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=4))]
    pub alternates: u8,
    /// Share of students who ask for a waitlist place on every item whose
    /// choices are all full.
    #[arg(long, default_value_t = 0.0)]
    pub waitlist: f64,
    /// Automatic pace, `FLOOR:CEILING` in students per minute: the leader
    /// sets the rate within that range from the command backlog and the
    /// decision latency (`--rate` is then only where it starts).
    #[arg(long, value_parser = parse_pace_range)]
    pub auto_pace: Option<(u32, u32)>,
    /// Decision latency the automatic pace aims at (90th percentile).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub pace_latency: Duration,
    /// Command backlog the automatic pace aims at.
    #[arg(long, default_value_t = 500)]
    pub pace_backlog: u32,
    /// (with `--auto-pace`, and MySQL at hand) The workers' speed an
    /// earlier round measured, in admissions a minute, recorded on a closed
    /// round before the surge as a rehearsal or an earlier round would
    /// leave it; the surge's round starts from it. Take it from an earlier
    /// run's `pace: workers measured` line.
    #[arg(long, requires = "auto_pace")]
    pub pace_capacity: Option<u32>,
}

/// `FLOOR:CEILING`, two rates in students per minute.
fn parse_pace_range(s: &str) -> Result<(u32, u32), String> {
    let (floor, ceiling) = s
        .split_once(':')
        .ok_or_else(|| format!("expected FLOOR:CEILING, got {s:?}"))?;
    let floor: u32 = floor
        .trim()
        .parse()
        .map_err(|_| format!("floor {floor:?} is not a rate"))?;
    let ceiling: u32 = ceiling
        .trim()
        .parse()
        .map_err(|_| format!("ceiling {ceiling:?} is not a rate"))?;
    if floor == 0 || floor > ceiling {
        return Err(format!(
            "the floor must be at least 1 and at most the ceiling, got {floor}:{ceiling}"
        ));
    }
    Ok((floor, ceiling))
}

impl Args {
    /// The admin API's pace body for `--auto-pace`, if given.
    pub fn pace_body(&self) -> Option<serde_json::Value> {
        self.auto_pace.map(|(floor, ceiling)| {
            serde_json::json!({
                "mode": "auto",
                "floor": floor,
                "ceiling": ceiling,
                "target_latency_ms": u32::try_from(self.pace_latency.as_millis()).unwrap_or(u32::MAX),
                "target_backlog": self.pace_backlog,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_pace_range;

    #[test]
    fn pace_ranges_parse_and_bad_ones_say_why() {
        assert_eq!(parse_pace_range("600:12000"), Ok((600, 12_000)));
        assert!(parse_pace_range("0:10").unwrap_err().contains("floor"));
        assert!(parse_pace_range("20:10").unwrap_err().contains("at most"));
        assert!(parse_pace_range("600")
            .unwrap_err()
            .contains("FLOOR:CEILING"));
        assert!(parse_pace_range("a:10").unwrap_err().contains("not a rate"));
    }
}
