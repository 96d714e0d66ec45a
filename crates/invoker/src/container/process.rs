//! The `process` backend: each instance is a runner running as a plain child process.
//!
//! Nothing is isolated here (`is_isolated() == false`): actions run with the invoker's user,
//! see its file system and share its kernel limits. It is the development backend and the
//! reference for the runner pipe protocol (`docs/design/001-runner-protocol.md`), which every
//! isolating backend reuses with the runner inside its sandbox.
//!
//! One instance is:
//! - the runner (`runtimes/nodejs/runner.js` or `runtimes/python/runner.py`, embedded in the
//!   binary and written to `<work_dir>/runners/` when the factory is built) started in its own
//!   process group with a cleared environment and a private working directory
//!   `<work_dir>/instances/<name>-<pid>-<n>/` (binary code is unpacked into its `code/`);
//! - requests written as JSON lines on its stdin, replies read as JSON lines from its fd 3
//!   (an anonymous pipe mapped to fd 3 at spawn) and matched to waiting requests by id;
//! - two reader tasks that turn stdout/stderr into a bounded, timestamped log buffer
//!   (the `logs` module), and a task that reaps the process and reports its exit.
//!
//! Killing signals the whole process group, so children an action started die with it.

mod logs;

use super::{
    Container, ContainerError, ContainerFactory, ContainerSpec, InitRequest, Interval, RunRequest,
    RunnerOutcome, RunnerReply, archive,
};
use async_trait::async_trait;
use command_fds::{CommandFdExt as _, FdMapping};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use parking_lot::Mutex;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::ChildStdin;
use tokio::sync::{oneshot, watch};

const NODE_RUNNER: &str = include_str!("../../../../runtimes/nodejs/runner.js");
const PYTHON_RUNNER: &str = include_str!("../../../../runtimes/python/runner.py");

/// The `PATH` runners get: the environment is cleared so the invoker's own variables (and
/// any secrets in them) never reach an action.
const RUNNER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Default wait for a runner's two log sentinels after a request.
pub const DEFAULT_LOG_SENTINEL_TIMEOUT: Duration = Duration::from_secs(2);

/// Default cap of log text buffered per instance (OpenWhisk's largest log limit, 10 MB).
pub const DEFAULT_LOG_BUFFER_BYTES: usize = 10 * 1024 * 1024;

/// After the runner exited, how long a reply it wrote just before may still take to be read.
const EXIT_REPLY_GRACE: Duration = Duration::from_millis(100);

/// Where the backend keeps its files and which interpreters it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessConfig {
    /// Holds `runners/` (the embedded runner files) and `instances/` (per-instance working
    /// directories with unpacked code). One factory per directory: `cleanup` removes every
    /// instance directory its factory does not own.
    pub work_dir: PathBuf,
    /// The `node` executable (a bare name is looked up in `/usr/local/bin:/usr/bin:/bin`).
    pub node: PathBuf,
    /// The `python3` executable (looked up the same way).
    pub python: PathBuf,
}

impl ProcessConfig {
    /// `work_dir` with `node` and `python3` taken from the runner `PATH`.
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        Self {
            work_dir: work_dir.into(),
            node: PathBuf::from("node"),
            python: PathBuf::from("python3"),
        }
    }
}

/// Starts runner processes. See the module documentation.
#[derive(Debug)]
pub struct ProcessFactory {
    config: ProcessConfig,
    node_runner: PathBuf,
    python_runner: PathBuf,
    instances_dir: PathBuf,
    log_timeout: Duration,
    log_buffer_bytes: usize,
    live: Arc<Mutex<HashSet<PathBuf>>>,
    next: AtomicU64,
}

impl ProcessFactory {
    /// Creates the work directory and writes the runner files into it.
    pub fn new(config: ProcessConfig) -> Result<Self, ContainerError> {
        let runners = config.work_dir.join("runners");
        let instances_dir = config.work_dir.join("instances");
        std::fs::create_dir_all(&runners)?;
        std::fs::create_dir_all(&instances_dir)?;
        let node_runner = runners.join("runner.js");
        let python_runner = runners.join("runner.py");
        write_if_changed(&node_runner, NODE_RUNNER)?;
        write_if_changed(&python_runner, PYTHON_RUNNER)?;
        Ok(Self {
            config,
            node_runner,
            python_runner,
            instances_dir,
            log_timeout: DEFAULT_LOG_SENTINEL_TIMEOUT,
            log_buffer_bytes: DEFAULT_LOG_BUFFER_BYTES,
            live: Arc::new(Mutex::new(HashSet::new())),
            next: AtomicU64::new(0),
        })
    }

    /// How long `logs` waits for the sentinels (default [`DEFAULT_LOG_SENTINEL_TIMEOUT`];
    /// the pool's `log_sentinel_timeout_ms`).
    pub fn with_log_sentinel_timeout(mut self, timeout: Duration) -> Self {
        self.log_timeout = timeout;
        self
    }

    /// How many bytes of log text an instance buffers before dropping output (default
    /// [`DEFAULT_LOG_BUFFER_BYTES`]).
    pub fn with_log_buffer_bytes(mut self, bytes: usize) -> Self {
        self.log_buffer_bytes = bytes;
        self
    }

    /// The configuration this factory was built with.
    pub fn config(&self) -> &ProcessConfig {
        &self.config
    }

    fn runner_for(&self, kind: &str) -> Option<Runner<'_>> {
        let family = kind.split(':').next().unwrap_or(kind);
        match family {
            "nodejs" => Some(Runner {
                program: &self.config.node,
                args: vec![self.node_runner.as_os_str()],
                python: false,
            }),
            "python" => Some(Runner {
                program: &self.config.python,
                args: vec!["-B".as_ref(), self.python_runner.as_os_str()],
                python: true,
            }),
            _ => None,
        }
    }
}

struct Runner<'a> {
    program: &'a Path,
    args: Vec<&'a std::ffi::OsStr>,
    python: bool,
}

fn write_if_changed(path: &Path, content: &str) -> Result<(), ContainerError> {
    if std::fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        return Ok(());
    }
    // Write then rename, so a runner starting concurrently never reads half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Keeps a file name to characters that are safe in a path segment.
fn sanitize(name: &str) -> String {
    name.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[async_trait]
impl ContainerFactory for ProcessFactory {
    async fn create(&self, spec: &ContainerSpec) -> Result<Box<dyn Container>, ContainerError> {
        let runner = self
            .runner_for(&spec.kind)
            .ok_or_else(|| ContainerError::UnknownKind(spec.kind.clone()))?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.instances_dir.join(format!(
            "{}-{}-{n}",
            sanitize(&spec.name),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        self.live.lock().insert(dir.clone());
        match spawn(&runner, spec, &dir, self.log_buffer_bytes) {
            Ok(parts) => Ok(Box::new(ProcessContainer::new(
                parts,
                dir,
                self.live.clone(),
                self.log_timeout,
            ))),
            Err(e) => {
                self.live.lock().remove(&dir);
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    async fn cleanup(&self) {
        let Ok(mut entries) = tokio::fs::read_dir(&self.instances_dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            if self.live.lock().contains(&path) {
                continue;
            }
            if let Err(e) = tokio::fs::remove_dir_all(&path).await {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove stale instance dir");
            }
        }
    }

    fn is_isolated(&self) -> bool {
        false
    }
}

/// What `spawn` hands to the instance.
struct Spawned {
    pgid: Pid,
    stdin: ChildStdin,
    shared: Arc<Shared>,
    exited: watch::Receiver<bool>,
}

fn spawn(
    runner: &Runner<'_>,
    spec: &ContainerSpec,
    dir: &Path,
    log_buffer_bytes: usize,
) -> Result<Spawned, ContainerError> {
    let (reply_writer, replies) = tokio::net::unix::pipe::pipe().map_err(ContainerError::Start)?;
    // The runner writes with plain blocking writes; only our end is non-blocking.
    let reply_writer = reply_writer
        .into_blocking_fd()
        .map_err(ContainerError::Start)?;
    let mut cmd = tokio::process::Command::new(runner.program);
    cmd.args(&runner.args)
        .env_clear()
        .env("PATH", RUNNER_PATH)
        .env("HOME", dir)
        .env("LANG", "C.UTF-8")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if spec.allow_concurrent {
        cmd.env("__OW_ALLOW_CONCURRENT", "true");
    }
    if runner.python {
        cmd.env("PYTHONIOENCODING", "utf-8");
    }
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: reply_writer,
        child_fd: 3,
    }])
    .map_err(|e| ContainerError::Start(std::io::Error::other(e)))?;
    let mut child = cmd.spawn().map_err(ContainerError::Start)?;
    // Dropping the command closes our copy of the reply pipe's write end, so the reply
    // reader sees end of file when the runner (and everything it started) is gone.
    drop(cmd);
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| ContainerError::Start(std::io::Error::other("runner has no pid")))?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(ContainerError::Start(std::io::Error::other(
            "runner pipes missing",
        )));
    };

    let shared = Arc::new(Shared {
        pending: Mutex::new(Pending::default()),
        logs: logs::LogBuffer::new(log_buffer_bytes),
    });
    let (exit_tx, exited) = watch::channel(false);
    tokio::spawn(async move {
        let _ = child.wait().await;
        exit_tx.send_replace(true);
    });
    let s = shared.clone();
    tokio::spawn(async move { logs::pump(stdout, logs::Stream::Stdout, &s.logs).await });
    let s = shared.clone();
    tokio::spawn(async move { logs::pump(stderr, logs::Stream::Stderr, &s.logs).await });
    tokio::spawn(read_replies(replies, shared.clone()));
    Ok(Spawned {
        pgid: Pid::from_raw(pid),
        stdin,
        shared,
        exited,
    })
}

/// Requests waiting for their reply, by id.
#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<RunnerReply>>,
    /// The reply pipe ended: no reply will ever come.
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    logs: logs::LogBuffer,
}

#[derive(serde::Deserialize)]
struct WireReply {
    id: Option<u64>,
    status: u16,
    body: Box<RawValue>,
}

async fn read_replies(pipe: tokio::net::unix::pipe::Receiver, shared: Arc<Shared>) {
    let mut reader = BufReader::with_capacity(64 * 1024, pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match serde_json::from_slice::<WireReply>(&line) {
            Ok(WireReply {
                id: Some(id),
                status,
                body,
            }) => {
                let waiter = shared.pending.lock().waiting.remove(&id);
                if let Some(tx) = waiter {
                    let _ = tx.send(RunnerReply { status, body });
                }
            }
            Ok(reply) => {
                tracing::warn!(status = reply.status, body = %reply.body, "runner reply without id")
            }
            Err(e) => {
                tracing::warn!(error = %e, "malformed runner reply");
                // Runners write `{"id":N,` first: answer that request rather than let it
                // wait for its timeout.
                let waiter =
                    reply_id(&line).and_then(|id| shared.pending.lock().waiting.remove(&id));
                if let Some(tx) = waiter {
                    let _ = tx.send(invalid_reply());
                }
            }
        }
    }
    let mut pending = shared.pending.lock();
    pending.closed = true;
    // Dropping the senders wakes every waiting request with "no reply".
    pending.waiting.clear();
}

/// The id of a reply line that is not valid JSON, read from its `{"id":N,` prefix.
fn reply_id(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(br#"{"id":"#)?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// What a request gets when its runner wrote an unreadable reply (a developer error, as an
/// OpenWhisk proxy answering with a broken body would be).
fn invalid_reply() -> RunnerReply {
    let body = RawValue::from_string(
        r#"{"error":"The action did not produce a valid JSON response."}"#.to_owned(),
    )
    .unwrap_or_else(|_| RawValue::NULL.to_owned());
    RunnerReply { status: 502, body }
}

/// The `/init` value as the runner reads it: `code_dir` replaces `code` for unpacked archives.
#[derive(serde::Serialize)]
struct InitWire<'a> {
    name: &'a str,
    main: &'a str,
    binary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code_dir: Option<&'a str>,
    env: &'a serde_json::Map<String, serde_json::Value>,
}

#[derive(serde::Serialize)]
struct InitLine<'a> {
    id: u64,
    op: &'static str,
    value: InitWire<'a>,
}

#[derive(serde::Serialize)]
struct RunLine<'a> {
    id: u64,
    op: &'static str,
    #[serde(flatten)]
    run: &'a RunRequest,
}

/// One runner process. Safe to share: requests are matched to replies by id, so concurrent
/// `run`s (when the spec allowed them) each get their own reply.
#[derive(Debug)]
pub struct ProcessContainer {
    pgid: Pid,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    shared: Arc<Shared>,
    exited: watch::Receiver<bool>,
    next_id: AtomicU64,
    destroyed: AtomicBool,
    dir: PathBuf,
    live: Arc<Mutex<HashSet<PathBuf>>>,
    log_timeout: Duration,
}

impl ProcessContainer {
    fn new(
        parts: Spawned,
        dir: PathBuf,
        live: Arc<Mutex<HashSet<PathBuf>>>,
        log_timeout: Duration,
    ) -> Self {
        Self {
            pgid: parts.pgid,
            stdin: tokio::sync::Mutex::new(Some(parts.stdin)),
            shared: parts.shared,
            exited: parts.exited,
            next_id: AtomicU64::new(1),
            destroyed: AtomicBool::new(false),
            dir,
            live,
            log_timeout,
        }
    }

    /// The runner's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.pgid.as_raw().unsigned_abs()
    }

    fn signal(&self, signal: Signal) -> Result<(), ContainerError> {
        killpg(self.pgid, signal).map_err(|e| ContainerError::Io(std::io::Error::from(e)))
    }

    fn kill(&self) {
        // ESRCH (already gone) is fine: the goal is that nothing of the group is left.
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }

    /// Writes one request line and waits for its reply, within `timeout`.
    async fn request(&self, id: u64, line: Vec<u8>, timeout: Duration) -> RunnerOutcome {
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.shared.pending.lock();
            if pending.closed {
                return RunnerOutcome::Exited;
            }
            pending.waiting.insert(id, tx);
        }
        let exchange = async {
            {
                let mut stdin = self.stdin.lock().await;
                let Some(pipe) = stdin.as_mut() else {
                    return RunnerOutcome::Exited;
                };
                if pipe.write_all(&line).await.is_err() || pipe.flush().await.is_err() {
                    return RunnerOutcome::Exited;
                }
            }
            self.await_reply(rx).await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(outcome) => {
                if !matches!(outcome, RunnerOutcome::Replied(_)) {
                    self.shared.pending.lock().waiting.remove(&id);
                }
                outcome
            }
            Err(_) => {
                self.shared.pending.lock().waiting.remove(&id);
                self.kill();
                RunnerOutcome::TimedOut
            }
        }
    }

    async fn await_reply(&self, mut rx: oneshot::Receiver<RunnerReply>) -> RunnerOutcome {
        let mut exited = self.exited.clone();
        let gone = async move {
            // Dropping the watch guard here keeps the future `Send`.
            let _ = exited.wait_for(|gone| *gone).await.map(|_| ());
        };
        tokio::select! {
            biased;
            reply = &mut rx => reply.map_or(RunnerOutcome::Exited, RunnerOutcome::Replied),
            () = gone => {
                // The runner may have written its reply just before exiting; give the reply
                // reader a moment to deliver it.
                match tokio::time::timeout(EXIT_REPLY_GRACE, rx).await {
                    Ok(Ok(reply)) => RunnerOutcome::Replied(reply),
                    _ => RunnerOutcome::Exited,
                }
            }
        }
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

fn to_line<T: serde::Serialize>(value: &T, size_hint: usize) -> Result<Vec<u8>, ContainerError> {
    let mut line = Vec::with_capacity(size_hint + 256);
    serde_json::to_writer(&mut line, value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

#[async_trait]
impl Container for ProcessContainer {
    async fn initialize(
        &self,
        init: InitRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let start = SystemTime::now();
        let code_dir = if init.binary {
            let dest = self.dir.join("code");
            let code = init.code.clone();
            let target = dest.clone();
            tokio::task::spawn_blocking(move || archive::unpack_base64_zip(&code, &target))
                .await
                .map_err(|e| ContainerError::Io(std::io::Error::other(e)))??;
            Some(dest.to_string_lossy().into_owned())
        } else {
            None
        };
        let id = self.next_id();
        let line = to_line(
            &InitLine {
                id,
                op: "init",
                value: InitWire {
                    name: &init.name,
                    main: &init.main,
                    binary: init.binary,
                    code: code_dir.is_none().then_some(init.code.as_str()),
                    code_dir: code_dir.as_deref(),
                    env: &init.env,
                },
            },
            if code_dir.is_none() {
                init.code.len()
            } else {
                0
            },
        )?;
        let remaining = timeout.saturating_sub(start.elapsed().unwrap_or_default());
        let outcome = self.request(id, line, remaining).await;
        let end = SystemTime::now();
        Ok((Interval { start, end }, outcome))
    }

    async fn run(
        &self,
        run: RunRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let start = SystemTime::now();
        let id = self.next_id();
        let line = to_line(
            &RunLine {
                id,
                op: "run",
                run: &run,
            },
            run.value.get().len(),
        )?;
        drop(run);
        let outcome = self.request(id, line, timeout).await;
        let end = SystemTime::now();
        Ok((Interval { start, end }, outcome))
    }

    async fn logs(
        &self,
        limit_bytes: u64,
        wait_for_sentinel: bool,
    ) -> crate::container::CollectedLogs {
        self.shared
            .logs
            .collect(limit_bytes, wait_for_sentinel, self.log_timeout)
            .await
    }

    async fn suspend(&self) -> Result<(), ContainerError> {
        self.signal(Signal::SIGSTOP)
    }

    async fn resume(&self) -> Result<(), ContainerError> {
        self.signal(Signal::SIGCONT)
    }

    async fn destroy(&self) {
        if self.destroyed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.kill();
        self.stdin.lock().await.take();
        if let Err(e) = tokio::fs::remove_dir_all(&self.dir).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove instance dir");
            }
        }
        self.live.lock().remove(&self.dir);
    }
}

impl Drop for ProcessContainer {
    fn drop(&mut self) {
        if !self.destroyed.load(Ordering::Acquire) {
            // Dropped without destroy (a bug or a shutdown): never leave a runner behind.
            self.kill();
            let _ = std::fs::remove_dir_all(&self.dir);
            self.live.lock().remove(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_names_path_safe() {
        assert_eq!(sanitize("guest/pkg/hello world"), "guest_pkg_hello_world");
        assert_eq!(sanitize("../x"), "___x");
    }

    #[test]
    fn run_line_carries_id_op_and_the_raw_value_unchanged() {
        let run = RunRequest {
            value: RawValue::from_string(r#"{"b": [1, 2]}"#.into()).expect("raw"),
            namespace: "guest".into(),
            action_name: "/guest/a".into(),
            action_version: "0.0.1".into(),
            activation_id: "abc".into(),
            transaction_id: "tid".into(),
            deadline: "123".into(),
            api_key: None,
        };
        let line = to_line(
            &RunLine {
                id: 7,
                op: "run",
                run: &run,
            },
            0,
        )
        .expect("line");
        let text = String::from_utf8(line).expect("utf8");
        assert!(
            text.starts_with(r#"{"id":7,"op":"run","value":{"b": [1, 2]},"namespace":"guest""#)
        );
        assert!(text.ends_with("}\n"));
        assert!(!text.contains("api_key"));
    }

    #[test]
    fn unreadable_reply_is_matched_by_its_id_prefix() {
        assert_eq!(reply_id(br#"{"id":42,"status":200,"body":NaN}"#), Some(42));
        assert_eq!(reply_id(br#"{"status":200}"#), None);
        assert_eq!(reply_id(br#"{"id":null,"status":500}"#), None);
        assert_eq!(invalid_reply().status, 502);
        let body: serde_json::Value =
            serde_json::from_str(invalid_reply().body.get()).expect("json");
        assert!(body["error"].is_string());
    }

    #[tokio::test]
    async fn unknown_kind_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = ProcessFactory::new(ProcessConfig::new(dir.path())).expect("factory");
        let spec = ContainerSpec {
            name: "x".into(),
            kind: "swift:5".into(),
            memory_mb: 128,
            allow_concurrent: false,
        };
        assert!(matches!(
            f.create(&spec).await,
            Err(ContainerError::UnknownKind(k)) if k == "swift:5"
        ));
    }

    #[tokio::test]
    async fn cleanup_removes_only_stale_instance_dirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = ProcessFactory::new(ProcessConfig::new(dir.path())).expect("factory");
        let stale = dir.path().join("instances/old-1-0");
        std::fs::create_dir_all(stale.join("code")).expect("mkdir");
        let spec = ContainerSpec {
            name: "live".into(),
            kind: "nodejs:20".into(),
            memory_mb: 128,
            allow_concurrent: false,
        };
        let c = f.create(&spec).await.expect("create");
        f.cleanup().await;
        assert!(!stale.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path().join("instances"))
            .expect("read")
            .collect();
        assert_eq!(left.len(), 1);
        c.destroy().await;
        assert_eq!(
            std::fs::read_dir(dir.path().join("instances"))
                .expect("read")
                .count(),
            0
        );
    }
}
