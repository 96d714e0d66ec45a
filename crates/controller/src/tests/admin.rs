//! Subjects, namespaces and keys as `edgewhisk admin` leaves them in the store: isolation
//! between namespaces, several namespaces per subject, regenerated and deleted keys, and
//! per-namespace throttle overrides.

use super::*;
use edgewhisk_entity::identity::NamespaceLimits;
use edgewhisk_store::EntityStore;

const ALICE_UUID: &str = "aaaaaaaa-1111-4222-8333-444444444444";

fn alice_key(c: char) -> String {
    c.to_string().repeat(64)
}

fn alice(namespace: &str, uuid: &str, key: &str) -> Identity {
    Identity {
        subject: "alice".into(),
        namespace: namespace.into(),
        uuid: uuid.into(),
        key: key.into(),
    }
}

/// A harness with subject `alice` owning namespace `alice` (key `a…a`).
async fn with_alice() -> (Harness, String) {
    let h = Harness::new().await;
    let id = alice("alice", ALICE_UUID, &alice_key('a'));
    h.store.put_identity(id.clone()).await.unwrap();
    (h, id.auth_string())
}

#[tokio::test]
async fn a_created_key_works_and_is_stored_only_hashed() {
    let (h, auth) = with_alice().await;
    let r = h.get_as(&auth, "/api/v1/namespaces/_/actions").await;
    assert_eq!(r.status, StatusCode::OK);
    let stored = h.store.identity(ALICE_UUID).await.unwrap().unwrap();
    assert!(!stored.key.contains(&alice_key('a')));
    assert!(stored.key.starts_with("sha256$"));
}

#[tokio::test]
async fn namespaces_lists_every_namespace_of_the_callers_subject() {
    let (h, auth) = with_alice().await;
    let team = alice(
        "team",
        "bbbbbbbb-1111-4222-8333-444444444444",
        &alice_key('b'),
    );
    h.store.put_identity(team.clone()).await.unwrap();
    let r = h.get_as(&auth, "/api/v1/namespaces").await;
    assert_eq!(r.body, json!(["alice", "team"]));
    let r = h.get("/api/v1/namespaces").await;
    assert_eq!(r.body, json!(["guest"]));
    // Each namespace is reached with its own key.
    let r = h
        .get_as(&team.auth_string(), "/api/v1/namespaces/team/actions")
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn a_subject_cannot_list_get_or_invoke_in_another_namespace() {
    let (h, auth) = with_alice().await;
    assert_eq!(h.create("hello", json!({})).await.status, StatusCode::OK);
    let cases = [
        (Method::GET, "/api/v1/namespaces/guest/actions", "guest"),
        (
            Method::GET,
            "/api/v1/namespaces/guest/actions/hello",
            "guest/hello",
        ),
        (
            Method::POST,
            "/api/v1/namespaces/guest/actions/hello",
            "guest/hello",
        ),
        (Method::GET, "/api/v1/namespaces/guest/limits", "guest"),
    ];
    for (method, uri, what) in cases {
        let body = (method == Method::POST).then(|| json!({}));
        let r = h.call_as(&auth, method, uri, body).await;
        assert_error(
            &r,
            403,
            &format!("The supplied authentication is not authorized to access '{what}'."),
        );
    }
    // And the other way round.
    let r = h.get("/api/v1/namespaces/alice/actions").await;
    assert_error(
        &r,
        403,
        "The supplied authentication is not authorized to access 'alice'.",
    );
    assert!(h.balancer.published().is_empty());
}

#[tokio::test]
async fn a_subject_can_read_another_namespaces_published_package_only() {
    let (h, auth) = with_alice().await;
    let shared = h
        .put(
            "/api/v1/namespaces/_/packages/shared",
            json!({"publish": true}),
        )
        .await;
    assert_eq!(shared.status, StatusCode::OK);
    let private = h
        .put("/api/v1/namespaces/_/packages/private", json!({}))
        .await;
    assert_eq!(private.status, StatusCode::OK);
    let r = h
        .get_as(&auth, "/api/v1/namespaces/guest/packages/shared")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], json!("shared"));
    let r = h
        .get_as(&auth, "/api/v1/namespaces/guest/packages/private")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_regenerated_key_replaces_the_old_one_and_a_deleted_key_is_refused() {
    let (h, old) = with_alice().await;
    let new = alice("alice", ALICE_UUID, &alice_key('c'));
    h.store.put_identity(new.clone()).await.unwrap();
    let r = h.get_as(&old, "/api/v1/namespaces/_/actions").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .get_as(&new.auth_string(), "/api/v1/namespaces/_/actions")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    h.store.delete_identity(ALICE_UUID).await.unwrap();
    let r = h
        .get_as(&new.auth_string(), "/api/v1/namespaces/_/actions")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_limits_route_shows_overrides_capped_at_the_system_values() {
    let h = Harness::new().await;
    let overrides = NamespaceLimits {
        invocations_per_minute: Some(5),
        concurrent_invocations: Some(1000),
        fires_per_minute: None,
    };
    h.store
        .put_namespace_limits("guest", Some(overrides))
        .await
        .unwrap();
    let r = h.get("/api/v1/namespaces/_/limits").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["invocationsPerMinute"], json!(5));
    assert_eq!(r.body["concurrentInvocations"], json!(30));
    assert_eq!(r.body["firesPerMinute"], json!(60));
    assert_eq!(r.body["maxActionMemory"], json!(512));
}

#[tokio::test]
async fn a_namespace_rate_override_answers_429_for_that_namespace_only() {
    let (h, auth) = with_alice().await;
    h.store
        .put_namespace_limits(
            "alice",
            Some(NamespaceLimits {
                invocations_per_minute: Some(1),
                ..NamespaceLimits::default()
            }),
        )
        .await
        .unwrap();
    let create = h
        .call_as(
            &auth,
            Method::PUT,
            "/api/v1/namespaces/_/actions/hello",
            Some(json!({"exec": {"kind": "nodejs:default", "code": "function main(){}"}})),
        )
        .await;
    assert_eq!(create.status, StatusCode::OK);
    let uri = "/api/v1/namespaces/_/actions/hello";
    let first = h.call_as(&auth, Method::POST, uri, Some(json!({}))).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let second = h.call_as(&auth, Method::POST, uri, Some(json!({}))).await;
    assert_error(
        &second,
        429,
        "Too many requests in the last minute (count: 2, allowed: 1).",
    );
    // The guest namespace keeps the system limits.
    assert_eq!(h.create("echo", json!({})).await.status, StatusCode::OK);
    for _ in 0..3 {
        let r = h.post("/api/v1/namespaces/_/actions/echo", json!({})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
}

#[tokio::test]
async fn a_concurrent_override_answers_429_and_recovers_when_the_activation_finishes() {
    let h = Harness::new().await;
    h.store
        .put_namespace_limits(
            "guest",
            Some(NamespaceLimits {
                concurrent_invocations: Some(1),
                ..NamespaceLimits::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(h.create("echo", json!({})).await.status, StatusCode::OK);
    assert_one_in_flight_until_answered(&h, "/api/v1/namespaces/_/actions/echo").await;
}
