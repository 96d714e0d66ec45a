//! The runtime conformance suite (`support`) run against the `process` backend with the real
//! Node.js and Python runners, plus the runtime-specific cases of reference §6.5 and §6.6.
//!
//! Needs `node` and `python3` on `/usr/local/bin:/usr/bin:/bin`. Python cases are skipped,
//! with the reason printed, when `/usr/bin/python3` is missing.

mod support;

use edgewhisk_invoker::container::ContainerFactory;
use edgewhisk_invoker::container::process::{ProcessConfig, ProcessFactory};
use serde_json::json;
use std::sync::Arc;
use support::*;

fn factory() -> (tempfile::TempDir, Arc<dyn ContainerFactory>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = ProcessFactory::new(ProcessConfig::new(dir.path())).expect("factory");
    assert!(!f.is_isolated());
    (dir, Arc::new(f))
}

fn python_missing() -> bool {
    let missing = !std::path::Path::new("/usr/bin/python3").exists();
    if missing {
        eprintln!("skipped: /usr/bin/python3 is not installed");
    }
    missing
}

#[cfg(test)]
mod process_backend {
    use super::*;

    // ----- shared cases, Node.js -----

    #[tokio::test]
    async fn nodejs_refuses_a_second_init() {
        let (_d, f) = factory();
        refuses_a_second_init(&*f, NODE, NODE_ECHO).await;
    }

    #[tokio::test]
    async fn nodejs_echoes_arguments_with_unicode() {
        let (_d, f) = factory();
        echoes_arguments_with_unicode(&*f, NODE, NODE_ECHO).await;
    }

    #[tokio::test]
    async fn nodejs_passes_a_one_megabyte_input() {
        let (_d, f) = factory();
        passes_a_large_input(&*f, NODE, NODE_ECHO).await;
    }

    #[tokio::test]
    async fn nodejs_exposes_run_context_and_init_env() {
        let (_d, f) = factory();
        exposes_run_context_and_init_env(&*f, NODE, NODE_ENV).await;
    }

    #[tokio::test]
    async fn nodejs_run_context_is_per_run_reaches_children_and_does_not_leak() {
        let (_d, f) = factory();
        run_context_is_per_run_and_reaches_children(&*f, NODE, NODE_RUN_ENV).await;
    }

    #[tokio::test]
    async fn nodejs_collects_logs_per_activation_up_to_the_sentinels() {
        let (_d, f) = factory();
        collects_logs_per_activation(&*f, NODE, NODE_LOG).await;
    }

    #[tokio::test]
    async fn nodejs_truncates_logs_at_the_limit() {
        let (_d, f) = factory();
        truncates_logs_at_the_limit(&*f, NODE, NODE_SPAM).await;
    }

    #[tokio::test]
    async fn nodejs_survives_twenty_megabytes_of_output() {
        let (_d, f) = factory();
        survives_a_flood_of_output(&*f, NODE, NODE_SPAM).await;
    }

    #[tokio::test]
    async fn nodejs_times_out_and_is_killed() {
        let (_d, f) = factory();
        times_out_and_kills_the_instance(
            &*f,
            NODE,
            "function main() { return new Promise(() => {}); }",
        )
        .await;
    }

    #[tokio::test]
    async fn nodejs_process_exit_is_reported_as_exited() {
        let (_d, f) = factory();
        reports_exit_of_the_runner(
            &*f,
            NODE,
            "function main() { console.log('bye'); process.exit(3); }",
        )
        .await;
    }

    #[tokio::test]
    async fn nodejs_syntax_error_fails_init() {
        let (_d, f) = factory();
        reports_init_failure(&*f, NODE, "function main( {").await;
    }

    #[tokio::test]
    async fn nodejs_runs_concurrently_when_allowed() {
        let (_d, f) = factory();
        runs_concurrently_when_allowed(&*f, NODE, NODE_SLEEP).await;
    }

    #[tokio::test]
    async fn nodejs_suspends_and_resumes() {
        let (_d, f) = factory();
        suspends_and_resumes(&*f, NODE, NODE_ECHO).await;
    }

    #[tokio::test]
    async fn zip_with_a_parent_dir_entry_is_refused() {
        let (_d, f) = factory();
        refuses_a_zip_slip_archive(&*f, NODE).await;
    }

    #[tokio::test]
    async fn unknown_kind_is_refused() {
        let (_d, f) = factory();
        refuses_an_unknown_kind(&*f).await;
    }

    // ----- Node.js specifics (reference §6.5) -----

    async fn node_result(code: &str, args: serde_json::Value) -> (u16, serde_json::Value) {
        let (_d, f) = factory();
        let c = started(&*f, NODE, code).await;
        let out = run(&*c, args).await;
        c.destroy().await;
        out
    }

    #[tokio::test]
    async fn nodejs_finds_main_in_module_exports_and_exports() {
        let a = "module.exports.main = (a) => ({ via: 'module.exports', a: a.a });";
        assert_eq!(
            node_result(a, json!({"a": 1})).await,
            (200, json!({"via": "module.exports", "a": 1}))
        );
        let b = "exports.main = () => ({ via: 'exports' });";
        assert_eq!(
            node_result(b, json!({})).await,
            (200, json!({"via": "exports"}))
        );
    }

    #[tokio::test]
    async fn nodejs_uses_the_named_entry_point() {
        let (_d, f) = factory();
        let c = create(&*f, NODE).await;
        let code = "function other(a) { return { other: true }; }";
        assert_eq!(init(&*c, init_req(code, "other")).await.0, 200);
        assert_eq!(run(&*c, json!({})).await, (200, json!({"other": true})));
        c.destroy().await;
    }

    #[tokio::test]
    async fn nodejs_missing_entry_point_fails_init() {
        let (_d, f) = factory();
        reports_init_failure(&*f, NODE, "function notmain() { return {}; }").await;
    }

    #[tokio::test]
    async fn nodejs_awaits_async_results() {
        let code = "async function main(a) { await new Promise(r => setTimeout(r, 5)); return { n: a.n + 1 }; }";
        assert_eq!(
            node_result(code, json!({"n": 1})).await,
            (200, json!({"n": 2}))
        );
    }

    #[tokio::test]
    async fn nodejs_undefined_result_is_an_empty_object() {
        assert_eq!(
            node_result("function main() {}", json!({})).await,
            (200, json!({}))
        );
    }

    #[tokio::test]
    async fn nodejs_non_object_result_is_not_a_dictionary() {
        for code in [
            "function main() { return 42; }",
            "function main() { return 'text'; }",
        ] {
            assert_eq!(
                node_result(code, json!({})).await,
                (
                    502,
                    json!({"error": "The action did not return a dictionary."})
                )
            );
        }
    }

    #[tokio::test]
    async fn nodejs_thrown_error_is_a_502_error() {
        let (status, body) =
            node_result("function main() { throw new Error('boom'); }", json!({})).await;
        assert_eq!(status, 502);
        assert_eq!(body, json!({"error": "An error has occurred: Error: boom"}));
    }

    #[tokio::test]
    async fn nodejs_rejected_promise_is_an_application_error() {
        let (status, body) = node_result(
            "function main() { return Promise.reject({ reason: 'nope' }); }",
            json!({}),
        )
        .await;
        assert_eq!((status, body), (200, json!({"error": {"reason": "nope"}})));
        let (status, body) = node_result(
            "function main() { return Promise.reject(new Error('bad')); }",
            json!({}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["error"]["message"], "bad");
        assert_eq!(body["error"]["name"], "Error");
        let empty = node_result("function main() { return Promise.reject(); }", json!({})).await;
        assert_eq!(empty, (200, json!({"error": {}})));
    }

    #[tokio::test]
    async fn nodejs_console_output_never_reaches_the_reply_channel() {
        let code = r#"function main() { console.log('{"id":1,"status":500,"body":{}}'); return { ok: 1 }; }"#;
        assert_eq!(node_result(code, json!({})).await, (200, json!({"ok": 1})));
    }

    #[tokio::test]
    async fn nodejs_zip_action_loads_package_json_main() {
        let (_d, f) = factory();
        let c = create(&*f, NODE).await;
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
    }

    #[tokio::test]
    async fn nodejs_zip_action_accepts_file_dot_function_main() {
        let (_d, f) = factory();
        let c = create(&*f, NODE).await;
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
    }

    #[tokio::test]
    async fn nodejs_zip_without_package_json_uses_index_js() {
        let (_d, f) = factory();
        let c = create(&*f, NODE).await;
        let req = zip_init_req(
            &[("index.js", "exports.main = () => ({ index: true });")],
            "main",
        );
        assert_eq!(init(&*c, req).await.0, 200);
        assert_eq!(run(&*c, json!({})).await, (200, json!({"index": true})));
        c.destroy().await;
    }

    // ----- shared cases and specifics, Python (reference §6.6) -----

    #[tokio::test]
    async fn python_refuses_a_second_init() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        refuses_a_second_init(&*f, PYTHON, PY_ECHO).await;
    }

    #[tokio::test]
    async fn python_echoes_arguments_with_unicode() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        echoes_arguments_with_unicode(&*f, PYTHON, PY_ECHO).await;
    }

    #[tokio::test]
    async fn python_passes_a_one_megabyte_input() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        passes_a_large_input(&*f, PYTHON, PY_ECHO).await;
    }

    #[tokio::test]
    async fn python_exposes_run_context_and_init_env() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        exposes_run_context_and_init_env(&*f, PYTHON, PY_ENV).await;
    }

    #[tokio::test]
    async fn python_run_context_is_per_run_reaches_children_and_does_not_leak() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        run_context_is_per_run_and_reaches_children(&*f, PYTHON, PY_RUN_ENV).await;
    }

    #[tokio::test]
    async fn python_collects_logs_per_activation_up_to_the_sentinels() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        collects_logs_per_activation(&*f, PYTHON, PY_LOG).await;
    }

    #[tokio::test]
    async fn python_truncates_logs_at_the_limit() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        truncates_logs_at_the_limit(&*f, PYTHON, PY_SPAM).await;
    }

    #[tokio::test]
    async fn python_times_out_and_is_killed() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        let hang = "import time\ndef main(args):\n    time.sleep(60)\n    return {}\n";
        times_out_and_kills_the_instance(&*f, PYTHON, hang).await;
    }

    #[tokio::test]
    async fn python_os_exit_is_reported_as_exited() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        let code = "import os, sys\ndef main(args):\n    print('bye')\n    sys.stdout.flush()\n    os._exit(3)\n";
        reports_exit_of_the_runner(&*f, PYTHON, code).await;
    }

    #[tokio::test]
    async fn python_syntax_error_fails_init() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        reports_init_failure(&*f, PYTHON, "def main(args)\n    return {}\n").await;
    }

    #[tokio::test]
    async fn python_runs_concurrently_when_allowed() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        runs_concurrently_when_allowed(&*f, PYTHON, PY_SLEEP).await;
    }

    #[tokio::test]
    async fn python_exception_is_an_application_error() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        let c = started(
            &*f,
            PYTHON,
            "def main(args):\n    raise ValueError('bad value')\n",
        )
        .await;
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
    }

    #[tokio::test]
    async fn python_non_dict_result_is_refused_and_lists_are_accepted() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        let c = started(&*f, PYTHON, "def main(args):\n    return args.get('r')\n").await;
        assert_eq!(
            run(&*c, json!({"r": 5})).await,
            (
                502,
                json!({"error": "The action did not return a dictionary or array."})
            )
        );
        assert_eq!(run(&*c, json!({"r": [1, 2]})).await, (200, json!([1, 2])));
        c.destroy().await;
    }

    #[tokio::test]
    async fn python_result_that_is_not_json_is_refused_without_hanging() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        let c = started(
            &*f,
            PYTHON,
            "def main(args):\n    return {'x': float('nan')}\n",
        )
        .await;
        let (status, _) = run(&*c, json!({})).await;
        assert_eq!(status, 502);
        assert_eq!(run(&*c, json!({})).await.0, 502, "the runner stays usable");
        c.destroy().await;
    }

    #[tokio::test]
    async fn python_zip_action_runs_main_py_with_its_modules() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        let c = create(&*f, PYTHON).await;
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
    }

    #[tokio::test]
    async fn python_zip_without_main_py_fails_init() {
        if python_missing() {
            return;
        }
        let (_d, f) = factory();
        let c = create(&*f, PYTHON).await;
        let (status, body) = init(&*c, zip_init_req(&[("other.py", "x = 1\n")], "main")).await;
        assert_eq!(status, 502, "{body}");
        c.destroy().await;
    }
}
