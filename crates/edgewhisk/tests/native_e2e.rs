//! Native actions end to end (issue 13, item 2): a Rust program compiled in the test speaking
//! openwhisk-runtime-go's action loop (kind `go:1.22`), and shell scripts run with the docker
//! skeleton's protocol (`--native`, `--docker openwhisk/dockerskeleton`), on the real binary
//! over the REST API and the CLI, with the process backend and under runc.
//!
//! `rustc` is needed to build the action; without it (or, for the runc test, without root and
//! runc) the tests print `skipped: <why>`, except on CI (`CI=true`), where they fail.
//! Data directories live under Cargo's target temporary directory, as in `isolation_e2e.rs`:
//! an instance's private `/tmp` would hide a data directory under `/tmp`.

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use support::api::{activation_eventually, create_action_with, invoke_blocking};
use support::cli::{guest_props, wsk_with};
use support::host::runc_unavailable;
use support::{ServerGuard, ServerOptions, TEST_DEFAULTS, spawn_server_with};

/// An action-loop program: acknowledges on fd 3 when asked to, then answers each request line
/// with a greeting, a count of the requests this process has seen, its pid and the
/// activation id of the request line; `"number"` in the arguments answers 42 (not an object)
/// and `"crash"` exits.
const LOOP_RS: &str = r#"
use std::io::{BufRead, Write};

fn field(line: &str, key: &str) -> String {
    let pattern = format!("\"{key}\":\"");
    match line.find(&pattern) {
        Some(at) => {
            let rest = &line[at + pattern.len()..];
            rest[..rest.find('"').unwrap_or(rest.len())].to_string()
        }
        None => String::new(),
    }
}

fn main() {
    let mut out = std::fs::OpenOptions::new().write(true).open("/proc/self/fd/3").expect("fd 3");
    if std::env::var_os("__OW_WAIT_FOR_ACK").is_some() {
        writeln!(out, "{{\"ok\":true}}").expect("ack");
    }
    let namespace = std::env::var("__OW_NAMESPACE").unwrap_or_default();
    let mut count = 0u64;
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("request line");
        count += 1;
        println!("stdout line {count}");
        eprintln!("stderr line {count}");
        if line.contains("\"crash\"") {
            std::process::exit(7);
        }
        if line.contains("\"number\"") {
            writeln!(out, "42").expect("reply");
            continue;
        }
        writeln!(
            out,
            "{{\"greeting\":\"Hello, {}!\",\"count\":{count},\"pid\":{},\"activation\":\"{}\",\"namespace\":\"{namespace}\"}}",
            field(&line, "who"),
            std::process::id(),
            field(&line, "activation_id"),
        )
        .expect("reply");
    }
}
"#;

/// A skeleton script: two log lines, then the result built from its argument and environment.
const SKELETON_SH: &str = r#"#!/bin/sh
echo "log line one"
echo "to stderr" >&2
echo "{\"args\":$1,\"activation\":\"$__OW_ACTIVATION_ID\"}"
"#;

/// A skeleton `exec` that reports whether its arguments came as its command-line argument or
/// (over Linux' 128 KiB limit on one argument) only on stdin.
const SIZE_SH: &str = r#"#!/bin/sh
if [ $# -gt 0 ]; then arg="$1"; via=argv; else arg=$(cat); via=stdin; fi
echo "arguments via $via"
printf '{"bytes":%d,"via":"%s"}\n' "${#arg}" "$via"
"#;

/// Prints why a test cannot run here and returns true, or fails on CI, where it must run.
fn skip(why: &str) -> bool {
    assert!(
        !edgewhisk_testkit::services::in_ci(),
        "CI must run this test: {why}"
    );
    eprintln!("skipped: {why}");
    true
}

/// Compiles [`LOOP_RS`] into `dir/exec` with `rustc`; `None` (after [`skip`]) without it.
fn compile_loop_action(dir: &Path) -> Option<PathBuf> {
    if support::binary::skip_when_emulated("the action is compiled for the host") {
        return None;
    }
    let src = dir.join("loop.rs");
    std::fs::write(&src, LOOP_RS).expect("write the source");
    let exec = dir.join("exec");
    let out = std::process::Command::new("rustc")
        .args(["--edition", "2021", "-O", "-o"])
        .arg(&exec)
        .arg(&src)
        .output();
    match out {
        Ok(out) if out.status.success() => Some(exec),
        Ok(out) => panic!("rustc failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            skip(&format!("cannot run rustc: {e}"));
            None
        }
    }
}

/// A zip holding `exec` (mode 0755) with `content`.
fn zip_exec(content: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    w.start_file("exec", options).expect("start the entry");
    w.write_all(content).expect("write the entry");
    w.finish().expect("finish the zip").into_inner()
}

/// Starts a server with `--isolation <isolation>`; runc instances get no network (these
/// actions need none, and the isolated network needs pasta).
fn server(isolation: &str) -> ServerGuard {
    let config = format!("{TEST_DEFAULTS}\n[runc]\nnetwork = \"none\"\n");
    spawn_server_with(ServerOptions {
        config_toml: Some(&config),
        extra_args: &["--isolation", isolation],
        temp_parent: Some(Path::new(env!("CARGO_TARGET_TMPDIR"))),
        ..ServerOptions::default()
    })
}

/// Invokes `name` blocking and returns the activation record, whatever its status.
async fn activation(s: &ServerGuard, name: &str, args: Value) -> Value {
    let reply = invoke_blocking(s, name, args).await;
    assert!(
        reply.body.get("response").is_some(),
        "invoking {name} gave no activation: {} {}",
        reply.status,
        reply.text
    );
    reply.body
}

/// The two log lines of an action-loop activation, sorted: lines of the two streams are
/// ordered by their timestamps, which may tie.
async fn sorted_logs(s: &ServerGuard, activation: &Value) -> Vec<String> {
    let mut logs = log_texts(s, activation, 2).await;
    logs.sort();
    logs
}

/// The log texts of the stored record of `activation` (a blocking response carries none yet),
/// without their timestamps, once it has at least `lines` of them.
async fn log_texts(s: &ServerGuard, activation: &Value, lines: usize) -> Vec<String> {
    let id = activation["activationId"].as_str().expect("activation id");
    let record = activation_eventually(s, id, |r| {
        r["logs"].as_array().is_some_and(|l| l.len() >= lines)
    })
    .await;
    record["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter_map(Value::as_str)
        .map(|l| {
            l.split_once(' ')
                .map_or(l, |(_, rest)| rest.trim_start())
                .to_owned()
        })
        .collect()
}

/// Creates the compiled action loop as `go:1.22` (zip sent base64 by the CLI's `--kind`) and
/// checks results, logs, warm state, a non-object reply and a crash.
async fn check_action_loop(s: &ServerGuard, exec: &Path) {
    let zip = s.dir().join("loop.zip");
    std::fs::write(&zip, zip_exec(&std::fs::read(exec).expect("read exec"))).expect("zip");
    let props = guest_props(s);
    let (code, out, err) = wsk_with(
        &props,
        &[
            "action",
            "create",
            "loop",
            zip.to_str().expect("path"),
            "--kind",
            "go:1.22",
        ],
    );
    assert_eq!(code, 0, "create loop: {out} {err}");

    let first = activation(s, "loop", json!({"who": "edge"})).await;
    let result = &first["response"]["result"];
    assert_eq!(first["response"]["status"], "success", "{first}");
    assert_eq!(result["greeting"], "Hello, edge!");
    assert_eq!(result["count"], 1);
    assert_eq!(
        result["activation"], first["activationId"],
        "the request line carries the id"
    );
    assert_eq!(result["namespace"], "guest", "init env reaches the process");
    assert_eq!(
        sorted_logs(s, &first).await,
        ["stderr: stderr line 1", "stdout: stdout line 1"],
        "{first}"
    );
    let pid = result["pid"].clone();

    // Warm: the same process, its state kept.
    for n in 2..=4 {
        let warm = activation(s, "loop", json!({"who": "again"})).await;
        assert_eq!(warm["response"]["result"]["count"], n, "{warm}");
        assert_eq!(warm["response"]["result"]["pid"], pid, "{warm}");
        assert_eq!(
            sorted_logs(s, &warm).await,
            [
                format!("stderr: stderr line {n}"),
                format!("stdout: stdout line {n}")
            ]
        );
    }

    let number = activation(s, "loop", json!({"number": 1})).await;
    assert_eq!(
        number["response"]["status"], "action developer error",
        "{number}"
    );
    assert_eq!(
        number["response"]["result"],
        json!({"error": "The action did not return a dictionary or array."})
    );

    let after = activation(s, "loop", json!({"who": "fresh"})).await;
    assert_eq!(after["response"]["status"], "success", "{after}");
    assert_eq!(
        after["response"]["result"]["count"], 1,
        "a developer error replaces the instance: {after}"
    );

    let crash = activation(s, "loop", json!({"crash": true})).await;
    assert_eq!(
        crash["response"]["status"], "action developer error",
        "{crash}"
    );
    assert_eq!(
        crash["response"]["result"],
        json!({"error": "command exited"})
    );
    assert!(
        log_texts(s, &crash, 2)
            .await
            .contains(&"stdout: stdout line 2".to_owned()),
        "output before the crash is kept: {crash}"
    );

    let next = activation(s, "loop", json!({"who": "after crash"})).await;
    assert_eq!(next["response"]["status"], "success", "{next}");
    assert_eq!(
        next["response"]["result"]["greeting"],
        "Hello, after crash!"
    );
    assert_eq!(next["response"]["result"]["count"], 1);
}

/// Creates a script with `--native` and a zip with `--docker openwhisk/dockerskeleton`
/// through the CLI and checks the skeleton protocol, including arguments over 128 KiB.
async fn check_skeleton(s: &ServerGuard) {
    let props = guest_props(s);
    let script = s.dir().join("hello.sh");
    std::fs::write(&script, SKELETON_SH).expect("write the script");
    let (code, out, err) = wsk_with(
        &props,
        &[
            "action",
            "create",
            "script",
            script.to_str().expect("path"),
            "--native",
        ],
    );
    assert_eq!(code, 0, "create script: {out} {err}");
    let record = activation(s, "script", json!({"name": "x"})).await;
    assert_eq!(record["response"]["status"], "success", "{record}");
    assert_eq!(record["response"]["result"]["args"], json!({"name": "x"}));
    assert_eq!(
        record["response"]["result"]["activation"],
        record["activationId"]
    );
    let logs = log_texts(s, &record, 2).await;
    assert!(
        logs.contains(&"stdout: log line one".to_owned()),
        "{record}"
    );
    assert!(logs.contains(&"stderr: to stderr".to_owned()), "{record}");
    assert_eq!(logs.len(), 2, "the result line is not a log line: {record}");
    let exec = annotation_exec(s, "script").await;
    assert_eq!(exec["kind"], "blackbox");
    assert_eq!(exec["image"], "openwhisk/dockerskeleton");

    let zip = s.dir().join("size.zip");
    std::fs::write(&zip, zip_exec(SIZE_SH.as_bytes())).expect("zip");
    let (code, out, err) = wsk_with(
        &props,
        &[
            "action",
            "create",
            "size",
            zip.to_str().expect("path"),
            "--docker",
            "openwhisk/dockerskeleton",
        ],
    );
    assert_eq!(code, 0, "create size: {out} {err}");
    let small = activation(s, "size", json!({"a": "b"})).await;
    assert_eq!(small["response"]["result"]["via"], "argv", "{small}");
    let big = activation(s, "size", json!({"a": "x".repeat(200_000)})).await;
    assert_eq!(big["response"]["status"], "success", "{}", truncate(&big));
    assert_eq!(big["response"]["result"]["via"], "stdin");
    assert!(
        big["response"]["result"]["bytes"].as_u64().unwrap_or(0) > 200_000,
        "{}",
        truncate(&big)
    );
    assert!(
        log_texts(s, &big, 1)
            .await
            .contains(&"stdout: arguments via stdin".to_owned())
    );
}

/// The stored `exec` of action `name`.
async fn annotation_exec(s: &ServerGuard, name: &str) -> Value {
    let reply = support::api::send(
        support::api::http().get(s.ns_url(&format!("actions/{name}?code=false"))),
    )
    .await;
    reply.expect_status(200, "get action");
    reply.body["exec"].clone()
}

fn truncate(v: &Value) -> String {
    let text = v.to_string();
    text.chars().take(2000).collect()
}

#[cfg(test)]
mod native {
    use super::*;

    #[tokio::test]
    async fn compiled_action_loop_runs_warm_and_recovers_from_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(exec) = compile_loop_action(dir.path()) else {
            return;
        };
        let s = server("process");
        check_action_loop(&s, &exec).await;
    }

    #[tokio::test]
    async fn skeleton_scripts_and_zips_run_per_activation() {
        if support::binary::skip_when_emulated(
            "the native runner is the server's own binary, which the host cannot exec",
        ) {
            return;
        }
        let s = server("process");
        check_skeleton(&s).await;
    }

    #[tokio::test]
    async fn go_zip_without_an_exec_fails_init_with_a_clear_error() {
        if support::binary::skip_when_emulated(
            "the native runner is the server's own binary, which the host cannot exec",
        ) {
            return;
        }
        let s = server("process");
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file("main.go", zip::write::SimpleFileOptions::default())
            .expect("start");
        w.write_all(b"package main\n").expect("write");
        let zip = w.finish().expect("finish").into_inner();
        let code = base64::engine::general_purpose::STANDARD.encode(zip);
        create_action_with(
            &s,
            "source",
            json!({"exec": {"kind": "go:1.22", "code": code, "binary": true}}),
        )
        .await;
        let record = activation(&s, "source", json!({})).await;
        assert_eq!(
            record["response"]["status"], "action developer error",
            "{record}"
        );
        assert_eq!(
            record["response"]["result"]["error"],
            "The action failed to generate or locate a binary. See logs for details."
        );
    }

    #[tokio::test]
    async fn native_actions_run_under_runc() {
        if let Some(why) = runc_unavailable() {
            skip(&why);
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(exec) = compile_loop_action(dir.path()) else {
            return;
        };
        let s = server("runc");
        check_action_loop(&s, &exec).await;
        check_skeleton(&s).await;
    }
}
