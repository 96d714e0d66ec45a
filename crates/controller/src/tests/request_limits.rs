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
        let r = h.text(Method::PUT, &uri, &body).await;
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
    let r = h.text(Method::POST, &format!("{NS}/rules/r"), &body).await;
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
        let r = h.text(Method::PUT, &format!("{NS}/actions/a"), &body).await;
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
        .text(Method::PUT, &format!("{NS}/actions/seq"), &body)
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
        .text(Method::PUT, &format!("{NS}/actions/bad"), &body)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let message = r.body["error"].as_str().unwrap();
    assert!(
        message.starts_with("The request content was malformed:"),
        "{message}"
    );
}

/// Property tests of the parsers that take outside input: whatever a client sends as a name,
/// a path, a query or a body, the answer is a value or OpenWhisk's documented 4xx, never a
/// panic or a 500.
mod parsers {
    use super::*;
    use crate::api::ListParams;
    use crate::api::actions::ActionRef;
    use crate::error::ApiQuery;
    use edgewhisk_entity::names::{MAX_NAME_LENGTH, validate_name};
    use proptest::prelude::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// OpenWhisk's name pattern, written out independently of `validate_name`.
    fn name_model(s: &str) -> bool {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let len = s.chars().count();
        (1..=MAX_NAME_LENGTH).contains(&len)
            && s.chars().next().is_some_and(word)
            && !s.ends_with(' ')
            && s.chars()
                .all(|c| word(c) || matches!(c, '@' | ' ' | '.' | '&' | '-'))
    }

    /// Names that are mostly legal, to reach both answers often.
    fn near_names() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9_@ .&/%é-]{0,12}",
            "[a-z_][a-z0-9_@ .&-]{250,260}",
            any::<String>(),
        ]
    }

    /// Any JSON value, nested a few levels.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("exec".to_owned()),
                        Just("parameters".to_owned()),
                        Just("annotations".to_owned()),
                        Just("limits".to_owned()),
                        Just("kind".to_owned()),
                        Just("code".to_owned()),
                        Just("key".to_owned()),
                        Just("value".to_owned()),
                        Just("status".to_owned()),
                        ".{0,6}",
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Bodies: arbitrary bytes, arbitrary JSON, and JSON cut short or with a byte changed.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            json_value().prop_map(|v| v.to_string().into_bytes()),
            (json_value(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(v, i, b)| {
                let mut bytes = v.to_string().into_bytes();
                let at = i.index(bytes.len());
                bytes[at] = b;
                bytes
            }),
            (json_value(), any::<prop::sample::Index>()).prop_map(|(v, i)| {
                let bytes = v.to_string().into_bytes();
                let at = i.index(bytes.len());
                bytes[..at].to_vec()
            }),
        ]
    }

    /// An error answer is OpenWhisk's `{"error", "code"}` with a 4xx status.
    fn check_client_error(r: &Resp, allowed: &[u16]) -> Result<(), TestCaseError> {
        let status = r.status.as_u16();
        prop_assert!(
            allowed.contains(&status),
            "status {} body {}",
            status,
            r.body
        );
        if status >= 400 {
            prop_assert!(r.body["error"].is_string(), "{}", r.body);
            prop_assert!(r.body["code"].is_string(), "{}", r.body);
        }
        Ok(())
    }

    async fn send_bytes(h: &Harness, method: Method, uri: &str, body: Vec<u8>) -> Resp {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", basic(GUEST_AUTH))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        h.send(req).await
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn entity_names_are_accepted_exactly_by_the_openwhisk_pattern(s in near_names()) {
            let got = validate_name("name", &s);
            prop_assert_eq!(got.is_ok(), name_model(&s), "{:?}: {:?}", s, got);
            if let Err(e) = got {
                let text = e.to_string();
                prop_assert!(
                    text == "The name of the entity contains illegal characters."
                        || text.starts_with("name longer than allowed: "),
                    "{}", text
                );
            }
        }

        #[test]
        fn action_paths_parse_to_valid_names_or_answer_400_or_404(rest in near_names()) {
            match ActionRef::parse(&rest) {
                Ok(ActionRef::Package(pkg)) => {
                    prop_assert!(name_model(&pkg));
                    prop_assert_eq!(format!("{pkg}/"), rest);
                }
                Ok(ActionRef::Action { package, name }) => {
                    prop_assert!(name_model(&name));
                    prop_assert!(package.as_deref().is_none_or(name_model));
                    let joined = match package {
                        Some(p) => format!("{p}/{name}"),
                        None => name,
                    };
                    prop_assert_eq!(joined, rest);
                }
                Err(e) => prop_assert!(
                    matches!(e.status().as_u16(), 400 | 404),
                    "{:?} for {:?}", e, rest
                ),
            }
        }

        #[test]
        fn list_parameters_are_in_range_or_a_400_naming_the_parameter(
            limit in prop::option::of(prop_oneof!["-?[0-9]{1,22}", ".{0,6}"]),
            skip in prop::option::of(prop_oneof!["-?[0-9]{1,22}", ".{0,6}"]),
            count in prop::option::of(prop_oneof!["true|false|yes|no|on|off|1|0", ".{0,6}"]),
        ) {
            let mut pairs = Vec::new();
            for (k, v) in [("limit", limit), ("skip", skip), ("count", count)] {
                if let Some(v) = v {
                    pairs.push((k.to_owned(), v));
                }
            }
            let config = ApiConfig::default();
            match ListParams::parse(&ApiQuery(pairs), "actions", &config) {
                Ok(p) => prop_assert!(p.limit >= 1 && p.limit <= config.list_max_limit),
                Err(e) => {
                    prop_assert_eq!(e.status().as_u16(), 400);
                    prop_assert!(e.message().starts_with("The query parameter '"), "{}", e.message());
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn any_query_string_on_a_list_route_is_200_or_400(query in ".{0,40}") {
            let encoded: String = query
                .bytes()
                .map(|b| if b.is_ascii_alphanumeric() || b"=&-_.".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                })
                .collect();
            runtime().block_on(async {
                let h = Harness::new().await;
                for route in ["actions", "activations", "triggers", "rules", "packages"] {
                    let r = h.get(&format!("{NS}/{route}?{encoded}")).await;
                    check_client_error(&r, &[200, 400])?;
                }
                Ok::<(), TestCaseError>(())
            })?;
        }

        #[test]
        fn any_entity_path_is_an_answer_or_a_4xx_never_a_500(
            segments in prop::collection::vec(near_names(), 1..4),
            collection in prop::sample::select(vec!["actions", "triggers", "rules", "packages", "activations"]),
        ) {
            let path: Vec<String> = segments
                .iter()
                .map(|seg| {
                    seg.bytes()
                        .map(|b| if b.is_ascii_alphanumeric() || b"-_.@&".contains(&b) {
                            char::from(b).to_string()
                        } else {
                            format!("%{b:02X}")
                        })
                        .collect()
                })
                .collect();
            let uri = format!("{NS}/{collection}/{}", path.join("/"));
            runtime().block_on(async {
                let h = Harness::new().await;
                for method in [Method::GET, Method::DELETE] {
                    let r = h.call(method, &uri, None).await;
                    check_client_error(&r, &[200, 400, 404, 405, 409])?;
                }
                let r = h.put(&uri, json!({})).await;
                check_client_error(&r, &[200, 400, 404, 405, 409])?;
                Ok::<(), TestCaseError>(())
            })?;
        }

        #[test]
        fn any_body_to_an_entity_route_is_an_answer_or_a_4xx_never_a_500(body in body()) {
            runtime().block_on(async {
                let h = Harness::new().await;
                let puts = [
                    (Method::PUT, format!("{NS}/actions/a?overwrite=true")),
                    (Method::PUT, format!("{NS}/triggers/t?overwrite=true")),
                    (Method::PUT, format!("{NS}/packages/p?overwrite=true")),
                    (Method::PUT, format!("{NS}/rules/r?overwrite=true")),
                    (Method::POST, format!("{NS}/rules/r")),
                ];
                for (method, uri) in puts {
                    let r = send_bytes(&h, method, &uri, body.clone()).await;
                    check_client_error(&r, &[200, 400, 404, 409, 413])?;
                }
                Ok::<(), TestCaseError>(())
            })?;
        }

        #[test]
        fn any_invoke_body_runs_as_one_object_or_is_a_400(body in body(), defaults in any::<bool>()) {
            runtime().block_on(async {
                let h = Harness::new().await;
                let extra = if defaults {
                    json!({"parameters": [{"key": "d", "value": 1}]})
                } else {
                    json!({})
                };
                assert_eq!(h.create("a", extra).await.status, StatusCode::OK);
                let r = send_bytes(
                    &h,
                    Method::POST,
                    &format!("{NS}/actions/a?blocking=true"),
                    body.clone(),
                )
                .await;
                check_client_error(&r, &[200, 400])?;
                if r.status == StatusCode::OK {
                    // What reached the balancer is one JSON object.
                    let content = h.balancer.last().content;
                    let parsed: Value =
                        serde_json::from_str(content.get()).expect("content is JSON");
                    prop_assert!(parsed.is_object(), "{}", parsed);
                } else {
                    let message = r.body["error"].as_str().unwrap_or_default();
                    prop_assert!(
                        message.starts_with("The request content was malformed"),
                        "{}", message
                    );
                }
                Ok::<(), TestCaseError>(())
            })?;
        }
    }
}
