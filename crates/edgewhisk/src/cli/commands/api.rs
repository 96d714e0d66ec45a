//! `wsk api create|get|delete|list`: the API gateway's routes, through the route management
//! endpoints `/api/v1/web/whisk.system/apimgmt/{createApi,getApi,deleteApi}.http`, with the
//! arguments, messages and list layout of `wsk` (`commands/api.go` of openwhisk-cli).

use crate::cli::error::CliError;
use crate::cli::output::pretty_json;
use crate::cli::props::Ctx;
use edgewhisk_client::{Client, ClientError, Method, split_qualified};
use serde_json::{Value, json};

/// The verbs `wsk api` accepts.
const VERBS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// `wsk api` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum ApiCommand {
    /// Create a new API.
    Create(CreateArgs),
    /// Get API details.
    Get(GetArgs),
    /// Delete an API.
    Delete(DeleteArgs),
    /// List APIs.
    List(ListArgs),
}

/// Arguments of `api create`: `([BASE_PATH] API_PATH API_VERB ACTION | --config-file FILE)`.
#[derive(clap::Args, Debug)]
pub(crate) struct CreateArgs {
    /// [BASE_PATH] API_PATH API_VERB ACTION.
    #[arg(num_args = 0..=4)]
    args: Vec<String>,
    /// Friendly name of the API; ignored when CFG_FILE is specified (default BASE_PATH).
    #[arg(short = 'n', long)]
    apiname: Option<String>,
    /// CFG_FILE containing API configuration in swagger JSON format.
    #[arg(short = 'c', long = "config-file")]
    swagger_file: Option<std::path::PathBuf>,
    /// Set the web action response TYPE. Possible values are html, http, json, text, svg.
    #[arg(long = "response-type", default_value = "json")]
    response_type: String,
}

/// Arguments of `api get`.
#[derive(clap::Args, Debug)]
pub(crate) struct GetArgs {
    /// BASE_PATH or API_NAME.
    basepath: String,
    /// Display full API configuration details.
    #[arg(short = 'f', long)]
    full: bool,
    /// The API output TYPE: json (the only one edgewhisk writes).
    #[arg(long, default_value = "json")]
    format: String,
}

/// Arguments of `api delete`.
#[derive(clap::Args, Debug)]
pub(crate) struct DeleteArgs {
    /// BASE_PATH or API_NAME.
    basepath: String,
    /// API_PATH.
    relpath: Option<String>,
    /// API_VERB.
    verb: Option<String>,
}

/// Arguments of `api list`.
#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// [BASE_PATH | API_NAME] [API_PATH [API_VERB]].
    #[arg(num_args = 0..=3)]
    args: Vec<String>,
    /// Only this many APIs.
    #[arg(short = 'l', long, default_value_t = 30)]
    limit: u32,
    /// Skip this many APIs.
    #[arg(short = 's', long, default_value_t = 0)]
    skip: u32,
    /// Sorts the list by base path, path, then verb.
    #[arg(short = 'n', long = "name-sort")]
    name_sort: bool,
    /// Display the full description of each API.
    #[arg(short = 'f', long)]
    full: bool,
}

/// Runs an `api` subcommand.
pub(crate) async fn run(ctx: &Ctx, cmd: ApiCommand) -> Result<i32, CliError> {
    let client = ctx.client()?;
    match cmd {
        ApiCommand::Create(a) => create(ctx, &client, a).await,
        ApiCommand::Get(a) => get(&client, a).await,
        ApiCommand::Delete(a) => delete(&client, a).await,
        ApiCommand::List(a) => list(&client, a).await,
    }
}

/// `method web/whisk.system/apimgmt/{op}.http` with the caller's key.
async fn apimgmt(
    client: &Client,
    method: Method,
    op: &str,
    query: &[(&str, String)],
    body: Option<&Value>,
) -> Result<Value, ClientError> {
    let op = format!("{op}.http");
    client
        .send(
            method,
            &["web", "whisk.system", "apimgmt", &op],
            query,
            body,
        )
        .await
}

fn usage(message: &str) -> CliError {
    CliError::Usage(message.to_owned())
}

fn check_path(path: &str) -> Result<(), CliError> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(usage(&format!("'{path}' must begin with '/'.")))
    }
}

fn check_verb(verb: &str) -> Result<String, CliError> {
    let upper = verb.to_ascii_uppercase();
    if VERBS.contains(&upper.as_str()) {
        Ok(upper)
    } else {
        Err(usage(&format!(
            "'{verb}' is not a valid API verb.  Valid values are: {}",
            VERBS.join(", ")
        )))
    }
}

async fn create(ctx: &Ctx, client: &Client, a: CreateArgs) -> Result<i32, CliError> {
    let fail = |e| CliError::api("Unable to create API", e);
    if a.args.is_empty() {
        let Some(file) = &a.swagger_file else {
            return Err(usage(
                "Invalid argument(s). Specify a swagger file or specify an API base path with an API path, an API verb, and an action name.",
            ));
        };
        let text = std::fs::read_to_string(file).map_err(|e| {
            CliError::Failed(format!(
                "Error reading swagger file '{}': {e}",
                file.display()
            ))
        })?;
        let swagger: Value = serde_json::from_str(&text).map_err(|e| {
            CliError::Failed(format!(
                "Error parsing swagger file '{}': {e}",
                file.display()
            ))
        })?;
        let body = json!({"apidoc": {"namespace": "_", "swagger": text}});
        let api = apimgmt(client, Method::POST, "createApi", &[], Some(&body))
            .await
            .map_err(fail)?;
        let base = gw_api_url(&api);
        let basepath = swagger["basePath"]
            .as_str()
            .unwrap_or_default()
            .trim_end_matches('/');
        for row in rows(&api) {
            println!(
                "ok: created API {basepath}{} {} for action {}\n{base}{}",
                row.relpath, row.verb, row.action, row.relpath
            );
        }
        return Ok(0);
    }
    if !(3..=4).contains(&a.args.len()) {
        return Err(usage(
            "Specify a swagger file or specify an API base path with an API path, an API verb, and an action name.",
        ));
    }
    let (basepath, rest) = if a.args.len() == 4 {
        (a.args[0].as_str(), &a.args[1..])
    } else {
        ("/", &a.args[..])
    };
    let mut apiname = a.apiname.clone();
    let basepath = if basepath.starts_with('/') {
        basepath.to_owned()
    } else {
        // An API name instead of a base path, as wsk reads it.
        if apiname.is_some() {
            return Err(usage("An API name can only be specified once."));
        }
        apiname = Some(basepath.to_owned());
        "/".to_owned()
    };
    let (relpath, verb, action) = (&rest[0], &rest[1], &rest[2]);
    check_path(relpath)?;
    let verb = check_verb(verb)?;
    if relpath.contains('{') && a.response_type != "http" {
        return Err(usage(
            "A response type of 'http' is required when using path parameters.",
        ));
    }
    let (ns, entity) = split_qualified(action);
    let ns = ns.map_or_else(
        || {
            ctx.settings
                .namespace
                .clone()
                .unwrap_or_else(|| "_".to_owned())
        },
        str::to_owned,
    );
    let qualified = format!("/{ns}/{entity}");
    let found = client
        .get_action(&qualified, false)
        .await
        .map_err(|e| CliError::api(format!("Unable to get action '{entity}'"), e))?;
    if !is_web_action(&found) {
        return Err(CliError::Failed(format!(
            "Action '{qualified}' is not a web action. Issue 'wsk action update \"{entity}\" --web true' to convert the action to a web action."
        )));
    }
    let secure_key = found
        .get("annotations")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|kv| kv["key"] == "require-whisk-auth"))
        .map(|kv| kv["value"].clone())
        .filter(|v| v.is_string() || v.is_number());
    let (package, name) = match entity.split_once('/') {
        Some((p, n)) => (p, n),
        None => ("default", entity),
    };
    let host = client.base_url().as_str().trim_end_matches('/').to_owned();
    let mut apidoc = json!({
        "namespace": "_",
        "gatewayBasePath": basepath,
        "gatewayPath": relpath,
        "gatewayMethod": verb,
        "id": format!("API:_:{basepath}"),
        "action": {
            "name": entity,
            "namespace": ns,
            "backendMethod": verb,
            "backendUrl": format!("{host}/api/v1/web/{ns}/{package}/{name}.http"),
            "authkey": ctx.settings.auth.clone().unwrap_or_default(),
        },
    });
    if let Some(n) = &apiname {
        apidoc["apiName"] = json!(n);
    }
    if let Some(key) = secure_key {
        apidoc["action"]["secureKey"] = key;
    }
    let query = [("responsetype", a.response_type.clone())];
    let api = apimgmt(
        client,
        Method::POST,
        "createApi",
        &query,
        Some(&json!({ "apidoc": apidoc })),
    )
    .await
    .map_err(fail)?;
    let base = gw_api_url(&api);
    println!(
        "ok: created API {}{relpath} {verb} for action {qualified}\n{base}{relpath}",
        basepath.trim_end_matches('/')
    );
    Ok(0)
}

/// The `gwApiUrl` of a `createApi` answer or `getApi` item, without a trailing `/`.
fn gw_api_url(api: &Value) -> &str {
    api["gwApiUrl"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('/')
}

fn is_web_action(action: &Value) -> bool {
    action
        .get("annotations")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter()
                .any(|kv| kv["key"] == "web-export" && kv["value"] == Value::Bool(true))
        })
}

/// `getApi` for `basepath` (or every API): the `apis` array.
async fn get_apis(
    client: &Client,
    basepath: Option<&str>,
    page: Option<(u32, u32)>,
) -> Result<Vec<Value>, ClientError> {
    let mut query = Vec::new();
    if let Some(b) = basepath {
        query.push(("basepath", b.to_owned()));
    }
    if let Some((limit, skip)) = page {
        query.push(("limit", limit.to_string()));
        query.push(("skip", skip.to_string()));
    }
    let v = apimgmt(client, Method::GET, "getApi", &query, None).await?;
    Ok(v["apis"].as_array().cloned().unwrap_or_default())
}

async fn get(client: &Client, a: GetArgs) -> Result<i32, CliError> {
    if a.format != "json" {
        return Err(CliError::Failed(format!(
            "Invalid format type: {}",
            a.format
        )));
    }
    let apis = get_apis(client, Some(&a.basepath), None)
        .await
        .map_err(|e| CliError::api(format!("Unable to get API '{}'", a.basepath), e))?;
    let Some(value) = apis.first().map(|api| &api["value"]) else {
        return Err(CliError::Failed(format!(
            "API does not exist for basepath {}",
            a.basepath
        )));
    };
    let shown = if a.full { value } else { &value["apidoc"] };
    print!("{}", pretty_json(shown));
    Ok(0)
}

async fn delete(client: &Client, a: DeleteArgs) -> Result<i32, CliError> {
    let mut query = vec![("basepath", a.basepath.clone())];
    if let Some(r) = &a.relpath {
        check_path(r)?;
        query.push(("relpath", r.clone()));
    }
    let verb = a.verb.as_deref().map(check_verb).transpose()?;
    if let Some(v) = &verb {
        query.push(("operation", v.clone()));
    }
    query.push(("force", "true".to_owned()));
    apimgmt(client, Method::DELETE, "deleteApi", &query, None)
        .await
        .map_err(|e| CliError::api("Unable to delete API", e))?;
    match (&a.relpath, &verb) {
        (None, _) => println!("ok: deleted API {}", a.basepath),
        (Some(r), None) => println!("ok: deleted {r} from {}", a.basepath),
        (Some(r), Some(v)) => println!("ok: deleted {r} {v} from {}", a.basepath),
    }
    Ok(0)
}

/// One operation of an API as `api list` shows it.
struct Row {
    action: String,
    verb: String,
    api_name: String,
    basepath: String,
    relpath: String,
    url: String,
}

/// The operations of one `getApi` item (or `createApi` answer).
fn rows(value: &Value) -> Vec<Row> {
    let base = value["gwApiUrl"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches('/');
    let doc = &value["apidoc"];
    let api_name = doc["info"]["title"].as_str().unwrap_or_default();
    let basepath = doc["basePath"].as_str().unwrap_or_default();
    let mut out = Vec::new();
    let Some(paths) = doc["paths"].as_object() else {
        return out;
    };
    for (relpath, ops) in paths {
        let Some(ops) = ops.as_object() else { continue };
        for (verb, op) in ops {
            let ow = &op["x-openwhisk"];
            let text = |k: &str| ow[k].as_str().unwrap_or_default();
            let action = match (text("namespace"), text("package")) {
                ("", _) => String::new(),
                (ns, "") => format!("/{ns}/{}", text("action")),
                (ns, pkg) => format!("/{ns}/{pkg}/{}", text("action")),
            };
            out.push(Row {
                action,
                verb: verb.clone(),
                api_name: api_name.to_owned(),
                basepath: basepath.to_owned(),
                relpath: relpath.clone(),
                url: format!("{base}{relpath}"),
            });
        }
    }
    out
}

async fn list(client: &Client, a: ListArgs) -> Result<i32, CliError> {
    let basepath = a.args.first().map(String::as_str);
    let relpath = a.args.get(1);
    if let Some(r) = relpath {
        check_path(r)?;
    }
    let verb = a.args.get(2).map(|v| check_verb(v)).transpose()?;
    let page = basepath.is_none().then_some((a.limit, a.skip));
    let apis = get_apis(client, basepath, page)
        .await
        .map_err(|e| CliError::api("Unable to obtain the API list", e))?;
    let mut rows: Vec<Row> = apis
        .iter()
        .flat_map(|api| rows(&api["value"]))
        .filter(|r| relpath.is_none_or(|p| &r.relpath == p))
        .filter(|r| verb.as_ref().is_none_or(|v| r.verb.eq_ignore_ascii_case(v)))
        .collect();
    if a.name_sort {
        rows.sort_by(|x, y| {
            (&x.basepath, &x.relpath, &x.verb).cmp(&(&y.basepath, &y.relpath, &y.verb))
        });
    }
    println!("ok: APIs");
    if a.full {
        for r in &rows {
            println!(
                "Action: {}\n  API Name: {}\n  Base path: {}\n  Path: {}\n  Verb: {}\n  URL: {}",
                r.action, r.api_name, r.basepath, r.relpath, r.verb, r.url
            );
        }
        return Ok(0);
    }
    print!("{}", table(&rows));
    Ok(0)
}

/// wsk's table: `Action`, `Verb`, `API Name`, `URL`, the first and third columns as wide as
/// their longest entry (at most 40 and 30 characters, longer entries cut).
fn table(rows: &[Row]) -> String {
    let widest = |lens: Vec<usize>, title: &str, max: usize| {
        lens.into_iter()
            .chain([title.len()])
            .max()
            .unwrap_or(0)
            .min(max)
    };
    let (aw, nw) = if rows.is_empty() {
        (30, 19)
    } else {
        (
            widest(
                rows.iter().map(|r| r.action.chars().count()).collect(),
                "Action",
                40,
            ),
            widest(
                rows.iter().map(|r| r.api_name.chars().count()).collect(),
                "API Name",
                30,
            ),
        )
    };
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    let line = |a: &str, v: &str, n: &str, u: &str| {
        format!(
            "{:<aw$} {:>7} {:>w$}  {}\n",
            cut(a, aw),
            v,
            cut(n, nw),
            u,
            w = nw + 1
        )
    };
    let mut out = line("Action", "Verb", "API Name", "URL");
    for r in rows {
        out.push_str(&line(&r.action, &r.verb, &r.api_name, &r.url));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_table_has_wsks_columns() {
        let value = json!({
            "gwApiUrl": "http://h/api/u/hello",
            "apidoc": {
                "basePath": "/hello",
                "info": {"title": "/hello"},
                "paths": {"/world": {"get": {"x-openwhisk": {
                    "namespace": "guest", "package": "", "action": "hello"
                }}}},
            },
        });
        let t = table(&rows(&value));
        let expected = [
            format!("Action{}Verb  API Name  URL", " ".repeat(10)),
            format!(
                "/guest/hello{}get{}/hello  http://h/api/u/hello/world",
                " ".repeat(5),
                " ".repeat(4)
            ),
        ];
        assert_eq!(t.lines().collect::<Vec<_>>(), expected, "{t}");
    }
}
