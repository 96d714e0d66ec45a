//! Packages, bindings, package actions and cross-namespace entitlement through the router.

use super::{Harness, OTHER_AUTH, Resp, assert_error, names_of};
use crate::catalog::{SYSTEM_AUTH, provision_system};
use axum::http::{Method, StatusCode};
use edgewhisk_store::EntityStore;
use serde_json::{Value, json};

const P: &str = "/api/v1/namespaces/_/packages";
const A: &str = "/api/v1/namespaces/_/actions";
const GUEST_P: &str = "/api/v1/namespaces/guest/packages";
const GUEST_A: &str = "/api/v1/namespaces/guest/actions";

fn params(pairs: &[(&str, &str)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

fn names(r: &Resp) -> Vec<String> {
    names_of(&r.body)
}

/// The run arguments the fake invoker received last.
fn last_args(h: &Harness) -> Value {
    serde_json::from_str(h.balancer.last().content.get()).unwrap()
}

#[tokio::test]
async fn package_crud_follows_openwhisk() {
    let h = Harness::new().await;
    let r = h
        .put(
            &format!("{P}/tools"),
            json!({"parameters": params(&[("a", "1")]), "annotations": params(&[("d", "x")])}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["namespace"], json!("guest"));
    assert_eq!(r.body["version"], json!("0.0.1"));
    assert_eq!(r.body["binding"], json!({}));
    assert_eq!(r.body["publish"], json!(false));

    let r = h.put(&format!("{P}/tools"), json!({})).await;
    assert_error(&r, 409, "resource already exists");

    let r = h
        .put(
            &format!("{P}/tools?overwrite=true"),
            json!({"publish": true}),
        )
        .await;
    assert_eq!(r.body["version"], json!("0.0.2"));
    assert_eq!(r.body["publish"], json!(true));
    assert_eq!(r.body["parameters"], params(&[("a", "1")]));

    h.create("tools/hammer", json!({})).await;
    h.create(
        "tools/ticker",
        json!({"annotations": [{"key": "feed", "value": true}]}),
    )
    .await;
    let r = h.get(&format!("{P}/tools")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(names_of(&r.body["actions"]), ["hammer"]);
    assert_eq!(r.body["feeds"][0]["name"], json!("ticker"));
    assert_eq!(r.body["actions"][0]["version"], json!("0.0.1"));
    assert!(r.body["actions"][0]["annotations"].is_array());

    for uri in [P.to_owned(), format!("{P}/")] {
        let r = h.get(&uri).await;
        assert_eq!(names(&r), ["tools"]);
        assert_eq!(r.body[0]["binding"], json!(false));
        assert!(r.body[0].get("parameters").is_none());
    }
    assert_eq!(
        h.get(&format!("{P}?count=true")).await.body,
        json!({"packages": 1})
    );
}

#[tokio::test]
async fn default_is_a_reserved_package_name_and_bad_names_are_refused() {
    let h = Harness::new().await;
    let r = h.put(&format!("{P}/default"), json!({})).await;
    assert_error(&r, 400, "Package name 'default' is reserved.");
    let r = h.put(&format!("{P}/-bad"), json!({})).await;
    assert_error(
        &r,
        400,
        "The name of the entity contains illegal characters.",
    );
    assert_error(
        &h.get(&format!("{P}/missing")).await,
        404,
        "The requested resource does not exist.",
    );
    let r = h.post(&format!("{P}/missing"), json!({})).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn deleting_a_non_empty_package_needs_force() {
    let h = Harness::new().await;
    h.put(&format!("{P}/full"), json!({})).await;
    h.create("full/a", json!({})).await;
    h.create("full/b", json!({})).await;
    let r = h.call(Method::DELETE, &format!("{P}/full"), None).await;
    assert_error(
        &r,
        409,
        "Package not empty (contains 2 entities). Set force param or delete package contents.",
    );
    let r = h
        .call(Method::DELETE, &format!("{P}/full?force=true"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], json!("full"));
    assert!(h.store.get("guest/full", "a").await.unwrap().is_none());
    assert_error(
        &h.call(Method::DELETE, &format!("{P}/full"), None).await,
        404,
        "The requested resource does not exist.",
    );
}

#[tokio::test]
async fn bindings_merge_parameters_and_show_the_bound_packages_actions() {
    let h = Harness::new().await;
    h.put(
        &format!("{P}/base"),
        json!({"parameters": params(&[("a", "pkg"), ("b", "pkg"), ("c", "pkg")])}),
    )
    .await;
    h.create(
        "base/act",
        json!({"parameters": params(&[("c", "action"), ("d", "action")])}),
    )
    .await;
    let r = h
        .put(
            &format!("{P}/mine"),
            json!({"binding": {"namespace": "_", "name": "base"},
                   "parameters": params(&[("b", "binding")])}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let target = json!({"namespace": "guest", "name": "base"});
    assert_eq!(r.body["binding"], target);
    assert_eq!(
        r.body["annotations"],
        json!([{"key": "binding", "value": target}])
    );

    let r = h.get(&format!("{P}/mine")).await;
    assert_eq!(
        r.body["parameters"],
        params(&[("a", "pkg"), ("b", "binding"), ("c", "pkg")])
    );
    assert_eq!(r.body["actions"][0]["name"], json!("act"));
    let list = h.get(P).await;
    let mine = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "mine");
    assert_eq!(mine.unwrap()["binding"], target);

    // GET through the binding: package < binding < action.
    let r = h.get(&format!("{A}/mine/act")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["namespace"], json!("guest/base"));
    assert_eq!(
        r.body["parameters"],
        params(&[
            ("a", "pkg"),
            ("b", "binding"),
            ("c", "action"),
            ("d", "action")
        ])
    );
    // Invoke through the binding: ... < request.
    let r = h
        .post(&format!("{A}/mine/act"), json!({"d": "request"}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(
        last_args(&h),
        json!({"a": "pkg", "b": "binding", "c": "action", "d": "request"})
    );
    assert_eq!(h.balancer.last().action.name.to_string(), "/guest/base/act");
    // The package listing through the binding shows the bound package's actions.
    let r = h.get(&format!("{A}/mine/")).await;
    assert_eq!(names(&r), ["act"]);
    assert_eq!(r.body[0]["namespace"], json!("guest/base"));
}

#[tokio::test]
async fn writes_through_a_binding_are_refused() {
    let h = Harness::new().await;
    h.put(&format!("{P}/base"), json!({})).await;
    h.create("base/act", json!({})).await;
    h.put(
        &format!("{P}/mine"),
        json!({"binding": {"namespace": "guest", "name": "base"}}),
    )
    .await;
    let r = h.create("mine/new", json!({})).await;
    assert_error(&r, 400, "Operation not permitted on package binding.");
    let r = h.call(Method::DELETE, &format!("{A}/mine/act"), None).await;
    assert_error(&r, 400, "Operation not permitted on package binding.");
    // A binding deletes freely and leaves the bound package's actions alone.
    let r = h.call(Method::DELETE, &format!("{P}/mine"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(h.store.get("guest/base", "act").await.unwrap().is_some());
}

#[tokio::test]
async fn bindings_must_reference_an_existing_plain_package() {
    let h = Harness::new().await;
    let r = h
        .put(
            &format!("{P}/b1"),
            json!({"binding": {"namespace": "guest", "name": "nope"}}),
        )
        .await;
    assert_error(&r, 400, "Binding references a package that does not exist.");
    h.put(&format!("{P}/base"), json!({})).await;
    h.put(
        &format!("{P}/b1"),
        json!({"binding": {"namespace": "guest", "name": "base"}}),
    )
    .await;
    let r = h
        .put(
            &format!("{P}/b2"),
            json!({"binding": {"namespace": "guest", "name": "b1"}}),
        )
        .await;
    assert_error(&r, 400, "Cannot bind to another package binding.");
    let r = h
        .put(
            &format!("{P}/base?overwrite=true"),
            json!({"binding": {"namespace": "guest", "name": "base"}}),
        )
        .await;
    assert_error(
        &r,
        409,
        "Resource is a package and cannot be converted into a binding.",
    );
    let r = h
        .put(
            &format!("{P}/b3"),
            json!({"binding": {"namespace": "other", "name": "private"}}),
        )
        .await;
    assert_error(
        &r,
        403,
        "The supplied authentication is not authorized to access 'other/private'.",
    );
}

#[tokio::test]
async fn actions_in_a_missing_package_do_not_exist() {
    let h = Harness::new().await;
    let r = h.create("ghost/a", json!({})).await;
    assert_error(&r, 404, "The requested resource does not exist.");
    assert_eq!(
        h.get(&format!("{A}/ghost/")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.post(&format!("{A}/ghost/a"), json!({})).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn others_may_read_and_invoke_published_packages_only() {
    let h = Harness::new().await;
    h.put(
        &format!("{P}/shared"),
        json!({"publish": true, "parameters": params(&[("p", "1")])}),
    )
    .await;
    h.put(&format!("{P}/private"), json!({})).await;
    h.put(
        &format!("{P}/bound"),
        json!({"publish": true, "binding": {"namespace": "guest", "name": "shared"}}),
    )
    .await;
    h.create("shared/act", json!({})).await;
    h.create("private/act", json!({})).await;
    h.create("loose", json!({})).await;

    let r = h.get_as(OTHER_AUTH, GUEST_P).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(names(&r), ["shared"]);
    let r = h.get_as(OTHER_AUTH, &format!("{GUEST_P}?count=true")).await;
    assert_eq!(r.body, json!({"packages": 1}));
    let r = h.get_as(OTHER_AUTH, &format!("{GUEST_P}/shared")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["actions"][0]["name"], json!("act"));
    let r = h.get_as(OTHER_AUTH, &format!("{GUEST_A}/shared/act")).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = h.get_as(OTHER_AUTH, &format!("{GUEST_A}/shared/")).await;
    assert_eq!(names(&r), ["act"]);
    let r = h
        .call_as(
            OTHER_AUTH,
            Method::POST,
            &format!("{GUEST_A}/shared/act?blocking=true"),
            Some(json!({"q": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let msg = h.balancer.last();
    assert_eq!(msg.namespace, "other");
    assert_eq!(last_args(&h), json!({"p": "1", "q": 2}));

    let denied = |what: &str| {
        format!("The supplied authentication is not authorized to access 'guest/{what}'.")
    };
    let cases = [
        (Method::GET, format!("{GUEST_P}/private"), "private"),
        (Method::GET, format!("{GUEST_P}/bound"), "bound"),
        (Method::GET, format!("{GUEST_P}/nothing"), "nothing"),
        (Method::PUT, format!("{GUEST_P}/shared"), "shared"),
        (Method::DELETE, format!("{GUEST_P}/shared"), "shared"),
        (Method::GET, format!("{GUEST_A}/private/act"), "private/act"),
        (
            Method::POST,
            format!("{GUEST_A}/private/act"),
            "private/act",
        ),
        (Method::GET, format!("{GUEST_A}/bound/act"), "bound/act"),
        (Method::PUT, format!("{GUEST_A}/shared/act"), "shared/act"),
        (
            Method::DELETE,
            format!("{GUEST_A}/shared/act"),
            "shared/act",
        ),
        (Method::GET, format!("{GUEST_A}/loose"), "loose"),
        (Method::GET, format!("{GUEST_A}/private/"), "private"),
    ];
    for (method, uri, what) in cases {
        let body = matches!(method, Method::PUT | Method::POST).then(|| json!({}));
        let r = h.call_as(OTHER_AUTH, method.clone(), &uri, body).await;
        assert_error(&r, 403, &denied(what));
    }
}

#[tokio::test]
async fn guests_use_the_system_utils_package_but_cannot_change_it() {
    let h = Harness::new().await;
    provision_system(h.store.as_ref()).await.unwrap();
    let sys_p = "/api/v1/namespaces/whisk.system/packages";
    let sys_a = "/api/v1/namespaces/whisk.system/actions";
    let r = h.get(&format!("{sys_p}/utils")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["publish"], json!(true));
    assert_eq!(r.body["actions"].as_array().unwrap().len(), 8);
    let mut system_packages = names(&h.get(sys_p).await);
    system_packages.sort();
    assert_eq!(system_packages, ["alarms", "mqtt", "utils"]);
    let r = h
        .post(&format!("{sys_a}/utils/echo"), json!({"x": 1}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        h.balancer.last().action.name.to_string(),
        "/whisk.system/utils/echo"
    );
    let r = h
        .put(
            &format!("{sys_a}/utils/mine"),
            json!({"exec": {"kind": "nodejs:20", "code": "x"}}),
        )
        .await;
    assert_error(
        &r,
        403,
        "The supplied authentication is not authorized to access 'whisk.system/utils/mine'.",
    );
    let r = h
        .put(&format!("{sys_p}/utils?overwrite=true"), json!({}))
        .await;
    assert_error(
        &r,
        403,
        "The supplied authentication is not authorized to access 'whisk.system/utils'.",
    );
    // A guest may bind the shared package and invoke through the binding.
    let r = h
        .put(
            &format!("{P}/myutils"),
            json!({"binding": {"namespace": "whisk.system", "name": "utils"},
                   "parameters": params(&[("payload", "bound")])}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    h.post(&format!("{A}/myutils/cat"), json!({})).await;
    assert_eq!(last_args(&h), json!({"payload": "bound"}));
    // The system key owns whisk.system.
    let r = h
        .raw(Method::GET, sys_p, None, Some(SYSTEM_AUTH), &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
}
