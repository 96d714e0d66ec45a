//! `ApiError`, the one error type of the REST handlers, and the extractors whose rejections go
//! through it, so that every failure reaches the client as OpenWhisk's
//! `{"error": "...", "code": "<transaction id>"}`.
//!
//! A handler cannot see the transaction id when it turns an error into a response, so
//! [`ApiError`] leaves an [`ErrorBody`] extension on an empty response and the transaction
//! middleware (`api::transaction`) writes the JSON body with the id. The same middleware wraps
//! axum's own empty 404/405 responses.

use crate::AppState;
use crate::loadbalancer::LoadBalancerError;
use crate::messages;
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
    /// ([`StoreError::Full`]), with a message that says so.
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
            ApiError::Unavailable(_) => messages::SERVICE_UNAVAILABLE.to_owned(),
            ApiError::Store(StoreError::Full) => messages::STORE_FULL.to_owned(),
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
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: u64,
) -> Result<Bytes, ApiError> {
    let too_large =
        |is: u64| ApiError::PayloadTooLarge(messages::entity_too_big("Request", is, limit));
    if let Some(len) = content_length(headers).filter(|len| *len > limit) {
        return Err(too_large(len));
    }
    let max = usize::try_from(limit).unwrap_or(usize::MAX);
    match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, max)).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large(
            content_length(headers).unwrap_or(limit.saturating_add(1)),
        )),
        Err(e) => Err(ApiError::BadRequest(messages::malformed_content(
            &e.to_string(),
        ))),
    }
}

/// True when a body is empty or only whitespace (read as `{}`, as OpenWhisk does).
pub(crate) fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// A JSON request body: empty means `{}`; malformed JSON or wrong field types are a 400 in
/// OpenWhisk's shape; a body over the entity limit is a 413.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.entity_body_limit();
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.headers, body, limit).await?;
        let slice: &[u8] = if is_blank(&bytes) { b"{}" } else { &bytes };
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
                ApiError::Store(StoreError::Closed),
                500,
                "Internal Server Error",
            ),
            (ApiError::Store(StoreError::Full), 507, messages::STORE_FULL),
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
