//! Upgrades from stores written by earlier releases (`tests/fixtures/README.md`): today's
//! store opens each fixture, migrates it to the newest schema, and reads every entity, key,
//! limit and activation record in it. And the backup and restore of a store
//! (`edgewhisk_store::sqlite::backup`): what they copy, and what they refuse.

#[cfg(test)]
mod support;

#[cfg(test)]
mod upgrade {
    use crate::support::filter;
    use edgewhisk_entity::identity::verify_stored;
    use edgewhisk_entity::{ActivationId, Status};
    use edgewhisk_store::sqlite::backup::{self, BackupError};
    use edgewhisk_store::sqlite::schema::SCHEMA_VERSION;
    use edgewhisk_store::{
        ActivationStore, Collection, EntityStore, ListScope, SqliteStore, StoreConfig, StoreError,
    };
    use std::path::{Path, PathBuf};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// `(namespace, uuid, key)` of each key in a fixture's `.auth` file.
    fn fixture_keys(name: &str) -> Vec<(String, String, String)> {
        std::fs::read_to_string(fixture(name))
            .unwrap()
            .lines()
            .map(|line| {
                let (ns, auth) = line.split_once(' ').unwrap();
                let (uuid, key) = auth.split_once(':').unwrap();
                (ns.to_owned(), uuid.to_owned(), key.to_owned())
            })
            .collect()
    }

    /// `err` and its sources, as `anyhow` prints them.
    fn chain(err: &dyn std::error::Error) -> String {
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(e) = source {
            text.push_str(&format!(": {e}"));
            source = e.source();
        }
        text
    }

    /// The fixture's records are dated when it was made: retention by age stays off.
    fn config() -> StoreConfig {
        StoreConfig {
            activation_max_age_secs: 0,
            ..StoreConfig::default()
        }
    }

    /// A copy of fixture `name` as a data directory's `edgewhisk.db`.
    fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("edgewhisk.db");
        std::fs::copy(fixture(name), &db).unwrap();
        (dir, db)
    }

    fn user_version(db: &Path) -> u32 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap()
    }

    async fn names(store: &SqliteStore, collection: Collection, ns: &str) -> Vec<String> {
        let scope = ListScope::Namespace(ns.to_owned());
        let mut names: Vec<String> = EntityStore::list(store, collection, &scope, 0, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|d| {
                if d.path == ns {
                    d.name
                } else {
                    format!("{}/{}", &d.path[ns.len() + 1..], d.name)
                }
            })
            .collect();
        names.sort();
        names
    }

    /// Everything the 0.1.0 fixture holds, read through today's store.
    async fn check_0_1_0(store: &SqliteStore) {
        assert_eq!(
            names(store, Collection::Actions, "guest").await,
            [
                "demo/hello",
                "failing",
                "greet-seq",
                "pyhello",
                "webhello",
                "zipped"
            ]
        );
        assert_eq!(
            names(store, Collection::Packages, "guest").await,
            ["demo", "demo-bound"]
        );
        assert_eq!(names(store, Collection::Triggers, "guest").await, ["tick"]);
        assert_eq!(
            names(store, Collection::Rules, "guest").await,
            ["tick-rule"]
        );
        assert_eq!(
            names(store, Collection::Actions, "fixture-ns").await,
            ["own"]
        );

        let demo = EntityStore::get(store, "guest", "demo")
            .await
            .unwrap()
            .unwrap();
        assert!(
            demo.doc["parameters"].to_string().contains("greeting"),
            "{}",
            demo.doc
        );
        let bound = EntityStore::get(store, "guest", "demo-bound")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bound.doc["binding"]["name"], "demo", "{}", bound.doc);
        let seq = EntityStore::get(store, "guest", "greet-seq")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seq.doc["exec"]["kind"], "sequence", "{}", seq.doc);
        let zipped = EntityStore::get(store, "guest", "zipped")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(zipped.doc["exec"]["binary"], true, "{}", zipped.doc);
        let web = EntityStore::get(store, "guest", "webhello")
            .await
            .unwrap()
            .unwrap();
        assert!(
            web.doc["annotations"].to_string().contains("web-export"),
            "{}",
            web.doc
        );
        let rule = EntityStore::get(store, "guest", "tick-rule")
            .await
            .unwrap()
            .unwrap();
        assert!(
            rule.doc["action"].to_string().contains("hello"),
            "{}",
            rule.doc
        );

        for (ns, uuid, key) in fixture_keys("store-0.1.0.auth") {
            let stored = store.identity(&uuid).await.unwrap().unwrap();
            assert_eq!(stored.namespace, ns);
            assert!(
                verify_stored(&stored, &key).is_some(),
                "the key of {ns} verifies"
            );
        }
        assert_eq!(store.identities_in("whisk.system").await.unwrap().len(), 1);
        let limits = store.namespace_limits("fixture-ns").await.unwrap().unwrap();
        assert_eq!(limits.invocations_per_minute, Some(77));
        assert_eq!(limits.concurrent_invocations, Some(7));
        assert_eq!(limits.fires_per_minute, Some(17));

        let guest = ActivationStore::list(store, &filter("guest"))
            .await
            .unwrap();
        assert_eq!(guest.len(), 11);
        let failed: Vec<_> = guest
            .iter()
            .filter(|a| a.response.status != Status::Success)
            .collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].name, "failing");
        let id: &ActivationId = &failed[0].activation_id;
        let again = ActivationStore::get(store, "guest", id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&again, failed[0]);
        let own = ActivationStore::list(store, &filter("fixture-ns"))
            .await
            .unwrap();
        assert_eq!(own.len(), 1);
        assert_eq!(own[0].name, "own");
    }

    #[tokio::test]
    async fn a_store_of_0_1_0_is_migrated_and_everything_in_it_readable() {
        let (_dir, db) = copy_fixture("store-0.1.0.db");
        assert_eq!(user_version(&db), 0, "0.1.0 did not version its schema");
        let store = SqliteStore::open(&db, &config()).unwrap();
        check_0_1_0(&store).await;
        store.close().await.unwrap();
        drop(store);
        assert_eq!(user_version(&db), SCHEMA_VERSION);
        // Reopening applies nothing more and changes nothing.
        let store = SqliteStore::open(&db, &config()).unwrap();
        check_0_1_0(&store).await;
        let summary = backup::inspect(&fixture("store-0.1.0.db")).unwrap();
        assert_eq!(summary.schema_version, 0);
        assert_eq!(summary.activations, 12);
    }

    #[tokio::test]
    async fn a_store_with_a_newer_schema_is_refused_naming_both_versions() {
        let (_dir, db) = copy_fixture("store-0.1.0.db");
        let newer = SCHEMA_VERSION + 1;
        rusqlite::Connection::open(&db)
            .unwrap()
            .pragma_update(None, "user_version", newer)
            .unwrap();
        let err = SqliteStore::open(&db, &config()).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found, known }
                if found == newer && known == SCHEMA_VERSION),
            "{err}"
        );
        let message = err.to_string();
        assert!(message.contains(&format!("version {newer}")), "{message}");
        assert!(
            message.contains(&format!("version {SCHEMA_VERSION}")),
            "{message}"
        );
        assert_eq!(user_version(&db), newer, "a refused store is left as it is");
    }

    #[tokio::test]
    async fn a_backup_restores_into_an_empty_or_an_existing_store() {
        let (dir, db) = copy_fixture("store-0.1.0.db");
        let store = SqliteStore::open(&db, &config()).unwrap();
        let copy = dir.path().join("backup.db");
        let made = backup::backup(&db, &copy).unwrap();
        assert_eq!(made.schema_version, SCHEMA_VERSION);
        assert_eq!((made.actions, made.keys, made.activations), (19, 3, 12));
        assert!(made.last_opened_by.is_some());
        assert_eq!(backup::inspect(&copy).unwrap(), made);
        let mut wal = copy.clone().into_os_string();
        wal.push("-wal");
        assert!(!Path::new(&wal).exists(), "the backup is one file");
        store.close().await.unwrap();
        drop(store);

        // Into a fresh data directory.
        let fresh = tempfile::tempdir().unwrap();
        let restored_db = fresh.path().join("edgewhisk.db");
        assert_eq!(backup::restore(&copy, &restored_db).unwrap(), made);
        let store = SqliteStore::open(&restored_db, &config()).unwrap();
        check_0_1_0(&store).await;
        store.close().await.unwrap();

        // Over a store that changed since: the backup's contents replace it.
        let store = SqliteStore::open(&db, &config()).unwrap();
        store.delete("guest", "pyhello").await.unwrap();
        store.close().await.unwrap();
        drop(store);
        assert_eq!(backup::restore(&copy, &db).unwrap(), made);
        let store = SqliteStore::open(&db, &config()).unwrap();
        check_0_1_0(&store).await;
    }

    #[test]
    fn restore_refuses_a_broken_backup_and_leaves_the_store_untouched() {
        let (dir, db) = copy_fixture("store-0.1.0.db");
        let before = std::fs::read(&db).unwrap();
        let not_sqlite = dir.path().join("notes.txt");
        std::fs::write(
            &not_sqlite,
            "not a database at all, just some text\n".repeat(200),
        )
        .unwrap();
        let truncated = dir.path().join("truncated.db");
        std::fs::write(&truncated, &before[..before.len() / 2]).unwrap();
        let other = dir.path().join("other.db");
        rusqlite::Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let newer = dir.path().join("newer.db");
        std::fs::copy(&db, &newer).unwrap();
        rusqlite::Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        for (file, expect) in [
            (&not_sqlite, "not a database"),
            (&truncated, "malformed"),
            (&other, "no table 'entities'"),
            (&newer, "newer than version"),
            (&dir.path().join("missing.db"), "No such file"),
        ] {
            let err = backup::restore(file, &db).unwrap_err();
            let message = chain(&err);
            assert!(message.contains(expect), "{}: {message}", file.display());
            if !matches!(err, BackupError::Store(_) | BackupError::Io { .. }) {
                assert!(message.contains(&file.display().to_string()), "{message}");
            }
        }
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "the store is untouched"
        );
    }

    #[test]
    fn a_backup_of_a_large_store_finishes_under_continuous_writes_from_another_connection() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("edgewhisk.db");
        drop(SqliteStore::open(&db, &config()).unwrap());
        let doc = "x".repeat(4000);
        let insert = "INSERT INTO activations (id, namespace, name, match_name, start, doc) \
                      VALUES (?1, 'guest', 'a', 'a', ?1, ?2)";
        {
            // About 24 MB: some 6,000 pages, so the copy takes many steps.
            let mut conn = rusqlite::Connection::open(&db).unwrap();
            let tx = conn.transaction().unwrap();
            for n in 0..6000_i64 {
                tx.execute(insert, rusqlite::params![n, doc]).unwrap();
            }
            tx.commit().unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let writer = {
            let (db, stop, written, doc) = (db.clone(), stop.clone(), written.clone(), doc.clone());
            std::thread::spawn(move || {
                let conn = rusqlite::Connection::open(&db).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(5))
                    .unwrap();
                let mut n = 1_000_000_i64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    conn.execute(insert, rusqlite::params![n, doc]).unwrap();
                    written.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        while written.load(Ordering::Relaxed) < 3 {
            std::thread::yield_now();
        }
        let started = std::time::Instant::now();
        let copy = dir.path().join("backup.db");
        let made = backup::backup(&db, &copy).unwrap();
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        let during = written.load(Ordering::Relaxed);
        eprintln!(
            "backup of {} bytes took {took:?} while another connection committed {during} rows",
            made.bytes
        );
        assert!(made.activations >= 6000, "{made}");
        assert!(during > 0, "the writer wrote meanwhile");
        assert_eq!(backup::inspect(&copy).unwrap(), made);
    }

    #[test]
    fn backup_to_a_missing_directory_or_over_the_store_fails() {
        let (dir, db) = copy_fixture("store-0.1.0.db");
        let err = backup::backup(&db, &dir.path().join("no/such/dir/b.db")).unwrap_err();
        assert!(chain(&err).contains("No such file"), "{err}");
        let err = backup::backup(&db, &db).unwrap_err();
        assert!(matches!(err, BackupError::TargetIsStore(_)), "{err}");
        let err =
            backup::backup(&dir.path().join("none.db"), &dir.path().join("b.db")).unwrap_err();
        assert!(matches!(err, BackupError::NotAStore { .. }), "{err}");
        assert!(!dir.path().join("none.db").exists(), "nothing was created");
    }
}
