//! An in-memory store: the test fake for every crate, and a working store for throwaway runs.
//!
//! All state sits behind one `parking_lot::Mutex`; every operation holds it only for a map
//! lookup or a scan, never across an `.await`. Nothing survives the process.

use crate::matching::{activation_matches, activation_order, entity_order, page, scope_matches};
use crate::{
    ActivationFilter, ActivationStore, Collection, EntityDoc, EntityStore, ListScope, PutMode,
    StoreError,
};
use async_trait::async_trait;
use edgewhisk_entity::identity::{KeyHash, NamespaceLimits};
use edgewhisk_entity::{Activation, ActivationId, Identity};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};

/// Entities, identities and activations in process memory. Safe to share between tasks
/// (`Arc<MemoryStore>`); each call is atomic with respect to the others.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Keyed by `(path, name)`: names are unique per path across collections.
    entities: BTreeMap<(String, String), EntityDoc>,
    /// Keyed by key UUID.
    identities: HashMap<String, Identity>,
    /// Throttle overrides by namespace.
    limits: HashMap<String, NamespaceLimits>,
    activations: HashMap<ActivationId, Activation>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Checks `mode` against the document currently stored at the same `(path, name)`; shared by
/// the memory and SQLite stores.
pub(crate) fn check_put(
    existing: Option<(Collection, u64)>,
    doc: &EntityDoc,
    mode: PutMode,
) -> Result<(), StoreError> {
    match (mode, existing) {
        (PutMode::Create, None) => Ok(()),
        (PutMode::Create, Some((collection, _))) => Err(StoreError::Conflict {
            existing: collection,
        }),
        (PutMode::Replace { .. }, None) => Err(StoreError::ConcurrentModification),
        (PutMode::Replace { .. }, Some((collection, _))) if collection != doc.collection => {
            Err(StoreError::Conflict {
                existing: collection,
            })
        }
        (PutMode::Replace { expected_updated }, Some((_, updated))) => {
            if updated == expected_updated {
                Ok(())
            } else {
                Err(StoreError::ConcurrentModification)
            }
        }
    }
}

#[async_trait]
impl EntityStore for MemoryStore {
    async fn get(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        let inner = self.inner.lock();
        Ok(inner
            .entities
            .get(&(path.to_owned(), name.to_owned()))
            .cloned())
    }

    async fn put(&self, doc: EntityDoc, mode: PutMode) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        let key = (doc.path.clone(), doc.name.clone());
        let existing = inner.entities.get(&key).map(|d| (d.collection, d.updated));
        check_put(existing, &doc, mode)?;
        inner.entities.insert(key, doc);
        Ok(())
    }

    async fn delete(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        let mut inner = self.inner.lock();
        Ok(inner.entities.remove(&(path.to_owned(), name.to_owned())))
    }

    async fn list(
        &self,
        collection: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<EntityDoc>, StoreError> {
        // Sorted by reference and copied only for the page.
        let inner = self.inner.lock();
        let mut docs: Vec<&EntityDoc> = inner
            .entities
            .values()
            .filter(|d| d.collection == collection && scope_matches(scope, &d.path))
            .collect();
        docs.sort_by(|a, b| entity_order(a, b));
        Ok(page(docs, skip, limit).into_iter().cloned().collect())
    }

    async fn count(&self, collection: Collection, scope: &ListScope) -> Result<usize, StoreError> {
        let inner = self.inner.lock();
        Ok(inner
            .entities
            .values()
            .filter(|d| d.collection == collection && scope_matches(scope, &d.path))
            .count())
    }

    async fn identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        Ok(self.inner.lock().identities.get(uuid).cloned())
    }

    async fn put_identity(&self, identity: Identity) -> Result<(), StoreError> {
        let identity = Identity {
            key: KeyHash::stored_form(&identity.key),
            ..identity
        };
        self.inner
            .lock()
            .identities
            .insert(identity.uuid.clone(), identity);
        Ok(())
    }

    async fn delete_identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        Ok(self.inner.lock().identities.remove(uuid))
    }

    async fn identities_in(&self, namespace: &str) -> Result<Vec<Identity>, StoreError> {
        let mut out: Vec<Identity> = self
            .inner
            .lock()
            .identities
            .values()
            .filter(|i| i.namespace == namespace)
            .cloned()
            .collect();
        out.sort_by(|a, b| a.subject.cmp(&b.subject).then_with(|| a.uuid.cmp(&b.uuid)));
        Ok(out)
    }

    async fn namespace_limits(
        &self,
        namespace: &str,
    ) -> Result<Option<NamespaceLimits>, StoreError> {
        Ok(self.inner.lock().limits.get(namespace).copied())
    }

    async fn put_namespace_limits(
        &self,
        namespace: &str,
        limits: Option<NamespaceLimits>,
    ) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        match limits {
            Some(l) => inner.limits.insert(namespace.to_owned(), l),
            None => inner.limits.remove(namespace),
        };
        Ok(())
    }

    async fn identities_of(&self, subject: &str) -> Result<Vec<Identity>, StoreError> {
        let mut out: Vec<Identity> = self
            .inner
            .lock()
            .identities
            .values()
            .filter(|i| i.subject == subject)
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            a.namespace
                .cmp(&b.namespace)
                .then_with(|| a.uuid.cmp(&b.uuid))
        });
        Ok(out)
    }
}

#[async_trait]
impl ActivationStore for MemoryStore {
    async fn store(&self, activation: Activation) -> Result<(), StoreError> {
        self.inner
            .lock()
            .activations
            .insert(activation.activation_id.clone(), activation);
        Ok(())
    }

    async fn get(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError> {
        let inner = self.inner.lock();
        Ok(inner
            .activations
            .get(id)
            .filter(|a| a.namespace == namespace)
            .cloned())
    }

    async fn list(&self, filter: &ActivationFilter) -> Result<Vec<Activation>, StoreError> {
        // Sorted by reference and copied only for the page.
        let inner = self.inner.lock();
        let mut out: Vec<&Activation> = inner
            .activations
            .values()
            .filter(|a| activation_matches(filter, a))
            .collect();
        out.sort_by(|a, b| activation_order(a, b));
        Ok(page(out, filter.skip, filter.limit)
            .into_iter()
            .cloned()
            .collect())
    }

    async fn count(&self, filter: &ActivationFilter) -> Result<usize, StoreError> {
        let inner = self.inner.lock();
        Ok(inner
            .activations
            .values()
            .filter(|a| activation_matches(filter, a))
            .count())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Nothing is queued: every record is in the map when `store` returns.
        Ok(())
    }
}
