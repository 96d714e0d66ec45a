//! Stored entities as the controller reads and writes them: addressing an action by URL,
//! loading and decoding actions, packages and triggers, and the answers to failed writes.
//!
//! Every route, the entitlement checks, the sequence resolution, the feeds and the activation
//! service load entities through here; none of them imports a route module for it.

use crate::error::ApiError;
use crate::messages;
use crate::state::AppState;
use edgewhisk_entity::names::validate_name;
use edgewhisk_entity::{Action, Package, Trigger};
use edgewhisk_store::{Collection, EntityDoc, PutMode, StoreError};

/// How often a read-modify-write of a trigger document is retried after a concurrent update.
const UPDATE_ATTEMPTS: usize = 8;

/// What `{*rest}` after `actions/` addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRef {
    /// `actions/{pkg}/`: the actions of a package.
    Package(String),
    /// `actions/[{pkg}/]{name}`: one action.
    Action {
        /// The package, if any.
        package: Option<String>,
        /// The action's name.
        name: String,
    },
}

impl ActionRef {
    /// Parses and validates the URL tail; names that break OpenWhisk's rules are a 400, paths
    /// with more segments a 404.
    pub fn parse(rest: &str) -> Result<Self, ApiError> {
        if let Some(pkg) = rest.strip_suffix('/') {
            if pkg.is_empty() || pkg.contains('/') {
                return Err(ApiError::NotFound);
            }
            valid_name(pkg)?;
            return Ok(ActionRef::Package(pkg.to_owned()));
        }
        let segments: Vec<&str> = rest.split('/').collect();
        match segments.as_slice() {
            [name] => {
                valid_name(name)?;
                Ok(ActionRef::Action {
                    package: None,
                    name: (*name).to_owned(),
                })
            }
            [pkg, name] => {
                valid_name(pkg)?;
                valid_name(name)?;
                Ok(ActionRef::Action {
                    package: Some((*pkg).to_owned()),
                    name: (*name).to_owned(),
                })
            }
            _ => Err(ApiError::NotFound),
        }
    }
}

/// 400 with OpenWhisk's message unless `name` is a valid entity name.
pub(crate) fn valid_name(name: &str) -> Result<(), ApiError> {
    validate_name("name", name).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// An action addressed by URL, after entitlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `ns` or `ns/pkg`.
    pub(crate) path: String,
    /// The action's name.
    pub(crate) name: String,
}

/// Decodes a stored entity document; a document that does not decode is logged by the error
/// type and answered 500.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(doc: EntityDoc) -> Result<T, ApiError> {
    serde_json::from_value(doc.doc).map_err(|source| ApiError::CorruptEntity {
        path: doc.path,
        name: doc.name,
        source,
    })
}

/// The entity of `collection` at `path/name` with its stored `updated`; `None` when there is
/// none, 409 "Resource by this name exists but is not in this collection." when the name
/// belongs to another collection.
pub(crate) async fn load_entity<T: serde::de::DeserializeOwned>(
    state: &AppState,
    collection: Collection,
    path: &str,
    name: &str,
) -> Result<Option<(u64, T)>, ApiError> {
    let Some(doc) = state.entities().get_shared(path, name).await? else {
        return Ok(None);
    };
    if doc.collection != collection {
        return Err(ApiError::Conflict(messages::CONFORMANCE));
    }
    // Read from the shared document: the cache's entry is not copied per request.
    let entity = T::deserialize(&doc.doc).map_err(|source| ApiError::CorruptEntity {
        path: doc.path.clone(),
        name: doc.name.clone(),
        source,
    })?;
    Ok(Some((doc.updated, entity)))
}

/// Reads an action; 404 when missing, 409 when the name belongs to another collection.
pub(crate) async fn load_action(state: &AppState, t: &Target) -> Result<(u64, Action), ApiError> {
    load_entity(state, Collection::Actions, &t.path, &t.name)
        .await?
        .ok_or(ApiError::NotFound)
}

/// The package at `namespace/name`, if any, with its `updated`; 409 when the name belongs to
/// another collection, 500 when the stored document does not decode.
pub(crate) async fn load_package(
    state: &AppState,
    namespace: &str,
    name: &str,
) -> Result<Option<(u64, Package)>, ApiError> {
    load_entity(state, Collection::Packages, namespace, name).await
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

/// The API answer to a failed entity write into `collection`: 409 with OpenWhisk's message for
/// an existing entity, a name taken by another collection, or a concurrent update.
pub(crate) fn put_error(collection: Collection) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::Conflict { existing } if existing == collection => {
            ApiError::Conflict(messages::RESOURCE_ALREADY_EXISTS)
        }
        StoreError::Conflict { .. } => ApiError::Conflict(messages::CONFORMANCE),
        StoreError::ConcurrentModification => ApiError::Conflict(messages::CONCURRENT_MODIFICATION),
        other => ApiError::Store(other),
    }
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
            Err(e) => return Err(put_error(Collection::Triggers)(e)),
        }
    }
    Err(ApiError::Conflict(messages::CONCURRENT_MODIFICATION))
}
