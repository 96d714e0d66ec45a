//! Security and limits of the runc backend, end to end: the real binary started with
//! `--isolation runc`, driven over the REST API only, and watched from the host through `/proc`,
//! cgroups and `runc list` (issue 3, "Tests that must exist").
//!
//! Every test needs root and `runc`; without them it prints `skipped: <why>` and returns. CI
//! runs as root and installs runc, so there they run for real.
//!
//! The servers' data directories live under Cargo's target temporary directory rather than
//! `/tmp`: an instance gets a private `/tmp`, which would hide a data directory under `/tmp`
//! even from a backend that leaked the rest of the host.

mod support;

use serde_json::{Value, json};
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};
use support::api::{
    HELLO_NAME, annotation, assert_healthy, create_action, create_action_with, create_hello,
    flood_logs_and_expect_truncation, invoke, invoke_blocking,
};
use support::host::{
    HostProcess, files_containing, is_alive, is_frozen, runc_containers, runc_unavailable,
    server_processes,
};
use support::{ServerGuard, ServerOptions, TEST_DEFAULTS, spawn_server_with};

/// `/tmp` size given to every instance, MiB.
const TMP_SIZE_MB: u64 = 16;

/// `pids.max` given to every instance.
const PIDS_MAX: u64 = 64;

/// How much the server's RSS may grow across one hostile action, KiB.
const RSS_SLACK_KIB: u64 = 100 * 1024;

/// Starts a runc server with [`TEST_DEFAULTS`], the `[runc]` limits above and `extra_toml`;
/// `None` (after printing why) when this machine cannot run runc instances.
fn runc_server(extra_toml: &str) -> Option<ServerGuard> {
    if let Some(why) = runc_unavailable() {
        eprintln!("skipped: {why}");
        return None;
    }
    let config = format!(
        "{TEST_DEFAULTS}\n[runc]\npids_max = {PIDS_MAX}\ntmp_size_mb = {TMP_SIZE_MB}\n\n{extra_toml}"
    );
    Some(spawn_server_with(ServerOptions {
        config_toml: Some(&config),
        extra_args: &["--isolation", "runc"],
        temp_parent: Some(Path::new(env!("CARGO_TARGET_TMPDIR"))),
        ..ServerOptions::default()
    }))
}

/// [`runc_server`] with no extra config, the hello action created and answering; `None` as
/// there.
async fn healthy_runc_server() -> Option<ServerGuard> {
    let s = runc_server("")?;
    create_hello(&s).await;
    assert_healthy(&s, "start").await;
    Some(s)
}

/// Creates the hostile action `name` with `limits`; answers the server's RSS before it runs,
/// KiB, for [`assert_contained`].
async fn create_hostile(s: &ServerGuard, name: &str, kind: &str, code: &str, limits: Value) -> u64 {
    create_action_with(
        s,
        name,
        json!({ "exec": {"kind": kind, "code": code}, "limits": limits }),
    )
    .await;
    s.rss_kib()
}

/// A zip archive with the given `(path, content)` entries.
fn zip_bytes(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (path, content) in entries {
        writer.start_file(*path, options).expect("start zip entry");
        writer
            .write_all(content.as_bytes())
            .expect("write zip entry");
    }
    writer.finish().expect("finish zip").into_inner()
}

/// After a hostile action: a healthy action still runs and the server did not grow.
async fn assert_contained(s: &ServerGuard, what: &str, rss_before_kib: u64) {
    assert_healthy(s, what).await;
    let rss_after = s.rss_kib();
    assert!(
        rss_after < rss_before_kib + RSS_SLACK_KIB,
        "after {what}: server RSS grew from {rss_before_kib} KiB to {rss_after} KiB"
    );
}

/// Panics unless `reply` is a developer error (502) with exactly `message`.
fn assert_developer_error(reply: &support::api::Reply, message: &str, what: &str) {
    reply.expect_status(502, what);
    assert_eq!(
        reply.body["response"]["status"], "action developer error",
        "{what}: {}",
        reply.text
    );
    assert_eq!(
        reply.body["response"]["result"],
        json!({ "error": message }),
        "{what}"
    );
}

fn show(processes: &[HostProcess]) -> String {
    processes
        .iter()
        .map(|p| format!("  pid {} {} cmd {}\n", p.pid, p.pid_ns, p.cmdline))
        .collect()
}

/// Processes of the server that run inside a container (in another pid namespace).
fn contained_processes(s: &ServerGuard) -> Vec<HostProcess> {
    let pid = i32::try_from(s.pid()).expect("pid fits in i32");
    server_processes(pid, &s.data_dir())
        .into_iter()
        .filter(HostProcess::is_contained)
        .collect()
}

/// Tries to read each of `files`, list each of `dirs` and create the file `escape`; reports what
/// it got per path, and whether its own `/tmp` works.
const SNOOP: &str = r"
const fs = require('fs');
function attempt(f) {
  try { return 'read ' + JSON.stringify(f()).slice(0, 300); }
  catch (e) { return 'error ' + (e.code || e.message); }
}
function main(params) {
  const out = {};
  for (const p of params.files) out[p] = attempt(() => fs.readFileSync(p, 'latin1').slice(0, 100));
  for (const d of params.dirs) out[d] = attempt(() => fs.readdirSync(d));
  out['write /'] = attempt(() => { fs.writeFileSync(params.escape, 'x'); return 'written'; });
  out['control /tmp'] = attempt(() => {
    fs.writeFileSync('/tmp/ew-probe', 'probe');
    return fs.readFileSync('/tmp/ew-probe', 'utf8');
  });
  return { results: out };
}
";

/// Lists the pids it can see and signals the server (SIGKILL), the test runner (signal 0)
/// and pid 1 of its namespace (SIGKILL, ignored by the kernel for a namespace's init).
const PS_AND_KILL: &str = r"
const fs = require('fs');
function signal(pid, sig) {
  try { process.kill(pid, sig); return 'delivered'; } catch (e) { return e.code || e.message; }
}
function main(params) {
  const pids = fs.readdirSync('/proc').filter(n => /^[0-9]+$/.test(n)).map(Number);
  return {
    pids,
    self: process.pid,
    server: signal(params.serverPid, 'SIGKILL'),
    tester: signal(params.testerPid, 0),
    init: signal(1, 'SIGKILL'),
  };
}
";

/// Keeps 16 MiB buffers, touched, until 512 MiB or until it is stopped.
const MEMORY_HOG: &str = r"
function main() {
  const keep = [];
  for (let i = 0; i < 32; i++) keep.push(Buffer.alloc(16 * 1024 * 1024, 1));
  return { allocatedMb: keep.length * 16 };
}
";

/// Forks sleeping children until fork fails or `max` is reached, then kills them.
const FORK_BOMB: &str = r"
import os, time

def main(args):
    kids = []
    failure = None
    try:
        for _ in range(args.get('max', 1000)):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            kids.append(pid)
    except OSError as e:
        failure = str(e)
    for pid in kids:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except OSError:
            pass
    if failure is None:
        return {'forked': len(kids)}
    return {'error': {'message': failure, 'forked': len(kids)}}
";

/// Writes 1 MiB chunks to `/tmp` until a write fails or `maxMb` is written, then cleans up.
const TMP_FILLER: &str = r"
const fs = require('fs');
function main(params) {
  const path = '/tmp/ew-fill';
  const chunk = Buffer.alloc(1024 * 1024, 120);
  let written = 0;
  let code = null;
  const fd = fs.openSync(path, 'w');
  try {
    for (let i = 0; i < params.maxMb; i++) {
      let off = 0;
      while (off < chunk.length) {
        const n = fs.writeSync(fd, chunk, off, chunk.length - off);
        off += n;
        written += n;
      }
    }
  } catch (e) {
    code = e.code || e.message;
  }
  fs.closeSync(fd);
  fs.unlinkSync(path);
  return { written, code };
}
";

/// Counts its invocations in the instance's memory: a resumed instance continues the count.
const COUNTER: &str = r"
let count = 0;
function main() { count += 1; return { count }; }
";

#[cfg(test)]
mod secrets {
    use super::*;

    #[tokio::test]
    async fn actions_cannot_read_the_store_shadow_root_or_another_actions_code() {
        let Some(s) = healthy_runc_server().await else {
            return;
        };

        // Another tenant's action, as a zip (unpacked on the host) and as plain code.
        let zip_marker = format!("ew-secret-zip-{}", std::process::id());
        let plain_marker = format!("ew-secret-plain-{}", std::process::id());
        let archive = zip_bytes(&[(
            "index.js",
            &format!("exports.main = () => ({{ secret: '{zip_marker}' }});\n"),
        )]);
        create_action(&s, "secret-zip", "nodejs:20", &base64_encode(&archive)).await;
        create_action(
            &s,
            "secret-plain",
            "nodejs:20",
            &format!("function main() {{ return {{ secret: '{plain_marker}' }}; }}"),
        )
        .await;
        for (name, marker) in [("secret-zip", &zip_marker), ("secret-plain", &plain_marker)] {
            let reply = invoke(&s, name, "blocking=true&result=true", json!({})).await;
            reply.expect_status(200, name);
            assert_eq!(reply.body, json!({ "secret": marker }), "{name}");
        }

        // Wherever the backend keeps code on the host, outside the store's own files.
        let data_dir = s.data_dir();
        let mut code_files = files_containing(&data_dir, &zip_marker);
        code_files.extend(files_containing(&data_dir, &plain_marker));
        code_files.retain(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("edgewhisk.db"))
        });
        assert!(
            !code_files.is_empty(),
            "the other action's unpacked code was not found under {}",
            data_dir.display()
        );
        let db = s.data_dir().join("edgewhisk.db");
        assert!(db.is_file(), "store file at {}", db.display());

        let mut files: Vec<String> = vec![db.display().to_string(), "/etc/shadow".to_owned()];
        files.extend(code_files.iter().map(|p| p.display().to_string()));
        let mut dirs: Vec<String> = vec!["/root".to_owned(), s.data_dir().display().to_string()];
        dirs.extend(
            code_files
                .iter()
                .filter_map(|p| p.parent())
                .map(|p| p.display().to_string()),
        );
        let escape = format!("/ew-escape-{}", std::process::id());
        create_action(&s, "snoop", "nodejs:20", SNOOP).await;
        let reply = invoke(
            &s,
            "snoop",
            "blocking=true&result=true",
            json!({ "files": files, "dirs": dirs, "escape": escape }),
        )
        .await;
        reply.expect_status(200, "snoop");
        let results = &reply.body["results"];
        assert_eq!(
            results["control /tmp"], "read \"probe\"",
            "the action can use its own /tmp: {results}"
        );
        for path in &files {
            let got = results[path.as_str()].as_str().unwrap_or_default();
            assert!(got.starts_with("error "), "reading {path} gave: {got}");
        }
        for dir in &dirs {
            let got = results[dir.as_str()].as_str().unwrap_or_default();
            // An empty mount point reveals nothing of the host's directory.
            assert!(
                got.starts_with("error ") || got == "read []",
                "listing {dir} gave: {got}"
            );
        }
        let write = results["write /"].as_str().unwrap_or_default();
        assert!(
            write.starts_with("error "),
            "the root file system is writable: {write}"
        );
        assert!(
            !Path::new(&escape).exists(),
            "the write reached the host's {escape}"
        );
        assert_healthy(&s, "snooping").await;
    }

    fn base64_encode(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

#[cfg(test)]
mod processes {
    use super::*;

    #[tokio::test]
    async fn an_action_sees_only_its_own_processes_and_cannot_signal_the_server() {
        let Some(s) = healthy_runc_server().await else {
            return;
        };
        let server_pid = s.pid();
        let tester_pid = std::process::id();

        create_action(&s, "ps-and-kill", "nodejs:20", PS_AND_KILL).await;
        let reply = invoke(
            &s,
            "ps-and-kill",
            "blocking=true&result=true",
            json!({ "serverPid": server_pid, "testerPid": tester_pid }),
        )
        .await;
        reply.expect_status(200, "ps-and-kill");
        let body = &reply.body;
        let pids: Vec<u64> = body["pids"]
            .as_array()
            .expect("pids array")
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        let own = body["self"].as_u64().expect("own pid");
        assert!(pids.contains(&own), "its own pid {own} is listed: {pids:?}");
        assert!(
            pids.len() <= 5,
            "only its own handful of processes is visible: {pids:?}"
        );
        assert!(
            !pids.contains(&u64::from(server_pid)),
            "the server's pid {server_pid} is visible: {pids:?}"
        );
        for (who, got) in [("server", &body["server"]), ("tester", &body["tester"])] {
            assert!(
                got == "ESRCH" || got == "EPERM",
                "signalling the {who} gave {got}: {body}"
            );
        }

        assert!(
            Path::new(&format!("/proc/{server_pid}")).exists(),
            "the server process is gone"
        );
        assert_healthy(&s, "signals against the server").await;
        // pid 1 is the instance's own runner: the kernel ignores SIGKILL to a namespace's init
        // from inside, so the instance keeps working either way.
        let again = invoke(
            &s,
            "ps-and-kill",
            "blocking=true&result=true",
            json!({ "serverPid": server_pid, "testerPid": tester_pid }),
        )
        .await;
        again.expect_status(200, "ps-and-kill after signalling pid 1");
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    #[tokio::test]
    async fn a_memory_hog_is_aborted_with_the_memory_exhausted_error() {
        let Some(s) = healthy_runc_server().await else {
            return;
        };
        let rss_before = create_hostile(
            &s,
            "hog",
            "nodejs:20",
            MEMORY_HOG,
            json!({"memory": 128, "timeout": 30000}),
        )
        .await;

        let reply = invoke_blocking(&s, "hog", json!({})).await;
        assert_developer_error(
            &reply,
            "The action exhausted its memory and was aborted.",
            "memory hog",
        );
        assert_contained(&s, "a memory hog", rss_before).await;
    }

    #[tokio::test]
    async fn a_fork_bomb_is_stopped_by_the_pids_limit() {
        let Some(s) = healthy_runc_server().await else {
            return;
        };
        let rss_before = create_hostile(
            &s,
            "forker",
            "python:3",
            FORK_BOMB,
            json!({"memory": 128, "timeout": 20000}),
        )
        .await;

        let started = Instant::now();
        let reply = invoke_blocking(&s, "forker", json!({ "max": 1000 })).await;
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "contained within the time limit"
        );
        let status = reply.body["response"]["status"]
            .as_str()
            .unwrap_or_default();
        match status {
            "application error" => {
                let error = &reply.body["response"]["result"]["error"];
                let forked = error["forked"].as_u64().expect("forked count");
                assert!(
                    forked < PIDS_MAX,
                    "forks stop below pids_max {PIDS_MAX}: {error}"
                );
                assert!(
                    error["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("Resource temporarily unavailable")),
                    "fork fails with EAGAIN: {error}"
                );
            }
            "action developer error" => {}
            _ => panic!("the fork bomb was not contained: {}", reply.text),
        }
        assert_contained(&s, "a fork bomb", rss_before).await;
    }

    #[tokio::test]
    async fn an_infinite_loop_is_killed_at_its_time_limit() {
        let Some(s) = healthy_runc_server().await else {
            return;
        };
        let rss_before = create_hostile(
            &s,
            "spin",
            "nodejs:20",
            "function main() { while (true) {} }",
            json!({"timeout": 1000}),
        )
        .await;

        let started = Instant::now();
        let reply = invoke_blocking(&s, "spin", json!({})).await;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "stopped near its limit, took {:?}",
            started.elapsed()
        );
        assert_developer_error(
            &reply,
            "The action exceeded its time limits of 1000 milliseconds.",
            "infinite loop",
        );
        assert_eq!(annotation(&reply.body, "timeout"), Some(&json!(true)));
        assert_contained(&s, "an infinite loop", rss_before).await;
    }

    #[tokio::test]
    async fn a_twenty_megabyte_log_flood_is_truncated_at_the_log_limit() {
        let Some(s) = healthy_runc_server().await else {
            return;
        };
        let rss_before = s.rss_kib();
        flood_logs_and_expect_truncation(&s, "flood").await;
        assert_contained(&s, "a log flood", rss_before).await;
    }

    #[tokio::test]
    async fn filling_tmp_stops_with_enospc_near_the_configured_size() {
        let Some(s) = healthy_runc_server().await else {
            return;
        };
        let rss_before = create_hostile(
            &s,
            "filler",
            "nodejs:20",
            TMP_FILLER,
            json!({"memory": 128, "timeout": 30000}),
        )
        .await;

        let reply = invoke(
            &s,
            "filler",
            "blocking=true&result=true",
            json!({ "maxMb": 4 * TMP_SIZE_MB }),
        )
        .await;
        reply.expect_status(200, "tmp filler");
        assert_eq!(reply.body["code"], "ENOSPC", "{}", reply.text);
        let written = reply.body["written"].as_u64().expect("bytes written");
        let size = TMP_SIZE_MB * 1024 * 1024;
        assert!(
            written <= size && written >= size / 2,
            "wrote {written} bytes into a {size}-byte /tmp"
        );
        // The instance stays usable: its /tmp is empty again after the cleanup.
        let again = invoke(
            &s,
            "filler",
            "blocking=true&result=true",
            json!({ "maxMb": 1 }),
        )
        .await;
        again.expect_status(200, "tmp filler, 1 MiB");
        assert_eq!(again.body, json!({ "written": 1024 * 1024, "code": null }));
        assert_contained(&s, "filling /tmp", rss_before).await;
    }
}

#[cfg(test)]
mod lifecycle {
    use super::*;

    #[tokio::test]
    async fn a_paused_instance_resumes_and_answers_with_its_state_intact() {
        let Some(s) = runc_server("[pool]\npause_grace_ms = 200\n") else {
            return;
        };
        create_action(&s, "counter", "nodejs:20", COUNTER).await;
        for expected in 1..=3 {
            let reply = invoke(&s, "counter", "blocking=true&result=true", json!({})).await;
            reply.expect_status(200, &format!("counter call {expected}"));
            assert_eq!(
                reply.body,
                json!({ "count": expected }),
                "call {expected} reaches the same instance"
            );
            if expected == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;

            let contained = contained_processes(&s);
            assert!(
                !contained.is_empty(),
                "no instance process of the server found on the host"
            );
            let frozen: Vec<_> = contained
                .iter()
                .filter(|p| is_frozen(p.pid) == Some(true))
                .collect();
            let paused: Vec<_> = runc_containers(&s.data_dir())
                .into_iter()
                .filter(|c| c.status == "paused")
                .collect();
            assert!(
                !frozen.is_empty() || !paused.is_empty(),
                "after the pause grace no instance is frozen; instance processes:\n{}",
                show(&contained)
            );
        }
    }

    #[tokio::test]
    async fn restart_after_sigkill_leaves_no_instance_of_the_killed_run() {
        let Some(mut s) = healthy_runc_server().await else {
            return;
        };
        create_action(
            &s,
            "py",
            "python:3",
            "def main(args):\n    return {'ok': True}\n",
        )
        .await;
        let reply = invoke(&s, "py", "blocking=true&result=true", json!({})).await;
        reply.expect_status(200, "python action");
        // Give the stem cells time to start, then note everything the run owns.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let server_pid = i32::try_from(s.pid()).expect("pid fits in i32");
        let old = server_processes(server_pid, &s.data_dir());
        let old_contained = contained_processes(&s);
        assert!(
            old_contained.len() >= 2,
            "warm instances run in containers; server processes:\n{}",
            show(&old)
        );
        let old_runc = runc_containers(&s.data_dir());

        s.sigkill();
        s.restart();

        let deadline = Instant::now() + Duration::from_secs(10);
        let stray = loop {
            let stray: Vec<HostProcess> = old.iter().filter(|p| is_alive(p)).cloned().collect();
            if stray.is_empty() || Instant::now() > deadline {
                break stray;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(
            stray.is_empty(),
            "processes of the killed run still alive after recovery:\n{}",
            show(&stray)
        );
        let old_pids: Vec<i32> = old.iter().map(|p| p.pid).collect();
        for c in runc_containers(&s.data_dir()) {
            assert!(
                c.status != "stopped" && !(c.pid != 0 && old_pids.contains(&c.pid)),
                "runc still lists an instance of the killed run: {c:?} (before the kill: \
                 {old_runc:?})"
            );
        }
        assert_healthy(&s, "SIGKILL and restart").await;
        let reply = invoke(
            &s,
            HELLO_NAME,
            "blocking=true&result=true",
            json!({"name": "x"}),
        )
        .await;
        reply.expect_status(200, "hello after restart");

        // A graceful stop of the recovered run leaves nothing behind either.
        let server_pid = i32::try_from(s.pid()).expect("pid fits in i32");
        let second = server_processes(server_pid, &s.data_dir());
        let status = s.stop();
        assert!(
            status.success(),
            "SIGTERM stops the server cleanly: {status}"
        );
        let left: Vec<HostProcess> = second.iter().filter(|p| is_alive(p)).cloned().collect();
        assert!(
            left.is_empty(),
            "processes still alive after a graceful stop:\n{}",
            show(&left)
        );
        let listed = runc_containers(&s.data_dir());
        assert!(
            listed.is_empty(),
            "runc still lists instances after a graceful stop: {listed:?}"
        );
    }
}
