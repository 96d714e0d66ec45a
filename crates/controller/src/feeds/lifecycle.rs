//! Lifecycle events of the feed actions (`CREATE`, `READ`, `UPDATE`, `PAUSE`, `UNPAUSE`,
//! `DELETE`), run in the controller when a feed action is invoked.

use super::kind::FeedKind;
use super::stored::{FEEDS_PATH, FeedDoc, doc_name, load_doc, put_doc, verify_key};
use crate::entities;
use crate::messages;
use crate::state::AppState;
use edgewhisk_entity::time::now_millis;
use edgewhisk_entity::{
    Action, Activation, ActivationId, ActivationResponse, Identity, Parameters, Status,
};
use edgewhisk_store::{PutMode, StoreError};
use serde_json::{Map, Value, json};

/// Why a lifecycle event failed: the activation's error and the HTTP-like status OpenWhisk's
/// feed providers report with it.
#[derive(Debug)]
pub(super) struct LifecycleError(String);

impl From<String> for LifecycleError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for LifecycleError {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<StoreError> for LifecycleError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "feed store failure");
        Self(messages::INTERNAL_SERVER_ERROR.to_owned())
    }
}

/// Runs the lifecycle event in `args` for feed `kind` (the action `action`) invoked by
/// `caller`, stores its activation record and answers it.
pub async fn run_lifecycle(
    state: &AppState,
    caller: &Identity,
    kind: FeedKind,
    action: &Action,
    args: &str,
    activation_id: ActivationId,
    received_at: u64,
) -> Activation {
    let args: Map<String, Value> = serde_json::from_str(args).unwrap_or_default();
    let response = match lifecycle(state, kind, args).await {
        Ok(result) => ActivationResponse::success(result),
        Err(LifecycleError(message)) => {
            ActivationResponse::error(Status::ApplicationError, message)
        }
    };
    let end = now_millis();
    let mut annotations = Parameters::default();
    annotations.set(
        "path",
        json!(format!("{}/{}", action.namespace, action.name)),
    );
    annotations.set("kind", json!("feed"));
    annotations.set("waitTime", json!(0));
    let activation = Activation {
        namespace: caller.namespace.clone(),
        name: action.name.clone(),
        version: action.version.clone(),
        subject: caller.subject.clone(),
        activation_id,
        cause: None,
        start: received_at,
        end,
        duration: Some(end.saturating_sub(received_at)),
        response,
        logs: Vec::new(),
        annotations,
        publish: false,
    };
    if let Err(e) = state.activations().store(activation.clone()).await {
        tracing::error!(error = %e, "storing a feed activation failed");
    }
    activation
}

/// `/ns/trigger` (or `ns/trigger`, `_` = the key's namespace) as namespace and name.
pub(super) fn trigger_name(
    name: &str,
    identity: &Identity,
) -> Result<(String, String), LifecycleError> {
    let parts: Vec<&str> = name.trim_start_matches('/').split('/').collect();
    let (ns, trigger) = match parts.as_slice() {
        [ns, t] if !ns.is_empty() && !t.is_empty() => (*ns, *t),
        [t] if !t.is_empty() => ("_", *t),
        _ => return Err(format!("triggerName '{name}' is not a valid trigger name").into()),
    };
    let ns = if ns == "_" {
        identity.namespace.as_str()
    } else {
        ns
    };
    if ns != identity.namespace {
        return Err(format!("the authKey is not authorized to access trigger '{name}'").into());
    }
    Ok((ns.to_owned(), trigger.to_owned()))
}

/// Parameters of the feed itself, without the protocol's.
pub(super) fn feed_params(mut args: Map<String, Value>) -> Map<String, Value> {
    for k in ["lifecycleEvent", "triggerName", "authKey"] {
        args.remove(k);
    }
    args
}

pub(super) async fn lifecycle(
    state: &AppState,
    kind: FeedKind,
    args: Map<String, Value>,
) -> Result<Value, LifecycleError> {
    let event = args
        .get("lifecycleEvent")
        .and_then(Value::as_str)
        .unwrap_or("CREATE")
        .to_ascii_uppercase();
    let auth_key = args
        .get("authKey")
        .and_then(Value::as_str)
        .ok_or("the authKey parameter is missing")?
        .to_owned();
    let name = args
        .get("triggerName")
        .and_then(Value::as_str)
        .ok_or("the triggerName parameter is missing")?
        .to_owned();
    let identity = verify_key(state, &auth_key)
        .await?
        .ok_or("the authKey is not valid")?;
    let (namespace, trigger) = trigger_name(&name, &identity)?;
    let key = doc_name(&namespace, &trigger);
    let now = now_millis();
    let params = feed_params(args);
    let found = load_doc(state, &key).await?;
    let not_found = || LifecycleError(format!("trigger '{name}' has no {} feed", kind.as_str()));
    match event.as_str() {
        "CREATE" => {
            if found.is_some() {
                return Err(format!("trigger '{name}' already has a feed").into());
            }
            match entities::load_trigger(state, &namespace, &trigger).await {
                Ok(Some(_)) => {}
                _ => return Err(format!("trigger '{name}' does not exist").into()),
            }
            kind.validate(&params, now, true)?;
            let feed = FeedDoc {
                feed: kind,
                namespace,
                trigger,
                uuid: Some(identity.uuid.clone()),
                auth_key: None,
                params,
                paused: false,
                created: now,
                last_fired: None,
                fired: 0,
            };
            put_doc(state, &feed, PutMode::Create)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict { .. } => {
                        LifecycleError(format!("trigger '{name}' already has a feed"))
                    }
                    e => e.into(),
                })?;
            state.feeds().changed();
            Ok(json!({"status": "success", "triggerName": name}))
        }
        "READ" => {
            let (_, feed) = found.ok_or_else(not_found)?;
            let mut config = feed.params.clone();
            config.insert("name".into(), json!(feed.trigger));
            config.insert("namespace".into(), json!(feed.namespace));
            config.insert("feed".into(), json!(feed.feed.as_str()));
            Ok(json!({
                "config": config,
                "status": {
                    "active": !feed.paused,
                    "dateChanged": feed.last_fired.unwrap_or(feed.created),
                    "fired": feed.fired,
                    "lastFired": feed.last_fired,
                },
            }))
        }
        "DELETE" => {
            found.ok_or_else(not_found)?;
            state.entities().delete(FEEDS_PATH, &key).await?;
            state.feeds().changed();
            Ok(json!({"status": "success", "triggerName": name}))
        }
        "UPDATE" | "PAUSE" | "UNPAUSE" => {
            let (stored, mut feed) = found.ok_or_else(not_found)?;
            match event.as_str() {
                "PAUSE" => feed.paused = true,
                "UNPAUSE" => feed.paused = false,
                _ => {
                    let mut merged = feed.params.clone();
                    merged.extend(params);
                    kind.validate(&merged, now, true)?;
                    feed.params = merged;
                    feed.uuid = Some(identity.uuid.clone());
                    feed.auth_key = None;
                }
            }
            put_doc(
                state,
                &feed,
                PutMode::Replace {
                    expected_updated: stored,
                },
            )
            .await?;
            state.feeds().changed();
            Ok(json!({"status": "success", "triggerName": name}))
        }
        other => Err(format!("unsupported lifecycleEvent '{other}'").into()),
    }
}
