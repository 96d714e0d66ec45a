//! APIs in the entity store: collection `apis`, path = the namespace, name = the base path.
//! Every store (memory, SQLite, PostgreSQL) keeps them like any other entity document, so
//! they survive a restart and a cluster's controllers share them.

use crate::api::apigw::model::StoredApi;
use crate::entities::decode;
use crate::error::ApiError;
use crate::state::AppState;
use edgewhisk_store::{Collection, EntityDoc, ListScope, PutMode, StoreError};

/// More APIs than a namespace has.
const ALL: usize = 10_000;

/// Every API of `namespace`, by base path.
pub(crate) async fn list(state: &AppState, namespace: &str) -> Result<Vec<StoredApi>, ApiError> {
    let docs = state
        .entities()
        .list(
            Collection::Apis,
            &ListScope::Path(namespace.to_owned()),
            0,
            ALL,
        )
        .await?;
    let mut apis = docs
        .into_iter()
        .map(decode::<StoredApi>)
        .collect::<Result<Vec<_>, _>>()?;
    apis.sort_by(|a, b| a.basepath.cmp(&b.basepath));
    Ok(apis)
}

/// The API whose base path, or else whose name, is `basepath_or_name`.
pub(crate) async fn find(
    state: &AppState,
    namespace: &str,
    basepath_or_name: &str,
) -> Result<Option<StoredApi>, ApiError> {
    if basepath_or_name.starts_with('/') {
        return Ok(load(state, namespace, basepath_or_name)
            .await?
            .map(|(_, api)| api));
    }
    Ok(list(state, namespace)
        .await?
        .into_iter()
        .find(|api| api.name == basepath_or_name))
}

/// The API at `basepath` and its `updated` stamp.
async fn load(
    state: &AppState,
    namespace: &str,
    basepath: &str,
) -> Result<Option<(u64, StoredApi)>, ApiError> {
    match state.entities().get(namespace, basepath).await? {
        Some(doc) if doc.collection == Collection::Apis => {
            let updated = doc.updated;
            Ok(Some((updated, decode(doc)?)))
        }
        _ => Ok(None),
    }
}

/// Stores `change(the API at basepath, if any)` and returns it; 409 when another writer
/// changed the API in between.
pub(crate) async fn update(
    state: &AppState,
    namespace: &str,
    basepath: &str,
    change: impl FnOnce(Option<StoredApi>) -> StoredApi,
) -> Result<StoredApi, ApiError> {
    let existing = load(state, namespace, basepath).await?;
    let mode = match &existing {
        Some((updated, _)) => PutMode::Replace {
            expected_updated: *updated,
        },
        None => PutMode::Create,
    };
    let api = change(existing.map(|(_, api)| api));
    let doc = EntityDoc {
        collection: Collection::Apis,
        path: namespace.to_owned(),
        name: basepath.to_owned(),
        updated: edgewhisk_entity::time::now_millis(),
        doc: serde_json::to_value(&api).map_err(StoreError::from)?,
    };
    match state.entities().put(doc, mode).await {
        Ok(()) => Ok(api),
        Err(StoreError::Conflict { .. } | StoreError::ConcurrentModification) => {
            Err(ApiError::Conflict(crate::messages::CONCURRENT_MODIFICATION))
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes the API at `basepath`.
pub(crate) async fn delete(
    state: &AppState,
    namespace: &str,
    basepath: &str,
) -> Result<(), ApiError> {
    state.entities().delete(namespace, basepath).await?;
    Ok(())
}
