//! End-to-end: what an action writes never grows the server beyond its configured limits
//! (issue 9, item 2, the invoker's side): its reply line on fd 3 is read only up to the result
//! limit plus the envelope, and the instance that wrote more is destroyed; every log line, empty
//! or not, counts against the log limit; printing the end-of-activation marker does not shift
//! later activations' logs; a zip archive is refused at once past its entry and size limits,
//! and is unpacked once however many instances run it.
//!
//! The server runs with `--isolation process` (the buffers under test are the server's own,
//! the same for every backend) and is watched through `/proc/<pid>/status`.

mod support;

use serde_json::{Value, json};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::{Duration, Instant};
use support::api::{
    activation_eventually, annotation, assert_healthy, create_action_with, create_hello,
    invoke_blocking,
};
use support::floods::{FLOOD_RSS_SLACK_KIB, PeakRss, status_kib};
use support::host::runc_unavailable;
use support::{ServerGuard, ServerOptions, TEST_DEFAULTS, spawn_server_with};

/// The result limit (OpenWhisk's 1 MB), as the error messages state it.
const RESULT_LIMIT: u64 = 1_048_576;

fn process_server() -> ServerGuard {
    spawn_server_with(ServerOptions {
        extra_args: &["--isolation", "process"],
        ..ServerOptions::default()
    })
}

/// Small archive limits: [`ARCHIVE_MAX_BYTES`] unpacked, 1,000 entries.
const SMALL_ARCHIVE_LIMITS: &str =
    "[pool]\narchive_max_bytes = 8388608\narchive_max_entries = 1000\n";

/// A server with [`TEST_DEFAULTS`] and `extra_toml`.
fn archive_server(isolation: &str, extra_toml: &str) -> ServerGuard {
    let config = format!("{TEST_DEFAULTS}\n{extra_toml}");
    spawn_server_with(ServerOptions {
        config_toml: Some(&config),
        extra_args: &["--isolation", isolation],
        // Not under /tmp: a runc instance gets a private /tmp.
        temp_parent: Some(Path::new(env!("CARGO_TARGET_TMPDIR"))),
        ..ServerOptions::default()
    })
}

/// `archive_max_bytes` of [`archive_server`].
const ARCHIVE_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// A zip of `(name, content)` entries plus, when `zeros > 0`, `zeros.bin` holding that many
/// zero bytes (deflated to about a thousandth).
fn zip_with(entries: &[(&str, &str)], zeros: usize) -> String {
    use base64::Engine as _;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        w.start_file(*name, options).expect("start entry");
        w.write_all(content.as_bytes()).expect("write entry");
    }
    if zeros > 0 {
        w.start_file("zeros.bin", options).expect("start entry");
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..zeros.div_ceil(chunk.len()) {
            w.write_all(&chunk).expect("write zeros");
        }
    }
    let bytes = w.finish().expect("finish zip").into_inner();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Sleeps `ms` milliseconds, so concurrent activations need instances of their own.
const SLOW_INDEX_JS: &str =
    "exports.main = (a) => new Promise((r) => setTimeout(() => r({ ok: true }), a.ms || 0));\n";

/// Every `zeros.bin` under `dir`, as (path, device, inode, bytes).
fn zeros_files(dir: &Path) -> Vec<(String, u64, u64, u64)> {
    support::host::find_files(dir, 12, |p| p.file_name().is_some_and(|n| n == "zeros.bin"))
        .into_iter()
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            Some((p.display().to_string(), m.dev(), m.ino(), m.len()))
        })
        .collect()
}

/// Panics unless `reply` is a developer error mentioning `needle`, answered within 1.5 s
/// (well under the 2 s log sentinel timeout it must not wait for).
fn assert_refused_quickly(reply: &support::api::Reply, took: Duration, needle: &str, what: &str) {
    reply.expect_status(502, what);
    assert_eq!(
        reply.body["response"]["status"], "action developer error",
        "{what}: {}",
        reply.text
    );
    let error = reply.body["response"]["result"]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.starts_with("The action failed during initialization: ") && error.contains(needle),
        "{what}: {error}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "{what}: answered after {took:?}"
    );
}

/// Four concurrent cold activations of an action whose zip holds 4 MiB of zeros leave one
/// copy of them on disk.
async fn concurrent_cold_instances_share_one_unpack(s: &ServerGuard) {
    let code = zip_with(&[("index.js", SLOW_INDEX_JS)], 4 * 1024 * 1024);
    create_action_with(
        s,
        "shared-zip",
        json!({"exec": {"kind": "nodejs:20", "code": code, "binary": true}}),
    )
    .await;
    let call = || invoke_blocking(s, "shared-zip", json!({"ms": 1500}));
    let (a, b, c, d) = tokio::join!(call(), call(), call(), call());
    let replies = [a, b, c, d];
    let mut cold = 0;
    for reply in &replies {
        reply.expect_status(200, "shared zip");
        cold += usize::from(annotation(&reply.body, "initTime").is_some());
    }
    assert_eq!(cold, 4, "four instances started");
    let files = zeros_files(&s.data_dir());
    let mut inodes: Vec<(u64, u64)> = files.iter().map(|f| (f.1, f.2)).collect();
    inodes.sort_unstable();
    inodes.dedup();
    eprintln!(
        "shared zip: {} paths, {} distinct files on disk: {files:?}",
        files.len(),
        inodes.len()
    );
    assert_eq!(inodes.len(), 1, "one unpacked copy: {files:?}");
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

    async fn huge_reply_line(s: &ServerGuard) {
        create_hello(s).await;
        assert_healthy(s, "start").await;
        create_action_with(
            s,
            "reply-flood",
            json!({"exec": {"kind": "nodejs:20", "code": REPLY_FLOOD_JS},
                   "limits": {"timeout": 30000}}),
        )
        .await;
        let idle = s.rss_kib();
        let peak = PeakRss::start(s.pid());
        let reply = invoke_blocking(s, "reply-flood", json!({"flood": true})).await;
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
        let next = invoke_blocking(s, "reply-flood", json!({})).await;
        next.expect_status(200, "after the flood");
        assert!(
            annotation(&next.body, "initTime").is_some(),
            "the flooding instance was reused: {}",
            next.text
        );
        assert_healthy(s, "reply flood").await;
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

    async fn empty_lines(s: &ServerGuard) {
        create_hello(s).await;
        assert_healthy(s, "start").await;
        create_action_with(
            s,
            "empty-lines",
            json!({"exec": {"kind": "nodejs:20", "code": EMPTY_LINES_JS},
                   "limits": {"logs": 1}}),
        )
        .await;
        let idle = s.rss_kib();
        let peak = PeakRss::start(s.pid());
        let reply = invoke_blocking(s, "empty-lines", json!({})).await;
        reply.expect_status(200, "empty lines");
        let logs = logs_of(s, &reply).await;
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
        assert_healthy(s, "empty lines").await;
    }

    async fn printed_marker(s: &ServerGuard) {
        for (name, kind, code) in [
            ("marker-js", "nodejs:20", MARKER_JS),
            ("marker-py", "python:3", MARKER_PY),
        ] {
            create_action_with(s, name, json!({"exec": {"kind": kind, "code": code}})).await;
            for n in 1..=3 {
                let reply = invoke_blocking(s, name, json!({ "n": n })).await;
                reply.expect_status(200, name);
                let texts: Vec<String> = logs_of(s, &reply)
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

    #[tokio::test]
    async fn a_zip_bomb_is_refused_at_once_with_a_clear_error_and_leaves_nothing() {
        let s = archive_server("process", SMALL_ARCHIVE_LIMITS);
        // 64 MiB of zeros in about 64 KiB of zip.
        let code = zip_with(&[("index.js", SLOW_INDEX_JS)], 64 * 1024 * 1024);
        create_action_with(
            &s,
            "bomb",
            json!({"exec": {"kind": "nodejs:20", "code": code, "binary": true}}),
        )
        .await;
        let started = Instant::now();
        let reply = invoke_blocking(&s, "bomb", json!({})).await;
        assert_refused_quickly(
            &reply,
            started.elapsed(),
            &format!("the archive unpacks to more than the limit of {ARCHIVE_MAX_BYTES} bytes"),
            "zip bomb",
        );
        assert!(
            zeros_files(&s.data_dir()).is_empty(),
            "the partial unpack is removed"
        );
    }

    #[tokio::test]
    async fn a_zip_with_too_many_entries_is_refused_at_once() {
        let s = archive_server("process", SMALL_ARCHIVE_LIMITS);
        let names: Vec<String> = (0..1001).map(|i| format!("f/{i}.js")).collect();
        let mut entries: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "")).collect();
        entries.push(("index.js", SLOW_INDEX_JS));
        let code = zip_with(&entries, 0);
        create_action_with(
            &s,
            "many",
            json!({"exec": {"kind": "nodejs:20", "code": code, "binary": true}}),
        )
        .await;
        let started = Instant::now();
        let reply = invoke_blocking(&s, "many", json!({})).await;
        assert_refused_quickly(
            &reply,
            started.elapsed(),
            "the archive has 1002 entries, more than the limit of 1000",
            "many entries",
        );
    }

    #[tokio::test]
    async fn concurrent_cold_process_instances_share_one_unpacked_archive() {
        let s = archive_server("process", "");
        concurrent_cold_instances_share_one_unpack(&s).await;
    }

    #[tokio::test]
    async fn concurrent_cold_runc_instances_share_one_unpacked_archive() {
        if let Some(why) = runc_unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
        let s = archive_server("runc", "");
        concurrent_cold_instances_share_one_unpack(&s).await;
    }

    /// A runc server, or `None` (after saying why) where runc cannot run here.
    fn runc_server() -> Option<ServerGuard> {
        if let Some(why) = runc_unavailable() {
            eprintln!("skipped: {why}");
            return None;
        }
        Some(archive_server("runc", ""))
    }

    #[tokio::test]
    async fn a_huge_reply_line_is_a_developer_error_and_the_server_stays_small() {
        huge_reply_line(&process_server()).await;
    }

    #[tokio::test]
    async fn a_huge_reply_line_from_a_runc_instance_is_refused_the_same_way() {
        if let Some(s) = runc_server() {
            huge_reply_line(&s).await;
        }
    }

    #[tokio::test]
    async fn millions_of_empty_lines_keep_the_server_small_and_the_logs_within_the_limit() {
        empty_lines(&process_server()).await;
    }

    #[tokio::test]
    async fn millions_of_empty_lines_from_a_runc_instance_are_bounded_the_same_way() {
        if let Some(s) = runc_server() {
            empty_lines(&s).await;
        }
    }

    #[tokio::test]
    async fn an_action_printing_the_marker_keeps_each_run_its_own_logs() {
        printed_marker(&process_server()).await;
    }

    #[tokio::test]
    async fn a_runc_action_printing_the_marker_keeps_each_run_its_own_logs() {
        if let Some(s) = runc_server() {
            printed_marker(&s).await;
        }
    }
}
