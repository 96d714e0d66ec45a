//! The routes served: `/api/<key uuid>/<basepath>/<relpath>` finds the namespace by the key
//! UUID of its `gwApiUrl`, the API by the longest base path, the operation by relative path
//! (literal segments before `{parameters}`) and verb, and hands the request to the web action
//! code (`api::web`) as `/api/v1/web/<ns>/<pkg>/<action>.<response type>`: path parameters
//! join the query (so they reach the action as parameters), a `.http` route also gets the
//! relative path as `__ow_path` (OpenWhisk's `$(request.path)`), and the operation's
//! `require-whisk-auth` secret travels as `X-Require-Whisk-Auth`. Every answer carries the
//! gateway's CORS headers; an OPTIONS request without its own operation is a preflight,
//! answered 200.

use crate::api::apigw::model::{Operation, StoredApi};
use crate::api::apigw::store;
use crate::error::{ErrorBody, TransactionId};
use crate::state::AppState;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// The verbs a route may answer, as the gateway's CORS header lists them.
const ALLOWED_METHODS: &str = "GET, PUT, POST, DELETE, PATCH, HEAD, OPTIONS";

/// The gateway's answer when nothing is routed at a path (`request.err(404, 'Not found.')`).
const NOT_FOUND: &str = "Not found.";

/// Its answer when the path is routed but not for this verb.
const VERB_NOT_SUPPORTED: &str = "Whoops. Verb not supported.";

/// Any method on `/api/{uuid}/{*rest}`: the route's web action's answer, or 404 (no API,
/// path or verb there), 200 for a CORS preflight.
pub(crate) async fn serve(
    state: AppState,
    tid: TransactionId,
    uuid: &str,
    rest: &str,
    req: Request,
) -> Response {
    if uuid::Uuid::parse_str(uuid).is_err() {
        // Not a gateway URL (`/api/v1/...` paths no other route serves end here too): the
        // API's own 404.
        return crate::error::ApiError::NotFound.into_response();
    }
    let request_headers = req.headers().clone();
    let mut res = match dispatch(state, tid, uuid, rest, req).await {
        Ok(res) => res,
        Err((status, message)) => refuse(status, message),
    };
    crate::api::web::add_cors(res.headers_mut(), &request_headers, ALLOWED_METHODS);
    res
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut res = status.into_response();
    res.extensions_mut().insert(ErrorBody(message.to_owned()));
    res
}

async fn dispatch(
    state: AppState,
    tid: TransactionId,
    uuid: &str,
    rest: &str,
    req: Request,
) -> Result<Response, (StatusCode, &'static str)> {
    let not_found = (StatusCode::NOT_FOUND, NOT_FOUND);
    let identity = match state.entities().identity(uuid).await {
        Ok(Some(identity)) => identity,
        Ok(None) => return Err(not_found),
        Err(e) => return Ok(crate::error::ApiError::from(e).into_response()),
    };
    let apis = match store::list(&state, &identity.namespace).await {
        Ok(apis) => apis,
        Err(e) => return Ok(e.into_response()),
    };
    let path = format!("/{rest}");
    let Some(found) = route(&apis, &path) else {
        return Err(not_found);
    };
    let verb = req.method().as_str().to_ascii_lowercase();
    let Some(op) = found.operations.iter().find(|o| o.verb == verb) else {
        if req.method() == Method::OPTIONS {
            return Ok(StatusCode::OK.into_response());
        }
        return Err((StatusCode::NOT_FOUND, VERB_NOT_SUPPORTED));
    };
    let (mut parts, body) = req.into_parts();
    let query = with_parameters(parts.uri.query().unwrap_or(""), &found.parameters);
    let package = if op.package.is_empty() {
        "default".to_owned()
    } else {
        op.package.clone()
    };
    let mut target = format!("{}.{}", op.action, op.response_type);
    if op.response_type == "http" && found.relative != "/" {
        target.push_str(&found.relative);
    }
    let uri = format!(
        "/api/v1/web/{}/{package}/{target}{}{query}",
        op.namespace,
        if query.is_empty() { "" } else { "?" }
    );
    parts.uri = uri.parse::<Uri>().unwrap_or_else(|_| parts.uri.clone());
    if let Some(key) = op.secure_key.as_deref() {
        if let Ok(v) = HeaderValue::from_str(key) {
            parts
                .headers
                .insert(HeaderName::from_static("x-require-whisk-auth"), v);
        }
    }
    let req = Request::from_parts(parts, body);
    let path = Path((op.namespace.clone(), package, target));
    Ok(crate::api::web::handle(State(state), tid, path, req).await)
}

/// What a path resolved to: the operations at the matched relative path, the path below the
/// base path, and the path parameters' values.
#[derive(Debug)]
struct Found<'a> {
    operations: Vec<&'a Operation>,
    relative: String,
    parameters: Vec<(String, String)>,
}

/// The operations `path` reaches: the API with the longest base path that has a relative
/// path matching the rest; among its relative paths, the one with the most literal segments.
fn route<'a>(apis: &'a [StoredApi], path: &str) -> Option<Found<'a>> {
    let mut by_length: Vec<&StoredApi> = apis.iter().collect();
    by_length.sort_by_key(|api| std::cmp::Reverse(api.basepath.trim_end_matches('/').len()));
    by_length.into_iter().find_map(|api| {
        let base = api.basepath.trim_end_matches('/');
        let relative = path.strip_prefix(base)?;
        if !(relative.is_empty() || relative.starts_with('/')) {
            return None;
        }
        let relative = if relative.is_empty() { "/" } else { relative };
        let (_, relpath, parameters) = api
            .operations
            .iter()
            .filter_map(|op| {
                matches(&op.relpath, relative).map(|(l, p)| (l, op.relpath.as_str(), p))
            })
            .max_by_key(|(literals, _, _)| *literals)?;
        Some(Found {
            operations: api
                .operations
                .iter()
                .filter(|o| o.relpath == relpath)
                .collect(),
            relative: relative.to_owned(),
            parameters,
        })
    })
}

/// Whether `path` matches the relative path `template` (a trailing `/` aside): the count of
/// literal segments and the parameters' values.
fn matches(template: &str, path: &str) -> Option<(usize, Vec<(String, String)>)> {
    let t: Vec<&str> = template.trim_end_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut literals = 0;
    let mut parameters = Vec::new();
    for (t, p) in t.iter().zip(&p) {
        match t.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) if !p.is_empty() => parameters.push((name.to_owned(), (*p).to_owned())),
            Some(_) => return None,
            None if t == p => literals += 1,
            None => return None,
        }
    }
    Some((literals, parameters))
}

/// The query with the path parameters added.
fn with_parameters(query: &str, parameters: &[(String, String)]) -> String {
    let mut out = query.to_owned();
    for (k, v) in parameters {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&encode(k));
        out.push('=');
        out.push_str(&encode(v));
    }
    out
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(relpath: &str, verb: &str, action: &str) -> Operation {
        Operation {
            relpath: relpath.into(),
            verb: verb.into(),
            namespace: "guest".into(),
            package: String::new(),
            action: action.into(),
            response_type: "json".into(),
            secure_key: None,
        }
    }

    fn apis() -> Vec<StoredApi> {
        let mut root = StoredApi::new("/", None);
        root.upsert(op("/ping", "get", "ping"));
        let mut books = StoredApi::new("/library", None);
        books.upsert(op("/books/{id}", "get", "book"));
        books.upsert(op("/books/new", "get", "blank"));
        books.upsert(op("/books/{id}", "delete", "remove"));
        vec![root, books]
    }

    #[test]
    fn literal_segments_win_over_parameters() {
        let apis = apis();
        let found = route(&apis, "/library/books/new").unwrap();
        assert_eq!(found.operations[0].action, "blank");
        assert!(found.parameters.is_empty());
        let found = route(&apis, "/library/books/42").unwrap();
        assert_eq!(found.operations.len(), 2);
        assert_eq!(found.parameters, vec![("id".to_owned(), "42".to_owned())]);
        assert_eq!(found.relative, "/books/42");
    }

    #[test]
    fn the_root_base_path_and_misses() {
        let apis = apis();
        assert_eq!(route(&apis, "/ping").unwrap().operations[0].action, "ping");
        assert!(route(&apis, "/library/books").is_none());
        assert!(route(&apis, "/libraryx/books/1").is_none());
        assert!(route(&apis, "/nothing").is_none());
    }

    #[test]
    fn path_parameters_join_the_query_encoded() {
        let params = vec![("id".to_owned(), "a b/c".to_owned())];
        assert_eq!(with_parameters("x=1", &params), "x=1&id=a%20b%2Fc");
        assert_eq!(with_parameters("", &params), "id=a%20b%2Fc");
    }
}
