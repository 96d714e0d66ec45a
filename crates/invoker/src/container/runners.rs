//! What the backends that start runners share: the runner files embedded in the binary, the
//! command line and environment a runtime kind's runner starts with, and [`FactoryCore`], the
//! state every such factory keeps (code store, log settings, live instances, a name counter).

use super::archive::{ArchiveLimits, CodeStore};
use super::backend::{ContainerError, ContainerSpec};
use super::native::{NativeProtocol, SUBCOMMAND as NATIVE_SUBCOMMAND};
use edgewhisk_entity::{RunnerType, Runtime, RuntimeManifest};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The Node.js runner, embedded.
const NODE_RUNNER: &str = include_str!("../../../../runtimes/nodejs/runner.js");
/// The Python runner, embedded.
const PYTHON_RUNNER: &str = include_str!("../../../../runtimes/python/runner.py");

/// The `PATH` runners get: the environment is cleared so the invoker's own variables (and
/// any secrets in them) never reach an action.
pub(crate) const RUNNER_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Default wait for a runner's two log sentinels after a request.
pub const DEFAULT_LOG_SENTINEL_TIMEOUT: Duration = Duration::from_secs(2);

/// Default cap of log text buffered per instance (OpenWhisk's largest log limit, 10 MB).
pub const DEFAULT_LOG_BUFFER_BYTES: usize = 10 * 1024 * 1024;

/// Creates `dir` and writes the embedded runners into it as `runner.js` and `runner.py`;
/// returns their paths.
pub(crate) fn write_runners(dir: &Path) -> Result<(PathBuf, PathBuf), ContainerError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let node = dir.join("runner.js");
    let python = dir.join("runner.py");
    write_if_changed(&node, NODE_RUNNER)?;
    write_if_changed(&python, PYTHON_RUNNER)?;
    Ok((node, python))
}

/// Writes `content` unless the file already holds it, and makes it readable by everyone: the
/// runner may run as another user than this process, and a file left by a run under a
/// restrictive umask must not stop it.
fn write_if_changed(path: &Path, content: &str) -> Result<(), ContainerError> {
    use std::os::unix::fs::PermissionsExt as _;
    if !std::fs::read(path).is_ok_and(|old| old == content.as_bytes()) {
        // Write then rename, so a runner starting concurrently never reads half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, path)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

/// Keeps a name to characters that are safe in a path segment and a container id: ASCII
/// letters, digits, `-` and `_`; anything else becomes `_`.
pub(crate) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// How the runner of one runtime kind is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunnerCommand {
    /// The interpreter.
    pub(crate) program: PathBuf,
    /// Its arguments, the runner file last.
    pub(crate) args: Vec<OsString>,
    /// Whether it is the Python runner.
    pub(crate) python: bool,
    /// Whether it is the native runner (the `edgewhisk` executable itself).
    pub(crate) native: bool,
}

impl RunnerCommand {
    /// The runner of `kind` in `runtimes`, with the runner files in `runners_dir` and the
    /// `edgewhisk` executable `native` (both as the runner sees them); `None` for a kind the
    /// manifest lacks or whose runner is not a process started here.
    pub(crate) fn for_kind(
        runtimes: &RuntimeManifest,
        kind: &str,
        runners_dir: &Path,
        native: Option<&Path>,
    ) -> Option<Self> {
        Self::for_runtime(runtimes.get(kind)?, runners_dir, native)
    }

    /// The runner of one manifest entry (see [`RunnerCommand::for_kind`]): a native kind runs
    /// `edgewhisk native-runner <protocol>` (`docs/design/021-native-actions.md`), and not at
    /// all when the factory was not told where `edgewhisk` is.
    pub(crate) fn for_runtime(
        rt: &Runtime,
        runners_dir: &Path,
        native: Option<&Path>,
    ) -> Option<Self> {
        match rt.runner {
            RunnerType::Nodejs => Some(Self {
                program: rt.executable.clone(),
                args: vec![runners_dir.join("runner.js").into_os_string()],
                python: false,
                native: false,
            }),
            RunnerType::Python => Some(Self {
                program: rt.executable.clone(),
                args: vec!["-B".into(), runners_dir.join("runner.py").into_os_string()],
                python: true,
                native: false,
            }),
            RunnerType::Native => {
                let protocol = NativeProtocol::for_kind(&rt.kind)?;
                native.map(|exe| Self {
                    program: exe.to_path_buf(),
                    args: vec![NATIVE_SUBCOMMAND.into(), protocol.as_str().into()],
                    python: false,
                    native: true,
                })
            }
            RunnerType::Wasm => None,
        }
    }

    /// The whole environment the runner starts with (nothing of the invoker's own): `PATH`,
    /// `HOME`, `LANG`, and when they apply `__OW_ALLOW_CONCURRENT` (never for the native
    /// runner, which runs one activation at a time), `PYTHONIOENCODING` and `__OW_API_HOST`.
    pub(crate) fn env(
        &self,
        home: &OsStr,
        spec: &ContainerSpec,
        api_host: Option<&str>,
    ) -> Vec<(&'static str, OsString)> {
        let mut env = vec![
            ("PATH", RUNNER_PATH.into()),
            ("HOME", home.to_owned()),
            ("LANG", "C.UTF-8".into()),
        ];
        if spec.allow_concurrent && !self.native {
            env.push(("__OW_ALLOW_CONCURRENT", "true".into()));
        }
        if self.python {
            env.push(("PYTHONIOENCODING", "utf-8".into()));
        }
        if let Some(api_host) = api_host {
            env.push(("__OW_API_HOST", api_host.into()));
        }
        env
    }
}

/// The state every runner-starting factory keeps. `K` names a live instance (the process
/// backend keys by instance directory, runc by container id).
#[derive(Debug)]
pub(crate) struct FactoryCore<K> {
    code_root: PathBuf,
    /// Unpacked action archives, shared by the instances running them.
    pub(crate) code: Arc<CodeStore>,
    /// How long `logs` waits for the sentinels.
    pub(crate) log_timeout: Duration,
    /// How many bytes of log text an instance buffers before dropping output.
    pub(crate) log_buffer_bytes: usize,
    /// The instances this factory owns; `cleanup` spares them.
    pub(crate) live: Arc<Mutex<HashSet<K>>>,
    next: AtomicU64,
}

impl<K> FactoryCore<K> {
    /// Archives unpacked under `code_root` with the default limits, the default log settings,
    /// no live instance.
    pub(crate) fn new(code_root: PathBuf) -> Self {
        Self {
            code: Arc::new(CodeStore::new(code_root.clone(), ArchiveLimits::default())),
            code_root,
            log_timeout: DEFAULT_LOG_SENTINEL_TIMEOUT,
            log_buffer_bytes: DEFAULT_LOG_BUFFER_BYTES,
            live: Arc::new(Mutex::new(HashSet::new())),
            next: AtomicU64::new(0),
        }
    }

    /// Unpacks archives with `limits` from now on.
    pub(crate) fn set_archive_limits(&mut self, limits: ArchiveLimits) {
        self.code = Arc::new(CodeStore::new(self.code_root.clone(), limits));
    }

    /// A name no other instance of this factory or of another server process has:
    /// `<spec name, sanitized, at most max_chars>-<pid>-<counter>`.
    pub(crate) fn instance_name(&self, spec: &ContainerSpec, max_chars: usize) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let name: String = sanitize(&spec.name).chars().take(max_chars).collect();
        format!("{name}-{}-{n}", std::process::id())
    }

    /// Removes unpacked archives no instance uses any more.
    pub(crate) async fn cleanup_code(&self) {
        let code = self.code.clone();
        let _ = tokio::task::spawn_blocking(move || code.cleanup()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_keeps_names_path_safe() {
        assert_eq!(sanitize("guest/pkg/hello world"), "guest_pkg_hello_world");
        assert_eq!(sanitize("../x"), "___x");
        assert_eq!(sanitize("a-b_c"), "a-b_c");
    }

    #[test]
    fn runners_exist_for_the_manifest_s_interpreter_kinds_only() {
        let mut m = RuntimeManifest::default();
        m.runtimes.push(Runtime::new(
            "python:3.11",
            RunnerType::Python,
            "/opt/py311",
            false,
        ));
        m.runtimes
            .push(Runtime::new("wasm:wasi", RunnerType::Wasm, "", true));
        let runners = Path::new("/runners");
        let r = RunnerCommand::for_kind(&m, "nodejs:20", runners, None);
        assert_eq!(
            r.map(|r| (r.program, r.args, r.python)),
            Some(("node".into(), vec!["/runners/runner.js".into()], false))
        );
        let r = RunnerCommand::for_kind(&m, "python:3.11", runners, None);
        assert_eq!(
            r.map(|r| (r.program, r.args, r.python)),
            Some((
                "/opt/py311".into(),
                vec!["-B".into(), "/runners/runner.py".into()],
                true
            ))
        );
        assert_eq!(RunnerCommand::for_kind(&m, "swift:5", runners, None), None);
        assert_eq!(
            RunnerCommand::for_kind(&m, "wasm:wasi", runners, None),
            None
        );
    }

    #[test]
    fn native_kinds_run_the_edgewhisk_executable_when_it_is_known() {
        let mut m = RuntimeManifest::default();
        m.runtimes
            .push(Runtime::new("go:1.22", RunnerType::Native, "", true));
        m.runtimes
            .push(Runtime::new("blackbox", RunnerType::Native, "", true));
        let (runners, exe) = (Path::new("/r"), Path::new("/usr/bin/edgewhisk"));
        let args = |kind: &str| {
            RunnerCommand::for_kind(&m, kind, runners, Some(exe))
                .map(|r| (r.program, r.args, r.native))
        };
        assert_eq!(
            args("go:1.22"),
            Some((
                exe.into(),
                vec!["native-runner".into(), "action-loop".into()],
                true
            ))
        );
        assert_eq!(
            args("blackbox"),
            Some((
                exe.into(),
                vec!["native-runner".into(), "skeleton".into()],
                true
            ))
        );
        assert_eq!(RunnerCommand::for_kind(&m, "go:1.22", runners, None), None);
    }
}
