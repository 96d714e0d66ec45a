//! The backend seam: the [`Container`] and [`ContainerFactory`] traits every backend
//! implements, and the requests, replies and errors that cross it.

use async_trait::async_trait;
use serde_json::value::RawValue;
use std::time::{Duration, SystemTime};

/// The activation-end marker a runner writes on stdout and stderr after every request.
pub const ACTIVATION_LOG_SENTINEL: &str = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX";

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// A name for logs and backend resources, unique per instance.
    pub name: String,
    /// The runtime kind, e.g. `nodejs:20`.
    pub kind: String,
    /// Memory limit in MB (enforced by isolating backends).
    pub memory_mb: u64,
    /// Whether the instance may run several activations at once (`limits.concurrency` > 1).
    pub allow_concurrent: bool,
}

/// The `/init` request: OpenWhisk's `value` of `POST /init`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InitRequest {
    /// The action's name.
    pub name: String,
    /// The entry point (`main` when unset).
    pub main: String,
    /// Whether `code` is base64 of an archive.
    pub binary: bool,
    /// Source or base64 archive.
    pub code: String,
    /// Environment for the instance: `__OW_*` values and `init: true` parameters, as strings.
    pub env: serde_json::Map<String, serde_json::Value>,
}

/// The `/run` request: arguments passed through unparsed plus the activation context.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRequest {
    /// The arguments (a JSON object).
    pub value: Box<RawValue>,
    /// Invoking namespace.
    pub namespace: String,
    /// `/ns/[pkg/]name`.
    pub action_name: String,
    /// Action version.
    pub action_version: String,
    /// Activation id.
    pub activation_id: String,
    /// Transaction id.
    pub transaction_id: String,
    /// Deadline, epoch ms, as a string (OpenWhisk sends it so).
    pub deadline: String,
    /// `uuid:key`, only when the action may see it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

/// A reply from the runner: the HTTP-like status and the JSON body, unparsed.
#[derive(Debug, Clone)]
pub struct RunnerReply {
    /// 200 on success; other values mean what the OpenWhisk proxies' statuses mean.
    pub status: u16,
    /// The reply body (JSON text).
    pub body: Box<RawValue>,
}

/// When a request started and ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Start.
    pub start: SystemTime,
    /// End.
    pub end: SystemTime,
}

impl Interval {
    /// Length of the interval.
    pub fn duration(&self) -> Duration {
        self.end.duration_since(self.start).unwrap_or_default()
    }
}

/// How a request to a runner ended.
#[derive(Debug, Clone)]
pub enum RunnerOutcome {
    /// The runner replied.
    Replied(RunnerReply),
    /// The request did not finish within its time limit; the instance must be destroyed.
    TimedOut,
    /// The runner exited or closed its pipes before replying.
    Exited,
    /// The runner was killed because it exceeded its memory limit (isolating backends).
    OutOfMemory,
}

/// Log lines of one activation, already formatted as `<timestamp> stdout|stderr: text`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectedLogs {
    /// The lines, truncation and error notices included.
    pub lines: Vec<String>,
}

/// Backend failures starting or driving an instance (not action failures: those are
/// [`RunnerOutcome`]s).
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The runtime kind has no runner here.
    #[error("no runner for kind {0}")]
    UnknownKind(String),
    /// Starting the runner failed.
    #[error("failed to start runner: {0}")]
    Start(#[source] std::io::Error),
    /// The archive in `code` could not be unpacked.
    #[error("invalid action archive: {0}")]
    Archive(String),
    /// An I/O failure talking to the runner.
    #[error("runner i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// One running instance.
///
/// Concurrency contract: `initialize` is called once, before any `run`; `run` may be called
/// concurrently only when the spec allowed concurrency; `logs` is called by the proxy after each
/// run, in run order; `suspend`/`resume`/`destroy` are never called while a run is in flight.
#[async_trait]
pub trait Container: Send + Sync + std::fmt::Debug {
    /// Sends `/init`; `timeout` bounds it.
    async fn initialize(
        &self,
        init: InitRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError>;
    /// Sends `/run`; `timeout` bounds it.
    async fn run(
        &self,
        run: RunRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError>;
    /// Collects the log lines written since the last call, up to both sentinels, at most
    /// `limit_bytes` (0 = collect nothing). `wait_for_sentinel` is false when the runner died.
    async fn logs(&self, limit_bytes: u64, wait_for_sentinel: bool) -> CollectedLogs;
    /// Freezes an idle instance (no-op for backends that cannot).
    async fn suspend(&self) -> Result<(), ContainerError>;
    /// Thaws a suspended instance.
    async fn resume(&self) -> Result<(), ContainerError>;
    /// Kills the instance and frees its resources. Idempotent.
    async fn destroy(&self);
}

/// Starts instances of one backend.
#[async_trait]
pub trait ContainerFactory: Send + Sync + std::fmt::Debug + 'static {
    /// Starts a runner for `spec` (not yet initialised).
    async fn create(&self, spec: &ContainerSpec) -> Result<Box<dyn Container>, ContainerError>;
    /// Removes whatever a previous, crashed run of this backend left behind.
    async fn cleanup(&self);
    /// Whether actions are isolated from each other and the host.
    fn is_isolated(&self) -> bool;
}
