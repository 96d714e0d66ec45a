//! Keys and tenants through the router: sequence components entitled at run time, and which
//! key an activation may carry to code of another namespace.

use super::{Harness, OTHER_AUTH};
use axum::http::{Method, StatusCode};
use serde_json::json;

/// `other` with the shared package `pub` (parameter `secret`) holding the action `a`.
async fn other_shares_a_package(h: &Harness) {
    let pkg = json!({"publish": true, "parameters": [{"key": "secret", "value": "s"}]});
    let r = h
        .call_as(
            OTHER_AUTH,
            Method::PUT,
            "/api/v1/namespaces/_/packages/pub",
            Some(pkg),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let action = json!({"exec": {"kind": "nodejs:default", "code": "function main(){}"}});
    let r = h
        .call_as(
            OTHER_AUTH,
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
    assert_eq!(h.balancer.published().len(), 1);

    let unshared = json!({"publish": false});
    let r = h
        .call_as(
            OTHER_AUTH,
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
        h.balancer.published().len(),
        1,
        "the unshared component must not run"
    );
}

/// Writes a feed document for trigger `guest/t` as older versions stored it: holding the
/// guest's key.
async fn put_legacy_feed_doc(h: &Harness) {
    use edgewhisk_store::{Collection, EntityDoc, EntityStore, PutMode};
    let now = edgewhisk_entity::time::now_millis();
    let legacy = json!({"feed": "alarms/interval", "namespace": "guest", "trigger": "t",
        "authKey": edgewhisk_entity::identity::GUEST_AUTH, "params": {"seconds": 1},
        "paused": false, "created": now, "fired": 0});
    let doc = EntityDoc {
        collection: Collection::Triggers,
        path: crate::feeds::FEEDS_PATH.into(),
        name: "guest:t".into(),
        updated: now,
        doc: legacy,
    };
    h.store.put(doc, PutMode::Create).await.unwrap();
}

/// The stored feed document of trigger `guest/t` names the guest's key by its uuid and does
/// not hold its secret.
async fn assert_feed_doc_names_the_key_without_its_secret(h: &Harness, why: &str) {
    use edgewhisk_store::EntityStore;
    let doc = h
        .store
        .get(crate::feeds::FEEDS_PATH, "guest:t")
        .await
        .unwrap()
        .expect("a feed document");
    let text = doc.doc.to_string();
    let (uuid, secret) = edgewhisk_entity::identity::GUEST_AUTH
        .split_once(':')
        .unwrap();
    assert!(!text.contains(secret), "{why}: {text}");
    assert!(text.contains(uuid), "{text}");
}

#[tokio::test]
async fn a_feed_stores_no_usable_key_and_its_fires_pass_none() {
    use super::feeds::{invoke_feed, lifecycle, setup, trigger_with_rule, wait_for_fires};
    let (h, state) = setup().await;
    trigger_with_rule(&h).await;
    let service = crate::feeds::FeedService::start(state);
    let r = invoke_feed(&h, "interval", lifecycle("CREATE", json!({"seconds": 1}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_feed_doc_names_the_key_without_its_secret(&h, "the feed holds the key").await;
    assert!(wait_for_fires(&h, 1, std::time::Duration::from_secs(5)).await >= 1);
    assert_eq!(h.balancer.last().api_key, None);
    service.shutdown().await;
}

#[tokio::test]
async fn a_feed_document_holding_a_key_is_migrated_and_keeps_firing() {
    use super::feeds::{setup, trigger_with_rule, wait_for_fires};
    let (h, state) = setup().await;
    trigger_with_rule(&h).await;
    put_legacy_feed_doc(&h).await;
    let service = crate::feeds::FeedService::start(state);
    assert!(wait_for_fires(&h, 1, std::time::Duration::from_secs(5)).await >= 1);
    assert_feed_doc_names_the_key_without_its_secret(&h, "the key was kept").await;
    service.shutdown().await;
}

#[tokio::test]
async fn a_namespaces_fire_limit_applies_to_its_feeds_after_a_restart() {
    use super::feeds::{invoke_feed, lifecycle, setup, trigger_with_rule, wait_for_fires};
    use edgewhisk_entity::identity::NamespaceLimits;
    use edgewhisk_store::EntityStore;
    let (h, _) = setup().await;
    trigger_with_rule(&h).await;
    let r = invoke_feed(&h, "interval", lifecycle("CREATE", json!({"seconds": 1}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let limits = NamespaceLimits {
        fires_per_minute: Some(1),
        ..NamespaceLimits::default()
    };
    h.store
        .put_namespace_limits("guest", Some(limits))
        .await
        .unwrap();
    // After a restart nobody of `guest` has called the API: only the feed fires.
    let service = crate::feeds::FeedService::start(h.restarted());
    let fired = wait_for_fires(&h, usize::MAX, std::time::Duration::from_millis(3_500)).await;
    // One per minute; two when the minute turns during the wait.
    assert!((1..=2).contains(&fired), "{fired} fires");
    service.shutdown().await;
}

#[tokio::test]
async fn a_feed_document_holding_a_key_keeps_its_owner_when_its_progress_is_saved() {
    use super::feeds::{setup, trigger_with_rule, wait_for_fires};
    let (h, state) = setup().await;
    trigger_with_rule(&h).await;
    let service = crate::feeds::FeedService::start(state);
    // Written after the service started, so its start-up migration does not see it.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    put_legacy_feed_doc(&h).await;
    // A lifecycle event of another trigger wakes the scheduler, which reloads the store.
    let r = h.put("/api/v1/namespaces/_/triggers/u", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let body = super::feeds::lifecycle("CREATE", json!({"minutes": 5}));
    let mut body = body.as_object().unwrap().clone();
    body.insert("triggerName".into(), json!("/guest/u"));
    let r = super::feeds::invoke_feed(&h, "interval", serde_json::Value::Object(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(wait_for_fires(&h, 2, std::time::Duration::from_secs(6)).await >= 2);
    assert_feed_doc_names_the_key_without_its_secret(&h, "the key was kept").await;
    service.shutdown().await;
}
