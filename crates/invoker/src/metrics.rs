//! The invoker's metrics (`docs/design/016-metrics.md`): activations by kind and status,
//! cold and warm starts, run, init and wait time, under OpenWhisk's user-event names
//! (`openwhisk_action_*`); the pool's instances by state, its queue and the runners' memory,
//! read when scraped ([`Invoker::refresh_metrics`](crate::Invoker::refresh_metrics)).
//!
//! Recording costs a few atomic increments and two histogram observations per activation on
//! handles resolved at start for every kind of the runtime manifest. Only with per-action
//! labels (`[metrics] namespace_labels`) is a labelled series looked up per activation.

use crate::container::Interval;
use crate::record::RunFacts;
use edgewhisk_entity::connector::ActivationMessage;
use edgewhisk_entity::{RuntimeManifest, Status};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Labels of one series: `kind`, and `namespace`/`action` with per-action labels.
type Labels = Vec<(&'static str, String)>;

/// A family of histograms built with [`latency_buckets`].
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// The upper bounds of the latency histograms, seconds: 1 ms to about 65 s.
fn latency_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 17,
    ))
}

/// The four statuses in the order of [`status_index`], as OpenWhisk's user events name them.
const STATUSES: [&str; 4] = [
    "success",
    "application_error",
    "developer_error",
    "internal_error",
];

fn status_index(status: Status) -> usize {
    match status {
        Status::Success => 0,
        Status::ApplicationError => 1,
        Status::DeveloperError => 2,
        Status::WhiskError => 3,
    }
}

/// The series of one label set, resolved once.
#[derive(Debug, Clone)]
struct Series {
    activations: Counter,
    cold: Counter,
    warm: Counter,
    status: [Counter; 4],
    duration: Histogram,
    init: Histogram,
    wait: Histogram,
}

/// The invoker's metric families and the handles of every known kind. Cheap to clone.
#[derive(Debug, Clone)]
pub struct InvokerMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    per_action: bool,
    activations: Family<Labels, Counter>,
    cold: Family<Labels, Counter>,
    warm: Family<Labels, Counter>,
    status: Family<Labels, Counter>,
    duration: Histograms,
    init: Histograms,
    wait: Histograms,
    /// Handles of the manifest's kinds (without per-action labels).
    kinds: Vec<(String, Series)>,
    instances: Family<Vec<(&'static str, &'static str)>, Gauge>,
    queue: Gauge,
    runner_memory: Gauge,
    runner_processes: Gauge,
}

/// What the pool holds when scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    /// Stem cells still starting.
    pub prewarm_starting: i64,
    /// Stem cells ready for any action of their kind.
    pub prewarm: i64,
    /// Instances starting or running `/init` for an action.
    pub warming: i64,
    /// Initialised instances running at least one activation.
    pub busy: i64,
    /// Initialised instances running nothing (paused or about to be).
    pub idle: i64,
    /// Activations waiting for an instance or for memory.
    pub queued: i64,
}

impl InvokerMetrics {
    /// Metrics for the kinds of `manifest`; with `per_action`, every activation series also
    /// carries the `namespace` and `action` labels, as OpenWhisk's user events do.
    pub fn new(manifest: &RuntimeManifest, per_action: bool) -> Self {
        let histograms = || Histograms::new_with_constructor(latency_buckets as fn() -> Histogram);
        let mut inner = Inner {
            per_action,
            activations: Family::default(),
            cold: Family::default(),
            warm: Family::default(),
            status: Family::default(),
            duration: histograms(),
            init: histograms(),
            wait: histograms(),
            kinds: Vec::new(),
            instances: Family::default(),
            queue: Gauge::default(),
            runner_memory: Gauge::default(),
            runner_processes: Gauge::default(),
        };
        if !per_action {
            for rt in &manifest.runtimes {
                let series = inner.series(vec![("kind", rt.kind.clone())]);
                inner.kinds.push((rt.kind.clone(), series));
            }
        }
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Registers every family in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let i = &self.inner;
        registry.register(
            "openwhisk_action_activations",
            "Activations run by this invoker",
            i.activations.clone(),
        );
        registry.register(
            "openwhisk_action_coldStarts",
            "Activations that started a new instance (initTime paid)",
            i.cold.clone(),
        );
        registry.register(
            "edgewhisk_action_warm_starts",
            "Activations that ran on an initialised instance",
            i.warm.clone(),
        );
        registry.register(
            "openwhisk_action_status",
            "Activations by outcome",
            i.status.clone(),
        );
        registry.register(
            "openwhisk_action_duration_seconds",
            "Time the action code ran (/run)",
            i.duration.clone(),
        );
        registry.register(
            "openwhisk_action_initTime_seconds",
            "Time it took to initialise an action (/init) on a cold start",
            i.init.clone(),
        );
        registry.register(
            "openwhisk_action_waitTime_seconds",
            "Time from receipt to the first instance work (queue and start)",
            i.wait.clone(),
        );
        registry.register(
            "edgewhisk_pool_instances",
            "Action instances by state",
            i.instances.clone(),
        );
        registry.register(
            "edgewhisk_pool_queue_length",
            "Activations waiting for an instance or memory",
            i.queue.clone(),
        );
        registry.register(
            "edgewhisk_runner_memory_bytes",
            "Resident memory of the runner processes, read when scraped",
            i.runner_memory.clone(),
        );
        registry.register(
            "edgewhisk_runner_processes",
            "Runner processes (and their helpers) counted in edgewhisk_runner_memory_bytes",
            i.runner_processes.clone(),
        );
    }

    /// Counts one finished activation of `msg` from what happened to it.
    pub(crate) fn record(&self, msg: &ActivationMessage, facts: &RunFacts) {
        let kind = msg.action.exec.kind.as_str();
        let known = self
            .inner
            .kinds
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, s)| s);
        match known {
            Some(series) => observe(series, msg, facts),
            None => {
                let mut labels = vec![("kind", kind.to_owned())];
                if self.inner.per_action {
                    let name = &msg.action.name;
                    let action = match name.package() {
                        Some(pkg) => format!("{pkg}/{}", name.name),
                        None => name.name.clone(),
                    };
                    labels.push(("namespace", name.namespace().to_owned()));
                    labels.push(("action", action));
                }
                observe(&self.inner.series(labels), msg, facts);
            }
        }
    }

    /// Sets the pool gauges and the runners' memory to what was just read.
    pub(crate) fn set_pool(&self, counts: PoolCounts, memory: RunnerMemory) {
        let i = &self.inner;
        let states = [
            ("prewarm_starting", counts.prewarm_starting),
            ("prewarm", counts.prewarm),
            ("warming", counts.warming),
            ("busy", counts.busy),
            ("idle", counts.idle),
        ];
        for (state, n) in states {
            i.instances.get_or_create(&vec![("state", state)]).set(n);
        }
        i.queue.set(counts.queued);
        i.runner_memory
            .set(i64::try_from(memory.bytes).unwrap_or(i64::MAX));
        i.runner_processes
            .set(i64::try_from(memory.processes).unwrap_or(i64::MAX));
    }
}

impl Inner {
    fn series(&self, labels: Labels) -> Series {
        let with_status = |status: &str| {
            let mut l = labels.clone();
            l.push(("status", status.to_owned()));
            self.status.get_or_create_owned(&l)
        };
        Series {
            activations: self.activations.get_or_create_owned(&labels),
            cold: self.cold.get_or_create_owned(&labels),
            warm: self.warm.get_or_create_owned(&labels),
            status: STATUSES.map(with_status),
            duration: self.duration.get_or_create_owned(&labels),
            init: self.init.get_or_create_owned(&labels),
            wait: self.wait.get_or_create_owned(&labels),
        }
    }
}

fn observe(series: &Series, msg: &ActivationMessage, facts: &RunFacts) {
    series.activations.inc();
    series.status[status_index(facts.response.status)].inc();
    if let Some(init) = &facts.init {
        series.cold.inc();
        series.init.observe(init.duration().as_secs_f64());
    } else if facts.run.is_some() {
        series.warm.inc();
    }
    if let Some(run) = &facts.run {
        series.duration.observe(run.duration().as_secs_f64());
    }
    if let Some(busy) = facts.init.as_ref().or(facts.run.as_ref()) {
        series.wait.observe(wait_time(msg, busy).as_secs_f64());
    }
}

/// From receipt (`received_at`, ms since the epoch) to the first instance work.
fn wait_time(msg: &ActivationMessage, busy: &Interval) -> Duration {
    let busy_from = busy.start.duration_since(UNIX_EPOCH).unwrap_or_default();
    busy_from.saturating_sub(Duration::from_millis(msg.received_at))
}

/// The resident memory of this process's descendants (the runners, and with runc the runtime
/// and network helpers of each instance).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RunnerMemory {
    /// Sum of their resident set sizes, bytes.
    pub(crate) bytes: u64,
    /// How many processes were counted.
    pub(crate) processes: u64,
}

/// Reads `/proc`: every descendant of this process and its `VmRSS`. Processes that end while
/// being read are skipped.
pub(crate) fn runner_memory() -> RunnerMemory {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return RunnerMemory::default();
    };
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(ppid) = parent_of(pid) {
            parents.push((pid, ppid));
        }
    }
    let mut ours = vec![me];
    let mut i = 0;
    while i < ours.len() {
        let parent = ours[i];
        ours.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    let mut memory = RunnerMemory::default();
    for pid in ours.into_iter().skip(1) {
        if let Some(rss) = resident_bytes(pid) {
            memory.bytes += rss;
            memory.processes += 1;
        }
    }
    memory
}

/// The parent of `pid` from `/proc/<pid>/stat` (the field after the parenthesised name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// `VmRSS` of `pid`, bytes; `None` for a process without memory (a zombie) or gone.
fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewhisk_entity::ActivationResponse;
    use edgewhisk_testkit::fixtures;
    use std::time::SystemTime;

    fn scrape(metrics: &InvokerMetrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("encodes");
        out
    }

    fn facts(init: bool, status: Status) -> RunFacts {
        let now = SystemTime::now();
        let interval = Interval {
            start: now,
            end: now + Duration::from_millis(3),
        };
        RunFacts {
            init: init.then_some(interval),
            run: Some(interval),
            response: ActivationResponse::error(status, "x"),
            logs: Vec::new(),
            timed_out: false,
        }
    }

    #[test]
    fn counts_cold_and_warm_starts_and_statuses_by_kind_without_names() {
        let metrics = InvokerMetrics::new(&RuntimeManifest::default(), false);
        let action = fixtures::action("alice", "hello").code("x").build();
        let msg = fixtures::activation_message(&action).build();
        metrics.record(&msg, &facts(true, Status::Success));
        metrics.record(&msg, &facts(false, Status::ApplicationError));
        let text = scrape(&metrics);
        let kind = &action.exec.kind;
        for line in [
            format!("openwhisk_action_activations_total{{kind=\"{kind}\"}} 2"),
            format!("openwhisk_action_coldStarts_total{{kind=\"{kind}\"}} 1"),
            format!("edgewhisk_action_warm_starts_total{{kind=\"{kind}\"}} 1"),
            format!("openwhisk_action_status_total{{kind=\"{kind}\",status=\"success\"}} 1"),
            format!(
                "openwhisk_action_status_total{{kind=\"{kind}\",status=\"application_error\"}} 1"
            ),
            format!("openwhisk_action_initTime_seconds_count{{kind=\"{kind}\"}} 1"),
            format!("openwhisk_action_duration_seconds_count{{kind=\"{kind}\"}} 2"),
        ] {
            assert!(text.contains(&line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("alice") && !text.contains("hello"), "{text}");
    }

    #[test]
    fn per_action_labels_name_the_namespace_and_action() {
        let metrics = InvokerMetrics::new(&RuntimeManifest::default(), true);
        let action = fixtures::action("alice", "hello").code("x").build();
        let msg = fixtures::activation_message(&action).build();
        metrics.record(&msg, &facts(false, Status::Success));
        let text = scrape(&metrics);
        assert!(
            text.contains("namespace=\"alice\"") && text.contains("action=\"hello\""),
            "{text}"
        );
    }

    #[test]
    fn runner_memory_counts_a_child_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep starts");
        let memory = runner_memory();
        let _ = child.kill();
        let _ = child.wait();
        assert!(memory.processes >= 1, "{memory:?}");
        assert!(memory.bytes > 0, "{memory:?}");
    }
}
