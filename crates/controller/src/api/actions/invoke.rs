//! `POST actions/[{pkg}/]{name}?blocking=&result=&timeout=`: invoke an action (OpenWhisk
//! `Actions.scala` `activate`, `actions/PrimitiveActions.scala`).
//!
//! The hot path: the action comes from the entity store (served from its cache), the body is
//! validated as a JSON object without building a tree and passed on as raw JSON unless the
//! action has default parameters to merge, and nothing waits for disk.

use super::load;
use crate::AppState;
use crate::auth::Caller;
use crate::entitlement::{self, Right};
use crate::error::{ApiError, ApiQuery, TransactionId, is_blank, read_body};
use crate::messages;
use crate::sequences::{self, Runner};
use crate::throttle::InFlight;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage};
use edgewhisk_entity::exec::ActionExec;
use edgewhisk_entity::{Action, Activation, ActivationId, Status};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The header carrying the activation id on every invoke response.
pub const ACTIVATION_ID_HEADER: HeaderName = HeaderName::from_static("x-openwhisk-activation-id");

/// OpenWhisk's largest blocking wait, and the bound of the `timeout` parameter.
const MAX_BLOCKING_WAIT_MS: u64 = 60_000;

/// `POST actions/[{pkg}/]{name}`: runs the action with the body (a JSON object, empty = `{}`)
/// over its default parameters.
///
/// - non-blocking: 202 `{"activationId"}`;
/// - blocking (`blocking=true`), finished within min(`timeout`, the configured wait): 200 on
///   success, 502 on application or developer error, 500 on whisk error, with the full
///   activation (`"logs": []`) or, with `result=true`, only its result; not finished: 202
///   `{"activationId"}`;
/// - 400 (bad name, query, non-object body, `final` parameters), 401, 403, 404, 409 (name
///   taken by another collection), 413 (body over the payload limit), 429 (throttled),
///   503 (load balancer unavailable), 507 (the store is out of disk space: the activation is
///   refused before it runs, or its record could not be stored).
///
/// Every response that has an activation carries `x-openwhisk-activation-id`.
pub async fn invoke(
    State(state): State<AppState>,
    caller: Caller,
    tid: TransactionId,
    Path((ns, rest)): Path<(String, String)>,
    q: ApiQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let received_at = edgewhisk_entity::time::now_millis();
    let (t, pkg) = entitlement::action_target(&state, &caller, &ns, &rest, Right::Activate).await?;
    let blocking = q.bool("blocking", false)?;
    let result_only = q.bool("result", false)?;
    let timeout = parse_timeout(q.get("timeout"))?;
    let config = state.config();
    let body = read_body(&headers, body, config.max_payload_bytes).await?;
    let action = pkg.apply(load(&state, &t).await?.1);
    let mut annotations = edgewhisk_entity::Parameters::default();
    if let Some(binding) = entitlement::binding_annotation(&pkg) {
        annotations.set("binding", binding);
    }
    let is_sequence = matches!(action.exec, ActionExec::Sequence(_));
    // A sequence's input is the body alone (its `_actions` parameter is not an argument).
    let content = if is_sequence {
        object_content(&body)?
    } else {
        build_content(&action, &body)?
    };
    drop(body);
    // An activation whose record could not be kept is refused before it runs: a 202 would
    // promise a record that will never exist.
    state.activations().check_space()?;

    let identity = caller.0;
    let slot = state
        .throttler()
        .acquire(&identity.namespace, received_at)
        .map_err(|e| ApiError::TooManyRequests(e.message()))?;
    let activation_id = ActivationId::generate();
    let wait = Duration::from_millis(
        timeout
            .unwrap_or(config.blocking_wait_ms)
            .min(config.blocking_wait_ms),
    );
    if let Some(feed) = crate::feeds::provider(&action) {
        let record = crate::feeds::run_lifecycle(
            &state,
            &identity,
            feed,
            &action,
            content.get(),
            activation_id.clone(),
            received_at,
        )
        .await;
        drop(slot);
        return Ok(if blocking {
            respond(record, result_only, false)
        } else {
            accepted(&activation_id)
        });
    }
    if is_sequence || action.is_conductor() {
        let runner = Runner::new(state.clone(), identity, tid.0, received_at);
        let run = Composed {
            runner,
            action,
            activation_id,
            content,
            slot,
        };
        return Ok(run.answer(blocking, result_only, wait).await);
    }
    let executable = Arc::new(sequences::executable(action).ok_or(ApiError::NotFound)?);
    // Past this bound nobody waits for the activation any more; its slot is freed.
    let release_after = executable.limits.release_bound();
    let msg = ActivationMessage {
        transaction_id: tid.0,
        activation_id: activation_id.clone(),
        namespace: identity.namespace.clone(),
        subject: identity.subject.clone(),
        api_key: entitlement::api_key_for(&identity, &executable.name.path),
        action: executable,
        content,
        cause: None,
        received_at,
        annotations,
    };
    let mut rx = state.balancer().publish(msg).await?;

    if !blocking {
        release_later(rx, slot, release_after);
        return Ok(accepted(&activation_id));
    }
    match tokio::time::timeout(wait, &mut rx).await {
        Ok(Ok(CompletionMessage { activation })) => {
            drop(slot);
            Ok(completed(activation, result_only))
        }
        Ok(Err(_)) => {
            // The invoker dropped the answer path; the record may still have been stored.
            drop(slot);
            match state
                .activations()
                .get(&identity.namespace, &activation_id)
                .await?
            {
                Some(activation) => Ok(completed(activation, result_only)),
                None => {
                    // The invoker drops the answer of a record it could not store; a full
                    // disk is the usual reason, and the client must not take it for a 202.
                    state.activations().check_space()?;
                    Ok(accepted(&activation_id))
                }
            }
        }
        Err(_) => {
            release_later(rx, slot, release_after);
            Ok(accepted(&activation_id))
        }
    }
}

/// `timeout` must be 1..=60000 ms.
fn parse_timeout(v: Option<&str>) -> Result<Option<u64>, ApiError> {
    v.map(|v| {
        v.parse::<u64>()
            .ok()
            .filter(|ms| (1..=MAX_BLOCKING_WAIT_MS).contains(ms))
            .ok_or_else(|| {
                ApiError::BadRequest(messages::malformed_query_param(
                    "timeout",
                    &messages::invalid_timeout(MAX_BLOCKING_WAIT_MS),
                ))
            })
    })
    .transpose()
}

/// The run arguments: the action's non-init parameters overlaid with the body. A body for an
/// action without such parameters is only validated and passed through as it came.
pub(crate) fn build_content(action: &Action, body: &[u8]) -> Result<Box<RawValue>, ApiError> {
    let has_defaults = action.parameters.0.iter().any(|kv| !kv.init);
    if !has_defaults {
        return object_content(body);
    }
    let body: &[u8] = if is_blank(body) { b"{}" } else { body };
    let malformed =
        |e: serde_json::Error| ApiError::BadRequest(messages::malformed_content(&e.to_string()));
    let not_object =
        || ApiError::BadRequest(messages::malformed_content(messages::OBJECT_EXPECTED));
    let args: Map<String, Value> = match serde_json::from_slice(body).map_err(malformed)? {
        Value::Object(m) => m,
        _ => return Err(not_object()),
    };
    if action.annotations.is_truthy("final")
        && args.keys().any(|k| action.parameters.get(k).is_some())
    {
        return Err(ApiError::BadRequest(
            messages::PARAMETERS_NOT_ALLOWED.to_owned(),
        ));
    }
    let mut merged = action.parameters.run_object();
    merged.extend(args);
    serde_json::value::to_raw_value(&merged).map_err(malformed)
}

/// The body as run arguments, checked to be a JSON object (blank = `{}`) without building a
/// tree.
fn object_content(body: &[u8]) -> Result<Box<RawValue>, ApiError> {
    let body: &[u8] = if is_blank(body) { b"{}" } else { body };
    let raw: Box<RawValue> = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(messages::malformed_content(&e.to_string())))?;
    if !raw.get().trim_start().starts_with('{') {
        return Err(ApiError::BadRequest(messages::malformed_content(
            messages::OBJECT_EXPECTED,
        )));
    }
    Ok(raw)
}

/// A topmost sequence or conductor invocation, run as a task of its own so that it goes on
/// after a blocking client has been answered 202.
struct Composed {
    runner: Runner,
    action: Action,
    activation_id: ActivationId,
    content: Box<RawValue>,
    slot: InFlight,
}

impl Composed {
    /// Starts the run; answers 202 at once (non-blocking) or after `wait` without a result,
    /// else the finished record as for an action.
    async fn answer(self, blocking: bool, result_only: bool, wait: Duration) -> Response {
        let id = self.activation_id.clone();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let record = self
                .runner
                .run_topmost(self.action, self.activation_id, self.content)
                .await;
            drop(self.slot);
            let _ = tx.send(record);
        });
        if !blocking {
            return accepted(&id);
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(Ok(record))) => respond(record, result_only, true),
            // The record could not be stored: not an answer of a finished activation.
            Ok(Ok(Err(e))) => ApiError::Store(e).into_response(),
            _ => accepted(&id),
        }
    }
}

/// Frees the throttle slot when the activation completes, or after `bound` at the latest.
fn release_later(rx: oneshot::Receiver<CompletionMessage>, slot: InFlight, bound: Duration) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(bound, rx).await;
        drop(slot);
    });
}

fn with_id(mut res: Response, id: &ActivationId) -> Response {
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(ACTIVATION_ID_HEADER, v);
    }
    res
}

/// 202 `{"activationId"}`.
fn accepted(id: &ActivationId) -> Response {
    with_id(
        (StatusCode::ACCEPTED, Json(json!({ "activationId": id }))).into_response(),
        id,
    )
}

/// The answer of a finished blocking invoke: status by outcome, the activation with empty
/// logs (they are collected later) or only the result. An array result is returned bare.
fn completed(activation: Activation, result_only: bool) -> Response {
    respond(activation, result_only, false)
}

/// As [`completed`]; `keep_logs` for sequence records, whose logs (the component ids) are
/// known when they finish.
fn respond(activation: Activation, result_only: bool, keep_logs: bool) -> Response {
    let status = match activation.response.status {
        Status::Success => StatusCode::OK,
        Status::ApplicationError | Status::DeveloperError => StatusCode::BAD_GATEWAY,
        Status::WhiskError => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let id = activation.activation_id.clone();
    let result_is_array = matches!(activation.response.result, Some(Value::Array(_)));
    let body = if result_only || result_is_array {
        activation.response.result.unwrap_or_else(|| json!({}))
    } else {
        let mut v = activation.to_json();
        if !keep_logs {
            v["logs"] = json!([]);
        }
        v
    };
    with_id((status, Json(body)).into_response(), &id)
}

#[cfg(test)]
mod unit {
    use super::*;

    fn action(params: Value, annotations: Value) -> Action {
        serde_json::from_value(json!({
            "namespace": "guest", "name": "a", "version": "0.0.1", "publish": false,
            "exec": {"kind": "nodejs:20", "code": "x", "binary": false},
            "parameters": params,
            "limits": {"timeout": 1000, "memory": 256, "logs": 10, "concurrency": 1},
            "annotations": annotations, "updated": 1
        }))
        .unwrap()
    }

    #[test]
    fn body_passes_through_unparsed_when_the_action_has_no_defaults() {
        let a = action(
            json!([{"key": "secret", "value": 1, "init": true}]),
            json!([]),
        );
        let raw = build_content(&a, br#"{"b":  [1, 2]}"#).unwrap();
        assert_eq!(raw.get(), r#"{"b":  [1, 2]}"#);
        assert_eq!(build_content(&a, b"  ").unwrap().get(), "{}");
    }

    #[test]
    fn body_overrides_default_parameters_but_not_init_ones() {
        let a = action(
            json!([{"key": "x", "value": 1}, {"key": "y", "value": 2}, {"key": "e", "value": 3, "init": true}]),
            json!([]),
        );
        let raw = build_content(&a, br#"{"y": 5}"#).unwrap();
        let v: Value = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(v, json!({"x": 1, "y": 5}));
    }

    #[test]
    fn non_object_bodies_are_refused() {
        for params in [json!([]), json!([{"key": "x", "value": 1}])] {
            let a = action(params, json!([]));
            for body in [&b"[1]"[..], b"3", b"\"s\""] {
                assert_eq!(
                    build_content(&a, body).unwrap_err().message(),
                    "The request content was malformed:\nObject expected"
                );
            }
            assert!(build_content(&a, b"{").is_err());
        }
    }

    #[test]
    fn final_actions_refuse_bodies_that_redefine_parameters() {
        let a = action(
            json!([{"key": "x", "value": 1}]),
            json!([{"key": "final", "value": true}]),
        );
        assert_eq!(
            build_content(&a, br#"{"x": 2}"#).unwrap_err().message(),
            messages::PARAMETERS_NOT_ALLOWED
        );
        assert!(build_content(&a, br#"{"z": 2}"#).is_ok());
    }

    #[test]
    fn timeout_must_be_between_one_and_sixty_thousand_ms() {
        assert_eq!(parse_timeout(None).unwrap(), None);
        assert_eq!(parse_timeout(Some("60000")).unwrap(), Some(60_000));
        for bad in ["0", "60001", "x", "-5"] {
            assert_eq!(
                parse_timeout(Some(bad)).unwrap_err().message(),
                "The query parameter 'timeout' was malformed:\nTimeout must be number of milliseconds up to 60000."
            );
        }
    }

    #[test]
    fn executable_action_splits_out_init_parameters() {
        let a = action(
            json!([{"key": "x", "value": 1}, {"key": "e", "value": 3, "init": true}]),
            json!([{"key": "provide-api-key", "value": false}]),
        );
        let e = sequences::executable(a).unwrap();
        assert_eq!(e.name.to_string(), "/guest/a");
        assert_eq!(e.init_parameters.0.len(), 1);
        assert_eq!(e.init_parameters.0[0].key, "e");
        assert!(e.annotations.get("provide-api-key").is_some());
    }
}
