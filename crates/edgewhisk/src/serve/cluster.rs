//! The cluster side of `edgewhisk serve` (`docs/cluster.md`): the PostgreSQL store, whose
//! cache checks every hit against the database and follows its change notifications; the
//! NATS connection; and the feed
//! service, which one controller at a time runs while it holds the feeds' leadership.

use crate::config::Config;
use anyhow::Context;
use edgewhisk_controller::AppState;
use edgewhisk_controller::feeds::{FEEDS_PATH, FeedService};
use edgewhisk_store::postgres::{PostgresStore, follow_changes};
use edgewhisk_store::{CachingEntityStore, Change, EntityStore, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a starting process keeps trying to reach PostgreSQL before it gives up (a
/// service manager restarts it): long enough for the database to boot beside it.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);

/// The name of the advisory lock the feed leader holds.
const FEEDS_LEADERSHIP: &str = "edgewhisk-feeds";

/// The cluster's store, opened.
#[derive(Debug)]
pub(super) struct ClusterStore {
    /// The database.
    pub(super) store: Arc<PostgresStore>,
    /// The entity cache in front of it, kept fresh by its change notifications.
    pub(super) cache: Arc<CachingEntityStore<Arc<PostgresStore>>>,
}

/// Connects to the configured PostgreSQL (retrying while it is unreachable), migrates it, and
/// on an empty database provisions the guest key and the system namespace.
pub(super) async fn open_store(config: &Config) -> anyhow::Result<ClusterStore> {
    let url = &config.cluster.postgres;
    let started = tokio::time::Instant::now();
    let store = loop {
        match PostgresStore::connect(url, &config.store).await {
            Ok(store) => break Arc::new(store),
            Err(StoreError::Unavailable(why)) if started.elapsed() < CONNECT_PATIENCE => {
                tracing::warn!(%why, "PostgreSQL is not reachable yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e).context("connecting to PostgreSQL"),
        }
    };
    // Other processes write the same database: every hit is checked against it, so that a
    // write anywhere is seen by the next request here (the notifications keep the cache small
    // and fresh, but may arrive after that request).
    let cache = Arc::new(
        CachingEntityStore::new(store.clone())
            .with_max_bytes(config.store.entity_cache_bytes)
            .with_revalidation(),
    );
    // Before the cache is filled, so that no change is missed.
    follow_changes(&store, Arc::downgrade(&cache));
    let entities: &dyn EntityStore = cache.as_ref();
    if store.created_schema() {
        let guest = edgewhisk_entity::identity::guest();
        entities.put_identity(guest).await?;
        tracing::info!("provisioned the default guest key for namespace 'guest'");
        edgewhisk_controller::catalog::provision_system(entities).await?;
    } else {
        edgewhisk_controller::catalog::provision_catalog(entities).await?;
    }
    Ok(ClusterStore { store, cache })
}

/// Connects to the configured NATS server; the client reconnects by itself, forever.
pub(super) async fn connect_nats(config: &Config) -> anyhow::Result<async_nats::Client> {
    edgewhisk_cluster::connect(&config.cluster.nats)
        .await
        .context("connecting to NATS")
}

/// Runs the feed service while this controller leads the feeds, and tells it about feed
/// changes made by other controllers.
#[derive(Debug)]
pub(super) struct FeedLeader {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FeedLeader {
    /// Starts competing for the feeds' leadership.
    pub(super) fn start(store: Arc<PostgresStore>, state: AppState) -> FeedLeader {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(lead(store, state, stop_rx));
        FeedLeader { stop, task }
    }

    /// Stops the feed service (if this controller leads) and gives the leadership up.
    pub(super) async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "feed leadership task ended abnormally");
        }
    }
}

/// Waits for the leadership, runs the feeds until it is lost or `stop`, and starts over.
async fn lead(store: Arc<PostgresStore>, state: AppState, mut stop: watch::Receiver<bool>) {
    let forwarding = tokio::spawn(forward_feed_changes(store.clone(), state.clone()));
    loop {
        let leadership = tokio::select! {
            l = store.lead(FEEDS_LEADERSHIP) => l,
            _ = stop.wait_for(|s| *s) => break,
        };
        tracing::info!("this controller runs the alarm and MQTT feeds");
        let feeds = FeedService::start(state.clone());
        let stopping = tokio::select! {
            () = leadership.lost() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        feeds.shutdown().await;
        drop(leadership);
        if stopping {
            break;
        }
        tracing::warn!("lost the feeds' leadership (database connection lost); competing again");
    }
    forwarding.abort();
}

/// Wakes the feed scheduler when another controller changed a stored feed.
async fn forward_feed_changes(store: Arc<PostgresStore>, state: AppState) {
    let mut changes = store.changes();
    loop {
        let wake = match changes.recv().await {
            Ok(Change::Entity { path, .. }) => path == FEEDS_PATH,
            Ok(Change::All) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
            Ok(_) => false,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if wake {
            state.feeds_changed_elsewhere();
        }
    }
}
