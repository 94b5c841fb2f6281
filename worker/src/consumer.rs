//! The lapin adapter: consume, batch, decide, ack.
//!
//! A session owns one AMQP connection with a consuming channel (manual acks,
//! prefetch bounded by the config) and a confirming channel for dead
//! letters. Deliveries are taken in batches: the first one waited for, the
//! rest taken while they keep arriving within the linger time, up to the
//! batch size. Each batch is planned into independent transactions
//! ([`crate::batch::plan`]) that run side by side; a delivery is acked only
//! after the transaction holding its command committed.
//!
//! A transaction that fails after the ledger's retries is split: its
//! independent groups are tried again side by side, and a group that failed
//! for a reason retrying cannot fix is decided one command at a time. What
//! still cannot be decided is recorded as `failed` (reason `not_processed`)
//! and acked, so every accepted command ends in exactly one outcome instead
//! of circling until RabbitMQ's delivery limit dead-letters it unanswered.
//!
//! Anything that breaks the session (the broker restarting, the channel
//! closing) ends it; the deliveries it held are requeued by RabbitMQ and a
//! new session starts after a backoff. On shutdown the consumer is cancelled
//! first, the batch in hand finishes, and whatever was prefetched but not
//! started goes back to the queue when the channel closes.

use crate::batch;
use crate::config::Config;
use crate::decide::Decision;
use crate::ledger::{Ledger, LedgerError};
use broker::Topology;
use chrono::Utc;
use enrollment::{Command, Reason};
use futures_util::stream::{self, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel};
use service::connections::ExposeSecret;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Shared between the consumer and the health endpoint.
#[derive(Debug, Default)]
pub struct Health {
    pub consuming: AtomicBool,
}

/// Consumes until `shutdown`, reconnecting after failures.
pub async fn run(
    config: Config,
    ledger: Ledger,
    health: Arc<Health>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let topology = Topology::new(&config.queue_prefix);
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let started = Instant::now();
        let result = session(&config, &topology, &ledger, &health, &shutdown).await;
        health.consuming.store(false, Ordering::Relaxed);
        match result {
            Ok(()) => break,
            Err(e) => {
                // A session that ran a while was healthy; start the backoff over.
                if started.elapsed() > Duration::from_secs(30) {
                    failures = 0;
                }
                failures += 1;
                let wait = Duration::from_millis(250u64.saturating_mul(1 << failures.min(5)));
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "consumer session ended");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    tracing::info!("consumer stopped");
    Ok(())
}

async fn session(
    config: &Config,
    topology: &Topology,
    ledger: &Ledger,
    health: &Health,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let name = config.worker_name();
    let conn = broker::connect(
        config.connections.amqp_url.expose_secret(),
        &name,
        Duration::from_secs(10),
    )
    .await?;
    let channel = conn.create_channel().await?;
    broker::declare(&channel, topology).await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let dead = conn.create_channel().await?;
    dead.confirm_select(ConfirmSelectOptions::default()).await?;
    let tag = format!("{name}-{}", uuid::Uuid::now_v7().simple());
    let mut consumer = channel
        .basic_consume(
            &topology.commands_queue,
            &tag,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    health.consuming.store(true, Ordering::Relaxed);
    tracing::info!(queue = %topology.commands_queue, prefetch = config.prefetch, "consuming");

    let result: anyhow::Result<()> = async {
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                d = consumer.next() => d,
            };
            let Some(first) = first else {
                anyhow::bail!("the broker closed the consumer");
            };
            let mut deliveries = vec![first?];
            let deadline = Instant::now() + config.linger();
            while deliveries.len() < config.max_batch {
                match tokio::time::timeout_at(deadline, consumer.next()).await {
                    Ok(Some(d)) => deliveries.push(d?),
                    Ok(None) | Err(_) => break,
                }
            }
            process(config, topology, ledger, &dead, deliveries).await?;
        }
    }
    .await;

    health.consuming.store(false, Ordering::Relaxed);
    // Stop deliveries first, then close: unacked deliveries are requeued.
    let _ = channel
        .basic_cancel(&tag, BasicCancelOptions::default())
        .await;
    let _ = channel.close(200, "worker stopping").await;
    let _ = dead.close(200, "worker stopping").await;
    let _ = conn.close(200, "worker stopping").await;
    result
}

/// Decides one batch of deliveries and acks what was committed.
pub async fn process(
    config: &Config,
    topology: &Topology,
    ledger: &Ledger,
    dead: &Channel,
    deliveries: Vec<Delivery>,
) -> anyhow::Result<()> {
    let mut held: Vec<(Delivery, Command)> = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        if d.redelivered {
            metrics::counter!("sluice_worker_redeliveries_total").increment(1);
        }
        match Command::decode(&d.data) {
            Ok(cmd) => held.push((d, cmd)),
            Err(e) => dead_letter(dead, topology, &d, "malformed", &e.to_string()).await?,
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    metrics::gauge!("sluice_worker_in_flight").set(held.len() as f64);
    if let Some(oldest) = held.iter().map(|(_, c)| c.issued_at).min() {
        let age = (Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::gauge!("sluice_worker_oldest_unacked_age_seconds").set(age);
    }

    let commands: Vec<&Command> = held.iter().map(|(_, c)| c).collect();
    let plan = batch::plan(&commands, config.min_txn);
    let parallel = config.parallel_txns.max(1);
    let Some(failed) = decide_groups(ledger, &held, &commands, plan, parallel).await? else {
        return Ok(());
    };

    // A packed transaction holds independent groups: one stuck group must
    // not fail the others. Each is tried again on its own, side by side.
    let mut retry_groups: Vec<Vec<usize>> = Vec::new();
    let mut settled: Vec<(Vec<usize>, LedgerError)> = Vec::new();
    for (group, e) in failed {
        let cmds: Vec<&Command> = group.iter().map(|&i| commands[i]).collect();
        let parts = batch::plan(&cmds, 1);
        if parts.len() > 1 {
            retry_groups.extend(
                parts
                    .into_iter()
                    .map(|p| p.into_iter().map(|k| group[k]).collect()),
            );
        } else {
            settled.push((group, e));
        }
    }
    let Some(still_failed) =
        decide_groups(ledger, &held, &commands, retry_groups, parallel).await?
    else {
        return Ok(());
    };
    settled.extend(still_failed);

    // A group that failed for a reason retrying does not fix (a bad
    // command) is decided one by one, so one command cannot hold back the
    // others. A group that kept meeting locks or timeouts is not: its
    // commands share what is stuck, and each would wait as long again.
    let mut undecided: Vec<usize> = Vec::new();
    for (group, e) in settled {
        if !(e.is_fatal() && group.len() > 1) {
            undecided.extend(group);
            continue;
        }
        for i in group {
            match ledger.decide(&[commands[i]]).await {
                Ok(decisions) => {
                    record(&decisions, &held);
                    held[i].0.acker.ack(BasicAckOptions::default()).await?;
                }
                Err(LedgerError::Shutdown) => {
                    metrics::gauge!("sluice_worker_in_flight").set(0.0);
                    return Ok(());
                }
                Err(e) => {
                    tracing::error!(error = %e, command.id = %commands[i].id, "command failed");
                    undecided.push(i);
                }
            }
        }
    }

    if !undecided.is_empty() {
        undecided.sort_unstable();
        let cmds: Vec<&Command> = undecided.iter().map(|&i| commands[i]).collect();
        match ledger.record_failed(&cmds, Reason::NotProcessed).await {
            Ok(recorded) => {
                for c in cmds.iter().filter(|c| recorded.contains(&c.id)) {
                    tracing::error!(command.id = %c.id, "command could not be decided; recorded as failed");
                    metrics::counter!(
                        "sluice_worker_outcomes_total",
                        "action" => c.action.name(),
                        "outcome" => "failed",
                        "reason" => Reason::NotProcessed.code(),
                    )
                    .increment(1);
                }
                for &i in &undecided {
                    held[i].0.acker.ack(BasicAckOptions::default()).await?;
                }
            }
            Err(LedgerError::Shutdown) => {}
            Err(e) => {
                // Not even the failure could be written: the database is
                // in trouble. Requeue; a later delivery tries again.
                tracing::error!(error = %e, commands = undecided.len(), "could not record failed commands; requeueing");
                for &i in &undecided {
                    held[i]
                        .0
                        .acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..BasicNackOptions::default()
                        })
                        .await?;
                }
            }
        }
    }
    metrics::gauge!("sluice_worker_in_flight").set(0.0);
    metrics::gauge!("sluice_worker_oldest_unacked_age_seconds").set(0.0);
    Ok(())
}

/// Decides `groups` (indexes into `commands`) side by side, at most
/// `parallel` transactions at once; records and acks each group that
/// committed. Returns the groups that failed, with why, or `None` when the
/// ledger is shutting down (those deliveries stay unacked: the channel
/// closing requeues them).
async fn decide_groups(
    ledger: &Ledger,
    held: &[(Delivery, Command)],
    commands: &[&Command],
    groups: Vec<Vec<usize>>,
    parallel: usize,
) -> anyhow::Result<Option<Vec<(Vec<usize>, LedgerError)>>> {
    let mut results = stream::iter(groups)
        .map(|group| {
            let cmds: Vec<&Command> = group.iter().map(|&i| commands[i]).collect();
            async move {
                let r = ledger.decide(&cmds).await;
                (group, r)
            }
        })
        .buffer_unordered(parallel);
    let mut failed = Vec::new();
    while let Some((group, result)) = results.next().await {
        match result {
            Ok(decisions) => {
                record(&decisions, held);
                for &i in &group {
                    held[i].0.acker.ack(BasicAckOptions::default()).await?;
                }
            }
            Err(LedgerError::Shutdown) => {
                metrics::gauge!("sluice_worker_in_flight").set(0.0);
                return Ok(None);
            }
            Err(e) => {
                tracing::error!(error = %e, commands = group.len(), "transaction failed");
                failed.push((group, e));
            }
        }
    }
    Ok(Some(failed))
}

fn record(decisions: &[Decision], held: &[(Delivery, Command)]) {
    let now = Utc::now();
    // Lag from when the gateway accepted the command: ids are not always
    // time-ordered (a retried submit's id derives from its idempotency key).
    let issued: std::collections::HashMap<_, _> =
        held.iter().map(|(_, c)| (c.id, c.issued_at)).collect();
    for d in decisions {
        if d.replayed {
            continue;
        }
        for (_, outcome) in &d.items {
            metrics::counter!(
                "sluice_worker_outcomes_total",
                "action" => d.action,
                "outcome" => outcome.code(),
                "reason" => outcome.reason().map(|r| r.code()).unwrap_or(""),
            )
            .increment(1);
        }
        if let Some(&issued) = issued.get(&d.command) {
            let lag = (now - issued).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!("sluice_worker_decision_lag_seconds").record(lag);
        }
    }
}

/// Moves a message that can never be decided to the dead-letter queue, with
/// the reason attached, then acks it. Confirmed before the ack, so a message
/// is never in neither queue.
async fn dead_letter(
    dead: &Channel,
    topology: &Topology,
    delivery: &Delivery,
    kind: &'static str,
    detail: &str,
) -> anyhow::Result<()> {
    let mut headers = FieldTable::default();
    headers.insert(
        ShortString::from(broker::REASON_HEADER),
        AMQPValue::LongString(LongString::from(format!("{kind}: {detail}"))),
    );
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_headers(headers);
    let confirm = dead
        .basic_publish(
            &topology.dead_exchange,
            "",
            BasicPublishOptions::default(),
            &delivery.data,
            props,
        )
        .await?
        .await?;
    anyhow::ensure!(
        matches!(confirm, Confirmation::Ack(_)),
        "the broker refused the dead letter"
    );
    delivery.acker.ack(BasicAckOptions::default()).await?;
    metrics::counter!("sluice_worker_dead_lettered_total", "reason" => kind).increment(1);
    tracing::warn!(
        reason = kind,
        detail,
        "dead-lettered an undecodable message"
    );
    Ok(())
}
