//! Opening the stores a server runs on: the SQLite store in the data directory (the lean
//! mode), or the cluster's PostgreSQL; provisioned with the guest key and the system catalog
//! on their first start.

use super::cluster;
use super::lock::{self, DataDirLock};
use crate::config::Config;
use anyhow::Context;
use edgewhisk_store::postgres::PostgresStore;
use edgewhisk_store::{
    ActivationStore, CachingEntityStore, EntityStore, SqliteStore, StoreMetrics,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The stores of a running server, and where its local files go.
#[derive(Debug, Clone)]
pub(super) struct Stores {
    /// Entities and identities, behind the cache.
    pub(super) entities: Arc<dyn EntityStore>,
    /// Activation records.
    pub(super) activations: Arc<dyn ActivationStore>,
    /// The data directory (store files in the lean mode, unpacked action code).
    pub(super) data_dir: PathBuf,
    /// The cluster's database, which also carries the feeds' leadership; `None` in the lean
    /// mode.
    pub(super) postgres: Option<Arc<PostgresStore>>,
    /// The data directory's lock, held while the server runs; `None` in a cluster.
    pub(super) lock: Option<Arc<DataDirLock>>,
    /// The SQLite activation writer's metrics; `None` in a cluster.
    pub(super) metrics: Option<StoreMetrics>,
}

/// Opens the configured store and provisions it.
pub(super) async fn open(config: &Config) -> anyhow::Result<Stores> {
    if config.cluster.clustered() {
        // Only unpacked action code lives here: private when we create it, as in the lean mode.
        let data_dir = config.data_dir();
        let ours = !data_dir.exists();
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        if ours {
            set_mode(&data_dir, 0o700)?;
        }
        let opened = cluster::open_store(config).await?;
        return Ok(Stores {
            entities: opened.cache,
            activations: opened.store.clone(),
            data_dir,
            postgres: Some(opened.store),
            lock: None,
            metrics: None,
        });
    }
    let data_dir = config.data_dir();
    let db_path = config.db_path();
    // Only a directory that is ours (new, or already holding the store) is made private:
    // an operator pointing --data-dir at a shared directory must not see its mode changed.
    let ours = !data_dir.exists() || db_path.exists();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    if ours {
        set_mode(&data_dir, 0o700)?;
    } else {
        tracing::warn!(
            data_dir = %data_dir.display(),
            "the data directory existed without a store: its mode is left as it is"
        );
    }
    let lock = lock::try_lock(&data_dir)?.with_context(|| {
        format!(
            "another edgewhisk serve, or an edgewhisk admin restore, is using data directory {}",
            data_dir.display()
        )
    })?;
    // The guest and system keys are provisioned on the first start only, so an operator
    // can delete them for good.
    let first_start = !db_path.exists();
    let store = Arc::new(
        SqliteStore::open(&db_path, &config.store)
            .with_context(|| format!("opening store {}", db_path.display()))?,
    );
    // The store holds every namespace's key: readable by its owner only (SQLite gives its
    // WAL and shared-memory files the database's mode).
    for path in config.db_files() {
        if path.exists() {
            set_mode(&path, 0o600)?;
        }
    }
    let entities: Arc<dyn EntityStore> = Arc::new(
        CachingEntityStore::new(store.clone()).with_max_bytes(config.store.entity_cache_bytes),
    );
    provision(entities.as_ref(), first_start).await?;
    Ok(Stores {
        entities,
        metrics: Some(store.metrics().clone()),
        activations: store,
        data_dir,
        postgres: None,
        lock: Some(Arc::new(lock)),
    })
}

/// On the first start, the guest key and the system namespace; on every start, the catalog.
async fn provision(entities: &dyn EntityStore, first_start: bool) -> anyhow::Result<()> {
    if first_start {
        let guest = edgewhisk_entity::identity::guest();
        if entities.identity(&guest.uuid).await?.is_none() {
            entities.put_identity(guest).await?;
            tracing::info!("provisioned the default guest key for namespace 'guest'");
        }
        edgewhisk_controller::catalog::provision_system(entities).await?;
    } else {
        edgewhisk_controller::catalog::provision_catalog(entities).await?;
    }
    Ok(())
}

/// Sets the permission bits of `path`.
pub(super) fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting mode {mode:o} on {}", path.display()))
}
