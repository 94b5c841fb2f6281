//! The join batcher: coalesces concurrent joins into multi-row inserts.
//!
//! Under a surge thousands of joins arrive within a second. Each waits in a
//! bounded channel; one task takes everything queued (up to a batch) and
//! hands it to the store in one transaction per round. A full channel means
//! the gateway is past capacity, and the join is refused at once with 503 +
//! Retry-After instead of waiting without limit.

use crate::db::MySqlStore;
use crate::error::ApiError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use waitroom::{JoinRefused, JoinRequest, Place, RoomStore};

type Answer = Result<Result<Place, JoinRefused>, ()>;

struct Pending {
    req: JoinRequest,
    reply: oneshot::Sender<Answer>,
}

/// The handle requests send joins through.
#[derive(Clone)]
pub struct Joiner {
    tx: mpsc::Sender<Pending>,
    wait: Duration,
}

impl std::fmt::Debug for Joiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Joiner")
            .field("capacity", &self.tx.max_capacity())
            .finish()
    }
}

impl Joiner {
    /// Whether the batcher still takes joins.
    pub fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Queues a join and waits for its place.
    pub async fn join(&self, req: JoinRequest) -> Result<Result<Place, JoinRefused>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(Pending { req, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => ApiError::Overloaded {
                    retry_after: Duration::from_secs(2),
                },
                // The batcher is gone (it stopped, or its thread died):
                // readiness says so too, and the pod is taken out.
                mpsc::error::TrySendError::Closed(_) => ApiError::Unavailable {
                    retry_after: Duration::from_secs(2),
                },
            })?;
        match tokio::time::timeout(self.wait, answer).await {
            Ok(Ok(Ok(result))) => Ok(result),
            // The store failed (logged by the batcher) or the batcher stopped.
            Ok(_) | Err(_) => Err(ApiError::Unavailable {
                retry_after: Duration::from_secs(2),
            }),
        }
    }
}

/// Starts the batcher on a thread of its own with a single-threaded
/// runtime; it stops when `shutdown` fires and the queue drains, and the
/// returned receiver then resolves.
///
/// Why a thread of its own: a batch is a transaction of several statements,
/// one round trip each, and joins of a round are decided one batch at a
/// time. As a task among the gateway's request tasks, the batcher waited
/// behind hundreds of them in the runtime's queue after each answer from
/// the database, and in a surge that wait, not the database, set how many
/// joins a second a gateway could take. On its own thread the operating
/// system schedules it when its answer arrives. `make_store` runs on that
/// thread, so the store's connections are driven by its runtime too.
/// Once the queue is drained, the store's connections are closed (each
/// told goodbye, not cut), so MySQL counts no aborted client when a
/// gateway stops.
pub fn spawn<F>(
    make_store: F,
    capacity: usize,
    max_batch: usize,
    wait: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<(Joiner, oneshot::Receiver<()>)>
where
    F: FnOnce() -> Arc<MySqlStore> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let (done, stopped) = oneshot::channel();
    // The runtime is built (and dropped) on the thread itself: a runtime
    // may not be dropped inside another's async context.
    let (started, start) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("sluice-joins".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => {
                    let _ = started.send(Ok(()));
                    runtime
                }
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let store = make_store();
                run(Arc::clone(&store), rx, max_batch.max(1), shutdown).await;
                store.pool().close().await;
            });
            let _ = done.send(());
        })?;
    // Waits only for the runtime's construction, at start.
    start
        .recv()
        .map_err(|_| std::io::Error::other("the join batcher's thread ended at start"))??;
    Ok((Joiner { tx, wait }, stopped))
}

async fn run<S: RoomStore>(
    store: Arc<S>,
    mut rx: mpsc::Receiver<Pending>,
    max_batch: usize,
    shutdown: CancellationToken,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
    loop {
        let first = tokio::select! {
            p = rx.recv() => p,
            _ = shutdown.cancelled() => {
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { return };
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let reqs: Vec<JoinRequest> = batch.iter().map(|p| p.req).collect();
        let started = std::time::Instant::now();
        match store.join(&reqs).await {
            Ok(answers) => {
                for (p, a) in batch.drain(..).zip(answers) {
                    // The requester may have given up; nothing to do then.
                    let _ = p.reply.send(Ok(a));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, joins = reqs.len(), "join batch failed");
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(()));
                }
            }
        }
        tracing::debug!(
            joins = reqs.len(),
            duration_ms = started.elapsed().as_millis() as u64,
            "join batch"
        );
    }
}
