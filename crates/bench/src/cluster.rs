//! `bench cluster`: throughput of a capacity-bound action against the number of invokers.
//!
//! For each invoker count N the bench starts a cluster of its own (the current executable, as
//! `bench --spawn` does): one `edgewhisk serve --role controller` and N
//! `edgewhisk serve --role invoker --invoker-id i`, each with a temp data directory, on the
//! PostgreSQL and NATS server it is given. Every point gets a fresh NATS subject prefix, so the
//! invokers of an earlier point, still stopping, are never seen. Each invoker holds a fixed
//! number of 256 MB instances (`user_memory_mb`), so the cluster's capacity is N times that.
//! The action sleeps `sleep_ms` and takes one activation per instance (concurrency 1): the
//! ideal throughput is capacity / sleep, and a closed loop of more clients than the capacity
//! shows how close the cluster comes to it as invokers are added.

use super::chart::{self, Axes, Series};
use super::experiments::{create_action, edge_request, name_body, progress, spec, warn_errors};
use super::kinds::hello_code;
use super::load::{self, LoadResult};
use super::report::{Table, num, ratio};
use super::target::{ChildServer, Platform, ScratchDir, ServeSettings, spawn_serve};
use anyhow::{Context, bail};
use indicatif::ProgressBar;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Name of the sleeping action.
const SLEEP_ACTION: &str = "ew-bench-sleep";

/// Memory of the action and of each invoker instance, MB.
const INSTANCE_MB: u64 = 256;

/// How long the invokers may take to report `up` to the controller.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How many requests a point gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Budget {
    /// This many requests per point.
    Requests(u64),
    /// The point's ideal throughput times this many seconds: about that long when the
    /// cluster keeps up with its capacity.
    Seconds(f64),
}

/// Settings of `bench cluster`.
#[derive(Debug, Clone)]
pub(crate) struct ClusterSettings {
    /// NATS URL the spawned processes connect to.
    pub(crate) nats: String,
    /// PostgreSQL URL of the database they share.
    pub(crate) postgres: String,
    /// Invoker counts, one cluster each.
    pub(crate) invokers: Vec<u32>,
    /// The action's sleep, ms.
    pub(crate) sleep_ms: u64,
    /// Closed-loop clients; `None` = 4 × the largest capacity.
    pub(crate) clients: Option<u64>,
    /// Requests per point and repetition.
    pub(crate) budget: Budget,
    /// `[pool] user_memory_mb` of each invoker.
    pub(crate) invoker_memory_mb: u64,
    /// `--isolation` of the invokers.
    pub(crate) isolation: String,
    /// Measurements per point (on the same cluster); the table holds their medians.
    pub(crate) repeat: u64,
    /// Where to write the SVG chart; `None` = none.
    pub(crate) out: Option<PathBuf>,
}

impl ClusterSettings {
    /// Instances each invoker holds.
    fn per_invoker(&self) -> u64 {
        self.invoker_memory_mb / INSTANCE_MB
    }

    /// Activations the cluster runs at once with `invokers` invokers.
    fn capacity(&self, invokers: u32) -> u64 {
        self.per_invoker() * u64::from(invokers)
    }

    /// Requests/s the cluster would answer if every instance were always busy.
    fn ideal_rps(&self, invokers: u32) -> f64 {
        load::as_f64(self.capacity(invokers)) * 1000.0 / load::as_f64(self.sleep_ms.max(1))
    }

    /// The clients of every point.
    fn clients(&self) -> u64 {
        self.clients.unwrap_or_else(|| {
            let most = self.invokers.iter().copied().max().unwrap_or(1);
            4 * self.capacity(most).max(1)
        })
    }

    /// Requests of one measurement at `invokers` invokers.
    fn requests(&self, invokers: u32) -> u64 {
        match self.budget {
            Budget::Requests(n) => n.max(1),
            Budget::Seconds(s) => {
                let n = (self.ideal_rps(invokers) * s.max(0.0)).ceil();
                // A few thousand at most: the cast is exact.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let n = n as u64;
                n.max(1)
            }
        }
    }
}

/// One controller and its invokers, each a child process with its own data directory.
#[derive(Debug)]
struct Cluster {
    controller: Platform,
    invokers: Vec<(ChildServer, ScratchDir)>,
}

impl Cluster {
    /// Starts the controller, then `invokers` invokers, on subject prefix `prefix`.
    async fn start(s: &ClusterSettings, invokers: u32, prefix: &str) -> anyhow::Result<Self> {
        let settings = ServeSettings {
            user_memory_mb: s.invoker_memory_mb,
            prewarm: vec![],
            isolation: Some(s.isolation.clone()),
        };
        let config = config_toml(&settings, prefix);
        let backends = ["--nats", &s.nats, "--postgres", &s.postgres].map(str::to_owned);
        let role = |role: &str| {
            let mut args = backends.to_vec();
            args.extend(["--role".to_owned(), role.to_owned()]);
            args
        };
        // The controller first: the first process on an empty database creates its schema.
        let (server, dir) = spawn_serve(
            "edgewhisk controller",
            &config,
            &settings,
            &role("controller"),
        )
        .await?;
        let controller = Platform::over(server, dir)?;
        let mut cluster = Self {
            controller,
            invokers: Vec::new(),
        };
        for id in 0..invokers {
            let mut args = role("invoker");
            args.extend(["--invoker-id".to_owned(), id.to_string()]);
            match spawn_serve("edgewhisk invoker", &config, &settings, &args).await {
                Ok(invoker) => cluster.invokers.push(invoker),
                Err(e) => {
                    cluster.stop().await?;
                    return Err(e);
                }
            }
        }
        Ok(cluster)
    }

    /// Waits until the controller's `GET /invokers` lists every invoker as `up`.
    async fn ready(&self) -> anyhow::Result<Duration> {
        let url = self.controller.base.join("invokers")?;
        let http = reqwest::Client::new();
        let started = Instant::now();
        let n = u32::try_from(self.invokers.len())?;
        loop {
            let ask = http.get(url.clone()).timeout(Duration::from_secs(5)).send();
            let seen: Value = match ask.await {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if (0..n).all(|id| seen[format!("invoker{id}/{id}")] == "up") {
                return Ok(started.elapsed());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "the controller did not see {n} invokers up within {READY_TIMEOUT:?}: {seen}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops every process (SIGTERM, then SIGKILL), all at once.
    async fn stop(self) -> anyhow::Result<()> {
        let mut stopping = tokio::task::JoinSet::new();
        for (invoker, dir) in self.invokers {
            stopping.spawn(async move {
                let r = invoker.stop().await;
                drop(dir);
                r
            });
        }
        let controller = self.controller;
        stopping.spawn(controller.stop());
        let mut first_error = None;
        while let Some(r) = stopping.join_next().await {
            if let Err(e) = r.context("stopping a cluster process").and_then(|r| r) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// The config file of every process of a cluster: the bench's raised throttles, the invokers'
/// memory, and the point's subject prefix.
fn config_toml(settings: &ServeSettings, prefix: &str) -> String {
    format!(
        "{}\n[cluster]\nsubject_prefix = \"{prefix}\"\n",
        settings.config_toml()
    )
}

/// The table's columns.
const COLUMNS: [&str; 11] = [
    "invokers",
    "capacity",
    "clients",
    "requests",
    "errors",
    "throughput_rps",
    "ideal_rps",
    "efficiency",
    "speedup",
    "p50_ms",
    "p99_ms",
];

/// Runs every point; one row each, with the medians of its repetitions.
pub(crate) async fn run(s: &ClusterSettings) -> anyhow::Result<Table> {
    if s.per_invoker() == 0 {
        bail!("--invoker-memory-mb must hold at least one {INSTANCE_MB} MB instance");
    }
    let clients = s.clients();
    let total: u64 = s.invokers.iter().map(|&n| s.requests(n) * s.repeat).sum();
    let pb = progress(total, "cluster");
    let mut table = Table::new(
        "cluster",
        COLUMNS.to_vec(),
        json!({"invokers": s.invokers, "sleep_ms": s.sleep_ms, "clients": clients,
               "repeat": s.repeat, "invoker_memory_mb": s.invoker_memory_mb,
               "instances_per_invoker": s.per_invoker(), "action_memory_mb": INSTANCE_MB,
               "action_concurrency": 1, "isolation": s.isolation,
               "statistic": "median over the repetitions"}),
    );
    let code = hello_code(s.sleep_ms);
    let body = name_body(17);
    let mut first_rps = None;
    for (point, &n) in s.invokers.iter().enumerate() {
        let prefix = format!("ew-bench-{}-{point}", std::process::id());
        pb.set_message(format!("starting {n} invokers"));
        let cluster = Cluster::start(s, n, &prefix).await?;
        let measured = measure(s, &cluster, n, clients, &code, &body, &pb).await;
        cluster.stop().await?;
        let results = measured.with_context(|| format!("measuring {n} invokers"))?;
        let rps = median(results.iter().map(LoadResult::throughput));
        let first = *first_rps.get_or_insert(rps);
        table.push(vec![
            json!(n),
            json!(s.capacity(n)),
            json!(clients),
            json!(results.iter().map(|r| r.hist.len()).sum::<u64>()),
            json!(results.iter().map(|r| r.errors).sum::<u64>()),
            num(rps),
            num(s.ideal_rps(n)),
            ratio(rps, s.ideal_rps(n)),
            ratio(rps, first),
            num(median(results.iter().map(|r| r.quantile_ms(0.5)))),
            num(median(results.iter().map(|r| r.quantile_ms(0.99)))),
        ]);
    }
    pb.finish_and_clear();
    if let Some(dir) = &s.out {
        chart_of(s, &table, &dir.join("cluster_throughput.svg"))?;
    }
    Ok(table)
}

/// Waits for the invokers, creates and warms the action, then measures `s.repeat` times.
async fn measure(
    s: &ClusterSettings,
    cluster: &Cluster,
    invokers: u32,
    clients: u64,
    code: &str,
    body: &bytes::Bytes,
    pb: &ProgressBar,
) -> anyhow::Result<Vec<LoadResult>> {
    pb.set_message(format!("waiting for {invokers} invokers"));
    cluster.ready().await?;
    let p = &cluster.controller;
    create_action(p, SLEEP_ACTION, "nodejs:default", code, INSTANCE_MB).await?;
    let req = edge_request(p, SLEEP_ACTION, body.clone())?;
    // Start every instance the cluster holds before measuring.
    pb.set_message(format!("warming {invokers} invokers"));
    let capacity = s.capacity(invokers);
    let warm = load::drive(
        &req,
        spec(capacity, 10 * capacity, None),
        &ProgressBar::hidden(),
    )
    .await
    .context("warming the action")?;
    warn_errors("warm-up", &warm);
    let mut results = Vec::new();
    for rep in 1..=s.repeat {
        pb.set_message(format!("{invokers} invokers, run {rep}/{}", s.repeat));
        let r = load::drive(&req, spec(clients, s.requests(invokers), None), pb).await?;
        warn_errors(&format!("{invokers} invokers"), &r);
        results.push(r);
    }
    Ok(results)
}

/// The median of `values` (the mean of the middle two for an even count; 0 when empty).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// Measured and ideal throughput against the invoker count.
fn chart_of(s: &ClusterSettings, table: &Table, path: &std::path::Path) -> anyhow::Result<()> {
    let measured = table
        .rows
        .iter()
        .filter_map(|r| {
            let x = table.cell(r, "invokers")?.as_f64()?;
            Some((x, table.cell(r, "throughput_rps")?.as_f64()?))
        })
        .collect();
    let ideal = s
        .invokers
        .iter()
        .map(|&n| (f64::from(n), s.ideal_rps(n)))
        .collect();
    chart::line_chart(
        path,
        Axes {
            title: &format!("Cluster scaling: {} ms action, concurrency 1", s.sleep_ms),
            x: "invokers",
            y: "throughput (requests/s)",
        },
        &[
            Series {
                label: "edgewhisk cluster".into(),
                points: measured,
                baseline: false,
            },
            Series {
                label: "ideal (capacity / sleep)".into(),
                points: ideal,
                baseline: true,
            },
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(budget: Budget) -> ClusterSettings {
        ClusterSettings {
            nats: "nats://127.0.0.1:4222".into(),
            postgres: "postgres://127.0.0.1/edgewhisk".into(),
            invokers: vec![1, 2, 4],
            sleep_ms: 50,
            clients: None,
            budget,
            invoker_memory_mb: 512,
            isolation: "process".into(),
            repeat: 1,
            out: None,
        }
    }

    #[test]
    fn capacity_and_ideal_follow_the_invoker_memory() {
        let s = settings(Budget::Requests(100));
        assert_eq!(s.capacity(1), 2);
        assert_eq!(s.capacity(4), 8);
        assert!((s.ideal_rps(1) - 40.0).abs() < 1e-9);
        assert!((s.ideal_rps(4) - 160.0).abs() < 1e-9);
        // Four clients per instance of the largest cluster, for every point.
        assert_eq!(s.clients(), 32);
        assert_eq!(s.requests(4), 100);
    }

    #[test]
    fn seconds_give_the_ideal_number_of_requests() {
        let s = settings(Budget::Seconds(10.0));
        assert_eq!(s.requests(1), 400);
        assert_eq!(s.requests(2), 800);
    }

    #[test]
    fn config_names_the_prefix_and_the_invoker_memory() {
        let settings = ServeSettings {
            user_memory_mb: 512,
            prewarm: vec![],
            isolation: Some("process".into()),
        };
        let v: toml::Value = toml::from_str(&config_toml(&settings, "ew-bench-1-0")).unwrap();
        assert_eq!(
            v["cluster"]["subject_prefix"].as_str(),
            Some("ew-bench-1-0")
        );
        assert_eq!(v["pool"]["user_memory_mb"].as_integer(), Some(512));
        assert!(v["api"]["concurrent_invocations"].as_integer().unwrap() >= 1_000_000);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), 2.5);
        assert_eq!(median(std::iter::empty()), 0.0);
    }
}
