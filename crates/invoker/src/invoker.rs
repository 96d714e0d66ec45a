//! The invoker front (OpenWhisk `InvokerReactive`): takes an `ActivationMessage`, hands it to
//! the container pool, and for every accepted message stores exactly one activation record and
//! then answers with a `CompletionMessage`.
//!
//! "Nothing accepted is lost" is structural: an accepted message travels as a `Job` whose
//! drop guard records and answers it if it is dropped unanswered (see `seam.rs`).
//! [`Invoker::shutdown`] waits until every accepted job has been answered.

use crate::config::PoolConfig;
use crate::container::ContainerFactory;
use crate::container_pool;
use crate::metrics::{self, InvokerMetrics};
use crate::seam::{Completer, Job, PoolMsg};
use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage};
use edgewhisk_store::ActivationStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Why a message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokerError {
    /// `shutdown` was called; no new work is taken.
    #[error("the invoker is shutting down")]
    ShuttingDown,
    /// The pool task is gone (it stopped or crashed).
    #[error("the container pool is not running")]
    PoolStopped,
}

/// Runs activations in a pool of action instances. Cheap to clone; all clones drive the same
/// pool.
#[derive(Clone, Debug)]
pub struct Invoker {
    pool: mpsc::UnboundedSender<PoolMsg>,
    completer: Arc<Completer>,
    metrics: InvokerMetrics,
}

impl Invoker {
    /// Spawns the pool task (must be called inside a tokio runtime) and returns its front,
    /// counting into metrics of the default runtimes without per-action labels.
    pub fn start(
        config: PoolConfig,
        factory: Arc<dyn ContainerFactory>,
        activations: Arc<dyn ActivationStore>,
    ) -> Invoker {
        let metrics = InvokerMetrics::new(&edgewhisk_entity::RuntimeManifest::default(), false);
        Self::start_with_metrics(config, factory, activations, metrics)
    }

    /// [`Invoker::start`], counting runs into `metrics`.
    pub fn start_with_metrics(
        config: PoolConfig,
        factory: Arc<dyn ContainerFactory>,
        activations: Arc<dyn ActivationStore>,
        metrics: InvokerMetrics,
    ) -> Invoker {
        let completer = Arc::new(Completer::new(activations, metrics.clone()));
        let pool = container_pool::spawn(config, factory);
        Invoker {
            pool,
            completer,
            metrics,
        }
    }

    /// The metrics this invoker counts into.
    pub fn metrics(&self) -> &InvokerMetrics {
        &self.metrics
    }

    /// Reads what the pool holds and the runners' memory into the metrics' gauges (before a
    /// scrape). Leaves the pool gauges as they were when the pool task is gone.
    pub async fn refresh_metrics(&self) {
        let (tx, rx) = oneshot::channel();
        let counts = if self.pool.send(PoolMsg::Counts(tx)).is_ok() {
            rx.await.ok()
        } else {
            None
        };
        let memory = tokio::task::spawn_blocking(metrics::runner_memory)
            .await
            .unwrap_or_default();
        if let Some(counts) = counts {
            self.metrics.set_pool(counts, memory);
        }
    }

    /// Accepts a message for execution; never blocks. The receiver resolves with the record
    /// once it is stored. Every accepted message gets a record, even across `shutdown`.
    pub fn submit(
        &self,
        msg: ActivationMessage,
    ) -> Result<oneshot::Receiver<CompletionMessage>, InvokerError> {
        if self.completer.is_shutting_down() {
            return Err(InvokerError::ShuttingDown);
        }
        let (job, rx) = Job::accept(msg, &self.completer);
        match self.pool.send(PoolMsg::Submit(job)) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::SendError(msg)) => {
                if let PoolMsg::Submit(mut job) = msg {
                    job.disarm();
                }
                Err(InvokerError::PoolStopped)
            }
        }
    }

    /// Whether [`shutdown`](Self::shutdown) was called: no new work is taken.
    pub fn is_shutting_down(&self) -> bool {
        self.completer.is_shutting_down()
    }

    /// Stops taking work, lets in-flight activations finish for up to `grace`, then destroys
    /// every instance. Queued and cut-off activations are recorded as whisk errors ("The
    /// invoker is shutting down."). Returns when every accepted activation has its record
    /// stored and the store is flushed.
    pub async fn shutdown(&self, grace: Duration) {
        self.completer.shut_down();
        let mut pending = self.completer.pending();
        // Fails what never started and frees idle instances; busy ones keep running.
        let _ = self.pool.send(PoolMsg::Drain);
        let _ = tokio::time::timeout(grace, pending.wait_for(|n| *n == 0)).await;
        let (tx, done) = oneshot::channel();
        if self.pool.send(PoolMsg::Stop(tx)).is_ok() {
            let _ = done.await;
        }
        let _ = pending.wait_for(|n| *n == 0).await;
        self.completer.flush().await;
    }
}
