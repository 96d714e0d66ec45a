//! An API as edgewhisk stores it (base path, name, operations), the two forms a client sends
//! one in (a single endpoint, or a whole swagger document), and the swagger 2.0 document the
//! clients read back (`x-openwhisk` per operation, `x-ibm-configuration` with the invocation
//! cases), as OpenWhisk's `core/routemgmt/common/apigw-utils.js` builds it.

use crate::error::ApiError;
use edgewhisk_entity::names::validate_name;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The verbs an operation may have, lower case as swagger spells them.
pub(crate) const VERBS: [&str; 7] = ["get", "post", "put", "delete", "patch", "head", "options"];

/// The web action extensions a route may answer with (`--response-type`).
pub(crate) const RESPONSE_TYPES: [&str; 5] = ["json", "http", "text", "svg", "html"];

/// The placeholder the gateway replaces with the request's path below the base path.
const REQUEST_PATH: &str = "$(request.path)";

/// The header `require-whisk-auth` secrets travel in, as the swagger's `set-variable` names it.
const SECURE_KEY_TARGET: &str = "message.headers.X-Require-Whisk-Auth";

/// One API of a namespace: every operation below one base path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredApi {
    /// The base path, starting with `/`.
    pub(crate) basepath: String,
    /// The API's name (swagger `info.title`); the base path when none was given.
    pub(crate) name: String,
    /// The operations, in the order they were added.
    pub(crate) operations: Vec<Operation>,
    /// `http` or `https`: how the client that created it addresses edgewhisk (from the
    /// action URL it sent); empty when unknown.
    #[serde(default)]
    pub(crate) scheme: String,
}

/// One relative path and verb, and the web action it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Operation {
    /// The path below the base path, starting with `/`; `{name}` segments are parameters.
    pub(crate) relpath: String,
    /// The verb, lower case.
    pub(crate) verb: String,
    /// The action's namespace.
    pub(crate) namespace: String,
    /// The action's package; empty for none.
    pub(crate) package: String,
    /// The action's name.
    pub(crate) action: String,
    /// The web action extension the route answers with, without the dot.
    pub(crate) response_type: String,
    /// The value sent as `X-Require-Whisk-Auth` to an action with a `require-whisk-auth`
    /// secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secure_key: Option<String>,
}

impl Operation {
    /// The names of the relative path's `{name}` segments, in order.
    pub(crate) fn path_parameters(&self) -> Vec<&str> {
        self.relpath
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The swagger `operationId`.
    fn operation_id(&self) -> String {
        format!("{}_{}", self.verb, self.relpath)
    }

    /// The web action URL the gateway calls: `base/api/v1/web/ns/pkg/action.type`.
    fn action_url(&self, base: &str) -> String {
        let package = if self.package.is_empty() {
            "default"
        } else {
            &self.package
        };
        format!(
            "{base}/api/v1/web/{}/{package}/{}.{}",
            self.namespace, self.action, self.response_type
        )
    }
}

impl StoredApi {
    /// An API with no operations yet.
    pub(crate) fn new(basepath: &str, name: Option<&str>) -> Self {
        Self {
            basepath: basepath.to_owned(),
            name: name.unwrap_or(basepath).to_owned(),
            operations: Vec::new(),
            scheme: String::new(),
        }
    }

    /// Adds `op`, replacing the operation with the same relative path and verb.
    pub(crate) fn upsert(&mut self, op: Operation) {
        match self
            .operations
            .iter_mut()
            .find(|o| o.relpath == op.relpath && o.verb == op.verb)
        {
            Some(existing) => *existing = op,
            None => self.operations.push(op),
        }
    }

    /// Removes the relative path (every verb, or only `verb`); the message routemgmt gives
    /// when there is nothing to remove.
    pub(crate) fn remove(&mut self, relpath: &str, verb: Option<&str>) -> Result<(), String> {
        let before = self.operations.len();
        self.operations
            .retain(|o| !(o.relpath == relpath && verb.is_none_or(|v| o.verb == v)));
        if self.operations.len() < before {
            return Ok(());
        }
        Err(match verb {
            Some(v) => format!("path '{relpath}' with operation '{v}' does not exist in the API"),
            None => format!("path '{relpath}' does not exist in the API"),
        })
    }

    /// The swagger 2.0 document of the API; `base` is the scheme and host the action URLs
    /// start with.
    pub(crate) fn swagger(&self, base: &str) -> Value {
        let mut paths = Map::new();
        let mut cases = Vec::new();
        for op in &self.operations {
            let mut operation = json!({
                "operationId": op.operation_id(),
                "x-openwhisk": {
                    "namespace": op.namespace,
                    "package": op.package,
                    "action": op.action,
                    "url": op.action_url(base),
                },
                "responses": {"default": {"description": "Default response"}},
            });
            let params: Vec<Value> = op
                .path_parameters()
                .into_iter()
                .map(|name| {
                    json!({
                        "name": name,
                        "in": "path",
                        "description": format!("Default description for '{name}'"),
                        "required": true,
                        "type": "string",
                    })
                })
                .collect();
            if !params.is_empty() {
                operation["parameters"] = Value::Array(params);
            }
            if let Value::Object(path) =
                paths.entry(op.relpath.clone()).or_insert_with(|| json!({}))
            {
                path.insert(op.verb.clone(), operation);
            }
            let mut target = op.action_url(base);
            if op.response_type == "http" {
                target.push_str(REQUEST_PATH);
            }
            let mut execute = vec![json!({"invoke": {"target-url": target, "verb": "keep"}})];
            if let Some(key) = &op.secure_key {
                execute.push(json!({"set-variable": {"actions": [
                    {"set": SECURE_KEY_TARGET, "value": key}
                ]}}));
            }
            cases.push(json!({"operations": [op.operation_id()], "execute": execute}));
        }
        json!({
            "swagger": "2.0",
            "info": {"title": self.name, "version": "1.0.0"},
            "basePath": self.basepath,
            "paths": paths,
            "x-ibm-configuration": {
                "assembly": {"execute": [{"operation-switch": {"case": cases}}]},
                "cors": {"enabled": true},
            },
        })
    }
}

/// What a `createApi` body asks for.
#[derive(Debug)]
pub(crate) enum Request {
    /// One endpoint added to the API at `basepath` (created when missing).
    Endpoint {
        /// The base path.
        basepath: String,
        /// The API's name, if given.
        name: Option<String>,
        /// The operation.
        operation: Operation,
        /// The scheme of the action URL the client sent.
        scheme: String,
    },
    /// A whole API, replacing any API at its base path.
    Swagger(StoredApi),
}

impl Request {
    /// The base path the request is about.
    pub(crate) fn basepath(&self) -> &str {
        match self {
            Request::Endpoint { basepath, .. } => basepath,
            Request::Swagger(api) => &api.basepath,
        }
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// Reads a `createApi` body's `apidoc` (an object or a JSON string), with routemgmt's
/// messages for what is missing; `_` namespaces become `namespace`, the caller's.
pub(crate) fn parse_apidoc(
    apidoc: &Value,
    namespace: &str,
    response_type: Option<&str>,
) -> Result<Request, ApiError> {
    let doc = string_or_object(apidoc, "apidoc")?;
    if doc.get("namespace").is_none_or(Value::is_null) {
        return Err(bad("apidoc is missing the namespace field"));
    }
    if let Some(swagger) = doc.get("swagger").filter(|v| !v.is_null()) {
        if doc.get("gatewayBasePath").is_some() {
            return Err(bad(
                "swagger and gatewayBasePath are mutually exclusive and cannot be specified together.",
            ));
        }
        let swagger = string_or_object(swagger, "swagger")?;
        return parse_swagger(&swagger, namespace).map(Request::Swagger);
    }
    let field = |name: &str| -> Result<String, ApiError> {
        doc.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| bad(format!("apidoc is missing the {name} field")))
    };
    let basepath = field("gatewayBasePath")?;
    let relpath = field("gatewayPath")?;
    let verb = field("gatewayMethod")?.to_ascii_lowercase();
    let action = doc
        .get("action")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("apidoc is missing the action field."))?;
    let action_field = |name: &str| -> Result<String, ApiError> {
        action
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| bad(format!("action is missing the {name} field.")))
    };
    let action_ns = action_field("namespace")?;
    let (package, name) = split_action(&action_field("name")?)?;
    let response_type = response_type.unwrap_or("json").to_ascii_lowercase();
    let secure_key = action.get("secureKey").and_then(secret_string);
    let operation = Operation {
        relpath,
        verb,
        namespace: own(&action_ns, namespace),
        package,
        action: name,
        response_type,
        secure_key,
    };
    check_paths(&basepath, &operation)?;
    let name = doc
        .get("apiName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let scheme = scheme_of(
        action
            .get("backendUrl")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    Ok(Request::Endpoint {
        basepath,
        name,
        operation,
        scheme,
    })
}

/// A JSON value sent either as itself or as a string holding it.
fn string_or_object(v: &Value, what: &str) -> Result<Value, ApiError> {
    match v {
        Value::Object(_) => Ok(v.clone()),
        Value::String(s) => serde_json::from_str(s).map_err(|_| {
            bad(format!(
                "{what} field cannot be parsed. Ensure it is valid JSON."
            ))
        }),
        _ => Err(bad(format!(
            "{what} field should be a JSON object or a JSON string."
        ))),
    }
}

/// `_` (or nothing) is the caller's namespace.
fn own(ns: &str, namespace: &str) -> String {
    let ns = ns.trim_matches('/');
    if ns.is_empty() || ns == "_" {
        namespace.to_owned()
    } else {
        ns.to_owned()
    }
}

/// A `require-whisk-auth` secret as the header carries it (strings and numbers).
fn secret_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `[/ns/][pkg/]action` → (package or "", action); a leading namespace is dropped (the
/// action's namespace is its own field).
fn split_action(full: &str) -> Result<(String, String), ApiError> {
    let parts: Vec<&str> = full.trim_start_matches('/').split('/').collect();
    let (package, name) = match parts.as_slice() {
        [name] => ("", *name),
        [package, name] if !full.starts_with('/') => (*package, *name),
        [_, name] => ("", *name),
        [_, package, name] => (*package, *name),
        _ => return Err(bad(format!("invalid action name {full}"))),
    };
    for part in [package, name].into_iter().filter(|p| !p.is_empty()) {
        validate_name("action", part).map_err(|e| bad(e.to_string()))?;
    }
    Ok((package.to_owned(), name.to_owned()))
}

/// The base path and relative path start with `/`, the verb and response type are known,
/// and only the relative path has parameters (the CLI's rules).
fn check_paths(basepath: &str, op: &Operation) -> Result<(), ApiError> {
    if !basepath.starts_with('/') {
        return Err(bad(format!("'{basepath}' must begin with '/'.")));
    }
    if basepath.contains('{') {
        return Err(bad(format!(
            "The base path '{basepath}' cannot have parameters. Only the relative path supports path parameters."
        )));
    }
    if !op.relpath.starts_with('/') {
        return Err(bad(format!("'{}' must begin with '/'.", op.relpath)));
    }
    if !VERBS.contains(&op.verb.as_str()) {
        return Err(bad(format!(
            "'{}' is not a valid API verb.  Valid values are: {}",
            op.verb.to_ascii_uppercase(),
            VERBS.map(str::to_ascii_uppercase).join(", ")
        )));
    }
    if !RESPONSE_TYPES.contains(&op.response_type.as_str()) {
        return Err(bad(format!(
            "Invalid response type '{}'. Valid values are: {}",
            op.response_type,
            RESPONSE_TYPES.join(", ")
        )));
    }
    Ok(())
}

/// A whole API from a swagger document whose operations carry `x-openwhisk`; the response
/// type is the extension of the operation's action URL, the secret the `set-variable` of its
/// invocation case.
fn parse_swagger(swagger: &Value, namespace: &str) -> Result<StoredApi, ApiError> {
    let basepath = swagger
        .get("basePath")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("swagger is missing the basePath field."))?;
    let paths = swagger
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("swagger is missing the paths field."))?;
    let info = swagger
        .get("info")
        .ok_or_else(|| bad("swagger is missing the info field."))?;
    let title = info.get("title").and_then(Value::as_str);
    let cases = swagger
        .pointer("/x-ibm-configuration/assembly/execute/0/operation-switch/case")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut api = StoredApi::new(basepath, title);
    for (relpath, ops) in paths {
        let Some(ops) = ops.as_object() else {
            continue;
        };
        for (verb, op) in ops {
            let verb = verb.to_ascii_lowercase();
            if !VERBS.contains(&verb.as_str()) {
                // Swagger allows `parameters` and vendor extensions beside the verbs.
                continue;
            }
            let ow = op.get("x-openwhisk").ok_or_else(|| {
                bad(format!(
                    "operation {verb} {relpath} has no x-openwhisk action: edgewhisk routes only to actions"
                ))
            })?;
            let text = |k: &str| ow.get(k).and_then(Value::as_str).unwrap_or_default();
            let url = text("url");
            let case = op
                .get("operationId")
                .and_then(Value::as_str)
                .and_then(|id| {
                    cases
                        .iter()
                        .find(|c| c.pointer("/operations/0").and_then(Value::as_str) == Some(id))
                });
            let (package, action) = match text("package") {
                "" | "default" => split_action(text("action"))?,
                p => (p.to_owned(), text("action").to_owned()),
            };
            let operation = Operation {
                relpath: relpath.clone(),
                verb,
                namespace: own(text("namespace"), namespace),
                package,
                action,
                response_type: response_type_of(url),
                secure_key: case.and_then(secure_key_of),
            };
            check_paths(basepath, &operation)?;
            if api.scheme.is_empty() {
                api.scheme = scheme_of(url);
            }
            api.upsert(operation);
        }
    }
    Ok(api)
}

/// The extension of a web action URL (`….json`, `….http$(request.path)`); `json` when it
/// has none that web actions know.
fn response_type_of(url: &str) -> String {
    let url = url.strip_suffix(REQUEST_PATH).unwrap_or(url);
    let last = url.rsplit('/').next().unwrap_or_default();
    last.rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .filter(|ext| RESPONSE_TYPES.contains(&ext.as_str()))
        .unwrap_or_else(|| "json".to_owned())
}

/// The scheme a client addresses edgewhisk with, from an action URL it built from its API
/// host; empty when unknown. The Serverless plugin prefixes `https://` to an API host that
/// already has a scheme (`https://http://host/...`): the inner one is meant.
fn scheme_of(url: &str) -> String {
    let url = url
        .strip_prefix("https://")
        .filter(|rest| rest.contains("://"))
        .unwrap_or(url);
    match url.split_once("://") {
        Some((scheme @ ("http" | "https"), _)) => scheme.to_owned(),
        _ => String::new(),
    }
}

/// The `X-Require-Whisk-Auth` value an invocation case sets.
fn secure_key_of(case: &Value) -> Option<String> {
    case.get("execute")?.as_array()?.iter().find_map(|step| {
        step.pointer("/set-variable/actions")?
            .as_array()?
            .iter()
            .find(|a| a.get("set").and_then(Value::as_str) == Some(SECURE_KEY_TARGET))
            .and_then(|a| a.get("value"))
            .and_then(secret_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Value {
        json!({
            "namespace": "_",
            "gatewayBasePath": "/hello",
            "gatewayPath": "/books/{id}",
            "gatewayMethod": "GET",
            "id": "API:_:/hello",
            "action": {
                "name": "pkg/books",
                "namespace": "_",
                "backendMethod": "GET",
                "backendUrl": "http://h/api/v1/web/_/pkg/books.http",
                "authkey": "k",
            },
        })
    }

    #[test]
    fn an_endpoint_resolves_the_callers_namespace_and_its_path_parameters() {
        let Request::Endpoint {
            basepath,
            name,
            operation,
            scheme,
        } = parse_apidoc(&endpoint(), "guest", Some("http")).unwrap()
        else {
            panic!("an endpoint")
        };
        assert_eq!((basepath.as_str(), name), ("/hello", None));
        assert_eq!(scheme, "http");
        assert_eq!(operation.namespace, "guest");
        assert_eq!(
            (operation.package.as_str(), operation.action.as_str()),
            ("pkg", "books")
        );
        assert_eq!(operation.verb, "get");
        assert_eq!(operation.path_parameters(), vec!["id"]);
    }

    #[test]
    fn missing_fields_get_routemgmts_messages() {
        let mut doc = endpoint();
        doc.as_object_mut().unwrap().remove("gatewayPath");
        let e = parse_apidoc(&doc, "guest", None).unwrap_err();
        assert_eq!(e.message(), "apidoc is missing the gatewayPath field");
        let e = parse_apidoc(&json!("{not json"), "guest", None).unwrap_err();
        assert!(e.message().contains("cannot be parsed"), "{}", e.message());
    }

    #[test]
    fn a_swagger_document_round_trips() {
        let Request::Endpoint { operation, .. } =
            parse_apidoc(&endpoint(), "guest", Some("http")).unwrap()
        else {
            panic!("an endpoint")
        };
        let mut api = StoredApi::new("/hello", Some("Books"));
        api.scheme = "http".into();
        api.upsert(Operation {
            secure_key: Some("s3cret".into()),
            ..operation
        });
        let swagger = api.swagger("http://h");
        assert_eq!(
            swagger["paths"]["/books/{id}"]["get"]["x-openwhisk"]["url"],
            "http://h/api/v1/web/guest/pkg/books.http"
        );
        let back = parse_swagger(&swagger, "guest").unwrap();
        assert_eq!(back, api);
    }

    #[test]
    fn response_types_come_from_the_action_url() {
        assert_eq!(
            response_type_of("https://h/api/v1/web/n/default/a.http$(request.path)"),
            "http"
        );
        assert_eq!(
            response_type_of("https://http://h:1/api/v1/web/n/default/a.text"),
            "text"
        );
        assert_eq!(response_type_of("https://h/api/v1/web/n/default/a"), "json");
    }

    #[test]
    fn the_scheme_is_the_one_the_client_used() {
        assert_eq!(
            scheme_of("https://http://h:1/api/v1/web/n/default/a.json"),
            "http"
        );
        assert_eq!(scheme_of("https://h/api/v1/web/n/default/a.json"), "https");
        assert_eq!(scheme_of("http://h/x"), "http");
        assert_eq!(scheme_of("h/x"), "");
    }

    #[test]
    fn removing_what_is_not_there_says_so() {
        let mut api = StoredApi::new("/b", None);
        assert_eq!(
            api.remove("/x", Some("get")).unwrap_err(),
            "path '/x' with operation 'get' does not exist in the API"
        );
    }
}
