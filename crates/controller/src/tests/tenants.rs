//! Keys and tenants through the router: sequence components entitled at run time, and which
//! key an activation may carry to code of another namespace.

use super::{Harness, OTHER_AUTH, Resp};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

async fn as_other(h: &Harness, method: Method, uri: &str, body: Option<Value>) -> Resp {
    let body = body.map(|b| b.to_string());
    h.raw(method, uri, body.as_deref(), Some(OTHER_AUTH), &[])
        .await
}

/// `other` with the shared package `pub` (parameter `secret`) holding the action `a`.
async fn other_shares_a_package(h: &Harness) {
    let pkg = json!({"publish": true, "parameters": [{"key": "secret", "value": "s"}]});
    let r = as_other(
        h,
        Method::PUT,
        "/api/v1/namespaces/_/packages/pub",
        Some(pkg),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let action = json!({"exec": {"kind": "nodejs:default", "code": "function main(){}"}});
    let r = as_other(
        h,
        Method::PUT,
        "/api/v1/namespaces/_/actions/pub/a",
        Some(action),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn a_sequence_does_not_run_a_component_unshared_after_its_creation() {
    let h = Harness::new().await;
    other_shares_a_package(&h).await;
    let seq = json!({"exec": {"kind": "sequence", "components": ["/other/pub/a"]}});
    let r = h.put("/api/v1/namespaces/_/actions/seq", seq).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = h
        .post("/api/v1/namespaces/_/actions/seq?blocking=true", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(h.balancer.published.lock().len(), 1);

    let unshared = json!({"publish": false});
    let r = as_other(
        &h,
        Method::PUT,
        "/api/v1/namespaces/_/packages/pub?overwrite=true",
        Some(unshared),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = h
        .post("/api/v1/namespaces/_/actions/seq?blocking=true", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{:?}", r.body);
    assert_eq!(
        r.body["response"]["result"]["error"],
        json!("The supplied authentication is not authorized to access 'other/pub/a'.")
    );
    assert_eq!(
        h.balancer.published.lock().len(),
        1,
        "the unshared component must not run"
    );
}
