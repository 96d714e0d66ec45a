//! `/api/v1/namespaces/{ns}/triggers[/{name}]`: list, get, create/update, delete and fire
//! (OpenWhisk `Triggers.scala`).
//!
//! Triggers are stored through [`EntityStore`](edgewhisk_store::EntityStore) as
//! `EntityDoc { collection: Triggers, path: "ns", name, updated, doc: <Trigger JSON> }`. The
//! trigger document also holds the status of every rule linked to it (its `rules` map), so
//! firing reads one document.
//!
//! Fire answers at once and works afterwards, as OpenWhisk does: the handler parses the request
//! and hands it to [`activation::fire`], which activates each active rule's action as the
//! firing user and stores the trigger activation. Fires are counted per namespace and minute
//! by the invocation [`Throttler`](crate::throttle::Throttler) under a key of their own,
//! against the same per-minute limit that `GET limits` reports as `firesPerMinute`.

use crate::activation::{self, FireOutcome, FireRequest};
use crate::api::checks;
use crate::api::list::list_collection;
use crate::api::render;
use crate::auth::{Caller, resolve_namespace};
use crate::config::ApiConfig;
use crate::entities::{load_trigger, put_error, valid_name};
use crate::error::{ApiError, ApiJson, ApiQuery, TransactionId, is_blank, read_body};
use crate::messages;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use edgewhisk_entity::action::{bump_version, is_version};
use edgewhisk_entity::rule::parse_entity_path;
use edgewhisk_entity::{Parameters, Trigger, TriggerPut};
use edgewhisk_store::{Collection, EntityDoc, ListScope, PutMode, StoreError};
use serde_json::{Map, Value};

fn store_error(e: StoreError) -> ApiError {
    put_error(Collection::Triggers)(e)
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
    let namespace = checks::own_entity(&caller.0, &ns, &name)?;
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
    let namespace = checks::own_entity(&caller.0, &ns, &name)?;
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
    let namespace = checks::own_entity(&caller.0, &ns, &name)?;
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
    let received_at = edgewhisk_entity::time::now_millis();
    let identity = caller.0;
    let namespace = resolve_namespace(&identity, &ns, Some(&name))?;
    valid_name(&name)?;
    let bytes = read_body(&headers, body, state.config().max_payload_bytes).await?;
    let payload = payload_object(&bytes)?;
    let request = FireRequest {
        identity,
        namespace,
        trigger: name,
        payload,
        transaction_id: tid.0,
        received_at,
    };
    Ok(match activation::fire(&state, request).await? {
        FireOutcome::NoActiveRule => StatusCode::NO_CONTENT.into_response(),
        FireOutcome::Accepted(id) => render::accepted(&id),
    })
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
    checks::parameter_sizes(
        put.parameters.as_ref(),
        put.annotations.as_ref(),
        config.max_parameter_bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewhisk_entity::{FullyQualifiedEntityName, RuleStatus};
    use serde_json::json;

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
    fn fire_payload_must_be_an_object() {
        assert!(payload_object(b"").unwrap().is_empty());
        assert_eq!(payload_object(br#"{"a":1}"#).unwrap()["a"], json!(1));
        for bad in [&b"[1]"[..], b"3", b"{"] {
            assert!(payload_object(bad).is_err());
        }
    }
}
