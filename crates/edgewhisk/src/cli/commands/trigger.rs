//! `wsk trigger create|update|get|delete|list|fire`.

use crate::cli::commands::action::key_values;
use crate::cli::output::{entity_list, package_or_trigger_row, pretty_json};
use crate::cli::{CliError, Ctx};
use edgewhisk_client::{Client, ListPage, split_qualified};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// `wsk trigger` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum TriggerCommand {
    /// Create new trigger.
    Create(PutArgs),
    /// Update an existing trigger, or create a trigger if it does not exist.
    Update(PutArgs),
    /// Fire trigger event.
    Fire(FireArgs),
    /// Get trigger.
    Get(NameArg),
    /// Delete trigger.
    Delete(NameArg),
    /// List all triggers.
    List(ListArgs),
}

/// Parameters as `-p KEY VALUE` / `-P FILE`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct ParamArgs {
    /// Parameter values in KEY VALUE format.
    #[arg(short = 'p', long = "param", num_args = 2, value_names = ["KEY", "VALUE"])]
    param: Vec<String>,
    /// FILE containing parameter values in JSON format.
    #[arg(short = 'P', long = "param-file", value_name = "FILE")]
    param_file: Option<PathBuf>,
}

/// Arguments of `trigger create` and `trigger update`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct PutArgs {
    /// Trigger name.
    name: String,
    #[command(flatten)]
    params: ParamArgs,
    /// Annotation values in KEY VALUE format.
    #[arg(short = 'a', long = "annotation", num_args = 2, value_names = ["KEY", "VALUE"])]
    annotation: Vec<String>,
    /// FILE containing annotation values in JSON format.
    #[arg(short = 'A', long = "annotation-file", value_name = "FILE")]
    annotation_file: Option<PathBuf>,
    /// Trigger feed ACTION_NAME (not supported yet).
    #[arg(short = 'f', long, value_name = "ACTION_NAME")]
    feed: Option<String>,
}

/// Arguments of `trigger fire`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct FireArgs {
    /// Trigger name.
    name: String,
    #[command(flatten)]
    params: ParamArgs,
}

/// A single trigger name.
#[derive(clap::Args, Debug)]
pub(crate) struct NameArg {
    /// Trigger name.
    name: String,
}

/// Arguments of `trigger list`.
#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// Only this many triggers (0 = the server's maximum).
    #[arg(short = 'l', long, default_value_t = 30)]
    limit: u32,
    /// Skip this many triggers from the newest.
    #[arg(short = 's', long, default_value_t = 0)]
    skip: u32,
    /// Sorts the list alphabetically by trigger name.
    #[arg(short = 'n', long = "name-sort")]
    name_sort: bool,
}

/// Runs a `trigger` subcommand.
pub(crate) async fn run(ctx: &Ctx, cmd: TriggerCommand) -> Result<i32, CliError> {
    let client = ctx.client()?;
    match cmd {
        TriggerCommand::Create(a) => put(&client, a, false).await,
        TriggerCommand::Update(a) => put(&client, a, true).await,
        TriggerCommand::Fire(a) => fire(&client, a).await,
        TriggerCommand::Get(a) => {
            let t = client.get_trigger(&a.name).await.map_err(|e| {
                CliError::api(format!("Unable to get trigger '{}'", short(&a.name)), e)
            })?;
            println!("ok: got trigger {}", short(&a.name));
            print!("{}", pretty_json(&t));
            Ok(0)
        }
        TriggerCommand::Delete(a) => {
            client.delete_trigger(&a.name).await.map_err(|e| {
                CliError::api(format!("Unable to delete trigger '{}'", short(&a.name)), e)
            })?;
            println!("ok: deleted trigger {}", short(&a.name));
            Ok(0)
        }
        TriggerCommand::List(a) => list(&client, a).await,
    }
}

/// The name as wsk prints it in messages: the entity part of a qualified name.
fn short(name: &str) -> &str {
    split_qualified(name).1
}

/// `/ns/name` as wsk prints a fired trigger: `_` unless the name was qualified.
fn qualified(name: &str) -> String {
    match split_qualified(name) {
        (Some(ns), rest) => format!("/{ns}/{rest}"),
        (None, rest) => format!("/_/{rest}"),
    }
}

fn to_key_value_array(m: Map<String, Value>) -> Value {
    Value::Array(
        m.into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// The PUT body of `trigger create|update`: parameters and annotations, omitted on an update
/// when not given so that the server keeps the old ones.
fn put_body(args: &PutArgs, update: bool) -> Result<Value, CliError> {
    if let Some(feed) = &args.feed {
        return Err(CliError::Usage(format!(
            "Unable to create trigger '{}' with feed '{feed}': trigger feeds are not supported \
             by this CLI yet; create the trigger without --feed",
            short(&args.name)
        )));
    }
    let params = key_values(
        &args.params.param,
        args.params.param_file.as_deref(),
        "parameter",
    )?;
    let annots = key_values(
        &args.annotation,
        args.annotation_file.as_deref(),
        "annotation",
    )?;
    let mut body = Map::new();
    if !update || !params.is_empty() {
        body.insert("parameters".into(), to_key_value_array(params));
    }
    if !update || !annots.is_empty() {
        body.insert("annotations".into(), to_key_value_array(annots));
    }
    Ok(Value::Object(body))
}

async fn put(client: &Client, args: PutArgs, update: bool) -> Result<i32, CliError> {
    let body = put_body(&args, update)?;
    client
        .put_trigger(&args.name, &body, update)
        .await
        .map_err(|e| {
            let verb = if update { "update" } else { "create" };
            CliError::api(
                format!("Unable to {verb} trigger '{}'", short(&args.name)),
                e,
            )
        })?;
    let verb = if update { "updated" } else { "created" };
    println!("ok: {verb} trigger {}", short(&args.name));
    Ok(0)
}

async fn fire(client: &Client, args: FireArgs) -> Result<i32, CliError> {
    let params = key_values(
        &args.params.param,
        args.params.param_file.as_deref(),
        "parameter",
    )?;
    let id = client
        .fire_trigger(&args.name, &Value::Object(params))
        .await
        .map_err(|e| CliError::api(format!("Unable to fire trigger '{}'", short(&args.name)), e))?;
    match id {
        Some(id) => println!("ok: triggered {} with id {id}", qualified(&args.name)),
        // 204: no active rule, so nothing was activated.
        None => println!("ok: triggered {}", qualified(&args.name)),
    }
    Ok(0)
}

async fn list(client: &Client, args: ListArgs) -> Result<i32, CliError> {
    let page = ListPage {
        limit: Some(args.limit),
        skip: Some(args.skip),
    };
    let mut triggers = client.list_triggers(page).await.map_err(|e| {
        CliError::api(
            "Unable to obtain the list of triggers for namespace 'default'",
            e,
        )
    })?;
    if args.name_sort {
        triggers.sort_by(|a, b| {
            let n = |v: &Value| v.get("name").and_then(Value::as_str).map(str::to_owned);
            n(a).cmp(&n(b))
        });
    }
    print!(
        "{}",
        entity_list("triggers", triggers.iter().map(package_or_trigger_row))
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(name: &str) -> PutArgs {
        PutArgs {
            name: name.into(),
            ..PutArgs::default()
        }
    }

    #[test]
    fn create_sends_parameters_and_annotations_and_update_omits_empty_ones() {
        let mut a = args("t");
        a.params.param = vec!["k".into(), "v".into(), "n".into(), "3".into()];
        let body = put_body(&a, false).unwrap();
        assert_eq!(
            body,
            json!({"parameters": [{"key": "k", "value": "v"}, {"key": "n", "value": 3}],
                   "annotations": []})
        );
        assert_eq!(put_body(&args("t"), true).unwrap(), json!({}));
    }

    #[test]
    fn feeds_are_refused_with_a_clear_message() {
        let mut a = args("t");
        a.feed = Some("/whisk.system/alarms/alarm".into());
        let err = put_body(&a, false).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("feeds are not supported"), "{err}");
    }

    #[test]
    fn fired_names_are_printed_qualified() {
        assert_eq!(qualified("t"), "/_/t");
        assert_eq!(qualified("/guest/t"), "/guest/t");
    }
}
