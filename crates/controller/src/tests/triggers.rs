//! Triggers, rules and fire through the router, over the memory store and the fake invoker.

use super::{Harness, OTHER_AUTH, Resp, assert_error, names_of};
use crate::config::ApiConfig;
use axum::http::{Method, StatusCode};
use edgewhisk_entity::{Activation, ActivationId};
use edgewhisk_store::ActivationStore;
use serde_json::{Value, json};
use std::time::Duration;

const T: &str = "/api/v1/namespaces/_/triggers";
const R: &str = "/api/v1/namespaces/_/rules";

fn params(pairs: &[(&str, Value)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// The stored trigger activation of a 202 fire, waited for (it is written after the answer).
async fn trigger_activation(h: &Harness, r: &Resp) -> Activation {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["activationId"].as_str().expect("an activation id");
    assert_eq!(r.headers["x-openwhisk-activation-id"], id);
    let id = ActivationId::parse(id).unwrap();
    for _ in 0..500 {
        if let Some(a) = ActivationStore::get(&*h.store, "guest", &id).await.unwrap() {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("trigger activation {id} was never stored");
}

fn log_entries(a: &Activation) -> Vec<Value> {
    a.logs
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect()
}

async fn setup(h: &Harness, trigger_params: Value) {
    assert_eq!(h.create("a", json!({})).await.status, StatusCode::OK);
    let r = h
        .put(&format!("{T}/t"), json!({"parameters": trigger_params}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn trigger_crud_follows_openwhisk() {
    let h = Harness::new().await;
    let r = h
        .put(
            &format!("{T}/t"),
            json!({"parameters": params(&[("a", json!(1))]),
                   "annotations": params(&[("d", json!("x"))]), "name": "ignored"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["namespace"], json!("guest"));
    assert_eq!(r.body["name"], json!("t"));
    assert_eq!(r.body["version"], json!("0.0.1"));
    assert_eq!(r.body["limits"], json!({}));
    assert!(r.body.get("rules").is_none());

    assert_error(
        &h.put(&format!("{T}/t"), json!({})).await,
        409,
        "resource already exists",
    );

    let r = h
        .put(
            &format!("{T}/t?overwrite=true"),
            json!({"annotations": params(&[("e", json!(2))])}),
        )
        .await;
    assert_eq!(r.body["version"], json!("0.0.2"));
    assert_eq!(r.body["parameters"], params(&[("a", json!(1))]));
    assert_eq!(r.body["annotations"], params(&[("e", json!(2))]));

    h.put(&format!("{T}/u"), json!({})).await;
    let r = h.get(T).await;
    let mut names = names_of(&r.body);
    names.sort_unstable();
    assert_eq!(names, ["t", "u"]);
    assert!(r.body[0].get("parameters").is_none());
    assert!(r.body[0].get("annotations").is_some());
    assert_eq!(
        h.get(&format!("{T}?count=true")).await.body,
        json!({"triggers": 2})
    );

    let r = h.get(&format!("{T}/t")).await;
    assert_eq!(r.body["parameters"], params(&[("a", json!(1))]));

    let r = h.call(Method::DELETE, &format!("{T}/t"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["name"], json!("t"));
    assert_error(
        &h.get(&format!("{T}/t")).await,
        404,
        "The requested resource does not exist.",
    );
    assert_error(
        &h.call(Method::DELETE, &format!("{T}/t"), None).await,
        404,
        "The requested resource does not exist.",
    );
}

#[tokio::test]
async fn trigger_feed_annotation_must_name_an_entity() {
    let h = Harness::new().await;
    let bad = json!({"annotations": params(&[("feed", json!("alarm"))])});
    assert_error(
        &h.put(&format!("{T}/t"), bad).await,
        400,
        "Feed name is not valid",
    );
    let good = json!({"annotations": params(&[("feed", json!("/whisk.system/alarms/alarm"))])});
    assert_eq!(h.put(&format!("{T}/t"), good).await.status, StatusCode::OK);
}

#[tokio::test]
async fn trigger_routes_of_another_namespace_are_forbidden() {
    let h = Harness::new().await;
    h.put(&format!("{T}/t"), json!({})).await;
    let r = h
        .raw(
            Method::POST,
            "/api/v1/namespaces/guest/triggers/t",
            Some("{}"),
            Some(OTHER_AUTH),
            &[],
        )
        .await;
    assert_error(
        &r,
        403,
        "The supplied authentication is not authorized to access 'guest/t'.",
    );
}

#[tokio::test]
async fn fire_without_rules_answers_204_and_records_nothing() {
    let h = Harness::new().await;
    setup(&h, json!([])).await;
    let r = h.post(&format!("{T}/t"), json!({"x": 1})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(h.balancer.published().is_empty());
    assert_error(
        &h.post(&format!("{T}/missing"), json!({})).await,
        404,
        "The requested resource does not exist.",
    );
}

#[tokio::test]
async fn fire_runs_active_rules_with_trigger_parameters_under_the_body() {
    let h = Harness::new().await;
    setup(&h, params(&[("x", json!(1)), ("y", json!(2))])).await;
    let r = h
        .put(
            &format!("{R}/r"),
            json!({"trigger": "/_/t", "action": "/_/a"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], json!("active"));

    let r = h.post(&format!("{T}/t"), json!({"y": 5, "z": 3})).await;
    let record = trigger_activation(&h, &r).await;
    let msg = h.balancer.last();
    let args: Value = serde_json::from_str(msg.content.get()).unwrap();
    assert_eq!(args, json!({"x": 1, "y": 5, "z": 3}));
    assert_eq!(msg.action.name.path_string(), "guest/a");

    assert_eq!(record.name, "t");
    assert_eq!(record.namespace, "guest");
    assert_eq!(record.end, 0);
    let v = record.to_json();
    assert!(v.get("end").is_none() && v.get("duration").is_none());
    assert_eq!(
        v["response"],
        json!({"result": {"y": 5, "z": 3}, "success": true, "status": "success"})
    );
    assert_eq!(
        log_entries(&record),
        [
            json!({"statusCode": 0, "success": true, "activationId": msg.activation_id.as_str(),
                "rule": "guest/r", "action": "guest/a"})
        ]
    );
}

#[tokio::test]
async fn fire_logs_inactive_and_failing_rules_next_to_active_ones() {
    let h = Harness::new().await;
    setup(&h, json!([])).await;
    h.create("b", json!({})).await;
    for (rule, action) in [("r1", "/_/a"), ("r2", "/_/b")] {
        let r = h
            .put(
                &format!("{R}/{rule}"),
                json!({"trigger": "/_/t", "action": action}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    let r = h
        .post(&format!("{R}/r2"), json!({"status": "inactive"}))
        .await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!("OK")));

    let record = trigger_activation(&h, &h.post(&format!("{T}/t"), json!({})).await).await;
    let logs = log_entries(&record);
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["statusCode"], json!(0));
    assert_eq!(
        logs[1],
        json!({"statusCode": 1, "success": false, "rule": "guest/r2", "action": "guest/b",
               "error": "Rule 'guest/r2' is inactive, action 'guest/b' was not activated."})
    );

    // The action of an active rule is gone: the fire still happens, the rule logs the 404.
    h.call(Method::DELETE, "/api/v1/namespaces/_/actions/a", None)
        .await;
    let record = trigger_activation(&h, &h.post(&format!("{T}/t"), json!({})).await).await;
    let logs = log_entries(&record);
    assert_eq!(
        logs[0],
        json!({"statusCode": 1, "success": false, "rule": "guest/r1", "action": "guest/a",
               "error": "The requested resource does not exist."})
    );
}

#[tokio::test]
async fn a_trigger_whose_only_rule_is_inactive_fires_with_204() {
    let h = Harness::new().await;
    setup(&h, json!([])).await;
    h.put(
        &format!("{R}/r"),
        json!({"trigger": "/_/t", "action": "/_/a"}),
    )
    .await;
    h.post(&format!("{R}/r"), json!({"status": "inactive"}))
        .await;
    let r = h.post(&format!("{T}/t"), json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(h.balancer.published().is_empty());
}

#[tokio::test]
async fn rule_lifecycle_follows_openwhisk() {
    let h = Harness::new().await;
    setup(&h, json!([])).await;
    let refused = [
        (
            json!({"trigger": "/_/nope", "action": "/_/a"}),
            "The trigger '/guest/nope' does not exist.",
        ),
        (
            json!({"trigger": "/_/t", "action": "/_/nope"}),
            "The action '/guest/nope' does not exist.",
        ),
        (
            json!({"trigger": "/_/t"}),
            "A rule requires a trigger and an action.",
        ),
    ];
    for (body, message) in refused {
        assert_error(&h.put(&format!("{R}/r"), body).await, 400, message);
    }
    // What wsk sends: the name, an empty status and qualified names.
    let r = h
        .put(
            &format!("{R}/r"),
            json!({"name": "r", "status": "", "trigger": "/_/t", "action": "/_/a"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["trigger"], json!({"path": "guest", "name": "t"}));
    assert_eq!(r.body["action"], json!({"path": "guest", "name": "a"}));
    assert_eq!(r.body["status"], json!("active"));
    assert_error(
        &h.put(
            &format!("{R}/r"),
            json!({"trigger": "/_/t", "action": "/_/a"}),
        )
        .await,
        409,
        "resource already exists",
    );

    let t = h.get(&format!("{T}/t")).await;
    assert_eq!(
        t.body["rules"],
        json!({"guest/r": {"action": {"path": "guest", "name": "a"}, "status": "active"}})
    );
    let list = h.get(R).await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert!(list.body[0].get("status").is_none());

    // Disable as wsk does, with null trigger and action; the same state again is a no-op.
    for _ in 0..2 {
        let r = h
            .post(
                &format!("{R}/r"),
                json!({"status": "inactive", "trigger": null, "action": null}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(
        h.get(&format!("{R}/r")).await.body["status"],
        json!("inactive")
    );
    assert_error(
        &h.post(&format!("{R}/r"), json!({"status": "paused"})).await,
        400,
        "Status 'paused' is not valid; use 'active' or 'inactive'.",
    );
    h.post(&format!("{R}/r"), json!({"status": "active"})).await;
    assert_eq!(
        h.get(&format!("{R}/r")).await.body["status"],
        json!("active")
    );

    let r = h.call(Method::DELETE, &format!("{R}/r"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], json!("inactive"));
    assert_eq!(h.get(&format!("{T}/t")).await.body["rules"], json!({}));
    assert_error(
        &h.get(&format!("{R}/r")).await,
        404,
        "The requested resource does not exist.",
    );
}

#[tokio::test]
async fn rule_of_a_deleted_trigger_is_inactive_and_cannot_be_enabled() {
    let h = Harness::new().await;
    setup(&h, json!([])).await;
    h.put(
        &format!("{R}/r"),
        json!({"trigger": "/_/t", "action": "/_/a"}),
    )
    .await;
    h.call(Method::DELETE, &format!("{T}/t"), None).await;
    assert_eq!(
        h.get(&format!("{R}/r")).await.body["status"],
        json!("inactive")
    );
    assert_error(
        &h.post(&format!("{R}/r"), json!({"status": "active"})).await,
        404,
        "Only rules with existing triggers can be activated",
    );
    let r = h.call(Method::DELETE, &format!("{R}/r"), None).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn rule_update_keeps_its_status_and_moves_to_the_new_trigger() {
    let h = Harness::new().await;
    setup(&h, json!([])).await;
    h.put(&format!("{T}/t2"), json!({})).await;
    h.create("b", json!({})).await;
    h.put(
        &format!("{R}/r"),
        json!({"trigger": "/_/t", "action": "/_/a"}),
    )
    .await;
    h.post(&format!("{R}/r"), json!({"status": "inactive"}))
        .await;
    let r = h
        .put(
            &format!("{R}/r?overwrite=true"),
            json!({"trigger": "/_/t2", "action": "/_/b"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], json!("inactive"));
    assert_eq!(r.body["version"], json!("0.0.2"));
    assert_eq!(h.get(&format!("{T}/t")).await.body["rules"], json!({}));
    assert_eq!(
        h.get(&format!("{T}/t2")).await.body["rules"],
        json!({"guest/r": {"action": {"path": "guest", "name": "b"}, "status": "inactive"}})
    );
    // An update of the trigger keeps its rules.
    let r = h
        .put(&format!("{T}/t2?overwrite=true"), json!({"parameters": []}))
        .await;
    assert_eq!(r.body["rules"]["guest/r"]["status"], json!("inactive"));
}

#[tokio::test]
async fn rule_runs_a_package_action_with_package_parameters_under_the_trigger_ones() {
    let h = Harness::new().await;
    setup(&h, params(&[("t", json!(1))])).await;
    let r = h
        .put(
            "/api/v1/namespaces/_/packages/pkg",
            json!({"parameters": params(&[("p", json!(1)), ("t", json!(0))])}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    h.create("pkg/pa", json!({})).await;
    let r = h
        .put(
            &format!("{R}/r"),
            json!({"trigger": "/_/t", "action": "/_/pkg/pa"}),
        )
        .await;
    assert_eq!(r.body["action"], json!({"path": "guest/pkg", "name": "pa"}));
    let record = trigger_activation(&h, &h.post(&format!("{T}/t"), json!({"b": 2})).await).await;
    let msg = h.balancer.last();
    assert_eq!(msg.action.name.path_string(), "guest/pkg/pa");
    let args: Value = serde_json::from_str(msg.content.get()).unwrap();
    assert_eq!(args, json!({"p": 1, "t": 1, "b": 2}));
    assert_eq!(log_entries(&record)[0]["action"], json!("guest/pkg/pa"));
}

#[tokio::test]
async fn rule_runs_a_sequence() {
    let h = Harness::new().await;
    setup(&h, params(&[("x", json!(1))])).await;
    h.create("b", json!({})).await;
    let r = h
        .create(
            "seq",
            json!({"exec": {"kind": "sequence", "components": ["/_/a", "/_/b"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    h.put(
        &format!("{R}/r"),
        json!({"trigger": "/_/t", "action": "/_/seq"}),
    )
    .await;
    let record = trigger_activation(&h, &h.post(&format!("{T}/t"), json!({"y": 2})).await).await;
    let log = &log_entries(&record)[0];
    assert_eq!(log["statusCode"], json!(0), "{log}");
    assert_eq!(log["action"], json!("guest/seq"));
    // The sequence runs its first component with the fire's arguments.
    for _ in 0..500 {
        if !h.balancer.published().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = h.balancer.published()[0].clone();
    assert_eq!(first.action.name.path_string(), "guest/a");
    let args: Value = serde_json::from_str(first.content.get()).unwrap();
    assert_eq!(args, json!({"x": 1, "y": 2}));
}

#[tokio::test]
async fn fires_over_the_per_minute_limit_are_refused() {
    let h = Harness::with_config(ApiConfig {
        fires_per_minute: 2,
        ..ApiConfig::default()
    })
    .await;
    setup(&h, json!([])).await;
    for _ in 0..2 {
        assert_eq!(
            h.post(&format!("{T}/t"), json!({})).await.status,
            StatusCode::NO_CONTENT
        );
    }
    let r = h.post(&format!("{T}/t"), json!({})).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .starts_with("Too many requests in the last minute (count: 3, allowed: 2)"),
        "{}",
        r.body
    );
    // Fires do not use up the invocations of the namespace.
    assert_eq!(
        h.post("/api/v1/namespaces/_/actions/a", json!({}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
}
