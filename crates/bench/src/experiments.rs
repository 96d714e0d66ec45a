//! The experiments of the Raspberry Pi study (Lean OpenWhisk) that `docs/benchmarks.md`
//! compares against, each measured side by side with the bare Node.js baseline:
//! A `concurrency` (backend capacity × client concurrency), B `payload` (request size),
//! C `transfer` (a two-step sequence's hop time, after ServerlessBench Testcase 5), and
//! `coldstart` (first invocation of a new action, with and without a stem cell); each for
//! every runtime kind of the run, one after the other, the baseline measured once.

use super::chart::{self, Axes, Series};
use super::kinds::{self, Family, Kind, Role};
use super::load::{self, LoadResult, LoadSpec, Request};
use super::report::{self, Table, num, ratio};
use super::target::{Baseline, Platform, ScratchDir, ServeSettings};
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of the hello action of experiments A and B.
const HELLO_ACTION: &str = "ew-bench-hello";
/// Name of the hop action of experiment C and of its two-step sequence.
const HOP_ACTION: &str = "ew-bench-hop";
const HOP_SEQUENCE: &str = "ew-bench-hop-seq";

/// What every experiment needs.
#[derive(Debug)]
pub(crate) struct Env {
    /// Start a private `edgewhisk serve` per configuration instead of using `external`.
    pub(crate) spawn: bool,
    /// The server named by `.wskprops`/flags: (apihost, auth, insecure).
    pub(crate) external: Option<(String, String, bool)>,
    /// `--isolation` values for spawned servers (first one for A, B, C; all for coldstart).
    pub(crate) isolation: Vec<String>,
    /// Node.js executable for the baseline.
    pub(crate) node: PathBuf,
    /// Python executable for the python cold-start baseline.
    pub(crate) python: PathBuf,
    /// Measure the baseline too.
    pub(crate) baseline: bool,
    /// Open-loop rate, requests/s; `None` = closed loop.
    pub(crate) rate: Option<f64>,
    /// Where to write CSV, JSON and SVG; `None` = terminal only.
    pub(crate) out: Option<PathBuf>,
    /// The kinds experiments A, B and C measure, each on its own server when spawned.
    pub(crate) kinds: Vec<Kind>,
}

impl Env {
    async fn platform(&self, settings: &ServeSettings) -> anyhow::Result<Platform> {
        if self.spawn {
            return Platform::spawn(settings).await;
        }
        let Some((host, auth, insecure)) = &self.external else {
            bail!("no API host: pass --spawn, or set APIHOST and AUTH (wsk property set)");
        };
        Platform::external(host, auth, *insecure)
    }

    fn isolation(&self) -> Option<String> {
        self.isolation.first().cloned()
    }

    fn backend_label(&self) -> String {
        if self.spawn {
            self.isolation().unwrap_or_else(|| "server default".into())
        } else {
            "external server".into()
        }
    }

    async fn baseline(&self, code: &str) -> anyhow::Result<Option<Baseline>> {
        if !self.baseline {
            return Ok(None);
        }
        Ok(Some(Baseline::start(&self.node, code).await.context(
            "starting the Node.js baseline (node on PATH, or --node; --no-baseline to skip)",
        )?))
    }

    /// A chart label for `kind`: `rest` alone when the run measures one kind.
    fn label(&self, kind: &Kind, rest: &str) -> String {
        if self.kinds.len() > 1 {
            format!("{}, {rest}", kind.name)
        } else {
            format!("edgewhisk, {rest}")
        }
    }

    fn chart(&self, file: &str, axes: Axes<'_>, series: &[Series]) -> anyhow::Result<()> {
        if let Some(dir) = &self.out {
            chart::line_chart(&dir.join(file), axes, series)?;
        }
        Ok(())
    }
}

/// A progress bar of `len` requests labelled `what`.
pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{prefix:>12} [{bar:40}] {pos}/{len} {msg} ({elapsed_precise}, eta {eta})",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    pb.set_prefix(what.to_owned());
    pb
}

/// Warns on stderr when some requests of `r` failed.
pub(crate) fn warn_errors(what: &str, r: &LoadResult) {
    if r.errors > 0 {
        eprintln!(
            "warning: {what}: {} requests failed; first: {}",
            r.errors,
            r.first_error.as_deref().unwrap_or("?")
        );
    }
}

/// Creates (or overwrites) action `name` with `code` of `kind`: concurrency 1, `memory_mb`,
/// a 60 s timeout.
pub(crate) async fn create_action(
    p: &Platform,
    name: &str,
    kind: &str,
    code: &str,
    memory_mb: u64,
) -> anyhow::Result<()> {
    create_exec(p, name, &json!({"kind": kind, "code": code}), memory_mb).await
}

/// Creates (or overwrites) action `name` with `exec`: concurrency 1, `memory_mb`, a 60 s timeout.
pub(crate) async fn create_exec(
    p: &Platform,
    name: &str,
    exec: &Value,
    memory_mb: u64,
) -> anyhow::Result<()> {
    let body = json!({
        "exec": exec,
        "limits": {"concurrency": 1, "memory": memory_mb, "timeout": 60000},
    });
    p.client
        .put_action(name, &body, true)
        .await
        .with_context(|| format!("creating bench action {name}"))?;
    Ok(())
}

/// A JSON body `{"name":"xxx…"}` of exactly `size` bytes (at least 11).
pub(crate) fn name_body(size: usize) -> bytes::Bytes {
    let pad = size.saturating_sub(r#"{"name":""}"#.len());
    bytes::Bytes::from(format!(r#"{{"name":"{}"}}"#, "x".repeat(pad)))
}

/// A blocking, result-only invoke of `action` on `p` with `body`.
pub(crate) fn edge_request(
    p: &Platform,
    action: &str,
    body: bytes::Bytes,
) -> anyhow::Result<Request> {
    Ok(Request {
        url: p.invoke_url(action)?,
        auth: p.auth.clone(),
        body,
    })
}

fn base_request(b: &Baseline, body: bytes::Bytes) -> Request {
    Request {
        url: b.url(),
        auth: None,
        body,
    }
}

/// Settings of experiment A.
#[derive(Debug, Clone)]
pub(crate) struct ConcurrencySettings {
    /// Backend capacities (instances = user memory / 256 MB); only with `--spawn`.
    pub(crate) capacities: Vec<u64>,
    /// Client concurrencies.
    pub(crate) clients: Vec<u64>,
    /// Requests per point.
    pub(crate) requests: u64,
    /// The action's sleep, ms (the study's `sleepy` used 30).
    pub(crate) sleep_ms: u64,
}

impl ConcurrencySettings {
    /// The study's sweep, or a small one for CI.
    pub(crate) fn defaults(quick: bool) -> Self {
        if quick {
            Self {
                capacities: vec![1, 2],
                clients: vec![1, 4],
                requests: 40,
                sleep_ms: 0,
            }
        } else {
            Self {
                capacities: vec![1, 2, 3, 4, 5, 8, 11],
                clients: vec![1, 2, 4, 8, 16, 32, 64],
                requests: 2000,
                sleep_ms: 0,
            }
        }
    }
}

const LOAD_COLUMNS: [&str; 12] = [
    "requests",
    "errors",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    "throughput_rps",
    "baseline_p50_ms",
    "baseline_p99_ms",
    "baseline_rps",
    "p50_ratio",
    "throughput_ratio",
];

fn load_cells(r: &LoadResult, base: Option<&LoadResult>) -> Vec<Value> {
    let b = |f: &dyn Fn(&LoadResult) -> f64| base.map_or(Value::Null, |b| num(f(b)));
    vec![
        json!(r.hist.len()),
        json!(r.errors),
        num(r.quantile_ms(0.5)),
        num(r.quantile_ms(0.9)),
        num(r.quantile_ms(0.99)),
        num(r.max_ms()),
        num(r.throughput()),
        b(&|b| b.quantile_ms(0.5)),
        b(&|b| b.quantile_ms(0.99)),
        b(&LoadResult::throughput),
        base.map_or(Value::Null, |b| {
            ratio(r.quantile_ms(0.5), b.quantile_ms(0.5))
        }),
        base.map_or(Value::Null, |b| ratio(r.throughput(), b.throughput())),
    ]
}

/// Experiment A: latency and throughput against backend capacity and client concurrency, per
/// kind.
pub(crate) async fn concurrency(env: &Env, s: &ConcurrencySettings) -> anyhow::Result<Table> {
    let role = Role::Hello {
        sleep_ms: s.sleep_ms,
    };
    let execs = env
        .kinds
        .iter()
        .map(|k| k.exec(role))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let capacities: Vec<Option<u64>> = if env.spawn {
        s.capacities.iter().copied().map(Some).collect()
    } else {
        vec![None]
    };
    let points = u64::try_from(capacities.len() * s.clients.len() * env.kinds.len())?;
    let base_points = if env.baseline { s.clients.len() } else { 0 };
    let pb = progress(
        s.requests * (points + u64::try_from(base_points)?),
        "concurrency",
    );
    let mut columns = vec!["backend", "kind", "capacity", "clients"];
    columns.extend(LOAD_COLUMNS);
    let mut table = Table::new(
        "concurrency",
        columns,
        json!({"capacities": s.capacities, "clients": s.clients, "requests_per_point": s.requests,
               "sleep_ms": s.sleep_ms, "open_loop_rate": env.rate, "action_memory_mb": 256,
               "kinds": kind_names(&env.kinds)}),
    );

    let body = name_body(17);
    let mut base_results = Vec::new();
    if let Some(baseline) = env.baseline(&kinds::hello_code(s.sleep_ms)).await? {
        let req = base_request(&baseline, body.clone());
        load::drive(&req, spec(4, 50, None), &ProgressBar::hidden()).await?;
        for &c in &s.clients {
            pb.set_message(format!("baseline, {c} clients"));
            let r = load::drive(&req, spec(c, s.requests, env.rate), &pb).await?;
            warn_errors("baseline", &r);
            base_results.push(r);
        }
        baseline.stop().await?;
    }

    for (kind, exec) in env.kinds.iter().zip(&execs) {
        let action = kind.action_name(HELLO_ACTION);
        for &cap in &capacities {
            let settings = ServeSettings {
                user_memory_mb: cap.unwrap_or(4) * 256,
                prewarm: vec![],
                isolation: env.isolation(),
            };
            let platform = env.platform(&settings).await?;
            if table.rows.is_empty()
                && let Some(pid) = platform.pid()
            {
                tokio::time::sleep(Duration::from_millis(300)).await;
                table.settings["server_idle_rss_mib"] =
                    report::rss_mib(pid).map_or(Value::Null, num);
            }
            create_exec(&platform, &action, exec, 256).await?;
            let req = edge_request(&platform, &action, body.clone())?;
            // Warm every instance the capacity allows before measuring.
            let warm = cap.unwrap_or(1);
            load::drive(&req, spec(warm, 20 * warm, None), &ProgressBar::hidden()).await?;
            let key = "warm_node_instance_private_mib";
            if kind.family() == Family::Node
                && table.settings.get(key).is_none()
                && let Some(pid) = platform.pid()
            {
                let instances = report::descendants_named(pid, "node");
                let private = instances
                    .iter()
                    .filter_map(|&p| report::private_mib(p))
                    .reduce(f64::max);
                table.settings[key] = private.map_or(Value::Null, num);
            }
            for (i, &c) in s.clients.iter().enumerate() {
                pb.set_message(format!(
                    "{}, capacity {}, {c} clients",
                    kind.name,
                    fmt_opt(cap)
                ));
                let r = load::drive(&req, spec(c, s.requests, env.rate), &pb).await?;
                warn_errors("edgewhisk", &r);
                let mut row = vec![
                    json!(env.backend_label()),
                    json!(kind.name),
                    json!(cap),
                    json!(c),
                ];
                row.extend(load_cells(&r, base_results.get(i)));
                table.push(row);
            }
            platform.stop().await?;
        }
    }
    pb.finish_and_clear();

    let mut lat = Vec::new();
    let mut thr = Vec::new();
    for kind in &env.kinds {
        for cap in table_capacities(&table) {
            let rows: Vec<&Vec<Value>> = table
                .rows
                .iter()
                .filter(|r| {
                    table.cell(r, "capacity") == Some(&cap)
                        && table.cell(r, "kind") == Some(&json!(kind.name))
                })
                .collect();
            let label = env.label(kind, &format!("capacity {}", fmt_value(&cap)));
            lat.push(series_of(&table, &rows, &label, "clients", "p50_ms"));
            thr.push(series_of(
                &table,
                &rows,
                &label,
                "clients",
                "throughput_rps",
            ));
        }
    }
    if !base_results.is_empty() {
        let pts = |f: &dyn Fn(&LoadResult) -> f64| Series {
            label: "bare Node.js".into(),
            points: s
                .clients
                .iter()
                .zip(&base_results)
                .map(|(&c, r)| (load::as_f64(c), f(r)))
                .collect(),
            baseline: true,
        };
        lat.push(pts(&|r| r.quantile_ms(0.5)));
        thr.push(pts(&LoadResult::throughput));
    }
    env.chart(
        "concurrency_latency.svg",
        Axes {
            title: "Concurrency–Latency (p50)",
            x: "client concurrency",
            y: "latency p50 (ms)",
        },
        &lat,
    )?;
    env.chart(
        "concurrency_throughput.svg",
        Axes {
            title: "Concurrency–Throughput",
            x: "client concurrency",
            y: "throughput (requests/s)",
        },
        &thr,
    )?;
    Ok(table)
}

/// The kinds' names, for a table's settings.
fn kind_names(kinds: &[Kind]) -> Vec<&str> {
    kinds.iter().map(|k| k.name.as_str()).collect()
}

/// A load of `requests` requests from `clients` clients, open loop at `rate` if given.
pub(crate) fn spec(clients: u64, requests: u64, rate: Option<f64>) -> LoadSpec {
    LoadSpec {
        clients,
        requests,
        rate,
    }
}

fn fmt_opt(v: Option<u64>) -> String {
    v.map_or_else(|| "server's".into(), |v| v.to_string())
}

fn fmt_value(v: &Value) -> String {
    match v {
        Value::Null => "server's".into(),
        other => other.to_string(),
    }
}

fn table_capacities(t: &Table) -> Vec<Value> {
    let mut caps: Vec<Value> = Vec::new();
    for r in &t.rows {
        if let Some(c) = t.cell(r, "capacity") {
            if !caps.contains(c) {
                caps.push(c.clone());
            }
        }
    }
    caps
}

fn series_of(t: &Table, rows: &[&Vec<Value>], label: &str, x: &str, y: &str) -> Series {
    let f = |r: &Vec<Value>, c: &str| t.cell(r, c).and_then(Value::as_f64);
    Series {
        label: label.to_owned(),
        points: rows
            .iter()
            .filter_map(|r| Some((f(r, x)?, f(r, y)?)))
            .collect(),
        baseline: false,
    }
}

/// Settings of experiment B.
#[derive(Debug, Clone)]
pub(crate) struct PayloadSettings {
    /// Request body sizes, bytes.
    pub(crate) sizes: Vec<usize>,
    /// Client concurrencies.
    pub(crate) clients: Vec<u64>,
    /// Requests per point at most.
    pub(crate) requests: u64,
    /// Bytes sent per point at most (bounds large payloads' request counts).
    pub(crate) bytes_per_point: u64,
}

impl PayloadSettings {
    /// The study's sizes (17 B … just under 1 MB), or a few for CI.
    pub(crate) fn defaults(quick: bool) -> Self {
        if quick {
            Self {
                sizes: vec![17, 10 * 1024, 100 * 1024],
                clients: vec![1, 4],
                requests: 30,
                bytes_per_point: 4 << 20,
            }
        } else {
            Self {
                sizes: vec![
                    17,
                    1024,
                    10 * 1024,
                    100 * 1024,
                    200 * 1024,
                    500 * 1024,
                    1_048_000,
                ],
                clients: vec![1, 4],
                requests: 1000,
                bytes_per_point: 200 << 20,
            }
        }
    }

    fn requests_for(&self, size: usize) -> u64 {
        let by_bytes = self.bytes_per_point / u64::try_from(size.max(1)).unwrap_or(u64::MAX);
        by_bytes.clamp(20.min(self.requests), self.requests)
    }
}

/// Experiment B: latency and throughput against request payload size, per kind. The bare
/// Node.js server is measured once, beside the first kind.
pub(crate) async fn payload(env: &Env, s: &PayloadSettings) -> anyhow::Result<Table> {
    let role = Role::Hello { sleep_ms: 0 };
    let execs = env
        .kinds
        .iter()
        .map(|k| k.exec(role))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let per_round: u64 =
        s.sizes.iter().map(|&z| s.requests_for(z)).sum::<u64>() * u64::try_from(s.clients.len())?;
    let rounds = u64::try_from(env.kinds.len())? + u64::from(env.baseline);
    let pb = progress(per_round * rounds, "payload");
    let mut columns = vec!["backend", "kind", "payload_bytes", "clients"];
    columns.extend(LOAD_COLUMNS);
    let mut table = Table::new(
        "payload",
        columns,
        json!({"sizes": s.sizes, "clients": s.clients, "max_requests_per_point": s.requests,
               "bytes_per_point": s.bytes_per_point, "open_loop_rate": env.rate,
               "kinds": kind_names(&env.kinds)}),
    );
    let max_clients = s.clients.iter().copied().max().unwrap_or(1);
    let settings = ServeSettings {
        user_memory_mb: max_clients * 256,
        prewarm: vec![],
        isolation: env.isolation(),
    };
    let mut baseline = env.baseline(&kinds::hello_code(0)).await?;
    // The baseline's result at each (size, clients) point, in the order measured.
    let mut base_results: Vec<LoadResult> = Vec::new();
    for (kind, exec) in env.kinds.iter().zip(&execs) {
        let action = kind.action_name(HELLO_ACTION);
        let platform = env.platform(&settings).await?;
        create_exec(&platform, &action, exec, 256).await?;
        let warm = edge_request(&platform, &action, name_body(17))?;
        load::drive(
            &warm,
            spec(max_clients, 20 * max_clients, None),
            &ProgressBar::hidden(),
        )
        .await?;
        let mut point = 0;
        for &size in &s.sizes {
            let body = name_body(size);
            let n = s.requests_for(size);
            for &c in &s.clients {
                pb.set_message(format!("{}, {size} B, {c} clients", kind.name));
                if let Some(b) = &baseline {
                    let r = load::drive(&base_request(b, body.clone()), spec(c, n, env.rate), &pb)
                        .await?;
                    warn_errors("baseline", &r);
                    base_results.push(r);
                }
                let req = edge_request(&platform, &action, body.clone())?;
                let r = load::drive(&req, spec(c, n, env.rate), &pb).await?;
                warn_errors("edgewhisk", &r);
                let mut row = vec![
                    json!(env.backend_label()),
                    json!(kind.name),
                    json!(size),
                    json!(c),
                ];
                row.extend(load_cells(&r, base_results.get(point)));
                table.push(row);
                point += 1;
            }
        }
        if let Some(b) = baseline.take() {
            b.stop().await?;
        }
        platform.stop().await?;
    }
    pb.finish_and_clear();

    let mut lat = Vec::new();
    let mut thr = Vec::new();
    for &c in &s.clients {
        for (i, kind) in env.kinds.iter().enumerate() {
            let rows: Vec<&Vec<Value>> = table
                .rows
                .iter()
                .filter(|r| {
                    table.cell(r, "clients") == Some(&json!(c))
                        && table.cell(r, "kind") == Some(&json!(kind.name))
                })
                .collect();
            let label = env.label(kind, &format!("{c} clients"));
            lat.push(series_of(&table, &rows, &label, "payload_bytes", "p50_ms"));
            thr.push(series_of(
                &table,
                &rows,
                &label,
                "payload_bytes",
                "throughput_rps",
            ));
            if env.baseline && i == 0 {
                let label = format!("bare Node.js, {c} clients");
                let mut b = series_of(&table, &rows, &label, "payload_bytes", "baseline_p50_ms");
                b.baseline = true;
                lat.push(b);
                let mut b = series_of(&table, &rows, &label, "payload_bytes", "baseline_rps");
                b.baseline = true;
                thr.push(b);
            }
        }
    }
    env.chart(
        "payload_latency.svg",
        Axes {
            title: "Payload–Latency (p50)",
            x: "request payload (bytes)",
            y: "latency p50 (ms)",
        },
        &lat,
    )?;
    env.chart(
        "payload_throughput.svg",
        Axes {
            title: "Payload–Throughput",
            x: "request payload (bytes)",
            y: "throughput (requests/s)",
        },
        &thr,
    )?;
    Ok(table)
}

/// Settings of experiment C.
#[derive(Debug, Clone)]
pub(crate) struct TransferSettings {
    /// Payload sizes passed from head to tail, bytes.
    pub(crate) sizes: Vec<usize>,
    /// Sequence invocations per size (ServerlessBench: 20).
    pub(crate) repeat: u64,
}

impl TransferSettings {
    /// ServerlessBench's 20 runs over 0 B … ~1 MB, or a few for CI.
    pub(crate) fn defaults(quick: bool) -> Self {
        if quick {
            Self {
                sizes: vec![0, 1024, 100 * 1024],
                repeat: 3,
            }
        } else {
            Self {
                sizes: vec![
                    0,
                    1024,
                    10 * 1024,
                    50 * 1024,
                    100 * 1024,
                    200 * 1024,
                    500 * 1024,
                    1_040_000,
                ],
                repeat: 20,
            }
        }
    }
}

/// One measured hop: the tail's `comTimeMs` and the whole round trip.
#[derive(Debug, Clone, Copy)]
struct Hop {
    hop_ms: f64,
    e2e_ms: f64,
}

fn hop_of(v: &Value) -> anyhow::Result<f64> {
    v.get("comTimeMs")
        .and_then(Value::as_f64)
        .with_context(|| format!("the tail answered no comTimeMs: {}", truncate(v)))
}

fn truncate(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(300).collect()
}

async fn post_json(
    http: &reqwest::Client,
    url: reqwest::Url,
    auth: Option<&reqwest::header::HeaderValue>,
    body: bytes::Bytes,
) -> anyhow::Result<Value> {
    let mut b = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(a) = auth {
        b = b.header(reqwest::header::AUTHORIZATION, a.clone());
    }
    let resp = b.send().await?;
    let status = resp.status();
    let text = resp.bytes().await?;
    let v: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("answered {status}: {}", truncate(&v));
    }
    Ok(v)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let last = sorted.len() - 1;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short, non-empty vector"
    )]
    let i = ((q * last as f64).round() as usize).min(last);
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Experiment C: the hop time of a two-step sequence of the same action, per kind. The bare
/// Node.js hop is measured once, interleaved with the first kind's.
pub(crate) async fn transfer(env: &Env, s: &TransferSettings) -> anyhow::Result<Table> {
    let execs = env
        .kinds
        .iter()
        .map(|k| k.exec(Role::Hop))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rounds = u64::try_from(env.kinds.len())? + u64::from(env.baseline);
    let pb = progress(
        u64::try_from(s.sizes.len())? * s.repeat * rounds,
        "transfer",
    );
    let clocks: serde_json::Map<String, Value> = env
        .kinds
        .iter()
        .map(|k| (k.name.clone(), json!(k.hop_clock())))
        .collect();
    let sequences: Vec<Value> = env
        .kinds
        .iter()
        .map(|k| {
            let hop = format!("/_/{}", k.action_name(HOP_ACTION));
            json!([hop, hop])
        })
        .collect();
    let mut table = Table::new(
        "transfer",
        vec![
            "backend",
            "kind",
            "payload_bytes",
            "runs",
            "hop_p50_ms",
            "hop_p90_ms",
            "hop_max_ms",
            "e2e_p50_ms",
            "e2e_p90_ms",
            "baseline_hop_p50_ms",
            "baseline_e2e_p50_ms",
            "hop_ratio",
        ],
        json!({"sizes": s.sizes, "repeat": s.repeat,
               "sequence": if env.kinds.len() == 1 { sequences[0].clone() } else { json!(sequences) },
               "clock": if env.kinds.len() == 1 { json!(env.kinds[0].hop_clock()) } else { json!(clocks) }}),
    );
    let settings = ServeSettings {
        user_memory_mb: 1024,
        prewarm: vec![],
        isolation: env.isolation(),
    };
    let mut baseline = env.baseline(kinds::HOP_CODE).await?;
    // The baseline's sorted hop and end-to-end times per size.
    let mut base_by_size: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    let http = load::http_client()?;
    let body_of = |n: usize| {
        bytes::Bytes::from(
            serde_json::to_vec(&json!({"payload": "0".repeat(n)})).unwrap_or_default(),
        )
    };
    for (kind, exec) in env.kinds.iter().zip(&execs) {
        let platform = env.platform(&settings).await?;
        let hop_action = kind.action_name(HOP_ACTION);
        let seq_action = kind.action_name(HOP_SEQUENCE);
        create_exec(&platform, &hop_action, exec, 256).await?;
        let seq = json!({"exec": {"kind": "sequence",
                                  "components": [format!("/_/{hop_action}"), format!("/_/{hop_action}")]}});
        platform
            .client
            .put_action(&seq_action, &seq, true)
            .await
            .context("creating the bench sequence")?;
        let seq_url = platform.invoke_url(&seq_action)?;
        // Warm the action's instance.
        for _ in 0..3 {
            post_json(&http, seq_url.clone(), platform.auth.as_ref(), body_of(0)).await?;
        }

        for (si, &size) in s.sizes.iter().enumerate() {
            pb.set_message(format!("{}, {size} B", kind.name));
            let body = body_of(size);
            let mut edge = Vec::new();
            let mut base = Vec::new();
            for _ in 0..s.repeat {
                let t = Instant::now();
                let v = post_json(&http, seq_url.clone(), platform.auth.as_ref(), body.clone())
                    .await
                    .with_context(|| format!("invoking the sequence with {size} B"))?;
                edge.push(Hop {
                    hop_ms: hop_of(&v)?,
                    e2e_ms: t.elapsed().as_secs_f64() * 1000.0,
                });
                pb.inc(1);
                if let Some(b) = &baseline {
                    base.push(baseline_hop(&http, b, body.clone()).await?);
                    pb.inc(1);
                }
            }
            if baseline.is_some() {
                base_by_size.push((
                    sorted(base.iter().map(|h| h.hop_ms).collect()),
                    sorted(base.iter().map(|h| h.e2e_ms).collect()),
                ));
            }
            let hops = sorted(edge.iter().map(|h| h.hop_ms).collect());
            let e2e = sorted(edge.iter().map(|h| h.e2e_ms).collect());
            let (bh, be) = base_by_size
                .get(si)
                .map_or((&[][..], &[][..]), |(h, e)| (&h[..], &e[..]));
            let opt = |v: &[f64]| {
                if v.is_empty() {
                    Value::Null
                } else {
                    num(percentile(v, 0.5))
                }
            };
            table.push(vec![
                json!(env.backend_label()),
                json!(kind.name),
                json!(size),
                json!(edge.len()),
                num(percentile(&hops, 0.5)),
                num(percentile(&hops, 0.9)),
                num(hops.last().copied().unwrap_or(f64::NAN)),
                num(percentile(&e2e, 0.5)),
                num(percentile(&e2e, 0.9)),
                opt(bh),
                opt(be),
                if bh.is_empty() {
                    Value::Null
                } else {
                    ratio(percentile(&hops, 0.5), percentile(bh, 0.5))
                },
            ]);
        }
        if let Some(b) = baseline.take() {
            b.stop().await?;
        }
        platform.stop().await?;
    }
    pb.finish_and_clear();

    let mut series = Vec::new();
    for (i, kind) in env.kinds.iter().enumerate() {
        let rows: Vec<&Vec<Value>> = table
            .rows
            .iter()
            .filter(|r| table.cell(r, "kind") == Some(&json!(kind.name)))
            .collect();
        for (what, column) in [
            ("hop p50", "hop_p50_ms"),
            ("hop p90", "hop_p90_ms"),
            ("end-to-end p50", "e2e_p50_ms"),
        ] {
            let label = env.label(kind, what).replacen(", ", " ", 1);
            series.push(series_of(&table, &rows, &label, "payload_bytes", column));
        }
        if env.baseline && i == 0 {
            let mut b = series_of(
                &table,
                &rows,
                "bare Node.js hop p50 (client-chained)",
                "payload_bytes",
                "baseline_hop_p50_ms",
            );
            b.baseline = true;
            series.push(b);
        }
    }
    env.chart(
        "transfer_latency.svg",
        Axes {
            title: "Transfer–Latency (two-step sequence)",
            x: "payload passed head → tail (bytes)",
            y: "ms",
        },
        &series,
    )?;
    Ok(table)
}

/// The same hop with no platform: the bench posts to the bare server as head, then posts the
/// head's result to it as tail.
async fn baseline_hop(
    http: &reqwest::Client,
    b: &Baseline,
    body: bytes::Bytes,
) -> anyhow::Result<Hop> {
    let t = Instant::now();
    let head = post_json(http, b.url(), None, body).await?;
    let tail_body = bytes::Bytes::from(serde_json::to_vec(&head)?);
    let tail = post_json(http, b.url(), None, tail_body).await?;
    Ok(Hop {
        hop_ms: hop_of(&tail)?,
        e2e_ms: t.elapsed().as_secs_f64() * 1000.0,
    })
}

/// Settings of the cold-start experiment.
#[derive(Debug, Clone)]
pub(crate) struct ColdstartSettings {
    /// Runtime kinds, e.g. `nodejs:20`, `python:3`.
    pub(crate) kinds: Vec<Kind>,
    /// Fresh actions per kind and case.
    pub(crate) repeat: u64,
    /// Pause before each timed invocation so stem cells can refill, ms.
    pub(crate) pause_ms: u64,
}

impl ColdstartSettings {
    /// Node.js and Python; fewer runs for CI.
    pub(crate) fn defaults(quick: bool) -> anyhow::Result<Self> {
        Ok(Self {
            kinds: kinds::parse_kinds(&[], &kinds::DEFAULT_COLDSTART_KINDS)?,
            repeat: if quick { 2 } else { 10 },
            pause_ms: if quick { 400 } else { 1000 },
        })
    }
}

/// Cold starts: first invocation of fresh actions, per isolation backend, kind and stem-cell
/// case. Kinds without stem cells (Wasm, native) are measured in the case without.
pub(crate) async fn coldstart(env: &Env, s: &ColdstartSettings) -> anyhow::Result<Table> {
    let role = Role::Hello { sleep_ms: 0 };
    let execs = s
        .kinds
        .iter()
        .map(|k| k.exec(role))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // With --spawn: one server with a stem cell per kind, one with none. Otherwise the server
    // as configured (its stem cells are whatever it runs with).
    let cases: Vec<(&str, bool)> = if env.spawn {
        vec![("yes", true), ("no", false)]
    } else {
        vec![("server config", false)]
    };
    let backends: Vec<Option<String>> = if env.spawn && !env.isolation.is_empty() {
        env.isolation.iter().cloned().map(Some).collect()
    } else {
        vec![None]
    };
    let measured = |k: &Kind, stem: bool| !stem || k.has_stem_cells();
    // A Wasm kind is measured twice without stem cells: module compiled, module cached.
    let rows = |k: &Kind| if k.family() == Family::Wasm { 2 } else { 1 };
    let per_backend: usize = cases
        .iter()
        .map(|&(_, stem)| {
            s.kinds
                .iter()
                .filter(|k| measured(k, stem))
                .map(rows)
                .sum::<usize>()
        })
        .sum();
    let total = u64::try_from(backends.len() * per_backend)? * s.repeat;
    let pb = progress(total, "coldstart");
    let mut table = Table::new(
        "coldstart",
        vec![
            "backend",
            "kind",
            "stem_cell",
            "runs",
            "p50_ms",
            "min_ms",
            "max_ms",
            "baseline_process_ms",
            "p50_ratio",
        ],
        json!({"kinds": kind_names(&s.kinds), "repeat": s.repeat, "pause_ms": s.pause_ms,
               "baseline": "start the bare runtime's HTTP server process and answer one request"}),
    );
    let mut baselines = Vec::new();
    for kind in &s.kinds {
        let mut v = Vec::new();
        if env.baseline && kind.has_stem_cells() {
            for _ in 0..s.repeat.min(5) {
                v.push(process_cold_start(env, kind).await?);
            }
        }
        baselines.push((!v.is_empty()).then(|| percentile(&sorted(v), 0.5)));
    }
    let mut seq = 0u64;
    for backend in &backends {
        for &(label, stem) in &cases {
            if !s.kinds.iter().any(|k| measured(k, stem)) {
                continue;
            }
            let settings = ServeSettings {
                user_memory_mb: 256 * (s.repeat + 4) * u64::try_from(s.kinds.len())?,
                prewarm: s
                    .kinds
                    .iter()
                    .filter(|k| stem && k.has_stem_cells())
                    .map(|k| (k.name.clone(), 1))
                    .collect(),
                isolation: backend.clone(),
            };
            let platform = env.platform(&settings).await?;
            let backend_label = if env.spawn {
                backend.clone().unwrap_or_else(|| "server default".into())
            } else {
                "external server".into()
            };
            for ((kind, exec), base) in s.kinds.iter().zip(&execs).zip(&baselines) {
                if !measured(kind, stem) {
                    continue;
                }
                // A Wasm action's cold start is its module's compilation, unless the server
                // has the same module compiled already: both cases are measured, the first with
                // a module unique to each action, the second after one untimed compilation.
                let modules: &[Option<bool>] = if kind.family() == Family::Wasm {
                    &[Some(true), Some(false)]
                } else {
                    &[None]
                };
                for &compiled in modules {
                    let stem_label = match (compiled, !env.spawn && !kind.has_stem_cells()) {
                        (Some(true), _) => "no (module compiled)",
                        (Some(false), _) => "no (module cached)",
                        (None, true) => "none",
                        (None, false) => label,
                    };
                    pb.set_message(format!(
                        "{backend_label}, {}, stem cell {stem_label}",
                        kind.name
                    ));
                    if compiled == Some(false) {
                        seq += 1;
                        let name = format!("ew-bench-cold-{}-{seq}", std::process::id());
                        create_exec(&platform, &name, exec, 256).await?;
                        let req = edge_request(&platform, &name, name_body(17))?;
                        load::send(&load::http_client()?, &req)
                            .await
                            .with_context(|| format!("compiling the module of {}", kind.name))?;
                        let _ = platform.client.delete_action(&name).await;
                    }
                    let mut times = Vec::new();
                    for _ in 0..s.repeat {
                        seq += 1;
                        let name = format!("ew-bench-cold-{}-{seq}", std::process::id());
                        let unique;
                        let exec = if compiled == Some(true) {
                            unique = kinds::unique_wasm_exec(&kind.name, seq)?;
                            &unique
                        } else {
                            exec
                        };
                        create_exec(&platform, &name, exec, 256).await?;
                        tokio::time::sleep(Duration::from_millis(s.pause_ms)).await;
                        let req = edge_request(&platform, &name, name_body(17))?;
                        let http = load::http_client()?;
                        // Open the connection first so the timing holds only the invocation.
                        let _ = http.get(platform.base.join("api/v1")?).send().await;
                        let took = load::send(&http, &req).await.with_context(|| {
                            format!("first invocation of {name} ({})", kind.name)
                        })?;
                        times.push(took.as_secs_f64() * 1000.0);
                        let _ = platform.client.delete_action(&name).await;
                        pb.inc(1);
                    }
                    let t = sorted(times);
                    table.push(vec![
                        json!(backend_label),
                        json!(kind.name),
                        json!(stem_label),
                        json!(t.len()),
                        num(percentile(&t, 0.5)),
                        num(t.first().copied().unwrap_or(f64::NAN)),
                        num(t.last().copied().unwrap_or(f64::NAN)),
                        base.map_or(Value::Null, num),
                        base.map_or(Value::Null, |b| ratio(percentile(&t, 0.5), b)),
                    ]);
                }
            }
            platform.stop().await?;
        }
    }
    pb.finish_and_clear();
    Ok(table)
}

/// Time from spawning the bare runtime's HTTP server with the hello function to its first
/// answer (Node.js or Python).
async fn process_cold_start(env: &Env, kind: &Kind) -> anyhow::Result<f64> {
    let http = load::http_client()?;
    let t = Instant::now();
    let exec = kind.exec(Role::Hello { sleep_ms: 0 })?;
    let code = exec["code"].as_str().unwrap_or_default();
    if kind.family() == Family::Python {
        let dir = ScratchDir::new("pybase")?;
        let script = dir.path().join("baseline.py");
        std::fs::write(&script, format!("{code}\n{PY_SERVER}"))?;
        let mut cmd = tokio::process::Command::new(&env.python);
        cmd.arg(&script);
        let server = super::target::ChildServer::start(
            "python baseline",
            cmd,
            "baseline: listening on ",
            &dir.path().join("log"),
        )
        .await?;
        let req = Request {
            url: server.base.clone(),
            auth: None,
            body: name_body(17),
        };
        load::send(&http, &req).await?;
        let took = t.elapsed();
        server.stop().await?;
        Ok(took.as_secs_f64() * 1000.0)
    } else {
        let b = Baseline::start(&env.node, code).await?;
        load::send(&http, &base_request(&b, name_body(17))).await?;
        let took = t.elapsed();
        b.stop().await?;
        Ok(took.as_secs_f64() * 1000.0)
    }
}

/// A bare Python `http.server` calling `main` (appended after the action code).
const PY_SERVER: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        out = json.dumps(main(json.loads(raw) if raw else {})).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass

s = HTTPServer(("127.0.0.1", 0), H)
print("baseline: listening on http://127.0.0.1:%d" % s.server_address[1], flush=True)
s.serve_forever()
"#;

/// Fails early, with the server's list, unless it offers every kind in `kinds`: asks `GET /`
/// of the configured server, or of one spawned for the question.
pub(crate) async fn check_kinds(env: &Env, kinds: &[Kind]) -> anyhow::Result<()> {
    let settings = ServeSettings {
        user_memory_mb: 256,
        prewarm: vec![],
        isolation: env.isolation(),
    };
    let platform = env.platform(&settings).await?;
    let info = deployment_info(&platform.base).await;
    platform.stop().await?;
    kinds::check_offered(&info?, kinds)
}

/// `GET /` of the server at `base`: its limits and runtimes.
pub(crate) async fn deployment_info(base: &reqwest::Url) -> anyhow::Result<Value> {
    let http = load::http_client()?;
    let url = base.join("/")?;
    let get = async { http.get(url).send().await?.error_for_status()?.json().await };
    let info: reqwest::Result<Value> = get.await;
    info.context("asking the server for its runtimes (GET /)")
}

/// Writes `table` into the output directory, if there is one.
pub(crate) fn write(env: &Env, table: &Table, machine: &Value) -> anyhow::Result<()> {
    if let Some(dir) = &env.out {
        table.write(dir, machine)?;
    }
    Ok(())
}

/// Creates the output directory.
pub(crate) fn prepare_out(out: Option<&Path>) -> anyhow::Result<()> {
    if let Some(dir) = out {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating output directory {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_body_has_exactly_the_requested_size_and_is_json() {
        for size in [17, 1024, 100 * 1024] {
            let b = name_body(size);
            assert_eq!(b.len(), size);
            let v: Value = serde_json::from_slice(&b).unwrap();
            assert!(v["name"].is_string());
        }
    }

    #[test]
    fn payload_request_counts_are_bounded_by_bytes() {
        let s = PayloadSettings::defaults(false);
        assert_eq!(s.requests_for(17), 1000);
        assert!(s.requests_for(1_048_000) * 1_048_000 <= s.bytes_per_point);
        assert!(s.requests_for(1_048_000) >= 20);
    }

    #[test]
    fn percentile_picks_the_nearest_rank() {
        let v = sorted(vec![5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert_eq!(percentile(&v, 0.9), 5.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn full_sweeps_match_the_study() {
        let a = ConcurrencySettings::defaults(false);
        assert_eq!(a.capacities, [1, 2, 3, 4, 5, 8, 11]);
        assert_eq!(a.clients.last(), Some(&64));
        let b = PayloadSettings::defaults(false);
        assert_eq!(b.sizes.first(), Some(&17));
        assert!(*b.sizes.last().unwrap() < 1 << 20);
    }
}
