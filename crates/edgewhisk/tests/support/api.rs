//! Raw REST helpers over reqwest: only the public OpenWhisk API, so the same calls could be
//! pointed at a real OpenWhisk.

use super::{GUEST_SECRET, GUEST_UUID, ServerGuard};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::time::Duration;

/// The hello action of the Raspberry Pi study that `docs/benchmarks.md` compares against.
pub(crate) const HELLO: &str = "function main(params) {\n  var name = params.name || 'World';\n  return {payload: 'Hello, ' + name + '!'};\n}\n";

/// Name of the healthy action created by [`create_hello`].
pub(crate) const HELLO_NAME: &str = "hello";

/// One HTTP answer: status, headers and the body parsed as JSON (`Value::Null` if it is not).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl Reply {
    async fn read(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("read the response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    /// Panics unless the status is `expected`, showing the body.
    pub(crate) fn expect_status(&self, expected: u16, what: &str) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "{what}: unexpected status, body: {}",
            truncate(&self.text)
        );
        self
    }

    /// Panics unless the body is the OpenWhisk API error shape `{"error": str, "code": str}`.
    pub(crate) fn expect_error_body(&self, what: &str) -> &str {
        let error = self.body["error"].as_str();
        let code = self.body["code"].as_str();
        assert!(
            error.is_some_and(|e| !e.is_empty()) && code.is_some_and(|c| !c.is_empty()),
            "{what}: expected {{\"error\",\"code\"}} body, got: {}",
            truncate(&self.text)
        );
        error.expect("checked above")
    }

    /// The `x-openwhisk-activation-id` header.
    pub(crate) fn activation_header(&self) -> Option<&str> {
        self.headers
            .get("x-openwhisk-activation-id")
            .and_then(|v| v.to_str().ok())
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(2000).collect()
}

/// Where the API is: a server, or a cluster's load balancer (its base URL).
pub(crate) trait Endpoint {
    /// The base URL + `path` (`path` starts with `/`).
    fn url(&self, path: &str) -> String;

    /// The URL of a route under `/api/v1/namespaces/_/` (`rest` without a leading slash).
    fn ns_url(&self, rest: &str) -> String {
        self.url(&format!("/api/v1/namespaces/_/{rest}"))
    }
}

impl Endpoint for ServerGuard {
    fn url(&self, path: &str) -> String {
        ServerGuard::url(self, path)
    }
}

impl Endpoint for str {
    fn url(&self, path: &str) -> String {
        format!("{self}{path}")
    }
}

/// An HTTP client with a generous timeout (blocking invokes wait up to 60 s).
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .expect("build the http client")
}

/// Sends a request as the guest user.
pub(crate) async fn send(req: reqwest::RequestBuilder) -> Reply {
    let resp = req
        .basic_auth(GUEST_UUID, Some(GUEST_SECRET))
        .send()
        .await
        .expect("send the request");
    Reply::read(resp).await
}

/// Sends a request exactly as built (no credentials added).
pub(crate) async fn send_raw(req: reqwest::RequestBuilder) -> Reply {
    Reply::read(req.send().await.expect("send the request")).await
}

/// `PUT actions/{name}?overwrite=true` with `body`.
pub(crate) async fn put_action(s: &(impl Endpoint + ?Sized), name: &str, body: Value) -> Reply {
    send(
        http()
            .put(s.ns_url(&format!("actions/{name}?overwrite=true")))
            .json(&body),
    )
    .await
}

/// Creates a code action of `kind` and panics unless that answers 200.
pub(crate) async fn create_action(
    s: &(impl Endpoint + ?Sized),
    name: &str,
    kind: &str,
    code: &str,
) -> Value {
    create_action_with(s, name, json!({"exec": {"kind": kind, "code": code}})).await
}

/// Creates an action from a full PUT body and panics unless that answers 200.
pub(crate) async fn create_action_with(
    s: &(impl Endpoint + ?Sized),
    name: &str,
    body: Value,
) -> Value {
    let reply = put_action(s, name, body).await;
    reply.expect_status(200, &format!("create action {name}"));
    reply.body
}

/// Creates the healthy hello action ([`HELLO`]) under [`HELLO_NAME`].
pub(crate) async fn create_hello(s: &(impl Endpoint + ?Sized)) {
    create_action(s, HELLO_NAME, "nodejs:20", HELLO).await;
}

/// `POST actions/{name}?{query}` with `args` as the body.
pub(crate) async fn invoke(
    s: &(impl Endpoint + ?Sized),
    name: &str,
    query: &str,
    args: Value,
) -> Reply {
    send(
        http()
            .post(s.ns_url(&format!("actions/{name}?{query}")))
            .json(&args),
    )
    .await
}

/// Blocking invoke returning the full activation.
pub(crate) async fn invoke_blocking(
    s: &(impl Endpoint + ?Sized),
    name: &str,
    args: Value,
) -> Reply {
    invoke(s, name, "blocking=true", args).await
}

/// Asserts that the server still serves: the hello action answers 200 with its greeting.
pub(crate) async fn assert_healthy(s: &(impl Endpoint + ?Sized), after: &str) {
    let reply = invoke(
        s,
        HELLO_NAME,
        "blocking=true&result=true",
        json!({"name": "again"}),
    )
    .await;
    assert_eq!(
        reply.status.as_u16(),
        200,
        "after {after}: healthy hello invocation failed: {}",
        truncate(&reply.text)
    );
    assert_eq!(
        reply.body,
        json!({"payload": "Hello, again!"}),
        "after {after}"
    );
}

/// `GET activations/{id}` until it answers 200 and `ready` accepts the record.
pub(crate) async fn activation_eventually(
    s: &ServerGuard,
    id: &str,
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let reply = send(http().get(s.ns_url(&format!("activations/{id}")))).await;
        if reply.status == StatusCode::OK && ready(&reply.body) {
            return reply.body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "activation {id} not available in time; last answer {}: {}",
            reply.status,
            truncate(&reply.text)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The value of annotation `key` of an entity or activation.
pub(crate) fn annotation<'a>(entity: &'a Value, key: &str) -> Option<&'a Value> {
    entity["annotations"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

/// Runs a Node.js action printing 20 MB of logs under a 1 MB log limit and checks what every
/// backend must give: the result, the truncation notice as the last line and about 1 MB of
/// kept lines. Returns the kept lines.
pub(crate) async fn flood_logs_and_expect_truncation(s: &ServerGuard, name: &str) -> Vec<String> {
    let code = "function main() {\n  const line = 'x'.repeat(1023);\n  for (let i = 0; i < 20 * 1024; i++) console.log(line);\n  return { done: true };\n}\n";
    create_action_with(
        s,
        name,
        json!({"exec": {"kind": "nodejs:20", "code": code}, "limits": {"logs": 1}}),
    )
    .await;
    let reply = invoke_blocking(s, name, json!({})).await;
    reply.expect_status(200, "log flood");
    assert_eq!(reply.body["response"]["result"], json!({"done": true}));
    let id = reply.body["activationId"]
        .as_str()
        .expect("activation id")
        .to_owned();
    let record = activation_eventually(s, &id, |r| {
        r["logs"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await;
    let logs: Vec<String> = record["logs"]
        .as_array()
        .expect("logs array")
        .iter()
        .map(|l| l.as_str().expect("log lines are strings").to_owned())
        .collect();
    let last = logs.last().expect("at least one line");
    assert!(
        last.contains(
            "Logs were truncated because the total bytes size exceeds the limit of 1048576 bytes."
        ),
        "last line: {last}"
    );
    let total: usize = logs.iter().map(String::len).sum();
    assert!(
        total < 2 * 1024 * 1024,
        "logs kept to about the limit, got {total} bytes"
    );
    logs
}
