//! Sluice's HTTP gateway: the waiting room, the enrollment command API and
//! the registrar's round controls.
//!
//! The gateway verifies tokens statelessly, answers status polls from an
//! in-memory room snapshot, batches joins into the global sequencer in
//! MySQL, and turns admitted students' requests into confirmed RabbitMQ
//! commands. One gateway at a time is the admission leader.
//!
//! # Layout
//! Layers, top to bottom; a module uses only those below it.
//!
//! - [`http`]: routing, middleware and extractors. [`http::api`] holds the
//!   JSON handlers (session, queue, commands, admin); [`http::pages`] the
//!   server-rendered pages, one file per feature (the queue page, the
//!   student's pages, the registrar's). Handlers stay thin: they check who
//!   is asking, call the layers below, and render.
//! - [`web`], [`i18n`]: what every page shares (layout, forms and CSRF,
//!   error pages, assets) and every text, in Korean and English.
//! - [`auth`], [`session`], [`limits`], [`throttle`]: who is asking
//!   (passwords, login sessions, tokens) and how often they may.
//! - [`rooms`], [`batcher`], [`liveness`], [`leader`], [`heartbeat`]: the
//!   waiting room as this gateway serves it: the snapshot polls read, joins
//!   and liveness written in bulk, leadership and the admission tick.
//! - [`publish`]: confirmed command publishing to RabbitMQ; [`autosend`]
//!   sends an opted-in student's cart the moment they are admitted, and
//!   [`cart`] builds the cart's one enroll command (with alternates).
//! - [`catalog`], [`seats`], [`live`], [`csv_import`]: the in-memory course
//!   catalog, seats left in the hottest sections, the registrar's live view,
//!   and CSV parsing and validation (pure; its writes are in `db`).
//! - [`db`]: every SQL statement, grouped by entity, and [`db::StoreError`];
//!   [`error`] maps it to an answer in one place (waiting cures it: 503 with
//!   Retry-After; anything else: a 500 logged with its cause).
//! - [`config`], [`telemetry`], [`clock`]: configuration, the gateway's
//!   metrics, and time (so tests can move it).
//!
//! Below all of these sit the pure crates (`waitroom`, `enrollment`) and
//! the shared plumbing (`service`: logging, shutdown, connection settings).
//!
//! [`Gateway::run`] serves until its shutdown future resolves, then stops
//! accepting, finishes in-flight requests, flushes liveness and pending
//! joins, releases leadership and returns.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod autosend;
pub mod backlog;
pub mod batcher;
pub mod cart;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod csv_import;
pub mod db;
pub mod error;
pub mod heartbeat;
pub mod http;
pub mod i18n;
pub mod in_flight;
pub mod leader;
pub mod limits;
pub mod live;
pub mod liveness;
pub mod publish;
pub mod rehearsal;
pub mod rooms;
pub mod seats;
pub mod session;
pub mod telemetry;
pub mod throttle;
pub mod web;

use crate::config::Config;
use crate::publish::CommandSink;
use anyhow::Context;
use dashmap::DashMap;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::ExposeSecret;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::ConnectOptions;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use waitroom::{Keyring, Ticket};

/// Point reads (admission hand-off) running at once per gateway.
const LOOKUP_CONCURRENCY: usize = 32;

/// How often the hottest sections' seat gauges are refreshed.
const SEATS_EVERY: Duration = Duration::from_secs(5);

/// How long shutdown waits for background tasks.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything handlers share.
pub struct App {
    pub config: Config,
    pub keyring: Keyring,
    pub store: Arc<db::MySqlStore>,
    pub rooms: Arc<rooms::Rooms>,
    pub liveness: Arc<liveness::Liveness>,
    pub joiner: batcher::Joiner,
    pub sink: Arc<dyn CommandSink>,
    pub limits: Arc<limits::Limits>,
    /// The students' password line.
    pub passwords: auth::Passwords,
    /// The admins' own line, so admin credentials cannot starve students.
    pub admin_passwords: auth::Passwords,
    /// Admin rows recently read to check admin sessions.
    pub admin_checks: session::AdminChecks,
    /// Tickets known to be decided, by sequence number.
    pub decided: DashMap<u64, Ticket>,
    pub lookups: Semaphore,
    pub in_flight: in_flight::InFlight,
    pub metrics: PrometheusHandle,
    pub is_leader: Arc<AtomicBool>,
    /// The course catalog and seat counts, for the student pages.
    pub catalog: Arc<catalog::CatalogCache>,
    /// The registrar's live-view samples.
    pub live: live::Live,
    /// Commands this gateway accepted per admission pass.
    pub pass_use: http::api::commands::PassUse,
    /// Admitted tickets (by seq) this gateway knows opted in to send their
    /// cart at admission, or not.
    pub auto_sends: DashMap<u64, crate::autosend::Opted>,
    /// Cart sends started by polls (the leader's task sends the rest).
    pub auto_send_polls: Arc<Semaphore>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("listen", &self.config.listen)
            .field("leader", &self.is_leader.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Shared application state.
pub type AppState = Arc<App>;

/// A built gateway, ready to serve.
#[derive(Debug)]
pub struct Gateway {
    state: AppState,
    joiner_task: tokio::sync::oneshot::Receiver<()>,
    stop: CancellationToken,
    metrics_listener: Option<TcpListener>,
}

/// Connections of `SLUICE_DB_POOL` the join batcher keeps for itself.
const JOIN_CONNECTIONS: u32 = 2;

/// The smallest `SLUICE_DB_POOL`: the join batcher's and two shared.
pub const MIN_DB_POOL: u32 = JOIN_CONNECTIONS + 2;

/// A store on a pool that connects lazily (a gateway starts while MySQL is
/// down): at most `max` connections, `min` of them kept open.
fn lazy_store(
    options: MySqlConnectOptions,
    (max, min): (u32, u32),
    timeout: Duration,
    pass_ttl: Duration,
    reclaim: Duration,
) -> db::MySqlStore {
    let pool = MySqlPoolOptions::new()
        .max_connections(max)
        .min_connections(min)
        .acquire_timeout(timeout)
        .idle_timeout(Duration::from_secs(60))
        .connect_lazy_with(options);
    db::MySqlStore::new(pool, timeout, pass_ttl).with_reclaim_window(reclaim)
}

impl Gateway {
    /// Connects (lazily: a gateway starts even while MySQL or RabbitMQ is
    /// down, and reports not-ready until they answer) and prepares state.
    /// `sink` replaces RabbitMQ (tests).
    pub async fn build(
        config: Config,
        sink: Option<Arc<dyn CommandSink>>,
    ) -> anyhow::Result<Gateway> {
        let keyring = config.keyring()?;
        // Key ids only: which rotation step this pod is at.
        tracing::info!(keys = %keyring.describe(), "signing keys loaded (first of each signs)");
        let metrics = telemetry::metrics()?;
        telemetry::describe();
        let options =
            MySqlConnectOptions::from_str(config.connections.database_url.expose_secret())
                .context("parsing DATABASE_URL")?
                .log_statements(tracing::log::LevelFilter::Trace)
                .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let (timeout, pass_ttl, reclaim) = (
            config.db_timeout(),
            config.pass_ttl(),
            config.reclaim_window(),
        );
        // Two of SLUICE_DB_POOL's connections are the join batcher's.
        let shared = config.db_pool.saturating_sub(JOIN_CONNECTIONS).max(2);
        let store = Arc::new(lazy_store(
            options.clone(),
            (shared, 0),
            timeout,
            pass_ttl,
            reclaim,
        ));
        let sink: Arc<dyn CommandSink> = match sink {
            Some(s) => s,
            None => Arc::new(
                publish::Broker::connect(
                    config.connections.amqp_url.clone(),
                    &config.amqp_prefix,
                    config.publish_timeout(),
                )
                .await,
            ),
        };
        let stop = CancellationToken::new();
        // The join batcher has its own connections (and thread). It runs
        // one transaction at a time; the second connection takes the next
        // batch while the pool checks the first one returned, and one is
        // kept open so that a surge after a quiet minute does not start
        // by connecting.
        let joins_store = move || {
            Arc::new(lazy_store(
                options,
                (JOIN_CONNECTIONS, 1),
                timeout,
                pass_ttl,
                reclaim,
            ))
        };
        let (joiner, joiner_task) = batcher::spawn(
            joins_store,
            config.join_queue,
            config.join_batch,
            config.db_timeout() * 2,
            stop.clone(),
        )
        .context("starting the join batcher")?;
        let passwords = auth::Passwords::new(config.hash_concurrency).await?;
        let state = Arc::new(App {
            keyring,
            rooms: Arc::default(),
            liveness: Arc::default(),
            joiner,
            sink,
            limits: Arc::new(limits::Limits::new(
                config.ip_rate,
                config.ip_burst,
                config.student_rate,
                config.student_burst,
            )),
            admin_passwords: passwords.line(config.admin_hash_concurrency),
            passwords,
            admin_checks: session::AdminChecks::default(),
            decided: DashMap::new(),
            lookups: Semaphore::new(LOOKUP_CONCURRENCY),
            in_flight: in_flight::InFlight::new(config.max_in_flight),
            metrics,
            is_leader: Arc::default(),
            catalog: Arc::default(),
            live: live::Live::default(),
            pass_use: http::api::commands::PassUse::default(),
            auto_sends: DashMap::new(),
            auto_send_polls: Arc::new(Semaphore::new(autosend::POLL_SENDS)),
            store,
            config,
        });
        Ok(Gateway {
            state,
            joiner_task,
            stop,
            metrics_listener: None,
        })
    }

    /// Serves the operations port on `listener` (already bound, so tests
    /// can use port 0) instead of binding `SLUICE_METRICS_ADDR` itself.
    pub fn with_metrics_listener(mut self, listener: TcpListener) -> Gateway {
        self.metrics_listener = Some(listener);
        self
    }

    /// The shared state (tests read leadership and the snapshot).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves on `listener` until `shutdown` resolves, then drains.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Gateway {
            state,
            joiner_task,
            stop,
            metrics_listener,
        } = self;
        let config = &state.config;
        let mut tasks = tokio::task::JoinSet::new();
        let metrics_listener = match (metrics_listener, config.metrics_addr) {
            (Some(l), _) => Some(l),
            (None, Some(addr)) => Some(service::bind(addr, "SLUICE_METRICS_ADDR").await?),
            (None, None) => None,
        };
        if let Some(l) = metrics_listener {
            tracing::info!(addr = ?l.local_addr().ok(), "metrics and probes listening");
            let ops = http::ops_router(Arc::clone(&state));
            let until = stop.clone();
            tasks.spawn(async move {
                if let Err(e) = axum::serve(l, ops)
                    .with_graceful_shutdown(until.cancelled_owned())
                    .await
                {
                    tracing::warn!(error = %e, "the metrics listener failed");
                }
            });
        }
        tasks.spawn(rooms::refresh(
            Arc::clone(&state.store),
            Arc::clone(&state.rooms),
            config.refresh(),
            config.stale_after(),
            stop.clone(),
        ));
        tasks.spawn(seats::report(
            Arc::clone(&state.store),
            Arc::clone(&state.rooms),
            SEATS_EVERY,
            stop.clone(),
        ));
        tasks.spawn(liveness::flush(
            Arc::clone(&state.store),
            Arc::clone(&state.liveness),
            config.liveness_flush(),
            liveness::refresh_for(config.grace()),
            stop.clone(),
        ));
        tasks.spawn(catalog::refresh(
            Arc::clone(&state.store),
            Arc::clone(&state.catalog),
            stop.clone(),
        ));
        tasks.spawn(autosend::run(Arc::clone(&state), stop.clone()));
        tasks.spawn(limits::sweep(Arc::clone(&state.limits), stop.clone()));
        tasks.spawn(throttle::sweep(Arc::clone(&state.store), stop.clone()));
        tasks.spawn(heartbeat::run(
            Arc::clone(&state.store),
            Arc::clone(&state.is_leader),
            Arc::clone(&state.limits),
            stop.clone(),
        ));
        if config.campaign {
            let leader = leader::Leader {
                store: Arc::clone(&state.store),
                database_url: config.connections.database_url.clone(),
                sink: Arc::clone(&state.sink),
                tick: config.tick(),
                grace: config.grace(),
                pass_ttl: config.pass_ttl(),
                db_timeout: config.db_timeout(),
                is_leader: Arc::clone(&state.is_leader),
                depth: Arc::new(backlog::QueueDepth::new(
                    config.connections.amqp_url.clone(),
                    &config.amqp_prefix,
                    std::time::Duration::from_secs(2),
                )),
            };
            tasks.spawn(leader.run(stop.clone()));
        }

        let addr = listener.local_addr().ok();
        tracing::info!(addr = ?addr, "gateway listening");
        let served = http::lane::serve(listener, Arc::clone(&state), shutdown).await;

        // Requests are done; now the background work, in order.
        stop.cancel();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            if joiner_task.await.is_err() {
                tracing::error!("the join batcher's thread ended abnormally");
            }
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("background tasks did not stop in time");
        }
        state.store.pool().close().await;
        tracing::info!("gateway stopped");
        served.context("serving HTTP")
    }
}

/// Resolves on SIGINT or SIGTERM.
pub use service::shutdown_signal;
