//! Entitlement: who may do what to which entity (OpenWhisk `entitlement/Collection.scala`,
//! `entitlement/PackageCollection.scala`, and the package-aware routing of `Actions.scala`).
//!
//! The owner of a namespace has every right on everything under it. Anybody else may only
//! READ a package that is published and not a binding, and READ or ACTIVATE the actions inside
//! such a package; everything else of another namespace is a 403 naming the resource.
//!
//! Actions addressed as `pkg/action` go through their package: the package must exist (404 for
//! the owner, 403 for anybody else), writes through a binding are a 400, and reads and invokes
//! through a binding reach the bound package's action with the parameters of the package and of
//! the binding merged under the action's own (package < binding < action < request).

use crate::entities::{ActionRef, Target, load_package};
use crate::error::ApiError;
use crate::messages;
use crate::state::AppState;
use edgewhisk_entity::{Action, FullyQualifiedEntityName, Identity, Package, Parameters};
use edgewhisk_store::ListScope;

/// What a request wants to do with an entity (OpenWhisk `Privilege`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// GET.
    Read,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// POST (invoke, fire).
    Activate,
}

impl Right {
    fn is_read(self) -> bool {
        matches!(self, Right::Read | Right::Activate)
    }
}

/// The namespace `{ns}` names for `caller` (`_` is the caller's own) and whether the caller
/// owns it.
pub fn namespace_of(caller: &Identity, ns: &str) -> (String, bool) {
    if ns == "_" || ns == caller.namespace {
        (caller.namespace.clone(), true)
    } else {
        (ns.to_owned(), false)
    }
}

/// 403 naming `value` (`ns`, `ns/pkg` or `ns/pkg/action`).
pub fn forbidden(value: &str) -> ApiError {
    ApiError::Forbidden(messages::not_authorized(value))
}

/// What reading an action through a package adds to it: the merged parameters of the package
/// and the binding, and the binding's path when the action was addressed through one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PackageContext {
    /// Package parameters overlaid with binding parameters.
    pub parameters: Parameters,
    /// `ns/binding` when the action was addressed through a binding.
    pub binding: Option<String>,
}

impl PackageContext {
    /// The action with the inherited parameters merged under its own.
    pub fn apply(&self, mut action: Action) -> Action {
        if !self.parameters.is_empty() {
            action.parameters = self.parameters.merge(&action.parameters);
        }
        action
    }
}

/// A package the caller may READ, resolved through a binding: the package addressed, the
/// package whose actions it shows (itself, or the bound one) and the merged parameters.
#[derive(Debug, Clone)]
pub struct ReadablePackage {
    /// The package as addressed (a binding or a plain package).
    pub addressed: Package,
    /// The package whose actions it contains.
    pub actual: Package,
    /// `addressed.updated` as stored.
    pub updated: u64,
}

impl ReadablePackage {
    /// The parameters its actions inherit: the bound package's overlaid with the binding's.
    pub fn parameters(&self) -> Parameters {
        if self.addressed.is_binding() {
            self.actual.parameters.merge(&self.addressed.parameters)
        } else {
            self.addressed.parameters.clone()
        }
    }
}

/// True when `caller` may read `package` as a bind or read target: it owns the namespace, or
/// the package is shared (published, not a binding).
fn may_read(caller: &Identity, package: &Package) -> bool {
    package.namespace == caller.namespace || package.is_shared()
}

/// Loads the package `{ns}/{name}` for reading, following a binding. 403 naming `resource`
/// when the caller may not read it (including a missing package of another namespace), 404
/// when it (or, for a binding, the bound package) does not exist.
pub async fn readable_package(
    state: &AppState,
    caller: &Identity,
    ns: &str,
    name: &str,
    resource: &str,
) -> Result<ReadablePackage, ApiError> {
    let (namespace, owner) = namespace_of(caller, ns);
    let Some((updated, addressed)) = load_package(state, &namespace, name).await? else {
        return Err(if owner {
            ApiError::NotFound
        } else {
            forbidden(resource)
        });
    };
    if !owner && !addressed.is_shared() {
        return Err(forbidden(resource));
    }
    let actual = match &addressed.binding {
        None => addressed.clone(),
        Some(b) => {
            let bound = load_package(state, &b.namespace, &b.name)
                .await?
                .map(|(_, p)| p)
                .ok_or(ApiError::NotFound)?;
            if !may_read(caller, &bound) {
                return Err(forbidden(resource));
            }
            bound
        }
    };
    Ok(ReadablePackage {
        addressed,
        actual,
        updated,
    })
}

/// Resolves `actions/{*rest}` of `{ns}` for `right`: where the action is stored and what its
/// package adds.
///
/// - `name`: only the owner (403 otherwise);
/// - `pkg/name` with PUT/DELETE: only the owner, the package must exist (404) and not be a
///   binding (400 "Operation not permitted on package binding.");
/// - `pkg/name` with READ/ACTIVATE: the package must be readable (403/404); through a binding
///   the action is the bound package's.
pub(crate) async fn action_target(
    state: &AppState,
    caller: &Identity,
    ns: &str,
    rest: &str,
    right: Right,
) -> Result<(Target, PackageContext), ApiError> {
    let ActionRef::Action { package, name } = ActionRef::parse(rest)? else {
        return Err(ApiError::NotFound);
    };
    let (namespace, owner) = namespace_of(caller, ns);
    let Some(pkg) = package else {
        if !owner {
            return Err(forbidden(&format!("{ns}/{name}")));
        }
        let t = Target {
            path: namespace,
            name,
        };
        return Ok((t, PackageContext::default()));
    };
    let resource = format!("{ns}/{pkg}/{name}");
    if !right.is_read() {
        if !owner {
            return Err(forbidden(&resource));
        }
        let (_, package) = load_package(state, &namespace, &pkg)
            .await?
            .ok_or(ApiError::NotFound)?;
        if package.is_binding() {
            return Err(ApiError::BadRequest(
                messages::NOT_ALLOWED_ON_BINDING.to_owned(),
            ));
        }
        let t = Target {
            path: package.path(),
            name,
        };
        return Ok((t, PackageContext::default()));
    }
    let p = readable_package(state, caller, ns, &pkg, &resource).await?;
    let context = PackageContext {
        parameters: p.parameters(),
        binding: p.addressed.binding.as_ref().map(|_| p.addressed.path()),
    };
    let t = Target {
        path: p.actual.path(),
        name,
    };
    Ok((t, context))
}

/// [`action_target`] for an action named by its fully qualified name (a rule's action).
pub(crate) async fn named_action_target(
    state: &AppState,
    caller: &Identity,
    action: &FullyQualifiedEntityName,
    right: Right,
) -> Result<(Target, PackageContext), ApiError> {
    let rest = match action.package() {
        Some(pkg) => format!("{pkg}/{}", action.name),
        None => action.name.clone(),
    };
    action_target(state, caller, action.namespace(), &rest, right).await
}

/// The scope of `GET actions/{pkg}/`: the package's actions, or the bound package's for a
/// binding; 403/404 as for reading the package.
pub async fn package_actions_scope(
    state: &AppState,
    caller: &Identity,
    ns: &str,
    pkg: &str,
) -> Result<ListScope, ApiError> {
    let p = readable_package(state, caller, ns, pkg, &format!("{ns}/{pkg}")).await?;
    Ok(ListScope::Path(p.actual.path()))
}

/// The key an activation of the action stored at `action_path` (`ns` or `ns/pkg`) may carry
/// as `__OW_API_KEY` when `identity` runs it: the caller's own key, and only into code of the
/// caller's own namespace. An action of another namespace (a shared package, directly, through
/// a binding or as a sequence component) gets none, so that no key of one namespace reaches
/// code another namespace wrote; OpenWhisk would pass the caller's key here. An identity read
/// from the store (a web action's owner, a feed's trigger owner) holds only the stored hash of
/// its key, which is no key at all, so it passes none either.
pub fn api_key_for(identity: &Identity, action_path: &str) -> Option<String> {
    let owner = action_path.split('/').next().unwrap_or_default();
    let holds_secret = !edgewhisk_entity::identity::KeyHash::is_hashed(&identity.key);
    (owner == identity.namespace && holds_secret).then(|| identity.auth_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewhisk_entity::identity::guest;
    use serde_json::json;

    #[test]
    fn underscore_and_own_name_are_owned_and_others_are_not() {
        let g = guest();
        assert_eq!(namespace_of(&g, "_"), ("guest".to_owned(), true));
        assert_eq!(namespace_of(&g, "guest"), ("guest".to_owned(), true));
        assert_eq!(
            namespace_of(&g, "whisk.system"),
            ("whisk.system".to_owned(), false)
        );
    }

    #[test]
    fn package_context_merges_inherited_parameters_under_the_actions() {
        let ctx = PackageContext {
            parameters: serde_json::from_value(
                json!([{"key": "a", "value": "pkg"}, {"key": "b", "value": "pkg"}]),
            )
            .unwrap(),
            binding: Some("guest/b".into()),
        };
        let action: Action = serde_json::from_value(json!({
            "namespace": "guest/p", "name": "x", "version": "0.0.1", "publish": false,
            "exec": {"kind": "nodejs:20", "code": "c", "binary": false},
            "parameters": [{"key": "b", "value": "action"}],
            "limits": {"timeout": 1000, "memory": 256, "logs": 10, "concurrency": 1},
            "annotations": [], "updated": 1
        }))
        .unwrap();
        let merged = ctx.apply(action);
        assert_eq!(
            serde_json::to_value(&merged.parameters).unwrap(),
            json!([{"key": "a", "value": "pkg"}, {"key": "b", "value": "action"}])
        );
        assert_eq!(ctx.binding.as_deref(), Some("guest/b"));
    }

    #[test]
    fn only_the_callers_own_code_gets_the_callers_key() {
        let g = guest();
        assert_eq!(api_key_for(&g, "guest"), Some(g.auth_string()));
        assert_eq!(api_key_for(&g, "guest/pkg"), Some(g.auth_string()));
        assert_eq!(api_key_for(&g, "alice/pkg"), None);
        assert_eq!(api_key_for(&g, "guestx/pkg"), None);
        assert_eq!(api_key_for(&g, "whisk.system/utils"), None);
        let stored = Identity {
            key: edgewhisk_entity::identity::KeyHash::stored_form(&g.key),
            ..g
        };
        assert_eq!(api_key_for(&stored, "guest"), None);
    }

    #[test]
    fn only_reads_and_activations_count_as_reading() {
        assert!(Right::Read.is_read() && Right::Activate.is_read());
        assert!(!Right::Put.is_read() && !Right::Delete.is_read());
    }
}
