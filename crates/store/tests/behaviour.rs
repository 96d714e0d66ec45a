//! One behaviour suite, run against every store implementation (PostgreSQL's cases skip when
//! it is not installed, outside CI). Each `case` is an async fn over any store; `suite!`
//! instantiates it per store.

#[cfg(test)]
mod support;

#[cfg(test)]
mod store_behaviour {
    use crate::support::{self, filter, gathering_writer_config, id};
    use edgewhisk_entity::identity::{NamespaceLimits, verify_stored};
    use edgewhisk_entity::{Activation, ActivationId, Identity};
    use edgewhisk_store::{
        ActivationFilter, ActivationStore, Collection, EntityDoc, EntityStore, ListScope,
        MemoryStore, PutMode, SqliteStore, StoreError,
    };
    use serde_json::json;

    trait Store: EntityStore + ActivationStore {}
    impl<T: EntityStore + ActivationStore> Store for T {}

    fn entity(collection: Collection, path: &str, name: &str, updated: u64) -> EntityDoc {
        let doc = json!({ "namespace": path, "name": name, "version": "0.0.1" });
        support::entity(collection, path, name, updated, doc)
    }

    /// Creates `entity(collection, path, name, updated)`, which must not exist yet.
    async fn create(s: &impl Store, collection: Collection, path: &str, name: &str, updated: u64) {
        s.put(entity(collection, path, name, updated), PutMode::Create)
            .await
            .unwrap();
    }

    /// Writes `entity(collection, path, name, updated)` over the document last read with
    /// `expected_updated`.
    async fn replace(
        s: &impl Store,
        collection: Collection,
        name: &str,
        updated: u64,
        expected_updated: u64,
    ) -> Result<(), StoreError> {
        let mode = PutMode::Replace { expected_updated };
        s.put(entity(collection, "guest", name, updated), mode)
            .await
    }

    /// The identity with key UUID `uuid`, its key `key-of-<uuid>`.
    fn identity(uuid: &str, subject: &str, namespace: &str) -> Identity {
        Identity {
            subject: subject.into(),
            namespace: namespace.into(),
            uuid: uuid.into(),
            key: format!("key-of-{uuid}"),
        }
    }

    /// An activation `n` of `name` in `namespace`, with a `path` annotation when given.
    fn activation(
        n: u64,
        namespace: &str,
        name: &str,
        path: Option<&str>,
        start: u64,
    ) -> Activation {
        let mut annotations = path.map_or_else(Default::default, support::path_annotation);
        annotations.set("kind", json!("nodejs:20"));
        Activation {
            name: name.into(),
            end: start + 5,
            duration: Some(5),
            logs: vec![format!("log of {n}")],
            annotations,
            ..support::activation(n, namespace, start)
        }
    }

    fn ids(list: &[Activation]) -> Vec<ActivationId> {
        list.iter().map(|a| a.activation_id.clone()).collect()
    }

    fn names(list: &[EntityDoc]) -> Vec<String> {
        list.iter()
            .map(|d| format!("{}/{}", d.path, d.name))
            .collect()
    }

    /// `path/name` of a list page of `collection` in `scope`.
    async fn listed(
        s: &impl Store,
        collection: Collection,
        scope: &ListScope,
        skip: usize,
        limit: usize,
    ) -> Vec<String> {
        names(
            &EntityStore::list(s, collection, scope, skip, limit)
                .await
                .unwrap(),
        )
    }

    async fn count(s: &impl Store, collection: Collection, scope: &ListScope) -> usize {
        EntityStore::count(s, collection, scope).await.unwrap()
    }

    async fn create_of_an_existing_name_conflicts_across_collections(s: &impl Store) {
        create(s, Collection::Actions, "guest", "hello", 1).await;
        let err = s
            .put(
                entity(Collection::Packages, "guest", "hello", 2),
                PutMode::Create,
            )
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            StoreError::Conflict {
                existing: Collection::Actions
            }
        ));
        // The same name under another path is a different document.
        create(s, Collection::Actions, "guest/pkg", "hello", 3).await;
        let got = EntityStore::get(s, "guest", "hello")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, entity(Collection::Actions, "guest", "hello", 1));
    }

    async fn replace_requires_the_updated_value_that_was_read(s: &impl Store) {
        let missing = replace(s, Collection::Actions, "a", 5, 1).await;
        assert!(matches!(missing, Err(StoreError::ConcurrentModification)));
        create(s, Collection::Actions, "guest", "a", 10).await;
        let stale = replace(s, Collection::Actions, "a", 20, 9).await;
        assert!(matches!(stale, Err(StoreError::ConcurrentModification)));
        replace(s, Collection::Actions, "a", 20, 10).await.unwrap();
        let got = EntityStore::get(s, "guest", "a").await.unwrap().unwrap();
        assert_eq!(got.updated, 20);
        let other_collection = replace(s, Collection::Triggers, "a", 30, 20).await;
        assert!(matches!(
            other_collection,
            Err(StoreError::Conflict {
                existing: Collection::Actions
            })
        ));
    }

    async fn namespace_scope_lists_packages_too_newest_first_ties_by_name(s: &impl Store) {
        for (path, name, updated) in [
            ("guest", "b", 5),
            ("guest", "a", 5),
            ("guest/pkg", "c", 9),
            ("guest", "old", 1),
            ("guest2", "other", 7),
            ("guest2/pkg", "other2", 8),
        ] {
            create(s, Collection::Actions, path, name, updated).await;
        }
        create(s, Collection::Rules, "guest", "rule", 99).await;
        let scope = ListScope::Namespace("guest".into());
        assert_eq!(
            listed(s, Collection::Actions, &scope, 0, 0).await,
            ["guest/pkg/c", "guest/a", "guest/b", "guest/old"]
        );
        assert_eq!(count(s, Collection::Actions, &scope).await, 4);
        assert_eq!(count(s, Collection::Rules, &scope).await, 1);
    }

    async fn path_scope_lists_exactly_one_path(s: &impl Store) {
        for (path, name) in [
            ("guest", "top"),
            ("guest/pkg", "in"),
            ("guest/pkg2", "next"),
            ("guest/pk_", "wild"),
        ] {
            create(s, Collection::Actions, path, name, 1).await;
        }
        let pkg = ListScope::Path("guest/pkg".into());
        assert_eq!(
            listed(s, Collection::Actions, &pkg, 0, 0).await,
            ["guest/pkg/in"]
        );
        let wild = ListScope::Path("guest/pk_".into());
        assert_eq!(count(s, Collection::Actions, &wild).await, 1);
    }

    async fn namespace_names_with_like_wildcards_match_literally(s: &impl Store) {
        for path in ["gu_st", "gu_st/pkg", "guXst", "guXst/pkg", "gu%"] {
            create(s, Collection::Actions, path, "a", 1).await;
        }
        let scope = ListScope::Namespace("gu_st".into());
        let mut got = listed(s, Collection::Actions, &scope, 0, 0).await;
        got.sort();
        assert_eq!(got, ["gu_st/a", "gu_st/pkg/a"]);
    }

    async fn skip_and_limit_page_the_list_while_count_ignores_them(s: &impl Store) {
        for i in 0..7u64 {
            create(s, Collection::Triggers, "guest", &format!("t{i}"), i).await;
        }
        let scope = ListScope::Namespace("guest".into());
        assert_eq!(
            listed(s, Collection::Triggers, &scope, 2, 3).await,
            ["guest/t4", "guest/t3", "guest/t2"]
        );
        assert_eq!(
            listed(s, Collection::Triggers, &scope, 5, 0).await,
            ["guest/t1", "guest/t0"]
        );
        assert_eq!(count(s, Collection::Triggers, &scope).await, 7);
    }

    async fn delete_returns_the_deleted_document_once(s: &impl Store) {
        let doc = entity(Collection::Packages, "guest", "pkg", 3);
        s.put(doc.clone(), PutMode::Create).await.unwrap();
        assert_eq!(s.delete("guest", "pkg").await.unwrap(), Some(doc));
        assert_eq!(s.delete("guest", "pkg").await.unwrap(), None);
        assert_eq!(EntityStore::get(s, "guest", "pkg").await.unwrap(), None);
        // The name is free again, in any collection.
        create(s, Collection::Actions, "guest", "pkg", 4).await;
    }

    async fn updated_is_the_stored_version_or_none(s: &impl Store) {
        assert_eq!(s.updated("guest", "a").await.unwrap(), None);
        create(s, Collection::Actions, "guest", "a", 5).await;
        assert_eq!(s.updated("guest", "a").await.unwrap(), Some(5));
        replace(s, Collection::Actions, "a", 9, 5).await.unwrap();
        assert_eq!(s.updated("guest", "a").await.unwrap(), Some(9));
        s.delete("guest", "a").await.unwrap();
        assert_eq!(s.updated("guest", "a").await.unwrap(), None);
    }

    async fn identities_are_found_by_uuid_and_by_subject(s: &impl Store) {
        s.put_identity(identity("u1", "alice", "alice"))
            .await
            .unwrap();
        s.put_identity(identity("u2", "alice", "shared"))
            .await
            .unwrap();
        s.put_identity(identity("u3", "bob", "bob")).await.unwrap();
        // Keys are stored hashed: the stored form verifies the secret but is not it.
        let stored = s.identity("u2").await.unwrap().unwrap();
        assert_ne!(stored.key, "key-of-u2");
        assert_eq!(
            verify_stored(&stored, "key-of-u2"),
            Some(identity("u2", "alice", "shared"))
        );
        assert_eq!(s.identity("nope").await.unwrap(), None);
        let alice = s.identities_of("alice").await.unwrap();
        assert_eq!(alice.len(), 2);
        assert!(alice.iter().all(|i| i.subject == "alice"));
        // Replacing by UUID moves the key.
        s.put_identity(identity("u2", "bob", "bob2")).await.unwrap();
        assert_eq!(s.identities_of("alice").await.unwrap().len(), 1);
        assert_eq!(s.identities_of("bob").await.unwrap().len(), 2);
    }

    async fn identities_are_listed_by_namespace_and_deleted_by_uuid(s: &impl Store) {
        s.put_identity(identity("u1", "bob", "team")).await.unwrap();
        s.put_identity(identity("u2", "alice", "team"))
            .await
            .unwrap();
        s.put_identity(identity("u3", "alice", "alice"))
            .await
            .unwrap();
        let team: Vec<String> = s
            .identities_in("team")
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.subject)
            .collect();
        assert_eq!(team, ["alice", "bob"]);
        let deleted = s.delete_identity("u2").await.unwrap().unwrap();
        assert_eq!(deleted.subject, "alice");
        assert_eq!(s.delete_identity("u2").await.unwrap(), None);
        assert_eq!(s.identity("u2").await.unwrap(), None);
        assert_eq!(s.identities_in("team").await.unwrap().len(), 1);
        assert_eq!(s.identities_of("alice").await.unwrap().len(), 1);
    }

    async fn namespace_limits_are_set_replaced_and_removed(s: &impl Store) {
        assert_eq!(s.namespace_limits("alice").await.unwrap(), None);
        let mut limits = NamespaceLimits {
            invocations_per_minute: Some(3),
            concurrent_invocations: None,
            fires_per_minute: Some(1),
        };
        s.put_namespace_limits("alice", Some(limits)).await.unwrap();
        assert_eq!(s.namespace_limits("alice").await.unwrap(), Some(limits));
        assert_eq!(s.namespace_limits("bob").await.unwrap(), None);
        limits.concurrent_invocations = Some(2);
        s.put_namespace_limits("alice", Some(limits)).await.unwrap();
        assert_eq!(s.namespace_limits("alice").await.unwrap(), Some(limits));
        s.put_namespace_limits("alice", None).await.unwrap();
        assert_eq!(s.namespace_limits("alice").await.unwrap(), None);
    }

    async fn activation_get_only_finds_records_of_the_asked_namespace(s: &impl Store) {
        let a = activation(1, "guest", "hello", Some("guest/hello"), 100);
        s.store(a.clone()).await.unwrap();
        s.flush().await.unwrap();
        assert_eq!(
            ActivationStore::get(s, "guest", &id(1)).await.unwrap(),
            Some(a)
        );
        assert_eq!(
            ActivationStore::get(s, "other", &id(1)).await.unwrap(),
            None
        );
        assert_eq!(
            ActivationStore::get(s, "guest", &id(2)).await.unwrap(),
            None
        );
        assert!(
            ActivationStore::list(s, &filter("other"))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            ActivationStore::count(s, &filter("other")).await.unwrap(),
            0
        );
    }

    async fn name_filter_matches_the_path_annotation_with_and_without_package(s: &impl Store) {
        s.store(activation(1, "guest", "hello", Some("guest/hello"), 10))
            .await
            .unwrap();
        s.store(activation(2, "guest", "hello", Some("guest/pkg/hello"), 20))
            .await
            .unwrap();
        s.store(activation(3, "guest", "hello", None, 30))
            .await
            .unwrap();
        // Invoked from guest, defined in a shared package of another namespace.
        s.store(activation(
            4,
            "guest",
            "echo",
            Some("whisk.system/utils/echo"),
            40,
        ))
        .await
        .unwrap();
        s.store(activation(5, "other", "hello", Some("other/hello"), 50))
            .await
            .unwrap();
        s.flush().await.unwrap();
        let named = |name: &str| ActivationFilter {
            name: Some(name.into()),
            ..filter("guest")
        };
        let plain = ActivationStore::list(s, &named("hello")).await.unwrap();
        assert_eq!(ids(&plain), [id(3), id(1)]);
        let packaged = ActivationStore::list(s, &named("pkg/hello")).await.unwrap();
        assert_eq!(ids(&packaged), [id(2)]);
        let shared = ActivationStore::list(s, &named("utils/echo"))
            .await
            .unwrap();
        assert_eq!(ids(&shared), [id(4)]);
        assert_eq!(ActivationStore::count(s, &named("hello")).await.unwrap(), 2);
        assert_eq!(ActivationStore::count(s, &named("nope")).await.unwrap(), 0);
    }

    async fn since_and_upto_bound_start_inclusively(s: &impl Store) {
        for (n, start) in [(1, 100), (2, 200), (3, 300), (4, 400)] {
            s.store(activation(n, "guest", "a", Some("guest/a"), start))
                .await
                .unwrap();
        }
        s.flush().await.unwrap();
        let f = ActivationFilter {
            since: Some(200),
            upto: Some(300),
            ..filter("guest")
        };
        assert_eq!(
            ids(&ActivationStore::list(s, &f).await.unwrap()),
            [id(3), id(2)]
        );
        assert_eq!(ActivationStore::count(s, &f).await.unwrap(), 2);
        let since = ActivationFilter {
            since: Some(301),
            ..filter("guest")
        };
        assert_eq!(
            ids(&ActivationStore::list(s, &since).await.unwrap()),
            [id(4)]
        );
    }

    async fn activations_list_newest_first_with_skip_and_limit(s: &impl Store) {
        // Half committed, half still queued: the page must merge both.
        for n in 1..=4u64 {
            s.store(activation(n, "guest", "a", Some("guest/a"), n * 10))
                .await
                .unwrap();
        }
        s.flush().await.unwrap();
        for n in 5..=8u64 {
            s.store(activation(n, "guest", "a", Some("guest/a"), n * 10))
                .await
                .unwrap();
        }
        let f = ActivationFilter {
            skip: 2,
            limit: 3,
            ..filter("guest")
        };
        assert_eq!(
            ids(&ActivationStore::list(s, &f).await.unwrap()),
            [id(6), id(5), id(4)]
        );
        let all = ActivationStore::list(s, &filter("guest")).await.unwrap();
        assert_eq!(all.len(), 8, "limit 0 is no limit at store level");
        assert_eq!(all[0].activation_id, id(8));
        assert_eq!(ActivationStore::count(s, &f).await.unwrap(), 8);
    }

    async fn stored_records_are_readable_before_and_after_flush(s: &impl Store) {
        let a = activation(7, "guest", "a", Some("guest/a"), 70);
        s.store(a.clone()).await.unwrap();
        for flushed in [false, true] {
            if flushed {
                s.flush().await.unwrap();
            }
            assert_eq!(
                ActivationStore::get(s, "guest", &id(7)).await.unwrap(),
                Some(a.clone()),
                "flushed: {flushed}"
            );
            assert_eq!(
                ActivationStore::count(s, &filter("guest")).await.unwrap(),
                1
            );
            assert_eq!(
                ActivationStore::list(s, &filter("guest")).await.unwrap(),
                std::slice::from_ref(&a)
            );
        }
    }

    macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&MemoryStore::new()).await;
                }
            )*
        }
        mod sqlite_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let store =
                        SqliteStore::open(&dir.path().join("store.db"), &gathering_writer_config())
                            .unwrap();
                    super::$case(&store).await;
                }
            )*
        }
        mod postgres_store {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(store) =
                        support::postgres_store(&gathering_writer_config()).await
                    else {
                        return;
                    };
                    super::$case(&store).await;
                }
            )*
        }
    };
}

    suite!(
        create_of_an_existing_name_conflicts_across_collections,
        replace_requires_the_updated_value_that_was_read,
        namespace_scope_lists_packages_too_newest_first_ties_by_name,
        path_scope_lists_exactly_one_path,
        namespace_names_with_like_wildcards_match_literally,
        skip_and_limit_page_the_list_while_count_ignores_them,
        delete_returns_the_deleted_document_once,
        updated_is_the_stored_version_or_none,
        identities_are_found_by_uuid_and_by_subject,
        identities_are_listed_by_namespace_and_deleted_by_uuid,
        namespace_limits_are_set_replaced_and_removed,
        activation_get_only_finds_records_of_the_asked_namespace,
        name_filter_matches_the_path_annotation_with_and_without_package,
        since_and_upto_bound_start_inclusively,
        activations_list_newest_first_with_skip_and_limit,
        stored_records_are_readable_before_and_after_flush,
    );
}
