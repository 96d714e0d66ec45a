//! Sequences and conductor actions, run by the controller (OpenWhisk
//! `actions/SequenceActions.scala` and the composition part of `actions/PrimitiveActions.scala`).
//!
//! A sequence runs its components one after another; each is invoked blocking through the
//! [`LoadBalancer`](crate::loadbalancer::LoadBalancer) with the previous result as its input.
//! Results stay in memory: the first component gets the request body as it came, later ones
//! get the previous component's result, serialised once for the invoker and never re-parsed.
//! Nested sequences run recursively; the count of atomic actions is shared with the enclosing
//! sequences, and more than [`SEQUENCE_LIMIT`] ends the run with an application error.
//!
//! A conductor action (annotation `conductor`) is run as a composition: the conductor's
//! result `{action, params, state}` names the next component, whose result (merged with
//! `state`) goes back to the conductor, until a conductor result without `action` ends it.
//!
//! Entitlement is checked for every component each time it runs, with the invoker's
//! namespace, as when the sequence was created: a component in a package that was unshared
//! since (or reached through a binding to one) ends the sequence with an application error
//! naming it, before it runs or lends its package parameters.
//!
//! Every component keeps its own record, with `cause` = the enclosing sequence's activation
//! id. The sequence (or composition) gets one more record: `logs` = the component activation
//! ids in order, `duration` = the sum of theirs, `response` = the last one's, and the
//! annotations `topmost`, `path`, `kind: sequence`, `waitTime`, `limits` (memory = the largest
//! of the components), `causedBy: sequence` when nested, and `conductor: true` for
//! compositions.
//!
//! Known caveats: component records get `causedBy` from the invoker (it knows the `cause`);
//! components addressed through a package binding are resolved one binding deep, without
//! merging package parameters.

mod compose;
mod resolve;
mod validate;

pub(crate) use resolve::{may_use, parse_component, resolve_action};
pub(crate) use validate::sequence_exec;

use crate::AppState;
use crate::messages;
use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage, ExecutableAction};
use edgewhisk_entity::exec::ActionExec;
use edgewhisk_entity::{
    Action, Activation, ActivationId, ActivationResponse, Identity, Parameters,
};
use edgewhisk_entity::{Status, time::now_millis};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Most atomic actions one sequence may run, nested sequences inlined (OpenWhisk
/// `actionSequenceLimit`); a composition may run as many components and twice as many plus
/// one conductor activations.
pub const SEQUENCE_LIMIT: usize = 50;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The input of the next activation.
#[derive(Debug)]
pub(crate) enum Payload {
    /// JSON text as it came from the client (already checked to be an object).
    Raw(Box<RawValue>),
    /// A previous result.
    Json(Value),
}

impl Payload {
    /// The run arguments for an action with `defaults`: the payload as it is when there are
    /// no defaults to merge, else the defaults overlaid with the payload's fields. Anything
    /// but an object or array is no input at all (OpenWhisk passes only objects on).
    fn into_content(self, defaults: &Parameters) -> Box<RawValue> {
        let has_defaults = defaults.0.iter().any(|kv| !kv.init);
        let value = match self {
            Payload::Raw(raw) if !has_defaults => return raw,
            Payload::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or_else(|_| json!({})),
            Payload::Json(v) => v,
        };
        let value = match value {
            Value::Object(m) if has_defaults => {
                let mut merged = defaults.run_object();
                merged.extend(m);
                Value::Object(merged)
            }
            v @ (Value::Object(_) | Value::Array(_)) if !has_defaults => v,
            _ => Value::Object(defaults.run_object()),
        };
        serde_json::value::to_raw_value(&value).unwrap_or_else(|_| empty_object())
    }

    /// The payload as a JSON object, for merging a composition's state into it.
    fn into_object(self) -> Map<String, Value> {
        let value = match self {
            Payload::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
            Payload::Json(v) => v,
        };
        match value {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }
}

#[allow(clippy::expect_used)]
fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).expect("{} is JSON")
}

/// How one blocking component invocation ended.
#[derive(Debug)]
pub(crate) enum Step {
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
pub(crate) struct Runner {
    state: AppState,
    identity: Arc<Identity>,
    transaction_id: Arc<str>,
    /// When the controller received the topmost request, epoch ms.
    received_at: u64,
}

/// The result of [`Runner::run_sequence`]: its record and the atomic actions counted so far.
type SequenceRun = (Activation, usize);

impl Runner {
    /// A runner for `identity`'s request `transaction_id`, received at `received_at`.
    pub(crate) fn new(
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
    pub(crate) async fn run_topmost(
        &self,
        action: Action,
        id: ActivationId,
        body: Box<RawValue>,
    ) -> Result<Activation, edgewhisk_store::StoreError> {
        let record = match &action.exec {
            ActionExec::Sequence(seq) => {
                let components = seq.components.clone();
                self.run_sequence(&action, &components, Payload::Raw(body), None, id, 0)
                    .await
                    .0
            }
            ActionExec::Code(_) => {
                let mut acct = compose::Accounting::default();
                self.run_composition(action, Payload::Raw(body), None, id, &mut acct)
                    .await
            }
        };
        self.state.activations().store(record.clone()).await?;
        Ok(record)
    }

    /// Stores a sequence or composition record; a failing store is logged, not answered.
    async fn store(&self, record: &Activation) {
        if let Err(e) = self.state.activations().store(record.clone()).await {
            tracing::error!(activation = %record.activation_id, error = %e, "storing a sequence record failed");
        }
    }

    /// Runs a sequence's components in order; `count` atomic actions have run before it in
    /// the enclosing sequences. `cause` is the enclosing activation (none when topmost).
    fn run_sequence<'a>(
        &'a self,
        action: &'a Action,
        components: &'a [String],
        input: Payload,
        cause: Option<ActivationId>,
        id: ActivationId,
        count: usize,
    ) -> BoxFuture<'a, SequenceRun> {
        Box::pin(async move {
            let start = now_millis();
            let mut acct = SequenceAccounting::new(count);
            let mut input = Some(input);
            let last = components.len().saturating_sub(1);
            for (i, component) in components.iter().enumerate() {
                if acct.count >= SEQUENCE_LIMIT {
                    acct.fail(app_error(messages::SEQUENCE_IS_TOO_LONG), None);
                    break;
                }
                let Some(fqn) = parse_component(component, &self.identity.namespace) else {
                    acct.fail(app_error(messages::SEQUENCE_COMPONENT_NOT_FOUND), None);
                    break;
                };
                // Entitlement is checked again at every run, not only when the sequence was
                // created: a package unshared since then must not lend its actions (and its
                // parameters) to other namespaces' sequences.
                if !may_use(&self.state, &self.identity.namespace, &fqn).await {
                    let denied = messages::not_authorized(&fqn.path_string());
                    acct.fail(app_error(&denied), None);
                    break;
                }
                let Some(next) = resolve_action(&self.state, &fqn).await else {
                    acct.fail(app_error(messages::SEQUENCE_COMPONENT_NOT_FOUND), None);
                    break;
                };
                let payload = input.take().unwrap_or(Payload::Json(json!({})));
                let (step, count) = self.component(next, payload, &id, acct.count).await;
                acct.count = count;
                match step {
                    Step::Done(activation) => {
                        if let Some(result) = acct.record(*activation, i == last) {
                            input = Some(Payload::Json(result));
                        } else {
                            break;
                        }
                    }
                    Step::Lost(aid) => {
                        let msg = messages::sequence_retrieve_activation_timeout(aid.as_str());
                        acct.fail(
                            ActivationResponse::error(Status::WhiskError, msg),
                            Some(aid),
                        );
                        break;
                    }
                    Step::Failed => {
                        let msg = messages::SEQUENCE_ACTIVATION_FAILURE;
                        acct.fail(ActivationResponse::error(Status::WhiskError, msg), None);
                        break;
                    }
                }
            }
            let count = acct.count;
            let record = self.record(
                action,
                id,
                cause,
                start,
                acct.response,
                acct.logs,
                acct.duration,
                acct.max_memory,
            );
            (record, count)
        })
    }

    /// Invokes one component of a sequence (an atomic action, a conductor or a nested
    /// sequence) and waits for it; returns how it ended and the new atomic action count.
    fn component<'a>(
        &'a self,
        action: Action,
        input: Payload,
        cause: &'a ActivationId,
        count: usize,
    ) -> BoxFuture<'a, (Step, usize)> {
        Box::pin(async move {
            match &action.exec {
                ActionExec::Sequence(seq) => {
                    let components = seq.components.clone();
                    let id = ActivationId::generate();
                    let (record, count) = self
                        .run_sequence(&action, &components, input, Some(cause.clone()), id, count)
                        .await;
                    self.store(&record).await;
                    (Step::Done(Box::new(record)), count)
                }
                ActionExec::Code(_) if action.is_conductor() => {
                    let mut acct = compose::Accounting::default();
                    let id = ActivationId::generate();
                    let record = self
                        .run_composition(action, input, Some(cause.clone()), id, &mut acct)
                        .await;
                    self.store(&record).await;
                    (Step::Done(Box::new(record)), count + 1)
                }
                ActionExec::Code(_) => {
                    let step = self.invoke_primitive(action, input, cause.clone()).await;
                    (step, count + 1)
                }
            }
        })
    }

    /// Publishes one activation of a code action and waits up to its time limit plus a
    /// minute for the result.
    async fn invoke_primitive(&self, action: Action, input: Payload, cause: ActivationId) -> Step {
        let content = input.into_content(&action.parameters);
        let Some(executable) = executable(action) else {
            return Step::Failed;
        };
        self.publish(Arc::new(executable), content, cause).await
    }

    /// Publishes `content` for `executable` as a component of `cause` and waits for it.
    async fn publish(
        &self,
        executable: Arc<ExecutableAction>,
        content: Box<RawValue>,
        cause: ActivationId,
    ) -> Step {
        let wait = executable.limits.completion_wait();
        let activation_id = ActivationId::generate();
        let msg = ActivationMessage {
            transaction_id: self.transaction_id.to_string(),
            activation_id: activation_id.clone(),
            namespace: self.identity.namespace.clone(),
            subject: self.identity.subject.clone(),
            api_key: crate::entitlement::api_key_for(&self.identity, &executable.name.path),
            action: executable,
            content,
            cause: Some(cause),
            received_at: now_millis(),
            annotations: caused_by_sequence(),
        };
        let Ok(rx) = self.state.balancer().publish(msg).await else {
            return Step::Failed;
        };
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(CompletionMessage { activation })) => Step::Done(Box::new(activation)),
            Ok(Err(_)) => {
                // The answer path was dropped; the record may still have been stored.
                match self
                    .state
                    .activations()
                    .get(&self.identity.namespace, &activation_id)
                    .await
                {
                    Ok(Some(activation)) => Step::Done(Box::new(activation)),
                    _ => Step::Lost(activation_id),
                }
            }
            Err(_) => Step::Lost(activation_id),
        }
    }

    /// The record of a sequence or composition (OpenWhisk `makeSequenceActivation`).
    #[allow(clippy::too_many_arguments)]
    fn record(
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

/// What a sequence run has gathered so far (OpenWhisk `SequenceAccounting`).
#[derive(Debug)]
struct SequenceAccounting {
    count: usize,
    response: ActivationResponse,
    logs: Vec<String>,
    duration: u64,
    max_memory: Option<u64>,
}

impl SequenceAccounting {
    fn new(count: usize) -> Self {
        Self {
            count,
            response: ActivationResponse::success(json!({})),
            logs: Vec::new(),
            duration: 0,
            max_memory: None,
        }
    }

    /// Ends the run with `response`, logging `id` when an activation exists.
    fn fail(&mut self, response: ActivationResponse, id: Option<ActivationId>) {
        self.logs.extend(id.map(|id| id.as_str().to_owned()));
        self.response = response;
    }

    /// Tallies a finished component. Returns its result as the next input when the sequence
    /// goes on; `None` when it stops here (an `error` field, the limit, or the last
    /// component, whose response is kept as the sequence's).
    fn record(&mut self, activation: Activation, is_last: bool) -> Option<Value> {
        self.logs.push(activation.activation_id.as_str().to_owned());
        self.duration += activation
            .duration
            .unwrap_or_else(|| activation.end.saturating_sub(activation.start));
        if let Some(memory) = memory_of(&activation) {
            self.max_memory = Some(self.max_memory.map_or(memory, |m| m.max(memory)));
        }
        let mut response = activation.response;
        if self.count > SEQUENCE_LIMIT {
            self.response = app_error(messages::SEQUENCE_IS_TOO_LONG);
            return None;
        }
        let has_error =
            matches!(&response.result, Some(Value::Object(m)) if m.contains_key("error"));
        if has_error || is_last {
            self.response = response;
            return None;
        }
        // The result moves on to the next component; the sequence keeps no copy of it.
        Some(response.result.take().unwrap_or_else(|| json!({})))
    }
}

/// The `memory` of an activation's `limits` annotation.
fn memory_of(activation: &Activation) -> Option<u64> {
    activation
        .annotations
        .get("limits")
        .and_then(|l| l.get("memory"))
        .and_then(Value::as_u64)
}

fn app_error(message: &str) -> ActivationResponse {
    ActivationResponse::error(Status::ApplicationError, message)
}

/// A code action as the invoker needs it; `None` for a sequence.
pub(crate) fn executable(action: Action) -> Option<ExecutableAction> {
    let ActionExec::Code(exec) = action.exec else {
        return None;
    };
    let init = action
        .parameters
        .0
        .into_iter()
        .filter(|kv| kv.init)
        .collect();
    Some(ExecutableAction {
        name: edgewhisk_entity::FullyQualifiedEntityName {
            path: action.namespace,
            name: action.name,
        },
        version: action.version,
        exec,
        limits: action.limits,
        init_parameters: Parameters(init),
        annotations: action.annotations,
    })
}

/// The annotation OpenWhisk puts on every record of a sequence or conductor component.
fn caused_by_sequence() -> edgewhisk_entity::Parameters {
    let mut a = edgewhisk_entity::Parameters::default();
    a.set("causedBy", serde_json::json!("sequence"));
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Parameters {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_raw_body_passes_through_unparsed_without_defaults() {
        let raw = RawValue::from_string(r#"{"a":  1}"#.to_owned()).unwrap();
        let out = Payload::Raw(raw).into_content(&Parameters::default());
        assert_eq!(out.get(), r#"{"a":  1}"#);
    }

    #[test]
    fn defaults_are_overlaid_by_the_payload_and_scalars_are_no_input() {
        let p = params(json!([{"key": "x", "value": 1}, {"key": "y", "value": 2}]));
        let out = Payload::Json(json!({"y": 5})).into_content(&p);
        assert_eq!(
            serde_json::from_str::<Value>(out.get()).unwrap(),
            json!({"x": 1, "y": 5})
        );
        let out = Payload::Json(json!("text")).into_content(&Parameters::default());
        assert_eq!(out.get(), "{}");
        let out = Payload::Json(json!([1, 2])).into_content(&Parameters::default());
        assert_eq!(out.get(), "[1,2]");
    }

    #[test]
    fn accounting_stops_on_an_error_field_and_keeps_that_response() {
        let mut acct = SequenceAccounting::new(1);
        let mut a = sample(json!({"error": "boom"}));
        a.response.status = Status::ApplicationError;
        assert!(acct.record(a, false).is_none());
        assert_eq!(acct.response.status, Status::ApplicationError);
        assert_eq!(acct.logs.len(), 1);
        assert_eq!(acct.duration, 7);
        assert_eq!(acct.max_memory, Some(128));
    }

    #[test]
    fn accounting_moves_a_good_result_on_and_sums_durations() {
        let mut acct = SequenceAccounting::new(1);
        assert_eq!(
            acct.record(sample(json!({"n": 1})), false),
            Some(json!({"n": 1}))
        );
        assert_eq!(acct.record(sample(json!({"n": 2})), true), None);
        assert_eq!(acct.response.result, Some(json!({"n": 2})));
        assert_eq!(acct.duration, 14);
    }

    fn sample(result: Value) -> Activation {
        let mut annotations = Parameters::default();
        annotations.set("limits", json!({"memory": 128}));
        Activation {
            namespace: "guest".into(),
            name: "a".into(),
            version: "0.0.1".into(),
            subject: "guest".into(),
            activation_id: ActivationId::generate(),
            cause: None,
            start: 10,
            end: 17,
            duration: None,
            response: ActivationResponse::success(result),
            logs: vec![],
            annotations,
            publish: false,
        }
    }
}
