//! `GET /api/v1/namespaces` and `GET /api/v1/namespaces/{ns}/limits` (OpenWhisk
//! `Namespaces.scala`, `Limits.scala`).

use crate::AppState;
use crate::auth::{Caller, resolve_namespace};
use crate::error::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

/// `GET /api/v1/namespaces`: the caller's namespaces as a bare string array.
///
/// 200; 401.
pub async fn list(Caller(caller): Caller) -> Json<Value> {
    Json(json!([caller.namespace]))
}

/// `GET /api/v1/namespaces/{ns}/limits`: the namespace's limits (the system's, as no
/// per-namespace overrides are stored yet).
///
/// 200; 401; 403 for another namespace.
pub async fn limits(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(ns): Path<String>,
) -> Result<Json<Value>, ApiError> {
    resolve_namespace(&caller, &ns, None)?;
    let c = state.config();
    let l = &c.limits;
    Ok(Json(json!({
        "invocationsPerMinute": c.invocations_per_minute,
        "concurrentInvocations": c.concurrent_invocations,
        "firesPerMinute": c.invocations_per_minute,
        "minActionMemory": l.min_memory,
        "maxActionMemory": l.max_memory,
        "minActionLogs": l.min_logs,
        "maxActionLogs": l.max_logs,
        "minActionTimeout": l.min_timeout,
        "maxActionTimeout": l.max_timeout,
        "minActionConcurrency": l.min_concurrency,
        "maxActionConcurrency": l.max_concurrency,
        "maxParameterSize": format!("{} B", c.max_parameter_bytes),
        "maxActionInstances": c.concurrent_invocations,
    })))
}
