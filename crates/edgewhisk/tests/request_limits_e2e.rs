//! End-to-end: what a client sends cannot make the server hold more memory than the configured
//! limits allow. Bodies over a route's limit are refused with 413 before they are parsed (and,
//! when `Content-Length` says so, before they are read); the server's peak RSS stays within
//! idle + 100 MB through floods of 24 MB bodies, and it keeps serving.

mod support;

use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::api::{assert_healthy, create_action, create_hello, http, invoke, send};
use support::{GUEST_KEY, ServerGuard, spawn_server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The documented bound: the server's peak RSS over its idle peak.
const RSS_ALLOWANCE_KIB: u64 = 100 * 1024;

/// How long a refused request may take, generous for a loaded 2-core machine.
const FAST: Duration = Duration::from_secs(15);

/// One reply read off a raw connection.
#[derive(Debug)]
struct RawReply {
    status: u16,
    body: Value,
    elapsed: Duration,
}

/// How a raw request frames its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length` declared up front.
    Length,
    /// `Transfer-Encoding: chunked`: the server only learns the size by reading.
    Chunked,
}

/// Sends `body` on a fresh connection while reading the reply at the same time, so that an
/// early answer is seen even when the server stops reading the body.
async fn raw_request(
    base: &str,
    method: &str,
    path: &str,
    body: Arc<Vec<u8>>,
    framing: Framing,
) -> RawReply {
    let addr = base.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let stream = TcpStream::connect(&addr)
        .await
        .expect("connect to the server");
    let (mut rd, mut wr) = stream.into_split();
    let auth = base64::engine::general_purpose::STANDARD.encode(GUEST_KEY);
    let framing_header = match framing {
        Framing::Length => format!("Content-Length: {}", body.len()),
        Framing::Chunked => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\n{framing_header}\r\nConnection: close\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(256 * 1024) {
            match framing {
                Framing::Length => wr.write_all(chunk).await?,
                Framing::Chunked => {
                    wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .await?;
                    wr.write_all(chunk).await?;
                    wr.write_all(b"\r\n").await?;
                }
            }
        }
        if framing == Framing::Chunked {
            wr.write_all(b"0\r\n\r\n").await?;
        }
        // Dropping the write half would half-close the connection, which the server takes as
        // the client leaving before its reply: keep it until the reply is read.
        std::io::Result::Ok(wr)
    });
    let mut reply = Vec::new();
    let mut buf = vec![0_u8; 64 * 1024];
    // A reset after the reply (the server closing with body bytes unread) ends the read.
    let mut read_error = None;
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => break,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    writer.abort();
    assert!(read.is_ok(), "no reply within 60 s to {method} {path}");
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!("no status line in reply to {method} {path} ({read_error:?}): {text:.300}")
        });
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    RawReply {
        status,
        body,
        elapsed,
    }
}

/// The server's peak resident set size so far, KiB (`VmHWM`).
fn peak_rss_kib(s: &ServerGuard) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid()))
        .expect("read /proc/PID/status of the server");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line in /proc/PID/status")
}

/// The server's resident set size now, KiB (`VmRSS`).
fn rss_kib(s: &ServerGuard) -> u64 {
    s.rss_kib()
}

/// A JSON array of `bytes` bytes of zeros: the cheapest text that makes the largest tree.
fn zeros_array(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 2);
    s.push('[');
    s.push_str(&"0,".repeat(bytes / 2));
    s.push('0');
    s.push(']');
    s
}

fn assert_413(r: &RawReply, what: &str) {
    assert_eq!(r.status, 413, "{what}: {}", r.body);
    let message = r.body["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("larger than allowed"),
        "{what}: {}",
        r.body
    );
    assert!(r.body["code"].is_string(), "{what}: {}", r.body);
    assert!(r.elapsed < FAST, "{what} took {:?}", r.elapsed);
}

/// Sends every request at once and returns the replies in order.
async fn send_all(
    s: &ServerGuard,
    requests: &[(&'static str, String, Arc<Vec<u8>>)],
    framing: Framing,
) -> Vec<RawReply> {
    let tasks: Vec<_> = requests
        .iter()
        .map(|(m, p, b)| {
            let (addr, m, p, b) = (s.base().to_owned(), *m, p.clone(), b.clone());
            tokio::spawn(async move { raw_request(&addr, m, &p, b, framing).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("request task"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_24_mb_bodies_to_entity_routes_get_413_fast_and_rss_stays_bounded() {
        let s = spawn_server(None);
        create_hello(&s).await;
        assert_healthy(&s, "start").await;
        let idle = peak_rss_kib(&s);

        const SIZE: usize = 24 * 1024 * 1024;
        let array = Arc::new(zeros_array(SIZE).into_bytes());
        // Within the action route's limit (code + parameters + annotations): only the check of
        // the text before parsing refuses it.
        let action = Arc::new(
            format!(
                r#"{{"exec":{{"kind":"nodejs:20","code":"function main(){{}}"}},"parameters":{}}}"#,
                zeros_array(SIZE)
            )
            .into_bytes(),
        );
        let ns = "/api/v1/namespaces/_";
        for round in 0..3 {
            let framing = if round == 2 {
                Framing::Chunked
            } else {
                Framing::Length
            };
            let requests = [
                ("POST", format!("{ns}/rules/x"), array.clone()),
                ("PUT", format!("{ns}/triggers/t"), array.clone()),
                ("PUT", format!("{ns}/packages/p"), array.clone()),
                ("PUT", format!("{ns}/actions/a"), action.clone()),
            ];
            let replies = send_all(&s, &requests, framing).await;
            for ((method, path, _), r) in requests.iter().zip(&replies) {
                assert_413(r, &format!("round {round} {framing:?}: {method} {path}"));
            }
            let peak = peak_rss_kib(&s);
            eprintln!("request_limits: round {round} ({framing:?}): peak RSS {peak} KiB");
            assert!(
                peak <= idle + RSS_ALLOWANCE_KIB,
                "round {round}: peak RSS {peak} KiB over idle {idle} KiB + {RSS_ALLOWANCE_KIB} KiB"
            );
        }
        eprintln!(
            "request_limits: idle peak {idle} KiB, peak after floods {} KiB",
            peak_rss_kib(&s)
        );
        assert_healthy(&s, "24 MB body floods").await;
        // The routes still take ordinary bodies.
        let r = raw_request(
            s.base(),
            "PUT",
            &format!("{ns}/triggers/t"),
            Arc::new(
                json!({"parameters": [{"key": "a", "value": 1}]})
                    .to_string()
                    .into_bytes(),
            ),
            Framing::Length,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// Returns a result of about 900 KB, so that each stored record is large.
    const BIG_RESULT_JS: &str =
        "function main(params) {\n  return { n: params.n, pad: 'x'.repeat(900 * 1024) };\n}\n";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deep_activation_page_reads_only_that_page() {
        let s = spawn_server(None);
        create_action(&s, "big", "nodejs:20", BIG_RESULT_JS).await;
        const RECORDS: u64 = 110;
        for n in 0..RECORDS {
            let r = invoke(&s, "big", "blocking=true&result=true", json!({ "n": n })).await;
            r.expect_status(200, &format!("invoke {n}"));
        }
        let before = peak_rss_kib(&s);
        for docs in ["false", "true"] {
            let page =
                send(http().get(s.ns_url(&format!("activations?skip=100&limit=2&docs={docs}"))))
                    .await;
            page.expect_status(200, "deep page");
            let list = page.body.as_array().expect("a list");
            assert_eq!(list.len(), 2, "{}", page.text);
            if docs == "true" {
                // Newest first: skip 100 of 110 leaves the 10th and 9th invocations.
                let ns: Vec<&Value> = list.iter().map(|a| &a["response"]["result"]["n"]).collect();
                assert_eq!(ns, [&json!(RECORDS - 101), &json!(RECORDS - 102)]);
            }
        }
        let huge =
            send(http().get(s.ns_url("activations?skip=9223372036854775807&limit=200"))).await;
        huge.expect_status(200, "skip past everything");
        assert_eq!(huge.body, json!([]));
        let after = peak_rss_kib(&s);
        eprintln!("request_limits: activation pages: peak RSS {before} KiB -> {after} KiB");
        assert!(
            after <= before + 40 * 1024,
            "listing a deep page raised the peak RSS from {before} KiB to {after} KiB"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_45_mb_actions_read_and_invoked_keep_the_server_rss_bounded() {
        let s = spawn_server(None);
        create_hello(&s).await;
        assert_healthy(&s, "start").await;
        let idle = rss_kib(&s);
        let code = format!(
            "// {}\nfunction main(params) {{ return {{ n: params.n }}; }}\n",
            "x".repeat(45 * 1024 * 1024)
        );
        let (mut worst, mut last, mut first) = (idle, idle, None);
        for n in 0..10 {
            let name = format!("big{n}");
            let r = send(
                http()
                    .put(s.ns_url(&format!("actions/{name}")))
                    .json(&json!({"exec": {"kind": "nodejs:20", "code": code}})),
            )
            .await;
            r.expect_status(200, &format!("create {name}"));
            let r = send(http().get(s.ns_url(&format!("actions/{name}?code=false")))).await;
            r.expect_status(200, &format!("read {name}"));
            let r = invoke(&s, &name, "blocking=true&result=true", json!({ "n": n })).await;
            r.expect_status(200, &format!("invoke {name}"));
            assert_eq!(r.body, json!({ "n": n }));
            // Let the allocator hand back what the request freed before measuring.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = rss_kib(&s);
            eprintln!("request_limits: after {name}: RSS {now} KiB (idle {idle} KiB)");
            first.get_or_insert(now);
            worst = worst.max(now);
            last = now;
        }
        // One large request in flight costs a few copies of its code; what must not happen is
        // the server keeping every large action it has seen (ten of them were 450 MB).
        let first = first.unwrap_or(idle);
        assert!(
            worst <= idle + 250 * 1024,
            "RSS reached {worst} KiB from an idle {idle} KiB with ten 45 MB actions"
        );
        assert!(
            last <= first + 50 * 1024,
            "RSS grew from {first} KiB after the first 45 MB action to {last} KiB after ten"
        );
        // Listing them shows summaries: their code is not loaded.
        let peak_before_list = peak_rss_kib(&s);
        for query in ["actions?limit=200", "actions?limit=5&skip=5"] {
            let r = send(http().get(s.ns_url(query))).await;
            r.expect_status(200, query);
            assert!(r.body.as_array().is_some_and(|l| !l.is_empty()), "{query}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listed = peak_rss_kib(&s);
        eprintln!("request_limits: listing them: peak RSS {peak_before_list} KiB -> {listed} KiB");
        assert!(
            listed <= peak_before_list + 100 * 1024,
            "listing ten 45 MB actions raised the peak RSS from {peak_before_list} KiB to {listed} KiB"
        );
        assert!(
            rss_kib(&s) <= idle + 250 * 1024,
            "listing ten 45 MB actions left the RSS at {} KiB from an idle {idle} KiB",
            rss_kib(&s)
        );
        assert_healthy(&s, "ten 45 MB actions").await;
    }
}
