//! Typed async client for the OpenWhisk REST subset that edgewhisk serves.
//!
//! It owns the client side of the wire contract: the API host rules (`host:port` without a
//! scheme means `https://`), Basic authentication with a `uuid:key` string, the
//! `/api/v1/namespaces/<ns>/...` routes, and decoding of the `{"error", "code"}` error body
//! into [`ClientError::Api`]. It is used by the CLI, the bench and the end-to-end tests, so it
//! returns plain `serde_json::Value` documents (exactly what the server sent) rather than
//! re-shaping them. It deliberately knows nothing about `.wskprops`, output formatting or exit
//! codes: those belong to the CLI.
//!
//! Entity names may be short (`hello`, `pkg/hello`) — resolved in the client's namespace, `_`
//! unless set with [`Client::with_namespace`] — or fully qualified (`/guest/hello`,
//! `/guest/pkg/hello`), in which case the namespace comes from the name, as `wsk` does.

pub use reqwest::{Method, Url};

use reqwest::StatusCode;
use serde_json::Value;
use std::fmt;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API host could not be turned into a URL.
    #[error("invalid API host '{host}': {reason}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The server answered with an error status; `error` and `code` come from its
    /// `{"error", "code"}` body when it sent one.
    #[error("{}", api_message(error, code.as_deref()))]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's `error` text (or the raw body / status reason when it sent none).
        error: String,
        /// The server's `code` (transaction id), when present.
        code: Option<String>,
        /// The whole body as JSON (`Value::Null` when it was not JSON).
        body: Value,
    },
    /// The request could not be sent or its body could not be read.
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    /// A success response did not carry valid JSON.
    #[error("the server response is not valid JSON: {0}")]
    Decode(#[from] serde_json::Error),
}

fn api_message(error: &str, code: Option<&str>) -> String {
    match code {
        Some(code) => format!("{error} (code {code})"),
        None => error.to_owned(),
    }
}

impl ClientError {
    /// The HTTP status of an API error, `None` for other failures.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Paging of a collection list (`limit`, `skip`); `None` leaves the server default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListPage {
    /// At most this many entries (`0` means the server maximum).
    pub limit: Option<u32>,
    /// Skip this many entries from the newest.
    pub skip: Option<u32>,
}

/// Filters of `GET activations`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivationQuery {
    /// Only activations of this action (`name` or `pkg/name`; a fully qualified name also
    /// selects the namespace).
    pub name: Option<String>,
    /// At most this many records.
    pub limit: Option<u32>,
    /// Skip this many records.
    pub skip: Option<u32>,
    /// Only records that started at or after this epoch-ms instant.
    pub since: Option<u64>,
    /// Only records that started at or before this epoch-ms instant.
    pub upto: Option<u64>,
    /// Full records (with response and logs) instead of summaries.
    pub docs: bool,
}

/// How to invoke an action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvokeOptions {
    /// Wait for the result.
    pub blocking: bool,
    /// Return only the result (implies nothing on the server unless `blocking`).
    pub result: bool,
    /// Maximum wait of a blocking invoke in ms (server default 60000).
    pub timeout: Option<u64>,
}

/// The answer to an invoke: a finished activation, an accepted one, or an activation whose
/// action failed (an application/developer error is a result, not an API error).
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// HTTP status: 200 success, 202 accepted (non-blocking, or blocking wait expired),
    /// 502 application/developer error, 500 whisk error with a record.
    pub status: u16,
    /// The activation id, from the `x-openwhisk-activation-id` header or the body.
    pub activation_id: Option<String>,
    /// The body: `{"activationId"}`, the activation record, or only the result.
    pub body: Value,
}

impl Invocation {
    /// True when the server only accepted the activation (202).
    pub fn is_accepted(&self) -> bool {
        self.status == 202
    }

    /// True when the activation finished successfully (200).
    pub fn is_success(&self) -> bool {
        self.status == 200
    }
}

/// A typed client for one API host and one key. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Option<(String, String)>,
    namespace: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key is a secret: never print it.
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("namespace", &self.namespace)
            .field("auth", &self.auth.as_ref().map(|(user, _)| user))
            .finish()
    }
}

/// Turns an `APIHOST` value into the server's base URL: no scheme → `https://`.
pub fn api_host_url(apihost: &str) -> Result<Url, ClientError> {
    let trimmed = apihost.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(ClientError::InvalidHost {
            host: apihost.to_owned(),
            reason: "the API host is empty".into(),
        });
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| ClientError::InvalidHost {
        host: apihost.to_owned(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(ClientError::InvalidHost {
            host: apihost.to_owned(),
            reason: format!("unsupported scheme '{other}'"),
        }),
    }
}

/// Splits `/ns/rest` into (`Some(ns)`, `rest`); a short name gives (`None`, name).
pub fn split_qualified(name: &str) -> (Option<&str>, &str) {
    match name.strip_prefix('/') {
        Some(rest) => match rest.split_once('/') {
            Some((ns, entity)) => (Some(ns), entity),
            None => (Some(rest), ""),
        },
        None => (None, name),
    }
}

impl Client {
    /// A client for `apihost` (see [`api_host_url`]) authenticating with `auth`
    /// (`uuid:key`; empty for no authentication). `insecure` accepts any TLS certificate.
    pub fn new(apihost: &str, auth: &str, insecure: bool) -> Result<Self, ClientError> {
        let base = api_host_url(apihost)?;
        let auth = if auth.is_empty() {
            None
        } else {
            let (user, key) = auth.split_once(':').unwrap_or((auth, ""));
            Some((user.to_owned(), key.to_owned()))
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("edgewhisk-client/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(insecure)
            .build()?;
        Ok(Self {
            http,
            base,
            auth,
            namespace: "_".into(),
        })
    }

    /// The same client addressing `namespace` for short names (default `_`).
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.to_owned();
        self
    }

    /// The namespace short names are resolved in (`_` unless set).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The server's base URL (scheme, host, port).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `GET /api/v1`, sent without credentials (as `wsk property get` does).
    pub async fn info(&self) -> Result<Value, ClientError> {
        let url = self.url(&["api", "v1"]);
        let resp = self.http.get(url).send().await?;
        decode(resp).await
    }

    /// `GET /api/v1/namespaces`: the caller's namespace names.
    pub async fn namespaces(&self) -> Result<Vec<String>, ClientError> {
        let v = self.send(Method::GET, &["namespaces"], &[], None).await?;
        Ok(serde_json::from_value(v)?)
    }

    /// `GET namespaces/<ns>/limits`.
    pub async fn limits(&self) -> Result<Value, ClientError> {
        let ns = self.namespace.clone();
        self.send(Method::GET, &["namespaces", &ns, "limits"], &[], None)
            .await
    }

    /// `GET actions` (or `actions/<pkg>/` when `package` is given): action summaries.
    pub async fn list_actions(
        &self,
        package: Option<&str>,
        page: ListPage,
    ) -> Result<Vec<Value>, ClientError> {
        match package {
            Some(pkg) => {
                let (ns, pkg) = self.resolve(pkg);
                let pkg = pkg.trim_end_matches('/');
                // The trailing empty segment gives the `actions/<pkg>/` route.
                self.list_at(&["namespaces", &ns, "actions", pkg, ""], page)
                    .await
            }
            None => self.list_in_namespace("actions", page).await,
        }
    }

    /// `GET actions/<name>?code=<code>`: the full action.
    pub async fn get_action(&self, name: &str, code: bool) -> Result<Value, ClientError> {
        let query = [("code", code.to_string())];
        self.on_entity(Method::GET, "actions", name, &query, None)
            .await
    }

    /// `PUT actions/<name>?overwrite=<overwrite>` with an `ActionPut`-shaped body.
    pub async fn put_action(
        &self,
        name: &str,
        body: &Value,
        overwrite: bool,
    ) -> Result<Value, ClientError> {
        self.put_entity("actions", name, body, overwrite).await
    }

    /// `DELETE actions/<name>`: returns the deleted action.
    pub async fn delete_action(&self, name: &str) -> Result<Value, ClientError> {
        self.on_entity(Method::DELETE, "actions", name, &[], None)
            .await
    }

    /// `GET packages` of the client's namespace, or of `namespace` when given (another
    /// namespace shows only its published packages): package summaries.
    pub async fn list_packages(
        &self,
        namespace: Option<&str>,
        page: ListPage,
    ) -> Result<Vec<Value>, ClientError> {
        let ns = namespace.map_or(self.namespace.as_str(), |n| n.trim_matches('/'));
        self.list_at(&["namespaces", ns, "packages"], page).await
    }

    /// `GET packages/<name>`: the package with its `actions` and `feeds`.
    pub async fn get_package(&self, name: &str) -> Result<Value, ClientError> {
        self.on_entity(Method::GET, "packages", name, &[], None)
            .await
    }

    /// `PUT packages/<name>?overwrite=<overwrite>` with a `PackagePut`-shaped body (a
    /// binding carries `binding: {namespace, name}`).
    pub async fn put_package(
        &self,
        name: &str,
        body: &Value,
        overwrite: bool,
    ) -> Result<Value, ClientError> {
        self.put_entity("packages", name, body, overwrite).await
    }

    /// `DELETE packages/<name>` (with `force=true` also deleting its actions): returns the
    /// deleted package.
    pub async fn delete_package(&self, name: &str, force: bool) -> Result<Value, ClientError> {
        let query: Vec<(&str, String)> = if force {
            vec![("force", "true".to_owned())]
        } else {
            Vec::new()
        };
        self.on_entity(Method::DELETE, "packages", name, &query, None)
            .await
    }

    /// `POST actions/<name>?blocking=..&result=..` with `params` as the body.
    ///
    /// 200 and 202 are returned as an [`Invocation`]; so are 502 and 500 bodies without a
    /// `code` field, which are activation outcomes (application, developer or whisk error),
    /// not API errors. Anything else is a [`ClientError::Api`].
    pub async fn invoke_action(
        &self,
        name: &str,
        params: &Value,
        opts: InvokeOptions,
    ) -> Result<Invocation, ClientError> {
        let segs = self.entity_segments("actions", name);
        let mut query = vec![
            ("blocking", opts.blocking.to_string()),
            ("result", opts.result.to_string()),
        ];
        if let Some(t) = opts.timeout {
            query.push(("timeout", t.to_string()));
        }
        let mut path = vec!["api", "v1"];
        path.extend(segs.iter().map(String::as_str));
        let url = self.url_with(&path, &query);
        let resp = self.authed(self.http.post(url)).json(params).send().await?;
        let status = resp.status();
        let header_id = resp
            .headers()
            .get("x-openwhisk-activation-id")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await?;
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) if status.is_success() => return Err(e.into()),
                Err(_) => return Err(api_error(status, &text)),
            }
        };
        // A blocking invoke whose action failed answers 502 (or 500 for a whisk error) with
        // the activation or its result and no `code`: that is an outcome, not an API error.
        let is_outcome = matches!(status.as_u16(), 502 | 500)
            && (body.is_object() || body.is_array())
            && body.get("code").is_none();
        if status.is_success() || is_outcome {
            let activation_id = header_id.or_else(|| {
                body.get("activationId")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            return Ok(Invocation {
                status: status.as_u16(),
                activation_id,
                body,
            });
        }
        Err(api_error(status, &text))
    }

    /// `GET activations` with filters: summaries, or full records with `docs`.
    pub async fn list_activations(&self, q: &ActivationQuery) -> Result<Vec<Value>, ClientError> {
        let mut ns = self.namespace.clone();
        let mut query = Vec::new();
        if let Some(name) = &q.name {
            let (qns, rest) = split_qualified(name);
            if let Some(qns) = qns {
                ns = qns.to_owned();
            }
            if !rest.is_empty() {
                query.push(("name", rest.to_owned()));
            }
        }
        push_page(
            &mut query,
            ListPage {
                limit: q.limit,
                skip: q.skip,
            },
        );
        if let Some(s) = q.since {
            query.push(("since", s.to_string()));
        }
        if let Some(u) = q.upto {
            query.push(("upto", u.to_string()));
        }
        if q.docs {
            query.push(("docs", "true".into()));
        }
        let v = self
            .send(
                Method::GET,
                &["namespaces", &ns, "activations"],
                &query,
                None,
            )
            .await?;
        Ok(serde_json::from_value(v)?)
    }

    /// `GET activations/<id>`: the extended record.
    pub async fn get_activation(&self, id: &str) -> Result<Value, ClientError> {
        let ns = self.namespace.clone();
        self.send(
            Method::GET,
            &["namespaces", &ns, "activations", id],
            &[],
            None,
        )
        .await
    }

    /// `GET activations/<id>/logs`: `{"logs": [...]}`.
    pub async fn activation_logs(&self, id: &str) -> Result<Value, ClientError> {
        let ns = self.namespace.clone();
        self.send(
            Method::GET,
            &["namespaces", &ns, "activations", id, "logs"],
            &[],
            None,
        )
        .await
    }

    /// `GET activations/<id>/result`: `{"result", "success", "status", "size"?}`.
    pub async fn activation_result(&self, id: &str) -> Result<Value, ClientError> {
        let ns = self.namespace.clone();
        self.send(
            Method::GET,
            &["namespaces", &ns, "activations", id, "result"],
            &[],
            None,
        )
        .await
    }

    /// Any authenticated request below `/api/v1/`: `path` segments are percent-encoded one
    /// by one (e.g. `["namespaces", "_", "triggers", "t"]`). Non-2xx answers are
    /// [`ClientError::Api`].
    pub async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let mut segs = vec!["api", "v1"];
        segs.extend_from_slice(path);
        let url = self.url_with(&segs, query);
        let mut req = self.authed(self.http.request(method, url));
        if let Some(b) = body {
            req = req.json(b);
        }
        decode(req.send().await?).await
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Some((user, key)) => req.basic_auth(user, Some(key)),
            None => req,
        }
    }

    /// (namespace, entity path) of a possibly fully qualified name.
    fn resolve<'a>(&self, name: &'a str) -> (String, &'a str) {
        match split_qualified(name) {
            (Some(ns), rest) => (ns.to_owned(), rest),
            (None, rest) => (self.namespace.clone(), rest),
        }
    }

    /// `/api/v1`-relative segments of `namespaces/<ns>/<collection>/<pkg>/<name>`.
    fn entity_segments(&self, collection: &str, name: &str) -> Vec<String> {
        let (ns, rest) = self.resolve(name);
        let mut segs = vec!["namespaces".to_owned(), ns, collection.to_owned()];
        segs.extend(rest.split('/').map(str::to_owned));
        segs
    }

    /// `method namespaces/<ns>/<collection>/[<pkg>/]<name>` for a possibly fully qualified
    /// `name`.
    async fn on_entity(
        &self,
        method: Method,
        collection: &str,
        name: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let segs = self.entity_segments(collection, name);
        self.send(method, &as_strs(&segs), query, body).await
    }

    /// `PUT <collection>/<name>?overwrite=<overwrite>` with `body`: the stored entity.
    async fn put_entity(
        &self,
        collection: &str,
        name: &str,
        body: &Value,
        overwrite: bool,
    ) -> Result<Value, ClientError> {
        let query = [("overwrite", overwrite.to_string())];
        self.on_entity(Method::PUT, collection, name, &query, Some(body))
            .await
    }

    /// `GET <segs>` with `limit` and `skip`: the list items.
    async fn list_at(&self, segs: &[&str], page: ListPage) -> Result<Vec<Value>, ClientError> {
        let mut query = Vec::new();
        push_page(&mut query, page);
        let v = self.send(Method::GET, segs, &query, None).await?;
        Ok(serde_json::from_value(v)?)
    }

    /// `GET <collection>` of the client's namespace, paged.
    async fn list_in_namespace(
        &self,
        collection: &str,
        page: ListPage,
    ) -> Result<Vec<Value>, ClientError> {
        self.list_at(&["namespaces", &self.namespace, collection], page)
            .await
    }

    fn url(&self, segs: &[&str]) -> Url {
        self.url_with(segs, &[])
    }

    fn url_with(&self, segs: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segs);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn push_page(query: &mut Vec<(&'static str, String)>, page: ListPage) {
    if let Some(l) = page.limit {
        query.push(("limit", l.to_string()));
    }
    if let Some(s) = page.skip {
        query.push(("skip", s.to_string()));
    }
}

async fn decode(resp: reqwest::Response) -> Result<Value, ClientError> {
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        return Err(api_error(status, &text));
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_str(&text)?)
}

/// Builds [`ClientError::Api`] from a non-2xx answer.
fn api_error(status: StatusCode, text: &str) -> ClientError {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let error = match body.get("error") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None if !text.trim().is_empty() => text.trim().to_owned(),
        None => status
            .canonical_reason()
            .map_or_else(|| format!("HTTP status {}", status.as_u16()), str::to_owned),
    };
    let code = match body.get("code") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    ClientError::Api {
        status: status.as_u16(),
        error,
        code,
        body,
    }
}

/// Triggers and rules (OpenWhisk `Triggers.scala`, `Rules.scala`).
impl Client {
    /// `GET triggers`: trigger summaries.
    pub async fn list_triggers(&self, page: ListPage) -> Result<Vec<Value>, ClientError> {
        self.list_in_namespace("triggers", page).await
    }

    /// `GET triggers/<name>`: the trigger with its `rules` map.
    pub async fn get_trigger(&self, name: &str) -> Result<Value, ClientError> {
        self.on_entity(Method::GET, "triggers", name, &[], None)
            .await
    }

    /// `PUT triggers/<name>?overwrite=<overwrite>` with a `TriggerPut`-shaped body.
    pub async fn put_trigger(
        &self,
        name: &str,
        body: &Value,
        overwrite: bool,
    ) -> Result<Value, ClientError> {
        self.put_entity("triggers", name, body, overwrite).await
    }

    /// `DELETE triggers/<name>`: returns the deleted trigger.
    pub async fn delete_trigger(&self, name: &str) -> Result<Value, ClientError> {
        self.on_entity(Method::DELETE, "triggers", name, &[], None)
            .await
    }

    /// `POST triggers/<name>` with `params` as the body: the trigger activation's id, or
    /// `None` when the server answered 204 (no active rule, nothing fired).
    pub async fn fire_trigger(
        &self,
        name: &str,
        params: &Value,
    ) -> Result<Option<String>, ClientError> {
        let v = self
            .on_entity(Method::POST, "triggers", name, &[], Some(params))
            .await?;
        Ok(v.get("activationId")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// `GET rules`: rules without their status.
    pub async fn list_rules(&self, page: ListPage) -> Result<Vec<Value>, ClientError> {
        self.list_in_namespace("rules", page).await
    }

    /// `GET rules/<name>`: the rule with its `status`.
    pub async fn get_rule(&self, name: &str) -> Result<Value, ClientError> {
        self.on_entity(Method::GET, "rules", name, &[], None).await
    }

    /// `PUT rules/<name>?overwrite=<overwrite>` with `{trigger, action}` (names such as
    /// `/_/t`) and optional `annotations`, `publish`, `version`.
    pub async fn put_rule(
        &self,
        name: &str,
        body: &Value,
        overwrite: bool,
    ) -> Result<Value, ClientError> {
        self.put_entity("rules", name, body, overwrite).await
    }

    /// `DELETE rules/<name>`: returns the deleted rule (status `inactive`).
    pub async fn delete_rule(&self, name: &str) -> Result<Value, ClientError> {
        self.on_entity(Method::DELETE, "rules", name, &[], None)
            .await
    }

    /// `POST rules/<name>` with `{"status": "active"|"inactive"}`. The server answers a plain
    /// `OK`, which is not JSON, so the body is not decoded.
    pub async fn set_rule_state(&self, name: &str, active: bool) -> Result<(), ClientError> {
        let segs = self.entity_segments("rules", name);
        let mut path = vec!["api", "v1"];
        path.extend(segs.iter().map(String::as_str));
        let status = if active { "active" } else { "inactive" };
        let resp = self
            .authed(self.http.post(self.url(&path)))
            .json(&serde_json::json!({ "status": status }))
            .send()
            .await?;
        let code = resp.status();
        let text = resp.text().await?;
        if code.is_success() {
            Ok(())
        } else {
            Err(api_error(code, &text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// What the fake server saw: request line, headers (lowercased names) and body.
    #[derive(Debug)]
    struct Seen {
        line: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Serves one request with `status`, extra header lines and `body`; returns the base URL
    /// and a handle yielding what was received.
    async fn serve_once(
        status: u16,
        extra_headers: &'static str,
        body: &'static str,
    ) -> (String, tokio::task::JoinHandle<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let head_end = loop {
                let mut chunk = [0u8; 4096];
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0, "client closed before sending a full request head");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let mut lines = head.split("\r\n");
            let line = lines.next().unwrap().to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            while buf.len() < head_end + len {
                let mut chunk = [0u8; 4096];
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0, "client closed before sending its body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let req_body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n{body}",
                body.len()
            );
            sock.write_all(resp.as_bytes()).await.unwrap();
            sock.shutdown().await.unwrap();
            Seen {
                line,
                headers,
                body: req_body,
            }
        });
        (format!("http://{addr}"), handle)
    }

    const AUTH: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:secret";

    #[test]
    fn api_host_without_scheme_means_https_and_http_is_kept() {
        assert_eq!(
            api_host_url("example.org").unwrap().as_str(),
            "https://example.org/"
        );
        assert_eq!(
            api_host_url("http://127.0.0.1:3233/").unwrap().as_str(),
            "http://127.0.0.1:3233/"
        );
        assert!(matches!(
            api_host_url("  "),
            Err(ClientError::InvalidHost { .. })
        ));
        assert!(api_host_url("ftp://x").is_err());
    }

    #[test]
    fn qualified_names_carry_their_namespace() {
        assert_eq!(split_qualified("/guest/pkg/a"), (Some("guest"), "pkg/a"));
        assert_eq!(split_qualified("/guest"), (Some("guest"), ""));
        assert_eq!(split_qualified("pkg/a"), (None, "pkg/a"));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let c = Client::new("http://h", AUTH, false).unwrap();
        let dbg = format!("{c:?}");
        assert!(dbg.contains("23bc46b1") && !dbg.contains("secret"), "{dbg}");
    }

    #[tokio::test]
    async fn put_action_sends_basic_auth_overwrite_and_json_body() {
        let (base, seen) = serve_once(200, "", r#"{"name":"hello"}"#).await;
        let c = Client::new(&base, AUTH, false).unwrap();
        let v = c
            .put_action(
                "hello",
                &json!({"exec":{"kind":"nodejs:default","code":"x"}}),
                true,
            )
            .await
            .unwrap();
        assert_eq!(v, json!({"name":"hello"}));
        let seen = seen.await.unwrap();
        assert_eq!(
            seen.line,
            "PUT /api/v1/namespaces/_/actions/hello?overwrite=true HTTP/1.1"
        );
        let expected = format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, AUTH)
        );
        assert_eq!(seen.header("authorization"), Some(expected.as_str()));
        let body: Value = serde_json::from_str(&seen.body).unwrap();
        assert_eq!(body["exec"]["kind"], "nodejs:default");
    }

    #[tokio::test]
    async fn info_is_requested_without_credentials() {
        let (base, seen) = serve_once(200, "", r#"{"build":"b","buildno":"1"}"#).await;
        let c = Client::new(&base, AUTH, false).unwrap();
        assert_eq!(c.info().await.unwrap()["buildno"], "1");
        let seen = seen.await.unwrap();
        assert_eq!(seen.line, "GET /api/v1 HTTP/1.1");
        assert_eq!(seen.header("authorization"), None);
    }

    #[tokio::test]
    async fn fully_qualified_packaged_names_and_spaces_are_encoded_per_segment() {
        let (base, seen) = serve_once(200, "", "{}").await;
        let c = Client::new(&base, AUTH, false).unwrap();
        c.get_action("/other/pkg/my action", false).await.unwrap();
        assert_eq!(
            seen.await.unwrap().line,
            "GET /api/v1/namespaces/other/actions/pkg/my%20action?code=false HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn package_listing_uses_the_trailing_slash_route_and_paging() {
        let (base, seen) = serve_once(200, "", "[]").await;
        let c = Client::new(&base, AUTH, false).unwrap();
        let page = ListPage {
            limit: Some(30),
            skip: Some(0),
        };
        assert!(c.list_actions(Some("pkg"), page).await.unwrap().is_empty());
        assert_eq!(
            seen.await.unwrap().line,
            "GET /api/v1/namespaces/_/actions/pkg/?limit=30&skip=0 HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn package_routes_address_the_packages_collection() {
        let (base, seen) = serve_once(200, "", "[]").await;
        let c = Client::new(&base, AUTH, false).unwrap();
        c.list_packages(Some("/whisk.system"), ListPage::default())
            .await
            .unwrap();
        assert_eq!(
            seen.await.unwrap().line,
            "GET /api/v1/namespaces/whisk.system/packages HTTP/1.1"
        );
        let (base, seen) = serve_once(200, "", "{}").await;
        let c = Client::new(&base, AUTH, false).unwrap();
        let body = json!({"binding": {"namespace": "whisk.system", "name": "utils"}});
        c.put_package("myutils", &body, false).await.unwrap();
        let seen = seen.await.unwrap();
        assert_eq!(
            seen.line,
            "PUT /api/v1/namespaces/_/packages/myutils?overwrite=false HTTP/1.1"
        );
        assert_eq!(serde_json::from_str::<Value>(&seen.body).unwrap(), body);
        let (base, seen) = serve_once(200, "", "{}").await;
        let c = Client::new(&base, AUTH, false).unwrap();
        c.delete_package("/guest/p", true).await.unwrap();
        assert_eq!(
            seen.await.unwrap().line,
            "DELETE /api/v1/namespaces/guest/packages/p?force=true HTTP/1.1"
        );
    }

    #[tokio::test]
    async fn error_bodies_keep_status_message_and_code() {
        let (base, _seen) = serve_once(
            409,
            "",
            r#"{"error":"resource already exists","code":"abc"}"#,
        )
        .await;
        let c = Client::new(&base, AUTH, false).unwrap();
        let err = c.put_action("x", &json!({}), false).await.unwrap_err();
        assert_eq!(err.status(), Some(409));
        assert_eq!(err.to_string(), "resource already exists (code abc)");
        match err {
            ClientError::Api { error, code, .. } => {
                assert_eq!(error, "resource already exists");
                assert_eq!(code.as_deref(), Some("abc"));
            }
            other => panic!("expected an API error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn non_json_error_bodies_become_the_message() {
        let (base, _seen) = serve_once(503, "", "pool exhausted").await;
        let c = Client::new(&base, AUTH, false).unwrap();
        let err = c.namespaces().await.unwrap_err();
        assert_eq!(err.status(), Some(503));
        assert_eq!(err.to_string(), "pool exhausted");
    }

    #[tokio::test]
    async fn application_error_without_code_is_an_invocation_not_an_error() {
        let (base, seen) = serve_once(
            502,
            "x-openwhisk-activation-id: 0123456789abcdef0123456789abcdef\r\n",
            r#"{"activationId":"0123456789abcdef0123456789abcdef","response":{"success":false}}"#,
        )
        .await;
        let c = Client::new(&base, AUTH, false).unwrap();
        let opts = InvokeOptions {
            blocking: true,
            ..InvokeOptions::default()
        };
        let inv = c.invoke_action("x", &json!({"a":1}), opts).await.unwrap();
        assert_eq!(inv.status, 502);
        assert!(!inv.is_success() && !inv.is_accepted());
        assert_eq!(
            inv.activation_id.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        let seen = seen.await.unwrap();
        assert_eq!(
            seen.line,
            "POST /api/v1/namespaces/_/actions/x?blocking=true&result=false HTTP/1.1"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&seen.body).unwrap(),
            json!({"a":1})
        );
    }

    #[tokio::test]
    async fn invoke_errors_with_code_stay_api_errors() {
        let (base, _seen) = serve_once(
            502,
            "",
            r#"{"error":"The action did not produce a valid response","code":"t1"}"#,
        )
        .await;
        let c = Client::new(&base, AUTH, false).unwrap();
        let err = c
            .invoke_action("x", &json!({}), InvokeOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(502));
    }

    #[tokio::test]
    async fn accepted_invocation_reads_the_id_from_the_body() {
        let (base, _seen) = serve_once(
            202,
            "",
            r#"{"activationId":"0123456789abcdef0123456789abcdef"}"#,
        )
        .await;
        let c = Client::new(&base, AUTH, false).unwrap();
        let inv = c
            .invoke_action("x", &json!({}), InvokeOptions::default())
            .await
            .unwrap();
        assert!(inv.is_accepted());
        assert_eq!(
            inv.activation_id.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
    }

    #[tokio::test]
    async fn activation_filters_become_query_parameters() {
        let (base, seen) = serve_once(200, "", "[]").await;
        let c = Client::new(&base, AUTH, false).unwrap();
        let q = ActivationQuery {
            name: Some("/guest/hello".into()),
            limit: Some(0),
            since: Some(5),
            docs: true,
            ..ActivationQuery::default()
        };
        c.list_activations(&q).await.unwrap();
        assert_eq!(
            seen.await.unwrap().line,
            "GET /api/v1/namespaces/guest/activations?name=hello&limit=0&since=5&docs=true HTTP/1.1"
        );
    }
}
