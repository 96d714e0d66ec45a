//! Feed documents in the entity store: one per feed-backed trigger, under [`FEEDS_PATH`].

use super::alarms::Progress;
use super::kind::FeedKind;
use crate::state::AppState;
use edgewhisk_entity::Identity;
use edgewhisk_entity::identity::verify_stored;
use edgewhisk_entity::time::now_millis;
use edgewhisk_store::{Collection, EntityDoc, ListScope, PutMode, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where feed documents are stored: one per trigger, named `ns:trigger`.
pub const FEEDS_PATH: &str = "whisk.system/.feeds";

/// The stored state of one feed-backed trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FeedDoc {
    pub(super) feed: FeedKind,
    pub(super) namespace: String,
    pub(super) trigger: String,
    /// The UUID of the trigger owner's key, by which a fire finds its identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) uuid: Option<String>,
    /// The whole `uuid:key` of a document written by an earlier version: read and migrated
    /// to [`FeedDoc::uuid`], never written.
    #[serde(default, skip_serializing)]
    pub(super) auth_key: Option<String>,
    pub(super) params: Map<String, Value>,
    #[serde(default)]
    pub(super) paused: bool,
    pub(super) created: u64,
    #[serde(default)]
    pub(super) last_fired: Option<u64>,
    #[serde(default)]
    pub(super) fired: u64,
}

impl FeedDoc {
    pub(super) fn key(&self) -> String {
        doc_name(&self.namespace, &self.trigger)
    }

    pub(super) fn progress(&self) -> Progress {
        Progress {
            created: self.created,
            last_fired: self.last_fired,
            fired: self.fired,
        }
    }
}

pub(super) fn doc_name(namespace: &str, trigger: &str) -> String {
    format!("{namespace}:{trigger}")
}

/// The identity of `auth_key` (`uuid:secret`), verified against the store.
pub(super) async fn verify_key(
    state: &AppState,
    auth_key: &str,
) -> Result<Option<Identity>, StoreError> {
    let Some((uuid, secret)) = auth_key.split_once(':') else {
        return Ok(None);
    };
    Ok(state
        .entities()
        .identity(uuid)
        .await?
        .and_then(|stored| verify_stored(&stored, secret)))
}

pub(super) async fn load_doc(
    state: &AppState,
    name: &str,
) -> Result<Option<(u64, FeedDoc)>, StoreError> {
    let Some(doc) = state.entities().get(FEEDS_PATH, name).await? else {
        return Ok(None);
    };
    match serde_json::from_value(doc.doc) {
        Ok(feed) => Ok(Some((doc.updated, feed))),
        Err(e) => {
            tracing::warn!(feed = name, error = %e, "unreadable feed document");
            Ok(None)
        }
    }
}

pub(super) async fn put_doc(
    state: &AppState,
    feed: &FeedDoc,
    mode: PutMode,
) -> Result<(), StoreError> {
    let updated = match mode {
        PutMode::Replace { expected_updated } => now_millis().max(expected_updated + 1),
        _ => now_millis(),
    };
    let mut doc = serde_json::to_value(feed)?;
    // A document not migrated yet keeps its UUID (not a secret) when its progress is saved:
    // `auth_key` is never written, and without either the next fire would find no owner.
    if let (None, Some((uuid, _)), Some(m)) = (
        &feed.uuid,
        feed.auth_key.as_deref().and_then(|k| k.split_once(':')),
        doc.as_object_mut(),
    ) {
        m.insert("uuid".to_owned(), Value::String(uuid.to_owned()));
    }
    let doc = EntityDoc {
        collection: Collection::Triggers,
        path: FEEDS_PATH.to_owned(),
        name: feed.key(),
        updated,
        doc,
    };
    state.entities().put(doc, mode).await
}

/// The identity a feed fires as: the stored identity of its key's UUID (or, for a document
/// not migrated yet, of its verified `uuid:key`), when it still belongs to the trigger's
/// namespace. The identity carries the stored form of its key, never a secret.
pub(super) async fn owner(
    state: &AppState,
    feed: &FeedDoc,
) -> Result<Option<Identity>, StoreError> {
    let identity = match (&feed.uuid, &feed.auth_key) {
        (Some(uuid), _) => state.entities().identity(uuid).await?,
        (None, Some(auth_key)) => verify_key(state, auth_key).await?,
        (None, None) => None,
    };
    // Never a secret, whichever way it was found: the fired actions get no key.
    Ok(identity
        .filter(|i| i.namespace == feed.namespace)
        .map(|i| Identity {
            key: edgewhisk_entity::identity::KeyHash::stored_form(&i.key),
            ..i
        }))
}

/// Every stored feed document.
pub(super) async fn feed_docs(state: &AppState) -> Result<Vec<EntityDoc>, StoreError> {
    let scope = ListScope::Path(FEEDS_PATH.to_owned());
    state
        .entities()
        .list(Collection::Triggers, &scope, 0, 0)
        .await
}

/// Rewrites the feed documents of earlier versions, which held the whole `uuid:key`, to hold
/// the UUID alone. A key that no longer verifies is left for the next fire to find gone.
pub(super) async fn migrate_legacy(state: &AppState) {
    let docs = match feed_docs(state).await {
        Ok(docs) => docs,
        Err(e) => {
            tracing::error!(error = %e, "loading feeds for migration failed");
            return;
        }
    };
    for doc in docs {
        let Ok(mut feed) = serde_json::from_value::<FeedDoc>(doc.doc) else {
            continue;
        };
        let Some(auth_key) = feed.auth_key.take() else {
            continue;
        };
        match verify_key(state, &auth_key).await {
            Ok(Some(identity)) => feed.uuid = Some(identity.uuid),
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(feed = %doc.name, error = %e, "feed key lookup failed");
                continue;
            }
        }
        let mode = PutMode::Replace {
            expected_updated: doc.updated,
        };
        match put_doc(state, &feed, mode).await {
            Ok(()) => tracing::info!(feed = %doc.name, "feed document no longer holds its key"),
            Err(e) => tracing::error!(feed = %doc.name, error = %e, "migrating a feed failed"),
        }
    }
}
