//! `ApiError`, the one error type of the REST handlers, and the extractors whose rejections go
//! through it, so that every failure reaches the client as OpenWhisk's
//! `{"error": "...", "code": "<transaction id>"}`.
//!
//! A handler cannot see the transaction id when it turns an error into a response, so
//! [`ApiError`] leaves an [`ErrorBody`] extension on an empty response and the transaction
//! middleware (`api::transaction`) writes the JSON body with the id. The same middleware wraps
//! axum's own empty 404/405 responses.

use crate::loadbalancer::LoadBalancerError;
use crate::messages;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_LENGTH, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use edgewhisk_store::StoreError;
use serde::de::DeserializeOwned;

/// Why a request failed; each variant maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with an OpenWhisk message.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401; the text is Pekko's (missing or rejected credentials).
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 403 for a resource the caller is not entitled to.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// 404.
    #[error("resource does not exist")]
    NotFound,
    /// 409 with one of OpenWhisk's conflict messages.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// 413 for a request or field over its size limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// 429 over a throttle.
    #[error("throttled: {0}")]
    TooManyRequests(String),
    /// 503: the load balancer refused the activation.
    #[error("load balancer: {0}")]
    Unavailable(#[from] LoadBalancerError),
    /// 500: the store failed; logged, never shown. 507 when it failed for lack of disk space
    /// ([`StoreError::Full`]), and 503 when it cannot reach its database
    /// ([`StoreError::Unavailable`]), each with a message that says so.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// 500: a stored document did not decode as its type; logged, never shown.
    #[error("corrupt entity {path}/{name}: {source}")]
    CorruptEntity {
        /// The entity's path.
        path: String,
        /// The entity's name.
        name: String,
        /// The decoding error.
        source: serde_json::Error,
    },
}

/// The message of an error response; the transaction middleware renders it with the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody(pub String);

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::Full) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) | ApiError::CorruptEntity { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The text the client sees.
    pub fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::Forbidden(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::TooManyRequests(m) => m.clone(),
            ApiError::Unauthorized(m) | ApiError::Conflict(m) => (*m).to_owned(),
            ApiError::NotFound => messages::RESOURCE_DOES_NOT_EXIST.to_owned(),
            ApiError::Unavailable(LoadBalancerError::NoInvokers) => {
                messages::NO_INVOKERS_AVAILABLE.to_owned()
            }
            ApiError::Unavailable(e @ LoadBalancerError::MessageTooLarge { .. }) => e.to_string(),
            ApiError::Unavailable(_) => messages::SERVICE_UNAVAILABLE.to_owned(),
            ApiError::Store(StoreError::Full) => messages::STORE_FULL.to_owned(),
            ApiError::Store(StoreError::Unavailable(_)) => messages::STORE_UNAVAILABLE.to_owned(),
            ApiError::Store(_) | ApiError::CorruptEntity { .. } => {
                messages::INTERNAL_SERVER_ERROR.to_owned()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut res = status.into_response();
        if matches!(self, ApiError::Unauthorized(_)) {
            res.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(messages::AUTH_CHALLENGE),
            );
        }
        res.extensions_mut().insert(ErrorBody(self.message()));
        res
    }
}

/// The declared `Content-Length`, if any.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Reads a body of at most `limit` bytes; larger → 413 "Request larger than allowed".
///
/// A declared `Content-Length` over the limit is refused before a byte of the body is read;
/// a body without one is refused as soon as the bytes streamed in pass the limit, so a client
/// never makes the server hold more than `limit` bytes for it.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> Result<Bytes, ApiError> {
    let too_large = |is: u64| payload_too_large(is, limit);
    let declared = content_length(headers);
    if let Some(len) = declared.filter(|len| *len > limit) {
        return Err(too_large(len));
    }
    let max = usize::try_from(limit).unwrap_or(usize::MAX);
    // Reserving the declared length (already known to be within the limit) lets the chunks be
    // copied once into one buffer; collecting them first and joining after would hold the body
    // twice at the peak.
    let reserve = declared
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(0)
        .min(max);
    let mut buf = Vec::with_capacity(reserve);
    let mut body = body;
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        let frame =
            frame.map_err(|e| ApiError::BadRequest(messages::malformed_content(&e.to_string())))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        let total = buf.len().saturating_add(chunk.len());
        if total > max {
            return Err(too_large(u64::try_from(total).unwrap_or(u64::MAX)));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// 413 "Request larger than allowed" for a payload of `is` bytes over `limit`.
pub(crate) fn payload_too_large(is: u64, limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(messages::entity_too_big("Request", is, limit))
}

/// True when a body is empty or only whitespace (read as `{}`, as OpenWhisk does).
pub(crate) fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// Room for the JSON around an entity's sized fields: names, kinds, limits, flags, and the
/// wrapping of each parameter. Small, because nothing in it is meant to be large.
pub const ENVELOPE_BYTES: u64 = 64 * 1024;

/// A JSON request body type and how large it may be, so that every route reads its body with
/// its own cap and no route parses more than its entity can hold.
///
/// The cap bounds what parsing can cost: a JSON tree takes many times the bytes of its text,
/// so the text of everything that becomes a tree (parameters, annotations, sequence
/// components) is held to `2 × max_parameter_bytes + ENVELOPE_BYTES` on every route. Only
/// an action's code, one string that costs its own length, may be larger.
pub trait JsonBody: DeserializeOwned {
    /// The largest body of this type, bytes; a larger one is refused with 413 before it is
    /// read.
    fn body_limit(state: &AppState) -> u64;

    /// Checks on the body's text before it is parsed into a tree; 413 naming the field that is
    /// too large. Nothing to check by default.
    fn check_raw(_body: &[u8], _state: &AppState) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The cap of an entity body without code: both parameter-like fields and the envelope.
fn entity_limit(state: &AppState) -> u64 {
    state
        .config()
        .max_parameter_bytes
        .saturating_mul(2)
        .saturating_add(ENVELOPE_BYTES)
}

impl JsonBody for edgewhisk_entity::ActionPut {
    /// Code plus parameters plus annotations plus the envelope.
    fn body_limit(state: &AppState) -> u64 {
        state.entity_body_limit()
    }

    /// Holds everything but the code to what any other entity may send, so that a body as
    /// large as the code limit cannot become a tree of parameters.
    fn check_raw(body: &[u8], state: &AppState) -> Result<(), ApiError> {
        check_action_text(
            body,
            state.config().max_parameter_bytes,
            entity_limit(state),
        )
    }
}

impl JsonBody for edgewhisk_entity::PackagePut {
    fn body_limit(state: &AppState) -> u64 {
        entity_limit(state)
    }
}

impl JsonBody for edgewhisk_entity::TriggerPut {
    fn body_limit(state: &AppState) -> u64 {
        entity_limit(state)
    }
}

impl JsonBody for edgewhisk_entity::RulePut {
    fn body_limit(state: &AppState) -> u64 {
        entity_limit(state)
    }
}

/// A free-form body such as a rule's `{"status": "active"}`: only the envelope.
impl JsonBody for serde_json::Value {
    fn body_limit(_state: &AppState) -> u64 {
        ENVELOPE_BYTES
    }
}

/// The top level of an action PUT as borrowed JSON text: nothing is allocated per element.
/// Named as the real type so that a body of the wrong shape gets the same message here.
#[derive(serde::Deserialize)]
#[serde(rename = "ActionPut")]
struct ActionText<'a> {
    #[serde(borrow, default)]
    exec: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    parameters: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    annotations: Option<&'a serde_json::value::RawValue>,
}

/// The code of an action's `exec`, as borrowed JSON text.
#[derive(serde::Deserialize)]
struct ExecText<'a> {
    #[serde(borrow, default)]
    code: Option<&'a serde_json::value::RawValue>,
}

/// The action PUT checks of [`JsonBody::check_raw`]: `parameters` or `annotations` whose
/// text alone is over `rest_limit` are 413 naming the field; then everything but the code over
/// `rest_limit` is 413 for the request. The text is allowed more than `max_parameter_bytes`
/// because the exact OpenWhisk size, keys plus compact values, is checked after parsing, and
/// the text also holds each entry's `{"key":…,"value":…}` and any whitespace.
fn check_action_text(
    body: &[u8],
    max_parameter_bytes: u64,
    rest_limit: u64,
) -> Result<(), ApiError> {
    let len = |raw: Option<&serde_json::value::RawValue>| {
        raw.map_or(0, |r| u64::try_from(r.get().len()).unwrap_or(u64::MAX))
    };
    let text: ActionText<'_> = match serde_json::from_slice(body) {
        Ok(text) => text,
        // Malformed text is reported by the real parse, unless the body is large enough for
        // that parse to build a large tree before it reaches the fault.
        Err(_) if len_u64(body.len()) <= rest_limit => return Ok(()),
        Err(e) => {
            return Err(ApiError::BadRequest(messages::malformed_content(
                &e.to_string(),
            )));
        }
    };
    for (field, raw) in [
        ("parameters", text.parameters),
        ("annotations", text.annotations),
    ] {
        let is = len(raw);
        if is > rest_limit {
            return Err(ApiError::PayloadTooLarge(messages::entity_too_big(
                field,
                is,
                max_parameter_bytes,
            )));
        }
    }
    // Only code that is a JSON string is set aside: a string costs its length when parsed.
    let code = text
        .exec
        .and_then(|e| serde_json::from_str::<ExecText<'_>>(e.get()).ok())
        .and_then(|e| e.code)
        .filter(|c| c.get().starts_with('"'));
    let rest = len_u64(body.len()).saturating_sub(len(code));
    if rest > rest_limit {
        return Err(ApiError::PayloadTooLarge(messages::entity_too_big(
            "Request", rest, rest_limit,
        )));
    }
    Ok(())
}

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// A JSON request body: empty means `{}`; malformed JSON or wrong field types are a 400 in
/// OpenWhisk's shape; a body over its route's limit ([`JsonBody`]) is a 413, refused before
/// it is read in full.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: JsonBody> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.headers, body, T::body_limit(state)).await?;
        let slice: &[u8] = if is_blank(&bytes) { b"{}" } else { &bytes };
        T::check_raw(slice, state)?;
        serde_json::from_slice(slice)
            .map(ApiJson)
            .map_err(|e| ApiError::BadRequest(messages::malformed_content(&e.to_string())))
    }
}

/// The transaction id of the request (`X-Request-ID`), set by the transaction middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionId(pub String);

impl TransactionId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TransactionId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<TransactionId>()
            .cloned()
            .unwrap_or_else(TransactionId::generate))
    }
}

/// Query parameters as sent, in order; handlers parse the ones they know with OpenWhisk's
/// messages, and ignore the rest as OpenWhisk does.
#[derive(Debug, Clone, Default)]
pub struct ApiQuery(pub Vec<(String, String)>);

impl ApiQuery {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (Pekko's accepted spellings), `default` when absent.
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_bool(v).ok_or_else(|| {
                ApiError::BadRequest(messages::malformed_query_param(
                    name,
                    &messages::not_a_boolean(v),
                ))
            }),
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(pairs) =
            axum::extract::Query::<Vec<(String, String)>>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        Ok(ApiQuery(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_its_openwhisk_status_and_text() {
        let cases = [
            (ApiError::NotFound, 404, messages::RESOURCE_DOES_NOT_EXIST),
            (
                ApiError::Conflict(messages::RESOURCE_ALREADY_EXISTS),
                409,
                "resource already exists",
            ),
            (
                ApiError::Unavailable(LoadBalancerError::Unavailable),
                503,
                messages::SERVICE_UNAVAILABLE,
            ),
            (
                ApiError::Unavailable(LoadBalancerError::NoInvokers),
                503,
                messages::NO_INVOKERS_AVAILABLE,
            ),
            (
                ApiError::Store(StoreError::Closed),
                500,
                "Internal Server Error",
            ),
            (ApiError::Store(StoreError::Full), 507, messages::STORE_FULL),
            (
                ApiError::Store(StoreError::Unavailable("connection refused".into())),
                503,
                messages::STORE_UNAVAILABLE,
            ),
        ];
        for (err, status, text) in cases {
            assert_eq!(err.status().as_u16(), status);
            assert_eq!(err.message(), text);
        }
    }

    #[test]
    fn unauthorized_response_carries_the_basic_challenge_and_error_body() {
        let res = ApiError::Unauthorized(messages::CREDENTIALS_MISSING).into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()[WWW_AUTHENTICATE],
            "Basic realm=\"OpenWhisk secure realm\""
        );
        assert_eq!(
            res.extensions().get::<ErrorBody>(),
            Some(&ErrorBody(messages::CREDENTIALS_MISSING.into()))
        );
    }

    #[test]
    fn booleans_accept_pekko_spellings_only() {
        let q = ApiQuery(vec![
            ("a".into(), "TRUE".into()),
            ("b".into(), "off".into()),
            ("c".into(), "maybe".into()),
        ]);
        assert!(q.bool("a", false).unwrap());
        assert!(!q.bool("b", true).unwrap());
        assert!(q.bool("missing", true).unwrap());
        assert_eq!(
            q.bool("c", false).unwrap_err().message(),
            "The query parameter 'c' was malformed:\n'maybe' is not a valid Boolean value"
        );
    }
}
