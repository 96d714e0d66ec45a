//! `/api/v1/namespaces/{ns}/packages[/{name}]`: list, get, create/update (packages and
//! bindings) and delete (OpenWhisk `Packages.scala`).
//!
//! Packages are stored through [`EntityStore`](edgewhisk_store::EntityStore) as
//! `EntityDoc { collection: Packages, path: "ns", name, updated, doc: <Package JSON> }`; their
//! actions live under path `ns/name`. Who may read what is decided in
//! [`entitlement`](crate::entitlement).

use crate::api::checks;
use crate::api::list::ListParams;
use crate::auth::Caller;
use crate::config::ApiConfig;
use crate::entities::{decode, load_package, put_error, valid_name};
use crate::entitlement::{forbidden, namespace_of, readable_package};
use crate::error::{ApiError, ApiJson, ApiQuery, ErrorBody};
use crate::messages;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edgewhisk_entity::action::{bump_version, is_version};
use edgewhisk_entity::{Binding, Identity, Package, PackagePut, Parameters};
use edgewhisk_store::{Collection, EntityDoc, ListScope, PutMode};
use serde_json::{Value, json};

/// The annotation key of a binding's target, always set by the server.
const BINDING_KEY: &str = "binding";

/// `GET packages?limit=&skip=&count=` (also with a trailing slash): the caller's own packages
/// and bindings, or, for another namespace, only its published plain packages; newest first;
/// `{"packages": N}` with `count=true`. `public` is accepted and ignored.
///
/// 200; 400 (bad limit/skip); 401.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(ns): Path<String>,
    q: ApiQuery,
) -> Result<Json<Value>, ApiError> {
    let page = ListParams::parse(&q, "packages", state.config())?;
    let (namespace, owner) = namespace_of(&caller.0, &ns);
    let store = state.entities();
    let scope = ListScope::Path(namespace);
    if owner && page.count {
        let n = store.count(Collection::Packages, &scope).await?;
        return Ok(Json(json!({ "packages": n })));
    }
    let (skip, limit) = if owner {
        (page.skip, page.limit)
    } else {
        (0, 0)
    };
    let docs = store
        .list(Collection::Packages, &scope, skip, limit)
        .await?;
    let mut packages = Vec::with_capacity(docs.len());
    for doc in docs {
        let p: Package = decode(doc)?;
        if owner || p.is_shared() {
            packages.push(p);
        }
    }
    if !owner {
        if page.count {
            return Ok(Json(json!({ "packages": packages.len() })));
        }
        packages = packages
            .into_iter()
            .skip(page.skip)
            .take(page.limit)
            .collect();
    }
    Ok(Json(Value::Array(
        packages.iter().map(Package::summary_json).collect(),
    )))
}

/// `GET packages/{name}`: the package with `actions` (`[{name, version, annotations}]`) and
/// `feeds` (actions annotated `feed`). A binding shows the bound package's parameters merged
/// under its own and the bound package's actions.
///
/// 200; 400 (bad name); 401; 403 (not readable); 404; 409 (name taken by another collection).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    valid_name(&name)?;
    let p = readable_package(&state, &caller.0, &ns, &name, &format!("{ns}/{name}")).await?;
    let mut shown = p.addressed.clone();
    shown.parameters = p.parameters();
    let docs = state
        .entities()
        .list_summaries(Collection::Actions, &ListScope::Path(p.actual.path()), 0, 0)
        .await?;
    let (mut actions, mut feeds) = (Vec::new(), Vec::new());
    for doc in docs {
        let annotations = doc.doc.get("annotations").cloned().unwrap_or(json!([]));
        let is_feed = serde_json::from_value::<Parameters>(annotations.clone())
            .is_ok_and(|a| a.get("feed").is_some());
        let entry = json!({
            "name": doc.name,
            "version": doc.doc.get("version").cloned().unwrap_or(json!("0.0.1")),
            "annotations": annotations,
        });
        if is_feed {
            feeds.push(entry);
        } else {
            actions.push(entry);
        }
    }
    let mut out = shown.to_json();
    out["actions"] = Value::Array(actions);
    out["feeds"] = Value::Array(feeds);
    Ok(Json(out))
}

/// `PUT packages/{name}?overwrite=`: creates, or with `overwrite=true` updates, a package or a
/// binding (`binding: {namespace, name}`) and answers it.
///
/// 200; 400 (bad name, JSON or version, `default`, missing bound package, binding to a
/// binding); 401; 403 (another namespace, unreadable bound package); 409 (exists without
/// overwrite, package turned into a binding, other collection, concurrent update); 413.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    q: ApiQuery,
    ApiJson(body): ApiJson<PackagePut>,
) -> Result<Json<Value>, ApiError> {
    let (namespace, owner) = namespace_of(&caller.0, &ns);
    if !owner {
        return Err(forbidden(&format!("{ns}/{name}")));
    }
    valid_name(&name)?;
    if name == "default" {
        return Err(ApiError::BadRequest(messages::package_name_reserved(&name)));
    }
    let overwrite = q.bool("overwrite", false)?;
    check_sizes(state.config(), &body)?;
    if let Some(v) = body.version.as_deref().filter(|v| !is_version(v)) {
        return Err(ApiError::BadRequest(messages::invalid_version(v)));
    }
    let binding = match &body.binding {
        Some(b) => Some(check_binding(&state, &caller.0, &b.resolve(&namespace)).await?),
        None => None,
    };
    let now = edgewhisk_entity::time::now_millis();
    let existing = state.entities().get(&namespace, &name).await?;
    let (package, mode) = match existing {
        Some(doc) if doc.collection != Collection::Packages => {
            return Err(ApiError::Conflict(messages::CONFORMANCE));
        }
        Some(_) if !overwrite => return Err(ApiError::Conflict(messages::RESOURCE_ALREADY_EXISTS)),
        Some(doc) => {
            let mode = PutMode::Replace {
                expected_updated: doc.updated,
            };
            let old: Package = decode(doc)?;
            if !old.is_binding() && binding.is_some() {
                return Err(ApiError::Conflict(messages::PACKAGE_CANNOT_BECOME_BINDING));
            }
            let updated = now.max(old.updated.saturating_add(1));
            (update_package(old, body, binding, updated), mode)
        }
        None => (
            create_package(&namespace, &name, body, binding, now),
            PutMode::Create,
        ),
    };
    let doc = EntityDoc {
        collection: Collection::Packages,
        path: namespace,
        name,
        updated: package.updated,
        doc: package.to_json(),
    };
    state
        .entities()
        .put(doc, mode)
        .await
        .map_err(put_error(Collection::Packages))?;
    Ok(Json(package.to_json()))
}

/// `DELETE packages/{name}?force=`: removes a binding, or a package that is empty (or, with
/// `force=true`, its actions first), and answers it.
///
/// 200; 400 (bad name or query); 401; 403; 404; 409 (not empty without force, other
/// collection).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
    q: ApiQuery,
) -> Result<Response, ApiError> {
    let (namespace, owner) = namespace_of(&caller.0, &ns);
    if !owner {
        return Err(forbidden(&format!("{ns}/{name}")));
    }
    valid_name(&name)?;
    let force = q.bool("force", false)?;
    let (_, package) = load_package(&state, &namespace, &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    let store = state.entities();
    if !package.is_binding() {
        let scope = ListScope::Path(package.path());
        let contained = store.count(Collection::Actions, &scope).await?;
        if contained > 0 && !force {
            let mut res = StatusCode::CONFLICT.into_response();
            res.extensions_mut()
                .insert(ErrorBody(messages::package_not_empty(contained)));
            return Ok(res);
        }
        for doc in store
            .list_summaries(Collection::Actions, &scope, 0, 0)
            .await?
        {
            store.delete(&doc.path, &doc.name).await?;
        }
    }
    store
        .delete(&namespace, &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(package.to_json()).into_response())
}

/// Checks the target of a binding: another namespace's package must be shared (403 naming
/// it, also when it is missing, since the caller may not learn that); an own package must
/// exist (400) and not be a binding itself (400).
async fn check_binding(
    state: &AppState,
    caller: &Identity,
    b: &Binding,
) -> Result<Binding, ApiError> {
    let target = match load_package(state, &b.namespace, &b.name).await {
        Ok(found) => found.map(|(_, p)| p),
        // A name of another collection is no package to bind to.
        Err(ApiError::Conflict(_)) => None,
        Err(e) => return Err(e),
    };
    if b.namespace != caller.namespace && !target.as_ref().is_some_and(Package::is_shared) {
        return Err(forbidden(&b.path()));
    }
    match target {
        None => Err(ApiError::BadRequest(
            messages::BINDING_DOES_NOT_EXIST.to_owned(),
        )),
        Some(p) if p.is_binding() => Err(ApiError::BadRequest(
            messages::BINDING_CANNOT_REFERENCE_BINDING.to_owned(),
        )),
        Some(_) => Ok(b.clone()),
    }
}

/// The annotations of a package: the given ones without a client-sent `binding`, plus the
/// server's `binding` annotation for a binding.
fn with_binding_annotation(mut annotations: Parameters, binding: Option<&Binding>) -> Parameters {
    annotations.remove(BINDING_KEY);
    if let Some(b) = binding {
        annotations.set(BINDING_KEY, Package::binding_annotation(b));
    }
    annotations
}

fn create_package(
    namespace: &str,
    name: &str,
    put: PackagePut,
    binding: Option<Binding>,
    now: u64,
) -> Package {
    Package {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        version: put.version.unwrap_or_else(|| "0.0.1".to_owned()),
        publish: put.publish.unwrap_or(false),
        parameters: put.parameters.unwrap_or_default(),
        annotations: with_binding_annotation(put.annotations.unwrap_or_default(), binding.as_ref()),
        binding,
        updated: now,
    }
}

/// `old` updated by a PUT body: parameters, annotations and publish replaced when given, the
/// binding replaced when given (only bindings get here with one), version given or bumped.
fn update_package(
    old: Package,
    put: PackagePut,
    binding: Option<Binding>,
    updated: u64,
) -> Package {
    let binding = binding.or(old.binding);
    let annotations = put.annotations.unwrap_or(old.annotations);
    Package {
        version: put.version.unwrap_or_else(|| bump_version(&old.version)),
        publish: put.publish.unwrap_or(old.publish),
        parameters: put.parameters.unwrap_or(old.parameters),
        annotations: with_binding_annotation(annotations, binding.as_ref()),
        binding,
        updated,
        namespace: old.namespace,
        name: old.name,
    }
}

/// 413 for parameters or annotations over the parameter size limit.
fn check_sizes(config: &ApiConfig, put: &PackagePut) -> Result<(), ApiError> {
    checks::parameter_sizes(
        put.parameters.as_ref(),
        put.annotations.as_ref(),
        config.max_parameter_bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(v: Value) -> PackagePut {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn new_binding_gets_the_binding_annotation_and_client_copies_are_dropped() {
        let b = Binding {
            namespace: "whisk.system".into(),
            name: "utils".into(),
        };
        let p = create_package(
            "guest",
            "mine",
            put(
                json!({"annotations": [{"key": "binding", "value": "forged"}, {"key": "x", "value": 1}]}),
            ),
            Some(b),
            5,
        );
        assert_eq!(
            serde_json::to_value(&p.annotations).unwrap(),
            json!([{"key": "x", "value": 1},
                   {"key": "binding", "value": {"namespace": "whisk.system", "name": "utils"}}])
        );
        assert_eq!((p.version.as_str(), p.publish), ("0.0.1", false));
    }

    #[test]
    fn update_replaces_given_fields_keeps_the_rest_and_bumps_the_version() {
        let old = create_package(
            "guest",
            "p",
            put(json!({"parameters": [{"key": "a", "value": 1}], "publish": true})),
            None,
            5,
        );
        let p = update_package(
            old.clone(),
            put(json!({"annotations": [{"key": "d", "value": "x"}]})),
            None,
            6,
        );
        assert_eq!(p.version, "0.0.2");
        assert_eq!(p.parameters, old.parameters);
        assert!(p.publish);
        assert_eq!(p.annotations.get("d"), Some(&json!("x")));
        let p = update_package(
            p,
            put(json!({"version": "2.0.0", "parameters": []})),
            None,
            7,
        );
        assert_eq!(p.version, "2.0.0");
        assert!(p.parameters.is_empty());
    }

    #[test]
    fn parameters_over_the_limit_are_refused_with_the_field_name() {
        let config = ApiConfig {
            max_parameter_bytes: 10,
            ..ApiConfig::default()
        };
        let big = put(json!({"parameters": [{"key": "k", "value": "0123456789"}]}));
        assert_eq!(
            check_sizes(&config, &big).unwrap_err().message(),
            "parameters larger than allowed: 13 > 10 bytes."
        );
        assert!(check_sizes(&config, &put(json!({}))).is_ok());
    }
}
