//! The depth of the commands queue, read from RabbitMQ: charted by the
//! report, watched by the autoscaler and checked after a broker restart.

use std::time::Duration;

/// Reads the ready-message count of the commands queue, reopening the
/// channel after a failed passive declare (which closes it).
#[derive(Debug)]
pub struct Depth {
    url: String,
    queue: String,
    conn: Option<lapin::Connection>,
    channel: Option<lapin::Channel>,
}

impl Depth {
    pub fn new(url: String, prefix: &str) -> Depth {
        Depth {
            url,
            queue: broker::Topology::new(prefix).commands_queue,
            conn: None,
            channel: None,
        }
    }

    pub async fn read(&mut self) -> Option<u32> {
        if self.conn.as_ref().is_none_or(|c| !c.status().connected()) {
            self.conn = broker::connect(&self.url, "bench-depth", Duration::from_secs(3))
                .await
                .ok();
            self.channel = None;
        }
        if self
            .channel
            .as_ref()
            .is_none_or(|c| !c.status().connected())
        {
            self.channel = self.conn.as_ref()?.create_channel().await.ok();
        }
        match broker::queue_depth(self.channel.as_ref()?, &self.queue).await {
            Ok(n) => Some(n),
            Err(_) => {
                self.channel = None;
                None
            }
        }
    }

    pub async fn close(self) {
        if let Some(ch) = self.channel {
            let _ = ch.close(200, "done").await;
        }
        if let Some(c) = self.conn {
            let _ = c.close(200, "done").await;
        }
    }
}
