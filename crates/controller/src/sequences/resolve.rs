//! Names of sequence components and conductor steps, and their resolution to stored actions
//! (OpenWhisk `WhiskActionMetaData.resolveActionAndMergeParameters`).

use crate::entities::{decode, load_package};
use crate::entitlement::PackageContext;
use crate::state::AppState;
use edgewhisk_entity::Package;
use edgewhisk_entity::names::validate_name;
use edgewhisk_entity::{Action, FullyQualifiedEntityName};
use edgewhisk_store::Collection;

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
    let addressed = package_of(state, fqn.namespace(), package).await;
    let bound = addressed.as_ref().and_then(|p| p.binding.clone());
    let (path, params) = match bound {
        Some(bound) => {
            let base = package_of(state, &bound.namespace, &bound.name).await;
            let binding_params = addressed.map(|p| p.parameters).unwrap_or_default();
            (
                format!("{}/{}", bound.namespace, bound.name),
                base.map(|p| p.parameters)
                    .unwrap_or_default()
                    .merge(&binding_params),
            )
        }
        None => (
            fqn.path.clone(),
            addressed.map(|p| p.parameters).unwrap_or_default(),
        ),
    };
    let action = load_action(state, &path, &fqn.name).await?;
    Some(
        PackageContext {
            parameters: params,
            binding: None,
        }
        .apply(action),
    )
}

/// Whether `caller_ns` may run `fqn`: its own namespace, or a shared (published, not a
/// binding) package of another, as `entitlement` decides for direct invocations. Through a
/// binding, the bound package must be the caller's or shared too. Checked when a sequence is
/// created and again each time one of its components runs, so that unsharing a package takes
/// effect on existing sequences.
pub(crate) async fn may_use(
    state: &AppState,
    caller_ns: &str,
    fqn: &FullyQualifiedEntityName,
) -> bool {
    let owner = fqn.namespace() == caller_ns;
    let Some(package) = fqn.package() else {
        return owner;
    };
    let Some(addressed) = package_of(state, fqn.namespace(), package).await else {
        // A missing package of the caller's own is a missing component, not a refusal.
        return owner;
    };
    if !owner && !addressed.is_shared() {
        return false;
    }
    match &addressed.binding {
        None => true,
        // A binding that leads nowhere leaves the component missing, as above.
        Some(bound) => package_of(state, &bound.namespace, &bound.name)
            .await
            .is_none_or(|p| p.namespace == caller_ns || p.is_shared()),
    }
}

/// The package `namespace/name`; `None` when it is missing or unreadable (logged).
async fn package_of(state: &AppState, namespace: &str, name: &str) -> Option<Package> {
    match load_package(state, namespace, name).await {
        Ok(found) => found.map(|(_, p)| p),
        Err(e) => {
            tracing::warn!(namespace, name, error = ?e, "reading a sequence component's package failed");
            None
        }
    }
}

async fn load_action(state: &AppState, path: &str, name: &str) -> Option<Action> {
    match state.entities().get(path, name).await {
        Ok(Some(doc)) if doc.collection == Collection::Actions => decode(doc).ok(),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(path, name, error = %e, "reading a sequence component failed");
            None
        }
    }
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
