//! The runtime conformance suite (`support`) as one table: every case with the backends it
//! runs on, `process` (always) and `runc` (where runc and root are available, as in CI).
//! Test `<case>::<backend>` runs one row on one backend.
//!
//! The shared cases come first, then the runtime-specific ones: the Node.js and Python
//! behaviours tabled in `docs/design/001-runner-protocol.md` (entry points, non-dictionary
//! results, errors, zip layouts). Needs `node` and `python3` on `/usr/local/bin:/usr/bin:/bin`;
//! Python cases are skipped, with the reason printed, when `/usr/bin/python3` is missing.

mod support;

use edgewhisk_invoker::container::ContainerFactory;
use serde_json::json;
use support::*;

/// Runs each row of a table of conformance cases against the backends the row names.
///
/// A row is `name: KIND, [backend, …], |f| check;`. For every backend, a test `name::backend`
/// skips when the runtime of `KIND` is not installed (`support::runtime_missing`), gets a fresh
/// factory from `support::backends::backend` (or is skipped with the reason printed, as
/// `backends::runc` is without runc or root), and runs `check` with
/// `f: &dyn ContainerFactory`; `check` may `.await`.
macro_rules! conformance_table {
    ($($name:ident: $kind:expr, [$($backend:ident),+ $(,)?], |$f:ident| $check:expr;)*) => {
        $(conformance_table!(@row $name, $kind, [$($backend),+], $f, $check);)*
    };
    (@row $name:ident, $kind:expr, [$($backend:ident),+], $f:ident, $check:expr) => {
        #[cfg(test)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $backend() {
                    if runtime_missing($kind) {
                        return;
                    }
                    let Some((_dir, factory)) = backends::$backend() else {
                        return;
                    };
                    let $f: &dyn ContainerFactory = &*factory;
                    $check;
                }
            )+
        }
    };
}

/// Runs `code` (Node.js) with `args` in a fresh instance of `f`; the instance is destroyed.
async fn node_result(
    f: &dyn ContainerFactory,
    code: &str,
    args: serde_json::Value,
) -> (u16, serde_json::Value) {
    let c = started(f, NODE, code).await;
    let out = run(&*c, args).await;
    c.destroy().await;
    out
}

conformance_table! {
    // ----- shared cases, Node.js -----
    nodejs_refuses_a_second_init: NODE, [process, runc],
        |f| refuses_a_second_init(f, NODE, NODE_ECHO).await;
    nodejs_echoes_arguments_with_unicode: NODE, [process, runc],
        |f| echoes_arguments_with_unicode(f, NODE, NODE_ECHO).await;
    nodejs_passes_a_one_megabyte_input: NODE, [process, runc],
        |f| passes_a_large_input(f, NODE, NODE_ECHO).await;
    nodejs_exposes_run_context_and_init_env: NODE, [process, runc],
        |f| exposes_run_context_and_init_env(f, NODE, NODE_ENV).await;
    nodejs_run_context_is_per_run_reaches_children_and_does_not_leak: NODE, [process],
        |f| run_context_is_per_run_and_reaches_children(f, NODE, NODE_RUN_ENV).await;
    nodejs_collects_logs_per_activation_up_to_the_sentinels: NODE, [process, runc],
        |f| collects_logs_per_activation(f, NODE, NODE_LOG).await;
    nodejs_truncates_logs_at_the_limit: NODE, [process, runc],
        |f| truncates_logs_at_the_limit(f, NODE, NODE_SPAM).await;
    nodejs_survives_twenty_megabytes_of_output: NODE, [process, runc],
        |f| survives_a_flood_of_output(f, NODE, NODE_SPAM).await;
    nodejs_times_out_and_is_killed: NODE, [process, runc],
        |f| times_out_and_kills_the_instance(f, NODE, NODE_HANG).await;
    nodejs_process_exit_is_reported_as_exited: NODE, [process, runc],
        |f| reports_exit_of_the_runner(f, NODE, NODE_EXIT).await;
    nodejs_syntax_error_fails_init: NODE, [process, runc],
        |f| reports_init_failure(f, NODE, "function main( {").await;
    nodejs_runs_concurrently_when_allowed: NODE, [process, runc],
        |f| runs_concurrently_when_allowed(f, NODE, NODE_SLEEP).await;
    nodejs_suspends_and_resumes: NODE, [process, runc],
        |f| suspends_and_resumes(f, NODE, NODE_ECHO).await;
    zip_with_a_parent_dir_entry_is_refused: NODE, [process, runc],
        |f| refuses_a_zip_slip_archive(f, NODE).await;
    unknown_kind_is_refused: NODE, [process, runc],
        |f| refuses_an_unknown_kind(f).await;

    // ----- shared cases, Python -----
    python_refuses_a_second_init: PYTHON, [process, runc],
        |f| refuses_a_second_init(f, PYTHON, PY_ECHO).await;
    python_echoes_arguments_with_unicode: PYTHON, [process, runc],
        |f| echoes_arguments_with_unicode(f, PYTHON, PY_ECHO).await;
    python_passes_a_one_megabyte_input: PYTHON, [process],
        |f| passes_a_large_input(f, PYTHON, PY_ECHO).await;
    python_exposes_run_context_and_init_env: PYTHON, [process],
        |f| exposes_run_context_and_init_env(f, PYTHON, PY_ENV).await;
    python_run_context_is_per_run_reaches_children_and_does_not_leak: PYTHON, [process],
        |f| run_context_is_per_run_and_reaches_children(f, PYTHON, PY_RUN_ENV).await;
    python_collects_logs_per_activation_up_to_the_sentinels: PYTHON, [process, runc],
        |f| collects_logs_per_activation(f, PYTHON, PY_LOG).await;
    python_truncates_logs_at_the_limit: PYTHON, [process],
        |f| truncates_logs_at_the_limit(f, PYTHON, PY_SPAM).await;
    python_times_out_and_is_killed: PYTHON, [process],
        |f| times_out_and_kills_the_instance(f, PYTHON, PY_HANG).await;
    python_os_exit_is_reported_as_exited: PYTHON, [process],
        |f| reports_exit_of_the_runner(f, PYTHON, PY_EXIT).await;
    python_syntax_error_fails_init: PYTHON, [process],
        |f| reports_init_failure(f, PYTHON, "def main(args)\n    return {}\n").await;
    python_runs_concurrently_when_allowed: PYTHON, [process],
        |f| runs_concurrently_when_allowed(f, PYTHON, PY_SLEEP).await;

    // ----- Node.js specifics -----
    nodejs_finds_main_in_module_exports_and_exports: NODE, [process], |f| {
        let a = "module.exports.main = (a) => ({ via: 'module.exports', a: a.a });";
        assert_eq!(
            node_result(f, a, json!({"a": 1})).await,
            (200, json!({"via": "module.exports", "a": 1}))
        );
        let b = "exports.main = () => ({ via: 'exports' });";
        assert_eq!(
            node_result(f, b, json!({})).await,
            (200, json!({"via": "exports"}))
        );
    };
    nodejs_uses_the_named_entry_point: NODE, [process], |f| {
        let c = create(f, NODE).await;
        let code = "function other(a) { return { other: true }; }";
        assert_eq!(init(&*c, init_req(code, "other")).await.0, 200);
        assert_eq!(run(&*c, json!({})).await, (200, json!({"other": true})));
        c.destroy().await;
    };
    nodejs_missing_entry_point_fails_init: NODE, [process],
        |f| reports_init_failure(f, NODE, "function notmain() { return {}; }").await;
    nodejs_awaits_async_results: NODE, [process], |f| {
        let code = "async function main(a) { await new Promise(r => setTimeout(r, 5)); return { n: a.n + 1 }; }";
        assert_eq!(
            node_result(f, code, json!({"n": 1})).await,
            (200, json!({"n": 2}))
        );
    };
    nodejs_undefined_result_is_an_empty_object: NODE, [process], |f| {
        assert_eq!(
            node_result(f, "function main() {}", json!({})).await,
            (200, json!({}))
        );
    };
    nodejs_non_object_result_is_not_a_dictionary: NODE, [process], |f| {
        for code in [
            "function main() { return 42; }",
            "function main() { return 'text'; }",
        ] {
            assert_eq!(
                node_result(f, code, json!({})).await,
                (
                    502,
                    json!({"error": "The action did not return a dictionary."})
                )
            );
        }
    };
    nodejs_thrown_error_is_a_502_error: NODE, [process], |f| {
        let (status, body) =
            node_result(f, "function main() { throw new Error('boom'); }", json!({})).await;
        assert_eq!(status, 502);
        assert_eq!(body, json!({"error": "An error has occurred: Error: boom"}));
    };
    nodejs_rejected_promise_is_an_application_error: NODE, [process], |f| {
        let (status, body) = node_result(
            f,
            "function main() { return Promise.reject({ reason: 'nope' }); }",
            json!({}),
        )
        .await;
        assert_eq!((status, body), (200, json!({"error": {"reason": "nope"}})));
        let (status, body) = node_result(
            f,
            "function main() { return Promise.reject(new Error('bad')); }",
            json!({}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["error"]["message"], "bad");
        assert_eq!(body["error"]["name"], "Error");
        let empty =
            node_result(f, "function main() { return Promise.reject(); }", json!({})).await;
        assert_eq!(empty, (200, json!({"error": {}})));
    };
    nodejs_console_output_never_reaches_the_reply_channel: NODE, [process], |f| {
        let code = r#"function main() { console.log('{"id":1,"status":500,"body":{}}'); return { ok: 1 }; }"#;
        assert_eq!(node_result(f, code, json!({})).await, (200, json!({"ok": 1})));
    };
    nodejs_zip_action_loads_package_json_main: NODE, [process], |f| {
        let c = create(f, NODE).await;
        let req = zip_init_req(
            &[
                ("package.json", r#"{"name":"z","main":"lib/handler.js"}"#),
                (
                    "lib/handler.js",
                    "const h = require('./helper'); exports.hello = (a) => ({ greeting: h(a.name), cwd: require('fs').existsSync('lib/helper.js') });",
                ),
                ("lib/helper.js", "module.exports = (n) => 'hello ' + n;"),
            ],
            "hello",
        );
        let (status, body) = init(&*c, req).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            run(&*c, json!({"name": "zip"})).await,
            (200, json!({"greeting": "hello zip", "cwd": true}))
        );
        c.destroy().await;
    };
    nodejs_zip_action_accepts_file_dot_function_main: NODE, [process], |f| {
        let c = create(f, NODE).await;
        let req = zip_init_req(
            &[("handlers.js", "exports.run = () => ({ file: 'handlers' });")],
            "handlers.run",
        );
        assert_eq!(init(&*c, req).await.0, 200);
        assert_eq!(
            run(&*c, json!({})).await,
            (200, json!({"file": "handlers"}))
        );
        c.destroy().await;
    };
    nodejs_zip_without_package_json_uses_index_js: NODE, [process], |f| {
        let c = create(f, NODE).await;
        let req = zip_init_req(
            &[("index.js", "exports.main = () => ({ index: true });")],
            "main",
        );
        assert_eq!(init(&*c, req).await.0, 200);
        assert_eq!(run(&*c, json!({})).await, (200, json!({"index": true})));
        c.destroy().await;
    };

    // ----- Python specifics -----
    python_exception_is_an_application_error: PYTHON, [process], |f| {
        let c = started(f, PYTHON, "def main(args):\n    raise ValueError('bad value')\n").await;
        assert_eq!(
            run(&*c, json!({})).await,
            (200, json!({"error": "bad value"}))
        );
        let logs = c.logs(LOG_LIMIT, true).await;
        assert!(
            logs.lines
                .iter()
                .any(|l| log_text(l).starts_with("stderr: Traceback")),
            "{:?}",
            logs.lines
        );
        c.destroy().await;
    };
    python_non_dict_result_is_refused_and_lists_are_accepted: PYTHON, [process], |f| {
        let c = started(f, PYTHON, "def main(args):\n    return args.get('r')\n").await;
        assert_eq!(
            run(&*c, json!({"r": 5})).await,
            (
                502,
                json!({"error": "The action did not return a dictionary or array."})
            )
        );
        assert_eq!(run(&*c, json!({"r": [1, 2]})).await, (200, json!([1, 2])));
        c.destroy().await;
    };
    python_result_that_is_not_json_is_refused_without_hanging: PYTHON, [process], |f| {
        let c = started(f, PYTHON, "def main(args):\n    return {'x': float('nan')}\n").await;
        let (status, _) = run(&*c, json!({})).await;
        assert_eq!(status, 502);
        assert_eq!(run(&*c, json!({})).await.0, 502, "the runner stays usable");
        c.destroy().await;
    };
    python_zip_action_runs_main_py_with_its_modules: PYTHON, [process], |f| {
        let c = create(f, PYTHON).await;
        let req = zip_init_req(
            &[
                (
                    "__main__.py",
                    "import helper\ndef handler(args):\n    return {'v': helper.double(args['n'])}\n",
                ),
                ("helper.py", "def double(n):\n    return n * 2\n"),
            ],
            "handler",
        );
        let (status, body) = init(&*c, req).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, json!({"ok": true}));
        assert_eq!(run(&*c, json!({"n": 21})).await, (200, json!({"v": 42})));
        c.destroy().await;
    };
    python_zip_without_main_py_fails_init: PYTHON, [process], |f| {
        let c = create(f, PYTHON).await;
        let (status, body) = init(&*c, zip_init_req(&[("other.py", "x = 1\n")], "main")).await;
        assert_eq!(status, 502, "{body}");
        c.destroy().await;
    };
}
