//! The request side of a web action (OpenWhisk `WebActions.scala` `Context`): which action and
//! extension the URL names, and the arguments built from the HTTP request.
//!
//! Pure functions over the parts of the request, so that every rule is tested without a
//! server.

use super::media::{MediaType, is_binary, is_json_family};
use crate::error::ApiError;
use crate::messages;
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine;
use serde_json::{Map, Value};

/// The `__ow_*` properties a request may not define.
pub(crate) const RESERVED: [&str; 6] = [
    "__ow_method",
    "__ow_headers",
    "__ow_path",
    "__ow_user",
    "__ow_query",
    "__ow_body",
];

/// How the response is rendered, chosen by the extension of the action segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extension {
    /// `.http` (also the default): the result describes the HTTP response.
    Http,
    /// `.json`: the result is the JSON body.
    Json,
    /// `.html`: `body` (or `html`) is the HTML page.
    Html,
    /// `.svg`: `body` (or `svg`) is the image.
    Svg,
    /// `.text`: `body` (or `text`) is plain text.
    Text,
}

const EXTENSIONS: [(&str, Extension); 5] = [
    (".http", Extension::Http),
    (".json", Extension::Json),
    (".html", Extension::Html),
    (".svg", Extension::Svg),
    (".text", Extension::Text),
];

/// What the path after `/api/v1/web/{ns}/{pkg}/` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WebPath {
    /// The action's name, without the extension.
    pub(crate) action: String,
    /// The response's rendering.
    pub(crate) extension: Extension,
    /// The rest of the path after the action segment (`/a/b`), or empty: `__ow_path`.
    pub(crate) extra: String,
}

impl WebPath {
    /// Splits `{action}[.{ext}][/{extra}]`; a known extension is split off, anything else is
    /// part of the name and the rendering is `.http`. An empty name is a 404.
    pub(crate) fn parse(rest: &str) -> Result<Self, ApiError> {
        let (segment, extra) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (action, extension) = EXTENSIONS
            .iter()
            .find_map(|(ext, e)| segment.strip_suffix(ext).map(|base| (base, *e)))
            .unwrap_or((segment, Extension::Http));
        if action.is_empty() {
            return Err(ApiError::NotFound);
        }
        Ok(Self {
            action: action.to_owned(),
            extension,
            extra: extra.to_owned(),
        })
    }
}

/// The request as the action sees it.
#[derive(Debug, Clone)]
pub(crate) struct WebRequest<'a> {
    /// The HTTP method, any case.
    pub(crate) method: &'a str,
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// `__ow_path`.
    pub(crate) path: &'a str,
    /// The raw query string (without `?`), empty when none.
    pub(crate) query: &'a str,
    /// The body bytes.
    pub(crate) body: &'a [u8],
    /// The namespace of the authenticated caller, if any (`__ow_user`).
    pub(crate) user: Option<&'a str>,
}

impl WebRequest<'_> {
    /// The request's media type; a body without one is `application/octet-stream`, as HTTP
    /// servers read it.
    fn media_type(&self) -> MediaType {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(MediaType::parse)
            .unwrap_or_else(|| MediaType::parse("application/octet-stream").unwrap_or_default())
    }

    /// The body as the action receives it: `None` when empty; a JSON value for JSON-family
    /// and form bodies (not raw); else a string, base64 for binary and JSON types.
    fn body_value(&self, raw: bool) -> Result<Option<Value>, ApiError> {
        if self.body.is_empty() {
            return Ok(None);
        }
        let mt = self.media_type();
        if !raw && is_json_family(&mt) {
            if self.body.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            return serde_json::from_slice(self.body)
                .map(Some)
                .map_err(|e| ApiError::BadRequest(messages::malformed_content(&e.to_string())));
        }
        if !raw && mt.essence() == "application/x-www-form-urlencoded" {
            let form = parse_form(&String::from_utf8_lossy(self.body));
            return Ok(Some(Value::Object(
                form.into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            )));
        }
        if is_binary(&mt) || mt.essence() == "application/json" {
            let encoded = base64::engine::general_purpose::STANDARD.encode(self.body);
            return Ok(Some(Value::String(encoded)));
        }
        Ok(Some(Value::String(
            String::from_utf8_lossy(self.body).into_owned(),
        )))
    }

    /// `__ow_method`, `__ow_headers`, `__ow_path` and `__ow_user` (when authenticated).
    fn metadata(&self) -> Map<String, Value> {
        let mut headers = Map::new();
        for (name, value) in self.headers {
            if name == CONTENT_LENGTH || is_platform_key(name, value) {
                continue;
            }
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers.insert(name.as_str().to_owned(), Value::String(value));
        }
        let mut m = Map::new();
        m.insert(
            "__ow_method".into(),
            Value::String(self.method.to_ascii_lowercase()),
        );
        m.insert("__ow_headers".into(), Value::Object(headers));
        m.insert("__ow_path".into(), Value::String(self.path.to_owned()));
        if let Some(user) = self.user {
            m.insert("__ow_user".into(), Value::String(user.to_owned()));
        }
        m
    }

    /// The action's arguments (before its own parameters are merged under them).
    ///
    /// Not raw: query parameters (strings), then the body's properties when it is a JSON
    /// object or a form, else the body as `__ow_body`; a query or body key that is reserved
    /// or in `protected` (the parameters a `final` action fixes) is a 400. Raw: the query
    /// string as `__ow_query` and the body as `__ow_body` (`""` when empty).
    pub(crate) fn arguments(
        &self,
        raw: bool,
        protected: &[&str],
    ) -> Result<Map<String, Value>, ApiError> {
        let body = self.body_value(raw)?;
        let mut args = self.metadata();
        if raw {
            args.insert("__ow_query".into(), Value::String(self.query.to_owned()));
            args.insert(
                "__ow_body".into(),
                body.unwrap_or_else(|| Value::String(String::new())),
            );
            return Ok(args);
        }
        let query = parse_form(self.query);
        let body_keys = match &body {
            Some(Value::Object(m)) => m.keys().map(String::as_str).collect(),
            _ => Vec::new(),
        };
        let overrides = query
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(body_keys)
            .any(|k| RESERVED.contains(&k) || protected.contains(&k));
        if overrides {
            return Err(ApiError::BadRequest(
                messages::PARAMETERS_NOT_ALLOWED.to_owned(),
            ));
        }
        for (k, v) in query {
            args.insert(k, Value::String(v));
        }
        match body {
            Some(Value::Object(m)) => args.extend(m),
            Some(v) => {
                args.insert("__ow_body".into(), v);
            }
            None => {}
        }
        Ok(args)
    }
}

/// Whether the header is an `Authorization` carrying an edgewhisk key (Basic credentials of
/// a UUID and a 64-character secret), valid or not, of whichever namespace. Such a header is
/// left out of `__ow_headers`: the action belongs to its owner, and the caller's key must not
/// reach it. Other schemes (a bearer token for the action's own authentication) pass through.
fn is_platform_key(name: &HeaderName, value: &HeaderValue) -> bool {
    name == AUTHORIZATION
        && value
            .to_str()
            .is_ok_and(|v| crate::auth::parse_basic(v).is_ok())
}

/// `application/x-www-form-urlencoded` pairs (also a query string), in order.
pub(crate) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn headers(ct: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("X-Custom", HeaderValue::from_static("v"));
        h.insert(CONTENT_LENGTH, HeaderValue::from_static("3"));
        if let Some(ct) = ct {
            h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        h
    }

    fn req<'a>(h: &'a HeaderMap, query: &'a str, body: &'a [u8]) -> WebRequest<'a> {
        WebRequest {
            method: "POST",
            headers: h,
            path: "/x/y",
            query,
            body,
            user: None,
        }
    }

    #[test]
    fn known_extensions_are_split_off_and_the_default_is_http() {
        let p = WebPath::parse("hello.json/a/b").unwrap();
        assert_eq!(
            (p.action.as_str(), p.extension, p.extra.as_str()),
            ("hello", Extension::Json, "/a/b")
        );
        let p = WebPath::parse("hello").unwrap();
        assert_eq!((p.extension, p.extra.as_str()), (Extension::Http, ""));
        let p = WebPath::parse("hello.xml").unwrap();
        assert_eq!(
            (p.action.as_str(), p.extension),
            ("hello.xml", Extension::Http)
        );
        for (s, e) in [
            ("a.html", Extension::Html),
            ("a.svg", Extension::Svg),
            ("a.text", Extension::Text),
            ("a.http", Extension::Http),
        ] {
            assert_eq!(WebPath::parse(s).unwrap().extension, e);
        }
        assert!(WebPath::parse(".json").is_err());
    }

    #[test]
    fn query_and_json_body_merge_with_the_context_properties() {
        let h = headers(Some("application/json"));
        let args = req(&h, "a=1&b=x%20y", br#"{"b": 2, "c": [1]}"#)
            .arguments(false, &[])
            .unwrap();
        assert_eq!(args["a"], json!("1"));
        assert_eq!(args["b"], json!(2));
        assert_eq!(args["c"], json!([1]));
        assert_eq!(args["__ow_method"], json!("post"));
        assert_eq!(args["__ow_path"], json!("/x/y"));
        assert_eq!(
            args["__ow_headers"],
            json!({"x-custom": "v", "content-type": "application/json"})
        );
        assert!(args.get("__ow_user").is_none());
        assert!(args.get("__ow_body").is_none());
    }

    #[test]
    fn a_platform_key_is_left_out_of_ow_headers_and_other_schemes_pass() {
        use base64::Engine;
        let key = edgewhisk_entity::identity::GUEST_AUTH;
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(key)
        );
        for (auth, kept) in [(basic.as_str(), false), ("Bearer abc", true)] {
            let mut h = headers(None);
            h.insert(AUTHORIZATION, auth.parse().unwrap());
            let args = req(&h, "", b"").arguments(false, &[]).unwrap();
            assert_eq!(
                args["__ow_headers"].get("authorization").is_some(),
                kept,
                "{auth}"
            );
        }
    }

    #[test]
    fn the_authenticated_namespace_is_passed_as_ow_user() {
        let h = headers(None);
        let mut r = req(&h, "", b"");
        r.user = Some("guest");
        assert_eq!(
            r.arguments(false, &[]).unwrap()["__ow_user"],
            json!("guest")
        );
    }

    #[test]
    fn bodies_that_are_not_objects_go_in_ow_body_by_media_type() {
        let cases: [(&str, &[u8], Value); 5] = [
            ("application/json", b"[1,2]", json!([1, 2])),
            ("text/plain", b"hello", json!("hello")),
            ("image/png", &[0, 1, 2], json!("AAEC")),
            (
                "application/x-www-form-urlencoded",
                b"k=v+w&z=%41",
                json!(null),
            ),
            ("application/xml", b"<a/>", json!("<a/>")),
        ];
        for (ct, body, expected) in cases {
            let h = headers(Some(ct));
            let args = req(&h, "", body).arguments(false, &[]).unwrap();
            if expected.is_null() {
                assert_eq!(
                    (args["k"].clone(), args["z"].clone()),
                    (json!("v w"), json!("A"))
                );
            } else {
                assert_eq!(args["__ow_body"], expected, "{ct}");
            }
        }
        let h = headers(Some("application/json"));
        assert!(req(&h, "", b"{").arguments(false, &[]).is_err());
    }

    #[test]
    fn reserved_and_final_keys_in_query_or_body_are_refused() {
        let h = headers(Some("application/json"));
        let cases: [(&str, &[u8], &[&str]); 4] = [
            ("__ow_method=get", b"", &[]),
            ("", br#"{"__ow_path": "/"}"#, &[]),
            ("fixed=1", b"", &["fixed"]),
            ("", br#"{"fixed": 2}"#, &["fixed"]),
        ];
        for (q, body, protected) in cases {
            let err = req(&h, q, body).arguments(false, protected).unwrap_err();
            assert_eq!(err.message(), messages::PARAMETERS_NOT_ALLOWED);
        }
        assert!(
            req(&h, "other=1", br#"{"x": 1}"#)
                .arguments(false, &["fixed"])
                .is_ok()
        );
    }

    #[test]
    fn raw_actions_get_the_query_string_and_the_body_unparsed() {
        let h = headers(Some("application/json"));
        let args = req(&h, "a=1&__ow_method=x", br#"{"a":1}"#)
            .arguments(true, &["a"])
            .unwrap();
        assert_eq!(args["__ow_query"], json!("a=1&__ow_method=x"));
        assert_eq!(args["__ow_body"], json!("eyJhIjoxfQ=="));
        assert_eq!(args["__ow_method"], json!("post"));
        assert!(args.get("a").is_none());
        let h = headers(Some("text/plain"));
        let args = req(&h, "", b"").arguments(true, &[]).unwrap();
        assert_eq!(
            (args["__ow_query"].clone(), args["__ow_body"].clone()),
            (json!(""), json!(""))
        );
        let args = req(&h, "", b"plain").arguments(true, &[]).unwrap();
        assert_eq!(args["__ow_body"], json!("plain"));
    }

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(
            parse_form("a=%zz&b=%2&c=%e2%82%ac"),
            vec![
                ("a".into(), "%zz".into()),
                ("b".into(), "%2".into()),
                ("c".into(), "€".into())
            ]
        );
    }
}
