//! `/api/v1/namespaces/{ns}/rules[/{name}]`: list, get, create/update, enable/disable and
//! delete (OpenWhisk `Rules.scala`).
//!
//! Rules are stored as `EntityDoc { collection: Rules, path: "ns", name, updated, doc: <Rule
//! JSON> }` without a status. The status lives in the trigger's `rules` map under
//! `ns/rule` (see [`triggers`](super::triggers)): a rule is linked there, active, when it is
//! created; enable/disable rewrite only that entry; deleting a rule unlinks it. A rule whose
//! trigger is gone reads as `inactive`.

use crate::api::checks;
use crate::api::list::list_collection;
use crate::auth::{Caller, resolve_namespace};
use crate::entities::{self, load_entity, load_trigger, put_error, update_trigger};
use crate::entitlement::{self, Right};
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::messages;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use edgewhisk_entity::action::{bump_version, is_version};
use edgewhisk_entity::rule::resolve_entity;
use edgewhisk_entity::{FullyQualifiedEntityName, Rule, RulePut, RuleStatus};
use edgewhisk_store::{Collection, EntityDoc, ListScope, PutMode};
use serde_json::Value;

/// The rule at `namespace/name`, if any, with its stored `updated`; 409 when the name belongs
/// to another collection.
async fn load_rule(
    state: &AppState,
    namespace: &str,
    name: &str,
) -> Result<Option<(u64, Rule)>, ApiError> {
    load_entity(state, Collection::Rules, namespace, name).await
}

/// The rule's status as its trigger records it; `inactive` when the trigger is gone or does
/// not know the rule.
async fn status_of(state: &AppState, rule: &Rule) -> Result<RuleStatus, ApiError> {
    let found = match load_trigger(state, rule.trigger.namespace(), &rule.trigger.name).await {
        Ok(found) => found,
        Err(ApiError::Conflict(_)) => None,
        Err(e) => return Err(e),
    };
    Ok(found
        .and_then(|(_, t)| t.rule_status(&rule.key()))
        .unwrap_or(RuleStatus::Inactive))
}

/// `GET rules?limit=&skip=&count=`: the namespace's rules without status, newest first;
/// `{"rules": N}` with `count=true`.
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
    list_collection(&state, Collection::Rules, &scope, &q, |r: Rule| r.to_json()).await
}

/// `GET rules/{name}`: the rule with its `status` read from the trigger.
///
/// 200; 400 (bad name); 401; 403; 404; 409 (name taken by another collection).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let namespace = checks::own_entity(&caller.0, &ns, &name)?;
    let (_, rule) = load_rule(&state, &namespace, &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    let status = status_of(&state, &rule).await?;
    Ok(Json(rule.with_status(status)))
}

/// The trigger of a rule PUT, resolved: in the caller's namespace, outside packages, existing.
async fn checked_trigger(
    state: &AppState,
    namespace: &str,
    trigger: &FullyQualifiedEntityName,
) -> Result<FullyQualifiedEntityName, ApiError> {
    let t = resolve_entity(trigger, namespace);
    if t.path != namespace {
        return Err(ApiError::BadRequest(
            messages::RULE_TRIGGER_NOT_LOCAL.to_owned(),
        ));
    }
    let missing = || ApiError::BadRequest(messages::rule_target_missing("trigger", &t.to_string()));
    match load_trigger(state, &t.path, &t.name).await {
        Ok(Some(_)) => Ok(t.clone()),
        Ok(None) | Err(ApiError::Conflict(_) | ApiError::NotFound) => Err(missing()),
        Err(e) => Err(e),
    }
}

/// The action of a rule PUT, resolved: an action (plain, packaged, through a binding, or a
/// sequence) the caller may invoke.
async fn checked_action(
    state: &AppState,
    caller: &Caller,
    action: &FullyQualifiedEntityName,
) -> Result<FullyQualifiedEntityName, ApiError> {
    let a = resolve_entity(action, &caller.0.namespace);
    let missing = || ApiError::BadRequest(messages::rule_target_missing("action", &a.to_string()));
    let found = match entitlement::named_action_target(state, &caller.0, &a, Right::Activate).await
    {
        Ok((target, _)) => entities::load_action(state, &target).await.map(|_| ()),
        Err(e) => Err(e),
    };
    match found {
        Ok(()) => Ok(a.clone()),
        Err(ApiError::NotFound | ApiError::Conflict(_)) => Err(missing()),
        Err(e) => Err(e),
    }
}

/// `PUT rules/{name}?overwrite=`: creates a rule (active, linked into its trigger) or, with
/// `overwrite=true`, updates one (keeping its status, moving the link when the trigger
/// changed), and answers it with its status. `name`, `status` and `namespace` in the body are
/// ignored.
///
/// 200; 400 (bad name, JSON or version, missing trigger or action, trigger elsewhere); 401;
/// 403 (another namespace, an action the caller may not invoke); 409 (exists without
/// overwrite, other collection, concurrent update).
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    q: ApiQuery,
    ApiJson(body): ApiJson<RulePut>,
) -> Result<Json<Value>, ApiError> {
    let namespace = checks::own_entity(&caller.0, &ns, &name)?;
    let overwrite = q.bool("overwrite", false)?;
    if let Some(v) = body.version.as_deref().filter(|v| !is_version(v)) {
        return Err(ApiError::BadRequest(messages::invalid_version(v)));
    }
    let existing = load_rule(&state, &namespace, &name).await?;
    if existing.is_some() && !overwrite {
        return Err(ApiError::Conflict(messages::RESOURCE_ALREADY_EXISTS));
    }
    if existing.is_none() && (body.trigger.is_none() || body.action.is_none()) {
        return Err(ApiError::BadRequest(
            messages::RULE_NEEDS_TRIGGER_AND_ACTION.to_owned(),
        ));
    }
    let trigger = match &body.trigger {
        Some(t) => Some(checked_trigger(&state, &namespace, t).await?),
        None => None,
    };
    let action = match &body.action {
        Some(a) => Some(checked_action(&state, &caller, a).await?),
        None => None,
    };
    let now = edgewhisk_entity::time::now_millis();
    let (rule, mode, old) = match existing {
        Some((stored, old)) => {
            let rule = Rule {
                version: body.version.unwrap_or_else(|| bump_version(&old.version)),
                publish: body.publish.unwrap_or(old.publish),
                trigger: trigger.unwrap_or_else(|| old.trigger.clone()),
                action: action.unwrap_or_else(|| old.action.clone()),
                annotations: body.annotations.unwrap_or_else(|| old.annotations.clone()),
                updated: now.max(old.updated.saturating_add(1)),
                namespace: old.namespace.clone(),
                name: old.name.clone(),
            };
            let mode = PutMode::Replace {
                expected_updated: stored,
            };
            (rule, mode, Some(old))
        }
        None => {
            let (Some(trigger), Some(action)) = (trigger, action) else {
                return Err(ApiError::BadRequest(
                    messages::RULE_NEEDS_TRIGGER_AND_ACTION.to_owned(),
                ));
            };
            let rule = Rule {
                namespace: namespace.clone(),
                name: name.clone(),
                version: body.version.unwrap_or_else(|| "0.0.1".to_owned()),
                publish: body.publish.unwrap_or(false),
                trigger,
                action,
                annotations: body.annotations.unwrap_or_default(),
                updated: now,
            };
            (rule, PutMode::Create, None)
        }
    };
    let status = match &old {
        Some(old) => status_of(&state, old).await?,
        None => RuleStatus::Active,
    };
    let doc = EntityDoc {
        collection: Collection::Rules,
        path: namespace,
        name,
        updated: rule.updated,
        doc: rule.to_json(),
    };
    state
        .entities()
        .put(doc, mode)
        .await
        .map_err(put_error(Collection::Rules))?;
    let key = rule.key();
    if let Some(old) = old.filter(|o| o.trigger != rule.trigger) {
        update_trigger(&state, old.trigger.namespace(), &old.trigger.name, |t| {
            t.unlink_rule(&key);
        })
        .await?;
    }
    let linked = update_trigger(&state, rule.trigger.namespace(), &rule.trigger.name, |t| {
        t.link_rule(&key, rule.action.clone(), status);
    })
    .await?;
    let status = if linked { status } else { RuleStatus::Inactive };
    Ok(Json(rule.with_status(status)))
}

/// `POST rules/{name}` with `{"status": "active" | "inactive"}` (other fields ignored):
/// enables or disables the rule in its trigger; the same status again is a no-op.
///
/// 200 (text `OK`); 400 (bad name, JSON or status); 401; 403; 404 (no rule, or its trigger is
/// gone: "Only rules with existing triggers can be activated"); 409 (other collection).
pub async fn set_state(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let namespace = checks::own_entity(&caller.0, &ns, &name)?;
    let requested = body.get("status").and_then(Value::as_str).unwrap_or("");
    let status = RuleStatus::parse(requested)
        .ok_or_else(|| ApiError::BadRequest(messages::rule_status_invalid(requested)))?;
    let (_, rule) = load_rule(&state, &namespace, &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    let trigger_missing = || {
        let mut res = StatusCode::NOT_FOUND.into_response();
        res.extensions_mut().insert(crate::error::ErrorBody(
            messages::RULE_TRIGGER_MISSING.to_owned(),
        ));
        res
    };
    let current = match load_trigger(&state, rule.trigger.namespace(), &rule.trigger.name).await {
        Ok(Some((_, t))) => t.rule_status(&rule.key()),
        Ok(None) | Err(ApiError::Conflict(_)) => return Ok(trigger_missing()),
        Err(e) => return Err(e),
    };
    if current != Some(status) {
        let key = rule.key();
        let found = update_trigger(&state, rule.trigger.namespace(), &rule.trigger.name, |t| {
            t.link_rule(&key, rule.action.clone(), status);
        })
        .await?;
        if !found {
            return Ok(trigger_missing());
        }
    }
    Ok((
        StatusCode::OK,
        [(CONTENT_TYPE, "text/plain; charset=UTF-8")],
        "OK",
    )
        .into_response())
}

/// `DELETE rules/{name}`: unlinks the rule from its trigger, removes it and answers it with
/// status `inactive`.
///
/// 200; 400 (bad name); 401; 403; 404; 409 (name taken by another collection).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let namespace = checks::own_entity(&caller.0, &ns, &name)?;
    let (_, rule) = load_rule(&state, &namespace, &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    let key = rule.key();
    update_trigger(&state, rule.trigger.namespace(), &rule.trigger.name, |t| {
        t.unlink_rule(&key);
    })
    .await?;
    state
        .entities()
        .delete(&namespace, &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(rule.with_status(RuleStatus::Inactive)))
}
