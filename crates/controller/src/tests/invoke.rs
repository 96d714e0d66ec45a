//! Invoke: blocking and non-blocking, outcomes and their statuses, payload checks, throttles.

use super::*;
use edgewhisk_entity::Status;
use edgewhisk_entity::identity::GUEST_AUTH;

const A: &str = "/api/v1/namespaces/_/actions";

async fn with_action(config: ApiConfig) -> Harness {
    let h = Harness::with_config(config).await;
    let r = h.create("echo", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    h
}

fn activation_header(r: &Resp) -> String {
    r.headers["x-openwhisk-activation-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn non_blocking_invoke_is_202_with_the_activation_id_and_publishes_the_message() {
    let h = with_action(ApiConfig::default()).await;
    let r = h.post(&format!("{A}/echo"), json!({"name": "x"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = activation_header(&r);
    assert_eq!(r.body, json!({"activationId": id}));
    let msg = h.balancer.last();
    assert_eq!(msg.activation_id.as_str(), id);
    assert_eq!(msg.namespace, "guest");
    assert_eq!(msg.subject, "guest");
    assert_eq!(msg.api_key.as_deref(), Some(GUEST_AUTH));
    assert_eq!(msg.action.name.to_string(), "/guest/echo");
    assert_eq!(msg.action.exec.kind, "nodejs:20");
    assert_eq!(msg.action.version, "0.0.1");
    assert_eq!(msg.content.get(), r#"{"name":"x"}"#);
    assert!(msg.received_at > 0);
    assert_eq!(
        msg.transaction_id,
        r.headers["x-request-id"].to_str().unwrap()
    );
}

#[tokio::test]
async fn an_empty_body_is_invoked_as_an_empty_object() {
    let h = with_action(ApiConfig::default()).await;
    let r = h
        .raw(
            Method::POST,
            &format!("{A}/echo"),
            None,
            Some(GUEST_AUTH),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(h.balancer.last().content.get(), "{}");
}

#[tokio::test]
async fn blocking_invoke_answers_the_full_activation_with_empty_logs() {
    let h = with_action(ApiConfig::default()).await;
    h.balancer
        .set(Answer::Finished(Status::Success, json!({"greeting": "hi"})));
    let r = h.post(&format!("{A}/echo?blocking=true"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    let id = activation_header(&r);
    assert_eq!(r.body["activationId"], json!(id));
    assert_eq!(r.body["name"], json!("echo"));
    assert_eq!(r.body["namespace"], json!("guest"));
    assert_eq!(r.body["logs"], json!([]));
    assert_eq!(
        r.body["response"],
        json!({"result": {"greeting": "hi"}, "success": true, "status": "success"})
    );
    assert_eq!(r.body["duration"], json!(5));
}

#[tokio::test]
async fn blocking_invoke_with_result_true_answers_only_the_result() {
    let h = with_action(ApiConfig::default()).await;
    h.balancer
        .set(Answer::Finished(Status::Success, json!({"greeting": "hi"})));
    let r = h
        .post(&format!("{A}/echo?blocking=true&result=true"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"greeting": "hi"}));
    assert!(r.headers.contains_key("x-openwhisk-activation-id"));
}

#[tokio::test]
async fn an_array_result_is_answered_bare() {
    let h = with_action(ApiConfig::default()).await;
    h.balancer
        .set(Answer::Finished(Status::Success, json!([1, 2])));
    let r = h.post(&format!("{A}/echo?blocking=true"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!([1, 2]));
}

#[tokio::test]
async fn application_and_developer_errors_are_502_without_a_code_field() {
    let h = with_action(ApiConfig::default()).await;
    for status in [Status::ApplicationError, Status::DeveloperError] {
        h.balancer
            .set(Answer::Finished(status, json!({"error": "boom"})));
        let r = h.post(&format!("{A}/echo?blocking=true"), json!({})).await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY);
        assert!(r.body.get("code").is_none());
        assert_eq!(r.body["response"]["status"], json!(status.as_str()));
        assert_eq!(r.body["response"]["result"], json!({"error": "boom"}));
        let r = h
            .post(&format!("{A}/echo?blocking=true&result=true"), json!({}))
            .await;
        assert_eq!(r.status, StatusCode::BAD_GATEWAY);
        assert_eq!(r.body, json!({"error": "boom"}));
    }
}

#[tokio::test]
async fn a_whisk_error_is_500_with_the_activation() {
    let h = with_action(ApiConfig::default()).await;
    h.balancer.set(Answer::Finished(
        Status::WhiskError,
        json!({"error": "Failed to provision resources to run the action."}),
    ));
    let r = h.post(&format!("{A}/echo?blocking=true"), json!({})).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.body.get("code").is_none());
    assert_eq!(r.body["response"]["status"], json!("whisk internal error"));
    assert_eq!(r.body["response"]["success"], json!(false));
}

#[tokio::test]
async fn blocking_invoke_not_finished_in_time_is_202_with_the_activation_id() {
    let h = with_action(ApiConfig::default()).await;
    h.balancer.set(Answer::Never);
    let r = h
        .post(&format!("{A}/echo?blocking=true&timeout=20"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.body, json!({"activationId": activation_header(&r)}));
}

#[tokio::test]
async fn the_configured_blocking_wait_caps_the_timeout_parameter() {
    let config = ApiConfig {
        blocking_wait_ms: 20,
        ..ApiConfig::default()
    };
    let h = with_action(config).await;
    h.balancer.set(Answer::Never);
    let r = h
        .post(&format!("{A}/echo?blocking=true&timeout=60000"), json!({}))
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_dropped_answer_path_is_202_unless_the_record_was_stored() {
    let h = with_action(ApiConfig::default()).await;
    h.balancer.set(Answer::Drop);
    let r = h.post(&format!("{A}/echo?blocking=true"), json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn an_out_of_range_timeout_is_400() {
    let h = with_action(ApiConfig::default()).await;
    let r = h
        .post(&format!("{A}/echo?blocking=true&timeout=60001"), json!({}))
        .await;
    assert_error(
        &r,
        400,
        "The query parameter 'timeout' was malformed:\nTimeout must be number of milliseconds up to 60000.",
    );
}

#[tokio::test]
async fn a_payload_over_the_limit_is_413() {
    let config = ApiConfig {
        max_payload_bytes: 100,
        ..ApiConfig::default()
    };
    let h = with_action(config).await;
    let body = format!("{{\"x\":\"{}\"}}", "a".repeat(200));
    let r = h.text(Method::POST, &format!("{A}/echo"), &body).await;
    assert_error(
        &r,
        413,
        &format!("Request larger than allowed: {} > 100 bytes.", body.len()),
    );
    assert!(h.balancer.published().is_empty());
}

#[tokio::test]
async fn a_default_size_payload_of_one_megabyte_is_refused_and_just_under_is_accepted() {
    let h = with_action(ApiConfig::default()).await;
    let over = format!("{{\"x\":\"{}\"}}", "a".repeat(1_048_576));
    let r = h.text(Method::POST, &format!("{A}/echo"), &over).await;
    assert_error(
        &r,
        413,
        &format!(
            "Request larger than allowed: {} > 1048576 bytes.",
            over.len()
        ),
    );
    let under = format!("{{\"x\":\"{}\"}}", "a".repeat(1_048_000));
    let r = h.text(Method::POST, &format!("{A}/echo"), &under).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(h.balancer.last().content.get().len(), under.len());
}

#[tokio::test]
async fn a_non_object_body_is_400() {
    let h = with_action(ApiConfig::default()).await;
    let r = h.post(&format!("{A}/echo"), json!([1, 2])).await;
    assert_error(
        &r,
        400,
        "The request content was malformed:\nObject expected",
    );
    let r = h.text(Method::POST, &format!("{A}/echo"), "{oops").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn invoking_a_missing_action_is_404() {
    let h = Harness::new().await;
    let r = h.post(&format!("{A}/nothing"), json!({})).await;
    assert_error(&r, 404, "The requested resource does not exist.");
}

#[tokio::test]
async fn default_parameters_are_merged_under_the_body_and_init_ones_go_to_the_action() {
    let h = Harness::new().await;
    h.create(
        "p",
        json!({"parameters": [{"key": "a", "value": 1}, {"key": "b", "value": 2},
                              {"key": "env", "value": "s", "init": true}]}),
    )
    .await;
    h.post(&format!("{A}/p"), json!({"b": 3})).await;
    let msg = h.balancer.last();
    let content: Value = serde_json::from_str(msg.content.get()).unwrap();
    assert_eq!(content, json!({"a": 1, "b": 3}));
    assert_eq!(msg.action.init_parameters.0.len(), 1);
    assert_eq!(msg.action.init_parameters.0[0].key, "env");
}

#[tokio::test]
async fn packaged_actions_are_invoked_by_their_package_path() {
    let h = Harness::new().await;
    h.put("/api/v1/namespaces/_/packages/pkg", json!({})).await;
    h.create("pkg/inner", json!({})).await;
    let r = h.post(&format!("{A}/pkg/inner"), json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        h.balancer.last().action.name.to_string(),
        "/guest/pkg/inner"
    );
}

#[tokio::test]
async fn over_the_per_minute_rate_is_429() {
    let config = ApiConfig {
        invocations_per_minute: 2,
        ..ApiConfig::default()
    };
    let h = with_action(config).await;
    for _ in 0..2 {
        assert_eq!(
            h.post(&format!("{A}/echo"), json!({})).await.status,
            StatusCode::ACCEPTED
        );
    }
    let r = h.post(&format!("{A}/echo"), json!({})).await;
    assert_error(
        &r,
        429,
        "Too many requests in the last minute (count: 3, allowed: 2).",
    );
}

#[tokio::test]
async fn over_the_concurrent_limit_is_429_and_a_finished_activation_frees_its_slot() {
    let config = ApiConfig {
        concurrent_invocations: 1,
        ..ApiConfig::default()
    };
    let h = with_action(config).await;
    assert_one_in_flight_until_answered(&h, &format!("{A}/echo")).await;
}

#[tokio::test]
async fn a_refusing_load_balancer_is_503() {
    let h = with_action(ApiConfig::default()).await;
    h.balancer.set(Answer::Refuse);
    let r = h.post(&format!("{A}/echo"), json!({})).await;
    assert_error(
        &r,
        503,
        "The server is currently unavailable (because it is overloaded or down for maintenance).",
    );
}

#[tokio::test]
async fn invoking_in_another_namespace_is_403() {
    let h = with_action(ApiConfig::default()).await;
    let r = h
        .post("/api/v1/namespaces/other/actions/echo", json!({}))
        .await;
    assert_error(
        &r,
        403,
        "The supplied authentication is not authorized to access 'other/echo'.",
    );
}
