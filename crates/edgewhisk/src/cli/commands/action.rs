//! `wsk action create|update|get|list|delete|invoke`.

use crate::cli::commands::shared::{
    KeyValueArgs, ParamArgs, page, print_got, print_ok, put_verbs, short, to_key_value_array,
    unable, unable_to_list,
};
use crate::cli::error::{CliError, status_exit_code};
use crate::cli::output::{action_row, action_summary, annotation, entity_list, pretty_json};
use crate::cli::props::Ctx;
use base64::Engine;
use edgewhisk_client::{Client, ClientError, InvokeOptions, split_qualified};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// `wsk action` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum ActionCommand {
    /// Create a new action.
    Create(Box<PutArgs>),
    /// Update an existing action, or create an action if it does not exist.
    Update(Box<PutArgs>),
    /// Get action.
    Get(GetArgs),
    /// List all actions in a namespace or actions contained in a package.
    List(ListArgs),
    /// Delete action.
    Delete(NameArg),
    /// Invoke action.
    Invoke(InvokeArgs),
}

/// Arguments of `action create` and `action update`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct PutArgs {
    /// Action name (`name`, `pkg/name` or `/ns/[pkg/]name`).
    name: String,
    /// The code artifact: a `.js`/`.py`/… source file or a `.zip` archive.
    file: Option<PathBuf>,
    /// The KIND of the action runtime (example: nodejs:default, python:default).
    #[arg(long)]
    kind: Option<String>,
    /// The name of the action entry point.
    #[arg(long)]
    main: Option<String>,
    /// Use the docker IMAGE for the action (kind blackbox; edgewhisk runs
    /// openwhisk/dockerskeleton actions only: a script, or a zip with an executable `exec`).
    #[arg(long, value_name = "IMAGE")]
    docker: Option<String>,
    /// Treat ACTION as a native action (a script, or a zip with an executable `exec`).
    #[arg(long)]
    native: bool,
    #[command(flatten)]
    kv: KeyValueArgs,
    /// The timeout LIMIT in milliseconds after which the action is terminated.
    #[arg(short = 't', long, value_name = "LIMIT")]
    timeout: Option<u64>,
    /// The maximum memory LIMIT in MB for the action.
    #[arg(short = 'm', long, value_name = "LIMIT")]
    memory: Option<u64>,
    /// The maximum log size LIMIT in MB for the action.
    #[arg(short = 'l', long, value_name = "LIMIT")]
    logsize: Option<u64>,
    /// The maximum intra-container concurrent activation LIMIT for the action.
    #[arg(short = 'c', long, value_name = "LIMIT")]
    concurrency: Option<u32>,
    /// Treat ACTION as a web action (yes|true), a raw HTTP web action (raw) or a standard
    /// action (no|false).
    #[arg(long, value_name = "MODE")]
    web: Option<String>,
    /// Secure the web action: a SECRET the caller must send as `X-Require-Whisk-Auth`, `true`
    /// for a generated one, or `false` to remove the protection.
    #[arg(long = "web-secure", value_name = "SECRET")]
    web_secure: Option<String>,
    /// Treat ACTION as comma separated sequence of actions to invoke (the artifact is the
    /// list: `--sequence a,pkg/b,/ns/c`).
    #[arg(long)]
    sequence: bool,
}

/// Arguments of `action get`.
#[derive(clap::Args, Debug)]
pub(crate) struct GetArgs {
    /// Action name.
    name: String,
    /// Summarize action details; parameters with prefix "*" are bound.
    #[arg(short = 's', long)]
    summary: bool,
    /// Get action url.
    #[arg(short = 'r', long)]
    url: bool,
}

/// Arguments of `action list`.
#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// A namespace (`/ns`) or a package (`pkg`, `/ns/pkg`).
    target: Option<String>,
    /// Only return LIMIT number of actions from the collection.
    #[arg(short = 'l', long, default_value_t = 30)]
    limit: u32,
    /// Exclude the first SKIP number of actions from the result.
    #[arg(short = 's', long, default_value_t = 0)]
    skip: u32,
    /// Sorts a list alphabetically by entity name.
    #[arg(short = 'n', long = "name-sort")]
    name_sort: bool,
}

/// A single action name.
#[derive(clap::Args, Debug)]
pub(crate) struct NameArg {
    /// Action name.
    name: String,
}

/// Arguments of `action invoke`.
#[derive(clap::Args, Debug)]
pub(crate) struct InvokeArgs {
    /// Action name.
    name: String,
    #[command(flatten)]
    params: ParamArgs,
    /// Blocking invoke.
    #[arg(short = 'b', long)]
    blocking: bool,
    /// Blocking invoke; show only activation result (unless there is a failure).
    #[arg(short = 'r', long)]
    result: bool,
}

/// Runs an `action` subcommand.
pub(crate) async fn run(ctx: &Ctx, cmd: ActionCommand) -> Result<i32, CliError> {
    let client = ctx.client()?;
    match cmd {
        ActionCommand::Create(a) => put(&client, *a, false).await,
        ActionCommand::Update(a) => put(&client, *a, true).await,
        ActionCommand::Get(a) => get(ctx, &client, a).await,
        ActionCommand::List(a) => list(&client, a).await,
        ActionCommand::Delete(a) => {
            // wsk names the action as given here, qualified or not.
            client
                .delete_action(&a.name)
                .await
                .map_err(|e| CliError::api(format!("Unable to delete action '{}'", a.name), e))?;
            print_ok("deleted", "action", &a.name);
            Ok(0)
        }
        ActionCommand::Invoke(a) => invoke(&client, a).await,
    }
}

async fn put(client: &Client, args: PutArgs, update: bool) -> Result<i32, CliError> {
    let mut body = put_body(&args, update)?;
    let mut existing = None;
    if update {
        // As wsk does: look at the current action first; only "not found" is acceptable.
        match client.get_action(&args.name, false).await {
            Ok(action) => existing = Some(action),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(unable("get", "action", &args.name)(e)),
        }
    }
    if let Some(secret) = &args.web_secure {
        web_secure(&mut body, args.web.as_deref(), secret, existing.as_ref())?;
    }
    // wsk says "create" for both verbs.
    client
        .put_action(&args.name, &body, update)
        .await
        .map_err(unable("create", "action", &args.name))?;
    print_ok(put_verbs(update).1, "action", &args.name);
    Ok(0)
}

/// The PUT body of `action create|update`.
fn put_body(args: &PutArgs, update: bool) -> Result<Value, CliError> {
    let mut body = Map::new();
    match &args.file {
        Some(list) if args.sequence => {
            body.insert("exec".into(), sequence_exec(&list.to_string_lossy())?);
        }
        None if args.sequence => {
            return Err(CliError::Usage(
                "A sequence requires a comma separated list of actions.".into(),
            ));
        }
        Some(file) => {
            body.insert("exec".into(), exec_from_file(file, args)?);
        }
        None if args.docker.is_some() && args.kind.is_none() => {
            // As wsk does: an image alone is a blackbox action without code.
            body.insert("exec".into(), blackbox_exec(args));
        }
        None if !update => {
            return Err(CliError::Usage(
                "An action name and code artifact are required.".into(),
            ));
        }
        None => {}
    }
    let params = args.kv.params.read()?;
    if !params.is_empty() {
        body.insert("parameters".into(), to_key_value_array(params));
    }
    let mut annotations = args.kv.annotations()?;
    if let Some(web) = &args.web {
        web_annotations(web, &mut annotations)?;
    }
    if !annotations.is_empty() {
        body.insert("annotations".into(), to_key_value_array(annotations));
    }
    let mut limits = Map::new();
    if let Some(t) = args.timeout {
        limits.insert("timeout".into(), json!(t));
    }
    if let Some(m) = args.memory {
        limits.insert("memory".into(), json!(m));
    }
    if let Some(l) = args.logsize {
        limits.insert("logs".into(), json!(l));
    }
    if let Some(c) = args.concurrency {
        limits.insert("concurrency".into(), json!(c));
    }
    if !limits.is_empty() {
        body.insert("limits".into(), Value::Object(limits));
    }
    Ok(Value::Object(body))
}

/// `--web`: wsk's three web annotations.
fn web_annotations(mode: &str, annotations: &mut Map<String, Value>) -> Result<(), CliError> {
    let (export, raw, fin) = match mode.to_ascii_lowercase().as_str() {
        "yes" | "true" => (true, false, true),
        "raw" => (true, true, true),
        "no" | "false" => (false, false, false),
        _ => {
            return Err(CliError::Usage(format!(
                "Invalid argument '{mode}' for --web flag. Valid input consist of 'yes', 'true', 'raw', 'false', or 'no'."
            )));
        }
    };
    annotations.insert("web-export".into(), json!(export));
    annotations.insert("raw-http".into(), json!(raw));
    annotations.insert("final".into(), json!(fin));
    Ok(())
}

/// `--web-secure`: sets `require-whisk-auth` to the secret (`true`: a generated number, kept
/// when the action already has a generated one), or removes it (`false`). As with wsk, only
/// for an action that is or becomes a web action.
fn web_secure(
    body: &mut Value,
    web: Option<&str>,
    secret: &str,
    existing: Option<&Value>,
) -> Result<(), CliError> {
    let web = web.map(str::to_ascii_lowercase);
    let disabling_web = matches!(web.as_deref(), Some("false" | "no"));
    let becomes_web = matches!(web.as_deref(), Some("true" | "yes" | "raw"));
    let was_web = existing
        .and_then(|a| annotation(a, "web-export"))
        .is_some_and(|v| v == &Value::Bool(true));
    if !(becomes_web || (was_web && !disabling_web)) {
        return Err(CliError::Usage(
            "The --web-secure option is only valid when the --web option is enabled.".into(),
        ));
    }
    let current = existing.and_then(|a| annotation(a, "require-whisk-auth"));
    let value = match secret.to_ascii_lowercase().as_str() {
        "false" => {
            if current.is_some() {
                body["delAnnotations"] = json!(["require-whisk-auth"]);
            }
            return Ok(());
        }
        "true" => match current {
            Some(Value::Number(n)) => Value::Number(n.clone()),
            _ => json!(generated_secret()),
        },
        _ => Value::String(secret.to_owned()),
    };
    let Some(fields) = body.as_object_mut() else {
        return Ok(());
    };
    let annotations = fields.entry("annotations").or_insert_with(|| json!([]));
    if let Value::Array(list) = annotations {
        list.retain(|kv| kv.get("key").and_then(Value::as_str) != Some("require-whisk-auth"));
        list.push(json!({"key": "require-whisk-auth", "value": value}));
    }
    Ok(())
}

/// A random positive 63-bit number, as wsk generates for `--web-secure true`.
fn generated_secret() -> u64 {
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let mut n = [0u8; 8];
    n.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(n) >> 1
}

/// The runtime kind `wsk` infers from a file extension.
pub(crate) fn kind_for_extension(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "js" => "nodejs:default",
        "py" => "python:default",
        "go" => "go:default",
        "php" => "php:default",
        "rb" => "ruby:default",
        "rs" => "rust:default",
        "swift" => "swift:default",
        "jar" => "java:default",
        // An edgewhisk kind (wsk knows no `.wasm`): the module is sent as base64.
        "wasm" => "wasm:default",
        _ => return None,
    })
}

/// The exec of `--sequence a,b,c`: each component qualified as wsk does it (`a` →
/// `/_/a`, `pkg/a` → `/_/pkg/a`, `/ns/a` as given).
fn sequence_exec(list: &str) -> Result<Value, CliError> {
    let mut components = Vec::new();
    for c in list.split(',').map(str::trim) {
        if c.is_empty() {
            return Err(CliError::Usage(format!(
                "'{list}' is not a comma separated list of actions."
            )));
        }
        components.push(if c.starts_with('/') {
            c.to_owned()
        } else {
            format!("/_/{c}")
        });
    }
    Ok(json!({"kind": "sequence", "components": components}))
}

/// The `exec` of a PUT body: code read from `file` (base64 for archives), kind from
/// `--kind` or the extension.
fn exec_from_file(file: &Path, args: &PutArgs) -> Result<Value, CliError> {
    let ext = file
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let binary = matches!(ext.as_str(), "zip" | "jar" | "wasm");
    let blackbox = args.kind.is_none() && (args.native || args.docker.is_some());
    let kind = match (&args.kind, ext.as_str()) {
        (Some(k), _) => k.clone(),
        (None, _) if blackbox => BLACKBOX.to_owned(),
        (None, "zip") => {
            return Err(CliError::Usage(
                "creating an action from a .zip artifact requires specifying the action kind explicitly"
                    .into(),
            ));
        }
        (None, e) => kind_for_extension(e)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "'{}' is not a supported action runtime",
                    file_ext_label(e)
                ))
            })?
            .to_owned(),
    };
    if kind.starts_with("java") && args.main.is_none() {
        return Err(CliError::Usage(
            "Java actions require --main to specify the fully-qualified name of the main class"
                .into(),
        ));
    }
    let bytes = std::fs::read(file).map_err(|e| {
        CliError::Usage(format!(
            "File '{}' is not a valid file or it does not exist: {e}",
            file.display()
        ))
    })?;
    let code = if binary {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    } else {
        String::from_utf8(bytes).map_err(|_| {
            CliError::Usage(format!(
                "File '{}' is not UTF-8 text; archives must end in .zip",
                file.display()
            ))
        })?
    };
    let mut exec = if blackbox {
        blackbox_exec(args)
    } else {
        json!({"kind": kind})
    };
    exec["code"] = json!(code);
    if let Some(m) = &args.main {
        exec["main"] = json!(m);
    }
    Ok(exec)
}

/// The kind of actions run from an image (`--docker`, `--native`).
const BLACKBOX: &str = "blackbox";

/// The image of `--native` actions, as wsk sends it.
const NATIVE_IMAGE: &str = "openwhisk/dockerskeleton";

/// The `exec` of `--native` or `--docker IMAGE`, without code: kind `blackbox` and the image
/// (`--native` wins, as in wsk).
fn blackbox_exec(args: &PutArgs) -> Value {
    let image = match &args.docker {
        Some(image) if !args.native => image.as_str(),
        _ => NATIVE_IMAGE,
    };
    json!({"kind": BLACKBOX, "image": image})
}

fn file_ext_label(ext: &str) -> String {
    if ext.is_empty() {
        "(no extension)".into()
    } else {
        format!(".{ext}")
    }
}

/// The namespace as wsk prints it in invoke messages: `_` unless qualified.
fn namespace_of(name: &str) -> &str {
    split_qualified(name).0.unwrap_or("_")
}

async fn get(ctx: &Ctx, client: &Client, args: GetArgs) -> Result<i32, CliError> {
    let action = client
        .get_action(&args.name, false)
        .await
        .map_err(unable("get", "action", &args.name))?;
    if args.summary {
        print!("{}", action_summary(&action));
    } else if args.url {
        print_ok("got", "action", &args.name);
        println!("{}", action_url(ctx, client, &action));
    } else {
        print_got("action", &args.name, &action);
    }
    Ok(0)
}

/// The URL `wsk action get --url` prints: the web URL for web actions, else the REST one.
fn action_url(ctx: &Ctx, client: &Client, action: &Value) -> String {
    let base = client.base_url().as_str().trim_end_matches('/');
    let version = &ctx.settings.apiversion;
    let ns_field = action
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("_");
    let (ns, pkg) = ns_field.split_once('/').unwrap_or((ns_field, ""));
    let name = action.get("name").and_then(Value::as_str).unwrap_or("");
    let web = matches!(annotation(action, "web-export"), Some(Value::Bool(true)));
    if web {
        let pkg = if pkg.is_empty() { "default" } else { pkg };
        format!("{base}/api/{version}/web/{ns}/{pkg}/{name}")
    } else if pkg.is_empty() {
        format!("{base}/api/{version}/namespaces/{ns}/actions/{name}")
    } else {
        format!("{base}/api/{version}/namespaces/{ns}/actions/{pkg}/{name}")
    }
}

async fn list(client: &Client, args: ListArgs) -> Result<i32, CliError> {
    let page = page(args.limit, args.skip);
    let result = match args.target.as_deref() {
        None => client.list_actions(None, page).await,
        Some(t) => match split_qualified(t) {
            (Some(ns), "") => {
                client
                    .clone()
                    .with_namespace(ns)
                    .list_actions(None, page)
                    .await
            }
            _ => client.list_actions(Some(t), page).await,
        },
    };
    let mut actions = result.map_err(unable_to_list("actions"))?;
    if args.name_sort {
        actions.sort_by(|a, b| {
            let key = |v: &Value| {
                format!(
                    "{}/{}",
                    v.get("namespace").and_then(Value::as_str).unwrap_or(""),
                    v.get("name").and_then(Value::as_str).unwrap_or("")
                )
            };
            key(a).cmp(&key(b))
        });
    }
    print!("{}", entity_list("actions", actions.iter().map(action_row)));
    Ok(0)
}

async fn invoke(client: &Client, args: InvokeArgs) -> Result<i32, CliError> {
    let params = Value::Object(args.params.read()?);
    let blocking = args.blocking || args.result;
    let opts = InvokeOptions {
        blocking,
        result: args.result,
        timeout: None,
    };
    let ns = namespace_of(&args.name);
    let name = short(&args.name);
    let inv = client
        .invoke_action(&args.name, &params, opts)
        .await
        .map_err(|e| invoke_error(name, e))?;
    let id = inv.activation_id.clone().unwrap_or_default();
    if inv.is_accepted() {
        if blocking {
            eprintln!(
                "ok: invoked /{ns}/{name}, but the request has not yet finished, with id {id}"
            );
            return Ok(202);
        }
        println!("ok: invoked /{ns}/{name} with id {id}");
        return Ok(0);
    }
    let text = invocation_output(ns, name, &id, args.result, &inv.body);
    if inv.is_success() {
        print!("{text}");
        Ok(0)
    } else {
        // The action failed: wsk shows the same output on stderr and exits with the status.
        eprint!("{text}");
        Ok(status_exit_code(inv.status))
    }
}

/// What a finished blocking invoke prints: the `ok: invoked` header unless `--result`,
/// then the pretty body.
fn invocation_output(ns: &str, name: &str, id: &str, result_only: bool, body: &Value) -> String {
    let mut out = String::new();
    if !result_only {
        out.push_str(&format!("ok: invoked /{ns}/{name} with id {id}\n"));
    }
    out.push_str(&pretty_json(body));
    out
}

fn invoke_error(name: &str, e: ClientError) -> CliError {
    CliError::api(format!("Unable to invoke action '{name}'"), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_flag_turns_the_artifact_into_qualified_components() {
        let a = PutArgs {
            name: "s".into(),
            file: Some(PathBuf::from("a, pkg/b,/whisk.system/utils/echo")),
            sequence: true,
            ..PutArgs::default()
        };
        let body = put_body(&a, false).unwrap();
        assert_eq!(
            body["exec"],
            json!({"kind": "sequence", "components": ["/_/a", "/_/pkg/b", "/whisk.system/utils/echo"]})
        );
        let empty = PutArgs {
            file: Some(PathBuf::from("a,,b")),
            ..a
        };
        assert!(put_body(&empty, false).is_err());
    }

    fn args(file: Option<&Path>) -> PutArgs {
        PutArgs {
            name: "hello".into(),
            file: file.map(Path::to_path_buf),
            ..PutArgs::default()
        }
    }

    #[test]
    fn kind_is_inferred_from_the_extension() {
        assert_eq!(kind_for_extension("js"), Some("nodejs:default"));
        assert_eq!(kind_for_extension("py"), Some("python:default"));
        assert_eq!(kind_for_extension("txt"), None);
    }

    #[test]
    fn create_body_carries_exec_params_annotations_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hello.js");
        std::fs::write(&f, "function main() {}").unwrap();
        let mut a = args(Some(&f));
        a.kv.params.param = vec!["name".into(), "Edge".into()];
        a.kv.annotation = vec!["description".into(), "hi".into()];
        a.memory = Some(128);
        a.timeout = Some(1000);
        a.main = Some("entry".into());
        let body = put_body(&a, false).unwrap();
        assert_eq!(
            body,
            json!({
                "exec": {"kind": "nodejs:default", "code": "function main() {}", "main": "entry"},
                "parameters": [{"key": "name", "value": "Edge"}],
                "annotations": [{"key": "description", "value": "hi"}],
                "limits": {"timeout": 1000, "memory": 128}
            })
        );
    }

    #[test]
    fn native_and_docker_make_blackbox_actions_as_wsk_does() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "#!/bin/sh\necho '{}'\n").unwrap();
        let zip = dir.path().join("a.zip");
        std::fs::write(&zip, [0x50u8, 0x4b, 0x03, 0x04]).unwrap();
        let mut a = args(Some(&script));
        a.native = true;
        assert_eq!(
            put_body(&a, false).unwrap()["exec"],
            json!({"kind": "blackbox", "image": "openwhisk/dockerskeleton", "code": "#!/bin/sh\necho '{}'\n"})
        );
        let mut a = args(Some(&zip));
        a.docker = Some("openwhisk/dockerskeleton:1.3".into());
        assert_eq!(
            put_body(&a, false).unwrap()["exec"],
            json!({"kind": "blackbox", "image": "openwhisk/dockerskeleton:1.3", "code": "UEsDBA=="})
        );
        a.native = true;
        assert_eq!(
            put_body(&a, false).unwrap()["exec"]["image"],
            "openwhisk/dockerskeleton"
        );
        // An image alone is an action without code; --kind wins over both.
        let mut a = args(None);
        a.docker = Some("me/img".into());
        assert_eq!(
            put_body(&a, false).unwrap()["exec"],
            json!({"kind": "blackbox", "image": "me/img"})
        );
        let mut a = args(Some(&zip));
        a.native = true;
        a.kind = Some("go:1.22".into());
        assert_eq!(
            put_body(&a, false).unwrap()["exec"],
            json!({"kind": "go:1.22", "code": "UEsDBA=="})
        );
    }

    #[test]
    fn a_wasm_module_is_wasm_default_and_sent_as_base64() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hello.wasm");
        std::fs::write(&f, [0x00u8, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]).unwrap();
        let exec = exec_from_file(&f, &args(Some(&f))).unwrap();
        assert_eq!(
            exec,
            json!({"kind": "wasm:default", "code": "AGFzbQEAAAA="})
        );
    }

    #[test]
    fn zip_needs_a_kind_and_is_sent_as_base64() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.zip");
        std::fs::write(&f, [0x50u8, 0x4b, 0x03, 0x04]).unwrap();
        let err = put_body(&args(Some(&f)), false).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "creating an action from a .zip artifact requires specifying the action kind explicitly"
        );
        let mut a = args(Some(&f));
        a.kind = Some("nodejs:20".into());
        let body = put_body(&a, false).unwrap();
        assert_eq!(
            body["exec"],
            json!({"kind": "nodejs:20", "code": "UEsDBA=="})
        );
    }

    #[test]
    fn unknown_extensions_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.txt");
        std::fs::write(&f, "x").unwrap();
        let err = put_body(&args(Some(&f)), false).unwrap_err();
        assert_eq!(err.to_string(), "'.txt' is not a supported action runtime");
    }

    #[test]
    fn create_needs_a_file_but_update_does_not() {
        assert!(matches!(
            put_body(&args(None), false),
            Err(CliError::Usage(_))
        ));
        let mut a = args(None);
        a.web = Some("true".into());
        assert_eq!(
            put_body(&a, true).unwrap(),
            json!({"annotations": [
                {"key": "final", "value": true},
                {"key": "raw-http", "value": false},
                {"key": "web-export", "value": true}
            ]})
        );
    }

    #[test]
    fn web_secure_sets_or_removes_the_require_whisk_auth_annotation() {
        let secret_of = |body: &Value| {
            body["annotations"]
                .as_array()
                .unwrap()
                .iter()
                .find(|kv| kv["key"] == "require-whisk-auth")
                .map(|kv| kv["value"].clone())
        };
        let mut body = json!({});
        web_secure(&mut body, Some("true"), "s3cret", None).unwrap();
        assert_eq!(secret_of(&body), Some(json!("s3cret")));
        let mut body = json!({"annotations": [{"key": "web-export", "value": true}]});
        web_secure(&mut body, Some("raw"), "true", None).unwrap();
        let generated = secret_of(&body).unwrap();
        assert!(generated.as_u64().is_some_and(|n| n < 1 << 63));
        assert_eq!(body["annotations"].as_array().unwrap().len(), 2);

        let existing = json!({"annotations": [
            {"key": "web-export", "value": true},
            {"key": "require-whisk-auth", "value": 77}
        ]});
        let mut body = json!({});
        web_secure(&mut body, None, "true", Some(&existing)).unwrap();
        assert_eq!(secret_of(&body), Some(json!(77)));
        let mut body = json!({});
        web_secure(&mut body, None, "false", Some(&existing)).unwrap();
        assert_eq!(body, json!({"delAnnotations": ["require-whisk-auth"]}));
    }

    #[test]
    fn web_secure_needs_a_web_action() {
        let expected = "The --web-secure option is only valid when the --web option is enabled.";
        let web = json!({"annotations": [{"key": "web-export", "value": true}]});
        for (flag, existing) in [
            (None, None),
            (Some("false"), Some(&web)),
            (Some("no"), None),
        ] {
            let err = web_secure(&mut json!({}), flag, "x", existing).unwrap_err();
            assert!(matches!(&err, CliError::Usage(m) if m == expected), "{err}");
        }
    }

    #[test]
    fn names_split_into_namespace_and_entity_for_messages() {
        assert_eq!(namespace_of("hello"), "_");
        assert_eq!(short("hello"), "hello");
        assert_eq!(namespace_of("/guest/pkg/a"), "guest");
        assert_eq!(short("/guest/pkg/a"), "pkg/a");
    }

    #[test]
    fn result_only_output_is_just_the_pretty_result() {
        let body = json!({"payload": "Hello, World!"});
        assert_eq!(
            invocation_output("_", "hello", "id1", true, &body),
            "{\n    \"payload\": \"Hello, World!\"\n}\n"
        );
        assert_eq!(
            invocation_output("_", "hello", "id1", false, &body),
            "ok: invoked /_/hello with id id1\n{\n    \"payload\": \"Hello, World!\"\n}\n"
        );
    }
}
