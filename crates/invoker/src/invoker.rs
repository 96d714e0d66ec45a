//! The invoker front (OpenWhisk `InvokerReactive`): takes an `ActivationMessage`, hands it to
//! the container pool, and for every accepted message stores exactly one activation record and
//! then answers with a `CompletionMessage`.
//!
//! "Nothing accepted is lost" is structural: an accepted message travels as a `Job` whose
//! drop guard stores a whisk-error record and answers if the job is dropped unanswered (a
//! panicking proxy task, an aborted run at shutdown, a channel torn down). [`Invoker::shutdown`]
//! waits until every accepted job has been answered.

use crate::config::PoolConfig;
use crate::container::response::{INTERNAL_ERROR, SHUTTING_DOWN};
use crate::container::{ContainerFactory, Interval};
use crate::container_pool::{self, PoolMsg};
use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage};
use edgewhisk_entity::{Activation, ActivationResponse, Parameters, Status};
use edgewhisk_store::ActivationStore;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};

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
}

impl Invoker {
    /// Spawns the pool task (must be called inside a tokio runtime) and returns its front.
    pub fn start(
        config: PoolConfig,
        factory: Arc<dyn ContainerFactory>,
        activations: Arc<dyn ActivationStore>,
    ) -> Invoker {
        let (pending, _) = watch::channel(0usize);
        let completer = Arc::new(Completer {
            store: activations,
            pending,
            shutting_down: AtomicBool::new(false),
        });
        let pool = container_pool::spawn(config, factory);
        Invoker { pool, completer }
    }

    /// Accepts a message for execution; never blocks. The receiver resolves with the record
    /// once it is stored. Every accepted message gets a record, even across `shutdown`.
    pub fn submit(
        &self,
        msg: ActivationMessage,
    ) -> Result<oneshot::Receiver<CompletionMessage>, InvokerError> {
        if self.completer.shutting_down.load(Ordering::SeqCst) {
            return Err(InvokerError::ShuttingDown);
        }
        let (tx, rx) = oneshot::channel();
        self.completer.pending.send_modify(|n| *n += 1);
        let job = Job {
            msg: Box::new(msg),
            reply: Some(tx),
            completer: Arc::clone(&self.completer),
        };
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

    /// Stops taking work, lets in-flight activations finish for up to `grace`, then destroys
    /// every instance. Queued and cut-off activations are recorded as whisk errors ("The
    /// invoker is shutting down."). Returns when every accepted activation has its record
    /// stored and the store is flushed.
    pub async fn shutdown(&self, grace: Duration) {
        self.completer.shutting_down.store(true, Ordering::SeqCst);
        let mut pending = self.completer.pending.subscribe();
        // Fails what never started and frees idle instances; busy ones keep running.
        let _ = self.pool.send(PoolMsg::Drain);
        let _ = tokio::time::timeout(grace, pending.wait_for(|n| *n == 0)).await;
        let (tx, done) = oneshot::channel();
        if self.pool.send(PoolMsg::Stop(tx)).is_ok() {
            let _ = done.await;
        }
        let _ = pending.wait_for(|n| *n == 0).await;
        if let Err(e) = self.completer.store.flush().await {
            tracing::warn!(error = %e, "flushing activation records at shutdown failed");
        }
    }
}

/// Stores records and answers; counts accepted jobs not yet answered.
#[derive(Debug)]
pub(crate) struct Completer {
    store: Arc<dyn ActivationStore>,
    pending: watch::Sender<usize>,
    shutting_down: AtomicBool,
}

impl Completer {
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
}

impl Job {
    /// The message.
    pub(crate) fn msg(&self) -> &ActivationMessage {
        &self.msg
    }

    /// Stores `activation` and answers with it once its record is committed. The wait for the
    /// commit runs in a task of its own, so the instance's proxy goes on to its next job at
    /// once instead of waiting for the store.
    pub(crate) async fn complete(mut self, activation: Activation) {
        if let Some(reply) = self.reply.take() {
            let completer = Arc::clone(&self.completer);
            tokio::spawn(async move { completer.finish(activation, reply).await });
        }
    }

    /// Records and answers an activation that never ran.
    pub(crate) async fn fail(self, response: ActivationResponse) {
        let activation = activation_record(&self.msg, RunFacts::unstarted(response));
        self.complete(activation).await;
    }

    fn disarm(&mut self) {
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
        let message = if self.completer.shutting_down.load(Ordering::SeqCst) {
            SHUTTING_DOWN
        } else {
            INTERNAL_ERROR
        };
        let activation = activation_record(
            &self.msg,
            RunFacts::unstarted(ActivationResponse::error(Status::WhiskError, message)),
        );
        let completer = Arc::clone(&self.completer);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { completer.finish(activation, reply).await });
            }
            Err(_) => {
                tracing::error!(id = %activation.activation_id, "activation dropped outside a runtime; not stored");
                let _ = reply.send(CompletionMessage { activation });
                completer.pending.send_modify(|n| *n = n.saturating_sub(1));
            }
        }
    }
}

/// What happened to one activation, for its record.
#[derive(Debug, Clone)]
pub(crate) struct RunFacts {
    /// The `/init` this activation paid for (cold start), if any.
    pub(crate) init: Option<Interval>,
    /// The `/run`, if it happened.
    pub(crate) run: Option<Interval>,
    /// The outcome.
    pub(crate) response: ActivationResponse,
    /// Log lines.
    pub(crate) logs: Vec<String>,
    /// Whether the run hit its time limit.
    pub(crate) timed_out: bool,
}

impl RunFacts {
    /// An activation that never reached an instance.
    pub(crate) fn unstarted(response: ActivationResponse) -> Self {
        Self {
            init: None,
            run: None,
            response,
            logs: Vec::new(),
            timed_out: false,
        }
    }
}

fn epoch_ms(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Builds the record of reference §2.5 (OpenWhisk `ContainerProxy.constructWhiskActivation`):
/// `start` is the run start minus the init time, `waitTime` runs from receipt to the first
/// instance work (init on a cold start, else run), `initTime` only on cold starts.
pub(crate) fn activation_record(msg: &ActivationMessage, facts: RunFacts) -> Activation {
    let now = SystemTime::now();
    let (start, end, busy_from) = match (facts.init, facts.run) {
        (Some(init), Some(run)) => (
            epoch_ms(run.start).saturating_sub(millis(init.duration())),
            epoch_ms(run.end),
            init.start,
        ),
        (Some(init), None) => (epoch_ms(init.start), epoch_ms(init.end), init.start),
        (None, Some(run)) => (epoch_ms(run.start), epoch_ms(run.end), run.start),
        (None, None) => (epoch_ms(now), epoch_ms(now), now),
    };
    let action = &msg.action;
    let mut annotations = Parameters::default();
    annotations.set("path", json!(action.name.path_string()));
    annotations.set("kind", json!(action.exec.kind));
    annotations.set("limits", json!(action.limits));
    annotations.set("timeout", json!(facts.timed_out));
    annotations.set(
        "waitTime",
        json!(epoch_ms(busy_from).saturating_sub(msg.received_at)),
    );
    if let Some(init) = facts.init {
        annotations.set("initTime", json!(millis(init.duration())));
    }
    for extra in &msg.annotations.0 {
        annotations.set(&extra.key, extra.value.clone());
    }
    Activation {
        namespace: msg.namespace.clone(),
        name: action.name.name.clone(),
        version: action.version.clone(),
        subject: msg.subject.clone(),
        activation_id: msg.activation_id.clone(),
        cause: msg.cause.clone(),
        start,
        end,
        duration: Some(end.saturating_sub(start)),
        response: facts.response,
        logs: facts.logs,
        annotations,
        publish: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewhisk_entity::connector::ExecutableAction;
    use edgewhisk_entity::limits::ActionLimits;
    use edgewhisk_entity::{ActivationId, Exec, FullyQualifiedEntityName};
    use serde_json::value::RawValue;

    fn msg(received_at: u64) -> ActivationMessage {
        ActivationMessage {
            transaction_id: "tid".into(),
            activation_id: ActivationId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            namespace: "alice".into(),
            subject: "alice-subject".into(),
            api_key: None,
            action: Arc::new(ExecutableAction {
                name: FullyQualifiedEntityName::new("guest", Some("pkg"), "hello"),
                version: "0.0.3".into(),
                exec: Exec {
                    kind: "nodejs:20".into(),
                    code: "x".into(),
                    binary: false,
                    main: None,
                },
                limits: ActionLimits {
                    timeout: 1000,
                    memory: 256,
                    logs: 10,
                    concurrency: 1,
                },
                init_parameters: Parameters::default(),
                annotations: Parameters::default(),
            }),
            content: RawValue::from_string("{}".into()).unwrap(),
            cause: None,
            received_at,
            annotations: Default::default(),
        }
    }

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn cold_record_starts_init_time_before_the_run_and_carries_init_time() {
        let facts = RunFacts {
            init: Some(Interval {
                start: at(1_000),
                end: at(1_300),
            }),
            run: Some(Interval {
                start: at(1_310),
                end: at(1_400),
            }),
            response: ActivationResponse::success(json!({"ok": true})),
            logs: vec!["l".into()],
            timed_out: false,
        };
        let a = activation_record(&msg(900), facts);
        assert_eq!((a.start, a.end, a.duration), (1_010, 1_400, Some(390)));
        assert_eq!(a.namespace, "alice");
        assert_eq!(a.name, "hello");
        assert_eq!(a.version, "0.0.3");
        assert_eq!(a.subject, "alice-subject");
        assert!(!a.publish);
        assert_eq!(
            serde_json::to_value(&a.annotations).unwrap(),
            json!([
                {"key":"path","value":"guest/pkg/hello"},
                {"key":"kind","value":"nodejs:20"},
                {"key":"limits","value":{"timeout":1000,"memory":256,"logs":10,"concurrency":1}},
                {"key":"timeout","value":false},
                {"key":"waitTime","value":100},
                {"key":"initTime","value":300},
            ])
        );
    }

    #[test]
    fn record_carries_the_annotations_the_controller_sent() {
        let mut m = msg(0);
        m.annotations.set("causedBy", json!("sequence"));
        let facts = RunFacts {
            init: None,
            run: Some(Interval {
                start: at(10),
                end: at(20),
            }),
            response: ActivationResponse::success(json!({})),
            logs: vec![],
            timed_out: false,
        };
        let a = activation_record(&m, facts);
        assert_eq!(a.annotations.get("causedBy"), Some(&json!("sequence")));
        assert_eq!(a.annotations.get("kind"), Some(&json!("nodejs:20")));
    }

    #[test]
    fn warm_record_has_no_init_time_and_waits_until_the_run() {
        let facts = RunFacts {
            init: None,
            run: Some(Interval {
                start: at(2_000),
                end: at(2_050),
            }),
            response: ActivationResponse::error(Status::DeveloperError, "x"),
            logs: vec![],
            timed_out: true,
        };
        let a = activation_record(&msg(1_990), facts);
        assert_eq!((a.start, a.end), (2_000, 2_050));
        assert_eq!(a.annotations.get("initTime"), None);
        assert_eq!(a.annotations.get("waitTime"), Some(&json!(10)));
        assert_eq!(a.annotations.get("timeout"), Some(&json!(true)));
    }

    #[test]
    fn failed_init_record_spans_the_init() {
        let facts = RunFacts {
            init: Some(Interval {
                start: at(5_000),
                end: at(5_020),
            }),
            run: None,
            response: ActivationResponse::error(Status::DeveloperError, "x"),
            logs: vec![],
            timed_out: false,
        };
        let a = activation_record(&msg(4_000), facts);
        assert_eq!((a.start, a.end, a.duration), (5_000, 5_020, Some(20)));
        assert_eq!(a.annotations.get("initTime"), Some(&json!(20)));
    }
}
