//! `wsk package create|update|bind|get|delete|list`.

use crate::cli::commands::shared::{
    KeyValueArgs, key_value_body, page, print_got, print_ok, put_verbs, short, sort_by_name, unable,
};
use crate::cli::error::CliError;
use crate::cli::output::{annotation, entity_list, package_or_trigger_row};
use crate::cli::props::Ctx;
use edgewhisk_client::{Client, split_qualified};
use serde_json::{Value, json};

/// `wsk package` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum PackageCommand {
    /// Create a new package.
    Create(PutArgs),
    /// Update an existing package, or create a package if it does not exist.
    Update(PutArgs),
    /// Bind parameters to a package.
    Bind(BindArgs),
    /// Get package.
    Get(GetArgs),
    /// Delete package.
    Delete(NameArg),
    /// List all packages of a namespace.
    List(ListArgs),
}

/// Arguments of `package create` and `package update`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct PutArgs {
    /// Package name.
    name: String,
    #[command(flatten)]
    kv: KeyValueArgs,
    /// Package visibility SCOPE; yes = shared, no = private.
    #[arg(long, value_name = "SCOPE")]
    shared: Option<String>,
}

/// Arguments of `package bind`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct BindArgs {
    /// The package to bind to (`pkg` or `/ns/pkg`).
    package: String,
    /// The name of the new binding.
    binding: String,
    #[command(flatten)]
    kv: KeyValueArgs,
}

/// Arguments of `package get`.
#[derive(clap::Args, Debug)]
pub(crate) struct GetArgs {
    /// Package name.
    name: String,
    /// Summarize package details; parameters with prefix "*" are bound.
    #[arg(short = 's', long)]
    summary: bool,
}

/// A single package name.
#[derive(clap::Args, Debug)]
pub(crate) struct NameArg {
    /// Package name.
    name: String,
}

/// Arguments of `package list`.
#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// The namespace (`/ns`); default: the caller's.
    namespace: Option<String>,
    /// Only this many packages (0 = the server's maximum).
    #[arg(short = 'l', long, default_value_t = 30)]
    limit: u32,
    /// Skip this many packages from the newest.
    #[arg(short = 's', long, default_value_t = 0)]
    skip: u32,
    /// Sorts the list alphabetically by package name.
    #[arg(short = 'n', long = "name-sort")]
    name_sort: bool,
}

/// Runs a `package` subcommand.
pub(crate) async fn run(ctx: &Ctx, cmd: PackageCommand) -> Result<i32, CliError> {
    let client = ctx.client()?;
    match cmd {
        PackageCommand::Create(a) => put(&client, a, false).await,
        PackageCommand::Update(a) => put(&client, a, true).await,
        PackageCommand::Bind(a) => bind(&client, a).await,
        PackageCommand::Get(a) => get(&client, a).await,
        PackageCommand::Delete(a) => {
            client
                .delete_package(&a.name, false)
                .await
                .map_err(unable("delete", "package", &a.name))?;
            print_ok("deleted", "package", &a.name);
            Ok(0)
        }
        PackageCommand::List(a) => list(&client, a).await,
    }
}

/// `parameters` and `annotations` of a PUT body from the flags; omitted when not given on an
/// update, so the server keeps the old ones.
fn kv_body(kv: &KeyValueArgs, update: bool) -> Result<serde_json::Map<String, Value>, CliError> {
    Ok(key_value_body(kv.params.read()?, kv.annotations()?, update))
}

/// `--shared yes|no` (also `true|false`) as `publish`.
fn publish_flag(shared: Option<&str>) -> Result<Option<bool>, CliError> {
    match shared.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(None),
        Some("yes" | "true") => Ok(Some(true)),
        Some("no" | "false") => Ok(Some(false)),
        Some(other) => Err(CliError::Usage(format!(
            "Invalid argument '{other}' for --shared flag. Valid input consist of 'yes', 'true', 'no', or 'false'."
        ))),
    }
}

/// The PUT body of `package create|update`.
fn put_body(args: &PutArgs, update: bool) -> Result<Value, CliError> {
    let mut body = kv_body(&args.kv, update)?;
    if let Some(publish) = publish_flag(args.shared.as_deref())? {
        body.insert("publish".into(), Value::Bool(publish));
    }
    Ok(Value::Object(body))
}

/// The PUT body of `package bind`: the bound package as `{namespace, name}` (`_` for a short
/// name, resolved by the server).
fn bind_body(args: &BindArgs) -> Result<Value, CliError> {
    let (ns, pkg) = split_qualified(&args.package);
    if pkg.is_empty() || pkg.contains('/') {
        return Err(CliError::Usage(format!(
            "The package name '{}' is not valid: a binding needs `pkg` or `/namespace/pkg`",
            args.package
        )));
    }
    let mut body = kv_body(&args.kv, false)?;
    body.insert(
        "binding".into(),
        json!({"namespace": ns.unwrap_or("_"), "name": pkg}),
    );
    Ok(Value::Object(body))
}

async fn put(client: &Client, args: PutArgs, update: bool) -> Result<i32, CliError> {
    let body = put_body(&args, update)?;
    let (verb, done) = put_verbs(update);
    client
        .put_package(&args.name, &body, update)
        .await
        .map_err(unable(verb, "package", &args.name))?;
    print_ok(done, "package", &args.name);
    Ok(0)
}

async fn bind(client: &Client, args: BindArgs) -> Result<i32, CliError> {
    let body = bind_body(&args)?;
    client
        .put_package(&args.binding, &body, false)
        .await
        .map_err(|e| {
            CliError::api(
                format!("Binding creation failed for '{}'", short(&args.binding)),
                e,
            )
        })?;
    println!("ok: created binding {}", short(&args.binding));
    Ok(0)
}

async fn get(client: &Client, args: GetArgs) -> Result<i32, CliError> {
    let package = client
        .get_package(&args.name)
        .await
        .map_err(unable("get", "package", &args.name))?;
    if args.summary {
        print!("{}", package_summary(&package));
    } else {
        print_got("package", &args.name, &package);
    }
    Ok(0)
}

/// `wsk package get -s`: the package with its description and bound parameters (`*`), then
/// each action with its description.
fn package_summary(p: &Value) -> String {
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let description = |v: &Value| {
        annotation(v, "description")
            .and_then(Value::as_str)
            .unwrap_or("Returns a result based on parameters")
            .to_owned()
    };
    let path = format!("/{}/{}", field(p, "namespace"), field(p, "name"));
    let params: Vec<String> = p
        .get("parameters")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|kv| format!("*{}", field(kv, "key")))
                .collect()
        })
        .unwrap_or_default();
    let mut out = format!("package {path}: {}\n", description(p));
    let shown = if params.is_empty() {
        "none defined".to_owned()
    } else {
        params.join(", ")
    };
    out.push_str(&format!("   (parameters: {shown})\n"));
    for a in p
        .get("actions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&format!(
            " action {path}/{}: {}\n",
            field(a, "name"),
            description(a)
        ));
    }
    out
}

async fn list(client: &Client, args: ListArgs) -> Result<i32, CliError> {
    let ns = args.namespace.as_deref();
    let mut packages = client
        .list_packages(ns, page(args.limit, args.skip))
        .await
        .map_err(|e| {
            CliError::api(
                format!(
                    "Unable to obtain the list of packages for namespace '{}'",
                    ns.map_or("default", |n| n.trim_matches('/'))
                ),
                e,
            )
        })?;
    if args.name_sort {
        sort_by_name(&mut packages);
    }
    print!(
        "{}",
        entity_list("packages", packages.iter().map(package_or_trigger_row))
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::commands::shared::ParamArgs;

    #[test]
    fn create_body_carries_params_annotations_and_publish() {
        let args = PutArgs {
            name: "p".into(),
            kv: KeyValueArgs {
                params: ParamArgs {
                    param: vec!["n".into(), "3".into(), "s".into(), "text".into()],
                    ..ParamArgs::default()
                },
                annotation: vec!["description".into(), "tools".into()],
                ..KeyValueArgs::default()
            },
            shared: Some("yes".into()),
        };
        assert_eq!(
            put_body(&args, false).unwrap(),
            json!({
                "parameters": [{"key": "n", "value": 3}, {"key": "s", "value": "text"}],
                "annotations": [{"key": "description", "value": "tools"}],
                "publish": true
            })
        );
    }

    #[test]
    fn update_sends_only_what_was_given() {
        let args = PutArgs {
            name: "p".into(),
            shared: Some("no".into()),
            ..PutArgs::default()
        };
        assert_eq!(put_body(&args, true).unwrap(), json!({"publish": false}));
        let bad = PutArgs {
            shared: Some("maybe".into()),
            ..PutArgs::default()
        };
        assert_eq!(put_body(&bad, false).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn bind_body_names_the_bound_package_by_namespace_and_name() {
        let args = BindArgs {
            package: "/whisk.system/utils".into(),
            binding: "myutils".into(),
            kv: KeyValueArgs {
                params: ParamArgs {
                    param: vec!["payload".into(), "hi".into()],
                    ..ParamArgs::default()
                },
                ..KeyValueArgs::default()
            },
        };
        let body = bind_body(&args).unwrap();
        assert_eq!(
            body["binding"],
            json!({"namespace": "whisk.system", "name": "utils"})
        );
        assert_eq!(
            body["parameters"],
            json!([{"key": "payload", "value": "hi"}])
        );
        let short = BindArgs {
            package: "mine".into(),
            ..BindArgs::default()
        };
        assert_eq!(
            bind_body(&short).unwrap()["binding"],
            json!({"namespace": "_", "name": "mine"})
        );
        let nested = BindArgs {
            package: "/ns/a/b".into(),
            ..BindArgs::default()
        };
        assert!(bind_body(&nested).is_err());
    }

    #[test]
    fn summary_lists_bound_parameters_and_actions() {
        let p = json!({
            "namespace": "whisk.system", "name": "utils",
            "annotations": [{"key": "description", "value": "Building blocks"}],
            "parameters": [{"key": "payload", "value": "x"}],
            "actions": [{"name": "echo", "annotations": [{"key": "description", "value": "Returns the input"}]}]
        });
        assert_eq!(
            package_summary(&p),
            "package /whisk.system/utils: Building blocks\n   (parameters: *payload)\n action /whisk.system/utils/echo: Returns the input\n"
        );
    }
}
