//! Test fixtures: a fresh database and queue topology per test, catalog
//! builders, pass signing, and running workers in-process or as processes.

use broker::{Publisher, Topology};
use chrono::Utc;
use enrollment::{Action, Command, RoundId, SectionId, StudentId};
use rand::Rng;
use service::connections::SecretString;
use sqlx::MySqlPool;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use waitroom::{Keyring, PassClaims};
use worker::config::Config;
use worker::ledger::{Ledger, RetryPolicy};

pub const KEYS: &str = "t1:test-signing-key-0123456789abcdef0123";
pub const AMQP: &str = service::connections::DEFAULT_AMQP_URL;

fn suffix() -> String {
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

/// A database of its own ([`schema::testing::TestDb`]), dropped when the
/// test ends, pass or fail.
pub struct TestDb(schema::testing::TestDb);

impl std::ops::Deref for TestDb {
    type Target = schema::testing::TestDb;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl TestDb {
    pub async fn new() -> TestDb {
        TestDb(schema::testing::TestDb::create("sluice_t_", 16).await)
    }
}

pub struct Catalog<'a> {
    pub pool: &'a MySqlPool,
    pub term: u32,
    pub dept: u32,
    pub round: RoundId,
}

impl<'a> Catalog<'a> {
    /// A term, a department and an open round for every class year.
    pub async fn new(db: &'a TestDb) -> Catalog<'a> {
        let pool = &db.pool;
        let term = sqlx::query("INSERT INTO terms (code, name, starts_on, ends_on) VALUES ('T1', 'Test term', '2027-03-02', '2027-06-20')")
            .execute(pool).await.expect("term").last_insert_id() as u32;
        let dept = sqlx::query("INSERT INTO departments (code, name_ko, name_en) VALUES ('CSE', '컴퓨터공학과', 'Computer Science')")
            .execute(pool).await.expect("dept").last_insert_id() as u32;
        let round = sqlx::query(
            "INSERT INTO rounds (term_id, name, eligible_years_mask, prequeue_at, opens_at, closes_at, state) \
             VALUES (?, 'Round 1', 15, NOW(3) - INTERVAL 1 HOUR, NOW(3) - INTERVAL 1 MINUTE, NOW(3) + INTERVAL 1 DAY, 'open')",
        )
        .bind(term)
        .execute(pool).await.expect("round").last_insert_id() as u32;
        Catalog {
            pool,
            term,
            dept,
            round: RoundId(round),
        }
    }

    /// A course with one section; `meetings` as (weekday, start_min, end_min).
    pub async fn section(
        &self,
        code: &str,
        credits: u8,
        capacity: u32,
        meetings: &[(u8, u16, u16)],
    ) -> SectionId {
        let course = sqlx::query(
            "INSERT INTO courses (term_id, department_id, code, title_ko, title_en, credits) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(self.term).bind(self.dept).bind(code).bind(format!("과목 {code}")).bind(format!("Course {code}")).bind(credits)
        .execute(self.pool).await.expect("course").last_insert_id() as u32;
        self.another_section(course, 1, capacity, meetings).await
    }

    /// Another section of an existing course.
    pub async fn another_section(
        &self,
        course: u32,
        number: u16,
        capacity: u32,
        meetings: &[(u8, u16, u16)],
    ) -> SectionId {
        let id = sqlx::query("INSERT INTO sections (course_id, number, capacity) VALUES (?, ?, ?)")
            .bind(course)
            .bind(number)
            .bind(capacity)
            .execute(self.pool)
            .await
            .expect("section")
            .last_insert_id() as u32;
        for (d, s, e) in meetings {
            sqlx::query("INSERT INTO section_meetings (section_id, weekday, start_min, end_min) VALUES (?, ?, ?, ?)")
                .bind(id).bind(d).bind(s).bind(e)
                .execute(self.pool).await.expect("meeting");
        }
        SectionId(id)
    }

    pub async fn course_of(&self, section: SectionId) -> u32 {
        sqlx::query_scalar("SELECT course_id FROM sections WHERE id = ?")
            .bind(section.0)
            .fetch_one(self.pool)
            .await
            .expect("course_of")
    }

    /// `n` students of class year 1 with an 18-credit maximum.
    pub async fn students(&self, n: usize) -> Vec<StudentId> {
        let mut ids = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO students (number, name, class_year, max_credits) ",
            );
            let base = rand::thread_rng().gen::<u32>() % 1_000_000;
            qb.push_values(chunk, |mut b, i| {
                b.push_bind(format!("S{base:06}{i:07}"))
                    .push_bind(format!("학생{i}"))
                    .push_bind(1u8)
                    .push_bind(18u8);
            });
            let first = qb
                .build()
                .execute(self.pool)
                .await
                .expect("students")
                .last_insert_id() as u32;
            ids.extend((0..chunk.len() as u32).map(|k| StudentId(first + k)));
        }
        ids
    }

    pub async fn enrolled(&self, section: SectionId) -> (u32, i64) {
        let count: u32 = sqlx::query_scalar("SELECT enrolled FROM sections WHERE id = ?")
            .bind(section.0)
            .fetch_one(self.pool)
            .await
            .expect("enrolled");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM enrollments WHERE section_id = ?")
            .bind(section.0)
            .fetch_one(self.pool)
            .await
            .expect("rows");
        (count, rows)
    }
}

pub fn keyring() -> Keyring {
    Keyring::from_spec(KEYS).expect("test keys")
}

/// A pass for `student` in `round`, valid for ten minutes from now.
pub fn pass(student: StudentId, round: RoundId) -> String {
    let now = Utc::now().timestamp_millis() as u64;
    keyring().sign_pass(&PassClaims {
        round,
        student,
        lease: uuid::Uuid::now_v7(),
        budget: 50,
        iat: now,
        exp: now + 600_000,
    })
}

pub fn enroll(student: StudentId, round: RoundId, sections: &[SectionId]) -> Command {
    Command::new(
        student,
        round,
        pass(student, round),
        Action::Enroll {
            sections: sections.to_vec(),
            waitlist: false,
            options: Vec::new(),
        },
    )
}

pub fn drop_cmd(student: StudentId, round: RoundId, section: SectionId) -> Command {
    Command::new(
        student,
        round,
        pass(student, round),
        Action::Drop { section },
    )
}

/// A ledger as one worker would have it (its own pool).
pub async fn ledger(db: &TestDb, name: &str) -> Ledger {
    ledger_with(db, name, RetryPolicy::default()).await
}

/// A ledger with its own retry and timeout settings.
pub async fn ledger_with(db: &TestDb, name: &str, retry: RetryPolicy) -> Ledger {
    Ledger {
        pool: worker::ledger::connect(&db.url, 8, &retry)
            .await
            .expect("ledger pool"),
        // What a worker holds: the pass keys alone.
        keyring: Keyring::pass_only(KEYS).expect("test keys"),
        worker: name.to_string(),
        max_command_age: chrono::Duration::hours(1),
        retry,
        shutdown: CancellationToken::new(),
    }
}

/// A queue topology of its own, deleted when the test ends.
pub struct TestQueues {
    pub prefix: String,
    pub topology: Topology,
}

impl TestQueues {
    pub fn new() -> TestQueues {
        let prefix = format!("t{}", suffix());
        TestQueues {
            topology: Topology::new(&prefix),
            prefix,
        }
    }

    pub async fn publisher(&self) -> Publisher {
        Publisher::connect(AMQP, self.topology.clone(), Duration::from_secs(10))
            .await
            .expect("publisher")
    }

    pub async fn channel(&self) -> (lapin::Connection, lapin::Channel) {
        let conn = broker::connect(AMQP, "test", Duration::from_secs(10))
            .await
            .expect("amqp");
        let ch = conn.create_channel().await.expect("channel");
        broker::declare(&ch, &self.topology).await.expect("declare");
        (conn, ch)
    }
}

impl Drop for TestQueues {
    fn drop(&mut self) {
        let t = self.topology.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok(conn) =
                        broker::connect(AMQP, "test-cleanup", Duration::from_secs(5)).await
                    {
                        if let Ok(ch) = conn.create_channel().await {
                            let _ = broker::delete(&ch, &t).await;
                        }
                        let _ = conn.close(200, "bye").await;
                    }
                });
            }
        })
        .join();
    }
}

pub fn worker_config(db: &TestDb, queues: &TestQueues, name: &str) -> Config {
    let mut c = Config::dev();
    c.connections.database_url = SecretString::from(db.url.clone());
    c.connections.amqp_url = SecretString::from(AMQP.to_string());
    c.queue_prefix = queues.prefix.clone();
    c.pass_keys = Some(KEYS.to_string());
    c.name = Some(name.to_string());
    c.max_batch = 200;
    c.prefetch = 400;
    c.min_txn = 16;
    c
}

/// A worker running in this process until the returned token is cancelled.
pub struct RunningWorker {
    pub token: CancellationToken,
    pub handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub metrics_url: String,
}

impl RunningWorker {
    pub async fn start(config: Config) -> RunningWorker {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let metrics_url = format!("http://{}", listener.local_addr().expect("addr"));
        let token = CancellationToken::new();
        let handle = tokio::spawn(worker::run(config, listener, token.clone()));
        RunningWorker {
            token,
            handle,
            metrics_url,
        }
    }

    pub async fn stop(self) {
        self.token.cancel();
        self.handle
            .await
            .expect("worker task")
            .expect("worker result");
    }
}

/// Command ids that have at least one outcome row.
pub async fn decided(pool: &MySqlPool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(DISTINCT command_id) FROM command_outcomes")
        .fetch_one(pool)
        .await
        .expect("decided")
}

/// Polls until `n` commands are decided, or panics after `limit`.
pub async fn wait_decided(pool: &MySqlPool, n: i64, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let d = decided(pool).await;
        if d >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {d} of {n} commands decided within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Outcome counts for a section: (outcome, reason) → n.
pub async fn outcomes(
    pool: &MySqlPool,
    section: SectionId,
) -> std::collections::HashMap<String, i64> {
    let rows: Vec<(String, Option<String>, i64)> = sqlx::query_as(
        "SELECT outcome, reason, COUNT(*) FROM command_outcomes WHERE section_id = ? GROUP BY outcome, reason",
    )
    .bind(section.0)
    .fetch_all(pool)
    .await
    .expect("outcomes");
    rows.into_iter()
        .map(|(o, r, n)| (r.map(|r| format!("{o}:{r}")).unwrap_or(o), n))
        .collect()
}
