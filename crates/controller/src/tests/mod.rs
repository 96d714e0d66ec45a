//! Route tests: the router is driven with `oneshot` over the memory store and a fake load
//! balancer that answers with a canned activation, never answers, drops the answer path, or
//! refuses.

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
use edgewhisk_entity::{
    Activation, ActivationResponse, Identity, Parameters, RuntimeManifest, Status,
};
use edgewhisk_store::MemoryStore;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::oneshot;
use tower::ServiceExt;

/// How the fake balancer answers.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// A finished activation with this status and result.
    Canned(Status, Value),
    /// Keep the answer path open and never answer.
    Never,
    /// Drop the answer path without answering.
    Drop,
    /// Refuse the activation.
    Refuse,
}

#[derive(Debug)]
pub(crate) struct FakeBalancer {
    reply: Mutex<Reply>,
    pub(crate) published: Mutex<Vec<ActivationMessage>>,
    pending: Mutex<Vec<oneshot::Sender<CompletionMessage>>>,
}

impl FakeBalancer {
    pub(crate) fn set(&self, reply: Reply) {
        *self.reply.lock() = reply;
    }

    pub(crate) fn last(&self) -> ActivationMessage {
        self.published
            .lock()
            .last()
            .cloned()
            .expect("a published message")
    }
}

/// The record the fake invoker produces for `msg`.
pub(crate) fn record(msg: &ActivationMessage, status: Status, result: Value) -> Activation {
    let response = match status {
        Status::Success => ActivationResponse::success(result),
        other => ActivationResponse {
            status: other,
            result: Some(result),
            size: None,
        },
    };
    let mut annotations = Parameters::default();
    annotations.set("path", json!(msg.action.name.path_string()));
    annotations.set("kind", json!(msg.action.exec.kind));
    Activation {
        namespace: msg.namespace.clone(),
        name: msg.action.name.name.clone(),
        version: msg.action.version.clone(),
        subject: msg.subject.clone(),
        activation_id: msg.activation_id.clone(),
        cause: None,
        start: msg.received_at,
        end: msg.received_at + 5,
        duration: None,
        response,
        logs: vec!["2024-01-01T00:00:00.000000000Z stdout: hi".into()],
        annotations,
        publish: false,
    }
}

#[async_trait]
impl LoadBalancer for FakeBalancer {
    async fn publish(
        &self,
        msg: ActivationMessage,
    ) -> Result<oneshot::Receiver<CompletionMessage>, LoadBalancerError> {
        let reply = self.reply.lock().clone();
        let (tx, rx) = oneshot::channel();
        match reply {
            Reply::Refuse => return Err(LoadBalancerError::Unavailable),
            Reply::Canned(status, result) => {
                let activation = record(&msg, status, result);
                tx.send(CompletionMessage { activation })
                    .expect("receiver alive");
            }
            Reply::Never => self.pending.lock().push(tx),
            Reply::Drop => drop(tx),
        }
        self.published.lock().push(msg);
        Ok(rx)
    }
}

pub(crate) struct Harness {
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) balancer: Arc<FakeBalancer>,
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

impl Harness {
    pub(crate) async fn new() -> Self {
        Self::with_config(ApiConfig::default()).await
    }

    pub(crate) async fn with_config(config: ApiConfig) -> Self {
        Self::build(config, |s| s).await
    }

    /// A harness whose router sees the memory store through `wrap`.
    pub(crate) async fn build(
        config: ApiConfig,
        wrap: impl FnOnce(Arc<MemoryStore>) -> Arc<dyn edgewhisk_store::EntityStore>,
    ) -> Self {
        let store = Arc::new(MemoryStore::new());
        use edgewhisk_store::EntityStore;
        store.put_identity(guest()).await.unwrap();
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
        let balancer = Arc::new(FakeBalancer {
            reply: Mutex::new(Reply::Canned(Status::Success, json!({"ok": true}))),
            published: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
        });
        let state = AppState::new(
            config,
            wrap(store.clone()),
            store.clone(),
            balancer.clone(),
            RuntimeManifest::default(),
            BuildInfo {
                build: "2024-01-01".into(),
                buildno: "42".into(),
            },
        );
        Self {
            store,
            balancer,
            app: router(state),
        }
    }

    /// Sends a request with the guest's credentials.
    pub(crate) async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> Resp {
        let body = body.map(|b| b.to_string());
        self.raw(method, uri, body.as_deref(), Some(GUEST_AUTH), &[])
            .await
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

/// Asserts an OpenWhisk error body: exactly `error` and `code`, `code` = the response's
/// `X-Request-ID`.
pub(crate) fn assert_error(r: &Resp, status: u16, message: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {}", r.body);
    let tid = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(r.body, json!({"error": message, "code": tid}));
}
