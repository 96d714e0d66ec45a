//! End-to-end upgrades and backups (`docs/upgrades.md`): today's server started on a store
//! written by edgewhisk 0.1.0 (`crates/store/tests/fixtures/`) migrates it and serves
//! everything in it; a store with a newer schema stops the server; `edgewhisk admin backup`
//! copies a store while the server serves an invocation load, and `admin restore` brings that
//! copy back into another data directory; broken backups and bad targets fail clearly.

mod support;

#[cfg(test)]
mod upgrade {
    use crate::support::admin::{Auth, admin, admin_output, namespace_url, send_as};
    use crate::support::api::{create_hello, http, invoke, send};
    use crate::support::{ServerGuard, TEST_DEFAULTS, repo_path, spawn_server};
    use edgewhisk_store::sqlite::backup;
    use edgewhisk_store::sqlite::schema::SCHEMA_VERSION;
    use reqwest::StatusCode;
    use serde_json::{Value, json};
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// The fixture's records are dated when it was made: retention by age stays off.
    fn config() -> String {
        format!("{TEST_DEFAULTS}\n[store]\nactivation_max_age_secs = 0\n")
    }

    fn fixture(name: &str) -> PathBuf {
        repo_path(&format!("crates/store/tests/fixtures/{name}"))
    }

    /// The key of `namespace` in a fixture's `.auth` file.
    fn fixture_key(auth_file: &str, namespace: &str) -> Auth {
        let text = std::fs::read_to_string(fixture(auth_file)).expect("read the fixture keys");
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{namespace} ")))
            .expect("the namespace's key");
        Auth::parse(line)
    }

    /// The store's file and SQLite's files beside it, in `data_dir`.
    fn db_files(data_dir: &Path) -> [PathBuf; 3] {
        ["edgewhisk.db", "edgewhisk.db-wal", "edgewhisk.db-shm"].map(|f| data_dir.join(f))
    }

    /// Stops `s`, puts the fixture `name` in place of its store, and starts it again.
    fn serve_fixture(s: &mut ServerGuard, name: &str) {
        s.stop();
        for file in db_files(&s.data_dir()) {
            let _ = std::fs::remove_file(file);
        }
        std::fs::copy(fixture(name), s.data_dir().join("edgewhisk.db")).expect("copy fixture");
        s.restart();
    }

    async fn get(s: &ServerGuard, rest: &str) -> Value {
        let reply = send(http().get(s.ns_url(rest))).await;
        reply.expect_status(200, &format!("GET {rest}"));
        reply.body
    }

    fn names(list: &Value) -> BTreeSet<String> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|e| e["name"].as_str().expect("a name").to_owned())
            .collect()
    }

    #[tokio::test]
    async fn the_server_upgrades_a_store_of_0_1_0_and_serves_everything_in_it() {
        let mut s = spawn_server(Some(&config()));
        serve_fixture(&mut s, "store-0.1.0.db");
        let log = s.log_tail();
        assert!(log.contains("stamped as schema version 1"), "{log}");
        let applied = log.matches("applied store migration").count();

        let actions = names(&get(&s, "actions?limit=0").await);
        for name in ["pyhello", "zipped", "failing", "webhello", "greet-seq"] {
            assert!(actions.contains(name), "{name} in {actions:?}");
        }
        let packages = names(&get(&s, "packages").await);
        assert_eq!(
            packages,
            BTreeSet::from(["demo".into(), "demo-bound".into()])
        );
        let demo = get(&s, "packages/demo").await;
        assert!(
            demo["parameters"].to_string().contains("greeting"),
            "{demo}"
        );
        let bound = get(&s, "packages/demo-bound").await;
        assert_eq!(bound["binding"]["name"], "demo", "{bound}");
        assert_eq!(get(&s, "triggers/tick").await["name"], "tick");
        assert_eq!(get(&s, "rules/tick-rule").await["status"], "active");
        assert_eq!(
            get(&s, "actions/greet-seq").await["exec"]["kind"],
            "sequence"
        );

        // Its actions run: one in a package (with the package's parameters), a zipped one, a
        // web action.
        let reply = invoke(&s, "demo/hello", "blocking=true&result=true", json!({})).await;
        reply.expect_status(200, "invoke demo/hello");
        assert_eq!(reply.body, json!({"payload": "Hello, Default!"}));
        let reply = invoke(
            &s,
            "zipped",
            "blocking=true&result=true",
            json!({"value": 7}),
        )
        .await;
        reply.expect_status(200, "invoke zipped");
        assert_eq!(reply.body, json!({"zipped": true, "echo": 7}));
        let web = http()
            .get(s.url("/api/v1/web/guest/default/webhello.http?who=upgrade"))
            .send()
            .await
            .expect("web request");
        assert_eq!(web.status(), StatusCode::OK);
        assert_eq!(web.text().await.expect("web body"), "web upgrade");

        // Old activation records read as before, the failed one too.
        let failed = get(&s, "activations?name=failing").await;
        let id = failed[0]["activationId"]
            .as_str()
            .expect("an old activation id");
        let record = get(&s, &format!("activations/{id}")).await;
        assert_eq!(record["response"]["success"], false, "{record}");
        assert_eq!(record["response"]["status"], "action developer error");

        // The second namespace: its regenerated key, its limits, its action and record.
        let tenant = fixture_key("store-0.1.0.auth", "fixture-ns");
        let list = send_as(&tenant, http().get(namespace_url(&s, "_", "actions"))).await;
        list.expect_status(200, "the tenant lists its actions");
        assert_eq!(names(&list.body), BTreeSet::from(["own".into()]));
        let records = send_as(&tenant, http().get(namespace_url(&s, "_", "activations"))).await;
        records.expect_status(200, "the tenant lists its activations");
        assert_eq!(records.body[0]["name"], "own", "{}", records.text);
        let run = send_as(
            &tenant,
            http()
                .post(namespace_url(
                    &s,
                    "_",
                    "actions/own?blocking=true&result=true",
                ))
                .json(&json!({"name": "again"})),
        )
        .await;
        run.expect_status(200, "the tenant invokes its action");
        assert_eq!(run.body, json!({"payload": "Hello, again!"}));
        let limits: Value =
            serde_json::from_str(&admin(&s, &["limits", "get", "fixture-ns"])).expect("json");
        assert_eq!(
            limits,
            json!({"invocationsPerMinute": 77, "concurrentInvocations": 7, "firesPerMinute": 17})
        );

        // A restart finds the store at the newest version: nothing more is applied.
        s.restart();
        let log = s.log_tail();
        assert_eq!(
            log.matches("applied store migration").count(),
            applied,
            "{log}"
        );
        get(&s, "actions/pyhello").await;
    }

    /// Runs `edgewhisk serve` on `data_dir`, expecting it to refuse to start: its exit status
    /// and stderr. Panics (killing it) if it still runs after 30 s.
    async fn serve_until_it_exits(data_dir: &Path) -> (std::process::ExitStatus, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgewhisk"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("EW_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edgewhisk serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server started on {}", data_dir.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
            .expect("read stderr");
        (status, stderr)
    }

    #[tokio::test]
    async fn a_store_with_a_newer_schema_stops_the_server_with_both_versions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let db = data.join("edgewhisk.db");
        std::fs::copy(fixture("store-0.1.0.db"), &db).expect("copy fixture");
        // `PRAGMA user_version` is the big-endian u32 at offset 60 of the file's header.
        let mut bytes = std::fs::read(&db).expect("read");
        let newer = SCHEMA_VERSION + 7;
        bytes[60..64].copy_from_slice(&newer.to_be_bytes());
        std::fs::write(&db, &bytes).expect("write");

        let (status, stderr) = serve_until_it_exits(&data).await;
        assert!(!status.success(), "{status}: {stderr}");
        assert!(stderr.contains(&format!("version {newer}")), "{stderr}");
        assert!(
            stderr.contains(&format!("newer than version {SCHEMA_VERSION}")),
            "{stderr}"
        );
        assert!(
            std::fs::read(&db).expect("read") == bytes,
            "the store is untouched"
        );
    }

    /// What the load acknowledged, and when.
    #[derive(Default)]
    struct Acked {
        /// Activation ids of blocking invokes answered 200 (committed before the answer).
        records: Vec<(String, Instant)>,
        /// Triggers created (answered 200).
        triggers: Vec<(String, Instant)>,
        /// Non-blocking invokes answered 202.
        accepted: usize,
    }

    /// Blocking and non-blocking invokes of hello, and trigger creations, until `stop`.
    async fn load(s: &ServerGuard, stop: Arc<AtomicBool>) -> Acked {
        let base = s.base().to_owned();
        let mut tasks = Vec::new();
        for client in 0..4 {
            let (base, stop) = (base.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut acked = Acked::default();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    match client {
                        0 | 1 => {
                            let r =
                                invoke(base.as_str(), "hello", "blocking=true", json!({})).await;
                            if r.status == StatusCode::OK {
                                let id = r.body["activationId"].as_str().expect("an id");
                                acked.records.push((id.to_owned(), Instant::now()));
                            }
                        }
                        2 => {
                            let r = invoke(base.as_str(), "hello", "", json!({})).await;
                            if r.status == StatusCode::ACCEPTED {
                                acked.accepted += 1;
                            }
                            // Paced, so that the blocking invokes are not queued behind a
                            // backlog.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        _ => {
                            let name = format!("t{n}");
                            let url = format!("{base}/api/v1/namespaces/_/triggers/{name}");
                            let r = send(http().put(url).json(&json!({}))).await;
                            if r.status == StatusCode::OK {
                                acked.triggers.push((name, Instant::now()));
                            }
                        }
                    }
                }
                acked
            }));
        }
        let mut all = Acked::default();
        for task in tasks {
            let acked = task.await.expect("a load task");
            all.records.extend(acked.records);
            all.triggers.extend(acked.triggers);
            all.accepted += acked.accepted;
        }
        all
    }

    #[tokio::test]
    async fn a_backup_taken_under_load_restores_everything_acknowledged_before_it() {
        let s = spawn_server(Some(&config()));
        create_hello(&s).await;
        invoke(&s, "hello", "blocking=true", json!({}))
            .await
            .expect_status(200, "a first, cold invoke");
        let keep = tempfile::tempdir().expect("tempdir");
        let backup_file = keep.path().join("backup.db");

        let stop = Arc::new(AtomicBool::new(false));
        let running = {
            let s_ref: &ServerGuard = &s;
            // The load runs on this task's runtime while the backup runs on a thread.
            let load = load(s_ref, stop.clone());
            let backup = async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let started = Instant::now();
                let out = {
                    let (bin, data, file) = (
                        env!("CARGO_BIN_EXE_edgewhisk"),
                        s_ref.data_dir(),
                        backup_file.clone(),
                    );
                    tokio::task::spawn_blocking(move || {
                        Command::new(bin)
                            .args(["admin", "backup"])
                            .arg(&file)
                            .arg("--data-dir")
                            .arg(&data)
                            .env_remove("EW_CONFIG")
                            .output()
                            .expect("run admin backup")
                    })
                    .await
                    .expect("the backup thread")
                };
                let took = started.elapsed();
                tokio::time::sleep(Duration::from_secs(2)).await;
                stop.store(true, Ordering::Relaxed);
                (started, took, out)
            };
            tokio::join!(load, backup)
        };
        let (acked, (started, took, out)) = running;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "admin backup under load failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "backup under load took {took:?}: {stdout}; load acknowledged {} blocking records, \
             {} non-blocking invokes, {} triggers",
            acked.records.len(),
            acked.accepted,
            acked.triggers.len()
        );
        let before = |at: &Instant| *at < started;
        let records: Vec<&String> = acked
            .records
            .iter()
            .filter(|(_, at)| before(at))
            .map(|(id, _)| id)
            .collect();
        let triggers: Vec<&String> = acked
            .triggers
            .iter()
            .filter(|(_, at)| before(at))
            .map(|(name, _)| name)
            .collect();
        assert!(records.len() > 10, "the load ran before the backup");
        assert!(
            !triggers.is_empty(),
            "triggers were created before the backup"
        );
        let mut wal = backup_file.clone().into_os_string();
        wal.push("-wal");
        assert!(
            !Path::new(&wal).exists(),
            "the backup is one self-contained file"
        );
        let summary = backup::inspect(&backup_file).expect("the backup is intact");
        assert_eq!(summary.schema_version, SCHEMA_VERSION);
        drop(s);

        // Restored over the store of another server: refused while it runs, done once stopped.
        let mut other = spawn_server(Some(&config()));
        let refused = admin_output(&other, &["restore", backup_file.to_str().expect("utf-8")]);
        assert!(!refused.status.success());
        let message = String::from_utf8_lossy(&refused.stderr);
        assert!(message.contains("stop it first"), "{message}");
        // Nor does a second server start on a data directory a server holds.
        let (status, message) = serve_until_it_exits(&other.data_dir()).await;
        assert!(!status.success());
        assert!(message.contains("another edgewhisk serve"), "{message}");
        other.stop();
        let restored = admin(&other, &["restore", backup_file.to_str().expect("utf-8")]);
        assert!(restored.contains("restored"), "{restored}");
        other.restart();
        for name in &triggers {
            get(&other, &format!("triggers/{name}")).await;
        }
        get(&other, "actions/hello").await;
        for id in &records {
            let record = get(&other, &format!("activations/{id}")).await;
            assert_eq!(record["response"]["success"], true, "{record}");
        }
        eprintln!(
            "restored: {} triggers and {} blocking records acknowledged before the backup, all \
             present",
            triggers.len(),
            records.len()
        );
    }

    #[tokio::test]
    async fn bad_targets_and_broken_backups_fail_clearly_and_leave_the_store_untouched() {
        let mut s = spawn_server(Some(&config()));
        create_hello(&s).await;
        let dir = s.dir().to_owned();

        let missing = dir.join("no/such/dir/backup.db");
        let not_a_dir = dir.join("config.toml/backup.db");
        for target in [&missing, &not_a_dir] {
            let out = admin_output(&s, &["backup", target.to_str().expect("utf-8")]);
            assert!(!out.status.success());
            let message = String::from_utf8_lossy(&out.stderr);
            assert!(message.contains(&target.display().to_string()), "{message}");
        }
        let out = admin_output(&s, &["backup", "x.db", "--postgres", "postgres://db/ew"]);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));

        let good = dir.join("good.db");
        admin(&s, &["backup", good.to_str().expect("utf-8")]);
        s.stop();
        let store = s.data_dir().join("edgewhisk.db");
        let before = std::fs::read(&store).expect("read the store");
        let text = dir.join("notes.txt");
        std::fs::write(&text, "not a database\n".repeat(300)).expect("write");
        let truncated = dir.join("truncated.db");
        let bytes = std::fs::read(&good).expect("read the backup");
        std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
        for (file, expect) in [(&text, "not a database"), (&truncated, "malformed")] {
            let out = admin_output(&s, &["restore", file.to_str().expect("utf-8")]);
            assert!(!out.status.success());
            let message = String::from_utf8_lossy(&out.stderr);
            assert!(message.contains(expect), "{message}");
            assert!(message.contains(&file.display().to_string()), "{message}");
        }
        assert!(
            std::fs::read(&store).expect("read") == before,
            "the store is untouched"
        );
        s.restart();
        get(&s, "actions/hello").await;
    }
}
