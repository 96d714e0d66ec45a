//! Web actions through the router: resolution, arguments, authentication, CORS and the
//! rendering of results, over the memory store and the fake invoker.

use super::{Answer, Harness, OTHER_AUTH, basic};
use crate::config::ApiConfig;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use edgewhisk_entity::Status;
use edgewhisk_entity::identity::GUEST_AUTH;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct WebResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl WebResponse {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or(""))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// Asserts an OpenWhisk error body with the response's transaction id.
    fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(self.status.as_u16(), status, "{:?}", self.json());
        let code = self.header("x-request-id");
        assert_eq!(self.json(), json!({"error": message, "code": code}));
    }
}

/// A request with optional body (and its content type), extra headers and credentials.
struct Call<'a> {
    method: Method,
    uri: &'a str,
    content_type: Option<&'a str>,
    body: &'a [u8],
    headers: &'a [(&'a str, &'a str)],
    auth: Option<&'a str>,
}

impl<'a> Call<'a> {
    fn get(uri: &'a str) -> Self {
        Self {
            method: Method::GET,
            uri,
            content_type: None,
            body: b"",
            headers: &[],
            auth: None,
        }
    }

    fn post(uri: &'a str, content_type: &'a str, body: &'a [u8]) -> Self {
        Self {
            method: Method::POST,
            content_type: Some(content_type),
            body,
            ..Self::get(uri)
        }
    }

    async fn send(self, h: &Harness) -> WebResponse {
        let mut req = Request::builder().method(self.method).uri(self.uri);
        if let Some(ct) = self.content_type {
            req = req.header("content-type", ct);
        }
        if !self.body.is_empty() {
            req = req.header("content-length", self.body.len());
        }
        if let Some(a) = self.auth {
            req = req.header("authorization", basic(a));
        }
        for (k, v) in self.headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Body::from(self.body.to_vec())).unwrap();
        let res = h.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        WebResponse {
            status,
            headers,
            body,
        }
    }
}

/// Creates `name` (may be `pkg/name`) with `annotations` plus `web-export: true` unless
/// `annotations` sets it, and `params`.
async fn web_action(h: &Harness, name: &str, annotations: Value, params: Value) {
    let mut list = vec![json!({"key": "web-export", "value": true})];
    if let Value::Object(m) = annotations {
        list.retain(|kv| !m.contains_key(kv["key"].as_str().unwrap()));
        list.extend(m.into_iter().map(|(k, v)| json!({"key": k, "value": v})));
    }
    let params: Vec<Value> = match params {
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
        _ => Vec::new(),
    };
    let r = h
        .create(name, json!({"annotations": list, "parameters": params}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

fn reply(h: &Harness, status: Status, result: Value) {
    h.balancer.set(Answer::Finished(status, result));
}

/// The arguments of the last activation.
fn last_args(h: &Harness) -> Value {
    serde_json::from_str(h.balancer.last().content.get()).unwrap()
}

#[tokio::test]
async fn every_extension_answers_with_its_content_type() {
    let h = Harness::new().await;
    web_action(&h, "page", json!({}), json!({})).await;
    let cases = [
        (".json", json!({"a": 1}), "application/json", r#"{"a":1}"#),
        (
            ".html",
            json!({"body": "<p>hi</p>"}),
            "text/html; charset=UTF-8",
            "<p>hi</p>",
        ),
        (".svg", json!({"body": "<svg/>"}), "image/svg+xml", "<svg/>"),
        (
            ".text",
            json!({"text": "plain"}),
            "text/plain; charset=UTF-8",
            "plain",
        ),
        (
            ".http",
            json!({"body": "<b>x</b>"}),
            "text/html; charset=UTF-8",
            "<b>x</b>",
        ),
        (
            "",
            json!({"body": {"k": 2}}),
            "application/json",
            r#"{"k":2}"#,
        ),
    ];
    for (ext, result, ct, body) in cases {
        reply(&h, Status::Success, result);
        let a = Call::get(&format!("/api/v1/web/guest/default/page{ext}"))
            .send(&h)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{ext}");
        assert_eq!(a.header("content-type"), ct, "{ext}");
        assert_eq!(String::from_utf8(a.body.clone()).unwrap(), body, "{ext}");
        let id = h.balancer.last().activation_id;
        assert_eq!(a.header("x-openwhisk-activation-id"), id.as_str());
    }
}

#[tokio::test]
async fn http_results_choose_status_headers_and_base64_decoded_binary_bodies() {
    let h = Harness::new().await;
    web_action(&h, "img", json!({}), json!({})).await;
    reply(
        &h,
        Status::Success,
        json!({
            "statusCode": 201,
            "headers": {"Content-Type": "image/png", "X-Many": ["a", "b"], "X-N": 3},
            "body": "AAECAw=="
        }),
    );
    let a = Call::get("/api/v1/web/guest/default/img.http")
        .send(&h)
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.header("content-type"), "image/png");
    assert_eq!(a.body, [0, 1, 2, 3]);
    let many: Vec<_> = a.headers.get_all("x-many").iter().collect();
    assert_eq!(many, ["a", "b"]);
    assert_eq!(a.header("x-n"), "3");

    reply(&h, Status::Success, json!({"statusCode": 404}));
    let a = Call::get("/api/v1/web/guest/default/img.http")
        .send(&h)
        .await;
    assert_eq!((a.status, a.body.len()), (StatusCode::NOT_FOUND, 0));

    reply(&h, Status::Success, json!(["not", "an", "object"]));
    Call::get("/api/v1/web/guest/default/img.http")
        .send(&h)
        .await
        .assert_error(400, "Response is not valid 'message/http'.");
    reply(&h, Status::Success, json!("text"));
    Call::get("/api/v1/web/guest/default/img.json")
        .send(&h)
        .await
        .assert_error(400, "Response is not valid 'application/json'.");
}

#[tokio::test]
async fn query_and_body_merge_over_parameters_with_the_request_context() {
    let h = Harness::new().await;
    web_action(&h, "echo", json!({}), json!({"p": "default", "q": 0})).await;
    let a = Call {
        headers: &[("X-Trace", "t1")],
        ..Call::post(
            "/api/v1/web/guest/default/echo.json/some/path?q=1&r=two",
            "application/json",
            br#"{"r": 3, "s": {"deep": true}}"#,
        )
    }
    .send(&h)
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let args = last_args(&h);
    assert_eq!(args["p"], json!("default"));
    assert_eq!(args["q"], json!("1"));
    assert_eq!(args["r"], json!(3));
    assert_eq!(args["s"], json!({"deep": true}));
    assert_eq!(args["__ow_method"], json!("post"));
    assert_eq!(args["__ow_path"], json!("/some/path"));
    assert_eq!(args["__ow_headers"]["x-trace"], json!("t1"));
    assert_eq!(
        args["__ow_headers"]["content-type"],
        json!("application/json")
    );
    assert!(args.get("__ow_user").is_none());

    Call {
        auth: Some(OTHER_AUTH),
        ..Call::get("/api/v1/web/guest/default/echo.json")
    }
    .send(&h)
    .await;
    let args = last_args(&h);
    assert_eq!(args["__ow_user"], json!("other"));
    assert_eq!(args["__ow_path"], json!(""));
    let msg = h.balancer.last();
    assert_eq!(
        (msg.namespace.as_str(), msg.subject.as_str()),
        ("guest", "guest")
    );

    Call::post(
        "/api/v1/web/guest/default/echo.json",
        "text/plain",
        b"just text",
    )
    .send(&h)
    .await;
    assert_eq!(last_args(&h)["__ow_body"], json!("just text"));
    Call::post(
        "/api/v1/web/guest/default/echo.json",
        "application/x-www-form-urlencoded",
        b"f=a+b&g=%21",
    )
    .send(&h)
    .await;
    let args = last_args(&h);
    assert_eq!(
        (args["f"].clone(), args["g"].clone()),
        (json!("a b"), json!("!"))
    );
}

#[tokio::test]
async fn raw_http_actions_get_the_query_and_body_unparsed() {
    let h = Harness::new().await;
    web_action(&h, "raw", json!({"raw-http": true}), json!({})).await;
    Call::post(
        "/api/v1/web/guest/default/raw.json?a=1&b=2",
        "application/json",
        br#"{"x":1}"#,
    )
    .send(&h)
    .await;
    let args = last_args(&h);
    assert_eq!(args["__ow_query"], json!("a=1&b=2"));
    assert_eq!(args["__ow_body"], json!("eyJ4IjoxfQ=="));
    assert!(args.get("a").is_none() && args.get("x").is_none());
}

#[tokio::test]
async fn final_and_reserved_parameters_cannot_be_redefined() {
    let h = Harness::new().await;
    web_action(&h, "fixed", json!({"final": true}), json!({"k": "set"})).await;
    let before = h.balancer.published().len();
    let refused = [
        Call::get("/api/v1/web/guest/default/fixed.json?k=other"),
        Call::post(
            "/api/v1/web/guest/default/fixed.json",
            "application/json",
            br#"{"k": 1}"#,
        ),
        Call::get("/api/v1/web/guest/default/fixed.json?__ow_user=me"),
    ];
    for call in refused {
        call.send(&h).await.assert_error(
            400,
            "Request defines parameters that are not allowed (e.g., reserved properties).",
        );
    }
    assert_eq!(h.balancer.published().len(), before);
    let a = Call::get("/api/v1/web/guest/default/fixed.json?other=1")
        .send(&h)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(last_args(&h)["k"], json!("set"));
}

#[tokio::test]
async fn require_whisk_auth_refuses_a_missing_or_wrong_secret_and_accepts_the_right_one() {
    let h = Harness::new().await;
    web_action(
        &h,
        "sec",
        json!({"require-whisk-auth": "s3cret"}),
        json!({}),
    )
    .await;
    web_action(&h, "num", json!({"require-whisk-auth": 42}), json!({})).await;
    web_action(&h, "user", json!({"require-whisk-auth": true}), json!({})).await;
    let uri = "/api/v1/web/guest/default/sec.json";
    let unauthorized = "Authentication is possible but has failed or not yet been provided.";
    Call::get(uri)
        .send(&h)
        .await
        .assert_error(401, unauthorized);
    Call {
        headers: &[("X-Require-Whisk-Auth", "wrong")],
        ..Call::get(uri)
    }
    .send(&h)
    .await
    .assert_error(401, unauthorized);
    let ok = Call {
        headers: &[("X-Require-Whisk-Auth", "s3cret")],
        ..Call::get(uri)
    }
    .send(&h)
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let ok = Call {
        headers: &[("X-Require-Whisk-Auth", "42")],
        ..Call::get("/api/v1/web/guest/default/num.json")
    }
    .send(&h)
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    Call::get("/api/v1/web/guest/default/user.json")
        .send(&h)
        .await
        .assert_error(401, unauthorized);
    let ok = Call {
        auth: Some(GUEST_AUTH),
        ..Call::get("/api/v1/web/guest/default/user.json")
    }
    .send(&h)
    .await;
    assert_eq!(ok.status, StatusCode::OK);
}

#[tokio::test]
async fn options_is_answered_with_cors_headers_without_running_the_action() {
    let h = Harness::new().await;
    web_action(&h, "cors", json!({}), json!({})).await;
    web_action(&h, "own", json!({"web-custom-options": true}), json!({})).await;
    let a = Call {
        method: Method::OPTIONS,
        headers: &[("Access-Control-Request-Headers", "X-Foo")],
        ..Call::get("/api/v1/web/guest/default/cors.json")
    }
    .send(&h)
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("access-control-allow-origin"), "*");
    assert_eq!(
        a.header("access-control-allow-methods"),
        "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
    );
    assert_eq!(a.header("access-control-allow-headers"), "X-Foo");
    assert!(h.balancer.published().is_empty());

    let a = Call::get("/api/v1/web/guest/default/cors.json")
        .send(&h)
        .await;
    assert_eq!(
        a.header("access-control-allow-headers"),
        "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"
    );

    reply(
        &h,
        Status::Success,
        json!({"headers": {"Access-Control-Allow-Origin": "example.org"}, "statusCode": 200}),
    );
    let a = Call {
        method: Method::OPTIONS,
        ..Call::get("/api/v1/web/guest/default/own.http")
    }
    .send(&h)
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("access-control-allow-origin"), "example.org");
    assert_eq!(last_args(&h)["__ow_method"], json!("options"));
}

#[tokio::test]
async fn missing_namespaces_actions_and_non_exported_actions_are_not_found() {
    let h = Harness::new().await;
    web_action(&h, "hidden", json!({"web-export": false}), json!({})).await;
    web_action(&h, "shown", json!({}), json!({})).await;
    let missing = "The requested resource does not exist.";
    for uri in [
        "/api/v1/web/guest/default/hidden.json",
        "/api/v1/web/guest/default/nothing.json",
        "/api/v1/web/nobody/default/shown.json",
        "/api/v1/web/guest/nopkg/shown.json",
    ] {
        Call::get(uri).send(&h).await.assert_error(404, missing);
    }
    assert!(h.balancer.published().is_empty());
}

#[tokio::test]
async fn package_actions_run_as_the_owner_with_package_parameters() {
    let h = Harness::new().await;
    let r = h
        .put(
            "/api/v1/namespaces/_/packages/site",
            json!({"parameters": [{"key": "from", "value": "package"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    web_action(&h, "site/home", json!({}), json!({})).await;
    let a = Call {
        auth: Some(OTHER_AUTH),
        ..Call::get("/api/v1/web/guest/site/home.json")
    }
    .send(&h)
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let msg = h.balancer.last();
    assert_eq!(msg.namespace, "guest");
    assert_eq!(msg.action.name.path_string(), "guest/site/home");
    assert_eq!(last_args(&h)["from"], json!("package"));
}

#[tokio::test]
async fn application_errors_render_their_error_value_and_developer_errors_are_400() {
    let h = Harness::new().await;
    web_action(&h, "err", json!({}), json!({})).await;
    reply(
        &h,
        Status::ApplicationError,
        json!({"error": {"statusCode": 418, "body": "teapot"}}),
    );
    let a = Call::get("/api/v1/web/guest/default/err.http")
        .send(&h)
        .await;
    assert_eq!(a.status.as_u16(), 418);
    assert_eq!(a.body, b"teapot");
    reply(
        &h,
        Status::ApplicationError,
        json!({"error": {"why": "no"}}),
    );
    let a = Call::get("/api/v1/web/guest/default/err.json")
        .send(&h)
        .await;
    assert_eq!((a.status, a.json()), (StatusCode::OK, json!({"why": "no"})));
    for status in [Status::DeveloperError, Status::WhiskError] {
        reply(&h, status, json!({"error": "boom"}));
        Call::get("/api/v1/web/guest/default/err.json")
            .send(&h)
            .await
            .assert_error(400, "There was an error processing your request.");
    }
}

#[tokio::test]
async fn bodies_over_the_payload_limit_are_refused_with_413() {
    let config = ApiConfig {
        max_payload_bytes: 16,
        ..ApiConfig::default()
    };
    let h = Harness::with_config(config).await;
    web_action(&h, "small", json!({}), json!({})).await;
    Call::post(
        "/api/v1/web/guest/default/small.json",
        "text/plain",
        &[b'x'; 17],
    )
    .send(&h)
    .await
    .assert_error(413, "Request larger than allowed: 17 > 16 bytes.");
    assert!(h.balancer.published().is_empty());
}

#[tokio::test]
async fn a_result_not_ready_within_the_wait_is_a_202_with_the_activation_id() {
    let config = ApiConfig {
        blocking_wait_ms: 50,
        ..ApiConfig::default()
    };
    let h = Harness::with_config(config).await;
    web_action(&h, "slow", json!({}), json!({})).await;
    h.balancer.set(Answer::Never);
    let a = Call::get("/api/v1/web/guest/default/slow.json")
        .send(&h)
        .await;
    a.assert_error(202, "Response not yet ready.");
    let id = h.balancer.last().activation_id;
    assert_eq!(a.header("x-openwhisk-activation-id"), id.as_str());
}

#[tokio::test]
async fn exported_sequences_answer_with_their_last_result() {
    let h = Harness::new().await;
    web_action(&h, "step", json!({"web-export": false}), json!({})).await;
    let r = h
        .put(
            "/api/v1/namespaces/_/actions/chain",
            json!({
                "exec": {"kind": "sequence", "components": ["/guest/step", "/guest/step"]},
                "annotations": [{"key": "web-export", "value": true}]
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    reply(&h, Status::Success, json!({"done": true}));
    let a = Call::get("/api/v1/web/guest/default/chain.json?n=1")
        .send(&h)
        .await;
    assert_eq!(
        (a.status, a.json()),
        (StatusCode::OK, json!({"done": true}))
    );
    let published = h.balancer.published();
    assert_eq!(published.len(), 2);
    let first: Value = serde_json::from_str(published[0].content.get()).unwrap();
    assert_eq!(first["n"], json!("1"));
}

#[tokio::test]
async fn methods_outside_the_web_set_are_not_allowed() {
    let h = Harness::new().await;
    web_action(&h, "m", json!({}), json!({})).await;
    let a = Call {
        method: Method::TRACE,
        ..Call::get("/api/v1/web/guest/default/m.json")
    }
    .send(&h)
    .await;
    a.assert_error(
        405,
        "HTTP method not allowed, supported methods: OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH",
    );
}

#[tokio::test]
async fn web_calls_count_against_the_owners_throttle() {
    let config = ApiConfig {
        invocations_per_minute: 1,
        ..ApiConfig::default()
    };
    let h = Harness::with_config(config).await;
    web_action(&h, "busy", json!({}), json!({})).await;
    let first = Call::get("/api/v1/web/guest/default/busy.json")
        .send(&h)
        .await;
    assert_eq!(first.status, StatusCode::OK);
    Call {
        auth: Some(OTHER_AUTH),
        ..Call::get("/api/v1/web/guest/default/busy.json")
    }
    .send(&h)
    .await
    .assert_error(
        429,
        "Too many requests in the last minute (count: 2, allowed: 1).",
    );
    // The caller's own namespace is not the one charged.
    let own = h
        .raw(
            Method::POST,
            "/api/v1/namespaces/_/actions/x?blocking=true",
            None,
            Some(OTHER_AUTH),
            &[],
        )
        .await;
    assert_ne!(own.status, StatusCode::TOO_MANY_REQUESTS);
}
