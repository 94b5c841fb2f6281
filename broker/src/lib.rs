//! RabbitMQ for Sluice: the topology gateway and worker agree on, connections
//! on the tokio runtime, and publishing with publisher confirms.
//!
//! # Topology
//! ```text
//! exchange {p}.commands (direct, durable) ──"command"──> queue {p}.commands (quorum)
//!                                                         │ x-delivery-limit, x-dead-letter-exchange
//! exchange {p}.dead (fanout, durable) ───────────────────> queue {p}.commands.dead (quorum)
//! ```
//! Quorum queues replicate and fsync before confirming, so a confirmed
//! command survives a broker restart. The delivery limit dead-letters a
//! message that keeps failing; the worker dead-letters undecodable messages
//! itself, with the reason in the `x-sluice-reason` header.
//!
//! Every declaration lives in [`declare`] so that gateway and worker can
//! never disagree on queue arguments (RabbitMQ refuses a redeclaration with
//! different arguments).

mod publisher;

pub use publisher::{PublishError, Publisher};

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;

/// Header carrying why the worker dead-lettered a message.
pub const REASON_HEADER: &str = "x-sluice-reason";

/// The routing key commands are published with.
pub const COMMAND_KEY: &str = "command";

/// Failures talking to RabbitMQ.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ did not answer within {0:?}")]
    Timeout(Duration),
}

/// Names of the exchanges and queues, derived from one prefix so tests can
/// use their own topology on a shared broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub commands_exchange: String,
    pub commands_queue: String,
    pub dead_exchange: String,
    pub dead_queue: String,
    /// Deliveries after which the broker dead-letters a message.
    pub delivery_limit: i64,
}

impl Topology {
    /// `Topology::new("sluice")` gives `sluice.commands`, `sluice.commands.dead`, ...
    pub fn new(prefix: &str) -> Topology {
        Topology {
            commands_exchange: format!("{prefix}.commands"),
            commands_queue: format!("{prefix}.commands"),
            dead_exchange: format!("{prefix}.dead"),
            dead_queue: format!("{prefix}.commands.dead"),
            delivery_limit: 20,
        }
    }
}

impl Default for Topology {
    fn default() -> Self {
        Topology::new("sluice")
    }
}

/// Checks that `url` is an AMQP URL, without connecting; the error says
/// what a valid one looks like.
pub fn check_url(url: &str) -> Result<(), String> {
    url.parse::<lapin::uri::AMQPUri>()
        .map(|_| ())
        .map_err(|e| format!("{e}; expected amqp://user:password@host:5672/%2f"))
}

/// Connects on the current tokio runtime, naming the connection so that
/// RabbitMQ's management shows which process holds it.
pub async fn connect(url: &str, name: &str, timeout: Duration) -> Result<Connection, BrokerError> {
    let props = ConnectionProperties::default()
        .with_connection_name(name.into())
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    tokio::time::timeout(timeout, Connection::connect(url, props))
        .await
        .map_err(|_| BrokerError::Timeout(timeout))?
        .map_err(BrokerError::from)
}

fn durable_quorum(extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        ShortString::from("x-queue-type"),
        AMQPValue::LongString(LongString::from("quorum")),
    );
    for (k, v) in extra {
        args.insert(ShortString::from(*k), v.clone());
    }
    args
}

/// Declares the whole topology (idempotent).
pub async fn declare(channel: &Channel, t: &Topology) -> Result<(), BrokerError> {
    let durable_ex = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let durable_q = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .exchange_declare(
            &t.dead_exchange,
            ExchangeKind::Fanout,
            durable_ex,
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(&t.dead_queue, durable_q, durable_quorum(&[]))
        .await?;
    channel
        .queue_bind(
            &t.dead_queue,
            &t.dead_exchange,
            "",
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            &t.commands_exchange,
            ExchangeKind::Direct,
            durable_ex,
            FieldTable::default(),
        )
        .await?;
    let args = durable_quorum(&[
        (
            "x-dead-letter-exchange",
            AMQPValue::LongString(LongString::from(t.dead_exchange.as_str())),
        ),
        ("x-delivery-limit", AMQPValue::LongLongInt(t.delivery_limit)),
    ]);
    channel
        .queue_declare(&t.commands_queue, durable_q, args)
        .await?;
    channel
        .queue_bind(
            &t.commands_queue,
            &t.commands_exchange,
            COMMAND_KEY,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

/// Messages ready in a queue (a passive declare: fails if it does not exist).
pub async fn queue_depth(channel: &Channel, queue: &str) -> Result<u32, BrokerError> {
    let q = channel
        .queue_declare(
            queue,
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(q.message_count())
}

/// Deletes the topology's queues and exchanges (tests and resets).
pub async fn delete(channel: &Channel, t: &Topology) -> Result<(), BrokerError> {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    channel
        .queue_delete(&t.commands_queue, QueueDeleteOptions::default())
        .await?;
    channel
        .queue_delete(&t.dead_queue, QueueDeleteOptions::default())
        .await?;
    channel
        .exchange_delete(&t.commands_exchange, ExchangeDeleteOptions::default())
        .await?;
    channel
        .exchange_delete(&t.dead_exchange, ExchangeDeleteOptions::default())
        .await?;
    Ok(())
}
