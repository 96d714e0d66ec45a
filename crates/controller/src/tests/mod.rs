//! Route tests: the router is driven with `oneshot` over the memory store and, as its load
//! balancer, the testkit's `FakeInvoker`, which answers with a finished activation, echoes,
//! answers later, never answers, drops the answer path, or refuses. [`Harness::builder`] is the
//! one place a test server is put together.

mod actions;
mod activations;
mod admin;
mod feeds;
mod invoke;
mod packages;
mod request_limits;
mod routes;
mod sequences;
mod tenants;
mod triggers;
mod web;

use crate::config::ApiConfig;
use crate::loadbalancer::{LoadBalancer, LoadBalancerError};
use crate::{AppState, BuildInfo, router};
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use base64::Engine;
use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage};
use edgewhisk_entity::identity::{GUEST_AUTH, guest};
use edgewhisk_entity::{Identity, RuntimeManifest, Status};
use edgewhisk_store::{EntityStore, MemoryStore};
pub(crate) use edgewhisk_testkit::Answer;
use edgewhisk_testkit::FakeInvoker;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::oneshot;
use tower::ServiceExt;

/// The controller's load-balancer seam over the testkit's fake invoker: it publishes to the
/// fake, and a refusal is the balancer being unavailable.
#[async_trait]
impl LoadBalancer for FakeInvoker {
    async fn publish(
        &self,
        msg: ActivationMessage,
    ) -> Result<oneshot::Receiver<CompletionMessage>, LoadBalancerError> {
        self.take(msg)
            .await
            .map_err(|_| LoadBalancerError::Unavailable)
    }

    /// One invoker that takes work and one that is gone, for the `/invokers` routes.
    fn invoker_health(&self) -> Vec<(String, &'static str)> {
        vec![
            ("invoker0/0".to_owned(), "up"),
            ("invoker1/1".to_owned(), "down"),
        ]
    }
}

/// The router over the memory store (with the guest and `other` identities) and a fake
/// invoker, plus the state it serves from.
pub(crate) struct Harness {
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) balancer: Arc<FakeInvoker>,
    pub(crate) state: AppState,
    pub(crate) app: Router,
}

/// A response: status, headers and the body as JSON (or a JSON string when it is not JSON).
pub(crate) struct Resp {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

pub(crate) const OTHER_AUTH: &str = "11111111-2222-4333-8444-555555555555:abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234";

pub(crate) fn basic(auth: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(auth)
    )
}

type WrapEntities = Box<dyn FnOnce(Arc<MemoryStore>) -> Arc<dyn EntityStore>>;
type MakeInvoker = Box<dyn FnOnce(Arc<MemoryStore>) -> FakeInvoker>;

/// Options for a [`Harness`]: the API config, how the router sees the entity store, the fake
/// invoker, whether `other` exists and whether the system catalog is provisioned.
pub(crate) struct HarnessBuilder {
    config: ApiConfig,
    entities: WrapEntities,
    invoker: MakeInvoker,
    other: bool,
    catalog: bool,
}

impl HarnessBuilder {
    /// The API config (the default otherwise).
    pub(crate) fn config(mut self, config: ApiConfig) -> Self {
        self.config = config;
        self
    }

    /// The router sees the memory store through `wrap`.
    pub(crate) fn entities(
        mut self,
        wrap: impl FnOnce(Arc<MemoryStore>) -> Arc<dyn EntityStore> + 'static,
    ) -> Self {
        self.entities = Box::new(wrap);
        self
    }

    /// The fake invoker, made over the memory store (the default answers `{"ok": true}`).
    pub(crate) fn invoker(
        mut self,
        make: impl FnOnce(Arc<MemoryStore>) -> FakeInvoker + 'static,
    ) -> Self {
        self.invoker = Box::new(make);
        self
    }

    /// Only the guest exists: `OTHER_AUTH` is an unknown key.
    pub(crate) fn guest_only(mut self) -> Self {
        self.other = false;
        self
    }

    /// Provisions the system catalog (the alarm and MQTT feed packages).
    pub(crate) fn catalog(mut self) -> Self {
        self.catalog = true;
        self
    }

    pub(crate) async fn build(self) -> Harness {
        let store = Arc::new(MemoryStore::new());
        store.put_identity(guest()).await.unwrap();
        if self.other {
            let (uuid, key) = OTHER_AUTH.split_once(':').unwrap();
            store
                .put_identity(Identity {
                    subject: "other".into(),
                    namespace: "other".into(),
                    uuid: uuid.into(),
                    key: key.into(),
                })
                .await
                .unwrap();
        }
        if self.catalog {
            crate::catalog::provision_system(&*store).await.unwrap();
        }
        let balancer = Arc::new((self.invoker)(store.clone()));
        let state = app_state(
            self.config,
            (self.entities)(store.clone()),
            &store,
            &balancer,
        );
        Harness {
            app: router(state.clone()),
            store,
            balancer,
            state,
        }
    }
}

fn app_state(
    config: ApiConfig,
    entities: Arc<dyn EntityStore>,
    store: &Arc<MemoryStore>,
    balancer: &Arc<FakeInvoker>,
) -> AppState {
    AppState::new(
        config,
        entities,
        store.clone(),
        balancer.clone(),
        RuntimeManifest::default(),
        BuildInfo {
            build: "2024-01-01".into(),
            buildno: "42".into(),
        },
    )
}

impl Harness {
    pub(crate) fn builder() -> HarnessBuilder {
        HarnessBuilder {
            config: ApiConfig::default(),
            entities: Box::new(|s| s),
            invoker: Box::new(|_| FakeInvoker::default()),
            other: true,
            catalog: false,
        }
    }

    pub(crate) async fn new() -> Self {
        Self::builder().build().await
    }

    pub(crate) async fn with_config(config: ApiConfig) -> Self {
        Self::builder().config(config).build().await
    }

    /// A fresh server state over this harness's store and balancer: what a restart sees.
    pub(crate) fn restarted(&self) -> AppState {
        app_state(
            ApiConfig::default(),
            self.store.clone(),
            &self.store,
            &self.balancer,
        )
    }

    /// Sends a request with the guest's credentials.
    pub(crate) async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> Resp {
        self.call_as(GUEST_AUTH, method, uri, body).await
    }

    /// Sends a request with the credentials `auth` (`uuid:key`).
    pub(crate) async fn call_as(
        &self,
        auth: &str,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Resp {
        let body = body.map(|b| b.to_string());
        self.raw(method, uri, body.as_deref(), Some(auth), &[])
            .await
    }

    /// A GET with the credentials `auth`.
    pub(crate) async fn get_as(&self, auth: &str, uri: &str) -> Resp {
        self.call_as(auth, Method::GET, uri, None).await
    }

    pub(crate) async fn get(&self, uri: &str) -> Resp {
        self.call(Method::GET, uri, None).await
    }

    pub(crate) async fn put(&self, uri: &str, body: Value) -> Resp {
        self.call(Method::PUT, uri, Some(body)).await
    }

    pub(crate) async fn post(&self, uri: &str, body: Value) -> Resp {
        self.call(Method::POST, uri, Some(body)).await
    }

    /// Creates a nodejs action `name` (may be `pkg/name`) with `extra` merged into the body.
    pub(crate) async fn create(&self, name: &str, extra: Value) -> Resp {
        let mut body = json!({"exec": {"kind": "nodejs:default", "code": "function main(){}"}});
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        self.put(&format!("/api/v1/namespaces/_/actions/{name}"), body)
            .await
    }

    /// Sends `body` as it is, with the guest's credentials and a JSON content type.
    pub(crate) async fn text(&self, method: Method, uri: &str, body: &str) -> Resp {
        self.raw(method, uri, Some(body), Some(GUEST_AUTH), &[])
            .await
    }

    /// Sends any request.
    pub(crate) async fn raw(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
        auth: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header("authorization", basic(a));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .header("content-length", b.len());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .unwrap();
        self.send(req).await
    }

    /// Sends a built request through the router.
    pub(crate) async fn send(&self, req: Request<Body>) -> Resp {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Resp {
            status,
            headers,
            body,
        }
    }
}

/// The `name` of each entry of a JSON list, in order.
pub(crate) fn names_of(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|e| e["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// Asserts an OpenWhisk error body: exactly `error` and `code`, `code` = the response's
/// `X-Request-ID`.
pub(crate) fn assert_error(r: &Resp, status: u16, message: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.body);
    let tid = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(r.body, json!({"error": message, "code": tid}));
}

/// With one invocation allowed in flight: while the invoker holds the first invocation of
/// `uri`, a second is 429; once the first is answered, its slot frees and a blocking
/// invocation is 200.
pub(crate) async fn assert_one_in_flight_until_answered(h: &Harness, uri: &str) {
    h.balancer.set(Answer::Never);
    assert_eq!(h.post(uri, json!({})).await.status, StatusCode::ACCEPTED);
    let r = h.post(uri, json!({})).await;
    assert_error(
        &r,
        429,
        "Too many concurrent requests in flight (count: 1, allowed: 1).",
    );
    // Answer the pending activation; its slot is freed by the waiting task.
    h.balancer.answer_pending(Status::Success, json!({}));
    h.balancer
        .set(Answer::Finished(Status::Success, json!({"ok": true})));
    let mut status = StatusCode::TOO_MANY_REQUESTS;
    for _ in 0..100 {
        status = h
            .post(&format!("{uri}?blocking=true"), json!({}))
            .await
            .status;
        if status == StatusCode::OK {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(status, StatusCode::OK);
}
