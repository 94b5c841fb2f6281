//! The command backlog as the admission leader reads it: ready messages in
//! the RabbitMQ command queue, by a passive queue declare on a channel kept
//! open between reads (one round trip, no management plugin needed; see
//! `docs/decisions/082-automatic-pace.md`).

use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio::sync::Mutex;

/// Reads the command queue's depth; `None` whenever RabbitMQ does not answer.
pub struct QueueDepth {
    url: SecretString,
    queue: String,
    timeout: Duration,
    channel: Mutex<Option<(lapin::Connection, lapin::Channel)>>,
}

impl std::fmt::Debug for QueueDepth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueDepth")
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl QueueDepth {
    /// A reader of `prefix`'s command queue; connects on first use.
    pub fn new(url: SecretString, prefix: &str, timeout: Duration) -> QueueDepth {
        QueueDepth {
            url,
            queue: broker::Topology::new(prefix).commands_queue,
            timeout,
            channel: Mutex::new(None),
        }
    }

    /// Ready messages in the command queue now.
    pub async fn read(&self) -> Option<u32> {
        let mut held = self.channel.lock().await;
        if held
            .as_ref()
            .is_none_or(|(c, ch)| !c.status().connected() || !ch.status().connected())
        {
            let conn = broker::connect(
                self.url.expose_secret(),
                "sluice-gateway-pace",
                self.timeout,
            )
            .await
            .ok()?;
            let channel = conn.create_channel().await.ok()?;
            *held = Some((conn, channel));
        }
        let (_, channel) = held.as_ref()?;
        match tokio::time::timeout(self.timeout, broker::queue_depth(channel, &self.queue)).await {
            Ok(Ok(n)) => Some(n),
            _ => {
                // A failed passive declare closes the channel: start over.
                *held = None;
                None
            }
        }
    }
}
