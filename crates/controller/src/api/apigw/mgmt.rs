//! The route management endpoints `/api/v1/web/whisk.system/apimgmt/{createApi,getApi,
//! deleteApi}[.http|.json]`, answered in the shapes OpenWhisk's `core/routemgmt` actions give
//! their callers (`wsk api`, the `openwhisk` npm client's `routes`, the Serverless plugin).

use crate::api::apigw::model::{self, Request, StoredApi};
use crate::api::apigw::store;
use crate::auth::Caller;
use crate::error::{ApiError, ApiQuery, ErrorBody, read_body};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request as HttpRequest};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use edgewhisk_entity::Identity;
use serde_json::{Map, Value, json};

/// The three management operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Get,
    Delete,
}

/// `{op}[.http|.json]` → the operation; anything else is not one.
fn parse_op(rest: &str) -> Option<Op> {
    let name = [".http", ".json"]
        .iter()
        .find_map(|ext| rest.strip_suffix(ext))
        .unwrap_or(rest);
    match name {
        "createApi" => Some(Op::Create),
        "getApi" => Some(Op::Get),
        "deleteApi" => Some(Op::Delete),
        _ => None,
    }
}

/// Any method on `/api/v1/web/whisk.system/apimgmt/{rest}`, with the caller's key.
///
/// - `createApi`: 200 with the API (`{namespace, gwApiActivated, tenantId, gwApiUrl,
///   apidoc}`); 400 for an `apidoc` that is missing fields or malformed;
/// - `getApi`: 200 `{"apis": [{id, key, value}]}`, every API of the namespace or the one
///   whose base path or name is `basepath` (an empty list when there is none, as routemgmt
///   answers);
/// - `deleteApi`: 200 `{}`; 404 when the API, path or operation does not exist; 400 without
///   `basepath`, or with an `operation` but no `relpath`.
///
/// 401 without a valid key, 404 for an unknown operation.
pub(crate) async fn handle(state: &AppState, rest: &str, req: HttpRequest) -> Response {
    let Some(op) = parse_op(rest) else {
        return ApiError::NotFound.into_response();
    };
    let (mut parts, body) = req.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, state).await {
        Ok(Caller(identity)) => identity,
        Err(e) => return e.into_response(),
    };
    match run(state, op, &caller, parts, body).await {
        Ok(value) => (StatusCode::OK, axum::Json(value)).into_response(),
        Err(Failure::Api(e)) => e.into_response(),
        Err(Failure::Missing(message)) => {
            let mut res = StatusCode::NOT_FOUND.into_response();
            res.extensions_mut().insert(ErrorBody(message));
            res
        }
    }
}

/// Why a management call failed.
enum Failure {
    Api(ApiError),
    /// 404 with routemgmt's message.
    Missing(String),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

/// The parameters a web action would see: the query, then the JSON body's fields over them.
async fn parameters(
    state: &AppState,
    parts: &mut Parts,
    body: Body,
) -> Result<Map<String, Value>, ApiError> {
    let ApiQuery(query) = ApiQuery::from_request_parts(parts, state).await?;
    let mut params: Map<String, Value> = query
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let bytes = read_body(&parts.headers, body, state.config().max_payload_bytes).await?;
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(fields)) => params.extend(fields),
            _ => {
                return Err(ApiError::BadRequest(
                    "The request content was malformed: the body must be a JSON object.".into(),
                ));
            }
        }
    }
    Ok(params)
}

fn text<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn run(
    state: &AppState,
    op: Op,
    caller: &Identity,
    mut parts: Parts,
    body: Body,
) -> Result<Value, Failure> {
    let params = parameters(state, &mut parts, body).await?;
    let ns = caller.namespace.as_str();
    let base = Base::of(&parts.headers);
    match op {
        Op::Create => {
            let apidoc = params
                .get("apidoc")
                .ok_or_else(|| ApiError::BadRequest("apidoc is required.".into()))?;
            let request = model::parse_apidoc(apidoc, ns, text(&params, "responsetype"))?;
            let basepath = request.basepath().to_owned();
            let api = store::update(state, ns, &basepath, |existing| match request {
                Request::Endpoint {
                    basepath,
                    name,
                    operation,
                    scheme,
                } => {
                    let mut api =
                        existing.unwrap_or_else(|| StoredApi::new(&basepath, name.as_deref()));
                    api.upsert(operation);
                    if !scheme.is_empty() {
                        api.scheme = scheme;
                    }
                    api
                }
                Request::Swagger(api) => api,
            })
            .await?;
            Ok(base.value(caller, &api))
        }
        Op::Get => {
            let apis = match text(&params, "basepath") {
                Some(bp) => store::find(state, ns, bp)
                    .await?
                    .into_iter()
                    .collect::<Vec<_>>(),
                None => store::list(state, ns).await?,
            };
            let skip = number(&params, "skip").unwrap_or(0);
            let limit = number(&params, "limit")
                .filter(|l| *l > 0)
                .unwrap_or(usize::MAX);
            let apis: Vec<Value> = apis
                .iter()
                .skip(skip)
                .take(limit)
                .map(|api| {
                    json!({
                        "id": format!("API:{ns}:{}", api.basepath),
                        "key": format!("{ns}:{}", api.basepath),
                        "value": base.value(caller, api),
                    })
                })
                .collect();
            Ok(json!({ "apis": apis }))
        }
        Op::Delete => {
            let basepath = text(&params, "basepath")
                .ok_or_else(|| ApiError::BadRequest("basepath is required.".into()))?;
            let relpath = text(&params, "relpath");
            let verb = text(&params, "operation").map(str::to_ascii_lowercase);
            if relpath.is_none() && verb.is_some() {
                return Err(ApiError::BadRequest(
                    "When specifying an operation, the path is required.".into(),
                )
                .into());
            }
            let api = store::find(state, ns, basepath)
                .await?
                .ok_or_else(|| Failure::Missing(format!("API '{basepath}' does not exist.")))?;
            match relpath {
                None => store::delete(state, ns, &api.basepath).await?,
                Some(relpath) => {
                    let mut api = api;
                    api.remove(relpath, verb.as_deref())
                        .map_err(Failure::Missing)?;
                    if api.operations.is_empty() {
                        store::delete(state, ns, &api.basepath).await?;
                    } else {
                        let basepath = api.basepath.clone();
                        store::update(state, ns, &basepath, |_| api).await?;
                    }
                }
            }
            Ok(json!({}))
        }
    }
}

fn number(params: &Map<String, Value>, name: &str) -> Option<usize> {
    match params.get(name)? {
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Where the caller reaches edgewhisk: the `Host` the request was sent to, and the scheme
/// from `X-Forwarded-Proto` when a proxy sets it.
pub(crate) struct Base {
    host: String,
    forwarded_scheme: Option<String>,
}

impl Base {
    /// The base of the request with `headers`.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').next().unwrap_or_default().trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Self {
            host: header("x-forwarded-host")
                .or_else(|| header("host"))
                .unwrap_or_else(|| "localhost".to_owned()),
            forwarded_scheme: header("x-forwarded-proto"),
        }
    }

    /// `scheme://host` for `api`: a forwarded scheme, else the one its creator used, else
    /// `http`.
    fn url(&self, api: &StoredApi) -> String {
        let scheme = self
            .forwarded_scheme
            .as_deref()
            .or(Some(api.scheme.as_str()).filter(|s| !s.is_empty()))
            .unwrap_or("http");
        format!("{scheme}://{}", self.host)
    }

    /// The API as routemgmt returns it to the CLI: `gwApiUrl` is
    /// `scheme://host/api/<key uuid><basepath>`, to which the clients append the relative
    /// path.
    fn value(&self, caller: &Identity, api: &StoredApi) -> Value {
        let base = self.url(api);
        let basepath = if api.basepath == "/" {
            ""
        } else {
            api.basepath.trim_end_matches('/')
        };
        json!({
            "namespace": caller.namespace,
            "gwApiActivated": true,
            "tenantId": caller.namespace,
            "gwApiUrl": format!("{base}/api/{}{basepath}", caller.uuid),
            "apidoc": api.swagger(&base),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_with_or_without_an_extension() {
        assert_eq!(parse_op("createApi.http"), Some(Op::Create));
        assert_eq!(parse_op("getApi"), Some(Op::Get));
        assert_eq!(parse_op("deleteApi.json"), Some(Op::Delete));
        assert_eq!(parse_op("deleteApi.svg"), None);
        assert_eq!(parse_op("other"), None);
    }
}
