//! `wsk rule create|update|enable|disable|get|delete|list`.

use crate::cli::commands::shared::{
    page, print_got, print_ok, put_verbs, qualified, rule_rows, short, sort_by_name, unable,
    unable_to_list,
};
use crate::cli::error::CliError;
use crate::cli::output::entity_list;
use crate::cli::props::Ctx;
use edgewhisk_client::Client;
use serde_json::{Value, json};

/// `wsk rule` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum RuleCommand {
    /// Create new rule.
    Create(PutArgs),
    /// Update an existing rule, or create a rule if it does not exist.
    Update(PutArgs),
    /// Enable rule.
    Enable(NameArg),
    /// Disable rule.
    Disable(NameArg),
    /// Get rule.
    Get(NameArg),
    /// Delete rule.
    Delete(DeleteArgs),
    /// List all rules.
    List(ListArgs),
}

/// Arguments of `rule create` and `rule update`.
#[derive(clap::Args, Debug)]
pub(crate) struct PutArgs {
    /// Rule name.
    name: String,
    /// Trigger name.
    trigger: String,
    /// Action name.
    action: String,
}

/// A single rule name.
#[derive(clap::Args, Debug)]
pub(crate) struct NameArg {
    /// Rule name.
    name: String,
}

/// Arguments of `rule delete`.
#[derive(clap::Args, Debug)]
pub(crate) struct DeleteArgs {
    /// Rule name.
    name: String,
    /// Automatically disable rule before deleting it.
    #[arg(long)]
    disable: bool,
}

/// Arguments of `rule list`.
#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// Only this many rules (0 = the server's maximum).
    #[arg(short = 'l', long, default_value_t = 30)]
    limit: u32,
    /// Skip this many rules from the newest.
    #[arg(short = 's', long, default_value_t = 0)]
    skip: u32,
    /// Sorts the list alphabetically by rule name.
    #[arg(short = 'n', long = "name-sort")]
    name_sort: bool,
}

/// Runs a `rule` subcommand.
pub(crate) async fn run(ctx: &Ctx, cmd: RuleCommand) -> Result<i32, CliError> {
    let client = ctx.client()?;
    match cmd {
        RuleCommand::Create(a) => put(&client, a, false).await,
        RuleCommand::Update(a) => put(&client, a, true).await,
        RuleCommand::Enable(a) => set_state(&client, &a.name, true).await,
        RuleCommand::Disable(a) => set_state(&client, &a.name, false).await,
        RuleCommand::Get(a) => {
            let r = client
                .get_rule(&a.name)
                .await
                .map_err(unable("get", "rule", &a.name))?;
            print_got("rule", &a.name, &r);
            Ok(0)
        }
        RuleCommand::Delete(a) => {
            let fail = unable("delete", "rule", &a.name);
            if a.disable {
                client.set_rule_state(&a.name, false).await.map_err(&fail)?;
            }
            client.delete_rule(&a.name).await.map_err(fail)?;
            print_ok("deleted", "rule", &a.name);
            Ok(0)
        }
        RuleCommand::List(a) => list(&client, a).await,
    }
}

/// The PUT body wsk sends: the rule's name, an empty status and qualified names (the server
/// ignores `name` and `status`).
fn put_body(args: &PutArgs) -> Value {
    json!({
        "name": short(&args.name),
        "status": "",
        "trigger": qualified(&args.trigger),
        "action": qualified(&args.action),
    })
}

async fn put(client: &Client, args: PutArgs, update: bool) -> Result<i32, CliError> {
    let (verb, done) = put_verbs(update);
    client
        .put_rule(&args.name, &put_body(&args), update)
        .await
        .map_err(unable(verb, "rule", &args.name))?;
    print_ok(done, "rule", &args.name);
    Ok(0)
}

async fn set_state(client: &Client, name: &str, active: bool) -> Result<i32, CliError> {
    let (verb, done) = if active {
        ("enable", "enabled")
    } else {
        ("disable", "disabled")
    };
    client
        .set_rule_state(name, active)
        .await
        .map_err(unable(verb, "rule", name))?;
    print_ok(done, "rule", name);
    Ok(0)
}

async fn list(client: &Client, args: ListArgs) -> Result<i32, CliError> {
    let mut rules = client
        .list_rules(page(args.limit, args.skip))
        .await
        .map_err(unable_to_list("rules"))?;
    if args.name_sort {
        sort_by_name(&mut rules);
    }
    print!("{}", entity_list("rules", rule_rows(client, &rules).await));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_put_body_is_what_wsk_sends() {
        let args = PutArgs {
            name: "r".into(),
            trigger: "t".into(),
            action: "/guest/pkg/a".into(),
        };
        assert_eq!(
            put_body(&args),
            json!({"name": "r", "status": "", "trigger": "/_/t", "action": "/guest/pkg/a"})
        );
    }

    #[test]
    fn package_actions_are_qualified_in_the_callers_namespace() {
        assert_eq!(qualified("pkg/a"), "/_/pkg/a");
    }
}
