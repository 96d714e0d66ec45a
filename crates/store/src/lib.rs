//! Persistence for edgewhisk: the `EntityStore` and `ActivationStore` traits, an in-memory
//! implementation (also the test fake), the embedded SQLite implementation with a
//! group-committing activation writer, the PostgreSQL implementation that the controllers and
//! invokers of a cluster share, and a caching wrapper for entities and keys.
//!
//! It knows nothing about HTTP. Entities are stored as JSON documents keyed by their path
//! (`namespace` or `namespace/package`) and name; their typed forms are `edgewhisk-entity`'s,
//! and the controller decodes the documents into them.

use async_trait::async_trait;
use edgewhisk_entity::identity::NamespaceLimits;
use edgewhisk_entity::{Activation, ActivationId, Identity};
use serde::{Deserialize, Serialize};

pub mod cache;
pub mod config;
mod matching;
pub mod memory;
pub mod metrics;
pub mod postgres;
mod shared;
mod space;
pub mod sqlite;

pub use cache::{CachingEntityStore, Change};
pub use config::{StoreConfig, StoreConfigError};
pub use memory::MemoryStore;
pub use metrics::StoreMetrics;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Which REST collection an entity belongs to. Names are unique per path across collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Collection {
    /// Actions.
    Actions,
    /// Packages.
    Packages,
    /// Triggers.
    Triggers,
    /// Rules.
    Rules,
    /// API-gateway APIs: one document per API base path of a namespace, named by the base
    /// path (it starts with `/`, so it never meets an entity name).
    Apis,
}

impl Collection {
    /// The collection's name as in URLs and count responses.
    pub fn as_str(self) -> &'static str {
        match self {
            Collection::Actions => "actions",
            Collection::Packages => "packages",
            Collection::Triggers => "triggers",
            Collection::Rules => "rules",
            Collection::Apis => "apis",
        }
    }
}

/// One stored entity document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityDoc {
    /// Its collection.
    pub collection: Collection,
    /// `namespace` or `namespace/package`.
    pub path: String,
    /// The entity's name.
    pub name: String,
    /// Last update, epoch ms (lists are newest first by this).
    pub updated: u64,
    /// The entity's full JSON as the API returns it.
    pub doc: serde_json::Value,
}

/// How `put` treats an existing document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Fail with [`StoreError::Conflict`] when `(path, name)` exists.
    Create,
    /// Replace the document whose `updated` equals the given value (optimistic concurrency);
    /// fail with [`StoreError::ConcurrentModification`] otherwise.
    Replace {
        /// The `updated` value the caller read.
        expected_updated: u64,
    },
}

/// Which entities a list returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListScope {
    /// Everything in a namespace, packages included (`GET actions`).
    Namespace(String),
    /// Exactly one path, e.g. `guest/pkg` (`GET actions/pkg/`).
    Path(String),
}

/// Filter for activation lists (`GET activations`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationFilter {
    /// The namespace whose activations to list.
    pub namespace: String,
    /// Matches the `path` annotation's `ns/[pkg/]name` tail: `name` or `pkg/name`.
    pub name: Option<String>,
    /// Only activations that started at or after this epoch ms.
    pub since: Option<u64>,
    /// Only activations that started at or before this epoch ms.
    pub upto: Option<u64>,
    /// Skip this many.
    pub skip: usize,
    /// Return at most this many.
    pub limit: usize,
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A document with that path and name exists (in any collection).
    #[error("document already exists")]
    Conflict {
        /// The collection the existing document is in.
        existing: Collection,
    },
    /// The document changed since it was read.
    #[error("concurrent modification")]
    ConcurrentModification,
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL answered a query with an error (its SQLSTATE and message).
    #[error("postgres: {0}")]
    Postgres(String),
    /// The database cannot be reached: connection refused or lost, no pooled connection in
    /// time, or the server shutting down or starting up. Nothing of the operation is known to
    /// be stored (a write may or may not have committed); the same call may succeed once the
    /// database is back, which the store notices by itself. The controller answers 503.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A stored document did not decode.
    #[error("corrupt document: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The store is shut down or its worker died.
    #[error("store closed")]
    Closed,
    /// Filesystem failure opening the store.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The data directory's free space is below the configured floor, or the disk is full: the
    /// write was refused (or failed) and nothing of it was stored. Reads keep working, and
    /// writes work again by themselves once space returns.
    #[error("the store is out of disk space")]
    Full,
    /// The database's schema is newer than this build knows: a newer release wrote it, and a
    /// store is never downgraded.
    #[error(
        "the store's schema is version {found}, newer than version {known}, the newest this \
         edgewhisk knows: a newer release has opened it, and a store is never downgraded \
         (run that release, or restore a backup made by this one)"
    )]
    SchemaTooNew {
        /// The database's schema version.
        found: u32,
        /// The newest schema version this build knows.
        known: u32,
    },
    /// The store does not implement this operation (a test wrapper that does not forward it).
    #[error("{operation} is not supported by this store")]
    Unsupported {
        /// The trait method.
        operation: &'static str,
    },
}

/// Entities and identities. Writes are durable when the future resolves.
///
/// Keys are stored hashed: `put_identity` stores the identity's key in its stored form
/// ([`edgewhisk_entity::identity::KeyHash::stored_form`]: a plain key is hashed, a hash is kept
/// as is), and `identity`, `identities_of`, `identities_in` and `delete_identity` return
/// identities whose `key` is that stored form, never the secret. Check a presented secret
/// with [`edgewhisk_entity::identity::verify_stored`].
#[async_trait]
pub trait EntityStore: Send + Sync + std::fmt::Debug + 'static {
    /// The document at `(path, name)`, in whatever collection.
    async fn get(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError>;
    /// The document at `(path, name)`, shared: a cache hands out the entry it holds rather
    /// than a copy of its JSON tree. Read it with `T::deserialize(&doc.doc)`.
    async fn get_shared(
        &self,
        path: &str,
        name: &str,
    ) -> Result<Option<std::sync::Arc<EntityDoc>>, StoreError> {
        Ok(self.get(path, name).await?.map(std::sync::Arc::new))
    }
    /// The `updated` value of the document at `(path, name)`, or `None` when there is none:
    /// what a cache compares with its copy to know whether it is current, without reading
    /// the document.
    async fn updated(&self, path: &str, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.get(path, name).await?.map(|d| d.updated))
    }
    /// Writes a document.
    async fn put(&self, doc: EntityDoc, mode: PutMode) -> Result<(), StoreError>;
    /// Deletes `(path, name)`; returns the deleted document.
    async fn delete(&self, path: &str, name: &str) -> Result<Option<EntityDoc>, StoreError>;
    /// Documents of `collection` in `scope`, newest `updated` first.
    async fn list(
        &self,
        collection: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<EntityDoc>, StoreError>;
    /// Like [`list`](Self::list), but an action's `exec.code` may come back as `""`: for
    /// routes that show summaries, so that a page of large actions does not load their code.
    async fn list_summaries(
        &self,
        collection: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<EntityDoc>, StoreError> {
        self.list(collection, scope, skip, limit).await
    }
    /// How many documents `list` would see without skip/limit.
    async fn count(&self, collection: Collection, scope: &ListScope) -> Result<usize, StoreError>;
    /// The identity whose key UUID is `uuid`.
    async fn identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError>;
    /// Stores (or replaces, by UUID) an identity.
    async fn put_identity(&self, identity: Identity) -> Result<(), StoreError>;
    /// All identities of a subject.
    async fn identities_of(&self, subject: &str) -> Result<Vec<Identity>, StoreError>;
    /// Deletes the identity whose key UUID is `uuid`; returns it.
    async fn delete_identity(&self, uuid: &str) -> Result<Option<Identity>, StoreError> {
        let _ = uuid;
        Err(StoreError::Unsupported {
            operation: "delete_identity",
        })
    }
    /// All identities (keys) of a namespace, by subject then UUID.
    async fn identities_in(&self, namespace: &str) -> Result<Vec<Identity>, StoreError> {
        let _ = namespace;
        Err(StoreError::Unsupported {
            operation: "identities_in",
        })
    }
    /// The throttle overrides of a namespace, if any were set.
    async fn namespace_limits(
        &self,
        namespace: &str,
    ) -> Result<Option<NamespaceLimits>, StoreError> {
        let _ = namespace;
        Ok(None)
    }
    /// Sets (`Some`) or removes (`None`) the throttle overrides of a namespace.
    async fn put_namespace_limits(
        &self,
        namespace: &str,
        limits: Option<NamespaceLimits>,
    ) -> Result<(), StoreError> {
        let _ = (namespace, limits);
        Err(StoreError::Unsupported {
            operation: "put_namespace_limits",
        })
    }
}

/// Activation records.
#[async_trait]
pub trait ActivationStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a record and resolves once it is durable against a crash of this process (the
    /// SQLite store group-commits: records stored concurrently share one transaction). It is
    /// readable through `get`/`list` when this returns. An answer that reports a finished
    /// activation must wait for this.
    async fn store(&self, activation: Activation) -> Result<(), StoreError>;
    /// The record `id` of `namespace`.
    async fn get(
        &self,
        namespace: &str,
        id: &ActivationId,
    ) -> Result<Option<Activation>, StoreError>;
    /// Records matching `filter`, newest `start` first.
    async fn list(&self, filter: &ActivationFilter) -> Result<Vec<Activation>, StoreError>;
    /// How many records match `filter` without skip/limit.
    async fn count(&self, filter: &ActivationFilter) -> Result<usize, StoreError>;
    /// Waits until every enqueued record is durable.
    async fn flush(&self) -> Result<(), StoreError>;
    /// `Err(StoreError::Full)` while new records would be refused for lack of disk space, so
    /// that work whose record could not be kept is refused before it starts. Cheap: reads a
    /// cached figure.
    fn check_space(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
