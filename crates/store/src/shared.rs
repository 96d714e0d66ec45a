//! Stores behind an `Arc` are stores: one `Arc<SqliteStore>` can serve as the activation
//! store and, wrapped in a `CachingEntityStore`, as the entity store at the same time.

use crate::{
    ActivationFilter, ActivationStore, Collection, EntityDoc, EntityStore, ListScope, PutMode,
    StoreError,
};
use async_trait::async_trait;
use edgewhisk_entity::identity::NamespaceLimits;
use edgewhisk_entity::{Activation, ActivationId, Identity};
use std::sync::Arc;

#[async_trait]
impl<T: EntityStore + ?Sized> EntityStore for Arc<T> {
    async fn get(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        T::get(self, path, name).await
    }

    async fn get_shared(
        &self,
        path: &str,
        name: &str,
    ) -> Result<Option<Arc<EntityDoc>>, StoreError> {
        T::get_shared(self, path, name).await
    }

    async fn updated(&self, path: &str, name: &str) -> Result<Option<u64>, StoreError> {
        T::updated(self, path, name).await
    }

    async fn put(&self, doc: EntityDoc, mode: PutMode) -> Result<(), StoreError> {
        T::put(self, doc, mode).await
    }

    async fn delete(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError> {
        T::delete(self, path, name).await
    }

    async fn list(
        &self,
        collection: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<EntityDoc>, StoreError> {
        T::list(self, collection, scope, skip, limit).await
    }

    async fn list_summaries(
        &self,
        collection: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<EntityDoc>, StoreError> {
        T::list_summaries(self, collection, scope, skip, limit).await
    }

    async fn count(&self, collection: Collection, scope: &ListScope) -> Result<usize, StoreError> {
        T::count(self, collection, scope).await
    }

    async fn identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        T::identity(self, uuid).await
    }

    async fn put_identity(&self, identity: Identity) -> Result<(), StoreError> {
        T::put_identity(self, identity).await
    }

    async fn identities_of(&self, subject: &str) -> Result<Vec<Identity>, StoreError> {
        T::identities_of(self, subject).await
    }

    async fn delete_identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        T::delete_identity(self, uuid).await
    }

    async fn identities_in(&self, namespace: &str) -> Result<Vec<Identity>, StoreError> {
        T::identities_in(self, namespace).await
    }

    async fn namespace_limits(
        &self,
        namespace: &str,
    ) -> Result<Option<NamespaceLimits>, StoreError> {
        T::namespace_limits(self, namespace).await
    }

    async fn put_namespace_limits(
        &self,
        namespace: &str,
        limits: Option<NamespaceLimits>,
    ) -> Result<(), StoreError> {
        T::put_namespace_limits(self, namespace, limits).await
    }
}

#[async_trait]
impl<T: ActivationStore + ?Sized> ActivationStore for Arc<T> {
    async fn store(&self, activation: Activation) -> Result<(), StoreError> {
        T::store(self, activation).await
    }

    async fn get(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError> {
        T::get(self, namespace, id).await
    }

    async fn list(&self, filter: &ActivationFilter) -> Result<Vec<Activation>, StoreError> {
        T::list(self, filter).await
    }

    async fn count(&self, filter: &ActivationFilter) -> Result<usize, StoreError> {
        T::count(self, filter).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        T::flush(self).await
    }

    fn check_space(&self) -> Result<(), StoreError> {
        T::check_space(self)
    }
}

#[cfg(test)]
mod tests {
    use crate::{CachingEntityStore, EntityStore, MemoryStore};
    use std::sync::Arc;

    #[tokio::test]
    async fn one_arc_store_serves_behind_a_cache_and_directly() {
        let store = Arc::new(MemoryStore::new());
        let cache = CachingEntityStore::new(Arc::clone(&store));
        let id = edgewhisk_entity::identity::guest();
        cache.put_identity(id.clone()).await.unwrap();
        let stored = store.identity(&id.uuid).await.unwrap().unwrap();
        assert!(edgewhisk_entity::identity::verify_stored(&stored, &id.key).is_some());
        let as_dyn: Arc<dyn EntityStore> = store;
        assert_eq!(as_dyn.identities_of("guest").await.unwrap(), [stored]);
    }
}
