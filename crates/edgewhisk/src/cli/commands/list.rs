//! `wsk list`: every entity of the namespace, by collection.

use crate::cli::commands::shared::{rule_rows, sort_by_name};
use crate::cli::error::CliError;
use crate::cli::output::{action_row, entity_list, package_or_trigger_row};
use crate::cli::props::Ctx;
use edgewhisk_client::{Client, ClientError, ListPage, Method};
use serde_json::Value;

/// Arguments of `wsk list`.
#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// The namespace (`/ns`); default: the caller's.
    namespace: Option<String>,
    /// Sorts each list alphabetically by entity name.
    #[arg(short = 'n', long = "name-sort")]
    name_sort: bool,
}

/// Runs `wsk list`: packages, actions, triggers and rules, each under its header. A
/// collection the server does not serve (404/405) is shown empty.
pub(crate) async fn run(ctx: &Ctx, args: ListArgs) -> Result<i32, CliError> {
    let mut client = ctx.client()?;
    let shown = match args.namespace.as_deref().map(|n| n.trim_start_matches('/')) {
        Some(ns) if !ns.is_empty() => {
            client = client.with_namespace(ns);
            ns.to_owned()
        }
        _ => "default".to_owned(),
    };
    let fail = |e| {
        CliError::api(
            format!("Unable to obtain the list of entities for namespace '{shown}'"),
            e,
        )
    };
    let page = ListPage {
        limit: Some(0),
        skip: None,
    };
    let mut packages = collection(&client, "packages").await.map_err(fail)?;
    let mut actions = client.list_actions(None, page).await.map_err(fail)?;
    let mut triggers = collection(&client, "triggers").await.map_err(fail)?;
    let mut rules = collection(&client, "rules").await.map_err(fail)?;
    if args.name_sort {
        for list in [&mut packages, &mut actions, &mut triggers, &mut rules] {
            sort_by_name(list);
        }
    }
    let rule_rows = rule_rows(&client, &rules).await;
    println!("Entities in namespace: {shown}");
    print!(
        "{}",
        entity_list("packages", packages.iter().map(package_or_trigger_row))
    );
    print!("{}", entity_list("actions", actions.iter().map(action_row)));
    print!(
        "{}",
        entity_list("triggers", triggers.iter().map(package_or_trigger_row))
    );
    print!("{}", entity_list("rules", rule_rows));
    Ok(0)
}

/// `GET <collection>?limit=0`, empty when the server does not serve the collection.
async fn collection(client: &Client, which: &str) -> Result<Vec<Value>, ClientError> {
    match client
        .send(
            Method::GET,
            &["namespaces", client.namespace(), which],
            &[("limit", "0".into())],
            None,
        )
        .await
    {
        Ok(Value::Array(items)) => Ok(items),
        Ok(_) => Ok(Vec::new()),
        Err(e) if matches!(e.status(), Some(404 | 405)) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}
