//! `edgewhisk bench`: measures a running server from the outside, over its REST API.
//!
//! `bench invoke` is the quick measurement: N blocking invocations of a hello action by C
//! closed-loop clients on keep-alive connections, per-request latency in an HDR histogram,
//! throughput over the wall time; `--cold N` times the first invocation of N freshly created
//! actions.
//!
//! The experiments of the Raspberry Pi study (Lean OpenWhisk) that `docs/benchmarks.md`
//! compares against: `concurrency` (A), `payload` (B), `transfer` (C), `coldstart` and `all`,
//! each against the server the CLI's settings name ([`Target`]) or, with `--spawn`, against
//! private `edgewhisk serve` processes this command starts and stops (the current executable,
//! so this crate is linked into the `edgewhisk` binary and spawns it). Each also measures the
//! same function behind a bare Node.js `http` server (the baseline) with the same load
//! generator, and reports edgewhisk/baseline ratios, for each runtime kind given with `--kind`
//! (module `kinds`). `--out DIR` gets CSV, JSON and SVG charts.
//!
//! `bench cluster` starts clusters of one controller and 1, 2, 4, … invokers on a given
//! PostgreSQL and NATS server and measures how the throughput of a capacity-bound action
//! grows with the invokers (module `cluster`).
//!
//! `bench balancer` simulates cluster placement without servers: the sharding balancer's
//! rules against random placement, for a Zipf mix of actions (module `balancer`).
//!
//! A crate of its own so that the server binary built without the `bench` feature carries no
//! chart, histogram or progress-bar code.

mod balancer;
mod chart;
mod cluster;
mod experiments;
mod kinds;
mod load;
mod report;
mod target;
mod trigger;

pub use trigger::TriggerArgs;

use anyhow::{Context, bail};
use edgewhisk_client::{Client, InvokeOptions};
use experiments::{ColdstartSettings, ConcurrencySettings, Env, PayloadSettings, TransferSettings};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `edgewhisk bench …`
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Warm blocking invocations of a hello action: latency percentiles and throughput.
    Invoke(InvokeArgs),
    /// Experiment A: latency and throughput vs backend capacity and client concurrency.
    Concurrency(ConcurrencyArgs),
    /// Experiment B: latency and throughput vs request payload size.
    Payload(PayloadArgs),
    /// Experiment C: hop time of a two-step sequence vs the payload passed along.
    Transfer(TransferArgs),
    /// First invocation of new actions, with and without a stem cell, per runtime kind.
    Coldstart(ColdstartArgs),
    /// Every experiment above, one report.
    All(CommonArgs),
    /// Trigger fire → rule action start latency (against the .wskprops server).
    Trigger(trigger::TriggerArgs),
    /// Simulated cluster placement: warm hits and load spread of the sharding balancer vs
    /// random placement, for a Zipf action mix (pure functions, no servers).
    Balancer(BalancerArgs),
    /// Throughput of a capacity-bound action against the number of invokers: spawns one
    /// controller and N invokers per point on the given PostgreSQL and NATS server.
    Cluster(ClusterArgs),
}

/// Flags of `bench cluster`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClusterArgs {
    /// NATS URL the spawned processes connect to (`nats://HOST:PORT`).
    #[arg(long, env = "EW_NATS")]
    nats: String,
    /// PostgreSQL URL of the database the spawned processes share.
    #[arg(long, env = "EW_POSTGRES")]
    postgres: String,
    /// Invoker counts, one cluster each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    invokers: Vec<u32>,
    /// The action sleeps this long before answering, ms.
    #[arg(long, default_value_t = 50)]
    sleep_ms: u64,
    /// Closed-loop clients [default: 4 × the largest cluster's capacity].
    #[arg(long, short = 'c')]
    clients: Option<u64>,
    /// Requests per point and repetition.
    #[arg(long, short = 'n', conflicts_with = "seconds")]
    requests: Option<u64>,
    /// Requests per point and repetition as the point's ideal throughput times this many
    /// seconds (about that long when the cluster keeps up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// `[pool] user_memory_mb` of each invoker: 256 MB per instance.
    #[arg(long, default_value_t = 512)]
    invoker_memory_mb: u64,
    /// Isolation backend of the invokers (auto, runc, process).
    #[arg(long, default_value = "process")]
    isolation: String,
    /// Measurements per point on the same cluster; the table shows their medians.
    #[arg(long, default_value_t = 1)]
    repeat: u64,
    /// Write CSV, JSON and an SVG chart into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Flags of `bench balancer`.
#[derive(Debug, Clone, clap::Args)]
pub struct BalancerArgs {
    /// Invoker counts to simulate.
    #[arg(long, value_delimiter = ',', default_value = "10,20,50,100")]
    invokers: Vec<usize>,
    /// User memory of each invoker, MB (instances of 256 MB).
    #[arg(long, default_value_t = 2048)]
    memory_mb: u64,
    /// Distinct actions in the mix.
    #[arg(long, default_value_t = 1000)]
    actions: usize,
    /// Zipf exponent of the action mix.
    #[arg(long, default_value_t = 1.0)]
    zipf: f64,
    /// Share of the cluster's instance slots asked for each tick.
    #[arg(long, default_value_t = 0.7)]
    load: f64,
    /// Ticks simulated (each activation lasts one).
    #[arg(long, default_value_t = 400)]
    ticks: usize,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Flags every experiment takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Start private `edgewhisk serve` processes (temp data dir, loopback port) instead of
    /// using the server named by .wskprops/flags.
    #[arg(long)]
    spawn: bool,
    /// Write CSV, JSON and SVG charts into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Small counts (for CI smoke runs).
    #[arg(long)]
    quick: bool,
    /// Isolation backend of spawned servers (auto, runc, process); repeat to compare backends
    /// in `coldstart`.
    #[arg(long)]
    isolation: Vec<String>,
    /// Node.js executable of the baseline server.
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// Python executable of the python cold-start baseline.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Skip the bare Node.js baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Open loop: send at this many requests/s (latency counted from the intended send time)
    /// instead of the closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Runtime kinds to measure, repeated or comma-separated: `nodejs:20`, `python:3.11`,
    /// `wasm:wasi`, or a native executable you built as `go:1.22=PATH` or `blackbox=PATH`
    /// (docs/benchmarks.md) [default: nodejs:default; coldstart: nodejs:20,python:3].
    #[arg(long = "kind", visible_alias = "kinds", value_delimiter = ',')]
    kind: Vec<String>,
}

/// Flags of `bench concurrency`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConcurrencyArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Backend capacities (instances of 256 MB), with --spawn [default: 1,2,3,4,5,8,11].
    #[arg(long, value_delimiter = ',')]
    capacities: Vec<u64>,
    /// Client concurrencies [default: 1,2,4,8,16,32,64].
    #[arg(long, value_delimiter = ',')]
    clients: Vec<u64>,
    /// Requests per point.
    #[arg(long, short = 'n')]
    requests: Option<u64>,
    /// The action sleeps this long before answering, ms (the Raspberry Pi study's `sleepy`: 30).
    #[arg(long, default_value_t = 0)]
    sleep_ms: u64,
}

/// Flags of `bench payload`.
#[derive(Debug, Clone, clap::Args)]
pub struct PayloadArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Request body sizes, bytes [default: 17,1024,10240,102400,204800,512000,1048000].
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Client concurrencies [default: 1,4].
    #[arg(long, value_delimiter = ',')]
    clients: Vec<u64>,
    /// Requests per point at most (also bounded to 200 MB sent per point).
    #[arg(long, short = 'n')]
    requests: Option<u64>,
}

/// Flags of `bench transfer`.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Payload sizes passed head → tail, bytes [default: 0 … 1040000].
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Sequence invocations per size [default: 20].
    #[arg(long)]
    repeat: Option<u64>,
}

/// Flags of `bench coldstart`.
#[derive(Debug, Clone, clap::Args)]
pub struct ColdstartArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Fresh actions per kind and case [default: 10].
    #[arg(long)]
    repeat: Option<u64>,
    /// Pause before each timed first invocation so stem cells refill, ms [default: 1000].
    #[arg(long)]
    pause_ms: Option<u64>,
}

/// Flags of `bench invoke`.
#[derive(Debug, clap::Args)]
pub struct InvokeArgs {
    /// Invocations to measure (after the warm-up).
    #[arg(long, short = 'n', default_value_t = 2000)]
    requests: u64,
    /// Closed-loop clients, each on its own keep-alive connection.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: u64,
    /// Size of a string parameter added to every request, bytes.
    #[arg(long, default_value_t = 0)]
    payload_bytes: usize,
    /// Unmeasured invocations first, spread over the clients, to warm instances.
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
    /// Runtime kinds to measure one after the other, as in the experiments [default:
    /// nodejs:default].
    #[arg(long = "kind", visible_alias = "kinds", value_delimiter = ',')]
    kind: Vec<String>,
}

/// The server a bench measures unless it spawns its own: what `.wskprops`, the `WHISK_*`
/// environment and the global flags name, resolved by the CLI.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// The API host; `None` when none is configured.
    pub apihost: Option<String>,
    /// The `uuid:key` to authenticate with; empty when none is configured.
    pub auth: String,
    /// Skip certificate checks.
    pub insecure: bool,
    /// Print each client's API host on stderr, as the CLI's `--verbose` does.
    pub verbose: bool,
}

impl Target {
    /// A client for the API host, with the CLI's message when none is configured.
    fn client(&self) -> anyhow::Result<Client> {
        let Some(host) = self.apihost.as_deref() else {
            bail!("The API host is not valid: An API host must be provided.");
        };
        if self.verbose {
            eprintln!("REQUEST: API host {host}");
        }
        Client::new(host, &self.auth, self.insecure)
            .map_err(|e| anyhow::anyhow!("The API host is not valid: {e}"))
    }
}

/// Runs a bench command against `target` (or spawned servers); returns the process exit code.
pub async fn run(target: Target, cmd: BenchCommand) -> anyhow::Result<i32> {
    let make_client = || target.client();
    let machine = report::machine();
    let mut tables = Vec::new();
    let env_of = |c: &CommonArgs| -> anyhow::Result<Env> {
        experiments::prepare_out(c.out.as_deref())?;
        Ok(Env {
            kinds: kinds::parse_kinds(&c.kind, &[kinds::DEFAULT_KIND])?,
            spawn: c.spawn,
            external: target
                .apihost
                .clone()
                .map(|h| (h, target.auth.clone(), target.insecure)),
            isolation: c.isolation.clone(),
            node: c.node.clone(),
            python: c.python.clone(),
            baseline: !c.no_baseline,
            rate: c.rate,
            out: c.out.clone(),
        })
    };
    match cmd {
        BenchCommand::Balancer(a) => {
            balancer_table(&a);
            return Ok(0);
        }
        BenchCommand::Cluster(a) => {
            experiments::prepare_out(a.out.as_deref())?;
            let budget = a.requests.map_or(
                cluster::Budget::Seconds(a.seconds),
                cluster::Budget::Requests,
            );
            let s = cluster::ClusterSettings {
                nats: a.nats,
                postgres: a.postgres,
                invokers: a.invokers,
                sleep_ms: a.sleep_ms,
                clients: a.clients,
                budget,
                invoker_memory_mb: a.invoker_memory_mb,
                isolation: a.isolation,
                repeat: a.repeat.max(1),
                out: a.out.clone(),
            };
            tables.push((a.out, cluster::run(&s).await?));
        }
        BenchCommand::Invoke(args) => {
            let client = make_client()?;
            let kinds = kinds::parse_kinds(&args.kind, &[kinds::DEFAULT_KIND])?;
            if !args.kind.is_empty() {
                let info = experiments::deployment_info(client.base_url()).await?;
                kinds::check_offered(&info, &kinds)?;
            }
            for kind in &kinds {
                invoke(&client, make_client, &args, kind).await?;
            }
            return Ok(0);
        }
        BenchCommand::Trigger(args) => {
            trigger::run(&make_client()?, &args).await?;
            return Ok(0);
        }
        BenchCommand::Concurrency(a) => {
            let mut s = ConcurrencySettings::defaults(a.common.quick);
            override_vec(&mut s.capacities, a.capacities);
            override_vec(&mut s.clients, a.clients);
            s.requests = a.requests.unwrap_or(s.requests);
            s.sleep_ms = a.sleep_ms;
            let env = env_of(&a.common)?;
            check_given_kinds(&env, &a.common, &env.kinds).await?;
            tables.push((env.out.clone(), experiments::concurrency(&env, &s).await?));
        }
        BenchCommand::Payload(a) => {
            let mut s = PayloadSettings::defaults(a.common.quick);
            override_vec(&mut s.sizes, a.sizes);
            override_vec(&mut s.clients, a.clients);
            s.requests = a.requests.unwrap_or(s.requests);
            let env = env_of(&a.common)?;
            check_given_kinds(&env, &a.common, &env.kinds).await?;
            tables.push((env.out.clone(), experiments::payload(&env, &s).await?));
        }
        BenchCommand::Transfer(a) => {
            let mut s = TransferSettings::defaults(a.common.quick);
            override_vec(&mut s.sizes, a.sizes);
            s.repeat = a.repeat.unwrap_or(s.repeat);
            let env = env_of(&a.common)?;
            check_given_kinds(&env, &a.common, &env.kinds).await?;
            tables.push((env.out.clone(), experiments::transfer(&env, &s).await?));
        }
        BenchCommand::Coldstart(a) => {
            let mut s = ColdstartSettings::defaults(a.common.quick)?;
            s.repeat = a.repeat.unwrap_or(s.repeat);
            s.pause_ms = a.pause_ms.unwrap_or(s.pause_ms);
            let env = env_of(&a.common)?;
            if !a.common.kind.is_empty() {
                s.kinds = env.kinds.clone();
            }
            check_given_kinds(&env, &a.common, &s.kinds).await?;
            tables.push((env.out.clone(), experiments::coldstart(&env, &s).await?));
        }
        BenchCommand::All(c) => {
            let env = env_of(&c)?;
            let q = c.quick;
            let mut cold = ColdstartSettings::defaults(q)?;
            if !c.kind.is_empty() {
                cold.kinds = env.kinds.clone();
            }
            check_given_kinds(&env, &c, &env.kinds).await?;
            let all = [
                experiments::concurrency(&env, &ConcurrencySettings::defaults(q)).await?,
                experiments::payload(&env, &PayloadSettings::defaults(q)).await?,
                experiments::transfer(&env, &TransferSettings::defaults(q)).await?,
                experiments::coldstart(&env, &cold).await?,
            ];
            for t in &all {
                experiments::write(&env, t, &machine)?;
                println!("{}", t.to_text());
            }
            let headline = report::headline(&all);
            println!("{}", headline.to_text());
            experiments::write(&env, &headline, &machine)?;
            if let Some(dir) = &env.out {
                let summary = serde_json::json!({
                    "machine": machine,
                    "experiments": all.iter().chain([&headline]).map(|t| t.to_json(&serde_json::Value::Null)).collect::<Vec<_>>(),
                });
                let path = dir.join("all.json");
                std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("outputs in {}", dir.display());
            }
            return Ok(0);
        }
    }
    for (out, t) in &tables {
        if let Some(dir) = out {
            t.write(dir, &machine)?;
        }
        println!("{}", t.to_text());
        if let Some(dir) = out {
            println!("outputs in {}", dir.display());
        }
    }
    Ok(0)
}

/// With `--kind` given, checks that the server offers the kinds before anything is measured.
async fn check_given_kinds(env: &Env, c: &CommonArgs, kinds: &[kinds::Kind]) -> anyhow::Result<()> {
    if c.kind.is_empty() {
        return Ok(());
    }
    experiments::check_kinds(env, kinds).await
}

fn override_vec<T>(target: &mut Vec<T>, given: Vec<T>) {
    if !given.is_empty() {
        *target = given;
    }
}

async fn create_hello(
    client: &Client,
    name: &str,
    kind: &kinds::Kind,
    concurrency: u32,
) -> anyhow::Result<()> {
    let body = json!({
        "exec": kind.exec(kinds::Role::Hello { sleep_ms: 0 })?,
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
    kind: &kinds::Kind,
) -> anyhow::Result<()> {
    // Cold starts first, while the pool still has room for stem cells.
    if args.cold > 0 {
        cold_starts(client, args, kind).await?;
    }
    let name = Arc::new(kind.action_name("ew-bench-hello"));
    create_hello(client, &name, kind, args.action_concurrency).await?;
    let params = Arc::new(if args.payload_bytes > 0 {
        json!({"name": "x".repeat(args.payload_bytes)})
    } else {
        json!({})
    });
    let clients = args.concurrency.max(1);
    // Warm up with the measured concurrency, so every instance the run needs is started before
    // timing begins (a sequential warm-up warms one instance and leaves cold starts in the run).
    let mut warmers = Vec::new();
    for _ in 0..clients {
        let c = make_client()?;
        let params = params.clone();
        let name = name.clone();
        let rounds = args.warmup.div_ceil(clients).max(5);
        warmers.push(tokio::spawn(async move {
            for _ in 0..rounds {
                invoke_once(&c, &name, &params).await?;
            }
            anyhow::Ok(())
        }));
    }
    for w in warmers {
        w.await??;
    }

    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let c = make_client()?;
        let params = params.clone();
        let name = name.clone();
        let share = args.requests / clients + u64::from(i < args.requests % clients);
        tasks.push(tokio::spawn(async move {
            let mut h = new_histogram();
            let mut errors = 0u64;
            for _ in 0..share {
                let t = Instant::now();
                match invoke_once(&c, &name, &params).await {
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
        "invoke{}: {} requests, {} clients, payload {} B, {} errors",
        kind_suffix(kind),
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
async fn cold_starts(client: &Client, args: &InvokeArgs, kind: &kinds::Kind) -> anyhow::Result<()> {
    let mut h = new_histogram();
    for i in 0..args.cold {
        let cold = format!("ew-bench-cold-{}-{i}", std::process::id());
        create_hello(client, &cold, kind, 1).await?;
        tokio::time::sleep(Duration::from_millis(args.cold_pause_ms)).await;
        let t = Instant::now();
        invoke_once(client, &cold, &json!({})).await?;
        h.saturating_record(micros(t.elapsed()));
        client.delete_action(&cold).await?;
    }
    println!(
        "cold start{} (ms, {} new actions): p50 {:.3}  max {:.3}",
        kind_suffix(kind),
        args.cold,
        ms(h.value_at_quantile(0.5)),
        ms(h.max())
    );
    Ok(())
}

/// ` (KIND)` after a printed figure, except for the default kind.
fn kind_suffix(kind: &kinds::Kind) -> String {
    if kind.name == kinds::DEFAULT_KIND {
        String::new()
    } else {
        format!(" ({})", kind.name)
    }
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

/// Prints the balancer simulation, one row per invoker count and policy.
fn balancer_table(a: &BalancerArgs) {
    println!(
        "balancer simulation: {} actions, Zipf s={}, load {:.0} %, {} MB per invoker, {} ticks",
        a.actions,
        a.zipf,
        a.load * 100.0,
        a.memory_mb,
        a.ticks
    );
    println!(
        "{:>8}  {:<8}  {:>11}  {:>9}  {:>12}  {:>10}",
        "invokers", "policy", "activations", "warm hit", "max / mean", "overloaded"
    );
    for &invokers in &a.invokers {
        let scenario = balancer::Scenario {
            invokers,
            memory_mb: a.memory_mb,
            actions: a.actions,
            zipf_s: a.zipf,
            load: a.load,
            ticks: a.ticks,
            seed: a.seed,
        };
        for (name, policy) in [
            ("sharding", balancer::Policy::Sharding),
            ("random", balancer::Policy::Random),
        ] {
            let o = balancer::simulate(&scenario, policy);
            println!(
                "{:>8}  {:<8}  {:>11}  {:>8.1}%  {:>12.2}  {:>9.1}%",
                invokers,
                name,
                o.activations,
                o.warm_hit_rate * 100.0,
                o.max_over_mean,
                o.overloaded_rate * 100.0
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: BenchCommand,
    }

    fn parse(args: &[&str]) -> BenchCommand {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .unwrap()
            .cmd
    }

    #[test]
    fn kind_is_repeatable_and_takes_comma_lists_on_every_experiment() {
        let BenchCommand::Concurrency(a) = parse(&[
            "concurrency",
            "--kind",
            "nodejs:20,python:3.11",
            "--kind",
            "wasm:wasi",
        ]) else {
            panic!("concurrency");
        };
        assert_eq!(a.common.kind, ["nodejs:20", "python:3.11", "wasm:wasi"]);
        for sub in ["payload", "transfer", "all"] {
            let cmd = parse(&[sub, "--kind", "go:1.22=/tmp/exec"]);
            let common = match cmd {
                BenchCommand::Payload(a) => a.common,
                BenchCommand::Transfer(a) => a.common,
                BenchCommand::All(c) => c,
                other => panic!("{other:?}"),
            };
            assert_eq!(common.kind, ["go:1.22=/tmp/exec"], "{sub}");
        }
        let BenchCommand::Invoke(a) = parse(&["invoke", "--kind", "python:3", "-n", "5"]) else {
            panic!("invoke");
        };
        assert_eq!(a.kind, ["python:3"]);
    }

    #[test]
    fn coldstart_keeps_kinds_as_an_alias() {
        let BenchCommand::Coldstart(a) = parse(&["coldstart", "--kinds", "nodejs:20,python:3"])
        else {
            panic!("coldstart");
        };
        assert_eq!(a.common.kind, ["nodejs:20", "python:3"]);
    }

    #[test]
    fn no_kind_means_the_default_kinds() {
        let BenchCommand::Concurrency(a) = parse(&["concurrency"]) else {
            panic!("concurrency");
        };
        let k = kinds::parse_kinds(&a.common.kind, &[kinds::DEFAULT_KIND]).unwrap();
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].name, "nodejs:default");
        let cold = ColdstartSettings::defaults(true).unwrap();
        let names: Vec<&str> = cold.kinds.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, kinds::DEFAULT_COLDSTART_KINDS);
    }
}
