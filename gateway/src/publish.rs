//! Where accepted commands go: RabbitMQ with publisher confirms, behind a
//! small trait so handlers can be tested without a broker.

use enrollment::Command;
use futures_util::future::BoxFuture;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;

/// Why a command was not confirmed. The command was not accepted; the
/// client keeps its cart and retries.
#[derive(Debug, thiserror::Error)]
#[error("publish failed: {kind}")]
pub struct SinkError {
    pub kind: &'static str,
}

/// Publishes commands and answers only after the broker confirmed them.
pub trait CommandSink: Send + Sync + 'static {
    fn publish<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Whether commands can be published now; used to hold admission when
    /// they cannot. May try a connection, so it is async and rate-limited by
    /// the caller.
    fn probe(&self) -> BoxFuture<'_, bool>;
}

/// The RabbitMQ sink.
#[derive(Debug, Clone)]
pub struct Broker {
    publisher: broker::Publisher,
    url: SecretString,
    timeout: Duration,
}

impl Broker {
    /// Connects now if the broker answers, lazily otherwise (the room holds
    /// admission until it does).
    pub async fn connect(url: SecretString, prefix: &str, timeout: Duration) -> Broker {
        let topology = broker::Topology::new(prefix);
        let publisher = match broker::Publisher::connect(
            url.expose_secret(),
            topology.clone(),
            timeout,
        )
        .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "RabbitMQ unavailable at start; admission is held until it answers");
                broker::Publisher::lazy(url.expose_secret(), topology, timeout)
            }
        };
        Broker {
            publisher,
            url,
            timeout,
        }
    }
}

impl CommandSink for Broker {
    fn publish<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            // The publisher bounds the confirm wait itself; this bounds the
            // connection attempt too.
            match tokio::time::timeout(self.timeout * 2, self.publisher.publish(command)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    tracing::warn!(command.id = %command.id, error = %e, "command not confirmed");
                    Err(SinkError { kind: e.kind() })
                }
                Err(_) => Err(SinkError { kind: "timeout" }),
            }
        })
    }

    fn probe(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            if self.publisher.is_healthy() {
                return true;
            }
            // The publisher reconnects lazily on the next publish; while
            // admission is held nobody publishes, so check the broker directly.
            let name = format!("sluice-gateway-probe-{}", std::process::id());
            matches!(
                tokio::time::timeout(
                    self.timeout,
                    broker::connect(self.url.expose_secret(), &name, self.timeout)
                )
                .await,
                Ok(Ok(_))
            )
        })
    }
}
