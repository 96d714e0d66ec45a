//! The runner of sequences and conductor compositions: who runs them, the records they leave,
//! and the activation of their code components. The control flow of each lives in the
//! modules `sequence` and `conductor`.

use super::arguments::Input;
use super::primitive::{self, Completion, Origin};
use crate::state::AppState;
use edgewhisk_entity::connector::ExecutableAction;
use edgewhisk_entity::exec::ActionExec;
use edgewhisk_entity::{
    Action, Activation, ActivationId, ActivationResponse, Identity, Parameters,
};
use edgewhisk_entity::{Status, time::now_millis};
use serde_json::Value;
use serde_json::json;
use serde_json::value::RawValue;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub(super) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How one blocking component invocation ended.
#[derive(Debug)]
pub(super) enum Step {
    /// The record of the finished activation.
    Done(Box<Activation>),
    /// No result in time (or the answer path was lost and nothing was stored).
    Lost(ActivationId),
    /// The balancer did not take the activation.
    Failed,
}

/// One invocation of a sequence or composition: who runs it, and the shared services.
/// Cheap to clone; a run is a task of its own so that it goes on after a blocking client
/// has been answered 202.
#[derive(Debug, Clone)]
pub(super) struct Runner {
    pub(super) state: AppState,
    pub(super) identity: Arc<Identity>,
    transaction_id: Arc<str>,
    /// When the controller received the topmost request, epoch ms.
    received_at: u64,
}

impl Runner {
    /// A runner for `identity`'s request `transaction_id`, received at `received_at`.
    pub(super) fn new(
        state: AppState,
        identity: Identity,
        transaction_id: String,
        received_at: u64,
    ) -> Self {
        Self {
            state,
            identity: Arc::new(identity),
            transaction_id: transaction_id.into(),
            received_at,
        }
    }

    /// Runs `action` (a sequence or a conductor) as the topmost activation `id` and stores
    /// its record. The body is the client's object, passed on unparsed where possible. `Err`
    /// when the record could not be stored (a full disk): the caller must not report the
    /// activation as finished.
    pub(super) async fn run_topmost(
        &self,
        action: Action,
        id: ActivationId,
        body: Box<RawValue>,
    ) -> Result<Activation, edgewhisk_store::StoreError> {
        let record = match &action.exec {
            ActionExec::Sequence(seq) => {
                let components = seq.components.clone();
                self.run_sequence(&action, &components, Input::Raw(body), None, id, 0)
                    .await
                    .0
            }
            ActionExec::Code(_) => self.compose(action, Input::Raw(body), None, id).await,
        };
        self.state.activations().store(record.clone()).await?;
        Ok(record)
    }

    /// Stores a sequence or composition record; a failing store is logged, not answered.
    pub(super) async fn store(&self, record: &Activation) {
        if let Err(e) = self.state.activations().store(record.clone()).await {
            tracing::error!(activation = %record.activation_id, error = %e, "storing a sequence record failed");
        }
    }

    /// Publishes one activation of a code action and waits up to its time limit plus a
    /// minute for the result.
    pub(super) async fn invoke_primitive(
        &self,
        action: Action,
        input: Input,
        cause: ActivationId,
    ) -> Step {
        let content = input.into_content(&action.parameters);
        let Some(executable) = primitive::executable(action) else {
            return Step::Failed;
        };
        self.publish(Arc::new(executable), content, cause).await
    }

    /// Publishes `content` for `executable` as a component of `cause` and waits for it.
    pub(super) async fn publish(
        &self,
        executable: Arc<ExecutableAction>,
        content: Box<RawValue>,
        cause: ActivationId,
    ) -> Step {
        let wait = executable.limits.completion_wait();
        let origin = Origin {
            identity: &self.identity,
            transaction_id: &self.transaction_id,
            received_at: now_millis(),
            cause: Some(cause),
        };
        let annotations = caused_by_sequence();
        let Ok(published) =
            primitive::publish(&self.state, origin, executable, content, annotations).await
        else {
            return Step::Failed;
        };
        let id = published.id.clone();
        match primitive::wait_for(&self.state, &self.identity.namespace, published, wait).await {
            Ok(Completion::Done(activation)) => Step::Done(activation),
            Ok(Completion::TimedOut(_) | Completion::Lost) | Err(_) => Step::Lost(id),
        }
    }

    /// The record of a sequence or composition (OpenWhisk `makeSequenceActivation`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn record(
        &self,
        action: &Action,
        id: ActivationId,
        cause: Option<ActivationId>,
        start: u64,
        response: ActivationResponse,
        logs: Vec<String>,
        duration: u64,
        max_memory: Option<u64>,
    ) -> Activation {
        let topmost = cause.is_none();
        let mut annotations = Parameters::default();
        annotations.set("topmost", json!(topmost));
        annotations.set(
            "path",
            json!(format!("{}/{}", action.namespace, action.name)),
        );
        annotations.set("kind", json!(edgewhisk_entity::exec::SEQUENCE_KIND));
        if action.is_conductor() {
            annotations.set("conductor", json!(true));
        }
        if !topmost {
            annotations.set("causedBy", json!(edgewhisk_entity::exec::SEQUENCE_KIND));
        }
        annotations.set("waitTime", json!(start.saturating_sub(self.received_at)));
        if let Some(memory) = max_memory {
            let mut limits = action.limits;
            limits.memory = memory;
            annotations.set("limits", json!(limits));
        }
        let end = now_millis().max(start);
        Activation {
            namespace: self.identity.namespace.clone(),
            name: action.name.clone(),
            version: action.version.clone(),
            subject: self.identity.subject.clone(),
            activation_id: id,
            cause,
            start,
            end,
            duration: Some(duration),
            response,
            logs,
            annotations,
            publish: false,
        }
    }
}

/// The `memory` of an activation's `limits` annotation.
pub(super) fn memory_of(activation: &Activation) -> Option<u64> {
    activation
        .annotations
        .get("limits")
        .and_then(|l| l.get("memory"))
        .and_then(Value::as_u64)
}

pub(super) fn app_error(message: &str) -> ActivationResponse {
    ActivationResponse::error(Status::ApplicationError, message)
}

/// The annotation OpenWhisk puts on every record of a sequence or conductor component.
pub(super) fn caused_by_sequence() -> edgewhisk_entity::Parameters {
    let mut a = edgewhisk_entity::Parameters::default();
    a.set("causedBy", serde_json::json!("sequence"));
    a
}
