//! End-to-end tests of the REST API against the real `edgewhisk serve` binary, over raw HTTP.
//!
//! Every case follows the OpenWhisk contract (OpenWhisk `docs/rest_api.md` and
//! `docs/reference.md`; what edgewhisk serves is in `docs/compat.md`): bad input is answered with the
//! documented status and an `{"error","code"}` body, failing actions produce the documented
//! activation records, and after each failure a healthy action still runs.

mod support;

use base64::Engine as _;
use serde_json::{Value, json};
use std::io::Write as _;
use std::time::Duration;
use support::api::{
    HELLO_NAME, activation_eventually, annotation, assert_healthy, create_action,
    create_action_with, create_hello, flood_logs_and_expect_truncation, http, invoke,
    invoke_blocking, put_action, send, send_raw,
};
use support::{GUEST_SECRET, GUEST_UUID, spawn_server};

const LOG_LINE: &str = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z\s+(stdout|stderr): ";

/// Checks one log line against the OpenWhisk format without a regex dependency:
/// `YYYY-MM-DDTHH:MM:SS.<digits>Z<spaces>(stdout|stderr): `.
fn is_log_line(line: &str) -> bool {
    let b = line.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(digits(0..4) && at(4, b'-') && digits(5..7) && at(7, b'-') && digits(8..10)) {
        return false;
    }
    if !(at(10, b'T') && digits(11..13) && at(13, b':') && digits(14..16) && at(16, b':')) {
        return false;
    }
    if !(digits(17..19) && at(19, b'.')) {
        return false;
    }
    let mut i = 20;
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    if i == 20 || !at(i, b'Z') {
        return false;
    }
    i += 1;
    let spaces_start = i;
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i > spaces_start && (line[i..].starts_with("stdout: ") || line[i..].starts_with("stderr: "))
}

/// Bytes that are certainly not a zip or tar.gz archive, yet valid base64 once encoded.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out[0] = 0x00; // neither `PK` (zip) nor 0x1f8b (gzip)
    out
}

/// A zip archive with the given `(path, content)` entries, paths written verbatim.
fn zip_bytes(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (path, content) in entries {
        writer.start_file(*path, options).expect("start zip entry");
        writer
            .write_all(content.as_bytes())
            .expect("write zip entry");
    }
    writer.finish().expect("finish zip").into_inner()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// All file names below `dir`, recursively.
fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return names;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            names.extend(file_names(&path));
        }
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names
}

fn response_error_text(activation: &Value) -> String {
    match &activation["response"]["result"]["error"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn with_log_format_json_every_log_line_is_one_json_object() {
        let s = support::spawn_server_with(support::ServerOptions {
            extra_args: &["--log-format", "json"],
            ..support::ServerOptions::default()
        });
        create_hello(&s).await;
        invoke_blocking(&s, HELLO_NAME, json!({}))
            .await
            .expect_status(200, "invoke");
        let log = s.log_tail();
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.len() >= 3,
            "expected the start-up lines at least: {log}"
        );
        for line in lines {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            assert!(v["timestamp"].is_string(), "{line}");
            assert!(v["level"].is_string(), "{line}");
            assert!(v["target"].is_string(), "{line}");
            assert!(v["fields"].is_object(), "{line}");
        }
        assert!(log.contains("\"message\":\"edgewhisk serving\""), "{log}");
    }

    #[tokio::test]
    async fn every_log_line_of_an_activation_names_its_request_id() {
        let s = support::spawn_server_with(support::ServerOptions {
            extra_args: &["--log-format", "json"],
            // The invoker's debug lines (a cold start) are lines of the activation too.
            log_filter: Some("info,edgewhisk_invoker=debug"),
            ..support::ServerOptions::default()
        });
        // A python action starts cold (only node has stem cells), and the cold start is logged
        // inside the activation; its runner then dies in the middle of the run.
        create_action(
            &s,
            "dies",
            "python:3",
            "import os\ndef main(args):\n    os._exit(3)\n",
        )
        .await;
        let tid = format!("log-test-{}", uuid::Uuid::new_v4().simple());
        let reply = send(
            http()
                .post(s.ns_url("actions/dies?blocking=true"))
                .header("X-Request-ID", &tid)
                .json(&json!({})),
        )
        .await;
        assert_eq!(reply.headers["x-request-id"], tid.as_str());
        let id = reply.body["activationId"]
            .as_str()
            .unwrap_or_else(|| panic!("an activation record: {}", reply.text))
            .to_owned();
        let log = s.log_tail();
        let about: Vec<&str> = log.lines().filter(|l| l.contains(&id)).collect();
        assert!(
            !about.is_empty(),
            "expected the invoker to log about activation {id}:\n{log}"
        );
        for line in about {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            let spans = v["spans"].as_array().map(Vec::as_slice).unwrap_or_default();
            assert!(
                spans.iter().any(|span| span["tid"] == tid.as_str()),
                "a line about activation {id} without its request id {tid}: {line}"
            );
        }
    }

    #[tokio::test]
    async fn info_namespaces_and_limits_routes_answer_as_openwhisk_does() {
        let s = spawn_server(None);

        let info = send_raw(http().get(s.url("/api/v1"))).await;
        info.expect_status(200, "GET /api/v1 without auth");
        assert_eq!(info.body["api_version"], "1.0.0");
        assert!(info.body["build"].is_string() && info.body["buildno"].is_string());
        assert!(
            info.headers.contains_key("x-request-id"),
            "transaction id header"
        );

        let ping = send_raw(http().get(s.url("/ping"))).await;
        ping.expect_status(200, "ping");
        assert_eq!(ping.text, "pong");

        let namespaces = send(http().get(s.url("/api/v1/namespaces"))).await;
        namespaces.expect_status(200, "namespaces");
        assert_eq!(namespaces.body, json!(["guest"]));

        let limits = send(http().get(s.ns_url("limits"))).await;
        limits.expect_status(200, "limits");
        assert_eq!(limits.body["maxActionMemory"], 512);
        assert_eq!(limits.body["minActionTimeout"], 100);
        assert_eq!(limits.body["maxParameterSize"], "1048576 B");

        let anonymous = send_raw(http().get(s.ns_url("limits"))).await;
        anonymous.expect_status(401, "limits without auth");
        assert_eq!(
            anonymous.headers["www-authenticate"],
            "Basic realm=\"OpenWhisk secure realm\""
        );
        anonymous.expect_error_body("limits without auth");

        let unknown = send(http().get(s.url("/api/v1/namespaces/_/nothing"))).await;
        unknown.expect_status(404, "unknown route");
        unknown.expect_error_body("unknown route");
    }

    #[tokio::test]
    async fn malformed_and_ill_typed_action_bodies_are_rejected_with_400_and_server_keeps_serving()
    {
        let s = spawn_server(None);
        create_hello(&s).await;

        let malformed = send(
            http()
                .put(s.ns_url("actions/broken?overwrite=true"))
                .header("content-type", "application/json")
                .body(r#"{"exec": {"kind": "nodejs:20", "code": "#),
        )
        .await;
        malformed.expect_status(400, "malformed JSON");
        malformed.expect_error_body("malformed JSON");
        assert_healthy(&s, "malformed JSON").await;

        let cases = [
            (
                "code is a number",
                json!({"exec": {"kind": "nodejs:20", "code": 42}}),
            ),
            ("exec is a string", json!({"exec": "function main() {}"})),
            (
                "timeout is a string",
                json!({"exec": {"kind": "nodejs:20", "code": "function main() {}"}, "limits": {"timeout": "soon"}}),
            ),
            (
                "parameters is an object",
                json!({"exec": {"kind": "nodejs:20", "code": "function main() {}"}, "parameters": {"a": 1}}),
            ),
        ];
        for (what, body) in cases {
            let reply = put_action(&s, "typed", body).await;
            reply.expect_status(400, what);
            reply.expect_error_body(what);
            assert_healthy(&s, what).await;
        }
        let missing = send(http().get(s.ns_url("actions/typed"))).await;
        missing.expect_status(404, "no ill-typed action was stored");
        assert_eq!(
            missing.expect_error_body("missing action"),
            "The requested resource does not exist."
        );
    }

    #[tokio::test]
    async fn unknown_kind_and_illegal_or_overlong_names_are_rejected_with_400() {
        let s = spawn_server(None);
        create_hello(&s).await;

        let unknown = put_action(
            &s,
            "cobol",
            json!({"exec": {"kind": "cobol:1", "code": "DISPLAY 'HI'."}}),
        )
        .await;
        unknown.expect_status(400, "unknown kind");
        let message = unknown.expect_error_body("unknown kind");
        assert!(
            message.starts_with(
                "The specified runtime 'cobol:1' is not supported by this platform. Valid values are:"
            ),
            "{message}"
        );
        assert!(message.contains("nodejs:20"), "{message}");
        assert_healthy(&s, "unknown kind").await;

        let body = json!({"exec": {"kind": "nodejs:20", "code": "function main() { return {} }"}});
        for bad in ["bad!name", "-leading-dash", "trailing%20"] {
            let reply = put_action(&s, bad, body.clone()).await;
            reply.expect_status(400, bad);
            assert_eq!(
                reply.expect_error_body(bad),
                "The name of the entity contains illegal characters.",
                "{bad}"
            );
            assert_healthy(&s, bad).await;
        }

        let long = "a".repeat(257);
        let reply = put_action(&s, &long, body.clone()).await;
        reply.expect_status(400, "257-char name");
        let message = reply.expect_error_body("257-char name");
        assert!(
            message.contains("longer than allowed: 257 > 256."),
            "{message}"
        );
        assert_healthy(&s, "over-long name").await;

        let longest = "a".repeat(256);
        create_action_with(&s, &longest, body).await;
    }

    #[tokio::test]
    async fn binary_code_that_is_not_a_zip_archive_is_refused_at_create() {
        let s = spawn_server(None);
        create_hello(&s).await;

        let garbage = b64(&random_bytes(3000));
        let put = put_action(
            &s,
            "notzip",
            json!({"exec": {"kind": "nodejs:20", "code": garbage}}),
        )
        .await;
        put.expect_status(400, "not a zip");
        let message = put.expect_error_body("not a zip");
        assert!(
            message.starts_with("The action's code is not a valid zip archive"),
            "{message}"
        );
        let get = reqwest::Client::new()
            .get(s.ns_url("actions/notzip"))
            .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
            .send()
            .await
            .expect("get notzip");
        assert_eq!(get.status().as_u16(), 404, "a refused action is not stored");
        assert_healthy(&s, "a zip that is not a zip").await;
    }

    #[tokio::test]
    async fn zip_entries_escaping_with_dot_dot_are_never_written_outside_the_action() {
        let s = spawn_server(None);
        create_hello(&s).await;

        let marker = format!("escaped-{}.js", std::process::id());
        let archive = zip_bytes(&[
            ("index.js", "exports.main = () => ({ ok: true });\n"),
            (&format!("../{marker}"), "module.exports = 'escaped';\n"),
            (
                &format!("../../../{marker}"),
                "module.exports = 'escaped';\n",
            ),
        ]);
        let put = put_action(
            &s,
            "dotdot",
            json!({"exec": {"kind": "nodejs:20", "code": b64(&archive)}}),
        )
        .await;
        put.expect_status(400, "zip with .. entries");
        let message = put.expect_error_body("zip with .. entries");
        assert!(
            message.contains("unsafe path") && message.contains(&marker),
            "{message}"
        );
        let root = s
            .data_dir()
            .parent()
            .expect("data dir has a parent")
            .to_owned();
        let escaped: Vec<_> = file_names(&root)
            .into_iter()
            .filter(|n| *n == marker)
            .collect();
        assert!(
            escaped.is_empty(),
            "entry escaped the action directory: {escaped:?}"
        );
        assert!(
            !std::path::Path::new("/tmp").join(&marker).exists(),
            "entry escaped to /tmp"
        );
        assert_healthy(&s, "zip with .. entries").await;
    }

    #[tokio::test]
    async fn invoke_payload_over_one_megabyte_is_rejected_with_413() {
        let s = spawn_server(None);
        create_hello(&s).await;

        let big = json!({"pad": "x".repeat(1_100_000)});
        let reply = invoke_blocking(&s, HELLO_NAME, big).await;
        reply.expect_status(413, "1.1 MB payload");
        let message = reply.expect_error_body("1.1 MB payload");
        assert!(message.contains("larger than allowed"), "{message}");
        assert!(message.contains("1048576"), "{message}");
        assert_healthy(&s, "oversized payload").await;

        let under = json!({"pad": "x".repeat(900_000)});
        let ok = invoke(&s, HELLO_NAME, "blocking=true&result=true", under).await;
        ok.expect_status(200, "900 KB payload");
        assert_eq!(ok.body["payload"], "Hello, World!");
    }

    #[tokio::test]
    async fn missing_or_wrong_credentials_get_401_and_foreign_namespaces_get_403() {
        let s = spawn_server(None);
        create_hello(&s).await;

        let anonymous = send_raw(http().get(s.ns_url("actions"))).await;
        anonymous.expect_status(401, "no auth");
        anonymous.expect_error_body("no auth");
        let challenge = anonymous
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            challenge.starts_with("Basic"),
            "WWW-Authenticate: {challenge:?}"
        );
        assert_healthy(&s, "no auth").await;

        let wrong_secret = "x".repeat(64);
        let wrong = send_raw(
            http()
                .post(s.ns_url(&format!("actions/{HELLO_NAME}?blocking=true")))
                .basic_auth(GUEST_UUID, Some(&wrong_secret))
                .json(&json!({})),
        )
        .await;
        wrong.expect_status(401, "wrong key");
        wrong.expect_error_body("wrong key");
        assert_healthy(&s, "wrong key").await;

        let not_uuid = send_raw(
            http()
                .get(s.ns_url("actions"))
                .basic_auth("guest", Some("guest")),
        )
        .await;
        not_uuid.expect_status(401, "malformed key");
        not_uuid.expect_error_body("malformed key");

        let foreign = send(http().get(s.url("/api/v1/namespaces/whisk.system/actions"))).await;
        foreign.expect_status(403, "foreign namespace");
        let message = foreign.expect_error_body("foreign namespace");
        assert!(
            message.starts_with("The supplied authentication is not authorized to access"),
            "{message}"
        );
        let foreign_invoke = send(
            http()
                .post(s.url(&format!(
                    "/api/v1/namespaces/other/actions/{HELLO_NAME}?blocking=true"
                )))
                .json(&json!({})),
        )
        .await;
        foreign_invoke.expect_status(403, "invoke in a foreign namespace");
        foreign_invoke.expect_error_body("invoke in a foreign namespace");
        assert_healthy(&s, "foreign namespace").await;
    }

    #[tokio::test]
    async fn actions_that_throw_reject_or_return_a_non_object_yield_the_documented_errors() {
        let s = spawn_server(None);
        create_hello(&s).await;

        create_action(
            &s,
            "thrower",
            "nodejs:20",
            "function main() { throw new Error('boom') }",
        )
        .await;
        let thrown = invoke_blocking(&s, "thrower", json!({})).await;
        thrown.expect_status(502, "throw");
        assert!(
            thrown.body.get("code").is_none(),
            "activation, not an API error"
        );
        assert_eq!(thrown.body["response"]["status"], "action developer error");
        assert_eq!(thrown.body["response"]["success"], false);
        assert!(
            response_error_text(&thrown.body).contains("boom"),
            "{}",
            thrown.text
        );
        assert_eq!(
            thrown.activation_header(),
            thrown.body["activationId"].as_str()
        );
        assert_healthy(&s, "an action that throws").await;

        create_action(
            &s,
            "rejecter",
            "nodejs:20",
            "function main() { return Promise.reject({ reason: 'nope' }) }",
        )
        .await;
        let rejected = invoke_blocking(&s, "rejecter", json!({})).await;
        rejected.expect_status(502, "reject");
        assert!(
            rejected.body.get("code").is_none(),
            "application errors carry no code: {}",
            rejected.text
        );
        assert_eq!(rejected.body["response"]["status"], "application error");
        assert_eq!(rejected.body["response"]["success"], false);
        assert_eq!(
            rejected.body["response"]["result"],
            json!({"error": {"reason": "nope"}})
        );
        let result_only = invoke(&s, "rejecter", "blocking=true&result=true", json!({})).await;
        result_only.expect_status(502, "reject with result=true");
        assert_eq!(result_only.body, json!({"error": {"reason": "nope"}}));
        assert_healthy(&s, "an action that rejects").await;

        create_action(&s, "scalar", "nodejs:20", "function main() { return 42 }").await;
        let scalar = invoke_blocking(&s, "scalar", json!({})).await;
        scalar.expect_status(502, "non-object result");
        assert_eq!(scalar.body["response"]["status"], "action developer error");
        assert!(
            response_error_text(&scalar.body).contains("did not return a dictionary"),
            "{}",
            scalar.text
        );
        assert_healthy(&s, "an action returning a number").await;

        create_action(
            &s,
            "arrayer",
            "nodejs:20",
            "function main() { return [1, 'two', { three: 3 }] }",
        )
        .await;
        let array = invoke_blocking(&s, "arrayer", json!({})).await;
        array.expect_status(200, "array result");
        assert_eq!(
            array.body,
            json!([1, "two", {"three": 3}]),
            "bare array returned"
        );
    }

    #[tokio::test]
    async fn an_action_that_never_returns_is_stopped_at_its_time_limit() {
        let s = spawn_server(None);
        create_hello(&s).await;
        create_action_with(
            &s,
            "forever",
            json!({
                "exec": {"kind": "nodejs:20", "code": "function main() { return new Promise(() => {}) }"},
                "limits": {"timeout": 1000}
            }),
        )
        .await;

        let started = std::time::Instant::now();
        let reply = invoke_blocking(&s, "forever", json!({})).await;
        reply.expect_status(502, "timeout");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "stopped near its limit"
        );
        assert_eq!(reply.body["response"]["status"], "action developer error");
        assert_eq!(
            reply.body["response"]["result"],
            json!({"error": "The action exceeded its time limits of 1000 milliseconds."})
        );
        assert_eq!(annotation(&reply.body, "timeout"), Some(&json!(true)));
        assert_healthy(&s, "an action that never returns").await;

        let again = invoke_blocking(&s, "forever", json!({})).await;
        again.expect_status(502, "second timeout, fresh instance");
        assert_eq!(annotation(&again.body, "timeout"), Some(&json!(true)));
    }

    #[tokio::test]
    async fn runners_that_exit_during_run_or_init_or_fail_to_compile_give_developer_errors() {
        let s = spawn_server(None);
        create_hello(&s).await;

        let cases = [
            ("exit-in-run", "function main() { process.exit(7) }"),
            ("syntax-error", "function main( { return {} }"),
            (
                "exit-at-init",
                "process.exit(3);\nfunction main() { return {} }",
            ),
            ("no-main", "function notMain() { return {} }"),
        ];
        for (name, code) in cases {
            create_action(&s, name, "nodejs:20", code).await;
            for attempt in 1..=2 {
                let reply = invoke_blocking(&s, name, json!({})).await;
                reply.expect_status(502, &format!("{name} attempt {attempt}"));
                assert!(reply.body.get("code").is_none(), "{name}: {}", reply.text);
                assert_eq!(
                    reply.body["response"]["status"], "action developer error",
                    "{name}: {}",
                    reply.text
                );
                assert!(
                    !response_error_text(&reply.body).is_empty(),
                    "{name}: error message present"
                );
                assert_healthy(&s, name).await;
            }
        }
    }

    #[tokio::test]
    async fn twenty_megabytes_of_logs_are_truncated_at_the_limit_without_bloating_the_server() {
        let s = spawn_server(None);
        create_hello(&s).await;
        let rss_before = s.rss_kib();
        let logs = flood_logs_and_expect_truncation(&s, "chatty").await;
        assert!(logs.len() > 100, "the lines before the limit are kept");

        let rss_after = s.rss_kib();
        assert!(
            rss_after < rss_before + 150 * 1024,
            "server RSS grew from {rss_before} KiB to {rss_after} KiB"
        );
        assert_healthy(&s, "20 MB of logs").await;
    }

    #[tokio::test]
    async fn python_actions_run_and_exceptions_become_application_errors() {
        let s = spawn_server(None);
        create_hello(&s).await;
        let code = "def main(args):\n    name = args.get('name', 'py')\n    if name == 'fail':\n        raise ValueError('bad name ' + name)\n    return {'greeting': 'hi ' + name}\n";
        let action = create_action(&s, "pygreet", "python:default", code).await;
        assert!(
            action["exec"]["kind"]
                .as_str()
                .is_some_and(|k| k.starts_with("python:")),
            "default kind resolved: {}",
            action["exec"]
        );

        let ok = invoke(
            &s,
            "pygreet",
            "blocking=true&result=true",
            json!({"name": "edge"}),
        )
        .await;
        ok.expect_status(200, "python success");
        assert_eq!(ok.body, json!({"greeting": "hi edge"}));

        let failed = invoke_blocking(&s, "pygreet", json!({"name": "fail"})).await;
        failed.expect_status(502, "python exception");
        assert!(failed.body.get("code").is_none(), "{}", failed.text);
        assert_eq!(failed.body["response"]["status"], "application error");
        assert!(
            response_error_text(&failed.body).contains("bad name fail"),
            "{}",
            failed.text
        );

        let warm = invoke(&s, "pygreet", "blocking=true&result=true", json!({})).await;
        warm.expect_status(200, "python after an exception");
        assert_eq!(warm.body, json!({"greeting": "hi py"}));
        assert_healthy(&s, "python exception").await;
    }

    #[tokio::test]
    async fn activation_records_carry_status_annotations_and_formatted_logs() {
        let s = spawn_server(None);
        let code = "function main(p) { console.log('out ' + p.n); console.error('err ' + p.n); return { n: p.n } }";
        create_action(&s, "recorded", "nodejs:20", code).await;

        let cold = invoke_blocking(&s, "recorded", json!({"n": 1})).await;
        cold.expect_status(200, "cold invoke");
        let id = cold.body["activationId"].as_str().expect("id").to_owned();
        assert_eq!(id.len(), 32);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(cold.activation_header(), Some(id.as_str()));
        assert_eq!(
            cold.body["logs"],
            json!([]),
            "blocking response has no logs yet"
        );

        let record = activation_eventually(&s, &id, |r| {
            r["logs"].as_array().is_some_and(|l| l.len() >= 2)
        })
        .await;
        assert_eq!(record["namespace"], "guest");
        assert_eq!(record["name"], "recorded");
        assert_eq!(record["version"], "0.0.1");
        assert_eq!(record["subject"], "guest");
        assert_eq!(record["publish"], false);
        assert_eq!(record["response"]["status"], "success");
        assert_eq!(record["response"]["success"], true);
        assert_eq!(record["response"]["result"], json!({"n": 1}));
        assert!(
            record["response"].get("statusCode").is_none(),
            "status replaces statusCode"
        );
        let (start, end) = (record["start"].as_u64(), record["end"].as_u64());
        let (start, end) = (start.expect("start"), end.expect("end"));
        assert!(end >= start);
        assert_eq!(record["duration"].as_u64(), Some(end - start));

        assert_eq!(annotation(&record, "path"), Some(&json!("guest/recorded")));
        assert_eq!(annotation(&record, "kind"), Some(&json!("nodejs:20")));
        assert_eq!(annotation(&record, "timeout"), Some(&json!(false)));
        let limits = annotation(&record, "limits").expect("limits annotation");
        assert_eq!(limits["timeout"], 60000);
        assert_eq!(limits["memory"], 256);
        assert_eq!(limits["logs"], 10);
        assert_eq!(limits["concurrency"], 1);
        assert!(annotation(&record, "waitTime").is_some_and(Value::is_u64));
        assert!(
            annotation(&record, "initTime").is_some_and(Value::is_u64),
            "cold start"
        );

        let logs: Vec<&str> = record["logs"]
            .as_array()
            .expect("logs")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for line in &logs {
            assert!(is_log_line(line), "line {line:?} does not match {LOG_LINE}");
        }
        assert!(
            logs.iter().any(|l| l.ends_with("stdout: out 1")),
            "{logs:?}"
        );
        assert!(
            logs.iter().any(|l| l.ends_with("stderr: err 1")),
            "{logs:?}"
        );

        let warm = invoke_blocking(&s, "recorded", json!({"n": 2})).await;
        warm.expect_status(200, "warm invoke");
        assert!(annotation(&warm.body, "waitTime").is_some());
        assert!(
            annotation(&warm.body, "initTime").is_none(),
            "warm start has no initTime: {}",
            warm.body["annotations"]
        );

        let logs_route = send(http().get(s.ns_url(&format!("activations/{id}/logs")))).await;
        logs_route.expect_status(200, "logs route");
        assert_eq!(logs_route.body["logs"], record["logs"]);
        let result_route = send(http().get(s.ns_url(&format!("activations/{id}/result")))).await;
        result_route.expect_status(200, "result route");
        assert_eq!(result_route.body["result"], json!({"n": 1}));
        assert_eq!(result_route.body["success"], true);
        assert_eq!(result_route.body["status"], "success");

        let bad_id = send(http().get(s.ns_url("activations/not-an-id"))).await;
        bad_id.expect_status(400, "malformed activation id");
        bad_id.expect_error_body("malformed activation id");
        let unknown = send(http().get(s.ns_url(&format!("activations/{}", "0".repeat(32))))).await;
        unknown.expect_status(404, "unknown activation id");
        unknown.expect_error_body("unknown activation id");
    }

    #[tokio::test]
    async fn non_blocking_invoke_answers_202_and_the_record_appears_later() {
        let s = spawn_server(None);
        create_hello(&s).await;
        let reply = invoke(&s, HELLO_NAME, "", json!({"name": "async"})).await;
        reply.expect_status(202, "non-blocking invoke");
        let id = reply.body["activationId"]
            .as_str()
            .expect("activationId")
            .to_owned();
        assert_eq!(reply.body.as_object().map(serde_json::Map::len), Some(1));
        assert_eq!(reply.activation_header(), Some(id.as_str()));

        let record = activation_eventually(&s, &id, |_| true).await;
        assert_eq!(record["activationId"], id.as_str());
        assert_eq!(
            record["response"]["result"],
            json!({"payload": "Hello, async!"})
        );
    }

    #[tokio::test]
    async fn blocking_invoke_shorter_than_the_action_answers_202_and_finishes_later() {
        let s = spawn_server(None);
        create_action(
            &s,
            "slow",
            "nodejs:20",
            "function main() { return new Promise(r => setTimeout(() => r({ slept: true }), 3000)) }",
        )
        .await;
        let reply = invoke(&s, "slow", "blocking=true&timeout=500", json!({})).await;
        reply.expect_status(202, "blocking with short timeout");
        let id = reply.body["activationId"]
            .as_str()
            .expect("activationId")
            .to_owned();
        assert_eq!(reply.activation_header(), Some(id.as_str()));

        let record = activation_eventually(&s, &id, |_| true).await;
        assert_eq!(record["response"]["status"], "success");
        assert_eq!(record["response"]["result"], json!({"slept": true}));

        let bad = invoke(&s, "slow", "blocking=true&timeout=60001", json!({})).await;
        bad.expect_status(400, "timeout over 60 s");
        // OpenWhisk wraps the message in its query-parameter rejection text.
        let message = bad.expect_error_body("timeout over 60 s");
        assert!(
            message.ends_with("Timeout must be number of milliseconds up to 60000."),
            "{message}"
        );
    }

    #[tokio::test]
    async fn entities_and_activations_survive_a_graceful_restart() {
        let mut s = spawn_server(None);
        create_hello(&s).await;
        let reply = invoke_blocking(&s, HELLO_NAME, json!({"name": "before"})).await;
        reply.expect_status(200, "invoke before restart");
        let id = reply.body["activationId"].as_str().expect("id").to_owned();
        activation_eventually(&s, &id, |_| true).await;

        let status = s.stop();
        assert!(
            status.success(),
            "SIGTERM stops the server cleanly: {status}"
        );
        s.restart();

        let action = send(http().get(s.ns_url(&format!("actions/{HELLO_NAME}")))).await;
        action.expect_status(200, "action after restart");
        assert_eq!(action.body["exec"]["code"], support::api::HELLO);
        let record = activation_eventually(&s, &id, |_| true).await;
        assert_eq!(
            record["response"]["result"],
            json!({"payload": "Hello, before!"})
        );
        assert_healthy(&s, "a restart").await;
    }

    #[tokio::test]
    async fn entities_and_finished_activations_survive_sigkill() {
        let mut s = spawn_server(None);
        create_hello(&s).await;
        let blocking = invoke_blocking(&s, HELLO_NAME, json!({"name": "killed"})).await;
        blocking.expect_status(200, "blocking invoke before kill");
        let blocking_id = blocking.body["activationId"]
            .as_str()
            .expect("id")
            .to_owned();
        let queued = invoke(&s, HELLO_NAME, "", json!({"name": "queued"})).await;
        queued.expect_status(202, "non-blocking invoke before kill");
        let queued_id = queued.body["activationId"].as_str().expect("id").to_owned();
        activation_eventually(&s, &queued_id, |_| true).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;

        s.sigkill();
        s.restart();

        let action = send(http().get(s.ns_url(&format!("actions/{HELLO_NAME}")))).await;
        action.expect_status(200, "action after SIGKILL");
        for (id, name) in [(&blocking_id, "killed"), (&queued_id, "queued")] {
            let record = send(http().get(s.ns_url(&format!("activations/{id}")))).await;
            record.expect_status(200, &format!("activation {name} after SIGKILL"));
            assert_eq!(
                record.body["response"]["result"],
                json!({"payload": format!("Hello, {name}!")})
            );
        }
        assert_healthy(&s, "SIGKILL and restart").await;
    }
}

#[cfg(test)]
mod concurrency {
    use super::*;

    #[tokio::test]
    async fn entity_writes_succeed_while_activation_records_are_being_written() {
        if support::binary::skip_when_emulated(
            "400 concurrent requests on fresh connections get reset by a server that qemu \
             slows down",
        ) {
            return;
        }
        let s = spawn_server(None);
        create_hello(&s).await;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let invoke_url = s.ns_url(&format!("actions/{HELLO_NAME}"));
            tasks.spawn(async move {
                let reply = send(http().post(invoke_url).json(&json!({"name": i}))).await;
                ("non-blocking invoke under write load", 202, reply)
            });
            let put_url = s.ns_url(&format!("actions/writer-{i}?overwrite=true"));
            tasks.spawn(async move {
                let body = json!({"exec": {"kind": "nodejs:20", "code": support::api::HELLO}});
                let reply = send(http().put(put_url).json(&body)).await;
                (
                    "action PUT while activation records are written",
                    200,
                    reply,
                )
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (what, status, reply) = joined.expect("request task");
            reply.expect_status(status, what);
        }
    }
}
