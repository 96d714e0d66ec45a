//! SQLite-only behaviour: durability across reopen, the batching writer, close.

#[cfg(test)]
mod sqlite_store {
    use edgewhisk_entity::identity::{KeyHash, verify_stored};
    use edgewhisk_entity::{Activation, ActivationId, ActivationResponse, Identity, Parameters};
    use edgewhisk_store::{
        ActivationFilter, ActivationStore, Collection, EntityDoc, EntityStore, ListScope, PutMode,
        SqliteStore, StoreConfig, StoreError,
    };
    use serde_json::json;
    use std::path::Path;
    use std::sync::Arc;

    fn id(n: u64) -> ActivationId {
        ActivationId::parse(&format!("{n:032x}")).unwrap()
    }

    fn activation(n: u64, start: u64) -> Activation {
        let mut annotations = Parameters::default();
        annotations.set("path", json!("guest/pkg/a"));
        Activation {
            namespace: "guest".into(),
            name: "a".into(),
            version: "0.0.1".into(),
            subject: "guest".into(),
            activation_id: id(n),
            cause: None,
            start,
            end: start + 1,
            duration: None,
            response: ActivationResponse::success(json!({ "n": n, "text": "ünïcödé" })),
            logs: vec!["2024-01-01T00:00:00.000000000Z stdout: hi".into()],
            annotations,
            publish: false,
        }
    }

    fn action(name: &str, updated: u64) -> EntityDoc {
        EntityDoc {
            collection: Collection::Actions,
            path: "guest".into(),
            name: name.into(),
            updated,
            doc: json!({ "name": name, "exec": { "kind": "nodejs:20", "code": "x" } }),
        }
    }

    fn guest_filter() -> ActivationFilter {
        ActivationFilter {
            namespace: "guest".into(),
            ..ActivationFilter::default()
        }
    }

    /// Holds records for seconds unless flushed or closed.
    fn slow_writer_config() -> StoreConfig {
        StoreConfig {
            activation_batch_size: 65_536,
            activation_flush_interval_ms: 10_000,
            ..StoreConfig::default()
        }
    }

    /// Committed activation rows, as a separate connection (another process) sees them.
    fn committed_rows(path: &Path) -> usize {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row("SELECT COUNT(*) FROM activations", [], |row| row.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn reopen_after_drop_keeps_entities_identities_and_unflushed_activations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let identity = Identity {
            subject: "guest".into(),
            namespace: "guest".into(),
            uuid: "u-1".into(),
            key: "secret".into(),
        };
        {
            let store = SqliteStore::open(&path, &slow_writer_config()).unwrap();
            store
                .put(action("hello", 7), PutMode::Create)
                .await
                .unwrap();
            store.put_identity(identity.clone()).await.unwrap();
            store.store(activation(1, 100)).await.unwrap();
            store.store(activation(2, 200)).await.unwrap();
            // No flush: dropping the store must commit what `store` acknowledged.
        }
        let store = SqliteStore::open(&path, &StoreConfig::default()).unwrap();
        assert_eq!(
            EntityStore::get(&store, "guest", "hello").await.unwrap(),
            Some(action("hello", 7))
        );
        let stored = store.identity("u-1").await.unwrap().unwrap();
        assert_eq!(verify_stored(&stored, "secret"), Some(identity));
        let list = ActivationStore::list(&store, &guest_filter())
            .await
            .unwrap();
        assert_eq!(list, [activation(2, 200), activation(1, 100)]);
        let scope = ListScope::Namespace("guest".into());
        assert_eq!(
            EntityStore::count(&store, Collection::Actions, &scope)
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn records_stay_queued_until_flush_commits_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path, &slow_writer_config()).unwrap();
        store.store(activation(1, 100)).await.unwrap();
        store.store(activation(2, 200)).await.unwrap();
        assert_eq!(
            committed_rows(&path),
            0,
            "the writer waits for its interval"
        );
        assert_eq!(
            ActivationStore::count(&store, &guest_filter())
                .await
                .unwrap(),
            2
        );
        store.flush().await.unwrap();
        assert_eq!(committed_rows(&path), 2);
        assert_eq!(
            ActivationStore::count(&store, &guest_filter())
                .await
                .unwrap(),
            2
        );
    }

    #[tokio::test]
    async fn flushed_records_survive_a_process_that_never_shuts_down() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path, &slow_writer_config()).unwrap();
        store.put(action("kept", 1), PutMode::Create).await.unwrap();
        store.store(activation(1, 100)).await.unwrap();
        store.flush().await.unwrap();
        // Like a SIGKILL: no Drop, no close, the writer thread and connections stay as they are.
        std::mem::forget(store);
        let reopened = SqliteStore::open(&path, &StoreConfig::default()).unwrap();
        assert_eq!(
            ActivationStore::get(&reopened, "guest", &id(1))
                .await
                .unwrap(),
            Some(activation(1, 100))
        );
        assert!(
            EntityStore::get(&reopened, "guest", "kept")
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_stores_in_small_batches_are_all_committed_by_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let config = StoreConfig {
            activation_batch_size: 7,
            activation_flush_interval_ms: 1,
            ..StoreConfig::default()
        };
        let store = Arc::new(SqliteStore::open(&path, &config).unwrap());
        let mut tasks = Vec::new();
        for t in 0..4u64 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for i in 0..25u64 {
                    let n = t * 100 + i;
                    store.store(activation(n, n)).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        store.flush().await.unwrap();
        assert_eq!(committed_rows(&path), 100);
        let f = ActivationFilter {
            name: Some("pkg/a".into()),
            limit: 10,
            ..guest_filter()
        };
        assert_eq!(ActivationStore::count(&*store, &f).await.unwrap(), 100);
        let page = ActivationStore::list(&*store, &f).await.unwrap();
        assert_eq!(page.len(), 10);
        assert_eq!(page[0].activation_id, id(324));
    }

    #[tokio::test]
    async fn close_commits_the_queue_and_refuses_later_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path, &slow_writer_config()).unwrap();
        store.store(activation(1, 100)).await.unwrap();
        store.close().await.unwrap();
        assert_eq!(committed_rows(&path), 1);
        assert!(matches!(
            store.store(activation(2, 200)).await,
            Err(StoreError::Closed)
        ));
        assert!(matches!(store.flush().await, Err(StoreError::Closed)));
        // Reads and entity writes keep working after the writer stopped.
        assert!(
            ActivationStore::get(&store, "guest", &id(1))
                .await
                .unwrap()
                .is_some()
        );
        store.put(action("late", 1), PutMode::Create).await.unwrap();
    }

    #[tokio::test]
    async fn open_creates_missing_directories() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/store.db");
        let store = SqliteStore::open(&path, &StoreConfig::default()).unwrap();
        assert_eq!(store.path(), path);
        assert!(path.exists());
    }

    #[tokio::test]
    async fn opening_hashes_keys_stored_in_the_clear_by_earlier_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(SqliteStore::open(&path, &StoreConfig::default()).unwrap());
        {
            // An earlier version wrote the key as is.
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute(
                "INSERT INTO identities (uuid, subject, namespace, key) \
                 VALUES ('u-1', 'guest', 'guest', 'plain-secret')",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path, &StoreConfig::default()).unwrap();
        let stored = store.identity("u-1").await.unwrap().unwrap();
        assert!(KeyHash::is_hashed(&stored.key));
        assert!(verify_stored(&stored, "plain-secret").is_some());
        drop(store);
        // Reopening leaves already hashed keys alone.
        let store = SqliteStore::open(&path, &StoreConfig::default()).unwrap();
        assert_eq!(store.identity("u-1").await.unwrap(), Some(stored));
        let conn = rusqlite::Connection::open(&path).unwrap();
        let plain: usize = conn
            .query_row(
                "SELECT COUNT(*) FROM identities WHERE key = 'plain-secret'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(plain, 0);
    }
}
