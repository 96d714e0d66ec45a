//! `/api/v1/namespaces/{ns}/actions[/{pkg}]/{name}`: list, get, create/update, delete and
//! invoke (OpenWhisk `Actions.scala`). Invoke lives in [`invoke`].
//!
//! Actions are stored through [`EntityStore`](edgewhisk_store::EntityStore) as
//! `EntityDoc { collection: Actions, path: "ns" | "ns/pkg", name, updated, doc: <Action JSON> }`.
//! Actions of a package are stored under path `ns/pkg`; `actions/{pkg}/` lists them (through a
//! binding, the bound package's). Who may reach which action is decided in
//! [`crate::entitlement`].

mod invoke;

pub use crate::api::render::ACTIVATION_ID_HEADER;
pub use crate::entities::ActionRef;
pub use invoke::invoke;

use crate::api::checks;
use crate::api::list::list_collection;
use crate::auth::{Caller, resolve_namespace};
use crate::config::ApiConfig;
use crate::entities::{Target, decode, load_action, put_error};
use crate::entitlement::{self, Right};
use crate::error::{ApiError, ApiJson, ApiQuery};
use crate::messages;
use crate::sequences;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use base64::Engine;
use edgewhisk_entity::action::{bump_version, is_version};
use edgewhisk_entity::exec::ActionExec;
use edgewhisk_entity::{
    Action, ActionPut, Exec, ExecPut, FullyQualifiedEntityName, Parameters, RunnerType,
    RuntimeManifest,
};
use edgewhisk_store::{Collection, EntityDoc, ListScope, PutMode};
use serde_json::{Value, json};

/// `GET actions?limit=&skip=&count=`: summaries of all actions of the namespace, packages
/// included, newest first; `{"actions": N}` with `count=true`.
///
/// 200; 400 (bad limit/skip); 401; 403.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(ns): Path<String>,
    q: ApiQuery,
) -> Result<Json<Value>, ApiError> {
    let namespace = resolve_namespace(&caller.0, &ns, None)?;
    list_scope(&state, ListScope::Namespace(namespace), &q).await
}

async fn list_scope(
    state: &AppState,
    scope: ListScope,
    q: &ApiQuery,
) -> Result<Json<Value>, ApiError> {
    list_collection(state, Collection::Actions, &scope, q, |a: Action| {
        a.summary_json()
    })
    .await
}

/// `GET actions/[{pkg}/]{name}?code=` (one action, code unless `code=false`) and
/// `GET actions/{pkg}/` (the package's actions, as the list route).
///
/// 200; 400 (bad name or query); 401; 403; 404; 409 (name taken by another collection).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, rest)): Path<(String, String)>,
    q: ApiQuery,
) -> Result<Json<Value>, ApiError> {
    if let ActionRef::Package(pkg) = ActionRef::parse(&rest)? {
        let scope = entitlement::package_actions_scope(&state, &caller.0, &ns, &pkg).await?;
        return list_scope(&state, scope, &q).await;
    }
    let (t, pkg) = entitlement::action_target(&state, &caller.0, &ns, &rest, Right::Read).await?;
    let code = q.bool("code", true)?;
    let (_, action) = load_action(&state, &t).await?;
    Ok(Json(pkg.apply(action).to_json(code)))
}

/// `PUT actions/[{pkg}/]{name}?overwrite=`: creates, or with `overwrite=true` updates, an
/// action and answers it in full.
///
/// 200; 400 (bad name, JSON, kind, limits, version, archive; "exec undefined"); 401; 403;
/// 409 (exists without overwrite, other collection, concurrent update); 413 (exec,
/// parameters, annotations or request too large).
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, rest)): Path<(String, String)>,
    q: ApiQuery,
    ApiJson(body): ApiJson<ActionPut>,
) -> Result<Json<Value>, ApiError> {
    let (t, _) = entitlement::action_target(&state, &caller.0, &ns, &rest, Right::Put).await?;
    let overwrite = q.bool("overwrite", false)?;
    check_sizes(state.config(), &body)?;
    let now = edgewhisk_entity::time::now_millis();
    let exec = match &body.exec {
        Some(e) if e.is_sequence() => {
            let this = FullyQualifiedEntityName {
                path: t.path.clone(),
                name: t.name.clone(),
            };
            let components = e.components.as_deref().unwrap_or_default();
            let seq =
                sequences::sequence_exec(&state, &caller.0.namespace, &this, components).await?;
            Some(ActionExec::Sequence(seq))
        }
        Some(e) => Some(ActionExec::Code(resolve_exec(state.manifest(), e)?)),
        None => None,
    };
    let existing = state.entities().get(&t.path, &t.name).await?;
    let (action, mode) = match existing {
        Some(doc) if doc.collection != Collection::Actions => {
            return Err(ApiError::Conflict(messages::CONFORMANCE));
        }
        Some(_) if !overwrite => return Err(ApiError::Conflict(messages::RESOURCE_ALREADY_EXISTS)),
        Some(doc) => {
            let mode = PutMode::Replace {
                expected_updated: doc.updated,
            };
            let old: Action = decode(doc)?;
            let updated = now.max(old.updated.saturating_add(1));
            let action = update_action(state.config(), old, body, exec, updated)?;
            (action, mode)
        }
        None => {
            let action = create_action(state.config(), &t, body, exec, now)?;
            (action, PutMode::Create)
        }
    };
    let doc = EntityDoc {
        collection: Collection::Actions,
        path: t.path.clone(),
        name: t.name.clone(),
        updated: action.updated,
        doc: action.to_json(true),
    };
    state
        .entities()
        .put(doc, mode)
        .await
        .map_err(put_error(Collection::Actions))?;
    Ok(Json(action.to_json(true)))
}

/// `DELETE actions/[{pkg}/]{name}`: removes the action and answers it.
///
/// 200; 400 (bad name); 401; 403; 404; 409 (name taken by another collection).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, rest)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (t, _) = entitlement::action_target(&state, &caller.0, &ns, &rest, Right::Delete).await?;
    let (_, action) = load_action(&state, &t).await?;
    state
        .entities()
        .delete(&t.path, &t.name)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(action.to_json(true)))
}

/// Size checks of a PUT body (OpenWhisk `LimitedWhiskEntityPut`): 413 naming the field.
fn check_sizes(config: &ApiConfig, put: &ActionPut) -> Result<(), ApiError> {
    if let Some(exec) = &put.exec {
        let code = exec.code.as_ref().map_or(0, String::len);
        checks::within("exec", checks::len_u64(code), config.max_code_bytes)?;
    }
    checks::parameter_sizes(
        put.parameters.as_ref(),
        put.annotations.as_ref(),
        config.max_parameter_bytes,
    )
}

/// Resolves the kind, computes `binary`, and checks binary code is a safe zip archive (or, for
/// a WebAssembly kind, a module).
fn resolve_exec(manifest: &RuntimeManifest, put: &ExecPut) -> Result<Exec, ApiError> {
    let exec = manifest
        .exec_from_put(put)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let wasm = manifest
        .get(&exec.kind)
        .is_some_and(|r| r.runner == RunnerType::Wasm);
    if exec.binary && !(wasm && is_wasm_module(&exec.code)) {
        check_archive(&exec.code)?;
    }
    Ok(exec)
}

/// Whether base64 `code` starts with a WebAssembly module's magic number (`\0asm`, base64
/// `AGFzbQ`).
fn is_wasm_module(code: &str) -> bool {
    code.trim_start().starts_with("AGFzbQ")
}

/// Binary code must be base64 of a zip archive whose entries stay inside the directory it is
/// unpacked into (no `..`, no absolute paths), because the invoker unpacks it on the host.
fn check_archive(code: &str) -> Result<(), ApiError> {
    let bad = |detail: &str| ApiError::BadRequest(messages::invalid_archive(detail));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(code.trim())
        .map_err(|_| bad("the code is not valid base64"))?;
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| bad(&e.to_string()))?;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|e| bad(&e.to_string()))?;
        if entry.enclosed_name().is_none() {
            return Err(ApiError::BadRequest(messages::unsafe_archive_entry(
                entry.name(),
            )));
        }
    }
    Ok(())
}

fn checked_version(v: Option<String>) -> Result<Option<String>, ApiError> {
    match v {
        Some(v) if !is_version(&v) => Err(ApiError::BadRequest(messages::invalid_version(&v))),
        other => Ok(other),
    }
}

/// A new action from a PUT body: `exec` required, limits from the defaults, annotations
/// amended with `provide-api-key: false` (unless given) and `exec` = the concrete kind.
pub(crate) fn create_action(
    config: &ApiConfig,
    t: &Target,
    put: ActionPut,
    exec: Option<ActionExec>,
    now: u64,
) -> Result<Action, ApiError> {
    let exec = exec.ok_or_else(|| ApiError::BadRequest(messages::EXEC_UNDEFINED.to_owned()))?;
    let bounds = &config.limits;
    let limits = bounds
        .apply(bounds.defaults(), &put.limits.unwrap_or_default())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let version = checked_version(put.version)?.unwrap_or_else(|| "0.0.1".to_owned());
    let mut annotations = put.annotations.unwrap_or_default();
    if annotations.get("provide-api-key").is_none() {
        annotations.set("provide-api-key", Value::Bool(false));
    }
    annotations.set("exec", Value::String(exec.kind().to_owned()));
    let parameters =
        sequence_parameters(&exec).unwrap_or_else(|| put.parameters.unwrap_or_default());
    Ok(Action {
        namespace: t.path.clone(),
        name: t.name.clone(),
        version,
        publish: put.publish.unwrap_or(false),
        exec,
        parameters,
        limits,
        annotations,
        updated: now,
    })
}

/// `old` updated by a PUT body: exec and parameters replaced when given, limits merged field
/// by field, annotations = old minus `delAnnotations` overlaid with the new ones, version
/// given or bumped.
pub(crate) fn update_action(
    config: &ApiConfig,
    old: Action,
    put: ActionPut,
    exec: Option<ActionExec>,
    updated: u64,
) -> Result<Action, ApiError> {
    let exec = exec.unwrap_or(old.exec);
    let limits = config
        .limits
        .apply(old.limits, &put.limits.unwrap_or_default())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let version = checked_version(put.version)?.unwrap_or_else(|| bump_version(&old.version));
    let mut annotations = old.annotations;
    for key in put.del_annotations.iter().flatten() {
        annotations.remove(key);
    }
    if let Some(new) = &put.annotations {
        annotations = annotations.merge(new);
    }
    annotations.set("exec", Value::String(exec.kind().to_owned()));
    let parameters =
        sequence_parameters(&exec).unwrap_or_else(|| put.parameters.unwrap_or(old.parameters));
    Ok(Action {
        namespace: old.namespace,
        name: old.name,
        version,
        publish: put.publish.unwrap_or(old.publish),
        exec,
        parameters,
        limits,
        annotations,
        updated,
    })
}

/// A sequence's parameters: only `_actions` = its components, whatever the PUT sent
/// (OpenWhisk stores them so, and ignores user parameters of sequences).
fn sequence_parameters(exec: &ActionExec) -> Option<Parameters> {
    let components = exec.components()?;
    let mut p = Parameters::default();
    p.set("_actions", json!(components));
    Some(p)
}
