//! `wsk activation list|get|logs|result|poll`.

use crate::cli::error::CliError;
use crate::cli::output::{activation_table, datetime, pretty_json, strip_timestamp};
use crate::cli::props::Ctx;
use edgewhisk_client::{ActivationQuery, Client};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// `wsk activation` subcommands.
#[derive(clap::Subcommand, Debug)]
pub(crate) enum ActivationCommand {
    /// List activations.
    List(ListArgs),
    /// Get activation.
    Get(GetArgs),
    /// Get the logs of an activation.
    Logs(LogsArgs),
    /// Get the result of an activation.
    Result(IdArgs),
    /// Poll continuously for log messages from currently running actions.
    Poll(PollArgs),
}

/// Arguments of `activation list`.
#[derive(clap::Args, Debug)]
pub(crate) struct ListArgs {
    /// Only activations of this action (`name`, `pkg/name`, `/ns/name`).
    name: Option<String>,
    /// Only return LIMIT number of activations.
    #[arg(short = 'l', long, default_value_t = 30)]
    limit: u32,
    /// Exclude the first SKIP number of activations.
    #[arg(short = 's', long, default_value_t = 0)]
    skip: u32,
    /// Activations since this epoch-ms instant.
    #[arg(long)]
    since: Option<u64>,
    /// Activations up to this epoch-ms instant.
    #[arg(long)]
    upto: Option<u64>,
    /// Include full activation description.
    #[arg(short = 'f', long)]
    full: bool,
}

/// An activation id, or `--last`.
#[derive(clap::Args, Debug)]
pub(crate) struct IdArgs {
    /// The activation id.
    #[arg(required_unless_present = "last")]
    id: Option<String>,
    /// Use the most recent activation.
    #[arg(short = 'l', long)]
    last: bool,
}

/// Arguments of `activation get`.
#[derive(clap::Args, Debug)]
pub(crate) struct GetArgs {
    #[command(flatten)]
    which: IdArgs,
    /// Summarize activation details.
    #[arg(short = 's', long)]
    summary: bool,
}

/// Arguments of `activation logs`.
#[derive(clap::Args, Debug)]
pub(crate) struct LogsArgs {
    #[command(flatten)]
    which: IdArgs,
    /// Strip timestamp information and output first line only.
    #[arg(short = 'r', long)]
    strip: bool,
}

/// Arguments of `activation poll`.
#[derive(clap::Args, Debug)]
pub(crate) struct PollArgs {
    /// Only activations of this action.
    name: Option<String>,
    /// Stop polling after SECONDS.
    #[arg(
        short = 'e',
        long = "exit",
        value_name = "SECONDS",
        default_value_t = 0
    )]
    exit: u64,
}

/// Runs an `activation` subcommand.
pub(crate) async fn run(ctx: &Ctx, cmd: ActivationCommand) -> Result<i32, CliError> {
    let client = ctx.client()?;
    match cmd {
        ActivationCommand::List(a) => list(&client, a).await,
        ActivationCommand::Get(a) => {
            let id = resolve_id(&client, &a.which, "Unable to get activation").await?;
            let act = client
                .get_activation(&id)
                .await
                .map_err(|e| CliError::api(format!("Unable to get activation '{id}'"), e))?;
            if a.summary {
                print!("{}", summary(&act));
            } else {
                println!("ok: got activation {id}");
                print!("{}", pretty_json(&act));
            }
            Ok(0)
        }
        ActivationCommand::Logs(a) => {
            let id = resolve_id(&client, &a.which, "Unable to get logs for activation").await?;
            let logs = client.activation_logs(&id).await.map_err(|e| {
                CliError::api(format!("Unable to get logs for activation '{id}'"), e)
            })?;
            for line in log_lines(&logs) {
                if a.strip {
                    println!("{}", strip_timestamp(line));
                } else {
                    println!("{line}");
                }
            }
            Ok(0)
        }
        ActivationCommand::Result(a) => {
            let id = resolve_id(&client, &a, "Unable to get result for activation").await?;
            let res = client.activation_result(&id).await.map_err(|e| {
                CliError::api(format!("Unable to get result for activation '{id}'"), e)
            })?;
            print!("{}", pretty_json(res.get("result").unwrap_or(&Value::Null)));
            Ok(0)
        }
        ActivationCommand::Poll(a) => poll(&client, a).await,
    }
}

async fn list(client: &Client, a: ListArgs) -> Result<i32, CliError> {
    let q = ActivationQuery {
        name: a.name,
        limit: Some(a.limit),
        skip: Some(a.skip),
        since: a.since,
        upto: a.upto,
        docs: a.full,
    };
    let acts = client.list_activations(&q).await.map_err(|e| {
        CliError::api(
            "Unable to obtain the list of activations for namespace 'default'",
            e,
        )
    })?;
    if a.full {
        println!("activations");
        for act in &acts {
            print!("{}", pretty_json(act));
        }
    } else {
        print!("{}", activation_table(&acts));
    }
    Ok(0)
}

/// The id given, or with `--last` the newest activation's id.
async fn resolve_id(client: &Client, which: &IdArgs, what: &str) -> Result<String, CliError> {
    if !which.last {
        return which.id.clone().ok_or_else(|| {
            CliError::Usage("Invalid argument(s). An activation ID is required.".into())
        });
    }
    let q = ActivationQuery {
        limit: Some(1),
        skip: Some(0),
        ..ActivationQuery::default()
    };
    let acts = client
        .list_activations(&q)
        .await
        .map_err(|e| CliError::api(what, e))?;
    acts.first()
        .and_then(|a| a.get("activationId"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            CliError::Failed(format!(
                "{what}: Activation list does not contain any activations."
            ))
        })
}

/// `activation get --summary`: `activation result for '/ns/name' (status at time)` and the
/// pretty result.
fn summary(act: &Value) -> String {
    let ns = act.get("namespace").and_then(Value::as_str).unwrap_or("");
    let name = act.get("name").and_then(Value::as_str).unwrap_or("");
    let status = act
        .pointer("/response/status")
        .and_then(Value::as_str)
        .unwrap_or("");
    let end = act.get("end").and_then(Value::as_u64).unwrap_or(0);
    let result = act.pointer("/response/result").unwrap_or(&Value::Null);
    format!(
        "activation result for '/{ns}/{name}' ({status} at {} +0000 UTC)\n{}",
        datetime(end - end % 1000),
        pretty_json(result)
    )
}

/// The `logs` array of a `/logs` answer (or of a full record).
fn log_lines(v: &Value) -> impl Iterator<Item = &str> {
    v.get("logs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// `activation poll`: every 2 s, the records started since the last one seen, each shown
/// once as `Activation: 'name' (id)` and its logs.
async fn poll(client: &Client, a: PollArgs) -> Result<i32, CliError> {
    println!("Enter Ctrl-c to exit.");
    let newest = ActivationQuery {
        limit: Some(1),
        docs: true,
        ..ActivationQuery::default()
    };
    let mut since = match client.list_activations(&newest).await {
        Ok(acts) => acts
            .first()
            .and_then(|x| x.get("start"))
            .and_then(Value::as_u64)
            .map_or(0, |s| s + 1),
        Err(_) => now_ms(),
    };
    println!("Polling for activation logs");
    let started = Instant::now();
    let mut reported = HashSet::new();
    loop {
        if a.exit > 0 && started.elapsed() > Duration::from_secs(a.exit) {
            return Ok(0);
        }
        let q = ActivationQuery {
            name: a.name.clone(),
            limit: Some(0),
            skip: Some(0),
            since: Some(since),
            docs: true,
            ..ActivationQuery::default()
        };
        // As wsk does, a failed poll is ignored and retried.
        if let Ok(acts) = client.list_activations(&q).await {
            for act in &acts {
                let id = act
                    .get("activationId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                if reported.insert(id.clone()) {
                    let name = act.get("name").and_then(Value::as_str).unwrap_or("");
                    println!("\nActivation: '{name}' ({id})");
                    print!(
                        "{}",
                        pretty_json(act.get("logs").unwrap_or(&Value::Array(Vec::new())))
                    );
                }
                if let Some(start) = act.get("start").and_then(Value::as_u64)
                    && start >= since
                {
                    since = start + 1;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summary_shows_path_status_time_and_result() {
        let act = json!({"namespace":"guest","name":"hello","end":1_700_000_000_123u64,
            "response":{"status":"success","success":true,"result":{"payload":"hi"}}});
        assert_eq!(
            summary(&act),
            "activation result for '/guest/hello' (success at 2023-11-14 22:13:20 +0000 UTC)\n{\n    \"payload\": \"hi\"\n}\n"
        );
    }

    #[test]
    fn log_lines_reads_the_logs_array() {
        let v = json!({"logs": ["a", "b"]});
        assert_eq!(log_lines(&v).collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(log_lines(&json!({})).count(), 0);
    }
}
