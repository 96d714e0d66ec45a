//! Request bodies are capped per route before they are parsed: a body over its route's limit
//! is a 413 decided from `Content-Length` or from the bytes streamed so far, and an action PUT
//! cannot turn a body as large as the code limit into a tree of parameters.

use super::*;
use crate::error::ENVELOPE_BYTES;
use axum::body::Bytes;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

const NS: &str = "/api/v1/namespaces/_";

/// The limit of every entity body without code under the default configuration.
fn entity_limit() -> u64 {
    2 * ApiConfig::default().max_parameter_bytes + ENVELOPE_BYTES
}

/// A body of `chunks` chunks of `chunk` bytes with no declared length, counting how many
/// chunks the server pulled.
struct CountingBody {
    chunk: Bytes,
    left: usize,
    pulled: Arc<AtomicUsize>,
}

impl http_body::Body for CountingBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        self.pulled.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Some(Ok(http_body::Frame::data(self.chunk.clone()))))
    }
}

async fn streamed(
    h: &Harness,
    method: Method,
    uri: &str,
    chunk: usize,
    chunks: usize,
) -> (Resp, usize) {
    let pulled = Arc::new(AtomicUsize::new(0));
    let body = CountingBody {
        chunk: Bytes::from(vec![b' '; chunk]),
        left: chunks,
        pulled: pulled.clone(),
    };
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", basic(GUEST_AUTH))
        .header("content-type", "application/json")
        .body(Body::new(body))
        .unwrap();
    let res = h.app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (
        Resp {
            status,
            headers,
            body,
        },
        pulled.load(Ordering::SeqCst),
    )
}

#[tokio::test]
async fn entity_routes_refuse_a_declared_length_over_their_limit() {
    let h = Harness::new().await;
    let limit = entity_limit();
    let body = format!("[{}0]", "0,".repeat(usize::try_from(limit).unwrap() / 2));
    let len = body.len();
    for uri in [
        format!("{NS}/triggers/t"),
        format!("{NS}/packages/p"),
        format!("{NS}/rules/r"),
    ] {
        let r = h
            .raw(Method::PUT, &uri, Some(&body), Some(GUEST_AUTH), &[])
            .await;
        assert_error(
            &r,
            413,
            &format!("Request larger than allowed: {len} > {limit} bytes."),
        );
    }
}

#[tokio::test]
async fn a_rule_state_change_accepts_only_a_small_body() {
    let h = Harness::new().await;
    let body = format!("[{}0]", "0,".repeat(40_000));
    let len = body.len();
    let r = h
        .raw(
            Method::POST,
            &format!("{NS}/rules/r"),
            Some(&body),
            Some(GUEST_AUTH),
            &[],
        )
        .await;
    assert_error(
        &r,
        413,
        &format!("Request larger than allowed: {len} > {ENVELOPE_BYTES} bytes."),
    );
}

#[tokio::test]
async fn a_streamed_body_is_refused_once_it_passes_the_limit_and_not_read_further() {
    let h = Harness::new().await;
    let chunk = 16 * 1024;
    let (r, pulled) = streamed(&h, Method::POST, &format!("{NS}/rules/r"), chunk, 1000).await;
    let expected_chunks = usize::try_from(ENVELOPE_BYTES).unwrap() / chunk + 1;
    let seen = expected_chunks * chunk;
    assert_error(
        &r,
        413,
        &format!("Request larger than allowed: {seen} > {ENVELOPE_BYTES} bytes."),
    );
    assert_eq!(
        pulled, expected_chunks,
        "chunks read after the limit was passed"
    );
}

#[tokio::test]
async fn an_action_put_with_huge_parameters_is_413_before_they_are_parsed() {
    let config = ApiConfig {
        max_parameter_bytes: 1000,
        ..ApiConfig::default()
    };
    let h = Harness::with_config(config).await;
    // Valid entries, so that only the size can refuse them.
    let entry = r#"{"key":"k","value":[0,0,0,0,0,0,0,0]},"#;
    let params = format!("[{}{{\"key\":\"z\",\"value\":0}}]", entry.repeat(2000));
    for field in ["parameters", "annotations"] {
        let body = format!(r#"{{"exec":{{"kind":"nodejs:20","code":"x"}},"{field}":{params}}}"#);
        let r = h
            .raw(
                Method::PUT,
                &format!("{NS}/actions/a"),
                Some(&body),
                Some(GUEST_AUTH),
                &[],
            )
            .await;
        assert_error(
            &r,
            413,
            &format!(
                "{field} larger than allowed: {} > 1000 bytes.",
                params.len()
            ),
        );
    }
}

#[tokio::test]
async fn an_action_put_may_be_as_large_as_its_code_but_no_other_field_may() {
    let config = ApiConfig {
        max_parameter_bytes: 1000,
        ..ApiConfig::default()
    };
    let h = Harness::with_config(config).await;
    let code = format!("// {}\nfunction main(){{}}", "x".repeat(200_000));
    let r = h
        .put(
            &format!("{NS}/actions/big"),
            json!({"exec": {"kind": "nodejs:20", "code": code}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let components: Vec<String> = (0..20_000).map(|i| format!("/_/c{i}")).collect();
    let body = json!({"exec": {"kind": "sequence", "components": components}}).to_string();
    let rest = body.len();
    let r = h
        .raw(
            Method::PUT,
            &format!("{NS}/actions/seq"),
            Some(&body),
            Some(GUEST_AUTH),
            &[],
        )
        .await;
    assert_error(
        &r,
        413,
        &format!(
            "Request larger than allowed: {rest} > {} bytes.",
            2000 + ENVELOPE_BYTES
        ),
    );
}

#[tokio::test]
async fn a_large_malformed_action_put_is_400_without_a_full_parse() {
    let h = Harness::new().await;
    let body = format!("{{\"parameters\":[{}0", "0,".repeat(2_000_000));
    let r = h
        .raw(
            Method::PUT,
            &format!("{NS}/actions/bad"),
            Some(&body),
            Some(GUEST_AUTH),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let message = r.body["error"].as_str().unwrap();
    assert!(
        message.starts_with("The request content was malformed:"),
        "{message}"
    );
}
