//! [`WasmFactory`] and its instances.

use super::activation::{self, Input, RawLines, developer_error};
use super::code::module_bytes;
use super::config::{WasmConfig, is_wasm_kind};
use super::engine::{EPOCH_TICK, Prepared, Runtime, Source};
use crate::container::archive::ArchiveLimits;
use crate::container::backend::{
    CollectedLogs, Container, ContainerError, ContainerFactory, ContainerSpec, InitRequest,
    Interval, RunRequest, RunnerOutcome, RunnerReply,
};
use crate::container::process::logs::format_lines;
use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::value::RawValue;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;

/// How long past its time limit a run that is stuck in a host call (a WASI sleep, which the
/// epoch cannot interrupt) is waited for before it is reported as timed out anyway.
const HOST_CALL_GRACE: Duration = Duration::from_secs(1);

/// How modules were obtained since the factory started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WasmStats {
    /// Compiled from their code.
    pub compiled: u64,
    /// Read from the on-disk compilation cache (compiled by an earlier run of the server).
    pub disk_hits: u64,
    /// Already compiled in memory (another instance of the same code).
    pub memory_hits: u64,
}

/// Runs `wasm:*` kinds in-process. See the module documentation.
#[derive(Debug)]
pub struct WasmFactory {
    runtime: Arc<Runtime>,
    /// One permit per pool slot: activations beyond the pool wait for one.
    slots: Arc<Semaphore>,
    max_memory_mb: u64,
    max_code_bytes: u64,
    api_host: Option<String>,
}

impl WasmFactory {
    /// Builds the engine, with its compilation cache in `<work_dir>/wasm-cache` and pool slots
    /// of at most `max_memory_mb` (the largest memory limit an action may have).
    pub fn new(
        config: &WasmConfig,
        work_dir: &Path,
        max_memory_mb: u64,
    ) -> Result<Self, ContainerError> {
        let runtime = Runtime::new(config, max_memory_mb, &work_dir.join("wasm-cache"))
            .map_err(|e| ContainerError::Start(std::io::Error::other(format!("{e:#}"))))?;
        Ok(Self {
            runtime,
            slots: Arc::new(Semaphore::new(config.instances as usize)),
            max_memory_mb,
            max_code_bytes: ArchiveLimits::default().max_bytes,
            api_host: None,
        })
    }

    /// The most bytes a module read from a zip may have (the pool's `archive_max_bytes`).
    pub fn with_archive_limits(mut self, limits: ArchiveLimits) -> Self {
        self.max_code_bytes = limits.max_bytes;
        self
    }

    /// Tells actions where the platform's API listens (`__OW_API_HOST`), as the runners do.
    pub fn with_api_address(mut self, address: std::net::SocketAddr) -> Self {
        self.api_host = Some(crate::container::process::api_host_url(address));
        self
    }

    /// How modules were obtained so far.
    pub fn stats(&self) -> WasmStats {
        let c = &self.runtime.counters;
        WasmStats {
            compiled: c.compiled.load(Ordering::Relaxed),
            disk_hits: c.disk_hits.load(Ordering::Relaxed),
            memory_hits: c.memory_hits.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl ContainerFactory for WasmFactory {
    async fn create(&self, spec: &ContainerSpec) -> Result<Box<dyn Container>, ContainerError> {
        if !is_wasm_kind(&spec.kind) {
            return Err(ContainerError::UnknownKind(spec.kind.clone()));
        }
        let mut env = Vec::new();
        if let Some(host) = &self.api_host {
            env.push(("__OW_API_HOST".to_owned(), host.clone()));
        }
        Ok(Box::new(WasmContainer {
            runtime: self.runtime.clone(),
            slots: self.slots.clone(),
            memory_bytes: spec
                .memory_mb
                .min(self.max_memory_mb)
                .saturating_mul(1 << 20),
            max_code_bytes: self.max_code_bytes,
            module: Mutex::new(None),
            env: Mutex::new(env),
            logs: Mutex::new((RawLines::default(), 0)),
        }))
    }

    async fn cleanup(&self) {
        // Nothing outlives a process but the compilation cache, which is kept on purpose.
    }

    fn is_isolated(&self) -> bool {
        true
    }
}

/// One action's module, ready to instantiate; every run is a fresh instance, so runs may
/// overlap freely.
#[derive(Debug)]
pub struct WasmContainer {
    runtime: Arc<Runtime>,
    slots: Arc<Semaphore>,
    memory_bytes: u64,
    max_code_bytes: u64,
    module: Mutex<Option<Prepared>>,
    /// The environment every run starts from: `__OW_API_HOST` and the init environment.
    env: Mutex<Vec<(String, String)>>,
    /// Log lines of finished runs not collected yet, and the log bytes they dropped.
    logs: Mutex<(RawLines, u64)>,
}

fn ok_reply() -> RunnerOutcome {
    let body = RawValue::from_string(r#"{"OK":true}"#.to_owned())
        .unwrap_or_else(|_| RawValue::NULL.to_owned());
    RunnerOutcome::Replied(RunnerReply { status: 200, body })
}

fn interval(start: SystemTime) -> Interval {
    Interval {
        start,
        end: SystemTime::now(),
    }
}

impl WasmContainer {
    /// The run's environment: the instance's, then the activation context as `__OW_*`.
    fn env_for(&self, run: &RunRequest) -> Vec<(String, String)> {
        let mut env = self.env.lock().clone();
        let context = [
            ("NAMESPACE", Some(&run.namespace)),
            ("ACTION_NAME", Some(&run.action_name)),
            ("ACTION_VERSION", Some(&run.action_version)),
            ("ACTIVATION_ID", Some(&run.activation_id)),
            ("TRANSACTION_ID", Some(&run.transaction_id)),
            ("DEADLINE", Some(&run.deadline)),
            ("API_KEY", run.api_key.as_ref()),
        ];
        for (key, value) in context {
            if let Some(value) = value {
                let name = format!("__OW_{key}");
                env.retain(|(k, _)| *k != name);
                env.push((name, value.clone()));
            }
        }
        env
    }
}

#[async_trait]
impl Container for WasmContainer {
    async fn initialize(
        &self,
        init: InitRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let start = SystemTime::now();
        let began = Instant::now();
        let bytes = match module_bytes(&init.code, &init.main, self.max_code_bytes) {
            Ok(bytes) => bytes,
            Err(why) => return Ok((interval(start), developer_error(&why))),
        };
        let prepared = match tokio::time::timeout(timeout, self.runtime.prepare(bytes)).await {
            Err(_) => return Ok((interval(start), RunnerOutcome::TimedOut)),
            Ok(Err(why)) => return Ok((interval(start), developer_error(&why))),
            Ok(Ok(prepared)) => prepared,
        };
        let (prepared, source) = prepared;
        let ms = began.elapsed().as_secs_f64() * 1000.0;
        match source {
            Source::Compiled => tracing::info!(action = %init.name, ms, "wasm module compiled"),
            Source::Disk => {
                tracing::info!(action = %init.name, ms, "wasm module loaded from the disk cache")
            }
            Source::Memory => tracing::debug!(action = %init.name, ms, "wasm module in memory"),
        }
        *self.module.lock() = Some(prepared);
        let mut env = self.env.lock();
        for (key, value) in init.env {
            let value = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            env.retain(|(k, _)| *k != key);
            env.push((key, value));
        }
        Ok((interval(start), ok_reply()))
    }

    async fn run(
        &self,
        run: RunRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let start = SystemTime::now();
        let Some(pre) = self.module.lock().clone() else {
            return Ok((
                interval(start),
                developer_error("The action was run before it was initialized."),
            ));
        };
        let began = tokio::time::Instant::now();
        let Ok(Ok(slot)) = tokio::time::timeout(timeout, self.slots.clone().acquire_owned()).await
        else {
            return Ok((interval(start), RunnerOutcome::TimedOut));
        };
        let left = timeout.saturating_sub(began.elapsed());
        let input = Input {
            env: self.env_for(&run),
            stdin: run.value.get().to_owned(),
            memory_bytes: usize::try_from(self.memory_bytes).unwrap_or(usize::MAX),
            // One tick more than the limit: the first tick may come at once.
            deadline_ticks: u64::try_from(left.as_micros() / EPOCH_TICK.as_micros())
                .unwrap_or(u64::MAX)
                .saturating_add(1),
        };
        let runtime = self.runtime.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let _ticking = runtime.running();
            activation::run(&runtime.engine, &pre.0, input)
        });
        let ended = match tokio::time::timeout(left + HOST_CALL_GRACE, task).await {
            Ok(Ok(ended)) => ended,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "a wasm activation panicked");
                return Ok((interval(start), RunnerOutcome::Exited));
            }
            Err(_) => return Ok((interval(start), RunnerOutcome::TimedOut)),
        };
        let mut logs = self.logs.lock();
        for (kept, new) in logs.0.iter_mut().zip(ended.lines) {
            kept.extend(new);
        }
        logs.1 += ended.dropped;
        Ok((interval(start), ended.outcome))
    }

    async fn logs(&self, limit_bytes: u64, _wait_for_sentinel: bool) -> CollectedLogs {
        let (lines, dropped) = std::mem::take(&mut *self.logs.lock());
        if limit_bytes == 0 {
            return CollectedLogs::default();
        }
        format_lines(lines, dropped, limit_bytes, true)
    }

    async fn suspend(&self) -> Result<(), ContainerError> {
        Ok(())
    }

    async fn resume(&self) -> Result<(), ContainerError> {
        Ok(())
    }

    async fn destroy(&self) {
        self.module.lock().take();
    }
}
