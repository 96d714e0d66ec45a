//! `GET /api/v1/namespaces/{ns}/activations[/{id}[/logs|/result]]` (OpenWhisk
//! `Activations.scala`). Records are written by the invoker; this module only reads them.

use crate::api::list::ListParams;
use crate::auth::{Caller, resolve_namespace};
use crate::error::{ApiError, ApiQuery};
use crate::messages;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use edgewhisk_entity::names::validate_name;
use edgewhisk_entity::{Activation, ActivationId};
use edgewhisk_store::ActivationFilter;
use serde_json::{Value, json};

/// `GET activations?name=&since=&upto=&skip=&limit=&docs=&count=`: newest first; summaries,
/// or full records with `docs=true`, or `{"activations": N}` with `count=true`.
///
/// 200; 400 (bad `name`, epoch, limit, skip, or `docs` with `count`); 401; 403.
pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(ns): Path<String>,
    q: ApiQuery,
) -> Result<Json<Value>, ApiError> {
    let namespace = resolve_namespace(&caller, &ns, None)?;
    let page = ListParams::parse(&q, "activations", state.config())?;
    let docs = q.bool("docs", false)?;
    if docs && page.count {
        return Err(ApiError::BadRequest(
            messages::DOCS_NOT_ALLOWED_WITH_COUNT.to_owned(),
        ));
    }
    let name = q.get("name").map(parse_name_filter).transpose()?;
    let epoch = |param: &str| -> Result<Option<u64>, ApiError> {
        q.get(param)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::BadRequest(messages::malformed_query_param(
                        param,
                        &messages::bad_epoch(v),
                    ))
                })
            })
            .transpose()
    };
    let filter = ActivationFilter {
        namespace,
        name,
        since: epoch("since")?,
        upto: epoch("upto")?,
        skip: page.skip,
        limit: page.limit,
    };
    if page.count {
        let n = state.activations().count(&filter).await?;
        return Ok(Json(json!({ "activations": n })));
    }
    let records = state.activations().list(&filter).await?;
    let list: Vec<Value> = records
        .iter()
        .map(|a| if docs { a.to_json() } else { a.summary_json() })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// A `name` filter is `action` or `package/action`, each a valid entity name.
fn parse_name_filter(v: &str) -> Result<String, ApiError> {
    let segments: Vec<&str> = v.split('/').collect();
    let ok = matches!(segments.len(), 1 | 2)
        && segments.iter().all(|s| validate_name("name", s).is_ok());
    if ok {
        Ok(v.to_owned())
    } else {
        Err(ApiError::BadRequest(messages::malformed_query_param(
            "name",
            &messages::bad_name_filter(v),
        )))
    }
}

/// Parses an activation id from the URL with OpenWhisk's messages.
fn parse_id(id: &str) -> Result<ActivationId, ApiError> {
    if id.len() != 32 {
        return Err(ApiError::BadRequest(messages::activation_id_length(
            id.chars().count(),
        )));
    }
    ActivationId::parse(id)
        .map_err(|_| ApiError::BadRequest(messages::ACTIVATION_ID_ILLEGAL.to_owned()))
}

async fn fetch(
    state: &AppState,
    caller: Caller,
    ns: &str,
    id: &str,
) -> Result<Activation, ApiError> {
    let namespace = resolve_namespace(&caller.0, ns, Some(id))?;
    let id = parse_id(id)?;
    state
        .activations()
        .get(&namespace, &id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// `GET activations/{id}`: the extended record.
///
/// 200; 400 (bad id); 401; 403; 404.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(fetch(&state, caller, &ns, &id).await?.to_json()))
}

/// `GET activations/{id}/logs`: `{"logs": [...]}`.
///
/// 200; 400 (bad id); 401; 403; 404.
pub async fn logs(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let a = fetch(&state, caller, &ns, &id).await?;
    Ok(Json(json!({ "logs": a.logs })))
}

/// `GET activations/{id}/result`: `{"result", "success", "status", "size"?}`.
///
/// 200; 400 (bad id); 401; 403; 404.
pub async fn result(
    State(state): State<AppState>,
    caller: Caller,
    Path((ns, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let a = fetch(&state, caller, &ns, &id).await?;
    Ok(Json(a.response.result_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_filter_accepts_simple_and_package_names_only() {
        assert_eq!(parse_name_filter("hello").unwrap(), "hello");
        assert_eq!(parse_name_filter("pkg/hello").unwrap(), "pkg/hello");
        for bad in ["a/b/c", "/a", "a$", ""] {
            assert_eq!(
                parse_name_filter(bad).unwrap_err().message(),
                format!(
                    "The query parameter 'name' was malformed:\nParameter may be a 'simple' name or 'package-name/simple' name: {bad}"
                )
            );
        }
    }

    #[test]
    fn activation_ids_must_be_32_hex() {
        assert!(parse_id("0123456789abcdef0123456789abcdef").is_ok());
        assert_eq!(
            parse_id("abc").unwrap_err().message(),
            "activation id length is 3 but must be 32."
        );
        assert_eq!(
            parse_id(&"z".repeat(32)).unwrap_err().message(),
            "The activation id is not valid."
        );
    }
}
