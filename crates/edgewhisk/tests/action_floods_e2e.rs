//! End-to-end: what an action writes never grows the server beyond its configured limits
//! (issue 9, item 2, the invoker's side): its reply line on fd 3 is read only up to the result
//! limit plus the envelope, and the instance that wrote more is destroyed; every log line, empty
//! or not, counts against the log limit; printing the end-of-activation marker does not shift
//! later activations' logs.
//!
//! The server runs with `--isolation process` (the buffers under test are the server's own,
//! the same for every backend) and is watched through `/proc/<pid>/status`.

mod support;

use serde_json::{Value, json};
use support::api::{
    activation_eventually, annotation, assert_healthy, create_action_with, create_hello,
    invoke_blocking,
};
use support::floods::{FLOOD_RSS_SLACK_KIB, PeakRss, status_kib};
use support::{ServerGuard, ServerOptions, spawn_server_with};

/// The result limit (OpenWhisk's 1 MB), as the error messages state it.
const RESULT_LIMIT: u64 = 1_048_576;

fn process_server() -> ServerGuard {
    spawn_server_with(ServerOptions {
        extra_args: &["--isolation", "process"],
        ..ServerOptions::default()
    })
}

/// Writes 256 MiB without a newline on the reply pipe when `flood` is set (the runner's own
/// reply then ends the line), else answers with its pid.
const REPLY_FLOOD_JS: &str = "const fs = require('fs');\n\
function main(params) {\n\
  if (!params.flood) return { pid: process.pid };\n\
  const chunk = 'x'.repeat(1024 * 1024);\n\
  for (let i = 0; i < 256; i++) fs.writeSync(3, chunk);\n\
  return { wrote: true };\n\
}\n";

/// Panics unless `reply` is a developer error whose message is OpenWhisk's oversized-response
/// text; returns the size it names.
fn assert_oversized(reply: &support::api::Reply, what: &str) -> u64 {
    reply.expect_status(502, what);
    assert_eq!(
        reply.body["response"]["status"],
        "action developer error",
        "{what}: {}",
        reply.text.chars().take(500).collect::<String>()
    );
    let error = reply.body["response"]["result"]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: error text in {}", &reply.text[..500]));
    let size = error
        .strip_prefix("The action produced a response that exceeded the allowed length: ")
        .and_then(|rest| rest.strip_suffix(&format!(" > {RESULT_LIMIT} bytes.")))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{what}: unexpected message {error:?}"));
    assert!(size > RESULT_LIMIT, "{what}: {error}");
    size
}

/// Prints two million empty lines on stdout.
const EMPTY_LINES_JS: &str = "function main() {\n\
  process.stdout.write('\\n'.repeat(2000000));\n\
  return { done: true };\n\
}\n";

/// Prints a line, the bare end-of-activation marker, and another line, on stdout.
const MARKER_JS: &str = "function main(params) {\n\
  console.log('before ' + params.n);\n\
  console.log('XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX');\n\
  console.log('after ' + params.n);\n\
  return { n: params.n };\n\
}\n";

/// The same in Python.
const MARKER_PY: &str = concat!(
    "def main(args):\n",
    "    print('before %s' % args['n'])\n",
    "    print('XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX')\n",
    "    print('after %s' % args['n'])\n",
    "    return {'n': args['n']}\n",
);

/// The stored logs of a finished activation (waiting for them to be written).
async fn logs_of(s: &ServerGuard, reply: &support::api::Reply) -> Vec<String> {
    let id = reply.body["activationId"]
        .as_str()
        .unwrap_or_else(|| panic!("activation id in {}", reply.text))
        .to_owned();
    let record = activation_eventually(s, &id, |r| {
        r["logs"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await;
    record["logs"]
        .as_array()
        .expect("logs array")
        .iter()
        .map(|l| l.as_str().expect("log lines are strings").to_owned())
        .collect()
}

/// A stored log line's text after its timestamp column: `stdout: …`.
fn text_of(line: &str) -> &str {
    line.get(31..).unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_huge_reply_line_is_a_developer_error_and_the_server_stays_small() {
        let s = process_server();
        create_hello(&s).await;
        assert_healthy(&s, "start").await;
        create_action_with(
            &s,
            "reply-flood",
            json!({"exec": {"kind": "nodejs:20", "code": REPLY_FLOOD_JS},
                   "limits": {"timeout": 30000}}),
        )
        .await;
        let idle = s.rss_kib();
        let peak = PeakRss::start(s.pid());
        let reply = invoke_blocking(&s, "reply-flood", json!({"flood": true})).await;
        let peak = peak.finish();
        eprintln!("reply flood: idle RSS {idle} KiB, peak {peak} KiB");
        assert!(
            peak < idle + FLOOD_RSS_SLACK_KIB,
            "server RSS went from {idle} KiB to a peak of {peak} KiB (HWM {} KiB)",
            status_kib(s.pid(), "VmHWM")
        );
        let size = assert_oversized(&reply, "reply flood");
        assert!(size >= 16 * RESULT_LIMIT, "counted past the cap: {size}");
        // The instance that wrote it is gone: the next activation starts a new one.
        let next = invoke_blocking(&s, "reply-flood", json!({})).await;
        next.expect_status(200, "after the flood");
        assert!(
            annotation(&next.body, "initTime").is_some(),
            "the flooding instance was reused: {}",
            next.text
        );
        assert_healthy(&s, "reply flood").await;
    }

    #[tokio::test]
    async fn a_result_over_the_limit_names_its_size_for_every_kind() {
        let s = process_server();
        let big = 3 * 1024 * 1024;
        let cases = [
            (
                "big-js",
                "nodejs:20",
                format!("function main() {{ return {{ big: 'x'.repeat({big}) }}; }}\n"),
                // {"big":"…"}
                big + 10,
            ),
            (
                "big-py",
                "python:3",
                format!("def main(args):\n    return {{'big': 'x' * {big}}}\n"),
                // {"big": "…"}
                big + 11,
            ),
        ];
        for (name, kind, code, body_len) in cases {
            create_action_with(&s, name, json!({"exec": {"kind": kind, "code": code}})).await;
            let reply = invoke_blocking(&s, name, Value::Object(Default::default())).await;
            assert_eq!(assert_oversized(&reply, name), body_len, "{name}");
        }
    }

    #[tokio::test]
    async fn millions_of_empty_lines_keep_the_server_small_and_the_logs_within_the_limit() {
        let s = process_server();
        create_hello(&s).await;
        assert_healthy(&s, "start").await;
        create_action_with(
            &s,
            "empty-lines",
            json!({"exec": {"kind": "nodejs:20", "code": EMPTY_LINES_JS},
                   "limits": {"logs": 1}}),
        )
        .await;
        let idle = s.rss_kib();
        let peak = PeakRss::start(s.pid());
        let reply = invoke_blocking(&s, "empty-lines", json!({})).await;
        reply.expect_status(200, "empty lines");
        let logs = logs_of(&s, &reply).await;
        let peak = peak.finish();
        eprintln!(
            "empty-line flood: idle RSS {idle} KiB, peak {peak} KiB, {} lines kept",
            logs.len()
        );
        assert!(
            peak < idle + FLOOD_RSS_SLACK_KIB,
            "server RSS went from {idle} KiB to a peak of {peak} KiB"
        );
        // 1 MiB at 40 bytes (stored prefix and newline) per empty line, and the notice.
        assert!(
            logs.len() <= 1024 * 1024 / 40 + 1,
            "{} lines kept under a 1 MiB limit",
            logs.len()
        );
        let stored: usize = logs.iter().map(|l| l.len() + 1).sum();
        assert!(stored <= 1024 * 1024 + 200, "{stored} bytes of log lines");
        let last = logs.last().expect("lines");
        assert!(
            last.ends_with(
                "Logs were truncated because the total bytes size exceeds the limit of 1048576 \
                 bytes."
            ),
            "{last}"
        );
        assert_healthy(&s, "empty lines").await;
    }

    #[tokio::test]
    async fn an_action_printing_the_marker_keeps_each_run_its_own_logs() {
        let s = process_server();
        for (name, kind, code) in [
            ("marker-js", "nodejs:20", MARKER_JS),
            ("marker-py", "python:3", MARKER_PY),
        ] {
            create_action_with(&s, name, json!({"exec": {"kind": kind, "code": code}})).await;
            for n in 1..=3 {
                let reply = invoke_blocking(&s, name, json!({ "n": n })).await;
                reply.expect_status(200, name);
                let texts: Vec<String> = logs_of(&s, &reply)
                    .await
                    .iter()
                    .map(|l| text_of(l).to_owned())
                    .collect();
                assert_eq!(
                    texts,
                    [
                        format!("stdout: before {n}"),
                        "stdout: XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX".to_owned(),
                        format!("stdout: after {n}"),
                    ],
                    "{name}, run {n}"
                );
            }
        }
    }
}
