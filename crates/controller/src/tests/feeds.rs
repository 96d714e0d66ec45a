//! Feed actions and the feed scheduler through the router, over the memory store and the
//! fake invoker.

use super::{Harness, names_of};
use crate::AppState;
use crate::feeds::{FEEDS_PATH, FeedService};
use axum::http::StatusCode;
use edgewhisk_entity::identity::GUEST_AUTH;
use edgewhisk_store::EntityStore;
use serde_json::{Value, json};
use std::time::Duration;

const ALARMS: &str = "/api/v1/namespaces/whisk.system/actions/alarms";

/// A harness of the guest alone over a provisioned catalog, and the state to start a feed
/// service from.
pub(super) async fn setup() -> (Harness, AppState) {
    let h = Harness::builder().guest_only().catalog().build().await;
    let state = h.state.clone();
    (h, state)
}

/// A trigger `t` with a rule `r` to action `a`.
pub(super) async fn trigger_with_rule(h: &Harness) {
    assert_eq!(h.create("a", json!({})).await.status, StatusCode::OK);
    let r = h.put("/api/v1/namespaces/_/triggers/t", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h
        .put(
            "/api/v1/namespaces/_/rules/r",
            json!({"trigger": "/_/t", "action": "/_/a"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

pub(super) fn lifecycle(event: &str, extra: Value) -> Value {
    let mut body =
        json!({"lifecycleEvent": event, "triggerName": "/guest/t", "authKey": GUEST_AUTH});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

pub(super) async fn invoke_feed(h: &Harness, feed: &str, body: Value) -> super::Resp {
    h.post(&format!("{ALARMS}/{feed}?blocking=true"), body)
        .await
}

/// Waits until the fake invoker saw `n` invocations of action `a`.
pub(super) async fn wait_for_fires(h: &Harness, n: usize, within: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let seen = h
            .balancer
            .published()
            .iter()
            .filter(|m| m.action.name.name == "a")
            .count();
        if seen >= n || tokio::time::Instant::now() >= deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn feed_packages_are_published_with_their_feed_actions() {
    let (h, _) = setup().await;
    let r = h
        .get("/api/v1/namespaces/whisk.system/packages/alarms")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut feeds = names_of(&r.body["feeds"]);
    feeds.sort_unstable();
    assert_eq!(feeds, ["alarm", "interval", "once"]);
    let r = h.get("/api/v1/namespaces/whisk.system/packages/mqtt").await;
    assert_eq!(r.body["feeds"][0]["name"], "subscribe");
}

#[tokio::test]
async fn create_stores_the_schedule_and_read_update_pause_and_delete_follow_it() {
    let (h, _) = setup().await;
    trigger_with_rule(&h).await;
    let r = invoke_feed(&h, "interval", lifecycle("CREATE", json!({"minutes": 5}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["response"]["success"], true);
    assert_eq!(
        r.body["annotations"][0]["value"],
        "whisk.system/alarms/interval"
    );
    assert!(h.store.get(FEEDS_PATH, "guest:t").await.unwrap().is_some());

    let again = invoke_feed(&h, "interval", lifecycle("CREATE", json!({"minutes": 5}))).await;
    assert_eq!(again.status, StatusCode::BAD_GATEWAY);
    assert!(
        again.body["response"]["result"]["error"]
            .as_str()
            .unwrap()
            .contains("already has a feed")
    );

    let r = invoke_feed(&h, "interval", lifecycle("UPDATE", json!({"minutes": 7}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = invoke_feed(&h, "interval", lifecycle("PAUSE", json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = invoke_feed(&h, "interval", lifecycle("READ", json!({}))).await;
    let result = &r.body["response"]["result"];
    assert_eq!(result["config"]["minutes"], 7);
    assert_eq!(result["config"]["name"], "t");
    assert_eq!(result["status"]["active"], false);

    let r = invoke_feed(&h, "interval", lifecycle("DELETE", json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(h.store.get(FEEDS_PATH, "guest:t").await.unwrap().is_none());
    let r = invoke_feed(&h, "interval", lifecycle("READ", json!({}))).await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn create_refuses_bad_parameters_keys_and_missing_triggers() {
    let (h, _) = setup().await;
    trigger_with_rule(&h).await;
    let cases = [
        (
            "alarm",
            lifecycle("CREATE", json!({"cron": "not a cron"})),
            "is not valid",
        ),
        (
            "once",
            lifecycle("CREATE", json!({"date": "2001-01-01T00:00:00Z"})),
            "must be in the future",
        ),
        (
            "interval",
            lifecycle(
                "CREATE",
                json!({"minutes": 5, "authKey": super::OTHER_AUTH}),
            ),
            "authKey is not valid",
        ),
        (
            "interval",
            json!({"lifecycleEvent": "CREATE", "triggerName": "/guest/nope", "authKey": GUEST_AUTH, "minutes": 1}),
            "does not exist",
        ),
        (
            "interval",
            json!({"lifecycleEvent": "CREATE", "triggerName": "/other/t", "authKey": GUEST_AUTH, "minutes": 1}),
            "not authorized",
        ),
    ];
    for (feed, body, message) in cases {
        let r = invoke_feed(&h, feed, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{body}: {}", r.body);
        let error = r.body["response"]["result"]["error"].as_str().unwrap();
        assert!(error.contains(message), "{body}: {error}");
    }
    assert!(h.store.get(FEEDS_PATH, "guest:t").await.unwrap().is_none());
}

#[tokio::test]
async fn an_interval_alarm_fires_its_rule_until_deleted_and_again_after_a_restart() {
    let (h, state) = setup().await;
    trigger_with_rule(&h).await;
    let service = FeedService::start(state.clone());
    let r = invoke_feed(
        &h,
        "interval",
        lifecycle(
            "CREATE",
            json!({"seconds": 1, "trigger_payload": {"k": "v"}}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(wait_for_fires(&h, 2, Duration::from_secs(5)).await >= 2);
    let msg = h.balancer.last();
    let args: Value = serde_json::from_str(msg.content.get()).unwrap();
    assert_eq!(args["k"], "v");

    // A new service over the same store (a restart) picks the stored schedule up.
    service.shutdown().await;
    let before = wait_for_fires(&h, usize::MAX, Duration::ZERO).await;
    let service = FeedService::start(state);
    assert!(wait_for_fires(&h, before + 1, Duration::from_secs(5)).await > before);

    let r = invoke_feed(&h, "interval", lifecycle("DELETE", json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = wait_for_fires(&h, usize::MAX, Duration::ZERO).await;
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    assert_eq!(
        wait_for_fires(&h, usize::MAX, Duration::ZERO).await,
        stopped
    );
    service.shutdown().await;
}

#[tokio::test]
async fn a_once_alarm_fires_once_and_removes_its_schedule() {
    let (h, state) = setup().await;
    trigger_with_rule(&h).await;
    let service = FeedService::start(state);
    let at = edgewhisk_entity::time::now_millis() + 500;
    let r = invoke_feed(&h, "once", lifecycle("CREATE", json!({"date": at}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(wait_for_fires(&h, 1, Duration::from_secs(5)).await, 1);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(wait_for_fires(&h, usize::MAX, Duration::ZERO).await, 1);
    assert!(h.store.get(FEEDS_PATH, "guest:t").await.unwrap().is_none());
    service.shutdown().await;
}

#[tokio::test]
async fn a_feed_whose_trigger_was_deleted_is_removed_at_its_next_fire() {
    let (h, state) = setup().await;
    trigger_with_rule(&h).await;
    let service = FeedService::start(state);
    let r = invoke_feed(&h, "interval", lifecycle("CREATE", json!({"seconds": 1}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = h
        .call(
            axum::http::Method::DELETE,
            "/api/v1/namespaces/_/triggers/t",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while h.store.get(FEEDS_PATH, "guest:t").await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "feed never removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.shutdown().await;
}
