//! Seeing and replaying dead-lettered commands (`sluice-dlq`).
//!
//! Messages reach the dead-letter queue when the worker cannot decode them
//! (with the reason in `x-sluice-reason`) or when RabbitMQ's delivery limit
//! gives up on them (the broker's `x-death` header says so). Listing takes
//! each message without acking and puts it back; replaying republishes the
//! messages that decode as commands to the command exchange, with publisher
//! confirms, and only then removes them from the dead-letter queue. The
//! worker's exactly-once check makes replaying a command that was in fact
//! decided harmless.

use broker::{Topology, COMMAND_KEY, REASON_HEADER};
use enrollment::Command;
use lapin::message::BasicGetMessage;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use serde::Serialize;
use std::time::Duration;

/// One dead letter as ops see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeadLetter {
    /// Why it is here: the worker's reason, or the broker's death reason.
    pub reason: String,
    /// The command id, when the body is a command.
    pub command: Option<String>,
    pub student: Option<u32>,
    pub bytes: usize,
}

/// What a replay did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Replay {
    pub replayed: usize,
    /// Left in the dead-letter queue because they are not commands.
    pub kept: usize,
}

fn describe(msg: &BasicGetMessage) -> DeadLetter {
    let headers = msg
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default();
    let fields = headers.inner();
    let reason = match fields.get(REASON_HEADER) {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        _ => death_reason(&headers).unwrap_or_else(|| "unknown".to_string()),
    };
    let cmd = Command::decode(&msg.delivery.data).ok();
    DeadLetter {
        reason,
        command: cmd.as_ref().map(|c| c.id.to_string()),
        student: cmd.as_ref().map(|c| c.student.0),
        bytes: msg.delivery.data.len(),
    }
}

/// The `reason` of the newest `x-death` entry RabbitMQ added.
fn death_reason(headers: &FieldTable) -> Option<String> {
    let AMQPValue::FieldArray(deaths) = headers.inner().get("x-death")? else {
        return None;
    };
    let AMQPValue::FieldTable(first) = deaths.as_slice().first()? else {
        return None;
    };
    match first.inner().get("reason")? {
        AMQPValue::LongString(s) => Some(format!("broker: {s}")),
        _ => None,
    }
}

/// Lists up to `limit` dead letters; every one stays in the queue.
pub async fn list(
    url: &str,
    topology: &Topology,
    limit: usize,
) -> Result<Vec<DeadLetter>, broker::BrokerError> {
    let conn = broker::connect(url, "sluice-dlq", Duration::from_secs(10)).await?;
    let channel = conn.create_channel().await?;
    broker::declare(&channel, topology).await?;
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(msg) = channel
            .basic_get(&topology.dead_queue, BasicGetOptions::default())
            .await?
        else {
            break;
        };
        out.push(describe(&msg));
    }
    // Closing the channel returns every unacked message, in order.
    channel.close(200, "listed").await?;
    conn.close(200, "listed").await?;
    Ok(out)
}

/// Republishes up to `limit` dead letters that decode as commands.
pub async fn replay(
    url: &str,
    topology: &Topology,
    limit: usize,
) -> Result<Replay, broker::BrokerError> {
    let conn = broker::connect(url, "sluice-dlq", Duration::from_secs(10)).await?;
    let channel = conn.create_channel().await?;
    broker::declare(&channel, topology).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut result = Replay::default();
    let mut keep = Vec::new();
    while result.replayed + keep.len() < limit {
        let Some(msg) = channel
            .basic_get(&topology.dead_queue, BasicGetOptions::default())
            .await?
        else {
            break;
        };
        if Command::decode(&msg.delivery.data).is_err() {
            keep.push(msg);
            continue;
        }
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        let confirm = channel
            .basic_publish(
                &topology.commands_exchange,
                COMMAND_KEY,
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &msg.delivery.data,
                props,
            )
            .await?
            .await?;
        if matches!(confirm, Confirmation::Ack(None)) {
            msg.delivery.acker.ack(BasicAckOptions::default()).await?;
            result.replayed += 1;
        } else {
            keep.push(msg);
        }
    }
    result.kept = keep.len();
    for msg in keep {
        msg.delivery
            .acker
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await?;
    }
    channel.close(200, "replayed").await?;
    conn.close(200, "replayed").await?;
    Ok(result)
}
