//! `bench trigger`: how long a trigger fire takes to start its rule's action.
//!
//! For each fire, the latency is the rule action's activation `start` minus the trigger
//! activation's `start` (the moment the controller accepted the fire), both read back from the
//! activation records, so it covers rule lookup, throttling, dispatch and the pool, on a warm
//! instance. Records carry milliseconds, so that is the resolution.

use super::{create_hello, ms, new_histogram};
use anyhow::{Context, bail};
use edgewhisk_client::Client;
use serde_json::{Value, json};
use std::time::Duration;

/// Flags of `bench trigger`.
#[derive(Debug, clap::Args)]
pub struct TriggerArgs {
    /// Fires to measure (after one warm-up fire).
    #[arg(long, short = 'n', default_value_t = 50)]
    fires: u64,
}

/// Creates a hello action, a trigger and a rule, fires `args.fires` times one after another and
/// prints the fire → action start latency.
pub(crate) async fn run(client: &Client, args: &TriggerArgs) -> anyhow::Result<()> {
    let (action, trigger, rule) = ("ew-bench-hello", "ew-bench-trigger", "ew-bench-rule");
    let kind = super::kinds::Kind::parse(super::kinds::DEFAULT_KIND)?;
    create_hello(client, action, &kind, 1).await?;
    client
        .put_trigger(trigger, &json!({}), true)
        .await
        .context("creating the bench trigger")?;
    client
        .put_rule(
            rule,
            &json!({"trigger": format!("/_/{trigger}"), "action": format!("/_/{action}")}),
            true,
        )
        .await
        .context("creating the bench rule")?;
    let mut h = new_histogram();
    for i in 0..=args.fires {
        let micros = fire_to_start_micros(client, trigger).await?;
        if i > 0 {
            h.saturating_record(micros);
        }
    }
    client.delete_rule(rule).await?;
    client.delete_trigger(trigger).await?;
    println!(
        "trigger fire → rule action start (ms, {} fires, record resolution 1 ms): p50 {:.1}  p90 {:.1}  max {:.1}",
        args.fires,
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.max())
    );
    Ok(())
}

async fn fire_to_start_micros(client: &Client, trigger: &str) -> anyhow::Result<u64> {
    let Some(fire_id) = client.fire_trigger(trigger, &json!({})).await? else {
        bail!("trigger {trigger} has no active rule");
    };
    let fired = eventually(client, &fire_id).await?;
    let log = fired["logs"]
        .get(0)
        .and_then(Value::as_str)
        .context("the trigger record names no rule activation")?;
    let entry: Value = serde_json::from_str(log).context("decoding the trigger log line")?;
    let action_id = entry["activationId"]
        .as_str()
        .with_context(|| format!("the rule did not start its action: {entry}"))?;
    let ran = eventually(client, action_id).await?;
    let (t0, t1) = (
        fired["start"].as_u64().context("trigger start")?,
        ran["start"].as_u64().context("action start")?,
    );
    Ok(t1.saturating_sub(t0) * 1000)
}

/// The record `id`, polled until it is stored (up to 10 s).
async fn eventually(client: &Client, id: &str) -> anyhow::Result<Value> {
    for _ in 0..1000 {
        if let Ok(v) = client.get_activation(id).await {
            // A trigger record is stored once every rule was dispatched.
            if v.get("logs")
                .and_then(Value::as_array)
                .is_some_and(|l| !l.is_empty())
                || v.get("end").is_some()
            {
                return Ok(v);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("activation {id} was not stored within 10 s")
}
