//! Sequences and conductor actions through the router, over the memory store and a scripted
//! fake invoker that behaves like a few well-known actions and stores their records as the
//! invoker does.

use super::{Answer, Harness};
use crate::sequences::SEQUENCE_LIMIT;
use axum::http::{Method, StatusCode};
use edgewhisk_entity::connector::ActivationMessage;
use edgewhisk_entity::identity::GUEST_AUTH;
use edgewhisk_entity::{Activation, ActivationId, Parameters, Status};
use edgewhisk_store::ActivationStore;
use edgewhisk_testkit::FakeInvoker;
use serde_json::{Value, json};

/// Runs actions by name: `inc` adds one to `n`, `fail` answers an application error, `lost`
/// drops the answer path (see [`script`]), `cond` is a conductor that calls `inc` twice,
/// anything else echoes.
fn behave(name: &str, input: &Value) -> (Status, Value) {
    match name {
        "inc" => (
            Status::Success,
            json!({"n": input["n"].as_i64().unwrap_or(0) + 1}),
        ),
        "fail" => (Status::ApplicationError, json!({"error": "boom"})),
        "cond" => match input["step"].as_i64() {
            None => (
                Status::Success,
                json!({"action": "inc", "params": {"n": input["n"]}, "state": {"step": 1}}),
            ),
            Some(1) => (
                Status::Success,
                json!({"action": "/_/inc", "params": {"n": input["n"]}, "state": {"step": 2}}),
            ),
            Some(_) => (
                Status::Success,
                json!({"params": {"n": input["n"], "done": true}}),
            ),
        },
        _ => (Status::Success, input.clone()),
    }
}

/// What the scripted invoker answers `msg` with.
fn script(msg: &ActivationMessage) -> Answer {
    let name = msg.action.name.name.as_str();
    if name == "lost" {
        return Answer::Drop;
    }
    let input: Value = serde_json::from_str(msg.content.get()).unwrap();
    let (status, result) = behave(name, &input);
    Answer::Finished(status, result)
}

/// The harness with the scripted invoker, which stores its records.
struct Seq(Harness);

impl Seq {
    async fn new() -> Self {
        let h = Harness::builder()
            .invoker(|store| FakeInvoker::scripted(script).storing(store))
            .build()
            .await;
        Self(h)
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        auth: &str,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string());
        let r = self
            .0
            .raw(method, uri, body.as_deref(), Some(auth), &[])
            .await;
        (r.status, r.body)
    }

    async fn action(&self, name: &str) {
        let body = json!({"exec": {"kind": "nodejs:default", "code": "function main(){}"}});
        let uri = format!("/api/v1/namespaces/_/actions/{name}");
        let (status, _) = self.call(Method::PUT, &uri, Some(body), GUEST_AUTH).await;
        assert_eq!(status, StatusCode::OK);
    }

    async fn sequence(&self, name: &str, components: &[&str]) -> (StatusCode, Value) {
        let body = json!({"exec": {"kind": "sequence", "components": components}});
        let uri = format!("/api/v1/namespaces/_/actions/{name}?overwrite=true");
        self.call(Method::PUT, &uri, Some(body), GUEST_AUTH).await
    }

    async fn invoke(&self, name: &str, body: Value) -> (StatusCode, Value) {
        let uri = format!("/api/v1/namespaces/_/actions/{name}?blocking=true");
        self.call(Method::POST, &uri, Some(body), GUEST_AUTH).await
    }

    async fn record(&self, id: &Value) -> Activation {
        let id = ActivationId::parse(id.as_str().unwrap()).unwrap();
        ActivationStore::get(self.0.store.as_ref(), "guest", &id)
            .await
            .unwrap()
            .expect("a stored record")
    }

    fn published(&self) -> usize {
        self.0.balancer.published().len()
    }
}

fn assert_bad(r: &(StatusCode, Value), message: &str) {
    assert_eq!(r.0, StatusCode::BAD_REQUEST, "{}", r.1);
    assert_eq!(r.1["error"], json!(message));
}

#[tokio::test]
async fn creating_a_sequence_stores_qualified_components_and_the_actions_parameter() {
    let h = Seq::new().await;
    h.action("a").await;
    h.action("b").await;
    let body = json!({"exec": {"kind": "sequence", "components": ["/_/a", "b"]},
                      "parameters": [{"key": "x", "value": 1}]});
    let (status, v) = h
        .call(
            Method::PUT,
            "/api/v1/namespaces/_/actions/s",
            Some(body),
            GUEST_AUTH,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let components = json!(["/guest/a", "/guest/b"]);
    assert_eq!(
        v["exec"],
        json!({"kind": "sequence", "components": components})
    );
    assert_eq!(
        v["parameters"],
        json!([{"key": "_actions", "value": components}])
    );
    let kinds: Vec<&Value> = v["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|kv| kv["key"] == "exec")
        .map(|kv| &kv["value"])
        .collect();
    assert_eq!(kinds, [&json!("sequence")]);
    let (_, got) = h
        .call(
            Method::GET,
            "/api/v1/namespaces/_/actions/s?code=false",
            None,
            GUEST_AUTH,
        )
        .await;
    assert_eq!(got["exec"], v["exec"]);
    let (_, list) = h
        .call(
            Method::GET,
            "/api/v1/namespaces/_/actions",
            None,
            GUEST_AUTH,
        )
        .await;
    let item = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "s")
        .unwrap();
    assert_eq!(item["exec"], json!({"binary": false}));
}

#[tokio::test]
async fn sequence_creation_refuses_what_openwhisk_refuses() {
    let h = Seq::new().await;
    h.action("a").await;
    assert_bad(
        &h.sequence("s", &[]).await,
        "No component specified for the sequence.",
    );
    assert_bad(
        &h.sequence("s", &["/_/nope"]).await,
        "Sequence component does not exist.",
    );
    assert_bad(
        &h.sequence("s", &["/_/s"]).await,
        "Sequence may not refer to itself.",
    );
    let many = vec!["/_/a"; SEQUENCE_LIMIT + 1];
    assert_bad(
        &h.sequence("s", &many).await,
        "Too many actions in the sequence.",
    );
    // Nested sequences count inlined: 30 + 30 atomic actions are too many.
    assert_eq!(h.sequence("s30", &vec!["/_/a"; 30]).await.0, StatusCode::OK);
    assert_bad(
        &h.sequence("s60", &["/_/s30", "/_/s30"]).await,
        "Too many actions in the sequence.",
    );
    // A cycle through an existing sequence is found too.
    assert_eq!(h.sequence("outer", &["/_/a"]).await.0, StatusCode::OK);
    assert_eq!(h.sequence("inner", &["/_/outer"]).await.0, StatusCode::OK);
    assert_bad(
        &h.sequence("outer", &["/_/inner"]).await,
        "Sequence may not refer to itself.",
    );
    // Another namespace's private action is not the caller's to use.
    let (status, v) = h.sequence("x", &["/other/a"]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
}

#[tokio::test]
async fn a_blocking_sequence_feeds_each_result_to_the_next_component() {
    let h = Seq::new().await;
    h.action("inc").await;
    h.sequence("s", &["inc", "inc", "inc"]).await;
    let (status, v) = h.invoke("s", json!({"n": 1})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["response"]["result"], json!({"n": 4}));
    assert_eq!(v["response"]["status"], json!("success"));
    assert_eq!(v["name"], json!("s"));
    assert_eq!(v["duration"], json!(15));
    assert!(v.get("cause").is_none());
    let logs = v["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 3);
    let ann = serde_json::from_value::<Parameters>(v["annotations"].clone()).unwrap();
    assert_eq!(ann.get("topmost"), Some(&json!(true)));
    assert_eq!(ann.get("kind"), Some(&json!("sequence")));
    assert_eq!(ann.get("path"), Some(&json!("guest/s")));
    assert_eq!(ann.get("limits").unwrap()["memory"], json!(256));
    assert!(ann.get("waitTime").is_some() && ann.get("causedBy").is_none());
    for (i, id) in logs.iter().enumerate() {
        let c = h.record(id).await;
        assert_eq!(
            c.cause.as_ref().map(ActivationId::as_str),
            v["activationId"].as_str()
        );
        assert_eq!(c.response.result, Some(json!({"n": i + 2})));
    }
    let stored = h.record(&v["activationId"]).await;
    assert_eq!(stored.logs.len(), 3);
    let (status, r) = h
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/s?blocking=true&result=true",
            Some(json!({"n": 10})),
            GUEST_AUTH,
        )
        .await;
    assert_eq!((status, r), (StatusCode::OK, json!({"n": 13})));
}

#[tokio::test]
async fn a_component_error_stops_the_sequence_with_its_response() {
    let h = Seq::new().await;
    h.action("inc").await;
    h.action("fail").await;
    h.sequence("s", &["inc", "fail", "inc"]).await;
    let (status, v) = h.invoke("s", json!({"n": 1})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!(v["response"]["status"], json!("application error"));
    assert_eq!(v["response"]["result"], json!({"error": "boom"}));
    assert_eq!(v["logs"].as_array().unwrap().len(), 2);
    assert_eq!(h.published(), 2);
}

#[tokio::test]
async fn a_component_deleted_after_creation_is_an_application_error() {
    let h = Seq::new().await;
    h.action("a").await;
    h.sequence("s", &["a"]).await;
    h.call(
        Method::DELETE,
        "/api/v1/namespaces/_/actions/a",
        None,
        GUEST_AUTH,
    )
    .await;
    let (status, v) = h.invoke("s", json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{v}");
    assert_eq!(
        v["response"]["result"],
        json!({"error": "Sequence component does not exist."})
    );
    assert_eq!(v["logs"], json!([]));
    assert_eq!(h.published(), 0);
}

#[tokio::test]
async fn a_component_without_result_is_a_whisk_error_naming_its_activation() {
    let h = Seq::new().await;
    h.action("lost").await;
    h.action("inc").await;
    h.sequence("s", &["lost", "inc"]).await;
    let (status, v) = h.invoke("s", json!({})).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    let id = h.0.balancer.published()[0].activation_id.clone();
    assert_eq!(v["logs"], json!([id.as_str()]));
    let msg = format!("Timeout reached when retrieving activation {id} for sequence component.");
    assert_eq!(v["response"]["result"], json!({"error": msg}));
    assert_eq!(v["response"]["status"], json!("whisk internal error"));
}

#[tokio::test]
async fn nested_sequences_run_recursively_with_cause_and_caused_by() {
    let h = Seq::new().await;
    h.action("inc").await;
    h.sequence("inner", &["inc", "inc"]).await;
    h.sequence("outer", &["inc", "inner"]).await;
    let (status, v) = h.invoke("outer", json!({"n": 0})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["response"]["result"], json!({"n": 3}));
    let logs = v["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2);
    let inner = h.record(&logs[1]).await;
    assert_eq!(inner.name, "inner");
    assert_eq!(
        inner.cause.as_ref().map(ActivationId::as_str),
        v["activationId"].as_str()
    );
    assert_eq!(inner.annotations.get("causedBy"), Some(&json!("sequence")));
    assert_eq!(inner.annotations.get("topmost"), Some(&json!(false)));
    assert_eq!(inner.logs.len(), 2);
    assert_eq!(inner.duration, Some(10));
    assert_eq!(v["duration"], json!(15));
    let leaf = h.record(&json!(inner.logs[0])).await;
    assert_eq!(leaf.cause, Some(inner.activation_id));
}

#[tokio::test]
async fn a_non_blocking_sequence_answers_202_and_stores_its_record() {
    let h = Seq::new().await;
    h.action("inc").await;
    h.sequence("s", &["inc"]).await;
    let (status, v) = h
        .call(
            Method::POST,
            "/api/v1/namespaces/_/actions/s",
            Some(json!({"n": 1})),
            GUEST_AUTH,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = ActivationId::parse(v["activationId"].as_str().unwrap()).unwrap();
    let mut found = None;
    for _ in 0..200 {
        found = ActivationStore::get(h.0.store.as_ref(), "guest", &id)
            .await
            .unwrap();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let record = found.expect("the sequence record is stored");
    assert_eq!(record.response.result, Some(json!({"n": 2})));
}

#[tokio::test]
async fn a_conductor_action_runs_a_composition_until_no_action_is_named() {
    let h = Seq::new().await;
    h.action("inc").await;
    let body = json!({"exec": {"kind": "nodejs:default", "code": "x"},
                      "annotations": [{"key": "conductor", "value": true}]});
    h.call(
        Method::PUT,
        "/api/v1/namespaces/_/actions/cond",
        Some(body),
        GUEST_AUTH,
    )
    .await;
    let (status, v) = h.invoke("cond", json!({"n": 1})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["response"]["result"], json!({"n": 3, "done": true}));
    let logs = v["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 5);
    let names: Vec<String> = {
        let mut out = vec![];
        for id in logs {
            out.push(h.record(id).await.name);
        }
        out
    };
    assert_eq!(names, ["cond", "inc", "cond", "inc", "cond"]);
    let ann = serde_json::from_value::<Parameters>(v["annotations"].clone()).unwrap();
    assert_eq!(ann.get("conductor"), Some(&json!(true)));
    assert_eq!(ann.get("kind"), Some(&json!("sequence")));
    assert_eq!(ann.get("topmost"), Some(&json!(true)));
    assert_eq!(v["duration"], json!(25));
    // The conductor saw its state merged into the component's result.
    let second = &h.0.balancer.published()[2];
    let input: Value = serde_json::from_str(second.content.get()).unwrap();
    assert_eq!(input, json!({"n": 2, "step": 1}));
}
