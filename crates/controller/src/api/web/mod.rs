//! Web actions: `/api/v1/web/{namespace}/{package|default}/{action}[.{ext}][/{extra}]`
//! (OpenWhisk `controller/WebActions.scala`, `docs/webactions.md`).
//!
//! Anybody may call an action its owner exported with the annotation `web-export: true`; the
//! activation runs as, and is stored under, the owner of the namespace, with the owner's
//! throttles. The HTTP request becomes the arguments (module `request`) and the result
//! becomes the HTTP response, as the extension asks (module `response`).
//!
//! The life of one web request, step by step, with its answers, is drawn in
//! `docs/design/012-web-actions.md`; the activation itself goes through
//! [`activation::activate`](crate::activation::activate) as the owner, blocking up to the
//! configured wait.
//!
//! Known caveats: the owner's key is not passed to the action (`__OW_API_KEY`), because keys
//! are stored hashed; Basic credentials that are not valid make the caller anonymous rather
//! than refusing the request, so that actions can use the `Authorization` header for their
//! own schemes. An `Authorization` header that carries an edgewhisk key (valid or not) is
//! left out of `__ow_headers`: the caller's key must not reach the owner's code.

mod media;
mod request;
mod response;

use crate::activation::{ActivationRequest, Input, Outcome, activate};
use crate::api::render::with_id;
use crate::auth::Caller;
use crate::entities::{Target, load_action};
use crate::entitlement::{self, PackageContext};
use crate::error::{ApiError, ErrorBody, TransactionId, content_length, read_body};
use crate::messages;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::header::ALLOW;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use edgewhisk_entity::identity::constant_time_eq;
use edgewhisk_entity::names::validate_name;
use edgewhisk_entity::{Action, Activation, Identity, Parameters, Status};
use request::{WebPath, WebRequest};
use serde_json::Value;
use std::time::Duration;

/// Marks a response rendered from an action's result, so that the transaction middleware
/// leaves its status and body as the action chose them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionResponse;

/// The header `require-whisk-auth` secrets are compared with.
const REQUIRE_WHISK_AUTH: HeaderName = HeaderName::from_static("x-require-whisk-auth");

const ALLOWED_METHODS: &str = "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH";

const DEFAULT_ALLOW_HEADERS: &str =
    "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent";

/// Any method on `/api/v1/web/{ns}/{pkg}/{*rest}`: runs the web action and renders its
/// result.
///
/// - 200/204/any status a `.http` result sets, with the result rendered per extension;
/// - 202 "Response not yet ready." when the action did not finish within the wait;
/// - 400 (reserved or `final` parameters redefined, malformed JSON body, result not valid
///   for the extension, developer or whisk error), 401 (`require-whisk-auth`), 404 (unknown
///   namespace, package or action, not exported, `.text` property missing), 405 (a method
///   web actions do not serve), 413 (body over the payload limit), 429 (owner throttled),
///   503 (load balancer unavailable).
///
/// Every response of an activation carries `x-openwhisk-activation-id`.
pub async fn handle(
    State(state): State<AppState>,
    tid: TransactionId,
    Path((ns, pkg, rest)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let received_at = edgewhisk_entity::time::now_millis();
    let (mut parts, body) = req.into_parts();
    if !is_allowed(&parts.method) {
        return method_not_allowed();
    }
    let limit = state.config().max_payload_bytes;
    if let Some(len) = content_length(&parts.headers).filter(|len| *len > limit) {
        return ApiError::PayloadTooLarge(messages::entity_too_big("Request", len, limit))
            .into_response();
    }
    let found = match find(&state, &ns, &pkg, &rest).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let custom_options = is_true(&found.action.annotations, "web-custom-options");
    let is_options = parts.method == Method::OPTIONS;
    let mut res = if !custom_options && is_options {
        StatusCode::OK.into_response()
    } else {
        let user = Caller::from_request_parts(&mut parts, &state)
            .await
            .ok()
            .map(|c| c.0);
        // With `web-custom-options`, OPTIONS reaches the action even without credentials, so
        // that it can answer preflights itself.
        let authorized = is_options || require_whisk_auth(&found.action, &parts, user.is_some());
        if authorized {
            let run = Run {
                state: &state,
                tid,
                received_at,
                user,
            };
            run.execute(found, &parts, body).await
        } else {
            refuse(StatusCode::UNAUTHORIZED, messages::WEB_UNAUTHORIZED)
        }
    };
    if !custom_options {
        add_cors(res.headers_mut(), &parts.headers, ALLOWED_METHODS);
    }
    res
}

fn is_allowed(m: &Method) -> bool {
    [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
    ]
    .contains(m)
}

fn method_not_allowed() -> Response {
    let mut res = refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        &messages::method_not_allowed(ALLOWED_METHODS),
    );
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
    res
}

/// An error response with `message`, rendered with the transaction id by the middleware.
fn refuse(status: StatusCode, message: &str) -> Response {
    let mut res = status.into_response();
    res.extensions_mut().insert(ErrorBody(message.to_owned()));
    res
}

/// CORS headers allowing any origin and `methods`; `Access-Control-Allow-Headers` echoes the
/// preflight's `Access-Control-Request-Headers` when there is one. OpenWhisk's web actions and
/// its API gateway (`api::apigw`) answer with these, each with its list of methods.
pub(crate) fn add_cors(headers: &mut HeaderMap, request: &HeaderMap, methods: &'static str) {
    headers.insert(
        HeaderName::from_static("access-control-allow-origin"),
        HeaderValue::from_static("*"),
    );
    headers.insert(
        HeaderName::from_static("access-control-allow-methods"),
        HeaderValue::from_static(methods),
    );
    let allow = request
        .get("access-control-request-headers")
        .cloned()
        .unwrap_or(HeaderValue::from_static(DEFAULT_ALLOW_HEADERS));
    headers.insert(
        HeaderName::from_static("access-control-allow-headers"),
        allow,
    );
}

/// True when the annotation is the JSON value `true` (OpenWhisk reads these as booleans).
fn is_true(annotations: &Parameters, key: &str) -> bool {
    annotations.get(key) == Some(&Value::Bool(true))
}

/// `require-whisk-auth`: absent or `false` is open; `true` needs an authenticated caller; a
/// string or number must equal the `X-Require-Whisk-Auth` header; anything else refuses.
fn require_whisk_auth(action: &Action, parts: &Parts, authenticated: bool) -> bool {
    let presented = parts
        .headers
        .get(&REQUIRE_WHISK_AUTH)
        .and_then(|v| v.to_str().ok());
    match action.annotations.get("require-whisk-auth") {
        None | Some(Value::Bool(false)) => true,
        Some(Value::Bool(true)) => authenticated,
        Some(Value::String(s)) => secret_matches(presented, s),
        Some(Value::Number(n)) => secret_matches(presented, &n.to_string()),
        Some(_) => false,
    }
}

/// Whether the presented header equals the action's secret, compared in constant time so
/// that the time of a refusal does not tell how much of a guess was right.
fn secret_matches(presented: Option<&str>, secret: &str) -> bool {
    presented.is_some_and(|p| constant_time_eq(p.as_bytes(), secret.as_bytes()))
}

/// A resolved, exported web action and where it came from.
struct Found {
    owner: Identity,
    action: Action,
    package: PackageContext,
    path: WebPath,
}

/// Resolves the owner and the exported action; every failure to find one is a 404, as
/// OpenWhisk leaks nothing about what exists.
async fn find(state: &AppState, ns: &str, pkg: &str, rest: &str) -> Result<Found, ApiError> {
    let path = WebPath::parse(rest)?;
    let valid = |s: &str| validate_name("name", s).map_err(|_| ApiError::NotFound);
    valid(ns)?;
    valid(&path.action)?;
    let owner = match state.entities().identities_in(ns).await {
        Ok(ids) => ids.into_iter().next().ok_or(ApiError::NotFound)?,
        Err(e) => {
            tracing::warn!(namespace = ns, error = %e, "web action owner lookup failed");
            return Err(ApiError::NotFound);
        }
    };
    let (target, package) = if pkg == "default" {
        let t = Target {
            path: owner.namespace.clone(),
            name: path.action.clone(),
        };
        (t, PackageContext::default())
    } else {
        valid(pkg)?;
        let resource = format!("{ns}/{pkg}/{}", path.action);
        let p = entitlement::readable_package(state, &owner, ns, pkg, &resource)
            .await
            .map_err(hide)?;
        let context = PackageContext {
            parameters: p.parameters(),
            binding: p.addressed.binding.as_ref().map(|_| p.addressed.path()),
        };
        let t = Target {
            path: p.actual.path(),
            name: path.action.clone(),
        };
        (t, context)
    };
    let action = package.apply(load_action(state, &target).await.map_err(hide)?.1);
    if !is_true(&action.annotations, "web-export") {
        return Err(ApiError::NotFound);
    }
    Ok(Found {
        owner,
        action,
        package,
        path,
    })
}

/// A lookup failure as the client sees it: 404 unless the store itself failed.
fn hide(e: ApiError) -> ApiError {
    match e {
        ApiError::Store(_) => e,
        _ => ApiError::NotFound,
    }
}

/// One web invocation in progress.
struct Run<'a> {
    state: &'a AppState,
    tid: TransactionId,
    received_at: u64,
    user: Option<Identity>,
}

impl Run<'_> {
    async fn execute(self, found: Found, parts: &Parts, body: Body) -> Response {
        let extension = found.path.extension;
        match self.activate(found, parts, body).await {
            Ok(Outcome::Done(record)) => {
                let id = record.activation_id.clone();
                with_id(finish(extension, *record), &id)
            }
            Ok(Outcome::Pending(id)) => with_id(
                refuse(StatusCode::ACCEPTED, messages::RESPONSE_NOT_READY),
                &id,
            ),
            Err(e) => e.into_response(),
        }
    }

    /// Builds the arguments from the HTTP request and runs the action as its owner, blocking
    /// up to the configured wait.
    async fn activate(self, found: Found, parts: &Parts, body: Body) -> Result<Outcome, ApiError> {
        let state = self.state;
        let config = state.config();
        let body = read_body(&parts.headers, body, config.max_payload_bytes).await?;
        let action = found.action;
        let protected: Vec<&str> = if action.annotations.is_truthy("final") {
            action
                .parameters
                .0
                .iter()
                .map(|kv| kv.key.as_str())
                .collect()
        } else {
            Vec::new()
        };
        let web = WebRequest {
            method: parts.method.as_str(),
            headers: &parts.headers,
            path: &found.path.extra,
            query: parts.uri.query().unwrap_or(""),
            body: &body,
            user: self.user.as_ref().map(|u| u.namespace.as_str()),
        };
        let args = web.arguments(is_true(&action.annotations, "raw-http"), &protected)?;
        drop(body);
        let owner = found.owner;
        // The owner's overrides, not only the caller's: the activation counts against the owner.
        crate::auth::refresh_overrides(state, &owner.namespace).await?;
        let request = ActivationRequest {
            identity: owner,
            action,
            binding: found.package.binding,
            input: Input::Json(Value::Object(args)),
            wait: Some(Duration::from_millis(config.blocking_wait_ms)),
            transaction_id: self.tid.0,
            received_at: self.received_at,
        };
        activate(state, request).await
    }
}

/// The response for a finished activation: success renders the result, an application
/// error its `error` value (404 when it has none), anything else is a 400.
fn finish(extension: request::Extension, record: Activation) -> Response {
    let value = match record.response.status {
        Status::Success => record
            .response
            .result
            .unwrap_or(Value::Object(Default::default())),
        Status::ApplicationError => match record.response.result {
            Some(Value::Object(mut m)) if m.contains_key("error") => {
                m.remove("error").unwrap_or(Value::Null)
            }
            _ => return refuse(StatusCode::NOT_FOUND, messages::PROPERTY_NOT_FOUND),
        },
        Status::DeveloperError | Status::WhiskError => {
            return refuse(StatusCode::BAD_REQUEST, messages::ERROR_PROCESSING_REQUEST);
        }
    };
    match response::transcode(extension, value) {
        Ok(mut res) => {
            res.extensions_mut().insert(ActionResponse);
            res
        }
        Err(response::Refusal(status, message)) => refuse(status, &message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_require_whisk_auth_secret_must_match_exactly() {
        assert!(secret_matches(Some("s3cret"), "s3cret"));
        for wrong in [
            None,
            Some(""),
            Some("s3cre"),
            Some("s3cret!"),
            Some("S3cret"),
        ] {
            assert!(!secret_matches(wrong, "s3cret"), "{wrong:?}");
        }
    }
}
