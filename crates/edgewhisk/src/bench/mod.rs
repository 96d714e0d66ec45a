//! `edgewhisk bench`: measures a running server from the outside, over its REST API.
//!
//! `bench invoke` is the quick measurement of the lean-platform issue: N blocking invocations of
//! a hello action by C closed-loop clients on keep-alive connections, per-request latency in an
//! HDR histogram, throughput over the wall time; `--cold N` times the first invocation of N
//! freshly created actions. The seed's full experiments (A, B, C) build on this module.

use crate::cli::{Ctx, GlobalFlags};
use anyhow::{Context, bail};
use edgewhisk_client::{Client, InvokeOptions};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The action every bench uses: the seed's hello, answering the size of what it got.
const HELLO: &str = "function main(params) {\n  return { payload: 'Hello, ' + (params.name || 'World') + '!' };\n}\n";

/// `edgewhisk bench …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// Warm blocking invocations of a hello action: latency percentiles and throughput.
    Invoke(InvokeArgs),
}

/// Flags of `bench invoke`.
#[derive(Debug, clap::Args)]
pub(crate) struct InvokeArgs {
    /// Invocations to measure (after the warm-up).
    #[arg(long, short = 'n', default_value_t = 2000)]
    requests: u64,
    /// Closed-loop clients, each on its own keep-alive connection.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: u64,
    /// Size of a string parameter added to every request, bytes.
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
    /// Unmeasured invocations first, to warm instances.
    #[arg(long, default_value_t = 50)]
    warmup: u64,
    /// Also time the first invocation of this many freshly created actions.
    #[arg(long, default_value_t = 0)]
    cold: u64,
    /// Pause before each cold invocation, ms, so the pool can refill its stem cells.
    #[arg(long, default_value_t = 500)]
    cold_pause_ms: u64,
    /// Intra-instance concurrency of the bench action.
    #[arg(long, default_value_t = 1)]
    action_concurrency: u32,
}

/// Runs a bench command; returns the process exit code.
pub(crate) async fn run(global: GlobalFlags, cmd: BenchCommand) -> anyhow::Result<i32> {
    let ctx = Ctx::load(global).map_err(|e| anyhow::anyhow!("{e}"))?;
    let make_client = || ctx.client().map_err(|e| anyhow::anyhow!("{e}"));
    match cmd {
        BenchCommand::Invoke(args) => invoke(&make_client()?, make_client, &args).await?,
    }
    Ok(0)
}

async fn create_hello(client: &Client, name: &str, concurrency: u32) -> anyhow::Result<()> {
    let body = json!({
        "exec": {"kind": "nodejs:default", "code": HELLO},
        "limits": {"concurrency": concurrency},
    });
    client
        .put_action(name, &body, true)
        .await
        .with_context(|| format!("creating bench action {name}"))?;
    Ok(())
}

async fn invoke_once(client: &Client, name: &str, params: &Value) -> anyhow::Result<()> {
    let opts = InvokeOptions {
        blocking: true,
        result: true,
        timeout: None,
    };
    let inv = client.invoke_action(name, params, opts).await?;
    if !inv.is_success() {
        bail!(
            "invocation of {name} failed with status {}: {}",
            inv.status,
            inv.body
        );
    }
    Ok(())
}

async fn invoke(
    client: &Client,
    make_client: impl Fn() -> anyhow::Result<Client>,
    args: &InvokeArgs,
) -> anyhow::Result<()> {
    // Cold starts first, while the pool still has room for stem cells.
    if args.cold > 0 {
        cold_starts(client, args).await?;
    }
    let name = "ew-bench-hello";
    create_hello(client, name, args.action_concurrency).await?;
    let params = Arc::new(if args.payload_bytes > 0 {
        json!({"name": "x".repeat(args.payload_bytes)})
    } else {
        json!({})
    });
    for _ in 0..args.warmup {
        invoke_once(client, name, &params).await?;
    }

    let clients = args.concurrency.max(1);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let c = make_client()?;
        let params = params.clone();
        let share = args.requests / clients + u64::from(i < args.requests % clients);
        tasks.push(tokio::spawn(async move {
            let mut h = new_histogram();
            let mut errors = 0u64;
            for _ in 0..share {
                let t = Instant::now();
                match invoke_once(&c, name, &params).await {
                    Ok(()) => h.saturating_record(micros(t.elapsed())),
                    Err(_) => errors += 1,
                }
            }
            (h, errors)
        }));
    }
    let mut all = new_histogram();
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await?;
        all.add(h).context("merging histograms")?;
        errors += e;
    }
    let wall = started.elapsed();
    println!(
        "invoke: {} requests, {} clients, payload {} B, {} errors",
        all.len(),
        clients,
        args.payload_bytes,
        errors
    );
    println!(
        "latency (ms): p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        ms(all.value_at_quantile(0.5)),
        ms(all.value_at_quantile(0.9)),
        ms(all.value_at_quantile(0.99)),
        ms(all.max())
    );
    println!(
        "throughput: {:.0} requests/s over {:.2} s",
        precision_loss(all.len()) / wall.as_secs_f64(),
        wall.as_secs_f64()
    );

    Ok(())
}

/// Times the first invocation of `args.cold` freshly created actions.
async fn cold_starts(client: &Client, args: &InvokeArgs) -> anyhow::Result<()> {
    let mut h = new_histogram();
    for i in 0..args.cold {
        let cold = format!("ew-bench-cold-{}-{i}", std::process::id());
        create_hello(client, &cold, 1).await?;
        tokio::time::sleep(Duration::from_millis(args.cold_pause_ms)).await;
        let t = Instant::now();
        invoke_once(client, &cold, &json!({})).await?;
        h.saturating_record(micros(t.elapsed()));
        client.delete_action(&cold).await?;
    }
    println!(
        "cold start (ms, {} new actions): p50 {:.3}  max {:.3}",
        args.cold,
        ms(h.value_at_quantile(0.5)),
        ms(h.max())
    );
    Ok(())
}

/// Microsecond histogram from 1 µs to 10 minutes; longer values are clamped.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[allow(clippy::cast_precision_loss, reason = "display only")]
fn precision_loss(v: u64) -> f64 {
    v as f64
}

fn ms(us: u64) -> f64 {
    precision_loss(us) / 1000.0
}
