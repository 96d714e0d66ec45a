//! The `runc` backend: each instance is the same runner as in the process backend, inside an
//! OCI container run by `runc` (the runtime under Docker and containerd), without a daemon,
//! images or a registry. See `docs/design/002-runc-backend.md`.
//!
//! One instance is `runc --root <work_dir>/runc-state run --preserve-fds 4 --bundle
//! <work_dir>/bundles/<id> <id>` with the runner's stdin, stdout, stderr and reply pipes as fds
//! 3–6, which a shell `exec` inside moves to 0–3 (`FdLayout::Preserved`: runc would otherwise
//! copy stdio through pipes of its own), so the request path (the shared `process::connection`)
//! is the same pipe write and read as without isolation, and no runc command runs on a warm
//! request. runc invocations happen
//! only at pause/resume (`runc pause`/`resume`, the freezer), when killing and deleting, and
//! at cleanup.
//!
//! The bundle's `config.json` (module `spec`) gives the runner a read-only root built from
//! host directories (`/usr`, the runners, its own code, a few `/etc` files), a private
//! size-limited `/tmp`, own pid/mount/ipc/uts/cgroup namespaces, an unprivileged user, no
//! capabilities, `noNewPrivileges`, a seccomp allow list after Docker's default profile, and
//! cgroup limits for memory (no swap), cpu shares and pids under `edgewhisk/<scope>/<id>`
//! relative to the invoker's cgroup. Unless the network is `host`, it also gets a network
//! namespace of its own, which the `network` module connects to the outside through `pasta`.
//!
//! Out of memory: the kernel kills the runner (pid 1 of the instance) with SIGKILL and
//! `runc run` exits with 137; a 137 the backend did not cause is reported as
//! [`RunnerOutcome::OutOfMemory`].

mod cgroup;
mod executable;
mod network;
mod spec;

use super::archive::{ArchiveLimits, CodeStore};
use super::backend::{
    CollectedLogs, Container, ContainerError, ContainerFactory, ContainerSpec, InitRequest,
    Interval, RunRequest, RunnerOutcome,
};
use super::process::connection::{CodeDir, Connection, FdLayout, STDIO_FROM_PRESERVED_FDS};
use super::process::{ProcessConfig, api_host_url};
use super::runners::{FactoryCore, RUNNER_PATH, RunnerCommand, write_runners};
use async_trait::async_trait;
use edgewhisk_entity::RuntimeManifest;
use executable::find_executable;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

/// Where `runc` is looked for when [`RuncConfig::runc`] is empty.
const RUNC_SEARCH_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Exit status of `runc run` when the container's process died of SIGKILL (128 + 9).
const KILLED_EXIT: i32 = 137;

/// How long to wait for `runc run` to exit after its container was killed.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// The network an instance gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuncNetwork {
    /// A network namespace per instance with outbound access through `pasta`, but without
    /// the host's loopback (except the API port) and link-local ranges (see the `network`
    /// module). Falls back to [`RuncNetwork::Host`], with a warning, where `pasta` is missing.
    #[default]
    Isolated,
    /// The host's network: outbound access, and every service on the host's loopback.
    Host,
    /// A private network namespace with only loopback.
    None,
}

/// Settings of the runc backend (`[runc]` in the server configuration).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuncConfig {
    /// The `runc` executable; empty means look for `runc` in the usual `sbin`/`bin` dirs.
    pub runc: PathBuf,
    /// The instances' network.
    pub network: RuncNetwork,
    /// The `pasta` executable (package `passt`) for the isolated network; empty means look
    /// for `pasta` in the usual `sbin`/`bin` dirs.
    pub pasta: PathBuf,
    /// Most tasks (processes and threads) an instance may have (`pids.max`).
    pub pids_max: i64,
    /// Size of an instance's private `/tmp`, MB.
    pub tmp_size_mb: u64,
    /// User id the runner runs as.
    pub uid: u32,
    /// Group id the runner runs as.
    pub gid: u32,
    /// Open files limit of the runner; lowered to the invoker's own hard limit if above it.
    pub nofile: u64,
}

impl Default for RuncConfig {
    fn default() -> Self {
        Self {
            runc: PathBuf::new(),
            network: RuncNetwork::Isolated,
            pasta: PathBuf::new(),
            pids_max: 256,
            tmp_size_mb: 64,
            uid: 65534,
            gid: 65534,
            nofile: 1024,
        }
    }
}

/// A runc setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuncConfigError {
    /// `pids_max` below what a runner needs to start.
    #[error("runc.pids_max must be at least 16, got {0}")]
    PidsMax(i64),
    /// `tmp_size_mb` is zero.
    #[error("runc.tmp_size_mb must be greater than 0")]
    TmpSize,
    /// `nofile` below what a runner needs.
    #[error("runc.nofile must be at least 64, got {0}")]
    Nofile(u64),
    /// The runner would run as root.
    #[error("runc.uid and runc.gid must not be 0")]
    Root,
}

impl RuncConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), RuncConfigError> {
        if self.pids_max < 16 {
            return Err(RuncConfigError::PidsMax(self.pids_max));
        }
        if self.tmp_size_mb == 0 {
            return Err(RuncConfigError::TmpSize);
        }
        if self.nofile < 64 {
            return Err(RuncConfigError::Nofile(self.nofile));
        }
        if self.uid == 0 || self.gid == 0 {
            return Err(RuncConfigError::Root);
        }
        Ok(())
    }
}

fn runc_binary(config: &RuncConfig) -> Option<PathBuf> {
    if config.runc.as_os_str().is_empty() {
        find_executable(Path::new("runc"), RUNC_SEARCH_PATH)
    } else {
        find_executable(&config.runc, RUNC_SEARCH_PATH)
    }
}

/// Whether this backend can run here: the `runc` binary is found and the invoker is root
/// (what `--isolation auto` checks).
pub fn runc_available(config: &RuncConfig) -> bool {
    runc_binary(config).is_some() && nix::unistd::geteuid().is_root()
}

/// OpenWhisk's cpu share for an action: proportional to its memory, at least 2.
fn cpu_shares(memory_mb: u64, user_memory_mb: u64) -> u64 {
    (1024 * memory_mb)
        .checked_div(user_memory_mb)
        .unwrap_or(1024)
        .max(2)
}

/// The open files limit to give: the configured one, never above our own hard limit (we lack
/// `CAP_SYS_RESOURCE` to raise it).
fn clamp_nofile(wanted: u64) -> u64 {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((_, hard)) => {
            #[allow(clippy::useless_conversion, reason = "rlim_t is 32 bits wide on armv7")]
            let hard = u64::from(hard);
            wanted.min(hard)
        }
        Err(_) => wanted,
    }
}

/// A short stable name for a work directory (FNV-1a), so factories on different work
/// directories keep their cgroups apart and a restarted one finds its own again.
fn scope_of(dir: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in dir.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// How to call runc for this factory's state directory.
#[derive(Debug)]
struct Runc {
    binary: PathBuf,
    root: PathBuf,
}

impl Runc {
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.env_clear()
            .env("PATH", RUNC_SEARCH_PATH)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    }

    /// Runs `runc <args>`, returning stdout or the error runc printed.
    async fn call(&self, args: &[&str]) -> Result<String, ContainerError> {
        let out = self.command(args).output().await?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(ContainerError::Io(std::io::Error::other(format!(
                "runc {} failed: {}",
                args.first().copied().unwrap_or(""),
                String::from_utf8_lossy(&out.stderr).trim()
            ))))
        }
    }

    /// Blocking kill and delete, for `Drop`.
    fn kill_and_delete_blocking(&self, id: &str) {
        for args in [&["kill", id, "KILL"][..], &["delete", "--force", id][..]] {
            let _ = std::process::Command::new(&self.binary)
                .env_clear()
                .arg("--root")
                .arg(&self.root)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Starts runners inside runc containers. See the module documentation.
#[derive(Debug)]
pub struct RuncFactory {
    config: RuncConfig,
    runc: Arc<Runc>,
    rootfs: PathBuf,
    runners_dir: PathBuf,
    bundles_dir: PathBuf,
    /// The manifest, with each interpreter resolved to the absolute path instances run.
    runtimes: Arc<RuntimeManifest>,
    /// The `edgewhisk` executable on the host, bind-mounted into native instances.
    native_runner: Option<PathBuf>,
    nofile: u64,
    user_memory_mb: u64,
    cgroup_parent: String,
    /// Code store, log settings and live instances (by container id).
    core: FactoryCore<String>,
    /// The network instances get: the configured one, or `Host` when `Isolated` lacks pasta.
    network: RuncNetwork,
    /// The tools of the isolated network (`Some` exactly when `network` is `Isolated`).
    network_tools: Option<network::NetworkTools>,
    /// Where the platform's API listens, for `__OW_API_HOST`.
    api_address: Option<SocketAddr>,
}

/// The network instances get when `config` asks for `wanted`: `Isolated` needs pasta, `nsenter`
/// and `ip`; without them it is `Host`, loudly, so an upgrade never leaves actions offline.
fn effective_network(
    wanted: RuncNetwork,
    pasta: &Path,
) -> (RuncNetwork, Option<network::NetworkTools>) {
    if wanted != RuncNetwork::Isolated {
        return (wanted, None);
    }
    match network::NetworkTools::find(pasta) {
        Ok(tools) => (RuncNetwork::Isolated, Some(tools)),
        Err(missing) => {
            tracing::warn!(
                missing,
                "runc.network 'isolated' needs pasta (Debian package passt), nsenter and ip; \
                 '{missing}' is missing, so instances share the HOST network and can reach \
                 every service on this device's loopback; install passt or set \
                 runc.network = \"none\""
            );
            (RuncNetwork::Host, None)
        }
    }
}

impl RuncFactory {
    /// Checks the configuration, finds runc and the interpreters, and prepares
    /// `<work_dir>/{runners,rootfs,bundles,runc-state}`. `user_memory_mb` is the pool's memory,
    /// the base of the cpu shares.
    pub fn new(
        config: RuncConfig,
        process: ProcessConfig,
        user_memory_mb: u64,
    ) -> Result<Self, ContainerError> {
        config
            .validate()
            .map_err(|e| ContainerError::Start(std::io::Error::other(e)))?;
        let binary = runc_binary(&config).ok_or_else(|| {
            ContainerError::Start(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "runc executable not found",
            ))
        })?;
        // Interpreters are run by absolute path inside the instance; `/usr` is mounted there.
        let mut runtimes = RuntimeManifest::clone(&process.runtimes);
        for rt in &mut runtimes.runtimes {
            if let Some(found) = find_executable(&rt.executable, RUNNER_PATH) {
                rt.executable = found;
            }
        }
        let work = &process.work_dir;
        let runners_dir = work.join("runners");
        let rootfs = work.join("rootfs");
        let bundles_dir = work.join("bundles");
        let state = work.join("runc-state");
        for dir in [&rootfs, &bundles_dir, &state] {
            std::fs::create_dir_all(dir)?;
        }
        write_runners(&runners_dir)?;
        spec::prepare_rootfs(&rootfs, config.uid, config.gid)?;
        let absolute_work = std::fs::canonicalize(work)?;
        let (network, network_tools) = effective_network(config.network, &config.pasta);
        Ok(Self {
            network,
            network_tools,
            api_address: None,
            nofile: clamp_nofile(config.nofile),
            cgroup_parent: format!("edgewhisk/{}", scope_of(&absolute_work)),
            config,
            runc: Arc::new(Runc {
                binary,
                root: std::fs::canonicalize(&state)?,
            }),
            rootfs: std::fs::canonicalize(&rootfs)?,
            runners_dir: std::fs::canonicalize(&runners_dir)?,
            bundles_dir: std::fs::canonicalize(&bundles_dir)?,
            runtimes: Arc::new(runtimes),
            native_runner: process
                .native_runner
                .as_deref()
                .map(std::fs::canonicalize)
                .transpose()?,
            user_memory_mb,
            // Next to the bundles, on the same file system, so instances hard-link the tree.
            core: FactoryCore::new(work.join("code")),
        })
    }

    /// The limits archives are unpacked with (default [`ArchiveLimits::default`]).
    pub fn with_archive_limits(mut self, limits: ArchiveLimits) -> Self {
        self.core.set_archive_limits(limits);
        self
    }

    /// How long `logs` waits for the sentinels (the pool's `log_sentinel_timeout_ms`).
    pub fn with_log_sentinel_timeout(mut self, timeout: Duration) -> Self {
        self.core.log_timeout = timeout;
        self
    }

    /// How many bytes of log text an instance buffers before dropping output.
    pub fn with_log_buffer_bytes(mut self, bytes: usize) -> Self {
        self.core.log_buffer_bytes = bytes;
        self
    }

    /// The configuration this factory was built with.
    pub fn config(&self) -> &RuncConfig {
        &self.config
    }

    /// Tells instances where the platform's API listens: they get `__OW_API_HOST`, and with
    /// the isolated network that one port (only) of the host's loopback is forwarded into them.
    pub fn with_api_address(mut self, address: SocketAddr) -> Self {
        let ip = address.ip();
        if self.network == RuncNetwork::Isolated && !ip.is_loopback() && !ip.is_unspecified() {
            // pasta forwards to the host's loopback, where this listener is not.
            tracing::warn!(
                %address,
                "the API listens on neither loopback nor all addresses: actions on the \
                 isolated network cannot reach it through __OW_API_HOST"
            );
        }
        self.api_address = Some(address);
        self
    }

    /// The network instances actually get (`Host` when `Isolated` was asked for without pasta).
    pub fn network(&self) -> RuncNetwork {
        self.network
    }

    /// `__OW_API_HOST` as seen from inside an instance.
    fn api_host(&self) -> Option<String> {
        let addr = self.api_address?;
        match self.network {
            // pasta forwards the port from the instance's loopback to the host's.
            RuncNetwork::Isolated => Some(format!("http://127.0.0.1:{}", addr.port())),
            RuncNetwork::Host => Some(api_host_url(addr)),
            RuncNetwork::None => None,
        }
    }

    /// The cgroup path, relative to the invoker's own cgroup, under which this factory's
    /// instances live (`edgewhisk/<scope>`).
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// Host directories of this factory's instance cgroups (one per instance and hierarchy);
    /// empty after a complete cleanup.
    pub fn instance_cgroups(&self) -> Vec<PathBuf> {
        cgroup::children(&self.cgroup_parent)
    }

    /// Ids of the containers runc knows in this factory's state directory.
    pub async fn runc_list(&self) -> Result<Vec<String>, ContainerError> {
        let out = self.runc.call(&["list", "-q"]).await?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    /// The instance's command: the runner started by `sh`, which first moves the preserved
    /// pipes to its stdio and fd 3 ([`FdLayout::Preserved`]).
    fn runner_for(&self, kind: &str) -> Option<(Vec<String>, RunnerCommand)> {
        let runners = Path::new(spec::RUNNERS_MOUNT);
        let native = Path::new(spec::NATIVE_RUNNER_MOUNT);
        let runner = RunnerCommand::for_kind(
            &self.runtimes,
            kind,
            runners,
            self.native_runner.is_some().then_some(native),
        )?;
        let mut args = vec![
            "/bin/sh".into(),
            "-c".into(),
            STDIO_FROM_PRESERVED_FDS.into(),
            runner.program.to_string_lossy().into_owned(),
        ];
        args.extend(runner.args.iter().map(|a| a.to_string_lossy().into_owned()));
        Some((args, runner))
    }

    fn start(
        &self,
        id: &str,
        bundle: &Path,
        spec_in: &ContainerSpec,
        args: Vec<String>,
        runner: &RunnerCommand,
    ) -> Result<Connection, ContainerError> {
        let code_dir = bundle.join("code");
        std::fs::create_dir_all(&code_dir)?;
        let env = runner
            .env("/tmp".as_ref(), spec_in, self.api_host().as_deref())
            .into_iter()
            .map(|(k, v)| format!("{k}={}", v.to_string_lossy()))
            .collect();
        let oci = spec::build(&spec::InstanceSpec {
            rootfs: &self.rootfs,
            runners_dir: &self.runners_dir,
            code_dir: &code_dir,
            native_runner: self.native_runner.as_deref().filter(|_| runner.native),
            args,
            env,
            memory_mb: spec_in.memory_mb,
            cpu_shares: cpu_shares(spec_in.memory_mb, self.user_memory_mb),
            pids_max: self.config.pids_max,
            tmp_size_mb: self.config.tmp_size_mb,
            uid: self.config.uid,
            gid: self.config.gid,
            nofile: self.nofile,
            private_network: self.network != RuncNetwork::Host,
            cgroups_path: format!("{}/{id}", self.cgroup_parent),
        })
        .map_err(|e| ContainerError::Start(std::io::Error::other(e)))?;
        oci.save(bundle.join("config.json"))
            .map_err(|e| ContainerError::Start(std::io::Error::other(e)))?;
        let mut cmd = self
            .runc
            .command(&["run", "--preserve-fds", "4", "--bundle"]);
        cmd.arg(bundle);
        if self.network_tools.is_some() {
            // The isolated network attaches to the instance's namespace found by this pid.
            cmd.arg("--pid-file")
                .arg(bundle.join(network::INIT_PID_FILE));
        }
        cmd.arg(id).process_group(0);
        Connection::spawn(
            cmd,
            FdLayout::Preserved,
            self.core.log_buffer_bytes,
            self.core.log_timeout,
            // The native runner reopens its fd 3, which its user must own.
            runner.native.then_some((self.config.uid, self.config.gid)),
        )
    }
}

#[async_trait]
impl ContainerFactory for RuncFactory {
    async fn create(&self, spec: &ContainerSpec) -> Result<Box<dyn Container>, ContainerError> {
        let (args, runner) = self
            .runner_for(&spec.kind)
            .ok_or_else(|| ContainerError::UnknownKind(spec.kind.clone()))?;
        let id = self.core.instance_name(spec, 40);
        let bundle = self.bundles_dir.join(&id);
        std::fs::create_dir_all(&bundle)?;
        self.core.live.lock().insert(id.clone());
        match self.start(&id, &bundle, spec, args, &runner) {
            Ok(conn) => {
                let container = RuncContainer {
                    conn,
                    code: self.core.code.clone(),
                    id,
                    bundle,
                    runc: self.runc.clone(),
                    live: self.core.live.clone(),
                    killed: AtomicBool::new(false),
                    paused: AtomicBool::new(false),
                    destroyed: AtomicBool::new(false),
                    pasta: AtomicI32::new(0),
                };
                if let Some(tools) = &self.network_tools {
                    let port = self.api_address.map(|a| a.port());
                    match network::attach(tools, &container.bundle, port).await {
                        Ok(pid) => container.pasta.store(pid, Ordering::Release),
                        Err(e) => {
                            container.destroy().await;
                            return Err(ContainerError::Start(std::io::Error::other(e)));
                        }
                    }
                }
                Ok(Box::new(container))
            }
            Err(e) => {
                self.core.live.lock().remove(&id);
                let _ = std::fs::remove_dir_all(&bundle);
                Err(e)
            }
        }
    }

    async fn cleanup(&self) {
        self.core.cleanup_code().await;
        match self.runc_list().await {
            Ok(ids) => {
                for id in ids {
                    if self.core.live.lock().contains(&id) {
                        continue;
                    }
                    // A paused leftover must be thawed for the kill to be delivered.
                    let _ = self.runc.call(&["resume", &id]).await;
                    let _ = self.runc.call(&["kill", &id, "KILL"]).await;
                    if let Err(e) = self.runc.call(&["delete", "--force", &id]).await {
                        tracing::warn!(id, error = %e, "cannot delete leftover runc container");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list runc containers"),
        }
        if let Ok(mut entries) = tokio::fs::read_dir(&self.bundles_dir).await {
            while let Ok(Some(entry)) = entries.next_entry().await {
                let name = entry.file_name().to_string_lossy().into_owned();
                if self.core.live.lock().contains(&name) {
                    continue;
                }
                // A crashed server leaves pasta running on the namespace it holds open.
                network::stop_pasta_of(&entry.path());
                if let Err(e) = tokio::fs::remove_dir_all(entry.path()).await {
                    tracing::warn!(bundle = %entry.path().display(), error = %e, "cannot remove stale bundle");
                }
            }
        }
        let live = self.core.live.clone();
        let parent = self.cgroup_parent.clone();
        let left = tokio::task::spawn_blocking(move || {
            cgroup::remove_children(&parent, |name| live.lock().contains(name))
        })
        .await
        .unwrap_or_default();
        for dir in left {
            tracing::warn!(cgroup = %dir.display(), "cannot remove leftover cgroup");
        }
    }

    fn is_isolated(&self) -> bool {
        true
    }
}

impl Drop for RuncFactory {
    fn drop(&mut self) {
        // runc removes each instance's cgroup but not the factory's parent; drop it when no
        // instance is left in it (`rmdir` refuses a cgroup that still has children).
        cgroup::remove_if_empty(&self.cgroup_parent);
    }
}

/// One runner inside a runc container. Safe to share, like the process backend's instance.
#[derive(Debug)]
pub struct RuncContainer {
    conn: Connection,
    code: Arc<CodeStore>,
    id: String,
    bundle: PathBuf,
    runc: Arc<Runc>,
    live: Arc<Mutex<HashSet<String>>>,
    /// The backend itself killed the container (timeout or destroy).
    killed: AtomicBool,
    paused: AtomicBool,
    destroyed: AtomicBool,
    /// pid of the instance's pasta (isolated network), 0 when none: it holds the instance's
    /// network namespace open and does not exit by itself.
    pasta: AtomicI32,
}

impl RuncContainer {
    /// The container id (also the name of its cgroup and bundle directory).
    pub fn id(&self) -> &str {
        &self.id
    }

    fn stop_pasta(&self) {
        let pid = self.pasta.swap(0, Ordering::AcqRel);
        if pid != 0 {
            network::stop_pasta(pid, &self.bundle);
        }
    }

    async fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        if self.paused.swap(false, Ordering::AcqRel) {
            let _ = self.runc.call(&["resume", &self.id]).await;
        }
        if let Err(e) = self.runc.call(&["kill", &self.id, "KILL"]).await {
            tracing::debug!(id = %self.id, error = %e, "runc kill");
        }
    }

    /// Kills on timeout; tells an out-of-memory kill from other exits.
    async fn after(
        &self,
        result: Result<(Interval, RunnerOutcome), ContainerError>,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        match result {
            Ok((interval, RunnerOutcome::TimedOut)) => {
                self.kill().await;
                Ok((interval, RunnerOutcome::TimedOut))
            }
            Ok((interval, RunnerOutcome::Exited)) if !self.killed.load(Ordering::Acquire) => {
                let status = self.conn.exit_status(EXIT_WAIT).await;
                let oom = status.and_then(|s| s.code()) == Some(KILLED_EXIT)
                    && !self.killed.load(Ordering::Acquire);
                let outcome = if oom {
                    RunnerOutcome::OutOfMemory
                } else {
                    RunnerOutcome::Exited
                };
                Ok((interval, outcome))
            }
            other => other,
        }
    }
}

#[async_trait]
impl Container for RuncContainer {
    async fn initialize(
        &self,
        init: InitRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let code = CodeDir::Linked {
            store: self.code.clone(),
            host: self.bundle.join("code"),
            visible: spec::CODE_MOUNT.to_owned(),
        };
        let result = self.conn.initialize(init, timeout, &code).await;
        self.after(result).await
    }

    async fn run(
        &self,
        run: RunRequest,
        timeout: Duration,
    ) -> Result<(Interval, RunnerOutcome), ContainerError> {
        let result = self.conn.run(run, timeout).await;
        self.after(result).await
    }

    async fn logs(&self, limit_bytes: u64, wait_for_sentinel: bool) -> CollectedLogs {
        self.conn.logs(limit_bytes, wait_for_sentinel).await
    }

    async fn suspend(&self) -> Result<(), ContainerError> {
        self.runc.call(&["pause", &self.id]).await?;
        self.paused.store(true, Ordering::Release);
        Ok(())
    }

    async fn resume(&self) -> Result<(), ContainerError> {
        self.runc.call(&["resume", &self.id]).await?;
        self.paused.store(false, Ordering::Release);
        Ok(())
    }

    async fn destroy(&self) {
        if self.destroyed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.kill().await;
        self.conn.close().await;
        // `runc run` removes the container when its process is gone; wait for that, then make
        // sure (a container that never started is deleted here).
        let _ = self.conn.exit_status(EXIT_WAIT).await;
        let _ = self.runc.call(&["delete", "--force", &self.id]).await;
        self.stop_pasta();
        if let Err(e) = tokio::fs::remove_dir_all(&self.bundle).await {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(bundle = %self.bundle.display(), error = %e, "cannot remove bundle");
            }
        }
        self.live.lock().remove(&self.id);
    }
}

impl Drop for RuncContainer {
    fn drop(&mut self) {
        if !self.destroyed.load(Ordering::Acquire) {
            // Dropped without destroy (a bug or a shutdown): never leave a container behind.
            // Killing `runc run` alone would orphan the container, so ask runc.
            if self.paused.load(Ordering::Acquire) {
                let _ = std::process::Command::new(&self.runc.binary)
                    .arg("--root")
                    .arg(&self.runc.root)
                    .args(["resume", &self.id])
                    .status();
            }
            self.runc.kill_and_delete_blocking(&self.id);
            self.stop_pasta();
            let _ = std::fs::remove_dir_all(&self.bundle);
            self.live.lock().remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolated_network_falls_back_to_host_without_pasta() {
        let (network, tools) =
            effective_network(RuncNetwork::Isolated, Path::new("/nonexistent/pasta"));
        assert_eq!(network, RuncNetwork::Host);
        assert!(tools.is_none());
        let (network, tools) = effective_network(RuncNetwork::None, Path::new(""));
        assert_eq!(network, RuncNetwork::None);
        assert!(tools.is_none());
        assert_eq!(RuncConfig::default().network, RuncNetwork::Isolated);
    }

    #[test]
    fn cpu_shares_follow_memory_as_openwhisk_does() {
        assert_eq!(cpu_shares(256, 1024), 256);
        assert_eq!(cpu_shares(128, 2048), 64);
        assert_eq!(cpu_shares(1, 4096), 2);
        assert_eq!(cpu_shares(256, 0), 1024);
    }

    #[test]
    fn default_config_is_valid_and_bad_values_are_refused() {
        assert_eq!(RuncConfig::default().validate(), Ok(()));
        let c = RuncConfig {
            pids_max: 4,
            ..Default::default()
        };
        assert_eq!(c.validate(), Err(RuncConfigError::PidsMax(4)));
        let c = RuncConfig {
            uid: 0,
            ..Default::default()
        };
        assert_eq!(c.validate(), Err(RuncConfigError::Root));
        let c = RuncConfig {
            tmp_size_mb: 0,
            ..Default::default()
        };
        assert_eq!(c.validate(), Err(RuncConfigError::TmpSize));
    }

    #[test]
    fn config_reads_from_toml_shaped_json_and_refuses_unknown_keys() {
        let c: RuncConfig =
            serde_json::from_str(r#"{"network": "none", "pids_max": 64}"#).expect("parse");
        assert_eq!(c.network, RuncNetwork::None);
        assert_eq!(c.pids_max, 64);
        assert_eq!(c.tmp_size_mb, 64);
        assert!(serde_json::from_str::<RuncConfig>(r#"{"pid_max": 64}"#).is_err());
    }

    #[test]
    fn nofile_is_never_raised_above_the_hard_limit() {
        let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .expect("getrlimit");
        assert!(clamp_nofile(u64::MAX) <= hard);
        assert_eq!(clamp_nofile(64), 64.min(hard));
    }

    #[test]
    fn scope_is_stable_per_directory() {
        assert_eq!(scope_of(Path::new("/a")), scope_of(Path::new("/a")));
        assert_ne!(scope_of(Path::new("/a")), scope_of(Path::new("/b")));
        assert_eq!(scope_of(Path::new("/a")).len(), 16);
    }
}
