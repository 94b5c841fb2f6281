//! Publishing commands with publisher confirms.
//!
//! A command counts as accepted only once RabbitMQ has confirmed it (for a
//! quorum queue: replicated and written). Anything else, a nack, a return, a
//! timeout or a dead connection, is an error the gateway turns into 503 +
//! Retry-After while the student's cart stays as it was.
//!
//! One channel is shared by all publishers of a process: lapin pipelines
//! concurrent publishes on it and matches confirms by delivery tag. When the
//! channel dies the next publish reconnects, but at most once per
//! [`RECONNECT_BACKOFF`], so a broker outage answers requests at once instead
//! of piling them up behind connection attempts.

use crate::{connect, declare, BrokerError, Topology, COMMAND_KEY};
use enrollment::Command;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Connection};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Least time between two reconnection attempts.
pub const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

/// Times a nacked command is published again before the caller hears of
/// it. A quorum queue nacks while it has no leader (just declared, or a
/// leader election); the command id makes a second copy harmless, since the
/// worker decides each command once.
pub const NACK_RETRIES: u32 = 3;

/// Why a command was not accepted by the broker.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the message broker is unavailable")]
    Unavailable(#[source] BrokerError),
    #[error("the message broker is unavailable (retrying shortly)")]
    Backoff,
    #[error("the message broker refused the command")]
    Nacked,
    #[error("the command could not be routed to the command queue")]
    Unroutable,
    #[error("the message broker did not confirm within {0:?}")]
    Timeout(Duration),
    #[error("publishing failed: {0}")]
    Amqp(#[from] lapin::Error),
}

impl PublishError {
    /// A low-cardinality label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PublishError::Unavailable(_) | PublishError::Backoff => "unavailable",
            PublishError::Nacked => "nacked",
            PublishError::Unroutable => "unroutable",
            PublishError::Timeout(_) => "timeout",
            PublishError::Amqp(_) => "amqp",
        }
    }
}

struct Link {
    // Kept so the connection lives as long as its channel.
    _connection: Connection,
    channel: Channel,
}

struct State {
    link: Option<Link>,
    last_attempt: Option<Instant>,
}

struct Inner {
    url: String,
    name: String,
    topology: Topology,
    timeout: Duration,
    state: Mutex<State>,
    /// Whether the link was up when last looked at; read when `state` is
    /// busy (a reconnect can hold it for a whole connect timeout).
    linked: AtomicBool,
}

/// A cheap-to-clone handle publishing commands with confirms.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("topology", &self.inner.topology)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Connects, declares the topology and enables confirms. Fails if the
    /// broker cannot be reached now; use [`Publisher::lazy`] to start anyway.
    pub async fn connect(
        url: &str,
        topology: Topology,
        confirm_timeout: Duration,
    ) -> Result<Publisher, BrokerError> {
        let p = Publisher::lazy(url, topology, confirm_timeout);
        {
            let mut state = p.inner.state.lock().await;
            state.link = Some(p.open().await?);
            p.inner.linked.store(true, Ordering::Release);
        }
        Ok(p)
    }

    /// A publisher that connects on first use.
    pub fn lazy(url: &str, topology: Topology, confirm_timeout: Duration) -> Publisher {
        Publisher {
            inner: Arc::new(Inner {
                url: url.to_string(),
                name: format!("sluice-publisher-{}", std::process::id()),
                topology,
                timeout: confirm_timeout,
                state: Mutex::new(State {
                    link: None,
                    last_attempt: None,
                }),
                linked: AtomicBool::new(false),
            }),
        }
    }

    /// The topology commands are published to.
    pub fn topology(&self) -> &Topology {
        &self.inner.topology
    }

    async fn open(&self) -> Result<Link, BrokerError> {
        let inner = &self.inner;
        let connection = connect(&inner.url, &inner.name, inner.timeout).await?;
        let channel = connection.create_channel().await?;
        declare(&channel, &inner.topology).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Link {
            _connection: connection,
            channel,
        })
    }

    /// The live channel, reconnecting at most once per backoff period.
    async fn channel(&self) -> Result<Channel, PublishError> {
        let mut state = self.inner.state.lock().await;
        if let Some(link) = &state.link {
            if link.channel.status().connected() {
                return Ok(link.channel.clone());
            }
            state.link = None;
            self.inner.linked.store(false, Ordering::Release);
        }
        if state
            .last_attempt
            .is_some_and(|t| t.elapsed() < RECONNECT_BACKOFF)
        {
            return Err(PublishError::Backoff);
        }
        state.last_attempt = Some(Instant::now());
        match self.open().await {
            Ok(link) => {
                let channel = link.channel.clone();
                state.link = Some(link);
                self.inner.linked.store(true, Ordering::Release);
                tracing::info!("connected to RabbitMQ for publishing");
                Ok(channel)
            }
            Err(e) => {
                self.inner.linked.store(false, Ordering::Release);
                Err(PublishError::Unavailable(e))
            }
        }
    }

    /// Whether the last known state of the link is healthy (no I/O).
    ///
    /// Fails closed: while another task holds the link (it may be stuck
    /// reconnecting to a dead broker for a whole connect timeout), the
    /// answer is the state last seen, which is "down" once a check or a
    /// reconnect found the channel dead.
    pub fn is_healthy(&self) -> bool {
        match self.inner.state.try_lock() {
            Ok(state) => {
                let up = state
                    .link
                    .as_ref()
                    .is_some_and(|l| l.channel.status().connected());
                self.inner.linked.store(up, Ordering::Release);
                up
            }
            Err(_) => self.inner.linked.load(Ordering::Acquire),
        }
    }

    /// Publishes one command and waits for the broker's confirm; a nack is
    /// retried up to `NACK_RETRIES` times within the confirm timeout.
    pub async fn publish(&self, command: &Command) -> Result<(), PublishError> {
        let started = Instant::now();
        let mut result = self.publish_inner(command).await;
        let mut pause = Duration::from_millis(20);
        for _ in 0..NACK_RETRIES {
            if !matches!(result, Err(PublishError::Nacked))
                || started.elapsed() + pause >= self.inner.timeout
            {
                break;
            }
            metrics::counter!("sluice_publish_retries_total").increment(1);
            tokio::time::sleep(pause).await;
            pause *= 4;
            result = self.publish_inner(command).await;
        }
        match &result {
            Ok(()) => {
                metrics::histogram!("sluice_publish_confirm_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
            Err(e) => {
                metrics::counter!("sluice_publish_failures_total", "reason" => e.kind())
                    .increment(1);
            }
        }
        result
    }

    async fn publish_inner(&self, command: &Command) -> Result<(), PublishError> {
        let timeout = self.inner.timeout;
        let channel = self.channel().await?;
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/json"))
            .with_message_id(ShortString::from(command.id.to_string()))
            .with_timestamp(u64::try_from(command.issued_at.timestamp()).unwrap_or(0));
        let payload = command.encode();
        let t = &self.inner.topology;
        let confirm = tokio::time::timeout(
            timeout,
            channel.basic_publish(
                &t.commands_exchange,
                COMMAND_KEY,
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &payload,
                props,
            ),
        )
        .await
        .map_err(|_| PublishError::Timeout(timeout))??;
        let confirmation = tokio::time::timeout(timeout, confirm)
            .await
            .map_err(|_| PublishError::Timeout(timeout))??;
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_returned)) => Err(PublishError::Unroutable),
            Confirmation::Nack(_) => Err(PublishError::Nacked),
            Confirmation::NotRequested => Err(PublishError::Nacked),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RABBITMQ: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_follows_the_real_link() {
        let topology = Topology::new(&format!("sluice-health-{}", uuid::Uuid::now_v7().simple()));
        let p = Publisher::connect(RABBITMQ, topology.clone(), Duration::from_secs(5))
            .await
            .expect("RabbitMQ on 127.0.0.1:5672 (scripts/dev-up starts it)");
        assert!(p.is_healthy(), "a fresh link is healthy");
        let channel = p.channel().await.unwrap();
        channel.close(200, "test").await.unwrap();
        assert!(!p.is_healthy(), "a closed channel is not");
        let cleanup = crate::connect(RABBITMQ, "sluice-health-cleanup", Duration::from_secs(5))
            .await
            .unwrap();
        crate::delete(&cleanup.create_channel().await.unwrap(), &topology)
            .await
            .unwrap();
    }

    /// A nack is published again, [`NACK_RETRIES`] times, then reported.
    /// A second queue that rejects everything is bound next to the real one,
    /// so every attempt is nacked and every attempt reaches the real queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_nack_is_retried_then_reported() {
        use lapin::options::{QueueBindOptions, QueueDeclareOptions};
        use lapin::types::{AMQPValue, FieldTable, LongString};
        let topology = Topology::new(&format!("sluice-nack-{}", uuid::Uuid::now_v7().simple()));
        let p = Publisher::connect(RABBITMQ, topology.clone(), Duration::from_secs(5))
            .await
            .unwrap();
        let conn = crate::connect(RABBITMQ, "sluice-nack-test", Duration::from_secs(5))
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        let full = format!("{}.full", topology.commands_queue);
        let mut args = FieldTable::default();
        args.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
        args.insert(
            "x-overflow".into(),
            AMQPValue::LongString(LongString::from("reject-publish")),
        );
        ch.queue_declare(
            &full,
            QueueDeclareOptions {
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            args,
        )
        .await
        .unwrap();
        ch.queue_bind(
            &full,
            &topology.commands_exchange,
            COMMAND_KEY,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();

        let command = Command::new(
            enrollment::StudentId(1),
            enrollment::RoundId(1),
            "pass".into(),
            enrollment::Action::Drop {
                section: enrollment::SectionId(1),
            },
        );
        assert!(matches!(
            p.publish(&command).await,
            Err(PublishError::Nacked)
        ));
        // The quorum queue's count catches up asynchronously.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let copies = crate::queue_depth(&ch, &topology.commands_queue)
                .await
                .unwrap();
            if copies == 1 + NACK_RETRIES {
                break;
            }
            assert!(
                copies <= 1 + NACK_RETRIES && Instant::now() < deadline,
                "{copies} copies: expected one first try and every retry"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ch.queue_delete(&full, Default::default()).await.unwrap();
        crate::delete(&ch, &topology).await.unwrap();
    }

    /// A reconnect stuck on a broker that accepts but never answers holds
    /// the link for the whole connect timeout; health must not read "up"
    /// meanwhile, or admission would resume while RabbitMQ is down.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_reconnect_reads_as_down() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let p = Publisher::lazy(
            &format!("amqp://guest:guest@{addr}/%2f"),
            Topology::new("sluice-silent"),
            Duration::from_secs(3),
        );
        assert!(!p.is_healthy(), "never connected");
        let stuck = {
            let p = p.clone();
            tokio::spawn(async move { p.channel().await.map(|_| ()) })
        };
        // Wait until the reconnect holds the link.
        let deadline = Instant::now() + Duration::from_secs(2);
        while p.inner.state.try_lock().is_ok() {
            assert!(Instant::now() < deadline, "the reconnect never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            !p.is_healthy(),
            "busy reconnecting to a silent broker is not healthy"
        );
        assert!(matches!(
            stuck.await.unwrap(),
            Err(PublishError::Unavailable(_))
        ));
        assert!(!p.is_healthy());
        accept.abort();
    }
}
