//! `/api/v1/namespaces/{ns}/triggers[/{name}]`: list, get, create/update, delete and fire
//! (OpenWhisk `Triggers.scala`).
//!
//! Triggers are stored through [`EntityStore`](edgewhisk_store::EntityStore) as
//! `EntityDoc { collection: Triggers, path: "ns", name, updated, doc: <Trigger JSON> }`. The
//! trigger document also holds the status of every rule linked to it (its `rules` map), so
//! firing reads one document.
//!
//! Fire answers at once and works afterwards, as OpenWhisk does: each active rule's action is
//! invoked non-blocking as the firing user through the same handler as `POST actions/...`
//! (upstream posts to its own actions API), so entitlement, package parameters, sequences and
//! throttles apply unchanged; then the trigger activation is stored with one log line per rule.
//! Fires are counted per namespace and minute by the invocation [`Throttler`](crate::throttle::Throttler)
//! under a key of their own, against the same per-minute limit that `GET limits` reports as
//! `firesPerMinute`.

use crate::AppState;
use crate::api::actions::{self, ACTIVATION_ID_HEADER};
use crate::api::{list_collection, load_entity, put_error};
use crate::auth::{Caller, resolve_namespace};
use crate::config::ApiConfig;
use crate::error::{ApiError, ApiJson, ApiQuery, ErrorBody, TransactionId, is_blank, read_body};
use crate::messages;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use edgewhisk_entity::action::{bump_version, is_version};
use edgewhisk_entity::names::validate_name;
use edgewhisk_entity::rule::parse_entity_path;
use edgewhisk_entity::{
    Activation, ActivationId, ActivationResponse, FullyQualifiedEntityName, Identity, Parameters,
    RuleStatus, Trigger, TriggerPut,
};
use edgewhisk_store::{Collection, EntityDoc, ListScope, PutMode, StoreError};
use serde_json::{Map, Value, json};

/// How often a read-modify-write of a trigger document is retried after a concurrent update.
const UPDATE_ATTEMPTS: usize = 8;

pub(crate) fn valid_name(name: &str) -> Result<(), ApiError> {
    validate_name("name", name).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// The trigger at `namespace/name`, if any, with its stored `updated`; 409 when the name
/// belongs to another collection.
pub(crate) async fn load_trigger(
    state: &AppState,
    namespace: &str,
    name: &str,
) -> Result<Option<(u64, Trigger)>, ApiError> {
    load_entity(state, Collection::Triggers, namespace, name).await
}

fn store_error(e: StoreError) -> ApiError {
    put_error(Collection::Triggers)(e)
}

/// Applies `change` to the trigger `namespace/name` and writes it back, retrying when another
/// request updated it in between. `Ok(false)` when the trigger does not exist (or the name
/// belongs to another collection).
pub(crate) async fn update_trigger(
    state: &AppState,
    namespace: &str,
    name: &str,
    mut change: impl FnMut(&mut Trigger),
) -> Result<bool, ApiError> {
    for _ in 0..UPDATE_ATTEMPTS {
        let (stored, mut trigger) = match load_trigger(state, namespace, name).await {
            Ok(Some(found)) => found,
            Ok(None) | Err(ApiError::Conflict(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        change(&mut trigger);
        trigger.updated = edgewhisk_entity::time::now_millis().max(stored.saturating_add(1));
        let doc = EntityDoc {
            collection: Collection::Triggers,
            path: namespace.to_owned(),
            name: name.to_owned(),
            updated: trigger.updated,
            doc: trigger.to_json(),
        };
        let mode = PutMode::Replace {
            expected_updated: stored,
        };
        match state.entities().put(doc, mode).await {
            Ok(()) => return Ok(true),
            Err(StoreError::ConcurrentModification) => continue,
            Err(e) => return Err(store_error(e)),
        }
    }
    Err(ApiError::Conflict(messages::CONCURRENT_MODIFICATION))
}

/// `GET triggers?limit=&skip=&count=`: summaries of the namespace's triggers, newest first;
/// `{"triggers": N}` with `count=true`.
///
/// 200; 400 (bad limit/skip); 401; 403.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(ns): Path<String>,
    q: ApiQuery,
) -> Result<Json<Value>, ApiError> {
    let namespace = resolve_namespace(&caller.0, &ns, None)?;
    let scope = ListScope::Path(namespace);
    list_collection(&state, Collection::Triggers, &scope, &q, |t: Trigger| {
        t.summary_json()
    })
    .await
}

/// `GET triggers/{name}`: the trigger with its `rules` map.
///
/// 200; 400 (bad name); 401; 403; 404; 409 (name taken by another collection).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let namespace = resolve_namespace(&caller.0, &ns, Some(&name))?;
    valid_name(&name)?;
    let (_, t) = load_trigger(&state, &namespace, &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(t.to_json()))
}

/// `PUT triggers/{name}?overwrite=`: creates, or with `overwrite=true` updates, a trigger and
/// answers it. An update replaces parameters, annotations and limits wholesale when given,
/// keeps the linked rules and bumps the version.
///
/// 200; 400 (bad name, JSON or version, `feed` annotation not an entity path); 401; 403;
/// 409 (exists without overwrite, other collection, concurrent update); 413.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    q: ApiQuery,
    ApiJson(body): ApiJson<TriggerPut>,
) -> Result<Json<Value>, ApiError> {
    let namespace = resolve_namespace(&caller.0, &ns, Some(&name))?;
    valid_name(&name)?;
    let overwrite = q.bool("overwrite", false)?;
    check_sizes(state.config(), &body)?;
    if let Some(v) = body.version.as_deref().filter(|v| !is_version(v)) {
        return Err(ApiError::BadRequest(messages::invalid_version(v)));
    }
    if let Some(a) = &body.annotations {
        check_feed(a)?;
    }
    let now = edgewhisk_entity::time::now_millis();
    let (trigger, mode) = match load_trigger(&state, &namespace, &name).await? {
        Some(_) if !overwrite => return Err(ApiError::Conflict(messages::RESOURCE_ALREADY_EXISTS)),
        Some((stored, old)) => {
            let updated = now.max(old.updated.saturating_add(1));
            let mode = PutMode::Replace {
                expected_updated: stored,
            };
            (update_trigger_from(old, body, updated), mode)
        }
        None => (
            create_trigger(&namespace, &name, body, now),
            PutMode::Create,
        ),
    };
    let doc = EntityDoc {
        collection: Collection::Triggers,
        path: namespace,
        name,
        updated: trigger.updated,
        doc: trigger.to_json(),
    };
    state.entities().put(doc, mode).await.map_err(store_error)?;
    Ok(Json(trigger.to_json()))
}

/// `DELETE triggers/{name}`: removes the trigger (rules naming it stay) and answers it.
///
/// 200; 400 (bad name); 401; 403; 404; 409 (name taken by another collection).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let namespace = resolve_namespace(&caller.0, &ns, Some(&name))?;
    valid_name(&name)?;
    let (_, t) = load_trigger(&state, &namespace, &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    state
        .entities()
        .delete(&namespace, &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(t.to_json()))
}

/// `POST triggers/{name}`: fires the trigger with the body (a JSON object, empty = `{}`).
///
/// - no active rule: 204, nothing recorded;
/// - otherwise 202 `{"activationId"}` with `x-openwhisk-activation-id`; then every active
///   rule's action is invoked non-blocking with trigger parameters ⊕ body, and the trigger
///   activation is stored (`end` 0, result = body, one JSON log line per linked rule);
/// - 400 (bad name, non-object body), 401, 403, 404, 409 (name taken by another
///   collection), 413 (body over the payload limit), 429 (over the fires per minute), 507
///   (the store is out of disk space).
pub async fn fire(
    State(state): State<AppState>,
    caller: Caller,
    tid: TransactionId,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let start = edgewhisk_entity::time::now_millis();
    let identity = caller.0;
    let namespace = resolve_namespace(&identity, &ns, Some(&name))?;
    valid_name(&name)?;
    // Fires have their own per-minute window (`firesPerMinute`, overridable per namespace).
    state
        .throttler()
        .fire(&namespace, start)
        .map_err(|e| ApiError::TooManyRequests(e.message()))?;
    let bytes = read_body(&headers, body, state.config().max_payload_bytes).await?;
    let payload = payload_object(&bytes)?;
    let (_, trigger) = load_trigger(&state, &namespace, &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    if trigger.active_rules().next().is_none() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    // The 202 promises a trigger record: refused (507) while records cannot be kept.
    state.activations().check_space()?;
    let activation_id = ActivationId::generate();
    let fired = Fired {
        state,
        identity,
        transaction_id: tid.0,
        trigger,
        payload,
        activation_id: activation_id.clone(),
        start,
    };
    tokio::spawn(fired.run());
    let mut res = (
        StatusCode::ACCEPTED,
        Json(json!({ "activationId": activation_id })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(activation_id.as_str()) {
        res.headers_mut().insert(ACTIVATION_ID_HEADER, v);
    }
    Ok(res)
}

/// The fire body as a JSON object; blank is `{}`, anything but an object is a 400.
fn payload_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let bytes: &[u8] = if is_blank(bytes) { b"{}" } else { bytes };
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::BadRequest(messages::malformed_content(
            messages::OBJECT_EXPECTED,
        ))),
        Err(e) => Err(ApiError::BadRequest(messages::malformed_content(
            &e.to_string(),
        ))),
    }
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
        let args = Value::Object(args).to_string();
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

    /// Invokes `action` non-blocking through the actions API handler.
    async fn invoke(&self, action: &FullyQualifiedEntityName, args: &str) -> RuleOutcome {
        let ns = action.namespace().to_owned();
        let rest = match action.package() {
            Some(pkg) => format!("{pkg}/{}", action.name),
            None => action.name.clone(),
        };
        let res = actions::invoke(
            State(self.state.clone()),
            Caller(self.identity.clone()),
            TransactionId(self.transaction_id.clone()),
            Path((ns, rest)),
            ApiQuery::default(),
            HeaderMap::new(),
            Body::from(args.to_owned()),
        )
        .await;
        let res = match res {
            Ok(res) => res,
            Err(e) => return RuleOutcome::from_error(e.status(), e.message()),
        };
        let status = res.status();
        if !status.is_success() {
            let message = res.extensions().get::<ErrorBody>().map_or_else(
                || status.canonical_reason().unwrap_or("Error").to_owned(),
                |b| b.0.clone(),
            );
            return RuleOutcome::from_error(status, message);
        }
        let id = res
            .headers()
            .get(ACTIVATION_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match id {
            Some(id) => RuleOutcome::Invoked { activation_id: id },
            None => RuleOutcome::from_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                messages::INTERNAL_SERVER_ERROR.to_owned(),
            ),
        }
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

/// 400 unless the `feed` annotation, when present, is a fully qualified entity path.
fn check_feed(annotations: &Parameters) -> Result<(), ApiError> {
    match annotations.get("feed") {
        None => Ok(()),
        Some(Value::String(s)) if parse_entity_path(s).is_ok() => Ok(()),
        Some(_) => Err(ApiError::BadRequest(messages::FEED_NAME_INVALID.to_owned())),
    }
}

fn create_trigger(namespace: &str, name: &str, put: TriggerPut, now: u64) -> Trigger {
    Trigger {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        version: put.version.unwrap_or_else(|| "0.0.1".to_owned()),
        publish: put.publish.unwrap_or(false),
        parameters: put.parameters.unwrap_or_default(),
        limits: put.limits.unwrap_or_default(),
        annotations: put.annotations.unwrap_or_default(),
        rules: None,
        updated: now,
    }
}

/// `old` updated by a PUT body: parameters, annotations and limits replaced when given,
/// publish kept unless given, rules kept, version given or bumped.
fn update_trigger_from(old: Trigger, put: TriggerPut, updated: u64) -> Trigger {
    Trigger {
        version: put.version.unwrap_or_else(|| bump_version(&old.version)),
        publish: put.publish.unwrap_or(old.publish),
        parameters: put.parameters.unwrap_or(old.parameters),
        limits: put.limits.unwrap_or(old.limits),
        annotations: put.annotations.unwrap_or(old.annotations),
        updated,
        ..old
    }
}

/// 413 for parameters or annotations over the parameter size limit.
fn check_sizes(config: &ApiConfig, put: &TriggerPut) -> Result<(), ApiError> {
    for (field, p) in [
        ("parameters", &put.parameters),
        ("annotations", &put.annotations),
    ] {
        let Some(p) = p else { continue };
        let is: u64 =
            p.0.iter()
                .map(|kv| u64::try_from(kv.key.len() + kv.value.to_string().len()))
                .map(|n| n.unwrap_or(u64::MAX))
                .fold(0, u64::saturating_add);
        if is > config.max_parameter_bytes {
            return Err(ApiError::PayloadTooLarge(messages::entity_too_big(
                field,
                is,
                config.max_parameter_bytes,
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(v: Value) -> TriggerPut {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn update_replaces_given_fields_keeps_rules_and_bumps_the_version() {
        let mut old = create_trigger(
            "guest",
            "t",
            put(json!({"parameters": [{"key": "a", "value": 1}],
                       "annotations": [{"key": "x", "value": 1}]})),
            5,
        );
        old.link_rule(
            "guest/r",
            FullyQualifiedEntityName::new("guest", None, "a"),
            RuleStatus::Active,
        );
        let t = update_trigger_from(
            old.clone(),
            put(json!({"annotations": [{"key": "y", "value": 2}]})),
            6,
        );
        assert_eq!(t.version, "0.0.2");
        assert_eq!(t.parameters, old.parameters);
        assert_eq!(
            serde_json::to_value(&t.annotations).unwrap(),
            json!([{"key": "y", "value": 2}])
        );
        assert_eq!(t.rules, old.rules);
        let t = update_trigger_from(t, put(json!({"parameters": [], "version": "1.0.0"})), 7);
        assert!(t.parameters.is_empty());
        assert_eq!((t.version.as_str(), t.updated), ("1.0.0", 7));
    }

    #[test]
    fn feed_annotation_must_be_an_entity_path() {
        let ann = |v: Value| -> Parameters {
            serde_json::from_value(json!([{"key": "feed", "value": v}])).unwrap()
        };
        assert!(check_feed(&ann(json!("/whisk.system/alarms/alarm"))).is_ok());
        assert!(check_feed(&Parameters::default()).is_ok());
        for bad in [json!("alarm"), json!("/a/b/c/d"), json!(5), json!("/a/b$")] {
            assert_eq!(
                check_feed(&ann(bad)).unwrap_err().message(),
                "Feed name is not valid"
            );
        }
    }

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

    #[test]
    fn fire_payload_must_be_an_object() {
        assert!(payload_object(b"").unwrap().is_empty());
        assert_eq!(payload_object(br#"{"a":1}"#).unwrap()["a"], json!(1));
        for bad in [&b"[1]"[..], b"3", b"{"] {
            assert!(payload_object(bad).is_err());
        }
    }
}
