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
