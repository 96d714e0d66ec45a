//! PostgreSQL-only behaviour: the first activation record for an id wins, concurrent creates,
//! concurrent migrations, retention, recovery after the server restarts, cache invalidation
//! between two stores (two controllers), and leadership. Each test skips when PostgreSQL is
//! not installed, outside CI.

#[cfg(test)]
mod support;

#[cfg(test)]
mod postgres_store {
    use crate::support::{self, entity, filter, id};
    use edgewhisk_entity::{Activation, ActivationResponse, Identity};
    use edgewhisk_store::postgres::{PostgresOptions, follow_changes};
    use edgewhisk_store::{
        ActivationStore, CachingEntityStore, Change, Collection, EntityDoc, EntityStore,
        PostgresStore, PutMode, SqliteStore, StoreConfig, StoreError,
    };
    use edgewhisk_testkit::services::postgres::Postgres;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn action(name: &str, updated: u64) -> EntityDoc {
        let doc = json!({ "name": name, "updated": updated, "exec": { "kind": "nodejs:20", "code": "x" } });
        entity(Collection::Actions, "guest", name, updated, doc)
    }

    fn record(n: u64, result: &str) -> Activation {
        Activation {
            response: ActivationResponse::success(json!({ "by": result })),
            ..support::activation(n, "guest", 100)
        }
    }

    fn median(mut samples: Vec<Duration>) -> Duration {
        samples.sort();
        samples[samples.len() / 2]
    }

    #[tokio::test]
    async fn the_first_record_stored_for_an_id_wins() {
        let Some(store) = support::postgres_store(&StoreConfig::default()).await else {
            return;
        };
        store.store(record(1, "controller")).await.unwrap();
        store.store(record(1, "late invoker")).await.unwrap();
        let got = ActivationStore::get(&store, "guest", &id(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, record(1, "controller"));
        // In one batch too: the one queued first stays.
        let (a, b) = tokio::join!(
            store.store(record(2, "first")),
            store.store(record(2, "second"))
        );
        a.unwrap();
        b.unwrap();
        let got = ActivationStore::get(&store, "guest", &id(2))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, record(2, "first"));
        assert_eq!(
            ActivationStore::count(&store, &filter("guest"))
                .await
                .unwrap(),
            2
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_records_are_all_stored_and_concurrent_creates_conflict() {
        let Some(store) = support::postgres_store(&StoreConfig::default()).await else {
            return;
        };
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..200u64)
            .map(|n| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.store(support::activation(n, "guest", n)).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(
            ActivationStore::count(&*store, &filter("guest"))
                .await
                .unwrap(),
            200
        );
        let creates: Vec<_> = (0..8u64)
            .map(|n| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.put(action("race", n), PutMode::Create).await })
            })
            .collect();
        let mut created = 0;
        for task in creates {
            match task.await.unwrap() {
                Ok(()) => created += 1,
                Err(StoreError::Conflict {
                    existing: Collection::Actions,
                }) => {}
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!(created, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn controllers_starting_at_once_migrate_once_and_one_of_them_provisions() {
        let Some(url) = support::postgres_database() else {
            return;
        };
        let config = StoreConfig::default();
        let (a, b, c) = tokio::join!(
            PostgresStore::connect(&url, &config),
            PostgresStore::connect(&url, &config),
            PostgresStore::connect(&url, &config)
        );
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        let created = [&a, &b, &c].map(PostgresStore::created_schema);
        assert_eq!(
            created.iter().filter(|c| **c).count(),
            1,
            "exactly one created the schema: {created:?}"
        );
        let again = PostgresStore::connect(&url, &config).await.unwrap();
        assert!(!again.created_schema(), "a later start finds the schema");
        a.put(action("a", 1), PutMode::Create).await.unwrap();
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let row = client
            .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 1);
    }

    #[tokio::test]
    async fn a_database_migrated_by_a_newer_release_is_refused_naming_both_versions() {
        let Some(url) = support::postgres_database() else {
            return;
        };
        let config = StoreConfig::default();
        let store = PostgresStore::connect(&url, &config).await.unwrap();
        store.close().await.unwrap();
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let known: i32 = client
            .query_one("SELECT MAX(version) FROM schema_migrations", &[])
            .await
            .unwrap()
            .get(0);
        client
            .execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&(known + 1)],
            )
            .await
            .unwrap();
        let err = PostgresStore::connect(&url, &config).await.unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, known: k }
                if i64::from(found) == i64::from(known) + 1 && i64::from(k) == i64::from(known)),
            "{err}"
        );
    }

    #[tokio::test]
    async fn retention_deletes_by_age_and_beyond_the_count_per_namespace() {
        let config = StoreConfig {
            activation_max_age_secs: 3600,
            activation_max_per_namespace: 3,
            ..StoreConfig::default()
        };
        let Some(store) = support::postgres_store(&config).await else {
            return;
        };
        let now = edgewhisk_entity::time::now_millis();
        // Two of "old" are past the age; "guest" has two beyond the count.
        for n in 1..=5u64 {
            store
                .store(support::activation(n, "guest", now - 1000 + n))
                .await
                .unwrap();
        }
        store
            .store(support::activation(10, "old", 5))
            .await
            .unwrap();
        store
            .store(support::activation(11, "old", 6))
            .await
            .unwrap();
        store
            .store(support::activation(12, "old", now))
            .await
            .unwrap();
        assert_eq!(store.apply_retention(&config).await.unwrap(), 4);
        let kept = ActivationStore::list(&store, &filter("guest"))
            .await
            .unwrap();
        let kept: Vec<_> = kept.into_iter().map(|a| a.activation_id).collect();
        assert_eq!(kept, [id(5), id(4), id(3)]);
        assert_eq!(
            ActivationStore::count(&store, &filter("old"))
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.apply_retention(&config).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn summaries_leave_out_action_code() {
        let Some(store) = support::postgres_store(&StoreConfig::default()).await else {
            return;
        };
        store.put(action("a", 1), PutMode::Create).await.unwrap();
        let scope = edgewhisk_store::ListScope::Namespace("guest".into());
        let page = store
            .list_summaries(Collection::Actions, &scope, 0, 0)
            .await
            .unwrap();
        assert_eq!(page[0].doc["exec"]["code"], json!(""));
        assert_eq!(page[0].doc["exec"]["kind"], json!("nodejs:20"));
        let full = EntityStore::list(&store, Collection::Actions, &scope, 0, 0)
            .await
            .unwrap();
        assert_eq!(full, [action("a", 1)]);
        // An escaped NUL, which PostgreSQL's jsonb refuses, in a parameter.
        let mut odd = action("b", 2);
        odd.doc["parameters"] = json!([{ "key": "k", "value": "nul\u{0}" }]);
        store.put(odd.clone(), PutMode::Create).await.unwrap();
        let page = store
            .list_summaries(Collection::Actions, &scope, 0, 1)
            .await
            .unwrap();
        assert_eq!(page[0].doc["exec"]["code"], json!(""));
        assert_eq!(page[0].doc["parameters"], odd.doc["parameters"]);
    }

    #[tokio::test]
    async fn connecting_to_no_server_is_unavailable() {
        // Needs no PostgreSQL: nothing listens on a port that was just free.
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let options = PostgresOptions {
            connect_timeout: Duration::from_secs(1),
            ..PostgresOptions::default()
        };
        let url = format!("postgres://edgewhisk@127.0.0.1:{port}/edgewhisk");
        let err = PostgresStore::connect_with(&url, &StoreConfig::default(), options)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let err = PostgresStore::connect("not a url", &StoreConfig::default())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Postgres(_)), "{err:?}");
    }

    /// Calls `get` until it succeeds; returns how long that took.
    async fn until_reachable(store: &PostgresStore, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            match EntityStore::get(store, "guest", "a").await {
                Ok(_) => return started.elapsed(),
                Err(StoreError::Unavailable(_)) if started.elapsed() < limit => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("after {:?}: {e}", started.elapsed()),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn while_the_server_is_down_calls_are_unavailable_and_recover_after_restart() {
        let Some(mut pg) = Postgres::start_or_skip() else {
            return;
        };
        let options = PostgresOptions {
            connect_timeout: Duration::from_secs(1),
            ..PostgresOptions::default()
        };
        let store = PostgresStore::connect_with(&pg.url(), &StoreConfig::default(), options)
            .await
            .unwrap();
        store.put(action("a", 1), PutMode::Create).await.unwrap();
        store.store(record(1, "before")).await.unwrap();
        let mut changes = store.changes();
        let listening = tokio::time::timeout(Duration::from_secs(5), changes.recv()).await;
        assert_eq!(listening.unwrap().unwrap(), Change::All);
        for crash in [false, true] {
            let leader = store.lead("alarms").await;
            if crash {
                tokio::task::block_in_place(|| pg.kill()).unwrap();
            } else {
                tokio::task::block_in_place(|| pg.stop()).unwrap();
            }
            // Every kind of call fails as unavailable, none hangs.
            let started = Instant::now();
            let get = EntityStore::get(&store, "guest", "a").await;
            assert!(matches!(get, Err(StoreError::Unavailable(_))), "{get:?}");
            let put = store.put(action("b", 1), PutMode::Create).await;
            assert!(matches!(put, Err(StoreError::Unavailable(_))), "{put:?}");
            let stored = store.store(record(2, "meanwhile")).await;
            assert!(
                matches!(stored, Err(StoreError::Unavailable(_))),
                "{stored:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(5));
            tokio::time::timeout(Duration::from_secs(5), leader.lost())
                .await
                .expect("a leader that lost its server must learn it");
            tokio::task::block_in_place(|| pg.restart()).unwrap();
            let took = until_reachable(&store, Duration::from_secs(5)).await;
            println!(
                "crash: {crash}: reachable again {took:?} after the server accepted connections"
            );
            assert_eq!(
                EntityStore::get(&store, "guest", "a").await.unwrap(),
                Some(action("a", 1))
            );
            store.store(record(3, "after")).await.unwrap();
            // The change listener is back, and says that it may have missed changes.
            let back = tokio::time::timeout(Duration::from_secs(5), changes.recv()).await;
            assert_eq!(back.unwrap().unwrap(), Change::All);
        }
    }

    /// Two controllers' stores on one database, each behind its cache; B follows the changes.
    async fn two_controllers() -> Option<(
        Arc<CachingEntityStore<Arc<PostgresStore>>>,
        Arc<CachingEntityStore<Arc<PostgresStore>>>,
    )> {
        let url = support::postgres_database()?;
        let config = StoreConfig::default();
        let a = Arc::new(PostgresStore::connect(&url, &config).await.unwrap());
        let b = Arc::new(PostgresStore::connect(&url, &config).await.unwrap());
        let mut listening = b.changes();
        // The listener says "all" once it listens.
        let first = tokio::time::timeout(Duration::from_secs(5), listening.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, Change::All);
        let cache_a = Arc::new(CachingEntityStore::new(a));
        let cache_b = Arc::new(CachingEntityStore::new(Arc::clone(&b)));
        follow_changes(&b, Arc::downgrade(&cache_b));
        Some((cache_a, cache_b))
    }

    /// Polls `read` until it returns `want`; returns how long that took, or panics after 1 s.
    async fn visible<T: PartialEq + std::fmt::Debug, F: Future<Output = T>>(
        want: T,
        mut read: impl FnMut() -> F,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let got = read().await;
            if got == want {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "still {got:?}, want {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_through_one_controller_is_seen_by_the_others_cache() {
        let Some((a, b)) = two_controllers().await else {
            return;
        };
        a.put(action("a", 1), PutMode::Create).await.unwrap();
        let mut delays = Vec::new();
        for n in 1..=20u64 {
            // B caches the current version, then A replaces it.
            let read = || async { b.get("guest", "a").await.unwrap().map(|d| d.updated) };
            visible(Some(n), read).await;
            let replace = PutMode::Replace {
                expected_updated: n,
            };
            a.put(action("a", n + 1), replace).await.unwrap();
            delays.push(visible(Some(n + 1), read).await);
        }
        a.delete("guest", "a").await.unwrap();
        visible(None, || async { b.get("guest", "a").await.unwrap() }).await;
        // Keys and limits, which B would otherwise serve for its identity TTL.
        let key = Identity {
            subject: "alice".into(),
            namespace: "alice".into(),
            uuid: "u1".into(),
            key: "secret".into(),
        };
        a.put_identity(key).await.unwrap();
        visible(true, || async { b.identity("u1").await.unwrap().is_some() }).await;
        a.delete_identity("u1").await.unwrap();
        visible(false, || async {
            b.identity("u1").await.unwrap().is_some()
        })
        .await;
        let limits = edgewhisk_entity::identity::NamespaceLimits {
            invocations_per_minute: Some(7),
            concurrent_invocations: None,
            fires_per_minute: None,
        };
        assert_eq!(b.namespace_limits("alice").await.unwrap(), None);
        a.put_namespace_limits("alice", Some(limits)).await.unwrap();
        visible(Some(limits), || async {
            b.namespace_limits("alice").await.unwrap()
        })
        .await;
        println!(
            "invalidation delay over {} writes: median {:?}, max {:?}",
            delays.len(),
            median(delays.clone()),
            delays.iter().max().unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_one_store_leads_and_another_takes_over_when_it_steps_down_or_dies() {
        let Some(url) = support::postgres_database() else {
            return;
        };
        let config = StoreConfig::default();
        let a = Arc::new(PostgresStore::connect(&url, &config).await.unwrap());
        let b = Arc::new(PostgresStore::connect(&url, &config).await.unwrap());
        let leader = a.lead("alarms").await;
        assert_eq!(leader.name(), "alarms");
        // Another name is another lock.
        let other = b.lead("other").await;
        let waiting = {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.lead("alarms").await })
        };
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(!waiting.is_finished(), "two leaders");
        let stepped_down = Instant::now();
        drop(leader);
        let second = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("no new leader")
            .unwrap();
        println!("new leader after {:?}", stepped_down.elapsed());
        assert!(!second.is_lost());
        // The leader's session is killed: it learns that it lost the lock.
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks \
                 WHERE locktype = 'advisory' AND granted",
                &[],
            )
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), second.lost())
            .await
            .expect("the lost lock went unnoticed");
        tokio::time::timeout(Duration::from_secs(5), other.lost())
            .await
            .expect("the lost lock went unnoticed");
        // And leads again once it tries.
        let again = tokio::time::timeout(Duration::from_secs(5), a.lead("alarms"))
            .await
            .unwrap();
        assert!(!again.is_lost());
    }

    /// Median time per operation through each store: `cargo test -p edgewhisk-store --test
    /// postgres --release -- --ignored --nocapture per_op`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement, not a test"]
    async fn per_op_latency_of_postgres_and_sqlite() {
        let Some(pg) = support::postgres_store(&StoreConfig::default()).await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let sqlite =
            SqliteStore::open(&dir.path().join("store.db"), &StoreConfig::default()).unwrap();
        const N: u64 = 500;
        async fn measure<S: EntityStore + ActivationStore>(s: &S) -> [Duration; 3] {
            s.put(action("a", 0), PutMode::Create).await.unwrap();
            let (mut gets, mut puts, mut stores) = (Vec::new(), Vec::new(), Vec::new());
            for n in 0..N {
                let t = Instant::now();
                EntityStore::get(s, "guest", "a").await.unwrap();
                gets.push(t.elapsed());
                let t = Instant::now();
                let replace = PutMode::Replace {
                    expected_updated: n,
                };
                s.put(action("a", n + 1), replace).await.unwrap();
                puts.push(t.elapsed());
                let t = Instant::now();
                s.store(record(n, "bench")).await.unwrap();
                stores.push(t.elapsed());
            }
            [median(gets), median(puts), median(stores)]
        }
        /// Records per second stored by 32 concurrent callers (group commit at work).
        async fn throughput<S: ActivationStore>(s: Arc<S>) -> f64 {
            let started = Instant::now();
            let tasks: Vec<_> = (0..32u64)
                .map(|t| {
                    let s = Arc::clone(&s);
                    tokio::spawn(async move {
                        for n in 0..100u64 {
                            let mut a = record(0, "bench");
                            a.activation_id = id(1_000_000 + t * 1000 + n);
                            s.store(a).await.unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            3200.0 / started.elapsed().as_secs_f64()
        }
        let pg = Arc::new(pg);
        let sqlite = Arc::new(sqlite);
        let pg_rate = throughput(Arc::clone(&pg)).await;
        let sqlite_rate = throughput(Arc::clone(&sqlite)).await;
        println!(
            "activation store, 32 concurrent callers: postgres {pg_rate:.0}/s, sqlite {sqlite_rate:.0}/s"
        );
        let pg = measure(&*pg).await;
        let sqlite = measure(&*sqlite).await;
        for (i, op) in ["entity get", "entity put", "activation store"]
            .iter()
            .enumerate()
        {
            println!(
                "{op}: postgres {:?}, sqlite {:?} (median of {N})",
                pg[i], sqlite[i]
            );
        }
    }
}
