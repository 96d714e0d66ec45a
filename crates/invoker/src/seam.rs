//! The seam between the invoker front, the container pool and the container proxies: the
//! types they hand each other, in a module that depends on none of them.
//!
//! The front (module `invoker`) turns an accepted message into a [`Job`] and sends it to the
//! pool as [`PoolMsg::Submit`]; the pool (`container_pool`) places it on an instance with
//! [`ProxyCommand::Run`]; the instance's proxy (`container_proxy`) runs it, answers it through
//! the job's [`Completer`], and reports back to the pool with the other [`PoolMsg`] events.
//! Calls run one way, front → pool → proxy; events come back as messages.
//!
//! "Nothing accepted is lost" is structural: an accepted message travels as a `Job` whose
//! drop guard stores a whisk-error record and answers if the job is dropped unanswered (a
//! panicking proxy task, an aborted run at shutdown, a channel torn down).

use crate::container::response::{INTERNAL_ERROR, SHUTTING_DOWN};
use crate::metrics::{InvokerMetrics, PoolCounts};
use crate::record::{RunFacts, activation_record};
use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage};
use edgewhisk_entity::{Activation, ActivationResponse, Status};
use edgewhisk_store::ActivationStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{oneshot, watch};
use tracing::Instrument;

/// The pool's id of one instance. Ids grow with creation order and are never reused.
pub type InstanceId = u64;

/// Everything the pool task is told: jobs from the front, events from the proxies, and the
/// shutdown steps.
#[derive(Debug)]
pub(crate) enum PoolMsg {
    /// A new activation.
    Submit(Job),
    /// A stem cell is up.
    Started(InstanceId),
    /// An instance finished `/init`.
    Initialized(InstanceId),
    /// An instance finished one job and keeps going.
    JobDone(InstanceId),
    /// An instance is going away; `returned` are jobs it got but never started.
    Removed {
        /// The instance.
        id: InstanceId,
        /// Jobs to place again, in the order they were sent.
        returned: Vec<Job>,
    },
    /// What the pool holds now, for the metrics.
    Counts(oneshot::Sender<PoolCounts>),
    /// Shutdown, first step: fail queued jobs, remove idle instances, take no new work.
    Drain,
    /// Shutdown, last step: remove every instance, wait until all are destroyed, answer, end.
    Stop(oneshot::Sender<()>),
}

/// What the pool tells a proxy.
#[derive(Debug)]
pub(crate) enum ProxyCommand {
    /// Run this job (the pool counted it in the instance's `active`).
    Run(Job),
    /// Go away now: cut off in-flight runs, destroy the instance.
    Remove,
}

/// Stores records and answers; counts accepted jobs not yet answered.
#[derive(Debug)]
pub(crate) struct Completer {
    store: Arc<dyn ActivationStore>,
    metrics: InvokerMetrics,
    pending: watch::Sender<usize>,
    shutting_down: AtomicBool,
}

impl Completer {
    /// A completer storing into `store` and counting into `metrics`, with nothing pending.
    pub(crate) fn new(store: Arc<dyn ActivationStore>, metrics: InvokerMetrics) -> Self {
        let (pending, _) = watch::channel(0usize);
        Self {
            store,
            metrics,
            pending,
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Whether [`Completer::shut_down`] was called.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Marks the invoker as shutting down: jobs dropped from now on are recorded as such.
    pub(crate) fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Watches the number of accepted jobs not yet answered.
    pub(crate) fn pending(&self) -> watch::Receiver<usize> {
        self.pending.subscribe()
    }

    /// Flushes the activation store (at shutdown).
    pub(crate) async fn flush(&self) {
        if let Err(e) = self.store.flush().await {
            tracing::warn!(error = %e, "flushing activation records at shutdown failed");
        }
    }

    /// Answers only after `store` resolved, that is after the record's transaction committed
    /// (group commit): whoever learns of a finished activation can rely on its record surviving
    /// a crash of the server.
    ///
    /// A record that could not be stored (a full disk, a closed store) is not answered: the
    /// reply is dropped, which tells the controller to look in the store, where it will not
    /// find the record, so no client is told of an activation whose record is gone.
    async fn finish(&self, activation: Activation, reply: oneshot::Sender<CompletionMessage>) {
        match self.store.store(activation.clone()).await {
            // The controller may have stopped waiting; a closed receiver is fine.
            Ok(()) => {
                let _ = reply.send(CompletionMessage { activation });
            }
            Err(e) => {
                tracing::error!(error = %e, id = %activation.activation_id, "storing activation failed; not answered");
                drop(reply);
            }
        }
        self.pending.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// One accepted activation on its way through the pool. Must end in [`Job::complete`] or
/// [`Job::fail`]; if it is dropped instead, its drop guard records a whisk error.
#[derive(Debug)]
pub(crate) struct Job {
    msg: Box<ActivationMessage>,
    reply: Option<oneshot::Sender<CompletionMessage>>,
    completer: Arc<Completer>,
    /// Every log line of the job's work runs in it: it names the transaction id and the
    /// activation id (a child of the request's span when the controller is in this process).
    span: tracing::Span,
}

impl Job {
    /// Accepts `msg`: counts it as pending until it is answered and returns the job with the
    /// receiver of its answer.
    pub(crate) fn accept(
        msg: ActivationMessage,
        completer: &Arc<Completer>,
    ) -> (Job, oneshot::Receiver<CompletionMessage>) {
        let (tx, rx) = oneshot::channel();
        completer.pending.send_modify(|n| *n += 1);
        let span = tracing::info_span!(
            "activation",
            tid = %msg.transaction_id,
            id = %msg.activation_id
        );
        let job = Job {
            span,
            msg: Box::new(msg),
            reply: Some(tx),
            completer: Arc::clone(completer),
        };
        (job, rx)
    }

    /// The message.
    pub(crate) fn msg(&self) -> &ActivationMessage {
        &self.msg
    }

    /// The span of the job's work (see [`Job::accept`]).
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Counts what happened to the job in the metrics, builds its record from `facts`, and
    /// completes it with the record.
    pub(crate) async fn finish(self, facts: RunFacts) {
        self.completer.metrics.record(&self.msg, &facts);
        let activation = activation_record(&self.msg, facts);
        self.complete(activation).await;
    }

    /// Stores `activation` and answers with it once its record is committed. The wait for the
    /// commit runs in a task of its own, so the instance's proxy goes on to its next job at
    /// once instead of waiting for the store.
    pub(crate) async fn complete(mut self, activation: Activation) {
        if let Some(reply) = self.reply.take() {
            let completer = Arc::clone(&self.completer);
            tokio::spawn(
                async move { completer.finish(activation, reply).await }
                    .instrument(self.span.clone()),
            );
        }
    }

    /// Records and answers an activation that never ran.
    pub(crate) async fn fail(self, response: ActivationResponse) {
        self.finish(RunFacts::unstarted(response)).await;
    }

    /// Takes back an accepted job that never reached the pool: it is neither answered nor
    /// counted any more.
    pub(crate) fn disarm(&mut self) {
        if self.reply.take().is_some() {
            self.completer
                .pending
                .send_modify(|n| *n = n.saturating_sub(1));
        }
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        let message = if self.completer.is_shutting_down() {
            SHUTTING_DOWN
        } else {
            INTERNAL_ERROR
        };
        let facts = RunFacts::unstarted(ActivationResponse::error(Status::WhiskError, message));
        self.completer.metrics.record(&self.msg, &facts);
        let activation = activation_record(&self.msg, facts);
        let completer = Arc::clone(&self.completer);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(
                    async move { completer.finish(activation, reply).await }
                        .instrument(self.span.clone()),
                );
            }
            Err(_) => {
                tracing::error!(id = %activation.activation_id, "activation dropped outside a runtime; not stored");
                let _ = reply.send(CompletionMessage { activation });
                completer.pending.send_modify(|n| *n = n.saturating_sub(1));
            }
        }
    }
}
