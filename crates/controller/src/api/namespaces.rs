//! `GET /api/v1/namespaces` and `GET /api/v1/namespaces/{ns}/limits` (OpenWhisk
//! `Namespaces.scala`, `Limits.scala`).

use crate::auth::{Caller, resolve_namespace};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

/// `GET /api/v1/namespaces`: the namespaces of the caller's subject (each has its own key),
/// sorted, as a bare string array.
///
/// 200; 401.
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Value>, ApiError> {
    let mut names: Vec<String> = state
        .entities()
        .identities_of(&caller.subject)
        .await?
        .into_iter()
        .map(|i| i.namespace)
        .chain(std::iter::once(caller.namespace))
        .collect();
    names.sort();
    names.dedup();
    Ok(Json(json!(names)))
}

/// `GET /api/v1/namespaces/{ns}/limits`: the namespace's limits. The throttles are the
/// effective ones: the namespace's overrides (`edgewhisk admin limits set`) capped at the
/// system values.
///
/// 200; 401; 403 for another namespace.
pub async fn limits(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(ns): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let ns = resolve_namespace(&caller, &ns, None)?;
    let overrides = state.entities().namespace_limits(&ns).await?;
    let t = state.throttler().effective(overrides.as_ref());
    let c = state.config();
    let l = &c.limits;
    Ok(Json(json!({
        "invocationsPerMinute": t.invocations_per_minute,
        "concurrentInvocations": t.concurrent_invocations,
        "firesPerMinute": t.fires_per_minute,
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
