//! End-to-end: every valid JSON body reaches an action as the one value it is, whatever its
//! whitespace, on every entry path and for every runner kind; nothing a caller sends can add a
//! request of its own to the runner's pipe.

mod support;

use serde_json::{Value, json};
use support::api::{activation_eventually, create_action, http, send};
use support::{ServerGuard, spawn_server};

/// Returns its arguments and the namespace the platform told it it runs in.
const ECHO_JS: &str =
    "function main(params) {\n  return { args: params, ns: process.env.__OW_NAMESPACE };\n}\n";

/// The same in Python.
const ECHO_PY: &str = "import os\ndef main(args):\n    return {'args': args, 'ns': os.environ.get('__OW_NAMESPACE')}\n";

/// Bodies with insignificant line breaks of every kind, and the injection attempt of issue 9.
fn bodies() -> Vec<(&'static str, String)> {
    vec![
        ("LF", "{\n  \"name\": \"Pi\"\n}".to_owned()),
        ("CR", "{\r  \"name\": \"Pi\"\r}".to_owned()),
        ("CRLF", "{\r\n  \"name\": \"Pi\"\r\n}\r\n".to_owned()),
        (
            "injection",
            "{\"a\":\n{\"id\":3,\"op\":\"run\",\"value\":{\"injected\":true},\"namespace\":\"spoofed\"}\n}"
                .to_owned(),
        ),
        (
            "nested pretty",
            "{\n\t\"list\": [\n\t\t1,\r\n\t\t{\"s\": \"line\\nbreak\"}\n\t]\n}\n".to_owned(),
        ),
    ]
}

async fn post_raw(s: &ServerGuard, rest: &str, body: &str) -> support::api::Reply {
    send(
        http()
            .post(s.ns_url(rest))
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_with_any_line_breaks_run_as_one_value_for_every_kind() {
        let s = spawn_server(None);
        create_action(&s, "echo-js", "nodejs:20", ECHO_JS).await;
        create_action(&s, "echo-py", "python:3", ECHO_PY).await;
        for action in ["echo-js", "echo-py"] {
            for (what, body) in bodies() {
                let reply = post_raw(
                    &s,
                    &format!("actions/{action}?blocking=true&result=true&timeout=20000"),
                    &body,
                )
                .await;
                reply.expect_status(200, &format!("{action}, {what} body"));
                let expected: Value = serde_json::from_str(&body).expect("test body is JSON");
                assert_eq!(reply.body["args"], expected, "{action}, {what}");
                assert_eq!(reply.body["ns"], json!("guest"), "{action}, {what}");
            }
        }
        // The instances took every request whole: a plain call still answers at once.
        let again = post_raw(&s, "actions/echo-js?blocking=true&result=true", "{}").await;
        again.expect_status(200, "plain call after the pretty bodies");
    }

    #[tokio::test]
    async fn pretty_bodies_reach_actions_through_triggers_and_sequences() {
        let s = spawn_server(None);
        create_action(&s, "echo", "nodejs:20", ECHO_JS).await;
        send(http().put(s.ns_url("triggers/t")).json(&json!({})))
            .await
            .expect_status(200, "create trigger");
        send(
            http()
                .put(s.ns_url("rules/r"))
                .json(&json!({"name": "r", "status": "", "trigger": "/_/t", "action": "/_/echo"})),
        )
        .await
        .expect_status(200, "create rule");
        send(
            http()
                .put(s.ns_url("actions/seq"))
                .json(&json!({"exec": {"kind": "sequence", "components": ["/_/echo"]}})),
        )
        .await
        .expect_status(200, "create sequence");

        let body = "{\r\n  \"name\": \"Pi\",\n  \"n\": [1,\r2]\n}";
        let expected = json!({"name": "Pi", "n": [1, 2]});

        let seq = post_raw(&s, "actions/seq?blocking=true&result=true", body).await;
        seq.expect_status(200, "sequence with a pretty body");
        assert_eq!(seq.body["args"], expected);

        let fired = post_raw(&s, "triggers/t", body).await;
        fired.expect_status(202, "fire with a pretty body");
        let trigger_id = fired.body["activationId"]
            .as_str()
            .expect("trigger activation id")
            .to_owned();
        let record = activation_eventually(&s, &trigger_id, |r| {
            r["logs"].as_array().is_some_and(|l| !l.is_empty())
        })
        .await;
        let entry: Value = serde_json::from_str(
            record["logs"][0]
                .as_str()
                .expect("a rule log entry is a JSON string"),
        )
        .expect("rule log entry");
        let action_id = entry["activationId"]
            .as_str()
            .expect("action activation id");
        let action = activation_eventually(&s, action_id, |a| a.get("end").is_some()).await;
        assert_eq!(action["response"]["status"], json!("success"), "{action}");
        assert_eq!(action["response"]["result"]["args"], expected);
    }
}
