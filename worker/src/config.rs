//! Worker configuration: read once, from flags or the environment, with
//! defaults that work on a developer machine.

use clap::Parser;
use service::connections::{Connections, ExposeSecret};
use std::net::SocketAddr;
use std::time::Duration;

/// Settings of one worker process.
#[derive(Clone, Parser)]
#[command(
    name = "sluice-worker",
    about = "Decides enrollment commands from RabbitMQ into MySQL, exactly once."
)]
pub struct Config {
    /// The MySQL and RabbitMQ URLs (`DATABASE_URL`, `AMQP_URL`).
    #[command(flatten)]
    pub connections: Connections,

    /// Prefix of the exchanges and queues (`sluice` → `sluice.commands`).
    #[arg(long, env = "SLUICE_QUEUE_PREFIX", default_value = "sluice")]
    pub queue_prefix: String,

    /// Pass keys, `kid:secret[,kid:secret]`: the gateways' SLUICE_PASS_KEYS.
    /// The worker only verifies passes, and these can sign nothing else.
    /// Prefer SLUICE_PASS_KEYS_FILE in production.
    #[arg(long, env = "SLUICE_PASS_KEYS", hide_env_values = true)]
    pub pass_keys: Option<String>,

    /// Without SLUICE_PASS_KEYS: the gateways' signing keys, from which the
    /// pass keys are derived (for gateways without SLUICE_PASS_KEYS, and
    /// developer machines). These can sign sessions too; avoid in production.
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

    /// How long a statement waits for a row lock (InnoDB's
    /// innodb_lock_wait_timeout, set per connection); below the transaction
    /// timeout.
    #[arg(long, env = "SLUICE_LOCK_WAIT_SECS", default_value_t = 10)]
    pub lock_wait_secs: u64,

    /// How long one decision transaction may take.
    #[arg(long, env = "SLUICE_TXN_TIMEOUT_SECS", default_value_t = 30)]
    pub txn_timeout_secs: u64,

    /// How long lock waits, conflicts and timeouts are retried before the
    /// command is recorded as failed.
    #[arg(long, env = "SLUICE_GIVE_UP_SECS", default_value_t = 60)]
    pub give_up_secs: u64,

    /// How often to look for seats freed without a command (a capacity
    /// raised, a section reopened) and give them to the waitlists; 0 turns
    /// the sweep off.
    #[arg(long, env = "SLUICE_FILL_INTERVAL_MS", default_value_t = 1000)]
    pub fill_interval_ms: u64,
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
            .field("lock_wait_secs", &self.lock_wait_secs)
            .field("txn_timeout_secs", &self.txn_timeout_secs)
            .field("give_up_secs", &self.give_up_secs)
            .field("fill_interval_ms", &self.fill_interval_ms)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults, as a developer machine would have them.
    pub fn dev() -> Config {
        Config::parse_from(["sluice-worker"])
    }

    /// Reads `SLUICE_PASS_KEYS_FILE` and `SLUICE_SIGNING_KEYS_FILE` over the
    /// inline keys when set.
    pub fn resolve_secrets(mut self) -> anyhow::Result<Config> {
        let pass_file = waitroom::token::PASS_KEYS_FILE_ENV;
        if let Some(spec) = waitroom::token::key_spec_from_env_file(pass_file) {
            self.pass_keys = Some(spec.map_err(|e| {
                anyhow::anyhow!(
                    "cannot read SLUICE_PASS_KEYS_FILE ({e}): point it at a readable key file or unset it"
                )
            })?);
        }
        if let Some(spec) = waitroom::token::key_spec_from_file() {
            self.signing_keys = spec.map_err(|e| {
                anyhow::anyhow!(
                    "cannot read SLUICE_SIGNING_KEYS_FILE ({e}): point it at a readable key file or unset it"
                )
            })?;
        }
        Ok(self)
    }

    /// Checks what can be checked without connecting: the URLs parse and
    /// the keys load. Each error names the setting to change.
    pub fn check(&self) -> anyhow::Result<()> {
        schema::db::check_url(self.connections.database_url.expose_secret())
            .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
        broker::check_url(self.connections.amqp_url.expose_secret())
            .map_err(|e| anyhow::anyhow!("AMQP_URL is not an AMQP URL: {e}"))?;
        self.pass_keyring()?;
        self.retry().check().map_err(|e| {
            anyhow::anyhow!(
                "SLUICE_LOCK_WAIT_SECS, SLUICE_TXN_TIMEOUT_SECS, SLUICE_GIVE_UP_SECS: {e}"
            )
        })?;
        Ok(())
    }

    /// The ledger's retry and timeout settings.
    pub fn retry(&self) -> crate::ledger::RetryPolicy {
        crate::ledger::RetryPolicy {
            lock_wait: Duration::from_secs(self.lock_wait_secs),
            txn_timeout: Duration::from_secs(self.txn_timeout_secs),
            give_up_after: Duration::from_secs(self.give_up_secs),
            ..crate::ledger::RetryPolicy::default()
        }
    }

    /// The keys passes are verified with, and nothing else: from
    /// SLUICE_PASS_KEYS, or derived from SLUICE_SIGNING_KEYS without it.
    pub fn pass_keyring(&self) -> anyhow::Result<waitroom::Keyring> {
        match &self.pass_keys {
            Some(spec) => waitroom::Keyring::pass_only(spec)
                .map_err(|e| anyhow::anyhow!("SLUICE_PASS_KEYS: {e}")),
            None => waitroom::Keyring::pass_only(&self.signing_keys)
                .map_err(|e| anyhow::anyhow!("SLUICE_SIGNING_KEYS: {e}")),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use waitroom::{Keyring, PassClaims, SessionClaims, Subject};

    const MAIN: &str = "g1:the-gateways-main-signing-key-0123456789";
    const PASS: &str = "p1:the-pass-key-workers-are-given-0123456789";

    fn pass() -> PassClaims {
        PassClaims {
            round: enrollment::RoundId(1),
            student: enrollment::StudentId(7),
            lease: uuid::Uuid::from_u128(1),
            budget: 5,
            iat: 1_000,
            exp: 60_000,
        }
    }

    #[test]
    fn the_worker_verifies_passes_with_the_pass_keys_alone() {
        let gateway = Keyring::from_spec(MAIN)
            .unwrap()
            .with_pass_keys(PASS)
            .unwrap();
        let config = Config::parse_from(["sluice-worker", "--pass-keys", PASS]);
        let worker = config.pass_keyring().unwrap();
        assert_eq!(worker.open_pass(&gateway.sign_pass(&pass())), Ok(pass()));
        let session = SessionClaims::new(
            Subject::Admin {
                id: 1,
                username: "registrar".into(),
                role: "registrar".into(),
            },
            1_000,
            60_000,
        );
        assert!(gateway
            .verify_session(&worker.sign_session(&session), 2_000)
            .is_err());
        assert!(!format!("{config:?}").contains("pass-key"));

        // A gateway without pass keys of their own: derived from its main
        // keys, as the worker does from the same spec.
        let legacy = Config::parse_from(["sluice-worker", "--signing-keys", MAIN]);
        let plain = Keyring::from_spec(MAIN).unwrap();
        assert_eq!(
            legacy
                .pass_keyring()
                .unwrap()
                .open_pass(&plain.sign_pass(&pass())),
            Ok(pass())
        );
        assert!(
            Config::parse_from(["sluice-worker", "--pass-keys", "p1:short"])
                .pass_keyring()
                .is_err()
        );
    }
}
