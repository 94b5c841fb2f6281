//! Test scaffolding: a fresh database per test, the gateway in-process on
//! port 0 (or as real processes), and a command sink that records instead
//! of publishing.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use enrollment::{Command, RoundId, StudentId};
use futures_util::future::BoxFuture;
use gateway::config::Config;
use gateway::publish::{CommandSink, SinkError};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::MySqlPool;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::process::{Child, Command as Process};

pub const KEYS: &str = "t1:integration-test-signing-key-0123456789";
/// The pass keys: a secret of their own, and all a worker is given.
pub const PASS_KEYS: &str = "p1:integration-test-pass-key-0123456789abcd";
/// What a worker is given to verify passes.
pub const WORKER_KEYS: &str = PASS_KEYS;

/// The keys a test signs with, as the gateway under test holds them.
pub fn keyring() -> waitroom::Keyring {
    waitroom::Keyring::from_spec(KEYS)
        .unwrap()
        .with_pass_keys(PASS_KEYS)
        .unwrap()
}
pub const AMQP: &str = service::connections::DEFAULT_AMQP_URL;

pub fn now_ms() -> u64 {
    gateway::clock::now_ms()
}

/// A cheap argon2 hash: tests need the format, not the cost.
pub fn hash(password: &str) -> String {
    let params = Params::new(256, 1, 1, None).unwrap();
    let salt = SaltString::from_b64("dGVzdHNhbHR0ZXN0c2FsdA").unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

pub async fn code(r: reqwest::Response) -> String {
    let v: Value = r.json().await.unwrap();
    v["code"].as_str().unwrap_or_default().to_string()
}

/// The value of the series `series` (name and labels exactly as rendered)
/// in Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

/// Sends a request and reads its whole body as text, failing the test on
/// a transport error.
pub trait FetchText {
    fn fetch_text(self) -> impl std::future::Future<Output = String>;
}

impl FetchText for reqwest::RequestBuilder {
    async fn fetch_text(self) -> String {
        self.send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("body read")
    }
}

/// Polls `cond` until it holds, failing the test after `limit`.
/// The queue token in a join or status answer.
pub fn token(v: &Value) -> String {
    v["token"].as_str().unwrap().to_string()
}

pub async fn wait_until<F, Fut>(limit: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A database of its own ([`schema::testing::TestDb`]: dropped with the
/// value, also when the test panics), with the rows the tests start from.
pub struct TestDb(schema::testing::TestDb);

impl std::ops::Deref for TestDb {
    type Target = schema::testing::TestDb;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl TestDb {
    pub async fn create() -> TestDb {
        let db = schema::testing::TestDb::create("sluice_gw_", 4).await;
        sqlx::query("INSERT INTO terms (id, code, name, starts_on, ends_on) VALUES (1, '2026-2', 'Fall 2026', '2026-09-01', '2026-12-20')")
            .execute(&db.pool)
            .await
            .unwrap();
        TestDb(db)
    }

    pub async fn student(&self, number: &str, year: u8) -> StudentId {
        let id = sqlx::query(
            "INSERT INTO students (number, name, class_year, password_hash) VALUES (?, ?, ?, ?)",
        )
        .bind(number)
        .bind(format!("Student {number}"))
        .bind(year)
        .bind(hash("pw"))
        .execute(&self.pool)
        .await
        .unwrap()
        .last_insert_id();
        StudentId(u32::try_from(id).unwrap())
    }

    pub async fn seed_admin(&self) {
        sqlx::query("INSERT INTO admins (username, display_name, role, password_hash) VALUES ('registrar', 'Registrar', 'registrar', ?)")
            .bind(hash("admin-pw"))
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// A round for class years 1-4 in `state`, open from an hour ago (or an
    /// hour from now while in pre-queue).
    pub async fn round(&self, state: &str, per_min: u32) -> RoundId {
        let (pre, opens) = if state == "prequeue" {
            ("-1", "1")
        } else {
            ("-2", "-1")
        };
        let id = sqlx::query(&format!(
            "INSERT INTO rounds (term_id, name, eligible_years_mask, prequeue_at, opens_at, closes_at, state, admission_per_min) \
             VALUES (1, 'Test round', 15, UTC_TIMESTAMP(3) + INTERVAL {pre} HOUR, UTC_TIMESTAMP(3) + INTERVAL {opens} HOUR, UTC_TIMESTAMP(3) + INTERVAL 5 HOUR, ?, ?)"
        ))
        .bind(state)
        .bind(per_min)
        .execute(&self.pool)
        .await
        .unwrap()
        .last_insert_id();
        RoundId(u32::try_from(id).unwrap())
    }

    /// A course `code` with one section of `capacity` seats.
    pub async fn section(&self, code: &str, number: u16, capacity: u32) -> u32 {
        sqlx::query("INSERT IGNORE INTO departments (code, name_ko, name_en) VALUES ('CSE', '컴퓨터공학과', 'Computer Science')")
            .execute(&self.pool)
            .await
            .unwrap();
        sqlx::query("INSERT IGNORE INTO courses (term_id, department_id, code, title_ko, title_en, credits) SELECT 1, id, ?, ?, ?, 3 FROM departments WHERE code = 'CSE'")
            .bind(code)
            .bind(code)
            .bind(code)
            .execute(&self.pool)
            .await
            .unwrap();
        let id = sqlx::query("INSERT INTO sections (course_id, number, capacity) SELECT id, ?, ? FROM courses WHERE code = ?")
            .bind(number)
            .bind(capacity)
            .bind(code)
            .execute(&self.pool)
            .await
            .unwrap()
            .last_insert_id();
        u32::try_from(id).unwrap()
    }

    /// The gateway's store on this database (10 s timeout, 10 min passes).
    pub fn store(&self) -> gateway::db::MySqlStore {
        gateway::db::MySqlStore::new(
            self.pool.clone(),
            Duration::from_secs(10),
            Duration::from_secs(600),
        )
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    pub async fn count_u64(&self, sql: &str) -> u64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    pub async fn drop(self) {
        self.0.remove().await.unwrap();
    }
}

/// Records commands instead of publishing; can be told to fail.
#[derive(Default)]
pub struct FakeSink {
    sent: Mutex<Vec<Command>>,
    failing: AtomicBool,
    late: AtomicBool,
}

impl FakeSink {
    pub fn sent(&self) -> Vec<Command> {
        self.sent.lock().unwrap().clone()
    }

    pub fn fail(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    /// Queues each command but answers as a confirm that came after the
    /// gateway stopped waiting: the copy is on the queue and will be
    /// decided, yet the gateway saw no confirm.
    pub fn confirm_late(&self, on: bool) {
        self.late.store(on, Ordering::SeqCst);
    }
}

impl CommandSink for FakeSink {
    fn publish<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if self.failing.load(Ordering::SeqCst) {
                return Err(SinkError { kind: "timeout" });
            }
            self.sent.lock().unwrap().push(command.clone());
            if self.late.load(Ordering::SeqCst) {
                return Err(SinkError { kind: "timeout" });
            }
            Ok(())
        })
    }

    fn probe(&self) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }
}

pub fn test_config(db_url: &str) -> Config {
    let mut c = Config::defaults();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.connections.database_url = SecretString::from(db_url.to_string());
    c.signing_keys = Some(SecretString::from(KEYS.to_string()));
    c.pass_keys = Some(SecretString::from(PASS_KEYS.to_string()));
    c.tick_ms = 100;
    c.refresh_ms = 100;
    c.poll_min_ms = 200;
    c.poll_max_ms = 1_000;
    c.student_rate = 1_000;
    c.student_burst = 1_000;
    c.ip_rate = 10_000;
    c.ip_burst = 10_000;
    c.db_pool = 4;
    c
}

/// One gateway in this process, on port 0, with its own database.
pub struct TestApp {
    pub db: TestDb,
    pub pool: MySqlPool,
    pub addr: std::net::SocketAddr,
    /// The operations port, when the tweak set `metrics_addr` (port 0 is
    /// bound here and the real port written back).
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub client: reqwest::Client,
    pub keyring: waitroom::Keyring,
    pub sink: Arc<FakeSink>,
    /// The broker names, when publishing to the real RabbitMQ.
    pub prefix: Option<String>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A worker running in this process on a test app's database and queue
/// names (the app must publish to the real broker).
pub struct TestWorker {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl TestWorker {
    /// Stops it and checks it ended cleanly.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

impl TestApp {
    /// Starts a worker named `name` on this app's database and queues;
    /// `tweak` adjusts its configuration first.
    pub async fn start_worker(
        &self,
        name: &str,
        tweak: impl FnOnce(&mut worker::config::Config),
    ) -> TestWorker {
        let mut c = worker::config::Config::dev();
        c.connections.database_url = SecretString::from(self.db.url.clone());
        c.connections.amqp_url = SecretString::from(AMQP.to_string());
        c.queue_prefix = self
            .prefix
            .clone()
            .expect("an app publishing to the broker");
        c.pass_keys = Some(WORKER_KEYS.to_string());
        c.name = Some(name.into());
        tweak(&mut c);
        let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(worker::run(c, metrics, stop.clone()));
        TestWorker { stop, task }
    }

    /// Reads command `id`'s outcome with `pass` until it is decided (at
    /// most 30 s); its items.
    pub async fn decided_items(&self, pass: &str, id: &str) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let o: Value = self
                .get(&format!("/api/commands/{id}"))
                .header("x-pass", pass)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if o["state"] == "decided" {
                return o["items"].as_array().unwrap().clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "never decided: {o}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A gateway whose commands go to a [`FakeSink`].
    pub async fn spawn(tweak: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::start(tweak, false).await
    }

    /// A gateway publishing to the real RabbitMQ, under names of its own
    /// (removed by [`TestApp::finish`]).
    pub async fn spawn_with_broker(tweak: impl FnOnce(&mut Config)) -> TestApp {
        TestApp::start(tweak, true).await
    }

    async fn start(tweak: impl FnOnce(&mut Config), broker: bool) -> TestApp {
        let db = TestDb::create().await;
        db.seed_admin().await;
        let mut config = test_config(&db.url);
        config.connections.amqp_url = SecretString::from(AMQP.to_string());
        config.amqp_prefix = format!("sluice-test-{}", &db.name[10..]);
        tweak(&mut config);
        let mut ops_listener = None;
        if let Some(addr) = config.metrics_addr {
            let l = tokio::net::TcpListener::bind(addr).await.unwrap();
            config.metrics_addr = Some(l.local_addr().unwrap());
            ops_listener = Some(l);
        }
        let metrics_addr = config.metrics_addr;
        let prefix = broker.then(|| config.amqp_prefix.clone());
        let sink = Arc::new(FakeSink::default());
        let real = (!broker).then(|| sink.clone() as Arc<dyn CommandSink>);
        let mut gateway = gateway::Gateway::build(config, real).await.unwrap();
        if let Some(l) = ops_listener {
            gateway = gateway.with_metrics_listener(l);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(gateway.run(listener, async {
            let _ = stopped.await;
        }));
        let app = TestApp {
            pool: db.pool.clone(),
            db,
            addr,
            metrics_addr,
            client: reqwest::Client::new(),
            keyring: keyring(),
            sink,
            prefix,
            stop,
            task,
        };
        let client = app.client.clone();
        let ready = app.url("/readyz");
        wait_until(Duration::from_secs(10), || {
            let (client, ready) = (client.clone(), ready.clone());
            async move {
                client
                    .get(ready)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
            }
        })
        .await;
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    pub async fn round(&self, state: &str, per_min: u32) -> RoundId {
        let id = self.db.round(state, per_min).await;
        // Wait until this gateway's snapshot knows it.
        wait_until(Duration::from_secs(5), || async {
            self.get(&format!("/api/rounds/{id}"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        id
    }

    pub async fn student(&self, number: &str, year: u8) -> StudentId {
        self.db.student(number, year).await
    }

    /// Signs in through `POST /api/session` with `body` on `client` (one
    /// that keeps cookies); returns it with the session's CSRF value.
    pub async fn sign_in(&self, client: reqwest::Client, body: Value) -> (reqwest::Client, String) {
        let r = client
            .post(self.url("/api/session"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let info: Value = r.json().await.unwrap();
        (client, info["csrf"].as_str().unwrap().to_string())
    }

    pub async fn join(&self, round: RoundId, number: &str) -> reqwest::Response {
        self.join_with(round, number, "pw").await
    }

    pub async fn join_with(
        &self,
        round: RoundId,
        number: &str,
        password: &str,
    ) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/rounds/{round}/join")))
            .json(&json!({ "student_number": number, "password": password }))
            .send()
            .await
            .unwrap()
    }

    pub async fn status(&self, token: &str) -> Value {
        let r = self
            .get("/api/queue/status")
            .header("x-queue-token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Waits until the leader holds admission because RabbitMQ cannot be
    /// reached (after the broker was cut).
    pub async fn wait_for_broker_hold(&self) {
        wait_until(Duration::from_secs(15), || async {
            self.db
                .count("SELECT COUNT(*) FROM rounds WHERE hold_reason = 'broker'")
                .await
                == 1
        })
        .await;
    }

    pub async fn poll_until(&self, token: &str, cond: impl Fn(&Value) -> bool) -> Value {
        self.poll_until_within(token, Duration::from_secs(15), cond)
            .await
    }

    /// [`TestApp::poll_until`] for conditions that take longer (the pace's
    /// measurement windows).
    pub async fn poll_until_within(
        &self,
        token: &str,
        within: Duration,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let s = self.status(token).await;
            if cond(&s) {
                return s;
            }
            assert!(tokio::time::Instant::now() < deadline, "last status: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn enroll(&self, pass: Option<&str>, body: Value) -> reqwest::Response {
        let mut req = self.client.post(self.url("/api/enroll")).json(&body);
        if let Some(p) = pass {
            req = req.header("x-pass", p);
        }
        req.send().await.unwrap()
    }

    pub async fn admin(&self, round: RoundId, body: Value) -> Value {
        let r = self
            .client
            .post(self.url(&format!("/api/admin/rounds/{round}")))
            .basic_auth("registrar", Some("admin-pw"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Stops the gateway (graceful shutdown) and drops the database and
    /// the broker names.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
        if let Some(prefix) = &self.prefix {
            delete_topology(prefix).await;
        }
        self.db.drop().await;
    }
}

/// Gateways as separate processes of the built binary, on one database.
pub struct Cluster {
    children: Vec<Option<Child>>,
    ports: Vec<u16>,
    prefix: String,
}

/// Removes the queues and exchanges under `prefix` from the shared broker.
pub async fn delete_topology(prefix: &str) {
    if let Ok(conn) = broker::connect(AMQP, "sluice-test-cleanup", Duration::from_secs(5)).await {
        if let Ok(channel) = conn.create_channel().await {
            let _ = broker::delete(&channel, &broker::Topology::new(prefix)).await;
        }
    }
}

impl Cluster {
    pub async fn start(db: &TestDb, n: usize) -> Cluster {
        Cluster::start_env(db, n, &[]).await
    }

    /// Like [`Cluster::start`], with `env` set last (it overrides).
    pub async fn start_env(db: &TestDb, n: usize, env: &[(&str, &str)]) -> Cluster {
        let prefix = format!("sluice-test-{}", &db.name[10..]);
        let mut children = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..n {
            // Reserve a free port, release it, hand it to the child.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Process::new(env!("CARGO_BIN_EXE_sluice-gateway"))
                .env("SLUICE_LISTEN", format!("127.0.0.1:{port}"))
                .env("DATABASE_URL", &db.url)
                .env("SLUICE_SIGNING_KEYS", KEYS)
                .env("SLUICE_PASS_KEYS", PASS_KEYS)
                .env("SLUICE_QUEUE_PREFIX", &prefix)
                .env("SLUICE_TICK_MS", "100")
                .env("SLUICE_REFRESH_MS", "100")
                .env("SLUICE_POLL_MIN_MS", "200")
                .env("SLUICE_POLL_MAX_MS", "1000")
                .env("SLUICE_STUDENT_RATE", "1000")
                .env("SLUICE_STUDENT_BURST", "1000")
                .env("SLUICE_IP_RATE", "10000")
                .env("SLUICE_IP_BURST", "10000")
                .env("SLUICE_DB_POOL", "4")
                .env("RUST_LOG", "warn")
                .envs(env.iter().copied())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            children.push(Some(child));
            ports.push(port);
        }
        let cluster = Cluster {
            children,
            ports,
            prefix,
        };
        let client = reqwest::Client::new();
        for i in 0..n {
            let url = format!("{}/readyz", cluster.base(i));
            wait_until(Duration::from_secs(30), || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    client
                        .get(url)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200)
                }
            })
            .await;
        }
        cluster
    }

    pub fn base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    pub fn alive(&self) -> Vec<usize> {
        (0..self.children.len())
            .filter(|&i| self.children[i].is_some())
            .collect()
    }

    pub async fn join(
        &self,
        client: &reqwest::Client,
        g: usize,
        round: RoundId,
        number: &str,
    ) -> Value {
        let url = format!("{}/api/rounds/{round}/join", self.base(g));
        let mut last = None;
        // The round may not be in a fresh gateway's snapshot for a tick.
        for _ in 0..50 {
            let r = client
                .post(&url)
                .json(&json!({ "student_number": number, "password": "pw" }))
                .send()
                .await
                .unwrap();
            if r.status() == 200 {
                return r.json().await.unwrap();
            }
            last = Some(r.status());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("join via gateway {g} failed: {last:?}");
    }

    pub async fn status(&self, client: &reqwest::Client, g: usize, token: &str) -> Value {
        let r = client
            .get(format!("{}/api/queue/status", self.base(g)))
            .header("x-queue-token", token)
            .send()
            .await
            .unwrap();
        r.json().await.unwrap_or(Value::Null)
    }

    /// The gateway that reports itself leader, waiting up to `limit`.
    pub async fn wait_for_leader(&self, client: &reqwest::Client, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            for g in self.alive() {
                if let Ok(r) = client.get(format!("{}/metrics", self.base(g))).send().await {
                    let text = r.text().await.unwrap_or_default();
                    if text.lines().any(|l| l.trim() == "sluice_waitroom_leader 1") {
                        return g;
                    }
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no leader within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no graceful release of the lock.
    pub fn kill(&mut self, g: usize) {
        if let Some(mut child) = self.children[g].take() {
            child.start_kill().unwrap();
        }
    }

    pub async fn stop(mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        // Leave no queues behind on the shared broker.
        delete_topology(&self.prefix).await;
    }
}
