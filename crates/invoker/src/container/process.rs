//! The `process` backend: each instance is a runner running as a plain child process.
//!
//! Nothing is isolated here (`is_isolated() == false`): actions run with the invoker's user,
//! see its file system and share its kernel limits. It is the development backend and the
//! reference for the runner pipe protocol (`docs/design/001-runner-protocol.md`), which every
//! isolating backend reuses with the runner inside its sandbox.
//!
//! One instance is:
//! - the runner (`runtimes/nodejs/runner.js` or `runtimes/python/runner.py`, embedded in the
//!   binary and written to `<work_dir>/runners/` when the factory is built, see `runners.rs`;
//!   for native kinds the `edgewhisk` executable's native shim, see `native.rs`) started in its own
//!   process group with a cleared environment and a private working directory
//!   `<work_dir>/instances/<name>-<pid>-<n>/`; binary code is unpacked once per distinct
//!   archive under `<work_dir>/code/` and read there by every instance running it;
//! - requests written as JSON lines on its stdin, replies read as JSON lines from its fd 3
//!   (an anonymous pipe mapped to fd 3 at spawn) and matched to waiting requests by id;
//! - two reader tasks that turn stdout/stderr into a bounded, timestamped log buffer
//!   (the `logs` module), and a task that reaps the process and reports its exit. Killing
//!   signals the whole process group, so children an action started die with it.
//!
//! When edgewhisk runs as root, [`ProcessFactory::with_user`] makes runners run as an
//! unprivileged user (`[process]` `uid`/`gid`, 65534 by default): each instance directory is
//! given to that user (mode 0700) and the work directory is only traversable (0711), so an
//! action can reach its own directory and the runner files but cannot list the data directory
//! or open the store (which the server keeps 0600). This is not isolation between actions,
//! which all share that one user; it keeps the platform's keys and store out of their reach.

pub(crate) mod connection;
pub(crate) mod logs;

use super::archive::{ArchiveLimits, CodeStore};
use super::backend::{
    CollectedLogs, Container, ContainerError, ContainerFactory, ContainerSpec, InitRequest,
    Interval, RunRequest, RunnerOutcome,
};
use super::runners::{FactoryCore, RunnerCommand, write_runners};
use async_trait::async_trait;
use connection::{CodeDir, Connection, FdLayout};
use edgewhisk_entity::RuntimeManifest;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use super::runners::{DEFAULT_LOG_BUFFER_BYTES, DEFAULT_LOG_SENTINEL_TIMEOUT};

/// Where the backend keeps its files and which interpreters it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessConfig {
    /// Holds `runners/` (the embedded runner files) and `instances/` (per-instance working
    /// directories with unpacked code). One factory per directory: `cleanup` removes every
    /// instance directory its factory does not own.
    pub work_dir: PathBuf,
    /// The kinds this backend runs and the interpreter of each (a bare name is looked up in
    /// `/usr/local/bin:/usr/bin:/bin`).
    pub runtimes: Arc<RuntimeManifest>,
    /// The `edgewhisk` executable, run as `edgewhisk native-runner` for the native kinds
    /// (`go:*`, `blackbox`; `docs/design/021-native-actions.md`); `None` refuses them.
    pub native_runner: Option<PathBuf>,
}

impl ProcessConfig {
    /// `work_dir` with the default manifest: `nodejs:20` run by `node` and `python:3` by
    /// `python3`, both taken from the runner `PATH`.
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        Self {
            work_dir: work_dir.into(),
            runtimes: Arc::new(RuntimeManifest::default()),
            native_runner: None,
        }
    }

    /// The same with `runtimes` as the manifest.
    pub fn with_runtimes(mut self, runtimes: Arc<RuntimeManifest>) -> Self {
        self.runtimes = runtimes;
        self
    }

    /// The same with `exe` (the `edgewhisk` executable) running the native kinds.
    pub fn with_native_runner(mut self, exe: PathBuf) -> Self {
        self.native_runner = Some(exe);
        self
    }
}

/// The user runners run as when edgewhisk runs as root (`[process]` in the server
/// configuration).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessUserConfig {
    /// User id of the runners.
    pub uid: u32,
    /// Group id of the runners.
    pub gid: u32,
}

impl Default for ProcessUserConfig {
    fn default() -> Self {
        Self {
            uid: 65534,
            gid: 65534,
        }
    }
}

/// A `[process]` setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcessUserConfigError {
    /// The runners would run as root.
    #[error("process.uid and process.gid must not be 0")]
    Root,
}

impl ProcessUserConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), ProcessUserConfigError> {
        if self.uid == 0 || self.gid == 0 {
            return Err(ProcessUserConfigError::Root);
        }
        Ok(())
    }
}

/// Starts runner processes. See the module documentation.
#[derive(Debug)]
pub struct ProcessFactory {
    config: ProcessConfig,
    node_runner: PathBuf,
    python_runner: PathBuf,
    instances_dir: PathBuf,
    /// Code store, log settings and live instances (by directory).
    core: FactoryCore<PathBuf>,
    /// `__OW_API_HOST` given to runners, when known.
    api_host: Option<String>,
    /// The user runners run as, when not the invoker's own.
    user: Option<ProcessUserConfig>,
}

/// The URL of the platform's API at `address` for a client on this host: an unspecified
/// listen address (`0.0.0.0`, `::`) is reached on loopback.
pub(crate) fn api_host_url(address: std::net::SocketAddr) -> String {
    let ip = match address.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, address.port()))
}

impl ProcessFactory {
    /// Creates the work directory and writes the runner files into it.
    pub fn new(config: ProcessConfig) -> Result<Self, ContainerError> {
        let instances_dir = config.work_dir.join("instances");
        let (node_runner, python_runner) = write_runners(&config.work_dir.join("runners"))?;
        std::fs::create_dir_all(&instances_dir)?;
        Ok(Self {
            node_runner,
            python_runner,
            instances_dir,
            core: FactoryCore::new(config.work_dir.join("code")),
            api_host: None,
            user: None,
            config,
        })
    }

    /// The limits archives are unpacked with (default [`ArchiveLimits::default`]; the pool's
    /// `archive_max_bytes` and `archive_max_entries`).
    pub fn with_archive_limits(mut self, limits: ArchiveLimits) -> Self {
        self.core.set_archive_limits(limits);
        self
    }

    /// Runs runners as `user` (needs root): instance directories are given to that user and
    /// the work directory is made traversable but not listable for it, so runners reach their
    /// own directory and the runner files, and nothing else the work directory's parent holds.
    pub fn with_user(mut self, user: ProcessUserConfig) -> Result<Self, ContainerError> {
        use std::os::unix::fs::PermissionsExt as _;
        user.validate()
            .map_err(|e| ContainerError::Start(std::io::Error::other(e)))?;
        let mode = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        };
        mode(&self.config.work_dir, 0o711)?;
        mode(&self.instances_dir, 0o711)?;
        let runners = self.config.work_dir.join("runners");
        mode(&runners, 0o755)?;
        mode(&self.node_runner, 0o644)?;
        mode(&self.python_runner, 0o644)?;
        self.user = Some(user);
        Ok(self)
    }

    /// Gives a new instance directory to the runners' user, if they have one of their own.
    fn hand_over(&self, dir: &Path) -> Result<(), ContainerError> {
        use std::os::unix::fs::PermissionsExt as _;
        if let Some(user) = &self.user {
            nix::unistd::chown(
                dir,
                Some(nix::unistd::Uid::from_raw(user.uid)),
                Some(nix::unistd::Gid::from_raw(user.gid)),
            )
            .map_err(std::io::Error::from)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }

    /// Tells runners where the platform's API listens (`__OW_API_HOST`).
    pub fn with_api_address(mut self, address: std::net::SocketAddr) -> Self {
        self.api_host = Some(api_host_url(address));
        self
    }

    /// How long `logs` waits for the sentinels (default [`DEFAULT_LOG_SENTINEL_TIMEOUT`];
    /// the pool's `log_sentinel_timeout_ms`).
    pub fn with_log_sentinel_timeout(mut self, timeout: Duration) -> Self {
        self.core.log_timeout = timeout;
        self
    }

    /// How many bytes of log text an instance buffers before dropping output (default
    /// [`DEFAULT_LOG_BUFFER_BYTES`]).
    pub fn with_log_buffer_bytes(mut self, bytes: usize) -> Self {
        self.core.log_buffer_bytes = bytes;
        self
    }

    /// The configuration this factory was built with.
    pub fn config(&self) -> &ProcessConfig {
        &self.config
    }

    fn runner_for(&self, kind: &str) -> Option<RunnerCommand> {
        let runners = self.config.work_dir.join("runners");
        RunnerCommand::for_kind(
            &self.config.runtimes,
            kind,
            &runners,
            self.config.native_runner.as_deref(),
        )
    }
}

#[async_trait]
impl ContainerFactory for ProcessFactory {
    async fn create(&self, spec: &ContainerSpec) -> Result<Box<dyn Container>, ContainerError> {
        let runner = self
            .runner_for(&spec.kind)
            .ok_or_else(|| ContainerError::UnknownKind(spec.kind.clone()))?;
        let dir = self.instances_dir.join(self.core.instance_name(spec, 64));
        std::fs::create_dir_all(&dir)?;
        self.core.live.lock().insert(dir.clone());
        match self.hand_over(&dir).and_then(|()| {
            spawn(
                &runner,
                spec,
                &dir,
                self.api_host.as_deref(),
                self.user.as_ref(),
                self.core.log_buffer_bytes,
                self.core.log_timeout,
            )
        }) {
            Ok(conn) => Ok(Box::new(ProcessContainer::new(
                conn,
                dir,
                self.core.live.clone(),
                self.core.code.clone(),
            ))),
            Err(e) => {
                self.core.live.lock().remove(&dir);
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    async fn cleanup(&self) {
        self.core.cleanup_code().await;
        let Ok(mut entries) = tokio::fs::read_dir(&self.instances_dir).await else {
            return;
        };
        while let Ok(Some(entry)) = entries.next_entry().await {
            let path = entry.path();
            if self.core.live.lock().contains(&path) {
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

fn spawn(
    runner: &RunnerCommand,
    spec: &ContainerSpec,
    dir: &Path,
    api_host: Option<&str>,
    user: Option<&ProcessUserConfig>,
    log_buffer_bytes: usize,
    log_timeout: Duration,
) -> Result<Connection, ContainerError> {
    let mut cmd = tokio::process::Command::new(&runner.program);
    cmd.args(&runner.args)
        .env_clear()
        .envs(runner.env(dir.as_os_str(), spec, api_host))
        .current_dir(dir)
        .process_group(0);
    if let Some(user) = user {
        // std drops the supplementary groups too when root changes uid.
        cmd.uid(user.uid).gid(user.gid);
    }
    // The native runner reopens its fd 3, which its user must own.
    let reply_owner = user.filter(|_| runner.native).map(|u| (u.uid, u.gid));
    Connection::spawn(
        cmd,
        FdLayout::Stdio,
        log_buffer_bytes,
        log_timeout,
        reply_owner,
    )
}

/// One runner process. Safe to share: requests are matched to replies by id, so concurrent
/// `run`s (when the spec allowed them) each get their own reply.
#[derive(Debug)]
pub struct ProcessContainer {
    pgid: Pid,
    conn: Connection,
    destroyed: AtomicBool,
    dir: PathBuf,
    live: Arc<Mutex<HashSet<PathBuf>>>,
    code: Arc<CodeStore>,
}

impl ProcessContainer {
    fn new(
        conn: Connection,
        dir: PathBuf,
        live: Arc<Mutex<HashSet<PathBuf>>>,
        code: Arc<CodeStore>,
    ) -> Self {
        Self {
            pgid: Pid::from_raw(conn.pid().try_into().expect("pids fit in i32")),
            conn,
            destroyed: AtomicBool::new(false),
            dir,
            live,
            code,
        }
    }

    /// The runner's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.conn.pid()
    }

    fn signal(&self, signal: Signal) -> Result<(), ContainerError> {
        killpg(self.pgid, signal).map_err(|e| ContainerError::Io(std::io::Error::from(e)))
    }

    fn kill(&self) {
        // ESRCH (already gone) is fine: the goal is that nothing of the group is left.
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }

    /// Kills the instance when a request timed out, as the trait requires.
    fn after(
        &self,
        result: Result<(Interval, RunnerOutcome), ContainerError>,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        if matches!(result, Ok((_, RunnerOutcome::TimedOut))) {
            self.kill();
        }
        result
    }
}

#[async_trait]
impl Container for ProcessContainer {
    async fn initialize(
        &self,
        init: InitRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let code = CodeDir::Shared(self.code.clone());
        let result = self.conn.initialize(init, timeout, &code).await;
        self.after(result)
    }

    async fn run(
        &self,
        run: RunRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let result = self.conn.run(run, timeout).await;
        self.after(result)
    }

    async fn logs(&self, limit_bytes: u64, wait_for_sentinel: bool) -> CollectedLogs {
        self.conn.logs(limit_bytes, wait_for_sentinel).await
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
        self.conn.close().await;
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
    fn process_user_defaults_to_nobody_and_refuses_root() {
        assert_eq!(ProcessUserConfig::default().validate(), Ok(()));
        assert_eq!(ProcessUserConfig::default().uid, 65534);
        let root = ProcessUserConfig { uid: 0, gid: 1 };
        assert_eq!(root.validate(), Err(ProcessUserConfigError::Root));
    }

    #[test]
    fn api_host_reaches_an_unspecified_listener_on_loopback() {
        let url = |a: &str| api_host_url(a.parse().expect("address"));
        assert_eq!(url("0.0.0.0:3233"), "http://127.0.0.1:3233");
        assert_eq!(url("[::]:3233"), "http://[::1]:3233");
        assert_eq!(url("192.0.2.7:80"), "http://192.0.2.7:80");
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
