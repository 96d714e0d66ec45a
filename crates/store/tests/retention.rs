//! Activation retention of the SQLite store (issue 9, item 4): records beyond the configured
//! age or per-namespace count are deleted by the background task, and the space is reused.

#[cfg(test)]
mod support;

#[cfg(test)]
mod retention {
    use crate::support::{self, filter, id};
    use edgewhisk_entity::{Activation, ActivationId, ActivationResponse};
    use edgewhisk_store::{ActivationStore, SqliteStore, StoreConfig};
    use serde_json::json;
    use std::path::Path;
    use std::time::{Duration, Instant};

    /// How long a test waits for the background task.
    const PATIENCE: Duration = Duration::from_secs(10);

    fn activation(n: u64, namespace: &str, start: u64, result_bytes: usize) -> Activation {
        Activation {
            response: ActivationResponse::success(json!({ "blob": "x".repeat(result_bytes) })),
            ..support::activation(n, namespace, start)
        }
    }

    /// Retention every 50 ms in batches of 3, everything else as given.
    fn config(max_age_secs: u64, max_per_namespace: u64) -> StoreConfig {
        StoreConfig {
            activation_max_age_secs: max_age_secs,
            activation_max_per_namespace: max_per_namespace,
            retention_interval_ms: 50,
            retention_batch_size: 3,
            min_free_bytes: 0,
            ..StoreConfig::default()
        }
    }

    fn now() -> u64 {
        edgewhisk_entity::time::now_millis()
    }

    async fn eventually_count(store: &SqliteStore, namespace: &str, expected: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let n = ActivationStore::count(store, &filter(namespace))
                .await
                .unwrap();
            if n == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{namespace} still has {n} records, expected {expected}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pragma(path: &Path, name: &str) -> i64 {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_namespace_keeps_only_its_newest_records_up_to_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("store.db"), &config(0, 5)).unwrap();
        let start = now();
        for n in 0..12 {
            store
                .store(activation(n, "a", start + n, 10))
                .await
                .unwrap();
        }
        for n in 100..103 {
            store
                .store(activation(n, "b", start + n, 10))
                .await
                .unwrap();
        }
        eventually_count(&store, "a", 5).await;
        let kept: Vec<ActivationId> = ActivationStore::list(&store, &filter("a"))
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.activation_id)
            .collect();
        assert_eq!(kept, (7..12).rev().map(id).collect::<Vec<_>>());
        assert_eq!(
            ActivationStore::count(&store, &filter("b")).await.unwrap(),
            3,
            "a namespace under the limit keeps everything"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_older_than_the_age_limit_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("store.db"), &config(3600, 0)).unwrap();
        let old = now() - 2 * 3600 * 1000;
        for n in 0..10 {
            store.store(activation(n, "a", old + n, 10)).await.unwrap();
        }
        for n in 10..13 {
            store.store(activation(n, "a", now(), 10)).await.unwrap();
        }
        eventually_count(&store, "a", 3).await;
        for n in 10..13 {
            assert!(
                ActivationStore::get(&store, "a", &id(n))
                    .await
                    .unwrap()
                    .is_some(),
                "record {n} is younger than the limit"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pages_freed_by_retention_go_back_to_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut c = config(0, 10);
        c.retention_batch_size = 500;
        let store = SqliteStore::open(&path, &c).unwrap();
        assert_eq!(
            pragma(&path, "auto_vacuum"),
            2,
            "new databases vacuum incrementally"
        );
        let start = now();
        for n in 0..600 {
            store
                .store(activation(n, "a", start + n, 8 * 1024))
                .await
                .unwrap();
        }
        // The pages 600 records of 8 KiB fill, however many retention already removed while
        // they were written (it runs every 10 ms here, so the file may never reach that size).
        let full_pages = 600 * 8 * 1024 / pragma(&path, "page_size");
        eventually_count(&store, "a", 10).await;
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (pages, free) = (pragma(&path, "page_count"), pragma(&path, "freelist_count"));
            if free == 0 && pages * 4 < full_pages {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still {pages} pages ({free} free) after deleting most of {full_pages}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zero_limits_keep_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("store.db"), &config(0, 0)).unwrap();
        for n in 0..8 {
            store.store(activation(n, "a", 1 + n, 10)).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            ActivationStore::count(&store, &filter("a")).await.unwrap(),
            8
        );
    }
}
