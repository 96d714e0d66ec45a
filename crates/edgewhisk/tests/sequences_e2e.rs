//! End-to-end tests of sequences and conductor actions against the real `edgewhisk serve`
//! binary, over raw HTTP (OpenWhisk `docs/actions.md` sequences and `docs/conductors.md`; what
//! edgewhisk serves is in `docs/compat.md`): the shape of experiment C of the Raspberry Pi study
//! that `docs/benchmarks.md` compares against (a two-step sequence of one Node.js action passing payloads from 0 B to just under 1 MB, checked byte
//! for byte), nested sequences, a failing component, a missing component, a conductor
//! composition, and the records' `cause`, `causedBy` and `logs`.

mod support;

use serde_json::{Value, json};
use support::api::{
    activation_eventually, annotation, create_action, http, invoke, invoke_blocking, put_action,
    send,
};
use support::{ServerGuard, spawn_server};

const ECHO: &str = "function main(params) { return params; }";
const FAIL: &str = "function main(params) { return {error: 'stop here'}; }";
const DOUBLE: &str = "function main(params) { return {n: params.n * 2}; }";
const CONDUCTOR: &str = "function main(p) {\n\
  if (p.step === undefined) return {action: 'double', params: {n: p.n}, state: {step: 1}};\n\
  if (p.step === 1) return {action: '/_/double', params: {n: p.n}, state: {step: 2}};\n\
  return {params: {n: p.n, done: true}};\n}";

/// The invoke payload limit of the default configuration.
const PAYLOAD_LIMIT: usize = 1_048_576;

async fn create_sequence(s: &ServerGuard, name: &str, components: &[&str]) -> support::api::Reply {
    put_action(
        s,
        name,
        json!({"exec": {"kind": "sequence", "components": components}}),
    )
    .await
}

/// A text of `len` bytes mixing ASCII and multi-byte UTF-8, so that any re-encoding shows.
fn text_of(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let pattern = ['a', 'Z', '7', ' ', 'é', '✓', '-', 'q'];
    let mut i = 0usize;
    while out.len() < len {
        let c = pattern[i % pattern.len()];
        if out.len() + c.len_utf8() > len {
            out.push('x');
        } else {
            out.push(c);
        }
        i = i.wrapping_mul(31).wrapping_add(7);
    }
    out
}

fn ids(record: &Value) -> Vec<String> {
    record["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|v| v.as_str().expect("an id").to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_two_step_sequence_passes_payloads_up_to_one_megabyte_byte_for_byte() {
        let s = spawn_server(None);
        create_action(&s, "echo", "nodejs:20", ECHO).await;
        create_sequence(&s, "chain", &["echo", "/_/echo"])
            .await
            .expect_status(200, "create chain");
        // `{"payload":"…"}` is 14 bytes of framing around the text.
        let near_limit = PAYLOAD_LIMIT - 14 - 2;
        for len in [0, 1024, 100 * 1024, near_limit] {
            let text = text_of(len);
            let body = json!({ "payload": text });
            assert!(body.to_string().len() < PAYLOAD_LIMIT);
            let reply = invoke(&s, "chain", "blocking=true&result=true", body).await;
            reply.expect_status(200, &format!("chain of {len} bytes"));
            let got = reply.body["payload"].as_str().expect("a payload string");
            assert_eq!(got.len(), len, "length of a {len}-byte payload");
            assert!(got == text, "the {len}-byte payload came back altered");
        }
        let reply = invoke_blocking(&s, "chain", json!({"payload": "x"})).await;
        reply.expect_status(200, "chain record");
        let record = reply.body;
        assert_eq!(annotation(&record, "kind"), Some(&json!("sequence")));
        assert_eq!(annotation(&record, "topmost"), Some(&json!(true)));
        assert_eq!(annotation(&record, "path"), Some(&json!("guest/chain")));
        let logs = ids(&record);
        assert_eq!(logs.len(), 2);
        let seq_id = record["activationId"].as_str().expect("an id");
        let mut sum = 0;
        for id in &logs {
            let c = activation_eventually(&s, id, |_| true).await;
            assert_eq!(c["cause"], json!(seq_id), "component {id}");
            assert_eq!(c["name"], json!("echo"));
            sum += c["duration"].as_u64().expect("a duration");
        }
        assert_eq!(record["duration"], json!(sum));
        let stored = activation_eventually(&s, seq_id, |_| true).await;
        assert_eq!(ids(&stored), logs);
        assert_eq!(stored["response"]["result"], json!({"payload": "x"}));
    }

    #[tokio::test]
    async fn nested_failing_missing_and_non_blocking_sequences_behave_as_openwhisk() {
        let s = spawn_server(None);
        create_action(&s, "echo", "nodejs:20", ECHO).await;
        create_action(&s, "fail", "nodejs:20", FAIL).await;
        create_sequence(&s, "inner", &["echo", "echo"])
            .await
            .expect_status(200, "inner");
        create_sequence(&s, "outer", &["echo", "inner"])
            .await
            .expect_status(200, "outer");

        // Nested: the inner sequence has its own record, caused by the outer one.
        let reply = invoke_blocking(&s, "outer", json!({"k": "v"})).await;
        reply.expect_status(200, "outer");
        assert_eq!(reply.body["response"]["result"], json!({"k": "v"}));
        let logs = ids(&reply.body);
        assert_eq!(logs.len(), 2);
        let inner = activation_eventually(&s, &logs[1], |_| true).await;
        assert_eq!(inner["name"], json!("inner"));
        assert_eq!(inner["cause"], reply.body["activationId"]);
        assert_eq!(annotation(&inner, "causedBy"), Some(&json!("sequence")));
        assert_eq!(annotation(&inner, "topmost"), Some(&json!(false)));
        assert_eq!(ids(&inner).len(), 2);

        // A failing component stops the chain with its response.
        create_sequence(&s, "broken", &["echo", "fail", "echo"])
            .await
            .expect_status(200, "broken");
        let reply = invoke_blocking(&s, "broken", json!({})).await;
        reply.expect_status(502, "broken");
        assert_eq!(reply.body["response"]["status"], json!("application error"));
        assert_eq!(
            reply.body["response"]["result"],
            json!({"error": "stop here"})
        );
        assert_eq!(ids(&reply.body).len(), 2);

        // A missing component is refused at create time and is an application error at run time.
        let reply = create_sequence(&s, "dangling", &["echo", "nope"]).await;
        reply.expect_status(400, "dangling");
        assert_eq!(
            reply.body["error"],
            json!("Sequence component does not exist.")
        );
        create_action(&s, "gone", "nodejs:20", ECHO).await;
        create_sequence(&s, "orphan", &["gone"])
            .await
            .expect_status(200, "orphan");
        send(http().delete(s.ns_url("actions/gone")))
            .await
            .expect_status(200, "delete gone");
        let reply = invoke_blocking(&s, "orphan", json!({})).await;
        reply.expect_status(502, "orphan");
        assert_eq!(
            reply.body["response"]["result"],
            json!({"error": "Sequence component does not exist."})
        );

        // Non-blocking: 202 with the id; the record shows up with the component ids.
        let reply = invoke(&s, "inner", "", json!({"n": 1})).await;
        reply.expect_status(202, "non-blocking inner");
        let id = reply.body["activationId"]
            .as_str()
            .expect("an id")
            .to_owned();
        let record = activation_eventually(&s, &id, |r| r["logs"].as_array().is_some()).await;
        assert_eq!(record["response"]["result"], json!({"n": 1}));
        assert_eq!(ids(&record).len(), 2);
    }

    #[tokio::test]
    async fn a_conductor_action_composes_its_components() {
        let s = spawn_server(None);
        create_action(&s, "double", "nodejs:20", DOUBLE).await;
        let body = json!({"exec": {"kind": "nodejs:20", "code": CONDUCTOR},
                      "annotations": [{"key": "conductor", "value": true}]});
        put_action(&s, "conductor", body)
            .await
            .expect_status(200, "create conductor");
        let reply = invoke_blocking(&s, "conductor", json!({"n": 3})).await;
        reply.expect_status(200, "conductor");
        let record = reply.body;
        assert_eq!(record["response"]["result"], json!({"n": 12, "done": true}));
        assert_eq!(annotation(&record, "conductor"), Some(&json!(true)));
        assert_eq!(annotation(&record, "kind"), Some(&json!("sequence")));
        let logs = ids(&record);
        assert_eq!(logs.len(), 5);
        let mut names = Vec::new();
        for id in &logs {
            let c = activation_eventually(&s, id, |_| true).await;
            assert_eq!(c["cause"], record["activationId"]);
            names.push(c["name"].as_str().expect("a name").to_owned());
        }
        assert_eq!(
            names,
            ["conductor", "double", "conductor", "double", "conductor"]
        );
    }
}
