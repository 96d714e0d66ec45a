//! Names of sequence components and conductor steps, and their resolution to stored actions
//! (OpenWhisk `WhiskActionMetaData.resolveActionAndMergeParameters`).

use crate::AppState;
use edgewhisk_entity::names::validate_name;
use edgewhisk_entity::{Action, FullyQualifiedEntityName, Parameters};
use edgewhisk_store::{Collection, EntityDoc};
use serde_json::Value;

/// Parses a component name for `caller_ns`: `/ns/name`, `/ns/pkg/name`, `name`, `pkg/name`
/// or `ns/pkg/name`; the namespace `_` is the caller's. `None` when it is not a valid name.
pub(crate) fn parse_component(name: &str, caller_ns: &str) -> Option<FullyQualifiedEntityName> {
    let (qualified, rest) = match name.strip_prefix('/') {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| validate_name("name", s).is_err()) {
        return None;
    }
    let ns = |s: &str| {
        if s == "_" {
            caller_ns.to_owned()
        } else {
            s.to_owned()
        }
    };
    let (namespace, package, name) = match (qualified, segments.as_slice()) {
        (true, [n, a]) => (ns(n), None, *a),
        (true, [n, p, a]) | (false, [n, p, a]) => (ns(n), Some(*p), *a),
        (false, [a]) => (caller_ns.to_owned(), None, *a),
        (false, [p, a]) => (caller_ns.to_owned(), Some(*p), *a),
        _ => return None,
    };
    Some(FullyQualifiedEntityName::new(&namespace, package, name))
}

/// The action `fqn` names, with the parameters of its package (and of the binding it is
/// addressed through, one binding deep) merged under its own; `None` when it does not exist
/// or does not decode.
pub(crate) async fn resolve_action(
    state: &AppState,
    fqn: &FullyQualifiedEntityName,
) -> Option<Action> {
    let Some(package) = fqn.package() else {
        return load_action(state, &fqn.path, &fqn.name).await;
    };
    let pkg = get(state, Collection::Packages, fqn.namespace(), package).await;
    let (path, mut params) = match pkg.as_ref().and_then(|d| binding_of(&d.doc)) {
        Some(bound) => {
            let base = get(state, Collection::Packages, &bound.0, &bound.1).await;
            let base_params = base.map(|d| parameters(&d.doc)).unwrap_or_default();
            let binding_params = pkg.as_ref().map(|d| parameters(&d.doc)).unwrap_or_default();
            (
                format!("{}/{}", bound.0, bound.1),
                base_params.merge(&binding_params),
            )
        }
        None => (
            fqn.path.clone(),
            pkg.map(|d| parameters(&d.doc)).unwrap_or_default(),
        ),
    };
    let mut action = load_action(state, &path, &fqn.name).await?;
    if !params.is_empty() {
        params = params.merge(&action.parameters);
        action.parameters = params;
    }
    Some(action)
}

/// Whether `caller_ns` may run `fqn`: its own namespace, or a published package of another.
pub(crate) async fn may_use(
    state: &AppState,
    caller_ns: &str,
    fqn: &FullyQualifiedEntityName,
) -> bool {
    if fqn.namespace() == caller_ns {
        return true;
    }
    let Some(package) = fqn.package() else {
        return false;
    };
    get(state, Collection::Packages, fqn.namespace(), package)
        .await
        .is_some_and(|d| d.doc.get("publish").and_then(Value::as_bool) == Some(true))
}

async fn get(
    state: &AppState,
    collection: Collection,
    path: &str,
    name: &str,
) -> Option<EntityDoc> {
    match state.entities().get(path, name).await {
        Ok(Some(doc)) if doc.collection == collection => Some(doc),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(path, name, error = %e, "reading a sequence component failed");
            None
        }
    }
}

async fn load_action(state: &AppState, path: &str, name: &str) -> Option<Action> {
    let doc = get(state, Collection::Actions, path, name).await?;
    serde_json::from_value(doc.doc).ok()
}

/// `(namespace, name)` of a package document's binding, if it is one.
fn binding_of(doc: &Value) -> Option<(String, String)> {
    let b = doc.get("binding")?;
    let ns = b.get("namespace")?.as_str()?;
    let name = b.get("name")?.as_str()?;
    Some((ns.to_owned(), name.to_owned()))
}

fn parameters(doc: &Value) -> Parameters {
    doc.get("parameters")
        .and_then(|p| serde_json::from_value(p.clone()).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_names_resolve_like_openwhisk() {
        let p = |s: &str| parse_component(s, "guest").map(|f| f.to_string());
        assert_eq!(p("/guest/a").as_deref(), Some("/guest/a"));
        assert_eq!(p("/_/a").as_deref(), Some("/guest/a"));
        assert_eq!(p("/_/pkg/a").as_deref(), Some("/guest/pkg/a"));
        assert_eq!(p("a").as_deref(), Some("/guest/a"));
        assert_eq!(p("pkg/a").as_deref(), Some("/guest/pkg/a"));
        assert_eq!(p("other/pkg/a").as_deref(), Some("/other/pkg/a"));
        assert_eq!(
            p("/whisk.system/utils/echo").as_deref(),
            Some("/whisk.system/utils/echo")
        );
        for bad in ["", "/", "/guest", "/a/b/c/d", "/guest/"] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
