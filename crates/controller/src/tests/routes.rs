//! Info routes, transaction ids, CORS, authentication, entitlement, 404/405, namespaces.

use super::*;
use crate::messages;

#[tokio::test]
async fn api_info_is_served_without_credentials_with_build_info() {
    let h = Harness::new().await;
    for uri in ["/api/v1", "/api/v1/"] {
        let r = h.raw(Method::GET, uri, None, None, &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.body,
            json!({"description":"OpenWhisk API","api_version":"1.0.0","api_version_path":"v1",
                   "build":"2024-01-01","buildno":"42",
                   "swagger_paths":{"ui":"/docs","api-docs":"/api-docs"}})
        );
    }
}

#[tokio::test]
async fn invokers_lists_each_invoker_with_its_health_and_counts_the_healthy_ones() {
    let h = Harness::new().await;
    let r = h.raw(Method::GET, "/invokers", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"invoker0/0": "up", "invoker1/1": "down"}));
    let r = h
        .raw(Method::GET, "/invokers/healthy/count", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!(1));
}

#[tokio::test]
async fn deployment_info_reports_limits_in_bytes_and_runtimes_by_family() {
    let h = Harness::new().await;
    let r = h.raw(Method::GET, "/", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["api_paths"], json!(["/api/v1"]));
    assert_eq!(r.body["limits"]["actions_per_minute"], json!(60));
    assert_eq!(r.body["limits"]["concurrent_actions"], json!(30));
    assert_eq!(
        r.body["limits"]["max_action_memory"],
        json!(512u64 * 1024 * 1024)
    );
    assert_eq!(r.body["limits"]["max_action_duration"], json!(300_000));
    assert_eq!(r.body["runtimes"]["nodejs"][0]["kind"], json!("nodejs:20"));
    assert_eq!(r.body["runtimes"]["nodejs"][0]["default"], json!(true));
    assert_eq!(r.body["runtimes"]["python"][0]["kind"], json!("python:3"));
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn ping_answers_pong() {
    let h = Harness::new().await;
    let r = h.raw(Method::GET, "/ping", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!("pong"));
}

#[tokio::test]
async fn options_under_api_v1_is_200_with_cors_headers_without_credentials() {
    let h = Harness::new().await;
    let r = h
        .raw(
            Method::OPTIONS,
            "/api/v1/namespaces/_/actions/x",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert_eq!(
        r.headers["access-control-allow-methods"],
        "GET, DELETE, POST, PUT, HEAD"
    );
    assert_eq!(
        r.headers["access-control-allow-headers"],
        "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"
    );
    assert!(r.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn api_responses_carry_cors_headers_even_on_errors() {
    let h = Harness::new().await;
    let r = h.get("/api/v1/namespaces/_/actions/missing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_reuses_an_incoming_one() {
    let h = Harness::new().await;
    let r = h.raw(Method::GET, "/ping", None, None, &[]).await;
    assert_eq!(r.headers["x-request-id"].len(), 32);
    let r = h
        .raw(
            Method::GET,
            "/api/v1/namespaces/_/actions/missing",
            None,
            Some(GUEST_AUTH),
            &[("x-request-id", "my-tid-1")],
        )
        .await;
    assert_eq!(r.headers["x-request-id"], "my-tid-1");
    assert_eq!(r.body["code"], json!("my-tid-1"));
}

#[tokio::test]
async fn unknown_route_is_404_in_the_error_shape() {
    let h = Harness::new().await;
    let r = h.get("/api/v1/nothing/here").await;
    assert_error(&r, 404, "The requested resource does not exist.");
    let r = h.raw(Method::GET, "/nope", None, None, &[]).await;
    assert_error(&r, 404, "The requested resource does not exist.");
}

#[tokio::test]
async fn wrong_method_is_405_in_the_error_shape() {
    let h = Harness::new().await;
    let r = h
        .call(Method::DELETE, "/api/v1/namespaces/_/actions", None)
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers["allow"], "GET,HEAD");
    assert_error(&r, 405, &messages::method_not_allowed("GET, HEAD"));
}

#[tokio::test]
async fn missing_credentials_are_401_with_the_basic_challenge() {
    let h = Harness::new().await;
    let r = h
        .raw(Method::GET, "/api/v1/namespaces/_/actions", None, None, &[])
        .await;
    assert_error(
        &r,
        401,
        "The resource requires authentication, which was not supplied with the request",
    );
    assert_eq!(
        r.headers["www-authenticate"],
        "Basic realm=\"OpenWhisk secure realm\""
    );
}

#[tokio::test]
async fn wrong_secret_unknown_user_and_malformed_keys_are_401() {
    let h = Harness::new().await;
    let (uuid, key) = GUEST_AUTH.split_once(':').unwrap();
    let wrong_secret = format!("{uuid}:{}", key.replace('1', "2"));
    let unknown_user = format!("99bc46b1-71f6-4ed5-8c54-816aa4f8c502:{key}");
    let short = format!("{uuid}:short");
    for auth in [
        wrong_secret.as_str(),
        unknown_user.as_str(),
        short.as_str(),
        "nouuid:x",
    ] {
        let r = h
            .raw(Method::GET, "/api/v1/namespaces", None, Some(auth), &[])
            .await;
        assert_error(&r, 401, "The supplied authentication is invalid");
        assert!(r.headers.contains_key("www-authenticate"));
    }
}

#[tokio::test]
async fn another_namespace_is_403_naming_the_resource() {
    let h = Harness::new().await;
    let r = h.get("/api/v1/namespaces/other/actions/x").await;
    assert_error(
        &r,
        403,
        "The supplied authentication is not authorized to access 'other/x'.",
    );
    let r = h.get("/api/v1/namespaces/other/actions").await;
    assert_error(
        &r,
        403,
        "The supplied authentication is not authorized to access 'other'.",
    );
    let r = h.get("/api/v1/namespaces/other/limits").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn namespaces_list_is_the_callers_namespace() {
    let h = Harness::new().await;
    let r = h.get("/api/v1/namespaces").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!(["guest"]));
    let r = h
        .raw(
            Method::GET,
            "/api/v1/namespaces",
            None,
            Some(OTHER_AUTH),
            &[],
        )
        .await;
    assert_eq!(r.body, json!(["other"]));
}

#[tokio::test]
async fn limits_report_the_configured_limits() {
    let h = Harness::new().await;
    for ns in ["_", "guest"] {
        let r = h.get(&format!("/api/v1/namespaces/{ns}/limits")).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.body,
            json!({"invocationsPerMinute":60,"concurrentInvocations":30,"firesPerMinute":60,
                   "minActionMemory":128,"maxActionMemory":512,"minActionLogs":0,"maxActionLogs":10,
                   "minActionTimeout":100,"maxActionTimeout":300000,"minActionConcurrency":1,
                   "maxActionConcurrency":200,"maxParameterSize":"1048576 B","maxActionInstances":30})
        );
    }
}

#[tokio::test]
async fn the_router_serves_real_http_on_a_loopback_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app.clone();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = r#"{"exec":{"kind":"nodejs:default","code":"function main(){}"}}"#;
    let request = format!(
        "PUT /api/v1/namespaces/_/actions/net HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        basic(GUEST_AUTH),
        body.len()
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.to_ascii_lowercase().contains("x-request-id: "));
    assert!(response.contains(r#""kind":"nodejs:20""#), "{response}");
    server.abort();
}
