//! Conductor actions: compositions run by the controller (OpenWhisk `PrimitiveActions.scala`
//! `invokeComposition`, `invokeConductor`, `invokeComponent`, `completeAppActivation`).
//!
//! The conductor runs with the input (merged with the `state` of its previous result); a
//! result with `action` names the next component, run with the result's `params`; the
//! component's result goes back to the conductor. A result without `action` ends the
//! composition with its `params` (or the whole result). Component errors do not stop it: the
//! conductor decides.

use super::arguments::Input;
use super::primitive::executable;
use super::runner::{BoxFuture, Runner, Step, memory_of};
use crate::messages;
use crate::sequences::resolve::{may_use, parse_component, resolve_action};
use crate::sequences::validate::SEQUENCE_LIMIT;
use edgewhisk_entity::exec::ActionExec;
use edgewhisk_entity::{Action, Activation, ActivationId, ActivationResponse, Status};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Counts shared by a composition and the compositions nested in it, so the limits apply to
/// the whole tree.
#[derive(Debug, Default)]
struct Accounting {
    components: usize,
    conductors: usize,
}

/// What one composition has gathered so far (OpenWhisk's `Session`).
#[derive(Debug)]
struct Session {
    logs: Vec<String>,
    duration: u64,
    max_memory: u64,
    state: Option<Map<String, Value>>,
}

impl Session {
    fn tally(&mut self, activation: &Activation) {
        self.logs.push(activation.activation_id.as_str().to_owned());
        self.duration += activation
            .duration
            .unwrap_or_else(|| activation.end.saturating_sub(activation.start));
    }
}

impl Runner {
    /// Runs the conductor `action` as composition `id` with counts of its own; `cause` is the
    /// enclosing activation.
    pub(super) async fn compose(
        &self,
        action: Action,
        input: Input,
        cause: Option<ActivationId>,
        id: ActivationId,
    ) -> Activation {
        let mut acct = Accounting::default();
        self.run_composition(action, input, cause, id, &mut acct)
            .await
    }

    /// Runs the conductor `action` as composition `id`, counting in `acct`; `cause` is the
    /// enclosing activation.
    fn run_composition<'a>(
        &'a self,
        action: Action,
        input: Input,
        cause: Option<ActivationId>,
        id: ActivationId,
        acct: &'a mut Accounting,
    ) -> BoxFuture<'a, Activation> {
        Box::pin(async move {
            let start = edgewhisk_entity::time::now_millis();
            let mut session = Session {
                logs: Vec::new(),
                duration: 0,
                max_memory: action.limits.memory,
                state: None,
            };
            let response = self.drive(&action, input, &id, acct, &mut session).await;
            self.record(
                &action,
                id,
                cause,
                start,
                response,
                session.logs,
                session.duration,
                Some(session.max_memory),
            )
        })
    }

    /// The conductor loop; returns the composition's response.
    async fn drive(
        &self,
        action: &Action,
        input: Input,
        id: &ActivationId,
        acct: &mut Accounting,
        session: &mut Session,
    ) -> ActivationResponse {
        let whisk = |m: String| ActivationResponse::error(Status::WhiskError, m);
        let app = |m: String| ActivationResponse::error(Status::ApplicationError, m);
        let Some(conductor) = executable(action.clone()).map(Arc::new) else {
            return whisk(messages::COMPOSITION_ACTIVATION_FAILURE.to_owned());
        };
        let mut input = input;
        loop {
            if acct.conductors > 2 * SEQUENCE_LIMIT {
                return app(messages::COMPOSITION_IS_TOO_LONG.to_owned());
            }
            // The conductor's arguments: its defaults, the input, then the saved state.
            let payload = match session.state.take() {
                Some(state) => {
                    let mut args = input.into_object();
                    args.extend(state);
                    Input::Json(Value::Object(args))
                }
                None => input,
            };
            acct.conductors += 1;
            let content = payload.into_content(&action.parameters);
            let activation = match self.publish(conductor.clone(), content, id.clone()).await {
                Step::Done(a) => *a,
                Step::Lost(aid) => {
                    session.logs.push(aid.as_str().to_owned());
                    return whisk(messages::composition_activation_timeout(aid.as_str()));
                }
                Step::Failed => return whisk(messages::COMPOSITION_ACTIVATION_FAILURE.to_owned()),
            };
            session.tally(&activation);
            let status = activation.response.status;
            let mut result = match activation.response.result {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            let params = result.remove("params").map(|p| match p {
                Value::Object(_) => p,
                other => json!({ "value": other }),
            });
            session.state = match result.remove("state") {
                Some(Value::Object(s)) => Some(s),
                _ => None,
            };
            let Some(next) = result.remove("action") else {
                // No next action: the composition ends with the params, or the whole result.
                let end = params.unwrap_or_else(|| {
                    if let Some(s) = &session.state {
                        result.insert("state".to_owned(), Value::Object(s.clone()));
                    }
                    Value::Object(result)
                });
                return ActivationResponse {
                    status,
                    result: Some(end),
                    size: None,
                };
            };
            let Some(fqn) = next
                .as_str()
                .and_then(|s| parse_component(s, &self.identity.namespace))
            else {
                return app(messages::composition_component_invalid(&next.to_string()));
            };
            let name = next.as_str().unwrap_or_default();
            if !may_use(&self.state, &self.identity.namespace, &fqn).await {
                return app(messages::composition_component_not_accessible(name));
            }
            let Some(component) = resolve_action(&self.state, &fqn).await else {
                return app(messages::composition_component_not_found(name));
            };
            if acct.components >= SEQUENCE_LIMIT {
                return app(messages::COMPOSITION_IS_TOO_LONG.to_owned());
            }
            let args = Input::Json(params.unwrap_or_else(|| json!({})));
            let step = self.composition_component(component, args, id, acct).await;
            match step {
                Step::Done(done) => {
                    session.tally(&done);
                    if let Some(m) = memory_of(&done) {
                        session.max_memory = session.max_memory.max(m);
                    }
                    input = Input::Json(done.response.result.unwrap_or_else(|| json!({})));
                }
                Step::Lost(aid) => {
                    session.logs.push(aid.as_str().to_owned());
                    return whisk(messages::composition_activation_timeout(aid.as_str()));
                }
                Step::Failed => return whisk(messages::COMPOSITION_ACTIVATION_FAILURE.to_owned()),
            }
        }
    }

    /// Runs one component of a composition: a nested composition (sharing the counts), a
    /// sequence, or an atomic action.
    async fn composition_component(
        &self,
        component: Action,
        args: Input,
        id: &ActivationId,
        acct: &mut Accounting,
    ) -> Step {
        match &component.exec {
            ActionExec::Code(_) if component.is_conductor() => {
                let inner = ActivationId::generate();
                let record = self
                    .run_composition(component, args, Some(id.clone()), inner, acct)
                    .await;
                self.store(&record).await;
                Step::Done(Box::new(record))
            }
            ActionExec::Sequence(seq) => {
                acct.components += 1;
                let components = seq.components.clone();
                let inner = ActivationId::generate();
                let (record, _) = self
                    .run_sequence(&component, &components, args, Some(id.clone()), inner, 0)
                    .await;
                self.store(&record).await;
                Step::Done(Box::new(record))
            }
            ActionExec::Code(_) => {
                acct.components += 1;
                self.invoke_primitive(component, args, id.clone()).await
            }
        }
    }
}
