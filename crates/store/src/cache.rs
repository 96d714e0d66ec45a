//! `CachingEntityStore`: entities and keys served from memory, invalidated on write.
//!
//! The controller looks up an identity and at least one entity per request; with this wrapper
//! a warm request does not touch SQLite. Only writes made *through the wrapper* keep it
//! coherent: a write straight to the inner store (or by another process) is not seen until
//! the entry is replaced or the cache is cleared.
//!
//! A read that misses fills the cache only when no write happened while it read the inner
//! store (a generation counter), so a slow read cannot put back a value a write just replaced.
//! The cache is cleared when it outgrows its capacity, bounding memory when clients probe
//! many names that do not exist.

use crate::{Collection, EntityDoc, EntityStore, ListScope, PutMode, StoreError};
use async_trait::async_trait;
use edgewhisk_entity::Identity;
use parking_lot::Mutex;
use std::collections::HashMap;

/// Entries kept before the cache starts over.
pub const DEFAULT_CACHE_CAPACITY: usize = 16_384;

/// An [`EntityStore`] that answers `get` (hits and misses) and `identity` (hits) from memory.
/// `list`, `count` and `identities_of` go to the inner store.
#[derive(Debug)]
pub struct CachingEntityStore<S: EntityStore> {
    inner: S,
    capacity: usize,
    state: Mutex<CacheState>,
}

#[derive(Debug, Default)]
struct CacheState {
    /// Bumped by every write through the wrapper.
    generation: u64,
    /// `None` caches "no such document".
    entities: HashMap<(String, String), Option<EntityDoc>>,
    identities: HashMap<String, Identity>,
}

impl CacheState {
    fn len(&self) -> usize {
        self.entities.len() + self.identities.len()
    }
}

impl<S: EntityStore> CachingEntityStore<S> {
    /// Wraps `inner` with a cache of [`DEFAULT_CACHE_CAPACITY`] entries.
    pub fn new(inner: S) -> Self {
        Self::with_capacity(inner, DEFAULT_CACHE_CAPACITY)
    }

    /// Wraps `inner` with a cache of at most `capacity` entries (at least 1).
    pub fn with_capacity(inner: S, capacity: usize) -> Self {
        Self {
            inner,
            capacity: capacity.max(1),
            state: Mutex::new(CacheState::default()),
        }
    }

    /// The wrapped store. Writes made through it bypass (and may stale) the cache.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Forgets every cached entry.
    pub fn clear(&self) {
        let mut state = self.state.lock();
        state.generation += 1;
        state.entities.clear();
        state.identities.clear();
    }

    /// Makes room for one more entry.
    fn make_room(&self, state: &mut CacheState) {
        if state.len() >= self.capacity {
            state.entities.clear();
            state.identities.clear();
        }
    }
}

#[async_trait]
impl<S: EntityStore> EntityStore for CachingEntityStore<S> {
    async fn get(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        let key = (path.to_owned(), name.to_owned());
        let generation = {
            let state = self.state.lock();
            if let Some(hit) = state.entities.get(&key) {
                return Ok(hit.clone());
            }
            state.generation
        };
        let doc = self.inner.get(path, name).await?;
        let mut state = self.state.lock();
        if state.generation == generation {
            self.make_room(&mut state);
            state.entities.insert(key, doc.clone());
        }
        Ok(doc)
    }

    async fn put(&self, doc: EntityDoc, mode: PutMode) -> Result<(), StoreError> {
        let key = (doc.path.clone(), doc.name.clone());
        let result = self.inner.put(doc.clone(), mode).await;
        let mut state = self.state.lock();
        state.generation += 1;
        match result {
            Ok(()) => {
                self.make_room(&mut state);
                state.entities.insert(key, Some(doc));
            }
            // A conflict means our entry may be stale: read it again next time.
            Err(_) => {
                state.entities.remove(&key);
            }
        }
        result
    }

    async fn delete(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        let key = (path.to_owned(), name.to_owned());
        let result = self.inner.delete(path, name).await;
        let mut state = self.state.lock();
        state.generation += 1;
        state.entities.remove(&key);
        result
    }

    async fn list(
        &self,
        collection: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<EntityDoc>, StoreError> {
        self.inner.list(collection, scope, skip, limit).await
    }

    async fn count(&self, collection: Collection, scope: &ListScope) -> Result<usize, StoreError> {
        self.inner.count(collection, scope).await
    }

    async fn identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        let generation = {
            let state = self.state.lock();
            if let Some(hit) = state.identities.get(uuid) {
                return Ok(Some(hit.clone()));
            }
            state.generation
        };
        // Misses are not cached: a key provisioned by an admin tool must work at once.
        let identity = self.inner.identity(uuid).await?;
        if let Some(identity) = &identity {
            let mut state = self.state.lock();
            if state.generation == generation {
                self.make_room(&mut state);
                state
                    .identities
                    .insert(identity.uuid.clone(), identity.clone());
            }
        }
        Ok(identity)
    }

    async fn put_identity(&self, identity: Identity) -> Result<(), StoreError> {
        let result = self.inner.put_identity(identity.clone()).await;
        let mut state = self.state.lock();
        state.generation += 1;
        match result {
            Ok(()) => {
                self.make_room(&mut state);
                state.identities.insert(identity.uuid.clone(), identity);
            }
            Err(_) => {
                state.identities.remove(&identity.uuid);
            }
        }
        result
    }

    async fn identities_of(&self, subject: &str) -> Result<Vec<Identity>, StoreError> {
        self.inner.identities_of(subject).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use serde_json::json;

    fn action(name: &str, updated: u64) -> EntityDoc {
        EntityDoc {
            collection: Collection::Actions,
            path: "guest".into(),
            name: name.into(),
            updated,
            doc: json!({ "name": name, "updated": updated }),
        }
    }

    fn identity(uuid: &str, key: &str) -> Identity {
        Identity {
            subject: "guest".into(),
            namespace: "guest".into(),
            uuid: uuid.into(),
            key: key.into(),
        }
    }

    #[tokio::test]
    async fn get_is_served_from_memory_once_read() {
        let cache = CachingEntityStore::new(MemoryStore::new());
        cache.put(action("a", 1), PutMode::Create).await.unwrap();
        // A write that bypasses the cache is not seen: the hit came from memory.
        cache.inner().delete("guest", "a").await.unwrap();
        assert_eq!(cache.get("guest", "a").await.unwrap(), Some(action("a", 1)));
        cache.clear();
        assert_eq!(cache.get("guest", "a").await.unwrap(), None);
    }

    #[tokio::test]
    async fn writes_through_the_cache_are_seen_by_get() {
        let cache = CachingEntityStore::new(MemoryStore::new());
        cache.put(action("a", 1), PutMode::Create).await.unwrap();
        assert_eq!(cache.get("guest", "a").await.unwrap(), Some(action("a", 1)));
        cache
            .put(
                action("a", 2),
                PutMode::Replace {
                    expected_updated: 1,
                },
            )
            .await
            .unwrap();
        assert_eq!(cache.get("guest", "a").await.unwrap(), Some(action("a", 2)));
        assert_eq!(
            cache.delete("guest", "a").await.unwrap(),
            Some(action("a", 2))
        );
        assert_eq!(cache.get("guest", "a").await.unwrap(), None);
    }

    #[tokio::test]
    async fn negative_lookup_is_cached_and_invalidated_by_a_put() {
        let cache = CachingEntityStore::new(MemoryStore::new());
        assert_eq!(cache.get("guest", "a").await.unwrap(), None);
        // The miss is remembered: a bypassing write is not seen.
        cache
            .inner()
            .put(action("a", 1), PutMode::Create)
            .await
            .unwrap();
        assert_eq!(cache.get("guest", "a").await.unwrap(), None);
        cache.clear();
        assert_eq!(cache.get("guest", "a").await.unwrap(), Some(action("a", 1)));
        // A put through the cache replaces a cached miss.
        assert_eq!(cache.get("guest", "b").await.unwrap(), None);
        cache.put(action("b", 3), PutMode::Create).await.unwrap();
        assert_eq!(cache.get("guest", "b").await.unwrap(), Some(action("b", 3)));
    }

    #[tokio::test]
    async fn failed_put_drops_the_cached_entry() {
        let cache = CachingEntityStore::new(MemoryStore::new());
        cache.put(action("a", 1), PutMode::Create).await.unwrap();
        cache
            .inner()
            .put(
                action("a", 5),
                PutMode::Replace {
                    expected_updated: 1,
                },
            )
            .await
            .unwrap();
        let err = cache
            .put(
                action("a", 2),
                PutMode::Replace {
                    expected_updated: 1,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::ConcurrentModification));
        assert_eq!(cache.get("guest", "a").await.unwrap(), Some(action("a", 5)));
    }

    #[tokio::test]
    async fn identity_is_cached_and_replaced_by_put_identity() {
        let cache = CachingEntityStore::new(MemoryStore::new());
        assert_eq!(cache.identity("u").await.unwrap(), None);
        // Misses are not cached: a key provisioned behind the cache works at once.
        cache
            .inner()
            .put_identity(identity("u", "k1"))
            .await
            .unwrap();
        assert_eq!(
            cache.identity("u").await.unwrap(),
            Some(identity("u", "k1"))
        );
        cache.put_identity(identity("u", "k2")).await.unwrap();
        assert_eq!(
            cache.identity("u").await.unwrap(),
            Some(identity("u", "k2"))
        );
        assert_eq!(cache.identities_of("guest").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn cache_starts_over_when_it_outgrows_its_capacity() {
        let cache = CachingEntityStore::with_capacity(MemoryStore::new(), 2);
        for name in ["a", "b"] {
            cache.put(action(name, 1), PutMode::Create).await.unwrap();
        }
        cache.inner().delete("guest", "a").await.unwrap();
        // A third entry clears the first two; "a" is read from the inner store again.
        cache.put(action("c", 1), PutMode::Create).await.unwrap();
        assert_eq!(cache.get("guest", "a").await.unwrap(), None);
        assert!(cache.state.lock().len() <= 2);
    }
}
