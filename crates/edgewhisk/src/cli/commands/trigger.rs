//! `wsk trigger create|update|get|delete|list|fire`.
//!
//! Feeds follow wsk (`commands/trigger.go`): `trigger create T --feed F -p k v` creates `T`
//! with the annotation `feed: F` (the `-p` parameters go to the feed, not the trigger), then
//! invokes `F` blocking with `{lifecycleEvent: CREATE, triggerName: /ns/T, authKey, ...params}`
//! and deletes `T` again when that fails; `trigger delete` of a feed trigger invokes the feed
//! with `DELETE` first.

use crate::cli::commands::shared::{
    KeyValueArgs, ParamArgs, key_value_body, page, print_got, print_ok, put_verbs, qualified,
    short, sort_by_name, unable, unable_to_list,
};
use crate::cli::error::CliError;
use crate::cli::output::{entity_list, package_or_trigger_row};
use crate::cli::props::Ctx;
use edgewhisk_client::{Client, InvokeOptions};
use serde_json::{Map, Value, json};

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

/// Arguments of `trigger create` and `trigger update`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct PutArgs {
    /// Trigger name.
    name: String,
    #[command(flatten)]
    kv: KeyValueArgs,
    /// Trigger feed ACTION_NAME.
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
        TriggerCommand::Create(a) if a.feed.is_some() => {
            create_with_feed(&client, a, ctx.settings.auth.as_deref().unwrap_or("")).await
        }
        TriggerCommand::Create(a) => put(&client, a, false).await,
        TriggerCommand::Update(a) => put(&client, a, true).await,
        TriggerCommand::Fire(a) => fire(&client, a).await,
        TriggerCommand::Get(a) => {
            let t = client
                .get_trigger(&a.name)
                .await
                .map_err(unable("get", "trigger", &a.name))?;
            print_got("trigger", &a.name, &t);
            Ok(0)
        }
        TriggerCommand::Delete(a) => {
            delete_feed(&client, &a.name, ctx.settings.auth.as_deref().unwrap_or("")).await?;
            client
                .delete_trigger(&a.name)
                .await
                .map_err(unable("delete", "trigger", &a.name))?;
            print_ok("deleted", "trigger", &a.name);
            Ok(0)
        }
        TriggerCommand::List(a) => list(&client, a).await,
    }
}

/// The PUT body of `trigger create|update`: parameters and annotations, omitted on an update
/// when not given so that the server keeps the old ones.
fn put_body(args: &PutArgs, update: bool) -> Result<Value, CliError> {
    if args.feed.is_some() && update {
        return Err(CliError::Usage(format!(
            "Unable to update trigger '{}': a feed can only be given on create",
            short(&args.name)
        )));
    }
    let params = args.kv.params.read()?;
    let mut annots = args.kv.annotations()?;
    // With a feed, the parameters are the feed's; the trigger is annotated with it.
    let params = match &args.feed {
        Some(feed) => {
            annots.insert("feed".into(), Value::String(qualified(feed)));
            Map::new()
        }
        None => params,
    };
    Ok(Value::Object(key_value_body(params, annots, update)))
}

async fn put(client: &Client, args: PutArgs, update: bool) -> Result<i32, CliError> {
    let body = put_body(&args, update)?;
    let (verb, done) = put_verbs(update);
    client
        .put_trigger(&args.name, &body, update)
        .await
        .map_err(unable(verb, "trigger", &args.name))?;
    print_ok(done, "trigger", &args.name);
    Ok(0)
}

/// The feed invocation body: the lifecycle fields over `params`.
fn lifecycle_body(event: &str, trigger: &str, auth: &str, params: Map<String, Value>) -> Value {
    let mut body = params;
    body.insert("lifecycleEvent".into(), json!(event));
    body.insert("triggerName".into(), json!(qualified(trigger)));
    body.insert("authKey".into(), json!(auth));
    Value::Object(body)
}

/// Invokes `feed` blocking with `body`; the activation id, or the error wsk would print.
async fn invoke_feed(client: &Client, feed: &str, body: &Value) -> Result<String, String> {
    let opts = InvokeOptions {
        blocking: true,
        result: false,
        timeout: None,
    };
    match client.invoke_action(feed, body, opts).await {
        Ok(inv) if inv.status == 200 => Ok(inv.activation_id.unwrap_or_default()),
        Ok(inv) => {
            let result = &inv.body["response"]["result"];
            let error = result.get("error").unwrap_or(result);
            Err(match error {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        }
        Err(e) => Err(e.to_string()),
    }
}

/// `trigger create T --feed F`: create, run the feed's CREATE, delete `T` when it fails.
async fn create_with_feed(client: &Client, args: PutArgs, auth: &str) -> Result<i32, CliError> {
    // The feed action as the annotation names it: `/ns/pkg/action` (`_` when unqualified).
    let feed = qualified(args.feed.as_deref().unwrap_or_default());
    let params = args.kv.params.read()?;
    let body = put_body(&args, false)?;
    let name = short(&args.name).to_owned();
    client
        .put_trigger(&args.name, &body, false)
        .await
        .map_err(|e| CliError::api(format!("Unable to create trigger '{name}'"), e))?;
    let invocation = lifecycle_body("CREATE", &args.name, auth, params);
    match invoke_feed(client, &feed, &invocation).await {
        Ok(id) => {
            println!("ok: invoked {feed} with id {id}");
            println!("ok: created trigger {name}");
            Ok(0)
        }
        Err(error) => {
            let _ = client.delete_trigger(&args.name).await;
            Err(CliError::Failed(format!(
                "Unable to create trigger '{name}': Unable to invoke trigger '{name}' feed \
                 action '{feed}'; feed is not configured: {error}"
            )))
        }
    }
}

/// Before deleting a trigger with a `feed` annotation, runs the feed's DELETE (as wsk does,
/// a failure is reported and the trigger is deleted anyway).
async fn delete_feed(client: &Client, name: &str, auth: &str) -> Result<(), CliError> {
    let Ok(trigger) = client.get_trigger(name).await else {
        return Ok(());
    };
    let feed = trigger["annotations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["key"] == "feed")
        .and_then(|a| a["value"].as_str())
        .map(str::to_owned);
    if let Some(feed) = feed {
        let body = lifecycle_body("DELETE", name, auth, Map::new());
        match invoke_feed(client, &feed, &body).await {
            Ok(id) => println!("ok: invoked {feed} with id {id}"),
            Err(error) => eprintln!(
                "error: Unable to delete trigger '{}' feed '{feed}': {error}",
                short(name)
            ),
        }
    }
    Ok(())
}

async fn fire(client: &Client, args: FireArgs) -> Result<i32, CliError> {
    let params = args.params.read()?;
    let id = client
        .fire_trigger(&args.name, &Value::Object(params))
        .await
        .map_err(unable("fire", "trigger", &args.name))?;
    match id {
        Some(id) => println!("ok: triggered {} with id {id}", qualified(&args.name)),
        // 204: no active rule, so nothing was activated.
        None => println!("ok: triggered {}", qualified(&args.name)),
    }
    Ok(0)
}

async fn list(client: &Client, args: ListArgs) -> Result<i32, CliError> {
    let mut triggers = client
        .list_triggers(page(args.limit, args.skip))
        .await
        .map_err(unable_to_list("triggers"))?;
    if args.name_sort {
        sort_by_name(&mut triggers);
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
        a.kv.params.param = vec!["k".into(), "v".into(), "n".into(), "3".into()];
        let body = put_body(&a, false).unwrap();
        assert_eq!(
            body,
            json!({"parameters": [{"key": "k", "value": "v"}, {"key": "n", "value": 3}],
                   "annotations": []})
        );
        assert_eq!(put_body(&args("t"), true).unwrap(), json!({}));
    }

    #[test]
    fn a_feed_trigger_is_annotated_with_its_feed_and_keeps_the_parameters_for_the_feed() {
        let mut a = args("t");
        a.feed = Some("/whisk.system/alarms/alarm".into());
        a.kv.params.param = vec!["cron".into(), "* * * * *".into()];
        let body = put_body(&a, false).unwrap();
        assert_eq!(
            body,
            json!({"parameters": [],
                   "annotations": [{"key": "feed", "value": "/whisk.system/alarms/alarm"}]})
        );
        assert_eq!(put_body(&a, true).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn feed_invocations_carry_the_lifecycle_event_trigger_and_key() {
        let params = Map::from_iter([("minutes".to_owned(), json!(1))]);
        let body = lifecycle_body("CREATE", "t", "u:k", params);
        assert_eq!(
            body,
            json!({"minutes": 1, "lifecycleEvent": "CREATE", "triggerName": "/_/t", "authKey": "u:k"})
        );
        assert_eq!(qualified("alarms/once"), "/_/alarms/once");
    }

    #[test]
    fn fired_names_are_printed_qualified() {
        assert_eq!(qualified("t"), "/_/t");
        assert_eq!(qualified("/guest/t"), "/guest/t");
    }
}
