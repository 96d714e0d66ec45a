//! `GET /metrics`, `GET /health` and `GET /ready` (`docs/design/016-metrics.md`): served
//! without a key, naming no namespace unless `[metrics] namespace_labels` says so.
//!
//! [`Health`] holds the registry every part registered its metrics in, the hooks that read
//! gauges just before a scrape (the pool's instances, the runners' memory), and the checks
//! `/ready` runs. The controller serves it from its router; a cluster invoker serves the same
//! three routes with [`Health::router`].

use crate::loadbalancer::LoadBalancer;
use async_trait::async_trait;
use axum::Json;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use edgewhisk_store::ActivationStore;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::sync::Arc;

/// The media type of a scrape that asks for OpenMetrics (as Prometheus does).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The media type of any other scrape: Prometheus's text format 0.0.4 (`curl`, `promtool`).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads gauges into the registry's metrics just before a scrape.
#[async_trait]
pub trait Refresh: Send + Sync + std::fmt::Debug {
    /// Sets the gauges to what holds now.
    async fn refresh(&self);
}

/// One check of `/ready`: `Err` says why it failed.
pub type ReadyCheck = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Metrics and readiness of one process.
pub struct Health {
    registry: Registry,
    refresh: Vec<Arc<dyn Refresh>>,
    checks: Vec<(&'static str, ReadyCheck)>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let checks: Vec<&str> = self.checks.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Health")
            .field("refresh", &self.refresh)
            .field("checks", &checks)
            .finish_non_exhaustive()
    }
}

impl Health {
    /// Serves `registry`, with no refresh hooks and no checks.
    pub fn new(registry: Registry) -> Self {
        Self {
            registry,
            refresh: Vec::new(),
            checks: Vec::new(),
        }
    }

    /// Adds a hook run before every scrape.
    pub fn refresh(mut self, hook: Arc<dyn Refresh>) -> Self {
        self.refresh.push(hook);
        self
    }

    /// Adds a check of `/ready`, reported under `name`.
    pub fn check(mut self, name: &'static str, check: ReadyCheck) -> Self {
        self.checks.push((name, check));
        self
    }

    /// Adds the store check: new activation records can be written (the store's free-space
    /// floor and its last write's outcome, `ActivationStore::check_space`).
    pub fn store_check(self, store: Arc<dyn ActivationStore>) -> Self {
        self.check(
            "store",
            Box::new(move || store.check_space().map_err(|e| e.to_string())),
        )
    }

    /// Adds the invoker check: the balancer knows at least one invoker that is up.
    pub fn invoker_check(self, balancer: Arc<dyn LoadBalancer>) -> Self {
        self.check(
            "invoker",
            Box::new(move || {
                let up = balancer
                    .invoker_health()
                    .iter()
                    .filter(|(_, h)| *h == "up")
                    .count();
                if up > 0 {
                    Ok(())
                } else {
                    Err("no invoker is up".to_owned())
                }
            }),
        )
    }

    /// The scrape: every hook run, then the registry encoded as OpenMetrics when `accept`
    /// asks for it, else in Prometheus's text format 0.0.4.
    pub async fn metrics(&self, accept: Option<&str>) -> Response {
        for hook in &self.refresh {
            hook.refresh().await;
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
            ([(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response()
        } else {
            let text = prometheus_text(&text);
            ([(CONTENT_TYPE, TEXT_CONTENT_TYPE)], text).into_response()
        }
    }

    /// `/ready`: 200 when every check passes, else 503; the body names each check's outcome.
    pub fn ready(&self) -> (StatusCode, Json<Value>) {
        let mut ready = true;
        let mut checks = serde_json::Map::new();
        for (name, check) in &self.checks {
            let outcome = match check() {
                Ok(()) => "ok".to_owned(),
                Err(why) => {
                    ready = false;
                    why
                }
            };
            checks.insert((*name).to_owned(), Value::String(outcome));
        }
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, Json(json!({"ready": ready, "checks": checks})))
    }

    /// The three routes alone (a cluster invoker, which serves no API), with `GET /ping`.
    pub fn router(self: Arc<Self>) -> axum::Router {
        use axum::extract::State;
        use axum::http::HeaderMap;
        use axum::routing::get;
        axum::Router::new()
            .route("/ping", get(|| async { "pong" }))
            .route("/health", get(health))
            .route(
                "/ready",
                get(|State(h): State<Arc<Health>>| async move { h.ready() }),
            )
            .route(
                "/metrics",
                get(
                    |State(h): State<Arc<Health>>, headers: HeaderMap| async move {
                        h.metrics(accept(&headers)).await
                    },
                ),
            )
            .with_state(self)
    }
}

/// The `Accept` header of a scrape.
pub fn accept(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
}

/// OpenMetrics text as Prometheus's text format 0.0.4 has it: a counter family is named
/// with its samples' `_total` suffix in `# HELP` and `# TYPE`, and there are no `# UNIT` and
/// `# EOF` lines. Everything else is the same in both formats.
fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line.starts_with("# HELP ") {
            help = Some(line);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let counter = rest
                .strip_suffix(" counter")
                .filter(|name| !name.ends_with("_total"));
            if let Some(h) = help.take() {
                match counter.and_then(|name| Some((name, h.strip_prefix("# HELP ")?))) {
                    Some((name, text)) => {
                        let text = text.strip_prefix(name).unwrap_or(text);
                        out.push_str(&format!("# HELP {name}_total{text}\n"));
                    }
                    None => {
                        out.push_str(h);
                        out.push('\n');
                    }
                }
            }
            match counter {
                Some(name) => out.push_str(&format!("# TYPE {name}_total counter\n")),
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            continue;
        }
        if let Some(h) = help.take() {
            out.push_str(h);
            out.push('\n');
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `GET /health`: the process serves.
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counter_families_with_their_samples() {
        let openmetrics = "# HELP a_x Things.\n# TYPE a_x counter\na_x_total{k=\"v\"} 1\n\
                           # HELP b_seconds Time.\n# TYPE b_seconds histogram\n# UNIT b_seconds seconds\n\
                           b_seconds_sum 0.0\n# EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP a_x_total Things.\n# TYPE a_x_total counter\na_x_total{k=\"v\"} 1\n\
             # HELP b_seconds Time.\n# TYPE b_seconds histogram\nb_seconds_sum 0.0\n"
        );
    }

    #[test]
    fn ready_is_503_naming_the_failed_check() {
        let health = Health::new(Registry::default())
            .check("store", Box::new(|| Ok(())))
            .check("invoker", Box::new(|| Err("no invoker is up".to_owned())));
        let (status, Json(body)) = health.ready();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body,
            json!({"ready": false, "checks": {"store": "ok", "invoker": "no invoker is up"}})
        );
        let (status, _) = Health::new(Registry::default())
            .check("store", Box::new(|| Ok(())))
            .ready();
        assert_eq!(status, StatusCode::OK);
    }
}
