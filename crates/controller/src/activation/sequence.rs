//! Sequences run by the controller (OpenWhisk `actions/SequenceActions.scala`); the runner
//! also drives conductor compositions (module `conductor`).
//!
//! A sequence runs its components one after another; each is invoked blocking through the
//! load balancer with the previous result as its input. Results stay in memory: the first
//! component gets the request body as it came, later ones get the previous component's
//! result, serialised once for the invoker and never re-parsed. Nested sequences run
//! recursively; the count of atomic actions is shared with the enclosing sequences, and more
//! than [`SEQUENCE_LIMIT`] ends the run with an application error.
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

use super::arguments::Input;
use super::runner::{BoxFuture, Runner, Step, app_error, memory_of};
use crate::messages;
use crate::sequences::resolve::{may_use, parse_component, resolve_action};
use crate::sequences::validate::SEQUENCE_LIMIT;
use edgewhisk_entity::exec::ActionExec;
use edgewhisk_entity::time::now_millis;
use edgewhisk_entity::{Action, Activation, ActivationId, ActivationResponse, Status};
use serde_json::{Value, json};

/// The result of [`Runner::run_sequence`]: its record and the atomic actions counted so far.
type SequenceRun = (Activation, usize);

impl Runner {
    /// Runs a sequence's components in order; `count` atomic actions have run before it in
    /// the enclosing sequences. `cause` is the enclosing activation (none when topmost).
    pub(super) fn run_sequence<'a>(
        &'a self,
        action: &'a Action,
        components: &'a [String],
        input: Input,
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
                let payload = input.take().unwrap_or(Input::Json(json!({})));
                let (step, count) = self.component(next, payload, &id, acct.count).await;
                acct.count = count;
                match step {
                    Step::Done(activation) => {
                        if let Some(result) = acct.record(*activation, i == last) {
                            input = Some(Input::Json(result));
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
        input: Input,
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
                    let id = ActivationId::generate();
                    let record = self.compose(action, input, Some(cause.clone()), id).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use edgewhisk_entity::Parameters;

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
