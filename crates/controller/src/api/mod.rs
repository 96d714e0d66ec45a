//! The routes of the REST API, one module per collection, and the middleware every response
//! goes through (transaction id, CORS, OpenWhisk error bodies).

pub mod actions;
pub mod activations;
pub mod apigw;
mod checks;
mod list;
pub mod namespaces;
pub mod packages;
mod render;
pub mod rules;
pub mod triggers;
pub mod web;

pub use list::ListParams;
pub use render::ACTIVATION_ID_HEADER;

use crate::error::{ApiError, ErrorBody, TransactionId};
use crate::messages;
use crate::state::AppState;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use tracing::Instrument;

/// The transaction id header, read from requests and set on every response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

const CORS: [(&str, &str); 3] = [
    ("access-control-allow-origin", "*"),
    (
        "access-control-allow-methods",
        "GET, DELETE, POST, PUT, HEAD",
    ),
    (
        "access-control-allow-headers",
        "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent",
    ),
];

/// Builds the router: every route of `/api/v1` and `/api/v1/web`, one module per collection.
pub fn router(state: AppState) -> Router {
    let ns = "/api/v1/namespaces/{ns}";
    let routes = Router::new()
        .route("/", get(root))
        .merge(crate::dashboard::routes())
        .route("/ping", get(|| async { "pong" }))
        .route("/health", get(crate::health::health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/invokers", get(invokers))
        .route("/invokers/healthy/count", get(healthy_invokers))
        .route("/api/v1", get(api_info))
        .route("/api/v1/", get(api_info))
        .route("/api/v1/namespaces", get(namespaces::list))
        .route(&format!("{ns}/limits"), get(namespaces::limits))
        .route(&format!("{ns}/actions"), get(actions::list))
        .route(&format!("{ns}/actions/"), get(actions::list))
        .route(
            &format!("{ns}/actions/{{*rest}}"),
            get(actions::get)
                .put(actions::put)
                .delete(actions::delete)
                .post(actions::invoke),
        )
        .route(&format!("{ns}/packages"), get(packages::list))
        .route(&format!("{ns}/packages/"), get(packages::list))
        .route(
            &format!("{ns}/packages/{{name}}"),
            get(packages::get).put(packages::put).delete(packages::delete),
        )
        .route(&format!("{ns}/triggers"), get(triggers::list))
        .route(&format!("{ns}/triggers/"), get(triggers::list))
        .route(
            &format!("{ns}/triggers/{{name}}"),
            get(triggers::get)
                .put(triggers::put)
                .delete(triggers::delete)
                .post(triggers::fire),
        )
        .route(&format!("{ns}/rules"), get(rules::list))
        .route(&format!("{ns}/rules/"), get(rules::list))
        .route(
            &format!("{ns}/rules/{{name}}"),
            get(rules::get)
                .put(rules::put)
                .delete(rules::delete)
                .post(rules::set_state),
        )
        .route("/api/v1/web/{ns}/{pkg}/{*rest}", any(web::handle))
        .route(
            "/api/v1/web/whisk.system/{pkg}/{*rest}",
            any(apigw::system_web),
        )
        .route("/api/{uuid}/{*rest}", any(apigw::routes))
        .route(&format!("{ns}/activations"), get(activations::list))
        .route(&format!("{ns}/activations/{{id}}"), get(activations::get))
        .route(&format!("{ns}/activations/{{id}}/logs"), get(activations::logs))
        .route(
            &format!("{ns}/activations/{{id}}/result"),
            get(activations::result),
        )
        .fallback(|| async { ApiError::NotFound })
        // Bodies are limited per route by the handlers, with OpenWhisk's messages.
        .layer(DefaultBodyLimit::disable())
        .with_state(state);
    // The middleware wraps the finished router rather than each route, so that it sees the
    // `Allow` header axum adds to 405 responses outside of route layers.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(transaction))
}

/// Assigns the transaction id, answers CORS preflights, and finishes every response: error
/// bodies get OpenWhisk's shape with the id, `/api/v1` responses get the CORS headers, all get
/// `X-Request-ID`.
async fn transaction(mut req: Request, next: Next) -> Response {
    let tid = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map_or_else(TransactionId::generate, |v| TransactionId(v.to_owned()));
    // Web actions answer OPTIONS and set CORS headers themselves (`api::web`).
    let path = req.uri().path();
    let is_api = path.starts_with("/api/v1") && !path.starts_with("/api/v1/web/");
    let mut res = if is_api && req.method() == Method::OPTIONS {
        StatusCode::OK.into_response()
    } else {
        req.extensions_mut().insert(tid.clone());
        // Every log line of the request, and of the activations it starts (their tasks carry
        // the span on), names the transaction id the client sees as `X-Request-ID`.
        let span = tracing::info_span!("request", tid = %tid.0);
        next.run(req).instrument(span).await
    };
    let message = match res.extensions_mut().remove::<ErrorBody>() {
        Some(ErrorBody(m)) => Some(m),
        // A web action's own status and body are left as the action chose them.
        None if res.extensions().get::<web::ActionResponse>().is_some() => None,
        None => unshaped_error(&res),
    };
    if let Some(message) = message {
        let body = json!({"error": message, "code": tid.0}).to_string();
        res.headers_mut().remove(CONTENT_LENGTH);
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        *res.body_mut() = Body::from(body);
    }
    if let Ok(v) = HeaderValue::from_str(&tid.0) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    if is_api {
        for (k, v) in CORS {
            res.headers_mut()
                .insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
    }
    res
}

/// The message for an error response that did not come from [`ApiError`] (axum's 405 for a
/// method a route does not serve, and the like); `None` for everything else.
fn unshaped_error(res: &Response) -> Option<String> {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = res
            .headers()
            .get(ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(", ");
        return Some(messages::method_not_allowed(&allowed));
    }
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        // An activation answered as 502/500 by a blocking invoke: it is not an API error.
        return None;
    }
    Some(status.canonical_reason().unwrap_or("Error").to_owned())
}

/// `GET /metrics`: every registered metric, as OpenMetrics or Prometheus text by `Accept`;
/// no key.
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    state
        .health()
        .metrics(crate::health::accept(&headers))
        .await
}

/// `GET /ready`: 200 when the store takes records and an invoker is up, else 503 naming the
/// failed check; no key.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    state.health().ready()
}

/// `GET /api/v1`: API and build information, no authentication (`wsk property get`).
///
/// 200.
/// `GET /invokers`: every invoker the balancer knows and its health, as OpenWhisk's controller
/// answers it (`{"invoker0/0": "up", "invoker1/1": "down"}`).
async fn invokers(State(state): State<AppState>) -> Json<Value> {
    let health: serde_json::Map<String, Value> = state
        .balancer()
        .invoker_health()
        .into_iter()
        .map(|(name, health)| (name, Value::from(health)))
        .collect();
    Json(Value::Object(health))
}

/// `GET /invokers/healthy/count`: how many invokers are up.
async fn healthy_invokers(State(state): State<AppState>) -> Json<usize> {
    let health = state.balancer().invoker_health();
    Json(health.iter().filter(|(_, h)| *h == "up").count())
}

async fn api_info(State(state): State<AppState>) -> Json<Value> {
    let b = state.build();
    Json(json!({
        "description": "OpenWhisk API",
        "api_version": "1.0.0",
        "api_version_path": "v1",
        "build": b.build,
        "buildno": b.buildno,
        "swagger_paths": {"ui": "/docs", "api-docs": "/api-docs"},
    }))
}

/// `GET /`: the dashboard page to a browser (`dashboard::wants_html`), else
/// [`deployment_info`]; either way `Vary: Accept`.
async fn root(state: State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if crate::dashboard::wants_html(&headers) {
        return crate::dashboard::page(headers).await;
    }
    let mut res = deployment_info(state).await.into_response();
    res.headers_mut()
        .insert(axum::http::header::VARY, HeaderValue::from_static("Accept"));
    res
}

/// `GET /` (without the dashboard): deployment information with system limits and the runtime
/// manifest.
///
/// 200.
async fn deployment_info(State(state): State<AppState>) -> Json<Value> {
    let c = state.config();
    let l = &c.limits;
    const MB: u64 = 1024 * 1024;
    let mut runtimes = serde_json::Map::new();
    for rt in &state.manifest().runtimes {
        let family = runtimes
            .entry(rt.family.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = family {
            let image = if rt.kind == edgewhisk_entity::exec::BLACKBOX_KIND {
                edgewhisk_entity::exec::SKELETON_IMAGE.to_owned()
            } else {
                format!("edgewhisk/runtime-{}", rt.kind.replace(':', "-"))
            };
            let mut entry = json!({
                "kind": rt.kind,
                "image": image,
                "deprecated": false,
                "default": rt.default,
                "attached": false,
                "requireMain": false,
            });
            if let Some(v) = &rt.version {
                // The installed interpreter's own version (an edgewhisk addition).
                entry["version"] = json!(v);
            }
            list.push(entry);
        }
    }
    Json(json!({
        "description": "OpenWhisk",
        "support": {
            "github": "/apache/openwhisk/issues",
            "slack": "http://slack.openwhisk.org",
        },
        "api_paths": ["/api/v1"],
        "limits": {
            "actions_per_minute": c.invocations_per_minute,
            "triggers_per_minute": c.fires_per_minute,
            "concurrent_actions": c.concurrent_invocations,
            "sequence_length": 50,
            "min_action_duration": l.min_timeout,
            "max_action_duration": l.max_timeout,
            "default_action_duration": l.default_timeout,
            "min_action_memory": l.min_memory * MB,
            "max_action_memory": l.max_memory * MB,
            "default_action_memory": l.default_memory * MB,
            "min_action_logs": l.min_logs * MB,
            "max_action_logs": l.max_logs * MB,
            "default_action_logs": l.default_logs * MB,
            "min_action_concurrency": l.min_concurrency,
            "max_action_concurrency": l.max_concurrency,
            "default_action_concurrency": l.default_concurrency,
        },
        "runtimes": runtimes,
    }))
}
