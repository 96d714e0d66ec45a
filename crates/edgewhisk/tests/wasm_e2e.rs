//! `wasm:wasi` actions end to end: the real binary, actions created with base64 modules over
//! the REST API, invoked blocking; results, logs, the time and memory limits, `wasm:default`,
//! and a restart that loads the compiled module from the on-disk cache instead of compiling.
//!
//! The modules are written in WebAssembly text and assembled by the `wat` crate here; the
//! server compiles them with wasmtime, in-process, whatever the isolation backend.

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use std::time::Duration;
use support::api::{annotation, create_action_with, invoke_blocking};
use support::{ServerGuard, spawn_server};

/// Writes `log line` on stderr, then copies stdin to stdout: the result is the arguments.
const ECHO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 16)
  (data (i32.const 512) "log line\n")
  (func (export "_start") (local $end i32)
    (i32.store (i32.const 0) (i32.const 512))
    (i32.store (i32.const 4) (i32.const 9))
    (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (local.set $end (i32.const 1024))
    (block $done (loop $more
      (i32.store (i32.const 0) (local.get $end))
      (i32.store (i32.const 4) (i32.sub (i32.const 1048576) (local.get $end)))
      (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br_if $done (i32.eqz (i32.load (i32.const 8))))
      (local.set $end (i32.add (local.get $end) (i32.load (i32.const 8))))
      (br $more)))
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.sub (local.get $end) (i32.const 1024)))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// Spins forever.
const SPIN: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $forever (br $forever))))"#;

/// Grows its memory until refused, then traps as an allocator that ran out aborts.
const GREEDY: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))"#;

fn code(wat_text: &str) -> String {
    let bytes = wat::parse_str(wat_text).expect("valid WAT");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn action(kind: &str, wat_text: &str, limits: Value) -> Value {
    json!({"exec": {"kind": kind, "code": code(wat_text), "binary": true}, "limits": limits})
}

/// How often the server log says a module was compiled and loaded from the disk cache.
fn compiles_and_loads(s: &ServerGuard) -> (usize, usize) {
    let log = std::fs::read_to_string(s.dir().join("server.log")).expect("server log");
    (
        log.matches("wasm module compiled").count(),
        log.matches("wasm module loaded from the disk cache")
            .count(),
    )
}

#[tokio::test]
async fn wasm_actions_run_with_results_logs_and_limits_and_survive_a_restart() {
    let mut s = spawn_server(None);
    create_action_with(&s, "echo", action("wasm:wasi", ECHO, json!({}))).await;

    let reply = invoke_blocking(&s, "echo", json!({"name": "wasm", "n": [1, 2]})).await;
    reply.expect_status(200, "echo");
    assert_eq!(reply.body["response"]["status"], "success");
    assert_eq!(
        reply.body["response"]["result"],
        json!({"name": "wasm", "n": [1, 2]})
    );
    let logs = reply.body["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(
        logs[0]
            .as_str()
            .is_some_and(|l| l.ends_with(" stderr: log line")),
        "{logs:?}"
    );
    assert_eq!(annotation(&reply.body, "kind"), Some(&json!("wasm:wasi")));

    // `wasm:default` is `wasm:wasi`.
    create_action_with(&s, "echo-default", action("wasm:default", ECHO, json!({}))).await;
    let reply = invoke_blocking(&s, "echo-default", json!({"d": 1})).await;
    reply.expect_status(200, "wasm:default");
    assert_eq!(reply.body["response"]["result"], json!({"d": 1}));

    create_action_with(
        &s,
        "spin",
        action("wasm:wasi", SPIN, json!({"timeout": 500})),
    )
    .await;
    let started = std::time::Instant::now();
    let reply = invoke_blocking(&s, "spin", json!({})).await;
    reply.expect_status(502, "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped near its limit"
    );
    assert_eq!(reply.body["response"]["status"], "action developer error");
    assert_eq!(
        reply.body["response"]["result"],
        json!({"error": "The action exceeded its time limits of 500 milliseconds."})
    );
    assert_eq!(annotation(&reply.body, "timeout"), Some(&json!(true)));

    create_action_with(
        &s,
        "greedy",
        action("wasm:wasi", GREEDY, json!({"memory": 128})),
    )
    .await;
    let reply = invoke_blocking(&s, "greedy", json!({})).await;
    reply.expect_status(502, "memory");
    assert_eq!(
        reply.body["response"]["result"],
        json!({"error": "The action exhausted its memory and was aborted."})
    );

    // Same code as `echo`: compiled once, even as another action.
    let (compiled, loaded) = compiles_and_loads(&s);
    assert_eq!((compiled, loaded), (3, 0), "{}", s.log_tail());

    s.restart();
    let reply = invoke_blocking(&s, "echo", json!({"after": "restart"})).await;
    reply.expect_status(200, "echo after a restart");
    assert_eq!(
        reply.body["response"]["result"],
        json!({"after": "restart"})
    );
    let (compiled, loaded) = compiles_and_loads(&s);
    assert_eq!(
        (compiled, loaded),
        (3, 1),
        "the restarted server loads the module: {}",
        s.log_tail()
    );
}
