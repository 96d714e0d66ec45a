//! End-to-end: what an action writes never grows the server beyond its configured limits
//! (issue 9, item 2, the invoker's side): its reply line on fd 3 is read only up to the result
//! limit plus the envelope, and the instance that wrote more is destroyed.
//!
//! The server runs with `--isolation process` (the buffers under test are the server's own,
//! the same for every backend) and is watched through `/proc/<pid>/status`.

mod support;

use serde_json::{Value, json};
use support::api::{annotation, assert_healthy, create_action_with, create_hello, invoke_blocking};
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
}
