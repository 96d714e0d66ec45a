//! A full disk end to end (issue 9, item 4): the real binary with its data directory on a
//! 20 MiB tmpfs that the test fills. Writes must get a clear OpenWhisk-shaped 507, no
//! acknowledged write may be lost, reads keep working, and the server recovers by itself once
//! space returns.
//!
//! Mounting needs root: without it each test prints `skipped: <why>` and returns.

mod support;

#[cfg(test)]
mod disk {
    use crate::support::api::{
        HELLO_NAME, create_action, create_hello, http, invoke, invoke_blocking, put_action, send,
    };
    use crate::support::tmpfs::Tmpfs;
    use crate::support::{ServerGuard, ServerOptions, TEST_DEFAULTS, spawn_server_with};
    use serde_json::{Value, json};
    use std::path::Path;
    use std::process::Command;
    use std::time::{Duration, Instant};

    /// Size of the data directory's file system, MiB.
    const DISK_MB: u64 = 20;

    /// How long the server may take to accept writes again once space returned.
    const RECOVERY: Duration = Duration::from_secs(10);

    /// Starts a server with `isolation`, then moves its data directory onto a fresh tmpfs of
    /// [`DISK_MB`] and restarts it there. `None` (after printing why) when this process may not
    /// mount.
    fn server_on_small_disk(min_free_bytes: u64, isolation: &str) -> Option<(ServerGuard, Tmpfs)> {
        let config = format!(
            "{TEST_DEFAULTS}\n[store]\nmin_free_bytes = {min_free_bytes}\nfree_space_check_interval_ms = 100\n"
        );
        let mut s = spawn_server_with(ServerOptions {
            config_toml: Some(&config),
            extra_args: &["--isolation", isolation],
            temp_parent: Some(Path::new(env!("CARGO_TARGET_TMPDIR"))),
            ..ServerOptions::default()
        });
        s.stop();
        let data = s.data_dir();
        let moved = s.dir().join("data-first-start");
        std::fs::rename(&data, &moved).expect("move the data directory aside");
        let disk = match Tmpfs::mount(&data, DISK_MB) {
            Ok(disk) => disk,
            Err(why) => {
                eprintln!("skipped: {why}");
                return None;
            }
        };
        let copied = Command::new("cp")
            .arg("-a")
            .arg(moved.join("."))
            .arg(&data)
            .status()
            .expect("run cp");
        assert!(copied.success(), "copy the data directory onto the tmpfs");
        s.restart();
        Some((s, disk))
    }

    /// The activation id of a 200 invoke answer.
    fn activation_id(reply: &crate::support::api::Reply) -> String {
        reply.body["activationId"]
            .as_str()
            .expect("activation id in the answer")
            .to_owned()
    }

    /// Panics unless `reply` is a 507 with the OpenWhisk error shape and a message about storage.
    fn expect_full(reply: &crate::support::api::Reply, what: &str) {
        reply.expect_status(507, what);
        let message = reply.expect_error_body(what);
        assert!(
            message.contains("storage"),
            "{what}: the message says the store is full: {message}"
        );
    }

    /// Asserts that every id in `ids` can be read back.
    async fn expect_records(s: &ServerGuard, ids: &[String], when: &str) {
        for id in ids {
            let reply = send(http().get(s.ns_url(&format!("activations/{id}")))).await;
            reply.expect_status(200, &format!("acknowledged record {id} {when}"));
        }
    }

    /// Retries `PUT` and a blocking invoke until both answer 200, within [`RECOVERY`]; returns the
    /// id of the invoke.
    async fn wait_for_recovery(s: &ServerGuard) -> String {
        let deadline = Instant::now() + RECOVERY;
        loop {
            let put = put_action(
                s,
                "after",
                json!({"exec": {"kind": "nodejs:20", "code": "function main() { return {}; }"}}),
            )
            .await;
            if put.status.as_u16() == 200 {
                let reply = invoke_blocking(s, HELLO_NAME, json!({"name": "back"})).await;
                if reply.status.as_u16() == 200 {
                    return activation_id(&reply);
                }
            }
            assert!(
                Instant::now() < deadline,
                "writes still refused {RECOVERY:?} after space returned: PUT {}: {}",
                put.status,
                put.text
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn below_the_free_space_floor_writes_and_invokes_get_507_reads_work_and_it_recovers() {
        const FLOOR: u64 = 8 * 1024 * 1024;
        let Some((s, disk)) = server_on_small_disk(FLOOR, "process") else {
            return;
        };
        create_hello(&s).await;
        let before = invoke_blocking(&s, HELLO_NAME, json!({"name": "before"})).await;
        before.expect_status(200, "invoke with room");
        let before_id = activation_id(&before);

        let ballast = disk.path().join("ballast");
        let leave = 4 * 1024 * 1024;
        disk.fill(&ballast, disk.free_bytes().saturating_sub(leave));
        // Past the server's measuring interval.
        tokio::time::sleep(Duration::from_millis(300)).await;

        let code = json!({"exec": {"kind": "nodejs:20", "code": "function main() { return {}; }"}});
        expect_full(
            &put_action(&s, "refused", code).await,
            "PUT below the floor",
        );
        expect_full(
            &invoke_blocking(&s, HELLO_NAME, json!({})).await,
            "blocking invoke below the floor",
        );
        expect_full(
            &invoke(&s, HELLO_NAME, "", json!({})).await,
            "non-blocking invoke below the floor",
        );
        send(http().get(s.ns_url(&format!("actions/{HELLO_NAME}"))))
            .await
            .expect_status(200, "GET action below the floor");
        send(http().get(s.ns_url("activations")))
            .await
            .expect_status(200, "list activations below the floor");
        expect_records(&s, std::slice::from_ref(&before_id), "below the floor").await;

        std::fs::remove_file(&ballast).expect("remove the ballast");
        let after = wait_for_recovery(&s).await;
        expect_records(&s, &[before_id, after], "after recovery").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_gives_507_loses_no_acknowledged_record_and_recovers_by_itself() {
        let Some((mut s, disk)) = server_on_small_disk(0, "process") else {
            return;
        };
        create_hello(&s).await;
        // Each record carries a 64 KiB result, so that records fill the disk quickly.
        create_action(
            &s,
            "big",
            "nodejs:20",
            "function main(p) { return { blob: 'x'.repeat(64 * 1024), n: p.n }; }",
        )
        .await;
        invoke_blocking(&s, "big", json!({"n": -1}))
            .await
            .expect_status(200, "warm the action");
        let ballast = disk.path().join("ballast");
        disk.fill(&ballast, disk.free_bytes().saturating_sub(2 * 1024 * 1024));

        let mut acknowledged = Vec::new();
        let mut full = None;
        for n in 0..400 {
            let reply = invoke_blocking(&s, "big", json!({"n": n})).await;
            match reply.status.as_u16() {
                200 => acknowledged.push(activation_id(&reply)),
                507 => {
                    full = Some(reply);
                    break;
                }
                other => panic!(
                    "invoke {n} on a filling disk answered {other}: {}",
                    reply.text
                ),
            }
        }
        let full = full.expect("the disk filled up within 400 invokes of 64 KiB records");
        expect_full(&full, "invoke on a full disk");

        // Entity writes: refused with 507, never a bare 500.
        let mut refused = 0;
        let mut stored = Vec::new();
        for i in 0..10 {
            let code =
                json!({"exec": {"kind": "nodejs:20", "code": "function main() { return {}; }"}});
            let reply = put_action(&s, &format!("full{i}"), code).await;
            match reply.status.as_u16() {
                507 => {
                    expect_full(&reply, "PUT on a full disk");
                    refused += 1;
                }
                200 => stored.push(format!("full{i}")),
                other => panic!("PUT on a full disk answered {other}: {}", reply.text),
            }
        }
        assert!(refused > 0, "some PUT on a full disk was refused");
        send(http().get(s.ns_url(&format!("actions/{HELLO_NAME}"))))
            .await
            .expect_status(200, "GET action on a full disk");
        expect_records(&s, &acknowledged, "on a full disk").await;

        std::fs::remove_file(&ballast).expect("remove the ballast");
        let after = wait_for_recovery(&s).await;
        acknowledged.push(after);
        expect_records(&s, &acknowledged, "after recovery").await;

        // Nothing acknowledged lived only in memory: a stop and a restart keep it all.
        s.stop();
        s.restart();
        expect_records(&s, &acknowledged, "after a restart").await;
        for name in stored.iter().chain(std::iter::once(&"after".to_owned())) {
            send(http().get(s.ns_url(&format!("actions/{name}"))))
                .await
                .expect_status(200, &format!("action {name} acknowledged on a full disk"));
        }
        let listed: Value = send(http().get(s.ns_url("activations?limit=200")))
            .await
            .body;
        assert!(listed.as_array().is_some_and(|a| !a.is_empty()));
        drop(s);
        drop(disk);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn under_runc_a_full_disk_refuses_invokes_and_cold_starts_work_again_after() {
        if let Some(why) = crate::support::host::runc_unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
        const FLOOR: u64 = 8 * 1024 * 1024;
        let Some((s, disk)) = server_on_small_disk(FLOOR, "runc") else {
            return;
        };
        create_hello(&s).await;
        invoke_blocking(&s, HELLO_NAME, json!({}))
            .await
            .expect_status(200, "a runc instance starts on the small disk");
        let code = "function main() { return { cold: true }; }";
        create_action(&s, "cold1", "nodejs:20", code).await;
        create_action(&s, "cold2", "nodejs:20", code).await;

        // Below the floor: refused with 507 before any instance start is tried.
        let ballast = disk.path().join("ballast");
        disk.fill(&ballast, disk.free_bytes().saturating_sub(4 * 1024 * 1024));
        tokio::time::sleep(Duration::from_millis(300)).await;
        expect_full(
            &invoke_blocking(&s, "cold1", json!({})).await,
            "cold start below the floor",
        );
        // Really full: whatever a start that cannot write its bundle answers, it must not
        // stay so once space returns.
        let rest = disk.path().join("rest");
        disk.fill(&rest, u64::MAX);
        let _ = invoke_blocking(&s, "cold2", json!({})).await;

        std::fs::remove_file(&rest).expect("remove the second ballast");
        std::fs::remove_file(&ballast).expect("remove the ballast");
        wait_for_recovery(&s).await;
        for name in ["cold1", "cold2"] {
            let reply = invoke_blocking(&s, name, json!({})).await;
            reply.expect_status(200, &format!("cold start of {name} after space returned"));
            assert_eq!(reply.body["response"]["result"], json!({"cold": true}));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn old_activation_records_beyond_the_namespace_count_are_deleted_in_the_background() {
        let config = format!(
            "{TEST_DEFAULTS}\n[store]\nactivation_max_per_namespace = 5\nretention_interval_ms = 100\n"
        );
        let s = spawn_server_with(ServerOptions {
            config_toml: Some(&config),
            extra_args: &["--isolation", "process"],
            temp_parent: None,
            ..ServerOptions::default()
        });
        create_hello(&s).await;
        let mut ids = Vec::new();
        for n in 0..12 {
            let reply = invoke_blocking(&s, HELLO_NAME, json!({"name": n})).await;
            reply.expect_status(200, "invoke");
            ids.push(activation_id(&reply));
        }
        let deadline = Instant::now() + RECOVERY;
        loop {
            let count = send(http().get(s.ns_url("activations?count=true"))).await;
            count.expect_status(200, "count activations");
            if count.body["activations"] == json!(5) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still {} records, expected the newest 5",
                count.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        expect_records(&s, &ids[7..], "kept by retention").await;
        let oldest = send(http().get(s.ns_url(&format!("activations/{}", ids[0])))).await;
        oldest.expect_status(404, "the oldest record is deleted");
    }
}
