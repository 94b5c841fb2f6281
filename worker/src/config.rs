//! Worker configuration: read once, from flags or the environment, with
//! defaults that work on a developer machine.

use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;

/// Settings of one worker process.
#[derive(Clone, Parser)]
#[command(
    name = "sluice-worker",
    about = "Decides enrollment commands from RabbitMQ into MySQL, exactly once."
)]
pub struct Config {
    /// MySQL URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "mysql://root@127.0.0.1:3306/sluice",
        hide_env_values = true
    )]
    pub database_url: String,

    /// RabbitMQ URL.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,

    /// Prefix of the exchanges and queues (`sluice` → `sluice.commands`).
    #[arg(long, env = "SLUICE_QUEUE_PREFIX", default_value = "sluice")]
    pub queue_prefix: String,

    /// Pass verification keys, `kid:secret[,kid:secret]` (same as the gateway's).
    /// Prefer SLUICE_SIGNING_KEYS_FILE in production.
    #[arg(long, env = "SLUICE_SIGNING_KEYS", hide_env_values = true, hide_default_value = true,
          default_value = waitroom::token::DEV_KEY_SPEC)]
    pub signing_keys: String,

    /// Deliveries RabbitMQ may hand this worker before it acks (bounded).
    #[arg(long, env = "SLUICE_PREFETCH", default_value_t = 2000)]
    pub prefetch: u16,

    /// Most commands taken into one batch.
    #[arg(long, env = "SLUICE_MAX_BATCH", default_value_t = 1000)]
    pub max_batch: usize,

    /// How long to wait for more deliveries once a batch has started.
    #[arg(long, env = "SLUICE_LINGER_MS", default_value_t = 5)]
    pub linger_ms: u64,

    /// Smallest transaction independent groups are packed into.
    #[arg(long, env = "SLUICE_MIN_TXN", default_value_t = 64)]
    pub min_txn: usize,

    /// Transactions one worker runs side by side.
    #[arg(long, env = "SLUICE_PARALLEL_TXNS", default_value_t = 4)]
    pub parallel_txns: usize,

    /// MySQL connections of this worker (bounds the pool).
    #[arg(long, env = "SLUICE_DB_POOL", default_value_t = 8)]
    pub db_pool: u32,

    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "SLUICE_METRICS_ADDR", default_value = "0.0.0.0:9090")]
    pub metrics_addr: SocketAddr,

    /// Name recorded in outcomes and on the AMQP connection.
    #[arg(long, env = "SLUICE_WORKER_NAME")]
    pub name: Option<String>,

    /// Commands older than this (since the gateway accepted them) are refused.
    #[arg(long, env = "SLUICE_MAX_COMMAND_AGE_SECS", default_value_t = 6 * 3600)]
    pub max_command_age_secs: u64,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // URLs may carry passwords and the keys are secret.
        f.debug_struct("Config")
            .field("queue_prefix", &self.queue_prefix)
            .field("prefetch", &self.prefetch)
            .field("max_batch", &self.max_batch)
            .field("linger_ms", &self.linger_ms)
            .field("min_txn", &self.min_txn)
            .field("parallel_txns", &self.parallel_txns)
            .field("db_pool", &self.db_pool)
            .field("metrics_addr", &self.metrics_addr)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults, as a developer machine would have them.
    pub fn dev() -> Config {
        Config::parse_from(["sluice-worker"])
    }

    /// Reads `SLUICE_SIGNING_KEYS_FILE` over the inline keys when set.
    pub fn resolve_secrets(mut self) -> anyhow::Result<Config> {
        if let Some(spec) = waitroom::token::key_spec_from_file() {
            self.signing_keys =
                spec.map_err(|e| anyhow::anyhow!("reading SLUICE_SIGNING_KEYS_FILE: {e}"))?;
        }
        Ok(self)
    }

    pub fn worker_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("worker-{}", std::process::id()))
    }

    pub fn linger(&self) -> Duration {
        Duration::from_millis(self.linger_ms)
    }
}
