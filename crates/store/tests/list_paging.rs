//! Activation list paging reads only the page: whatever `skip`, `limit` and the order of writes
//! (including re-writes of stored records with a new start), the SQLite store's page equals the
//! page of the fully sorted list.

#[cfg(test)]
mod support;

#[cfg(test)]
mod list_paging {
    use crate::support;
    use edgewhisk_entity::Activation;
    use edgewhisk_store::{
        ActivationFilter, ActivationStore, MemoryStore, SqliteStore, StoreConfig,
    };
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn activation(n: u64, start: u64) -> Activation {
        Activation {
            annotations: support::path_annotation("guest/a"),
            ..support::activation(n, "guest", start)
        }
    }

    /// The default store: each `store` returns once its record is committed (group commit),
    /// so every write is in the committed order the page is read from.
    fn store_config() -> StoreConfig {
        StoreConfig::default()
    }

    fn filter(skip: usize, limit: usize) -> ActivationFilter {
        ActivationFilter {
            skip,
            limit,
            ..support::filter("guest")
        }
    }

    /// The expected page: the latest write of each id, newest start first, ties by id.
    fn model(writes: &[(u64, u64)], skip: usize, limit: usize) -> Vec<(u64, u64)> {
        let latest: BTreeMap<u64, u64> = writes.iter().copied().collect();
        let mut all: Vec<(u64, u64)> = latest.into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let take = if limit == 0 { usize::MAX } else { limit };
        all.into_iter().skip(skip).take(take).collect()
    }

    fn keys(list: &[Activation]) -> Vec<(u64, u64)> {
        list.iter()
            .map(|a| {
                let n = u64::from_str_radix(a.activation_id.as_str(), 16).unwrap();
                (n, a.start)
            })
            .collect()
    }

    /// Writes `committed`, then `later` (later writes, some re-writing earlier ids), and
    /// returns the store's page for every `(skip, limit)`.
    async fn pages(
        committed: &[(u64, u64)],
        later: &[(u64, u64)],
        queries: &[(usize, usize)],
    ) -> Vec<Vec<(u64, u64)>> {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), &store_config()).unwrap();
        for (n, start) in committed {
            store.store(activation(*n, *start)).await.unwrap();
        }
        store.flush().await.unwrap();
        for (n, start) in later {
            store.store(activation(*n, *start)).await.unwrap();
        }
        let mut out = Vec::new();
        for (skip, limit) in queries {
            out.push(keys(&store.list(&filter(*skip, *limit)).await.unwrap()));
        }
        store.close().await.unwrap();
        out
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_deep_page_among_later_writes_and_re_writes_is_exact() {
        let committed: Vec<(u64, u64)> = (0..300).map(|n| (n, 1_000 + n / 3)).collect();
        // Newer, older, interleaved, and re-writes of committed ids with a new start.
        let later = [
            (1_000, 2_000),
            (1_001, 5),
            (1_002, 1_050),
            (10, 1_120),
            (250, 1),
        ];
        let queries = [
            (0, 5),
            (3, 7),
            (150, 10),
            (295, 10),
            (303, 200),
            (310, 5),
            (0, 0),
        ];
        let got = runtime().block_on(pages(&committed, &later, &queries));
        let writes: Vec<(u64, u64)> = committed.iter().chain(&later).copied().collect();
        for ((skip, limit), page) in queries.iter().zip(got) {
            assert_eq!(
                page,
                model(&writes, *skip, *limit),
                "skip {skip} limit {limit}"
            );
        }
    }

    #[tokio::test]
    async fn a_skip_past_every_record_is_an_empty_page_in_both_stores() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteStore::open(&dir.path().join("s.db"), &store_config()).unwrap();
        let memory = MemoryStore::new();
        for n in 0..10 {
            sqlite.store(activation(n, n)).await.unwrap();
            memory.store(activation(n, n)).await.unwrap();
        }
        sqlite.flush().await.unwrap();
        for skip in [10, 11, usize::MAX / 2, usize::MAX] {
            assert!(sqlite.list(&filter(skip, 30)).await.unwrap().is_empty());
            assert!(memory.list(&filter(skip, 30)).await.unwrap().is_empty());
        }
        sqlite.close().await.unwrap();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn any_order_of_writes_pages_like_the_sorted_list(
            committed in prop::collection::vec((0_u64..40, 0_u64..12), 0..40),
            later in prop::collection::vec((0_u64..60, 0_u64..12), 0..12),
            queries in prop::collection::vec((0_usize..70, 0_usize..15), 1..6),
        ) {
            let got = runtime().block_on(pages(&committed, &later, &queries));
            let writes: Vec<(u64, u64)> = committed.iter().chain(&later).copied().collect();
            for ((skip, limit), page) in queries.iter().zip(got) {
                prop_assert_eq!(page, model(&writes, *skip, *limit), "skip {} limit {}", skip, limit);
            }
        }
    }
}

#[cfg(test)]
mod reads_only_the_page {
    use crate::support::{activation, filter};
    use edgewhisk_store::{ActivationFilter, ActivationStore, SqliteStore, StoreConfig};

    /// A record that does not decode sits before the page: a store that reads only the page
    /// never touches it, one that reads `skip + limit` records and drops the first fails.
    #[tokio::test]
    async fn a_deep_page_does_not_read_the_records_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = SqliteStore::open(&path, &StoreConfig::default()).unwrap();
        for n in 0..50 {
            store
                .store(activation(n, "guest", 1_000 + n))
                .await
                .unwrap();
        }
        store.flush().await.unwrap();
        let newest = format!("{:032x}", 49);
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE activations SET doc = 'not json' WHERE id = ?1",
                [&newest],
            )
            .unwrap();
        let page = store
            .list(&ActivationFilter {
                skip: 10,
                limit: 5,
                ..filter("guest")
            })
            .await
            .expect("a page after the broken record reads");
        let starts: Vec<u64> = page.iter().map(|a| a.start).collect();
        assert_eq!(starts, [1_039, 1_038, 1_037, 1_036, 1_035]);
        store.close().await.unwrap();
    }
}

#[cfg(test)]
mod summaries {
    use crate::support::entity;
    use edgewhisk_store::{
        Collection, EntityDoc, EntityStore, ListScope, PutMode, SqliteStore, StoreConfig,
    };
    use serde_json::{Value, json};

    fn doc(name: &str, updated: u64, exec: Value) -> EntityDoc {
        let doc = json!({ "name": name, "version": "0.0.1", "exec": exec, "annotations": [] });
        entity(Collection::Actions, "guest", name, updated, doc)
    }

    #[tokio::test]
    async fn summaries_leave_out_action_code_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db"), &StoreConfig::default()).unwrap();
        let big = "x".repeat(1_000_000);
        let docs = [
            doc(
                "code",
                3,
                json!({ "kind": "nodejs:20", "code": big, "binary": false }),
            ),
            doc(
                "seq",
                2,
                json!({ "kind": "sequence", "components": ["/guest/code"] }),
            ),
            doc(
                "bin",
                1,
                json!({ "kind": "nodejs:20", "code": "UEsDBA==", "binary": true }),
            ),
        ];
        for d in &docs {
            store.put(d.clone(), PutMode::Create).await.unwrap();
        }
        let scope = ListScope::Namespace("guest".into());
        let full = store.list(Collection::Actions, &scope, 0, 0).await.unwrap();
        assert_eq!(full, docs);
        let summaries = store
            .list_summaries(Collection::Actions, &scope, 0, 0)
            .await
            .unwrap();
        let mut expected = docs.to_vec();
        expected[0].doc["exec"]["code"] = json!("");
        expected[2].doc["exec"]["code"] = json!("");
        assert_eq!(summaries, expected);
        let page = store
            .list_summaries(Collection::Actions, &scope, 1, 1)
            .await
            .unwrap();
        assert_eq!(page, [expected[1].clone()]);
        store.close().await.unwrap();
    }
}
