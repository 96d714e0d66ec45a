//! The response side of a web action (OpenWhisk `WebActions.scala` transcoders): how a result
//! becomes an HTTP response for each extension.
//!
//! Every failure is a [`Refusal`]: a status and one of OpenWhisk's messages, which the caller
//! renders as the usual `{"error", "code"}` body.

use super::media::{MediaType, is_binary, is_json_family};
use super::request::Extension;
use crate::messages;
use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

/// Why a result could not be rendered: the status and message the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal(pub(crate) StatusCode, pub(crate) String);

fn bad(message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message.into())
}

/// Base64 as Java's decoder reads it: the standard alphabet, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn respond(status: StatusCode, content_type: Option<&str>, body: Body) -> Response {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    if let Some(ct) = content_type.and_then(|ct| HeaderValue::from_str(ct).ok()) {
        res.headers_mut().insert(CONTENT_TYPE, ct);
    }
    res
}

/// Renders `result` (the success result, or the `error` value of an application error) as
/// `extension` asks.
pub(crate) fn transcode(extension: Extension, result: Value) -> Result<Response, Refusal> {
    match extension {
        Extension::Json => match result {
            Value::Object(_) | Value::Array(_) => Ok(respond(
                StatusCode::OK,
                Some("application/json"),
                Body::from(result.to_string()),
            )),
            _ => Err(bad(messages::invalid_media("application/json"))),
        },
        Extension::Html => field_string(result, "html")
            .map(|s| respond(StatusCode::OK, Some("text/html; charset=UTF-8"), s.into()))
            .ok_or_else(|| bad(messages::invalid_media("text/html"))),
        Extension::Svg => field_string(result, "svg")
            .map(|s| respond(StatusCode::OK, Some("image/svg+xml"), s.into()))
            .ok_or_else(|| bad(messages::invalid_media("image/svg+xml"))),
        Extension::Text => text(result),
        Extension::Http => {
            http(result).unwrap_or_else(|| Err(bad(messages::invalid_media("message/http"))))
        }
    }
}

/// `body` (else `alt`) of an object, or the result itself, when it is a string.
fn field_string(result: Value, alt: &str) -> Option<String> {
    let v = match result {
        Value::Object(mut m) => m.remove("body").or_else(|| m.remove(alt))?,
        v => v,
    };
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn text(result: Value) -> Result<Response, Refusal> {
    let v = match result {
        Value::Object(mut m) => m.remove("body").or_else(|| m.remove("text")),
        v => Some(v),
    };
    let s = match v {
        None => {
            return Err(Refusal(
                StatusCode::NOT_FOUND,
                messages::PROPERTY_NOT_FOUND.to_owned(),
            ));
        }
        Some(Value::String(s)) => s,
        Some(v @ (Value::Object(_) | Value::Array(_))) => {
            serde_json::to_string_pretty(&v).unwrap_or_default()
        }
        Some(v) => v.to_string(),
    };
    Ok(respond(
        StatusCode::OK,
        Some("text/plain; charset=UTF-8"),
        s.into(),
    ))
}

/// `.http`: `None` when the result does not describe an HTTP response (the caller answers
/// "Response is not valid 'message/http'."); `Some(Err)` for a body that does not match its
/// declared content type.
fn http(result: Value) -> Option<Result<Response, Refusal>> {
    let Value::Object(mut fields) = result else {
        return None;
    };
    let mut headers = Vec::new();
    match fields.remove("headers") {
        None => {}
        Some(Value::Object(hs)) => {
            for (k, v) in hs {
                header_values(&k, &v, &mut headers)?;
            }
        }
        Some(_) => return None,
    }
    let code = match fields.remove("statusCode") {
        None => None,
        Some(Value::Number(n)) => Some(status(n.as_u64()?)?),
        Some(Value::String(s)) => Some(status(s.trim().parse().ok()?)?),
        Some(_) => return None,
    };
    let content_type = headers
        .iter()
        .find(|(k, _)| *k == CONTENT_TYPE)
        .map(|(_, v)| v.clone());
    headers.retain(|(k, _)| *k != CONTENT_TYPE);
    let result = match fields.remove("body") {
        Some(Value::String(s)) if !s.is_empty() => {
            string_body(code.unwrap_or(StatusCode::OK), content_type.as_ref(), s)
        }
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(respond(
            code.unwrap_or(StatusCode::NO_CONTENT),
            None,
            Body::empty(),
        )),
        Some(js) => json_body(code.unwrap_or(StatusCode::OK), content_type.as_ref(), &js),
    };
    Some(result.map(|mut res| {
        for (k, v) in headers {
            res.headers_mut().append(k, v);
        }
        res
    }))
}

fn status(code: u64) -> Option<StatusCode> {
    u16::try_from(code)
        .ok()
        .filter(|c| (100..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
}

/// A header value of a `.http` result: strings, numbers and booleans as text; arrays as
/// repeated headers; anything else makes the result invalid.
fn header_values(name: &str, v: &Value, out: &mut Vec<(HeaderName, HeaderValue)>) -> Option<()> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            for item in items {
                header_values(name, item, out)?;
            }
            return Some(());
        }
        _ => return None,
    };
    let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
    out.push((name, HeaderValue::from_str(&text).ok()?));
    Some(())
}

fn declared(content_type: Option<&HeaderValue>, default: &str) -> Result<MediaType, Refusal> {
    match content_type {
        None => MediaType::parse(default).ok_or_else(|| bad(messages::HTTP_UNKNOWN_CONTENT_TYPE)),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(MediaType::parse)
            .ok_or_else(|| bad(messages::HTTP_UNKNOWN_CONTENT_TYPE)),
    }
}

/// A string body: text as it is (`text/html` when no type is declared), binary types
/// base64-decoded, and JSON types decoded too when the string is base64 (legacy).
fn string_body(
    code: StatusCode,
    content_type: Option<&HeaderValue>,
    s: String,
) -> Result<Response, Refusal> {
    let mt = declared(content_type, "text/html")?;
    if is_binary(&mt) {
        let bytes = BASE64
            .decode(s.trim())
            .map_err(|_| bad(messages::HTTP_CONTENT_TYPE_ERROR))?;
        return Ok(respond(code, Some(&mt.render()), bytes.into()));
    }
    if is_json_family(&mt) {
        if let Ok(bytes) = BASE64.decode(s.trim()) {
            return Ok(respond(code, Some(&mt.render_text()), bytes.into()));
        }
    }
    Ok(respond(code, Some(&mt.render_text()), s.into()))
}

/// A JSON body that is not a string: `application/json` (compact) unless another JSON type is
/// declared (pretty); any other declared type is a 400.
fn json_body(
    code: StatusCode,
    content_type: Option<&HeaderValue>,
    js: &Value,
) -> Result<Response, Refusal> {
    let mt = declared(content_type, "application/json")
        .map_err(|_| bad(messages::HTTP_CONTENT_TYPE_ERROR))?;
    if mt.essence() == "application/json" {
        return Ok(respond(
            code,
            Some("application/json"),
            js.to_string().into(),
        ));
    }
    if is_json_family(&mt) {
        let body = serde_json::to_string_pretty(js).unwrap_or_default();
        return Ok(respond(code, Some(&mt.essence()), body.into()));
    }
    Err(bad(messages::HTTP_CONTENT_TYPE_ERROR))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use serde_json::json;

    async fn render(ext: Extension, v: Value) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let res = transcode(ext, v).unwrap();
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, body)
    }

    fn ct(h: &[(String, String)]) -> &str {
        h.iter()
            .find(|(k, _)| k == "content-type")
            .map_or("", |(_, v)| v.as_str())
    }

    #[tokio::test]
    async fn each_extension_sends_its_content_type() {
        let (s, h, b) = render(Extension::Json, json!({"a": 1})).await;
        assert_eq!(
            (s, ct(&h), b.as_slice()),
            (200, "application/json", &br#"{"a":1}"#[..])
        );
        let (_, h, b) = render(Extension::Html, json!({"body": "<p>x</p>"})).await;
        assert_eq!(
            (ct(&h), b.as_slice()),
            ("text/html; charset=UTF-8", &b"<p>x</p>"[..])
        );
        let (_, h, b) = render(Extension::Html, json!({"html": "<i/>"})).await;
        assert_eq!(
            (ct(&h), b.as_slice()),
            ("text/html; charset=UTF-8", &b"<i/>"[..])
        );
        let (_, h, b) = render(Extension::Svg, json!({"svg": "<svg/>"})).await;
        assert_eq!((ct(&h), b.as_slice()), ("image/svg+xml", &b"<svg/>"[..]));
        let (_, h, b) = render(Extension::Text, json!({"text": "hi"})).await;
        assert_eq!(
            (ct(&h), b.as_slice()),
            ("text/plain; charset=UTF-8", &b"hi"[..])
        );
        let (_, _, b) = render(Extension::Text, json!({"body": {"k": [1]}})).await;
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "{\n  \"k\": [\n    1\n  ]\n}"
        );
        let (_, _, b) = render(Extension::Text, json!({"body": 3})).await;
        assert_eq!(b, b"3");
    }

    #[tokio::test]
    async fn results_that_do_not_fit_the_extension_are_refused_with_openwhisk_text() {
        let cases = [
            (
                Extension::Json,
                json!("s"),
                400,
                "Response is not valid 'application/json'.",
            ),
            (
                Extension::Html,
                json!({"body": 1}),
                400,
                "Response is not valid 'text/html'.",
            ),
            (
                Extension::Svg,
                json!({}),
                400,
                "Response is not valid 'image/svg+xml'.",
            ),
            (
                Extension::Text,
                json!({"x": 1}),
                404,
                "Response does not include requested property.",
            ),
            (
                Extension::Http,
                json!([1]),
                400,
                "Response is not valid 'message/http'.",
            ),
            (
                Extension::Http,
                json!({"statusCode": "abc"}),
                400,
                "Response is not valid 'message/http'.",
            ),
            (
                Extension::Http,
                json!({"statusCode": 99}),
                400,
                "Response is not valid 'message/http'.",
            ),
            (
                Extension::Http,
                json!({"headers": {"a": {"b": 1}}}),
                400,
                "Response is not valid 'message/http'.",
            ),
            (
                Extension::Http,
                json!({"headers": []}),
                400,
                "Response is not valid 'message/http'.",
            ),
            (
                Extension::Http,
                json!({"headers": {"content-type": "image/png"}, "body": "!!not base64!!"}),
                400,
                "Response type in header did not match generated content type.",
            ),
            (
                Extension::Http,
                json!({"headers": {"content-type": "text/plain"}, "body": {"a": 1}}),
                400,
                "Response type in header did not match generated content type.",
            ),
            (
                Extension::Http,
                json!({"headers": {"content-type": "nonsense"}, "body": "x"}),
                400,
                "Response did not specify a known content-type.",
            ),
        ];
        for (ext, v, status, msg) in cases {
            let Refusal(s, m) = transcode(ext, v.clone()).unwrap_err();
            assert_eq!((s.as_u16(), m.as_str()), (status, msg), "{v}");
        }
    }

    #[tokio::test]
    async fn http_results_set_status_headers_and_decode_binary_bodies() {
        let (s, h, b) = render(
            Extension::Http,
            json!({
                "statusCode": 201,
                "headers": {"content-type": "image/png", "x-n": 5, "x-b": true, "set-cookie": ["a=1", "b=2"]},
                "body": "iVBORw0KGgo="
            }),
        )
        .await;
        assert_eq!(s, 201);
        assert_eq!(ct(&h), "image/png");
        assert_eq!(b, [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]);
        let get = |k: &str| -> Vec<&str> {
            h.iter()
                .filter(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("x-n"), ["5"]);
        assert_eq!(get("x-b"), ["true"]);
        assert_eq!(get("set-cookie"), ["a=1", "b=2"]);
    }

    #[tokio::test]
    async fn http_defaults_depend_on_the_body() {
        let (s, h, b) = render(Extension::Http, json!({"body": "<b>x</b>"})).await;
        assert_eq!(
            (s, ct(&h), b.as_slice()),
            (200, "text/html; charset=UTF-8", &b"<b>x</b>"[..])
        );
        let (s, h, b) = render(Extension::Http, json!({"body": {"a": [1]}})).await;
        assert_eq!(
            (s, ct(&h), b.as_slice()),
            (200, "application/json", &br#"{"a":[1]}"#[..])
        );
        let (s, h, b) = render(
            Extension::Http,
            json!({"headers": {"content-type": "text/plain"}}),
        )
        .await;
        assert_eq!((s, ct(&h), b.len()), (204, "", 0));
        let (s, _, _) = render(
            Extension::Http,
            json!({"statusCode": "302", "headers": {"location": "/x"}}),
        )
        .await;
        assert_eq!(s, 302);
        let (_, h, b) = render(
            Extension::Http,
            json!({"headers": {"content-type": "application/json"}, "body": "eyJhIjoxfQ=="}),
        )
        .await;
        assert_eq!(
            (ct(&h), b.as_slice()),
            ("application/json", &br#"{"a":1}"#[..])
        );
        let (_, h, b) = render(
            Extension::Http,
            json!({"headers": {"Content-Type": "application/ld+json"}, "body": {"a": 1}}),
        )
        .await;
        assert_eq!(
            (ct(&h), b.as_slice()),
            ("application/ld+json", &b"{\n  \"a\": 1\n}"[..])
        );
    }
}
