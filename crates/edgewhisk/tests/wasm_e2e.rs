//! `wasm:wasi` actions end to end: the real binary, actions created with base64 modules over
//! the REST API, invoked blocking; results, logs, the time and memory limits, `wasm:default`,
//! and a restart that loads the compiled module from the on-disk cache instead of compiling.
//!
//! The modules are written in WebAssembly text and assembled by the `wat` crate here; the
//! server compiles them with wasmtime, in-process, whatever the isolation backend.

mod support;

#[cfg(test)]
mod tests {
    use crate::support::api::{
        activation_eventually, annotation, create_action_with, invoke_blocking,
    };
    use crate::support::{ServerGuard, spawn_server};
    use base64::Engine as _;
    use edgewhisk_testkit::wasm_modules::{ECHO, GREEDY, SPIN};
    use serde_json::{Value, json};
    use std::time::Duration;

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
        // Logs reach the record after the blocking reply.
        let id = reply.body["activationId"].as_str().expect("id");
        let record = activation_eventually(&s, id, |r| {
            r["logs"].as_array().is_some_and(|l| !l.is_empty())
        })
        .await;
        let logs = record["logs"].as_array().expect("logs");
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
}
