//! Spawns the real `edgewhisk serve` binary on a loopback port for end-to-end tests.
//!
//! Each [`ServerGuard`] owns a temporary directory holding the data directory, the config file
//! and the server's stderr log. Dropping the guard stops the server (SIGTERM, then SIGKILL
//! after [`STOP_GRACE`]) and waits for it, so no test leaves a process behind.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub(crate) mod admin;
pub(crate) mod api;
pub(crate) mod binary;
pub(crate) mod cli;
pub(crate) mod cluster;
pub(crate) mod floods;
pub(crate) mod host;
pub(crate) mod net;
pub(crate) mod proxy;
pub(crate) mod tmpfs;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::time::Duration;

/// The well-known OpenWhisk guest key, provisioned by the server on first start.
pub(crate) const GUEST_KEY: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// The user part of [`GUEST_KEY`].
pub(crate) const GUEST_UUID: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502";

/// The secret part of [`GUEST_KEY`].
pub(crate) const GUEST_SECRET: &str =
    "123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

/// How long a stopped server may take to exit after SIGTERM before it is killed.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long the server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The line the server prints on stdout once it accepts connections.
const LISTENING_PREFIX: &str = "edgewhisk: listening on ";

/// Settings every test server gets unless the test's own config overrides the section: the
/// per-minute throttle is raised because one test invokes many times in a minute, and the
/// shutdown grace is short so that stopping a server does not dominate the test time.
pub(crate) const TEST_DEFAULTS: &str = "\
[server]
shutdown_grace_ms = 2000

[api]
invocations_per_minute = 100000
concurrent_invocations = 1000
";

/// A running (or stopped, between [`ServerGuard::stop`] and [`ServerGuard::restart`]) server.
#[derive(Debug)]
pub(crate) struct ServerGuard {
    dir: tempfile::TempDir,
    extra_args: Vec<String>,
    /// `EW_LOG` of every start.
    log_filter: String,
    child: Option<Child>,
    base: String,
}

/// How [`spawn_server_with`] starts a server, beyond what [`spawn_server`] does.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ServerOptions<'a> {
    /// Contents of the `--config` file; `None` means [`TEST_DEFAULTS`].
    pub(crate) config_toml: Option<&'a str>,
    /// Flags appended after `serve …` on every start, e.g. `["--isolation", "runc"]`.
    pub(crate) extra_args: &'a [&'a str],
    /// Where the server's temporary directory is created; `None` means the system's temporary
    /// directory.
    pub(crate) temp_parent: Option<&'a Path>,
    /// The server's `EW_LOG` filter; `None` means `info`.
    pub(crate) log_filter: Option<&'a str>,
}

/// Starts `edgewhisk serve` on `127.0.0.1:0` with a fresh data directory.
///
/// `config_toml` is written to the `--config` file; without it, [`TEST_DEFAULTS`] is used.
pub(crate) fn spawn_server(config_toml: Option<&str>) -> ServerGuard {
    spawn_server_with(ServerOptions {
        config_toml,
        ..ServerOptions::default()
    })
}

/// Starts `edgewhisk serve` on `127.0.0.1:0` with a fresh data directory, as `options` say.
pub(crate) fn spawn_server_with(options: ServerOptions<'_>) -> ServerGuard {
    let mut guard = ServerGuard::prepare(options);
    guard.start();
    guard
}

impl ServerGuard {
    /// A stopped server: its temporary directory with the config file written, as `options`
    /// say.
    fn prepare(options: ServerOptions<'_>) -> Self {
        let mut builder = tempfile::Builder::new();
        builder.prefix("edgewhisk-e2e-");
        let dir = match options.temp_parent {
            Some(parent) => {
                std::fs::create_dir_all(parent)
                    .expect("create the parent of the temporary directory");
                builder.tempdir_in(parent)
            }
            None => builder.tempdir(),
        }
        .expect("create a temporary directory for the server");
        std::fs::write(
            dir.path().join("config.toml"),
            binary::with_test_runners(options.config_toml.unwrap_or(TEST_DEFAULTS)),
        )
        .expect("write the server config");
        ServerGuard {
            dir,
            extra_args: options.extra_args.iter().map(|a| (*a).to_owned()).collect(),
            log_filter: options.log_filter.unwrap_or("info").to_owned(),
            child: None,
            base: String::new(),
        }
    }

    /// `http://127.0.0.1:PORT` of the running server.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `base` + `path` (`path` starts with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// URL of a route under `/api/v1/namespaces/_/` (`rest` without a leading slash).
    pub(crate) fn ns_url(&self, rest: &str) -> String {
        format!("{}/api/v1/namespaces/_/{rest}", self.base)
    }

    /// The data directory the server was started with; kept across restarts.
    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's temporary directory (data directory, config file, log).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server process was started and not stopped or killed since.
    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Process id of the running server.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Resident set size of the server process in KiB, from `/proc`.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status of the server");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line in /proc/PID/status")
    }

    /// Everything the server wrote on stderr so far (all runs), at most the last 16 KiB.
    pub(crate) fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(self.log_path()) {
            let _ = f.read_to_string(&mut text);
        }
        let cut = text.len().saturating_sub(16 * 1024);
        let cut = (cut..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[cut..].to_owned()
    }

    /// Stops the server with SIGTERM (SIGKILL after [`STOP_GRACE`]) and returns how it exited.
    pub(crate) fn stop(&mut self) -> ExitStatus {
        self.signal_and_reap(Signal::SIGTERM)
    }

    /// Kills the server with SIGKILL, as a power cut or the OOM killer would.
    pub(crate) fn sigkill(&mut self) -> ExitStatus {
        self.signal_and_reap(Signal::SIGKILL)
    }

    /// Starts the server again on the same data directory and config (stopping it first if
    /// it is still running). The port changes; use [`ServerGuard::base`] afterwards.
    pub(crate) fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.start();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn start(&mut self) {
        let start = net::NetStart {
            args: self.extra_args.clone(),
            ..net::NetStart::default()
        };
        self.start_net(&start);
    }

    fn signal_and_reap(&mut self, first: Signal) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32"));
        // The waiter thread owns the child and reaps it, so the pid stays ours (a zombie at
        // worst) until the wait returns: signalling it below cannot hit another process.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let _ = kill(pid, first);
        let waited = match rx.recv_timeout(STOP_GRACE) {
            Ok(status) => status,
            Err(_) => {
                let _ = kill(pid, Signal::SIGKILL);
                rx.recv().expect("the waiter thread reports")
            }
        };
        waited.expect("wait for the server process")
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- edgewhisk server log ({}) ---\n{}",
                self.dir.path().display(),
                self.log_tail()
            );
        }
    }
}

/// Reads stdout until the listening line and returns its URL; `None` on EOF or timeout. A
/// thread keeps draining stdout afterwards so the server never blocks on a full pipe.
fn read_listening_line(stdout: impl Read + Send + 'static) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut tx = Some(tx);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let Some(url) = line.trim_end().strip_prefix(LISTENING_PREFIX) else {
                continue;
            };
            if let Some(tx) = tx.take() {
                let _ = tx.send(url.trim_end_matches('/').to_owned());
            }
        }
    });
    rx.recv_timeout(START_TIMEOUT).ok()
}

/// Path of a file inside the repository, relative to this crate's manifest directory.
pub(crate) fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}
