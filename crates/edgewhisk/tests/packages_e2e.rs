//! End-to-end tests of packages, bindings, shared packages and the `/whisk.system/utils`
//! catalog against the real `edgewhisk serve` binary, over raw HTTP (OpenWhisk
//! `docs/packages.md`; `docs/compat.md`).

mod support;

use serde_json::{Value, json};
use support::api::{
    activation_eventually, annotation, create_action, http, invoke, send, send_raw,
};
use support::{ServerGuard, spawn_server};

/// OpenWhisk's well-known `whisk.system` key.
const SYSTEM_UUID: &str = "789c46b1-71f6-4ed5-8c54-816aa4f8c502";
const SYSTEM_SECRET: &str = "abczO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

fn system_url(s: &ServerGuard, rest: &str) -> String {
    s.url(&format!("/api/v1/namespaces/whisk.system/{rest}"))
}

/// Blocking invoke of `/whisk.system/utils/{name}` as the guest, result only.
async fn util(s: &ServerGuard, name: &str, args: Value) -> (u16, Value) {
    let reply = send(
        http()
            .post(system_url(
                s,
                &format!("actions/utils/{name}?blocking=true&result=true"),
            ))
            .json(&args),
    )
    .await;
    (reply.status.as_u16(), reply.body)
}

fn kv(pairs: &[(&str, Value)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn utils_actions_behave_as_the_openwhisk_catalog_documents() {
        let s = spawn_server(None);
        let args = json!({"a": 1, "b": {"c": [true, null]}, "s": "x"});
        assert_eq!(util(&s, "echo", args.clone()).await, (200, args));
        assert_eq!(
            util(&s, "cat", json!({"lines": ["a", "b", 3], "drop": 1})).await,
            (200, json!({"lines": ["a", "b", 3], "payload": "a\nb\n3"}))
        );
        assert_eq!(
            util(&s, "sort", json!({"lines": ["pear", "apple", "fig"]})).await,
            (200, json!({"lines": ["apple", "fig", "pear"], "length": 3}))
        );
        assert_eq!(
            util(&s, "head", json!({"lines": [4, 2, 3]})).await,
            (200, json!({"lines": [4], "num": 1}))
        );
        assert_eq!(
            util(&s, "head", json!({"lines": [4, 2, 3], "num": 2})).await,
            (200, json!({"lines": [4, 2], "num": 2}))
        );
        assert_eq!(
            util(
                &s,
                "split",
                json!({"payload": "one,two,three", "separator": ","})
            )
            .await,
            (
                200,
                json!({"lines": ["one", "two", "three"], "payload": "one,two,three"})
            )
        );
        assert_eq!(
            util(&s, "split", json!({"payload": "l1\nl2"})).await,
            (200, json!({"lines": ["l1", "l2"], "payload": "l1\nl2"}))
        );
        let (status, date) = util(&s, "date", json!({})).await;
        assert_eq!(status, 200);
        let date = date["date"].as_str().expect("a date string").to_owned();
        assert!(
            date.len() == 24 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
            "not an ISO date: {date}"
        );
        assert_eq!(
            util(&s, "namespace", json!({})).await,
            (200, json!({"namespace": "guest"}))
        );
        assert_eq!(
            util(
                &s,
                "smash",
                json!({"$fieldName": "p", "a": 1, "b": {"c": 2}})
            )
            .await,
            (200, json!({"p": {"a": 1, "b": {"c": 2}}}))
        );
        assert_eq!(
            util(&s, "smash", json!({"a": 1})).await,
            (
                502,
                json!({"error": "Expected an argument '$fieldName' of type 'string'."})
            )
        );
    }

    #[tokio::test]
    async fn the_system_package_is_shared_read_only_and_bindable() {
        let s = spawn_server(None);
        let reply = send(http().get(system_url(&s, "packages"))).await;
        reply.expect_status(200, "list whisk.system packages");
        let mut names: Vec<&str> = reply
            .body
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["alarms", "mqtt", "utils"]);
        let reply = send(http().get(system_url(&s, "packages/utils"))).await;
        reply.expect_status(200, "get utils");
        assert_eq!(reply.body["publish"], json!(true));
        assert_eq!(reply.body["actions"].as_array().map(Vec::len), Some(8));

        let reply = send(
            http()
                .put(system_url(&s, "actions/utils/evil?overwrite=true"))
                .json(&json!({"exec": {"kind": "nodejs:20", "code": "function main(){}"}})),
        )
        .await;
        reply.expect_status(403, "write into whisk.system");
        assert_eq!(
            reply.expect_error_body("write into whisk.system"),
            "The supplied authentication is not authorized to access 'whisk.system/utils/evil'."
        );

        // The system key owns whisk.system: an unpublished package there is not readable by guest.
        let reply = send_raw(
            http()
                .put(system_url(&s, "packages/private"))
                .basic_auth(SYSTEM_UUID, Some(SYSTEM_SECRET))
                .json(&json!({})),
        )
        .await;
        reply.expect_status(200, "system creates a private package");
        let reply = send(http().get(system_url(&s, "packages/private"))).await;
        reply.expect_status(403, "guest reads a private system package");

        // wsk package bind /whisk.system/utils myutils -p payload bound
        let reply = send(http().put(s.ns_url("packages/myutils")).json(
            &json!({"binding": {"namespace": "whisk.system", "name": "utils"},
                              "parameters": kv(&[("payload", json!("bound"))])}),
        ))
        .await;
        reply.expect_status(200, "bind utils");
        let reply = invoke(&s, "myutils/echo", "blocking=true", json!({"x": 1})).await;
        reply.expect_status(200, "invoke through the binding");
        assert_eq!(
            reply.body["response"]["result"],
            json!({"payload": "bound", "x": 1})
        );
        let id = reply.body["activationId"]
            .as_str()
            .expect("an id")
            .to_owned();
        let record = activation_eventually(&s, &id, |_| true).await;
        assert_eq!(
            annotation(&record, "path"),
            Some(&json!("whisk.system/utils/echo"))
        );
        assert_eq!(
            annotation(&record, "binding"),
            Some(&json!("guest/myutils")),
            "an invocation through a binding names it"
        );
    }

    #[tokio::test]
    async fn package_parameters_bindings_and_deletion_follow_openwhisk() {
        let s = spawn_server(None);
        let echo = "function main(params) { return params; }";
        let reply = send(
            http()
                .put(s.ns_url("packages/base"))
                .json(&json!({"parameters": kv(&[("a", json!("pkg")), ("b", json!("pkg")), ("c", json!("pkg"))])})),
        )
        .await;
        reply.expect_status(200, "create package");
        assert_eq!(reply.body["binding"], json!({}));
        create_action(&s, "base/echo", "nodejs:20", echo).await;
        let reply = send(
            http()
                .put(s.ns_url("actions/base/echo?overwrite=true"))
                .json(&json!({"parameters": kv(&[("c", json!("action"))])})),
        )
        .await;
        reply.expect_status(200, "set action parameters");
        let reply = send(
            http()
                .put(s.ns_url("packages/bound"))
                .json(&json!({"binding": {"namespace": "_", "name": "base"},
                              "parameters": kv(&[("b", json!("binding"))])})),
        )
        .await;
        reply.expect_status(200, "create binding");

        let reply = invoke(
            &s,
            "bound/echo",
            "blocking=true&result=true",
            json!({"d": 1}),
        )
        .await;
        reply.expect_status(200, "invoke through the binding");
        assert_eq!(
            reply.body,
            json!({"a": "pkg", "b": "binding", "c": "action", "d": 1})
        );
        let reply = invoke(
            &s,
            "base/echo",
            "blocking=true&result=true",
            json!({"c": "req"}),
        )
        .await;
        assert_eq!(reply.body, json!({"a": "pkg", "b": "pkg", "c": "req"}));

        let reply = send(http().get(s.ns_url("packages/bound"))).await;
        assert_eq!(reply.body["actions"][0]["name"], json!("echo"));
        let reply = send(http().get(s.ns_url("packages/"))).await;
        reply.expect_status(200, "list with a trailing slash");
        assert_eq!(reply.body.as_array().map(Vec::len), Some(2));
        let reply = send(http().get(s.ns_url("actions/bound/"))).await;
        reply.expect_status(200, "list the binding's actions");
        assert_eq!(reply.body[0]["namespace"], json!("guest/base"));

        let reply = send(
            http()
                .put(s.ns_url("actions/bound/other"))
                .json(&json!({"exec": {"kind": "nodejs:20", "code": echo}})),
        )
        .await;
        reply.expect_status(400, "create through a binding");
        let reply = send(http().delete(s.ns_url("packages/base"))).await;
        reply.expect_status(409, "delete a non-empty package");
        assert_eq!(
            reply.expect_error_body("delete a non-empty package"),
            "Package not empty (contains 1 entities). Set force param or delete package contents."
        );
        send(http().delete(s.ns_url("packages/bound")))
            .await
            .expect_status(200, "delete the binding");
        send(http().delete(s.ns_url("packages/base?force=true")))
            .await
            .expect_status(200, "force delete");
        send(http().get(s.ns_url("actions/base/echo")))
            .await
            .expect_status(404, "the package's action is gone");
    }
}
