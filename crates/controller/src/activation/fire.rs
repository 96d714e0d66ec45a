//! Firing a trigger (OpenWhisk `Triggers.scala` `fire` and `activateRules`): the trigger is
//! loaded, the fire is counted against the namespace's fires per minute, and the answer is
//! given at once; afterwards each active rule's action is activated non-blocking as the
//! firing identity through [`activate`], so entitlement, package parameters, sequences and
//! throttles apply as for `POST actions/...`, and the trigger activation is stored with one
//! log line per rule. REST fires and feed fires (alarms, MQTT) come through here alike.

use super::arguments::Input;
use super::request::{ActivationRequest, Outcome};
use super::service::activate;
use crate::entities::{load_action, load_trigger};
use crate::entitlement::{self, Right};
use crate::error::{ApiError, payload_too_large};
use crate::messages;
use crate::state::AppState;
use axum::http::StatusCode;
use edgewhisk_entity::time::now_millis;
use edgewhisk_entity::{
    Activation, ActivationId, ActivationResponse, FullyQualifiedEntityName, Identity, Parameters,
    RuleStatus, Trigger,
};
use serde_json::{Map, Value};
use tracing::Instrument;

/// A fire of the trigger `namespace/trigger` with `payload`, by `identity`.
#[derive(Debug)]
pub struct FireRequest {
    /// Who fires: the rules' actions run as this identity.
    pub identity: Identity,
    /// The trigger's namespace.
    pub namespace: String,
    /// The trigger's name.
    pub trigger: String,
    /// The fire's payload, overlaid on the trigger's parameters.
    pub payload: Map<String, Value>,
    /// The transaction id.
    pub transaction_id: String,
    /// When the fire was received, epoch ms (the trigger record's `start`).
    pub received_at: u64,
}

/// How a fire was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FireOutcome {
    /// The trigger has no active rule: nothing runs and nothing is recorded (OpenWhisk's 204).
    NoActiveRule,
    /// The rules run; the trigger activation will be stored under this id.
    Accepted(ActivationId),
}

/// Fires a trigger: 429 over the namespace's fires per minute, 404 (409) when there is no such
/// trigger, 507 when the trigger record could not be kept.
pub async fn fire(state: &AppState, req: FireRequest) -> Result<FireOutcome, ApiError> {
    // Fires have their own per-minute window (`firesPerMinute`, overridable per namespace).
    state
        .throttler()
        .fire(&req.namespace, req.received_at)
        .map_err(|e| ApiError::TooManyRequests(e.message()))?;
    let (_, trigger) = load_trigger(state, &req.namespace, &req.trigger)
        .await?
        .ok_or(ApiError::NotFound)?;
    if trigger.active_rules().next().is_none() {
        return Ok(FireOutcome::NoActiveRule);
    }
    // Accepting promises a trigger record: refused (507) while records cannot be kept.
    state.activations().check_space()?;
    let activation_id = ActivationId::generate();
    let fired = Fired {
        state: state.clone(),
        identity: req.identity,
        transaction_id: req.transaction_id,
        trigger,
        payload: req.payload,
        activation_id: activation_id.clone(),
        start: req.received_at,
    };
    tokio::spawn(fired.run().in_current_span());
    Ok(FireOutcome::Accepted(activation_id))
}

/// The size of the arguments as the JSON text a client would have posted.
fn args_size(args: &Map<String, Value>) -> u64 {
    let len = serde_json::to_vec(args).map_or(0, |v| v.len());
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// One fire after its 202: runs the rules and stores the trigger activation.
struct Fired {
    state: AppState,
    identity: Identity,
    transaction_id: String,
    trigger: Trigger,
    payload: Map<String, Value>,
    activation_id: ActivationId,
    start: u64,
}

impl Fired {
    async fn run(self) {
        let mut args = self.trigger.parameters.run_object();
        args.extend(self.payload.clone());
        let mut logs = Vec::new();
        for (key, rule) in self.trigger.rules.iter().flatten() {
            let outcome = if rule.status == RuleStatus::Active {
                self.invoke(&rule.action, &args).await
            } else {
                RuleOutcome::Failed {
                    status_code: 1,
                    error: messages::rule_inactive(key, &rule.action.path_string()),
                }
            };
            logs.push(outcome.log_line(key, &rule.action));
        }
        let activation = Activation {
            namespace: self.identity.namespace.clone(),
            name: self.trigger.name.clone(),
            version: self.trigger.version.clone(),
            subject: self.identity.subject.clone(),
            activation_id: self.activation_id,
            cause: None,
            start: self.start,
            end: 0,
            duration: None,
            response: ActivationResponse::success(Value::Object(self.payload)),
            logs,
            annotations: Parameters::default(),
            publish: false,
        };
        if let Err(e) = self.state.activations().store(activation).await {
            tracing::error!(error = %e, trigger = %self.trigger.name, "storing a trigger activation failed");
        }
    }

    /// Activates the rule's `action` non-blocking as the trigger's owner, with entitlement,
    /// package parameters and throttles as for `POST actions/...`.
    async fn invoke(
        &self,
        action: &FullyQualifiedEntityName,
        args: &Map<String, Value>,
    ) -> RuleOutcome {
        match self.activate(action, args).await {
            Ok(outcome) => RuleOutcome::Invoked {
                activation_id: outcome.activation_id().as_str().to_owned(),
            },
            Err(e) => RuleOutcome::from_error(e.status(), e.message()),
        }
    }

    async fn activate(
        &self,
        action: &FullyQualifiedEntityName,
        args: &Map<String, Value>,
    ) -> Result<Outcome, ApiError> {
        let (target, package) =
            entitlement::named_action_target(&self.state, &self.identity, action, Right::Activate)
                .await?;
        let limit = self.state.config().max_payload_bytes;
        let size = args_size(args);
        if size > limit {
            return Err(payload_too_large(size, limit));
        }
        let (_, found) = load_action(&self.state, &target).await?;
        let request = ActivationRequest {
            identity: self.identity.clone(),
            action: package.apply(found),
            binding: package.binding,
            input: Input::Json(Value::Object(args.clone())),
            wait: None,
            transaction_id: self.transaction_id.clone(),
            received_at: now_millis(),
        };
        activate(&self.state, request).await
    }
}

/// What happened to one rule of a fire.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RuleOutcome {
    /// The action was invoked.
    Invoked { activation_id: String },
    /// It was not: 1 for a refusal (4xx, inactive rule), 3 for a platform failure.
    Failed { status_code: u8, error: String },
}

impl RuleOutcome {
    fn from_error(status: StatusCode, error: String) -> Self {
        let status_code = if status.is_client_error() { 1 } else { 3 };
        RuleOutcome::Failed { status_code, error }
    }

    /// The trigger activation's log line for this rule: a JSON object as a string, keys in
    /// OpenWhisk's order.
    fn log_line(&self, rule: &str, action: &FullyQualifiedEntityName) -> String {
        // Written by hand: serde_json's map would sort the keys.
        let text = |s: &str| Value::String(s.to_owned()).to_string();
        let head = match self {
            RuleOutcome::Invoked { activation_id } => format!(
                r#""statusCode":0,"success":true,"activationId":{}"#,
                text(activation_id)
            ),
            RuleOutcome::Failed { status_code, error } => format!(
                r#""statusCode":{status_code},"success":false,"error":{}"#,
                text(error)
            ),
        };
        format!(
            r#"{{{head},"rule":{},"action":{}}}"#,
            text(rule),
            text(&action.path_string())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rule_log_lines_follow_openwhisk() {
        let a = FullyQualifiedEntityName::new("guest", Some("pkg"), "a");
        let ok = RuleOutcome::Invoked {
            activation_id: "abc".into(),
        };
        assert_eq!(
            ok.log_line("guest/r", &a),
            r#"{"statusCode":0,"success":true,"activationId":"abc","rule":"guest/r","action":"guest/pkg/a"}"#
        );
        let refused = RuleOutcome::from_error(StatusCode::NOT_FOUND, "gone".into());
        let v: Value = serde_json::from_str(&refused.log_line("guest/r", &a)).unwrap();
        assert_eq!(
            v,
            json!({"statusCode": 1, "success": false, "error": "gone", "rule": "guest/r",
                   "action": "guest/pkg/a"})
        );
        let failed = RuleOutcome::from_error(StatusCode::SERVICE_UNAVAILABLE, "down".into());
        assert!(matches!(failed, RuleOutcome::Failed { status_code: 3, .. }));
    }
}
