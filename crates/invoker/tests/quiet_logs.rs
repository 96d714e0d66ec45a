//! Activations whose action printed nothing: the runner writes no sentinels and marks its
//! reply quiet, and the invoker collects nothing for them without waiting
//! (`docs/design/001-runner-protocol.md`, "Sentinels"). Checked on the real runners: logs stay
//! attributed to the activation that printed them, output printed after an activation returned
//! goes to a later one, a child process' output stays with its activation, and output written
//! to fd 1 directly goes to the next activation that prints.

mod support;

use edgewhisk_invoker::container::{Container, ContainerFactory};
use serde_json::json;
use std::time::{Duration, Instant};
use support::*;

/// Node.js: `p` prints a line on each stream, `late` prints one 100 ms after returning,
/// `bypass` writes to fd 1 without `process.stdout`, `child` starts a child that writes to the
/// inherited stderr.
const NODE_QUIET: &str = r#"
const fs = require('fs');
function main(a) {
  if (a.p) { console.log('out ' + a.p); console.error('err ' + a.p); }
  if (a.late) setTimeout(() => console.log('late'), 100);
  if (a.bypass) fs.writeSync(1, 'bypass\n');
  if (a.child) require('child_process').execSync('echo child >&2');
  return {};
}"#;

/// The same for Python.
const PY_QUIET: &str = r#"
import os
import subprocess
import sys
import threading
def main(a):
    if a.get("p"):
        print("out " + a["p"])
        print("err " + a["p"], file=sys.stderr)
    if a.get("late"):
        threading.Timer(0.1, lambda: print("late", flush=True)).start()
    if a.get("bypass"):
        os.write(1, b"bypass\n")
    if a.get("child"):
        subprocess.run(["/bin/sh", "-c", "echo child >&2"], check=True)
    return {}
"#;

/// Runs `args` and returns the texts (`stream: text`) of its collected log, sorted (the order
/// of lines across the two streams is the order they were read in); a quiet run's collection
/// must not wait for sentinels (the sentinel timeout is 2 s).
async fn logged(c: &dyn Container, args: serde_json::Value) -> Vec<String> {
    assert_eq!(run(c, args).await.0, 200);
    let start = Instant::now();
    let logs = c.logs(LOG_LIMIT, true).await;
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "collecting took {:?}",
        start.elapsed()
    );
    let mut texts: Vec<String> = logs.lines.iter().map(|l| log_text(l).to_owned()).collect();
    texts.sort();
    texts
}

async fn attributes_logs_around_quiet_activations(
    f: &dyn ContainerFactory,
    kind: &str,
    code: &str,
) {
    let c = started(f, kind, code).await;
    for round in ["one", "two"] {
        assert!(logged(&*c, json!({})).await.is_empty());
        assert_eq!(
            logged(&*c, json!({"p": round})).await,
            [
                format!("stderr: err {round}"),
                format!("stdout: out {round}")
            ]
        );
    }
    assert!(logged(&*c, json!({})).await.is_empty());
    c.destroy().await;
}

async fn collects_late_output_in_a_later_activation(
    f: &dyn ContainerFactory,
    kind: &str,
    code: &str,
) {
    let c = started(f, kind, code).await;
    assert!(logged(&*c, json!({"late": true})).await.is_empty());
    assert!(logged(&*c, json!({})).await.is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    // The late line was printed since the last sentinels: this run writes them, and its log
    // is the late line.
    assert_eq!(logged(&*c, json!({})).await, ["stdout: late"]);
    assert_eq!(
        logged(&*c, json!({"p": "after"})).await,
        ["stderr: err after", "stdout: out after"]
    );
    assert!(logged(&*c, json!({})).await.is_empty());
    c.destroy().await;
}

async fn gives_bypassing_output_to_the_next_activation_that_prints(
    f: &dyn ContainerFactory,
    kind: &str,
    code: &str,
) {
    let c = started(f, kind, code).await;
    // The runner does not see a write to fd 1 itself: the run is quiet.
    assert!(logged(&*c, json!({"bypass": true})).await.is_empty());
    let next = logged(&*c, json!({"p": "next"})).await;
    assert_eq!(
        next,
        ["stderr: err next", "stdout: bypass", "stdout: out next"]
    );
    assert!(logged(&*c, json!({})).await.is_empty());
    c.destroy().await;
}

async fn keeps_a_child_process_output_with_its_activation(
    f: &dyn ContainerFactory,
    kind: &str,
    code: &str,
) {
    let c = started(f, kind, code).await;
    assert!(logged(&*c, json!({})).await.is_empty());
    assert_eq!(logged(&*c, json!({"child": true})).await, ["stderr: child"]);
    assert!(logged(&*c, json!({})).await.is_empty());
    c.destroy().await;
}

macro_rules! cases {
    ($($name:ident: $kind:expr, $code:expr, $backend:ident, $check:ident;)*) => {$(
        #[tokio::test]
        async fn $name() {
            if runtime_missing($kind) {
                return;
            }
            let Some((_dir, f)) = backends::$backend() else {
                return;
            };
            $check(&*f, $kind, $code).await;
        }
    )*};
}

#[cfg(test)]
mod runners {
    use super::*;

    cases! {
        nodejs_attributes_logs_around_quiet_activations: NODE, NODE_QUIET, process,
            attributes_logs_around_quiet_activations;
        nodejs_attributes_logs_around_quiet_activations_runc: NODE, NODE_QUIET, runc,
            attributes_logs_around_quiet_activations;
        nodejs_collects_late_output_in_a_later_activation: NODE, NODE_QUIET, process,
            collects_late_output_in_a_later_activation;
        nodejs_gives_bypassing_output_to_the_next_activation_that_prints: NODE, NODE_QUIET, process,
            gives_bypassing_output_to_the_next_activation_that_prints;
        python_attributes_logs_around_quiet_activations: PYTHON, PY_QUIET, process,
            attributes_logs_around_quiet_activations;
        python_collects_late_output_in_a_later_activation: PYTHON, PY_QUIET, process,
            collects_late_output_in_a_later_activation;
        python_gives_bypassing_output_to_the_next_activation_that_prints: PYTHON, PY_QUIET, process,
            gives_bypassing_output_to_the_next_activation_that_prints;
        nodejs_keeps_a_child_process_output_with_its_activation: NODE, NODE_QUIET, process,
            keeps_a_child_process_output_with_its_activation;
        python_keeps_a_child_process_output_with_its_activation: PYTHON, PY_QUIET, process,
            keeps_a_child_process_output_with_its_activation;
    }
}
