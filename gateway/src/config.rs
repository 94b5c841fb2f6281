//! Typed configuration, read once at start from flags and the environment.
//!
//! Every value has a default that works on a developer machine; secrets
//! (the database URL may carry a password, the signing keys) are wrapped so
//! they cannot be printed by accident.

use secrecy::{ExposeSecret, SecretString};
use service::connections::{secret, Connections};
use std::net::SocketAddr;
use std::time::Duration;
use waitroom::Keyring;

/// The published development key, shared with the worker so that passes
/// signed by a gateway verify there. Anyone can read it, so it is only used
/// when no key is configured, and loudly.
const DEV_SIGNING_KEY: &str = waitroom::token::DEV_KEY_SPEC;

/// The gateway's configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "sluice-gateway",
    version,
    about = "Sluice's HTTP gateway and waiting room"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// A second address serving only /metrics, /healthz and /readyz (for
    /// example 0.0.0.0:9090), so the public port never exposes metrics.
    /// Unset: /metrics is on the public port too.
    #[arg(long, env = "SLUICE_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// The MySQL and RabbitMQ URLs (`DATABASE_URL`, `AMQP_URL`).
    #[command(flatten)]
    pub connections: Connections,

    /// Prefix of the RabbitMQ exchanges and queues.
    #[arg(long, env = "SLUICE_QUEUE_PREFIX", default_value = "sluice")]
    pub amqp_prefix: String,

    /// Token signing keys, `kid:secret[,kid:secret]`; the first signs,
    /// all verify. Queue tokens and sessions (and passes, without
    /// SLUICE_PASS_KEYS) are signed with subkeys derived from these.
    #[arg(long, env = "SLUICE_SIGNING_KEYS", value_parser = secret)]
    pub signing_keys: Option<SecretString>,

    /// Admission pass keys, `kid:secret[,kid:secret]`: a secret of their
    /// own, the only one workers are given, so nothing a worker holds can
    /// sign a session. Unset: derived from SLUICE_SIGNING_KEYS.
    #[arg(long, env = "SLUICE_PASS_KEYS", value_parser = secret)]
    pub pass_keys: Option<SecretString>,

    /// How queue tokens are written: `compact` (the default; what every
    /// poll opens: compact claims under keyed BLAKE3), `compact-hmac`
    /// (compact claims under HMAC-SHA256, which gateways older than the
    /// fast MAC read) or `json` (which gateways older than the compact
    /// encoding read). Set the form the oldest pod reads while rolling this
    /// version out over older gateways, then unset it; every form is always
    /// read.
    #[arg(
        long,
        env = "SLUICE_QUEUE_TOKEN_FORMAT",
        value_enum,
        default_value = "compact"
    )]
    pub queue_token_format: QueueTokenFormat,

    /// Database connections of this gateway (at least 4): two are the join
    /// batcher's own, the rest are shared by everything else.
    #[arg(long, env = "SLUICE_DB_POOL", default_value_t = 16)]
    pub db_pool: u32,

    /// Timeout of every database call, in milliseconds.
    #[arg(long, env = "SLUICE_DB_TIMEOUT_MS", default_value_t = 3_000)]
    pub db_timeout_ms: u64,

    /// Timeout of a publisher confirm, in milliseconds.
    #[arg(long, env = "SLUICE_PUBLISH_TIMEOUT_MS", default_value_t = 5_000)]
    pub publish_timeout_ms: u64,

    /// Longest a request may take before it is answered 503.
    #[arg(long, env = "SLUICE_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,

    /// Requests handled at once; beyond, the gateway sheds load with 503.
    #[arg(long, env = "SLUICE_MAX_IN_FLIGHT", default_value_t = 4_096)]
    pub max_in_flight: usize,

    /// Students' password checks (argon2) running at once; each takes a core.
    #[arg(long, env = "SLUICE_HASH_CONCURRENCY", default_value_t = 2)]
    pub hash_concurrency: usize,

    /// Password checks of admins (sign-in and HTTP Basic) running at once,
    /// on a line of their own so they cannot crowd out students.
    #[arg(long, env = "SLUICE_ADMIN_HASH_CONCURRENCY", default_value_t = 1)]
    pub admin_hash_concurrency: usize,

    /// Joins waiting for the sequencer; beyond, joins get 503.
    #[arg(long, env = "SLUICE_JOIN_QUEUE", default_value_t = 8_192)]
    pub join_queue: usize,

    /// Most joins written in one multi-row insert.
    #[arg(long, env = "SLUICE_JOIN_BATCH", default_value_t = 500)]
    pub join_batch: usize,

    /// Admission tick, in milliseconds.
    #[arg(long, env = "SLUICE_TICK_MS", default_value_t = 250)]
    pub tick_ms: u64,

    /// Room snapshot refresh, in milliseconds (at least twice a second).
    #[arg(long, env = "SLUICE_REFRESH_MS", default_value_t = 250)]
    pub refresh_ms: u64,

    /// A snapshot older than this means the database is unreachable: polls
    /// answer "paused, your place is kept".
    #[arg(long, env = "SLUICE_STALE_MS", default_value_t = 3_000)]
    pub stale_ms: u64,

    /// Liveness write-back interval, in milliseconds.
    #[arg(long, env = "SLUICE_LIVENESS_FLUSH_MS", default_value_t = 1_000)]
    pub liveness_flush_ms: u64,

    /// A waiting ticket not seen for this long is skipped.
    #[arg(long, env = "SLUICE_GRACE_SECS", default_value_t = 60)]
    pub grace_secs: u64,

    /// A skipped student who comes back within this long (a locked phone, a
    /// suspended tab) keeps their turn instead of going to the back.
    #[arg(long, env = "SLUICE_RECLAIM_WINDOW_SECS", default_value_t = 600)]
    pub reclaim_window_secs: u64,

    /// Lifetime of an admission pass.
    #[arg(long, env = "SLUICE_PASS_TTL_SECS", default_value_t = 600)]
    pub pass_ttl_secs: u64,

    /// Commands one pass may carry.
    #[arg(long, env = "SLUICE_PASS_BUDGET", default_value_t = 40)]
    pub pass_budget: u16,

    /// Lifetime of a queue token (renewed by every poll).
    #[arg(long, env = "SLUICE_QUEUE_TOKEN_TTL_SECS", default_value_t = 1_800)]
    pub queue_token_ttl_secs: u64,

    /// Shortest suggested poll interval, in milliseconds.
    #[arg(long, env = "SLUICE_POLL_MIN_MS", default_value_t = 2_000)]
    pub poll_min_ms: u64,

    /// Longest suggested poll interval, in milliseconds (keep well below the grace).
    #[arg(long, env = "SLUICE_POLL_MAX_MS", default_value_t = 15_000)]
    pub poll_max_ms: u64,

    /// Anonymous requests per second from one address (sign-in, joins with
    /// credentials, forged or expired tokens), for the whole deployment:
    /// each gateway enforces its share. Sized for a campus, a dormitory or
    /// a carrier NAT where thousands of students share one address; traffic
    /// with a valid session, token or pass is limited per student instead.
    #[arg(long, env = "SLUICE_IP_RATE", default_value_t = 500)]
    pub ip_rate: u32,

    /// Burst per address on anonymous routes, for the whole deployment.
    #[arg(long, env = "SLUICE_IP_BURST", default_value_t = 2_000)]
    pub ip_burst: u32,

    /// Requests per second per student.
    #[arg(long, env = "SLUICE_STUDENT_RATE", default_value_t = 3)]
    pub student_rate: u32,

    /// Burst per student.
    #[arg(long, env = "SLUICE_STUDENT_BURST", default_value_t = 10)]
    pub student_burst: u32,

    /// Take the client IP from the last X-Forwarded-For hop, the one the
    /// ingress appended (behind an ingress).
    #[arg(long, env = "SLUICE_TRUST_FORWARDED", default_value_t = false)]
    pub trust_forwarded: bool,

    /// Mark cookies Secure (on behind TLS).
    #[arg(long, env = "SLUICE_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// The university's time zone (IANA name): pages show every time in it
    /// and read the times a registrar types in it.
    #[arg(long, env = "SLUICE_TIME_ZONE", default_value = "Asia/Seoul", value_parser = time_zone)]
    pub time_zone: chrono_tz::Tz,

    /// Whether this gateway campaigns for admission leadership.
    #[arg(long, env = "SLUICE_LEADER", default_value_t = true, action = clap::ArgAction::Set)]
    pub campaign: bool,
}

fn time_zone(s: &str) -> Result<chrono_tz::Tz, String> {
    s.parse::<chrono_tz::Tz>()
        .map_err(|_| format!("{s:?} is not an IANA time zone name such as Asia/Seoul"))
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// The encoding of the queue tokens a gateway writes (it reads all three).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueueTokenFormat {
    Compact,
    CompactHmac,
    Json,
}

impl Config {
    /// The defaults, as if started with no flags and no environment.
    pub fn defaults() -> Config {
        <Config as clap::Parser>::parse_from(["sluice-gateway"])
    }

    /// The signing keys; without any, a published development key and a
    /// warning.
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        self.load_keyring(true)
    }

    fn load_keyring(&self, warn: bool) -> anyhow::Result<Keyring> {
        let mut ring = self.load_main_keys(warn)?;
        ring = ring.with_queue_format(match self.queue_token_format {
            QueueTokenFormat::Compact => waitroom::token::QueueFormat::Fast,
            QueueTokenFormat::CompactHmac => waitroom::token::QueueFormat::Hmac,
            QueueTokenFormat::Json => waitroom::token::QueueFormat::Json,
        });
        // As for the worker, a mounted Secret file wins over the variable.
        let pass_keys = match waitroom::token::key_spec_from_env_file(waitroom::token::PASS_KEYS_FILE_ENV) {
            Some(spec) => Some(spec.map_err(|e| {
                anyhow::anyhow!(
                    "cannot read SLUICE_PASS_KEYS_FILE ({e}): point it at a readable key file or unset it"
                )
            })?),
            None => self.pass_keys.as_ref().map(|s| s.expose_secret().to_string()),
        };
        match pass_keys {
            Some(spec) => ring
                .with_pass_keys(&spec)
                .map_err(|e| anyhow::anyhow!("SLUICE_PASS_KEYS: {e}")),
            None => Ok(ring),
        }
    }

    fn load_main_keys(&self, warn: bool) -> anyhow::Result<Keyring> {
        // A mounted Secret file wins over the variable.
        if let Some(spec) = waitroom::token::key_spec_from_file() {
            let spec = spec.map_err(|e| {
                anyhow::anyhow!(
                    "cannot read SLUICE_SIGNING_KEYS_FILE ({e}): point it at a readable key file or unset it"
                )
            })?;
            return Keyring::from_spec(&spec)
                .map_err(|e| anyhow::anyhow!("SLUICE_SIGNING_KEYS_FILE: {e}"));
        }
        match &self.signing_keys {
            Some(spec) => Keyring::from_spec(spec.expose_secret())
                .map_err(|e| anyhow::anyhow!("SLUICE_SIGNING_KEYS: {e}")),
            None => {
                if warn {
                    tracing::warn!(
                        "SLUICE_SIGNING_KEYS is not set: signing with the public development key; \
                     never run like this outside a developer machine"
                    );
                }
                Keyring::from_spec(DEV_SIGNING_KEY).map_err(|e| anyhow::anyhow!("dev key: {e}"))
            }
        }
    }

    /// Checks what can be checked without connecting: the URLs parse and
    /// the signing keys load. Each error names the setting to change.
    pub fn check(&self) -> anyhow::Result<()> {
        schema::db::check_url(self.connections.database_url.expose_secret())
            .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
        broker::check_url(self.connections.amqp_url.expose_secret())
            .map_err(|e| anyhow::anyhow!("AMQP_URL is not an AMQP URL: {e}"))?;
        self.load_keyring(false)?;
        if self.db_pool < crate::MIN_DB_POOL {
            anyhow::bail!(
                "SLUICE_DB_POOL={} is too small: at least {} (two connections are the join batcher's)",
                self.db_pool,
                crate::MIN_DB_POOL
            );
        }
        Ok(())
    }

    pub fn db_timeout(&self) -> Duration {
        ms(self.db_timeout_ms)
    }
    pub fn publish_timeout(&self) -> Duration {
        ms(self.publish_timeout_ms)
    }
    pub fn request_timeout(&self) -> Duration {
        ms(self.request_timeout_ms)
    }
    pub fn tick(&self) -> Duration {
        ms(self.tick_ms.max(10))
    }
    pub fn refresh(&self) -> Duration {
        ms(self.refresh_ms.clamp(10, 500))
    }
    pub fn stale_after(&self) -> Duration {
        ms(self.stale_ms)
    }
    pub fn liveness_flush(&self) -> Duration {
        ms(self.liveness_flush_ms.max(10))
    }
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace_secs)
    }
    pub fn reclaim_window(&self) -> Duration {
        Duration::from_secs(self.reclaim_window_secs)
    }
    pub fn pass_ttl(&self) -> Duration {
        Duration::from_secs(self.pass_ttl_secs)
    }
    pub fn queue_token_ttl(&self) -> Duration {
        Duration::from_secs(self.queue_token_ttl_secs)
    }
    pub fn poll_bounds(&self) -> (Duration, Duration) {
        let min = ms(self.poll_min_ms.max(100));
        (min, ms(self.poll_max_ms).max(min))
    }
}
