//! End-to-end tests of triggers and rules against the real `edgewhisk serve` binary, over raw
//! HTTP (OpenWhisk `docs/triggers_rules.md`; `docs/compat.md`): fire → rule → action with the trigger's parameters under the
//! fire's body, the trigger activation naming the rule and the action activation, 204 once no
//! rule is active, rules pointing at package actions and at sequences, and the `wsk`-style CLI.

mod support;

use serde_json::{Value, json};
use support::api::{Reply, activation_eventually, create_action, http, put_action, send};
use support::cli::{guest_props, wsk_with};
use support::{ServerGuard, spawn_server};

const ECHO: &str = "function main(params) { return params; }";
const INC: &str = "function main(params) { return {n: (params.n || 0) + 1, tag: params.tag}; }";

async fn put(s: &ServerGuard, path: &str, body: Value) -> Reply {
    send(http().put(s.ns_url(path)).json(&body)).await
}

async fn post(s: &ServerGuard, path: &str, body: Value) -> Reply {
    send(http().post(s.ns_url(path)).json(&body)).await
}

async fn get(s: &ServerGuard, path: &str) -> Reply {
    send(http().get(s.ns_url(path))).await
}

fn params(pairs: &[(&str, Value)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// Fires `trigger` with `body`, expects 202 and returns the stored trigger activation.
async fn fire(s: &ServerGuard, trigger: &str, body: Value) -> Value {
    let reply = post(s, &format!("triggers/{trigger}"), body).await;
    reply.expect_status(202, &format!("fire {trigger}"));
    let id = reply.body["activationId"]
        .as_str()
        .expect("an activation id")
        .to_owned();
    assert_eq!(reply.activation_header(), Some(id.as_str()));
    activation_eventually(s, &id, |_| true).await
}

/// The trigger activation's log lines, parsed.
fn rule_logs(record: &Value) -> Vec<Value> {
    record["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|l| serde_json::from_str(l.as_str().expect("a string line")).expect("JSON"))
        .collect()
}

/// The finished activation the rule log `entry` names.
async fn rule_activation(s: &ServerGuard, entry: &Value) -> Value {
    assert_eq!(entry["statusCode"], json!(0), "{entry}");
    let id = entry["activationId"].as_str().expect("an activation id");
    activation_eventually(s, id, |a| a.get("end").is_some()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fire_runs_the_rule_action_with_merged_parameters_and_records_the_fire() {
        let s = spawn_server(None);
        create_action(&s, "echo", "nodejs:20", ECHO).await;
        put(
            &s,
            "triggers/t",
            json!({"parameters": params(&[("a", json!(1)), ("b", json!(2))])}),
        )
        .await
        .expect_status(200, "create trigger");
        // The body wsk sends.
        let rule = put(
            &s,
            "rules/r",
            json!({"name": "r", "status": "", "trigger": "/_/t", "action": "/_/echo"}),
        )
        .await;
        rule.expect_status(200, "create rule");
        assert_eq!(rule.body["status"], json!("active"));

        let record = fire(&s, "t", json!({"b": 3, "c": "x"})).await;
        assert_eq!(record["name"], json!("t"));
        assert_eq!(record["namespace"], json!("guest"));
        assert!(record.get("end").is_none(), "{record}");
        assert_eq!(
            record["response"],
            json!({"result": {"b": 3, "c": "x"}, "success": true, "status": "success"})
        );
        let logs = rule_logs(&record);
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0]["rule"], json!("guest/r"));
        assert_eq!(logs[0]["action"], json!("guest/echo"));
        assert_eq!(logs[0]["success"], json!(true));
        let action = rule_activation(&s, &logs[0]).await;
        assert_eq!(action["name"], json!("echo"));
        assert_eq!(
            action["response"]["result"],
            json!({"a": 1, "b": 3, "c": "x"})
        );

        // Disabled, the only rule does not count: 204 and nothing recorded.
        post(&s, "rules/r", json!({"status": "inactive"}))
            .await
            .expect_status(200, "disable");
        assert_eq!(get(&s, "rules/r").await.body["status"], json!("inactive"));
        let reply = post(&s, "triggers/t", json!({})).await;
        reply.expect_status(204, "fire with an inactive rule");
        assert!(reply.activation_header().is_none());

        post(&s, "rules/r", json!({"status": "active"}))
            .await
            .expect_status(200, "enable");
        let again = fire(&s, "t", json!({})).await;
        assert_eq!(
            rule_activation(&s, &rule_logs(&again)[0]).await["response"]["result"],
            json!({"a": 1, "b": 2})
        );

        let deleted = send(http().delete(s.ns_url("rules/r"))).await;
        deleted.expect_status(200, "delete rule");
        assert_eq!(deleted.body["status"], json!("inactive"));
        assert_eq!(get(&s, "triggers/t").await.body["rules"], json!({}));
        post(&s, "triggers/t", json!({}))
            .await
            .expect_status(204, "fire without rules");
    }

    #[tokio::test]
    async fn trigger_fires_a_sequence_and_a_package_action_through_its_rules() {
        let s = spawn_server(None);
        create_action(&s, "inc", "nodejs:20", INC).await;
        put_action(
            &s,
            "twice",
            json!({"exec": {"kind": "sequence", "components": ["/_/inc", "/_/inc"]}}),
        )
        .await
        .expect_status(200, "create sequence");
        put(
            &s,
            "packages/tools",
            json!({"parameters": params(&[("tag", json!("pkg")), ("n", json!(100))])}),
        )
        .await
        .expect_status(200, "create package");
        create_action(&s, "tools/echo", "nodejs:20", ECHO).await;
        put(
            &s,
            "triggers/tick",
            json!({"parameters": params(&[("n", json!(1))])}),
        )
        .await
        .expect_status(200, "create trigger");
        for (rule, action) in [("to-seq", "/_/twice"), ("to-pkg", "/_/tools/echo")] {
            put(
                &s,
                &format!("rules/{rule}"),
                json!({"trigger": "/_/tick", "action": action}),
            )
            .await
            .expect_status(200, &format!("create rule {rule}"));
        }

        let record = fire(&s, "tick", json!({"tag": "fired"})).await;
        let logs = rule_logs(&record);
        assert_eq!(logs.len(), 2, "{record}");
        let by_rule = |name: &str| {
            logs.iter()
                .find(|l| l["rule"] == json!(format!("guest/{name}")))
                .cloned()
                .unwrap_or_else(|| panic!("no log line for {name}: {record}"))
        };
        let seq = rule_activation(&s, &by_rule("to-seq")).await;
        assert_eq!(by_rule("to-seq")["action"], json!("guest/twice"));
        assert_eq!(seq["response"]["result"], json!({"n": 3, "tag": "fired"}));
        assert_eq!(seq["logs"].as_array().map(Vec::len), Some(2), "{seq}");

        let pkg = rule_activation(&s, &by_rule("to-pkg")).await;
        assert_eq!(by_rule("to-pkg")["action"], json!("guest/tools/echo"));
        // Package parameters < trigger parameters < fire body.
        assert_eq!(pkg["response"]["result"], json!({"n": 1, "tag": "fired"}));
    }

    #[tokio::test]
    async fn the_cli_creates_fires_and_lists_triggers_and_rules() {
        let s = spawn_server(None);
        create_action(&s, "echo", "nodejs:20", ECHO).await;
        let props = guest_props(&s);
        let wsk = |args: &[&str]| wsk_with(&props, args);
        let ok = |args: &[&str], expected: &str| {
            let (code, stdout, stderr) = wsk(args);
            assert_eq!(code, 0, "{args:?}: {stderr}");
            assert!(stdout.starts_with(expected), "{args:?}: {stdout}");
            stdout
        };
        ok(
            &["trigger", "create", "t", "-p", "greeting", "hi"],
            "ok: created trigger t\n",
        );
        ok(&["trigger", "update", "t"], "ok: updated trigger t\n");
        ok(
            &["rule", "create", "r", "t", "echo"],
            "ok: created rule r\n",
        );
        ok(&["rule", "disable", "r"], "ok: disabled rule r\n");
        ok(&["trigger", "fire", "t"], "ok: triggered /_/t\n");
        ok(&["rule", "enable", "r"], "ok: enabled rule r\n");
        let fired = ok(
            &["trigger", "fire", "t", "-p", "who", "cli"],
            "ok: triggered /_/t with id ",
        );
        let id = fired.trim().rsplit(' ').next().expect("an id").to_owned();
        let record = activation_eventually(&s, &id, |_| true).await;
        let action = rule_activation(&s, &rule_logs(&record)[0]).await;
        assert_eq!(
            action["response"]["result"],
            json!({"greeting": "hi", "who": "cli"})
        );

        let got = ok(&["rule", "get", "r"], "ok: got rule r\n");
        assert!(got.contains("\"status\": \"active\""), "{got}");
        let got = ok(&["trigger", "get", "t"], "ok: got trigger t\n");
        assert!(got.contains("\"guest/r\""), "{got}");
        let rules = ok(&["rule", "list"], "rules\n");
        assert!(
            rules.contains("/guest/r") && rules.contains("active"),
            "{rules}"
        );
        let triggers = ok(&["trigger", "list"], "triggers\n");
        assert!(triggers.contains("/guest/t"), "{triggers}");
        let (code, _, stderr) = wsk(&[
            "trigger",
            "create",
            "f",
            "--feed",
            "/whisk.system/alarms/alarm",
        ]);
        // Without its `cron` parameter the alarm feed refuses the trigger, which is removed.
        assert_ne!(code, 0, "{stderr}");
        assert!(stderr.contains("missing the cron parameter"), "{stderr}");
        let (code, _, _) = wsk(&["trigger", "get", "f"]);
        assert_eq!(code, 148, "a refused feed trigger is deleted");

        ok(
            &["rule", "delete", "r", "--disable"],
            "ok: deleted rule r\n",
        );
        ok(&["trigger", "delete", "t"], "ok: deleted trigger t\n");
        let (code, _, stderr) = wsk(&["trigger", "get", "t"]);
        assert_eq!(code, 148, "{stderr}");
        assert!(
            stderr.contains("Unable to get trigger 't': The requested resource does not exist."),
            "{stderr}"
        );
    }
}
