//! A runtime conformance suite over the [`ContainerFactory`] trait.
//!
//! Every check takes `&dyn ContainerFactory`, so every backend (`process` and `runc`) is run
//! through the same cases: `tests/conformance.rs` holds the one table of cases and the
//! backends each runs on. The cases follow OpenWhisk's
//! `BasicActionRunnerTests` and the action interface of its runtimes (upstream
//! `docs/actions-new.md`, summarised per runtime in `docs/design/001-runner-protocol.md`):
//! statuses and bodies of `/init` and `/run`, environment, logs with sentinels, limits.

#![allow(dead_code)] // each test file uses the part it needs

use base64::Engine as _;
use edgewhisk_invoker::container::process::{ProcessConfig, ProcessFactory};
use edgewhisk_invoker::container::runc::{RuncConfig, RuncFactory, runc_available};
use edgewhisk_invoker::container::{
    Container, ContainerError, ContainerFactory, ContainerSpec, InitRequest, RunRequest,
    RunnerOutcome,
};
use serde_json::{Value, json};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The backends the suite runs against, each on a fresh work directory.
pub(crate) mod backends {
    use super::*;

    /// The `process` backend; always available.
    pub(crate) fn process() -> Option<(tempfile::TempDir, Arc<dyn ContainerFactory>)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = ProcessFactory::new(ProcessConfig::new(dir.path())).expect("factory");
        assert!(!f.is_isolated());
        Some((dir, Arc::new(f)))
    }

    /// The `runc` backend with its default configuration, or `None` (with the reason printed)
    /// when runc cannot run here.
    pub(crate) fn runc() -> Option<(tempfile::TempDir, Arc<dyn ContainerFactory>)> {
        let (dir, f) = runc_with(RuncConfig::default())?;
        Some((dir, f))
    }

    /// The `runc` backend with `config`, or `None` (with the reason printed) when runc
    /// cannot run here: it needs the `runc` binary and root.
    pub(crate) fn runc_with(config: RuncConfig) -> Option<(tempfile::TempDir, Arc<RuncFactory>)> {
        if !runc_available(&config) {
            eprintln!("skipped: runc is not installed or the tests do not run as root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let f = RuncFactory::new(config, ProcessConfig::new(dir.path()), 1024).expect("factory");
        assert!(f.is_isolated());
        Some((dir, Arc::new(f)))
    }
}

/// Whether the runtime of `kind` is missing here (printing why the test is skipped): Python
/// cases need `/usr/bin/python3`; Node.js is required.
pub(crate) fn runtime_missing(kind: &str) -> bool {
    let missing = kind == PYTHON && !std::path::Path::new("/usr/bin/python3").exists();
    if missing {
        eprintln!("skipped: /usr/bin/python3 is not installed");
    }
    missing
}

/// Bound of any request in the suite that is expected to finish.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(20);

/// Log limit used where the limit is not what is tested.
pub(crate) const LOG_LIMIT: u64 = 1024 * 1024;

/// The kinds the suite runs.
pub(crate) const NODE: &str = "nodejs:20";
/// The Python kind.
pub(crate) const PYTHON: &str = "python:3";

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A spec for `kind`.
pub(crate) fn spec(kind: &str, allow_concurrent: bool) -> ContainerSpec {
    ContainerSpec {
        name: format!("conformance-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        kind: kind.into(),
        memory_mb: 256,
        allow_concurrent,
    }
}

/// An init request for plain source code.
pub(crate) fn init_req(code: &str, main: &str) -> InitRequest {
    InitRequest {
        name: "action".into(),
        main: main.into(),
        binary: false,
        code: code.into(),
        env: serde_json::Map::new(),
    }
}

/// An init request for a zip built from `entries`.
pub(crate) fn zip_init_req(entries: &[(&str, &str)], main: &str) -> InitRequest {
    InitRequest {
        binary: true,
        code: base64::engine::general_purpose::STANDARD.encode(zip_of(entries)),
        ..init_req("", main)
    }
}

/// A zip archive of `(name, content)` entries (names are not checked, so tests can build
/// hostile archives).
pub(crate) fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, body) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        w.write_all(body.as_bytes()).expect("zip write");
    }
    w.finish().expect("zip finish").into_inner()
}

/// A run request with `value` and a fixed activation context.
pub(crate) fn run_req(value: Value) -> RunRequest {
    RunRequest {
        value: serde_json::value::to_raw_value(&value).expect("raw value"),
        namespace: "guest".into(),
        action_name: "/guest/action".into(),
        action_version: "0.0.1".into(),
        activation_id: "0123456789abcdef0123456789abcdef".into(),
        transaction_id: "tid-1".into(),
        deadline: "1700000000000".into(),
        api_key: Some("uuid:key".into()),
    }
}

/// Starts an instance of `kind` (not initialised).
pub(crate) async fn create(f: &dyn ContainerFactory, kind: &str) -> Box<dyn Container> {
    f.create(&spec(kind, false)).await.expect("create")
}

/// Sends `/init` and returns status and body; panics when the runner gave no reply.
pub(crate) async fn init(c: &dyn Container, req: InitRequest) -> (u16, Value) {
    let (_, outcome) = c.initialize(req, TIMEOUT).await.expect("initialize");
    replied(outcome)
}

/// Sends `/run` with `value` and returns status and body.
pub(crate) async fn run(c: &dyn Container, value: Value) -> (u16, Value) {
    let (_, outcome) = c.run(run_req(value), TIMEOUT).await.expect("run");
    replied(outcome)
}

/// Status and parsed body of a reply.
pub(crate) fn replied(outcome: RunnerOutcome) -> (u16, Value) {
    match outcome {
        RunnerOutcome::Replied(r) => (
            r.status,
            serde_json::from_str(r.body.get()).expect("reply body is JSON"),
        ),
        other => panic!("expected a reply, got {other:?}"),
    }
}

/// Starts and initialises an instance running `code`.
pub(crate) async fn started(
    f: &dyn ContainerFactory,
    kind: &str,
    code: &str,
) -> Box<dyn Container> {
    let c = create(f, kind).await;
    let (status, body) = init(&*c, init_req(code, "main")).await;
    assert_eq!(status, 200, "init failed: {body}");
    c
}

/// The text after `<timestamp> ` of a collected log line.
pub(crate) fn log_text(line: &str) -> &str {
    line.get(31..).unwrap_or(line)
}

// ---------------------------------------------------------------------------------------
// Cases shared by all runtimes: `echo` is an action returning its arguments, `env_code`
// returns `{activation_id, namespace, action_name, deadline, api_key, transaction_id, param}`
// read from `__OW_*` and `MY_PARAM`.

/// Init succeeds once; a second init is refused with 403 and OpenWhisk's message.
pub(crate) async fn refuses_a_second_init(f: &dyn ContainerFactory, kind: &str, echo: &str) {
    let c = create(f, kind).await;
    assert_eq!(init(&*c, init_req(echo, "main")).await.0, 200);
    let (status, body) = init(&*c, init_req(echo, "main")).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"error": "Cannot initialize the action more than once."})
    );
    c.destroy().await;
}

/// The arguments come back unchanged, unicode included.
pub(crate) async fn echoes_arguments_with_unicode(
    f: &dyn ContainerFactory,
    kind: &str,
    echo: &str,
) {
    let c = started(f, kind, echo).await;
    let args = json!({"s": "héllo wörld ✓ 日本 🎉", "n": 42, "nested": {"a": [1, null, true]},
                      "newline": "a\nb", "quote": "\"\\"});
    assert_eq!(run(&*c, args.clone()).await, (200, args));
    c.destroy().await;
}

/// A ~1 MB argument passes through.
pub(crate) async fn passes_a_large_input(f: &dyn ContainerFactory, kind: &str, echo: &str) {
    let c = started(f, kind, echo).await;
    let big = "x".repeat(1024 * 1024);
    let (status, body) = run(&*c, json!({"big": big})).await;
    assert_eq!(status, 200);
    assert_eq!(body["big"].as_str().map(str::len), Some(1024 * 1024));
    c.destroy().await;
}

/// The run's context fields are visible as `__OW_*` and init env entries as variables.
pub(crate) async fn exposes_run_context_and_init_env(
    f: &dyn ContainerFactory,
    kind: &str,
    env_code: &str,
) {
    let c = create(f, kind).await;
    let mut req = init_req(env_code, "main");
    req.env.insert("MY_PARAM".into(), json!("from init"));
    req.env.insert("MY_OBJECT".into(), json!({"k": [1, 2]}));
    assert_eq!(init(&*c, req).await.0, 200);
    let (status, body) = run(&*c, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "activation_id": "0123456789abcdef0123456789abcdef",
            "namespace": "guest",
            "action_name": "/guest/action",
            "action_version": "0.0.1",
            "transaction_id": "tid-1",
            "deadline": "1700000000000",
            "api_key": "uuid:key",
            "param": "from init",
            "object": "{\"k\":[1,2]}",
        })
    );
    c.destroy().await;
}

/// Each run's `__OW_*` variables replace the previous run's (a variable a run lacks is unset),
/// child processes the action starts see them, and setting them does not grow the instance
/// (glibc's setenv(3) keeps every value ever set, so a runner must not use it per run).
/// `code` returns `own` (its `__OW_ACTIVATION_ID`), `key` (`__OW_API_KEY` or null), with
/// `child: true` what `sh` prints for `$__OW_ACTIVATION_ID/${__OW_API_KEY-unset}`, and with
/// `rss: true` its resident memory in kB (outside the language's own heap where that can grow
/// by itself, as V8's young generation does).
pub(crate) async fn run_context_is_per_run_and_reaches_children(
    f: &dyn ContainerFactory,
    kind: &str,
    code: &str,
) {
    let c = started(f, kind, code).await;
    let mut first = run_req(json!({"child": true}));
    first.activation_id = "a".repeat(32);
    let (status, body) = replied(c.run(first, TIMEOUT).await.expect("run").1);
    assert_eq!(status, 200, "{body}");
    let a = "a".repeat(32);
    assert_eq!(body["own"], json!(a));
    assert_eq!(body["key"], json!("uuid:key"));
    assert_eq!(body["child"], json!(format!("{a}/uuid:key")));

    let mut second = run_req(json!({"child": true}));
    second.activation_id = "b".repeat(32);
    second.api_key = None;
    let (status, body) = replied(c.run(second, TIMEOUT).await.expect("run").1);
    assert_eq!(status, 200, "{body}");
    let b = "b".repeat(32);
    assert_eq!(body["own"], json!(b));
    assert_eq!(body["key"], Value::Null);
    assert_eq!(body["child"], json!(format!("{b}/unset")));

    // With the leak, 8,000 runs with fresh ids grew an instance by ~2-3 MB; without it, by
    // up to ~1.1 MB when the garbage collector runs late on a busy machine.
    let mut rss = Vec::new();
    for i in 0..9000u32 {
        let measure = i == 999 || i == 8999;
        let mut req = run_req(json!({"rss": measure}));
        req.activation_id = format!("{i:032x}");
        req.transaction_id = format!("tid-{i}");
        req.deadline = format!("{}", 1_700_000_000_000u64 + u64::from(i));
        let (status, body) = replied(c.run(req, TIMEOUT).await.expect("run").1);
        assert_eq!(status, 200, "{body}");
        if measure {
            rss.push(body["rss"].as_u64().expect("rss in kB"));
        }
    }
    let growth = rss[1].saturating_sub(rss[0]);
    assert!(
        growth < 1536,
        "8,000 runs grew the instance by {growth} kB ({rss:?})"
    );
    c.destroy().await;
}

/// stdout and stderr of each run are collected up to the sentinels, per activation, formatted
/// as OpenWhisk log lines, with the sentinels themselves removed.
pub(crate) async fn collects_logs_per_activation(
    f: &dyn ContainerFactory,
    kind: &str,
    log_code: &str,
) {
    let c = started(f, kind, log_code).await;
    for round in ["first", "second"] {
        assert_eq!(run(&*c, json!({"msg": round})).await.0, 200);
        let logs = c.logs(LOG_LIMIT, true).await;
        let texts: Vec<&str> = logs.lines.iter().map(|l| log_text(l)).collect();
        assert!(
            texts.contains(&format!("stdout: out {round}").as_str()),
            "{texts:?}"
        );
        assert!(
            texts.contains(&format!("stderr: err {round}").as_str()),
            "{texts:?}"
        );
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert!(
            logs.lines
                .iter()
                .all(|l| l.len() > 31 && l.as_bytes()[30] == b' ')
        );
    }
    c.destroy().await;
}

/// Output beyond the log limit is cut with OpenWhisk's truncation line; `spam_code` prints
/// `args.lines` lines of 99 characters on stdout.
pub(crate) async fn truncates_logs_at_the_limit(
    f: &dyn ContainerFactory,
    kind: &str,
    spam_code: &str,
) {
    let c = started(f, kind, spam_code).await;
    assert_eq!(run(&*c, json!({"lines": 50})).await.0, 200);
    let logs = c.logs(1000, true).await;
    // Each line of 99 characters costs 139 bytes (its text, newline and the 39-byte stored
    // prefix): 7 fit into 1000 bytes.
    assert_eq!(logs.lines.len(), 8, "{:?}", logs.lines);
    assert_eq!(
        log_text(&logs.lines[7]),
        "stderr: Logs were truncated because the total bytes size exceeds the limit of 1000 bytes."
    );
    // The next activation's logs are unaffected by the previous overflow.
    assert_eq!(run(&*c, json!({"lines": 2})).await.0, 200);
    assert_eq!(c.logs(1000, true).await.lines.len(), 2);
    c.destroy().await;
}

/// An action printing 20 MB still answers, and its log is truncated rather than buffered.
pub(crate) async fn survives_a_flood_of_output(
    f: &dyn ContainerFactory,
    kind: &str,
    spam_code: &str,
) {
    let c = started(f, kind, spam_code).await;
    assert_eq!(run(&*c, json!({"lines": 200_000})).await.0, 200);
    let logs = c.logs(10 * 1024 * 1024, true).await;
    let last = logs.lines.last().expect("lines");
    assert!(last.contains("Logs were truncated"), "{last}");
    assert_eq!(run(&*c, json!({"lines": 1})).await.0, 200);
    assert_eq!(c.logs(LOG_LIMIT, true).await.lines.len(), 1);
    c.destroy().await;
}

/// A request that outlives its timeout gives `TimedOut` and the instance is killed.
pub(crate) async fn times_out_and_kills_the_instance(
    f: &dyn ContainerFactory,
    kind: &str,
    hang: &str,
) {
    let c = started(f, kind, hang).await;
    let (interval, outcome) = c
        .run(run_req(json!({})), Duration::from_millis(500))
        .await
        .expect("run");
    assert!(matches!(outcome, RunnerOutcome::TimedOut), "{outcome:?}");
    assert!(interval.duration() >= Duration::from_millis(500));
    let (_, next) = c.run(run_req(json!({})), TIMEOUT).await.expect("run");
    assert!(
        matches!(next, RunnerOutcome::Exited),
        "killed instance answered: {next:?}"
    );
    c.destroy().await;
}

/// An action that ends the runner process gives `Exited`.
pub(crate) async fn reports_exit_of_the_runner(
    f: &dyn ContainerFactory,
    kind: &str,
    exit_code: &str,
) {
    let c = started(f, kind, exit_code).await;
    let (_, outcome) = c.run(run_req(json!({})), TIMEOUT).await.expect("run");
    assert!(matches!(outcome, RunnerOutcome::Exited), "{outcome:?}");
    let logs = c.logs(LOG_LIMIT, false).await;
    assert!(
        logs.lines.iter().any(|l| log_text(l) == "stdout: bye"),
        "{:?}",
        logs.lines
    );
    c.destroy().await;
}

/// An init failure is 502 "Initialization has failed due to: …" and is followed by the
/// sentinels, so its logs are collected completely.
pub(crate) async fn reports_init_failure(f: &dyn ContainerFactory, kind: &str, broken: &str) {
    let c = create(f, kind).await;
    let (status, body) = init(&*c, init_req(broken, "main")).await;
    assert_eq!(status, 502, "{body}");
    let error = body["error"].as_str().expect("error text");
    assert!(
        error.starts_with("Initialization has failed due to: "),
        "{error}"
    );
    let logs = c.logs(LOG_LIMIT, true).await;
    assert!(
        !logs.lines.iter().any(|l| l.contains("There was an issue")),
        "{:?}",
        logs.lines
    );
    c.destroy().await;
}

/// With concurrency allowed, a fast run overtakes a slow one in the same instance;
/// `sleep_code` returns `{"slept": args.ms}` after sleeping `args.ms` milliseconds.
pub(crate) async fn runs_concurrently_when_allowed(
    f: &dyn ContainerFactory,
    kind: &str,
    sleep_code: &str,
) {
    let c = f.create(&spec(kind, true)).await.expect("create");
    assert_eq!(init(&*c, init_req(sleep_code, "main")).await.0, 200);
    let slow = c.run(run_req(json!({"ms": 1500})), TIMEOUT);
    let fast = c.run(run_req(json!({"ms": 10})), TIMEOUT);
    let ((slow_at, slow_out), (fast_at, fast_out)) =
        tokio::join!(async { slow.await.expect("slow") }, async {
            fast.await.expect("fast")
        });
    assert_eq!(replied(slow_out), (200, json!({"slept": 1500})));
    assert_eq!(replied(fast_out), (200, json!({"slept": 10})));
    assert!(
        fast_at.end < slow_at.end,
        "the fast run waited for the slow one"
    );
    c.destroy().await;
}

/// A suspended instance makes no progress; resumed, it answers again.
pub(crate) async fn suspends_and_resumes(f: &dyn ContainerFactory, kind: &str, echo: &str) {
    let c = started(f, kind, echo).await;
    c.suspend().await.expect("suspend");
    c.resume().await.expect("resume");
    assert_eq!(run(&*c, json!({"a": 1})).await, (200, json!({"a": 1})));
    c.suspend().await.expect("suspend");
    let (_, outcome) = c
        .run(run_req(json!({})), Duration::from_millis(300))
        .await
        .expect("run");
    assert!(matches!(outcome, RunnerOutcome::TimedOut), "{outcome:?}");
    c.destroy().await;
}

/// A zip whose entries climb out of the code directory is refused.
pub(crate) async fn refuses_a_zip_slip_archive(f: &dyn ContainerFactory, kind: &str) {
    let c = create(f, kind).await;
    let req = zip_init_req(&[("index.js", "x"), ("../escaped.js", "y")], "main");
    let err = c
        .initialize(req, TIMEOUT)
        .await
        .expect_err("archive must be refused");
    assert!(matches!(err, ContainerError::Archive(_)), "{err}");
    c.destroy().await;
}

/// A kind the backend has no runner for is refused at create.
pub(crate) async fn refuses_an_unknown_kind(f: &dyn ContainerFactory) {
    let err = f
        .create(&spec("cobol:1", false))
        .await
        .expect_err("unknown");
    assert!(matches!(err, ContainerError::UnknownKind(_)), "{err}");
}

// ----- action sources the cases run, shared by every backend's suite -----

pub(crate) const NODE_ECHO: &str = "function main(args) { return args; }";
pub(crate) const NODE_ENV: &str = r#"
function main() {
  const e = process.env;
  return { activation_id: e.__OW_ACTIVATION_ID, namespace: e.__OW_NAMESPACE,
           action_name: e.__OW_ACTION_NAME, action_version: e.__OW_ACTION_VERSION,
           transaction_id: e.__OW_TRANSACTION_ID, deadline: e.__OW_DEADLINE,
           api_key: e.__OW_API_KEY, param: e.MY_PARAM, object: e.MY_OBJECT };
}"#;
pub(crate) const NODE_RUN_ENV: &str = r#"
const { execFileSync } = require('child_process');
function main(args) {
  const e = process.env;
  const out = { own: e.__OW_ACTIVATION_ID, key: e.__OW_API_KEY === undefined ? null : e.__OW_API_KEY };
  if (args.child) {
    out.child = execFileSync('/bin/sh', ['-c', 'printf %s "$__OW_ACTIVATION_ID/${__OW_API_KEY-unset}"']).toString();
    e.MY_NUMBER = 5;
    if (e.MY_NUMBER !== '5') throw new Error('process.env must store strings');
  }
  if (args.rss) {
    // Resident memory outside V8's heap (which may grow its young generation meanwhile).
    const m = process.memoryUsage();
    out.rss = Math.round((m.rss - m.heapTotal) / 1024);
  }
  return out;
}"#;
pub(crate) const NODE_LOG: &str = r#"
function main(args) { console.log('out ' + args.msg); console.error('err ' + args.msg); return {}; }"#;
pub(crate) const NODE_SPAM: &str = r#"
function main(args) { const l = 'x'.repeat(99); for (let i = 0; i < args.lines; i++) console.log(l); return {}; }"#;
pub(crate) const NODE_SLEEP: &str = r#"
function main(args) { return new Promise(r => setTimeout(() => r({ slept: args.ms }), args.ms)); }"#;
pub(crate) const NODE_HANG: &str = "function main() { return new Promise(() => {}); }";
pub(crate) const NODE_EXIT: &str = "function main() { console.log('bye'); process.exit(3); }";

pub(crate) const PY_ECHO: &str = "def main(args):\n    return args\n";
pub(crate) const PY_ENV: &str = r#"
import os
def main(args):
    e = os.environ
    return {"activation_id": e["__OW_ACTIVATION_ID"], "namespace": e["__OW_NAMESPACE"],
            "action_name": e["__OW_ACTION_NAME"], "action_version": e["__OW_ACTION_VERSION"],
            "transaction_id": e["__OW_TRANSACTION_ID"], "deadline": e["__OW_DEADLINE"],
            "api_key": e["__OW_API_KEY"], "param": e["MY_PARAM"], "object": e["MY_OBJECT"]}
"#;
pub(crate) const PY_RUN_ENV: &str = r#"
import os
import subprocess
def main(args):
    out = {"own": os.environ.get("__OW_ACTIVATION_ID"), "key": os.environ.get("__OW_API_KEY")}
    if args.get("child"):
        out["child"] = subprocess.run(
            ["/bin/sh", "-c", 'printf %s "$__OW_ACTIVATION_ID/${__OW_API_KEY-unset}"'],
            capture_output=True, text=True, check=True).stdout
    if args.get("rss"):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    out["rss"] = int(line.split()[1])
    return out
"#;
pub(crate) const PY_LOG: &str = r#"
import sys
def main(args):
    print("out " + args["msg"])
    print("err " + args["msg"], file=sys.stderr)
    return {}
"#;
pub(crate) const PY_SPAM: &str = r#"
def main(args):
    line = "x" * 99
    for _ in range(args["lines"]):
        print(line)
    return {}
"#;
pub(crate) const PY_SLEEP: &str = r#"
import time
def main(args):
    time.sleep(args["ms"] / 1000)
    return {"slept": args["ms"]}
"#;
pub(crate) const PY_HANG: &str =
    "import time\ndef main(args):\n    time.sleep(60)\n    return {}\n";
pub(crate) const PY_EXIT: &str =
    "import os, sys\ndef main(args):\n    print('bye')\n    sys.stdout.flush()\n    os._exit(3)\n";
