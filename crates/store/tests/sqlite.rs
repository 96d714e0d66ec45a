//! SQLite-only behaviour: durability across reopen, the batching writer, close.

#[cfg(test)]
mod support;

#[cfg(test)]
mod sqlite_store {
    use crate::support::{self, entity, filter, gathering_writer_config, id};
    use edgewhisk_entity::identity::{KeyHash, verify_stored};
    use edgewhisk_entity::{Activation, ActivationResponse, Identity};
    use edgewhisk_store::{
        ActivationFilter, ActivationStore, Collection, EntityDoc, EntityStore, ListScope, PutMode,
        SqliteStore, StoreConfig, StoreError,
    };
    use serde_json::json;
    use std::path::Path;
    use std::sync::Arc;

    fn activation(n: u64, start: u64) -> Activation {
        Activation {
            response: ActivationResponse::success(json!({ "n": n, "text": "ünïcödé" })),
            logs: vec!["2024-01-01T00:00:00.000000000Z stdout: hi".into()],
            annotations: support::path_annotation("guest/pkg/a"),
            ..support::activation(n, "guest", start)
        }
    }

    fn action(name: &str, updated: u64) -> EntityDoc {
        let doc = json!({ "name": name, "exec": { "kind": "nodejs:20", "code": "x" } });
        entity(Collection::Actions, "guest", name, updated, doc)
    }

    /// Committed activation rows, as a separate connection (another process) sees them.
    fn committed_rows(path: &Path) -> usize {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row("SELECT COUNT(*) FROM activations", [], |row| row.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn reopen_after_drop_keeps_entities_identities_and_stored_activations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let identity = Identity {
            subject: "guest".into(),
            namespace: "guest".into(),
            uuid: "u-1".into(),
            key: "secret".into(),
        };
        {
            let store = SqliteStore::open(&path, &gathering_writer_config()).unwrap();
            store
                .put(action("hello", 7), PutMode::Create)
                .await
                .unwrap();
            store.put_identity(identity.clone()).await.unwrap();
            store.store(activation(1, 100)).await.unwrap();
            store.store(activation(2, 200)).await.unwrap();
        }
        let store = SqliteStore::open(&path, &StoreConfig::default()).unwrap();
        assert_eq!(
            EntityStore::get(&store, "guest", "hello").await.unwrap(),
            Some(action("hello", 7))
        );
        let stored = store.identity("u-1").await.unwrap().unwrap();
        assert_eq!(verify_stored(&stored, "secret"), Some(identity));
        let list = ActivationStore::list(&store, &filter("guest"))
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
    async fn a_record_is_committed_when_store_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path, &gathering_writer_config()).unwrap();
        store.store(activation(1, 100)).await.unwrap();
        assert_eq!(committed_rows(&path), 1, "store returns after the commit");
        store.store(activation(2, 200)).await.unwrap();
        assert_eq!(committed_rows(&path), 2);
        assert_eq!(
            ActivationStore::count(&store, &filter("guest"))
                .await
                .unwrap(),
            2
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_records_share_transactions_and_each_waits_for_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = Arc::new(SqliteStore::open(&path, &gathering_writer_config()).unwrap());
        let mut tasks = Vec::new();
        for n in 0..64u64 {
            let store = Arc::clone(&store);
            let path = path.clone();
            tasks.push(tokio::spawn(async move {
                store.store(activation(n, n)).await.unwrap();
                // Another connection (another process) sees the record once `store` returned.
                let conn = rusqlite::Connection::open(&path).unwrap();
                let found: bool = conn
                    .query_row(
                        "SELECT COUNT(*) FROM activations WHERE id = ?1",
                        [id(n).as_str()],
                        |row| row.get::<_, i64>(0),
                    )
                    .map(|c| c == 1)
                    .unwrap();
                assert!(found, "record {n} not committed when store returned");
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(committed_rows(&path), 64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entity_writes_and_record_commits_interleave_without_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = Arc::new(SqliteStore::open(&path, &StoreConfig::default()).unwrap());
        let mut tasks = Vec::new();
        for t in 0..4u64 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for i in 0..20u64 {
                    let n = t * 100 + i;
                    store
                        .put(action(&format!("a{n}"), n), PutMode::Create)
                        .await
                        .unwrap();
                    store.store(activation(n, n)).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(committed_rows(&path), 80);
        let scope = ListScope::Namespace("guest".into());
        assert_eq!(
            EntityStore::count(&*store, Collection::Actions, &scope)
                .await
                .unwrap(),
            80
        );
    }

    #[tokio::test]
    async fn stored_records_survive_a_process_that_never_shuts_down() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let store = SqliteStore::open(&path, &gathering_writer_config()).unwrap();
        store.put(action("kept", 1), PutMode::Create).await.unwrap();
        store.store(activation(1, 100)).await.unwrap();
        // No flush, and like a SIGKILL: no Drop, no close, the writer thread and connections stay as they are.
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
            ..filter("guest")
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
        let store = SqliteStore::open(&path, &gathering_writer_config()).unwrap();
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
        {
            // An earlier version, before schema versioning, wrote the key as is.
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE identities (uuid TEXT PRIMARY KEY NOT NULL, \
                     subject TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL); \
                 INSERT INTO identities (uuid, subject, namespace, key) \
                     VALUES ('u-1', 'guest', 'guest', 'plain-secret');",
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
