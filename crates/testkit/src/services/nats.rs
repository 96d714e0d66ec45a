//! A throwaway `nats-server` on loopback, for the cluster messaging tests.
//!
//! The server listens on 127.0.0.1 on a free port, with its config in a temporary directory.
//! Its `max_payload` is raised to [`MAX_PAYLOAD`] (the server's default is 1 MB, too small for
//! an activation that carries 1 MB of arguments and several MB of action code); a cluster
//! deployment must raise it the same way (see `docs/design/015-cluster-messaging.md`).
//! [`Nats::kill`] and [`Nats::restart`] simulate a crash and a restart on the same port.

use super::process::{free_port, in_ci, stop_at_exit};
use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `max_payload` the test server allows: 8 MB.
pub const MAX_PAYLOAD: usize = 8 * 1024 * 1024;

/// How long `start` waits for the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Where `nats-server` is looked for when it is not on `PATH` (the Debian package installs it
/// in `/usr/sbin`).
const CANDIDATES: [&str; 2] = ["/usr/sbin/nats-server", "/usr/local/bin/nats-server"];

/// A running (or killed) `nats-server`, killed when dropped.
#[derive(Debug)]
pub struct Nats {
    binary: PathBuf,
    config: PathBuf,
    port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

/// The `nats-server` executable: on `PATH` or in one of the usual places.
pub fn find_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file()))
}

impl Nats {
    /// Starts a server on a free loopback port and waits until it accepts connections.
    /// Fails with `NotFound` when `nats-server` is not installed.
    pub async fn start() -> io::Result<Nats> {
        let binary = find_binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "nats-server is not installed (on PATH or in /usr/sbin); \
                 install the Debian package `nats-server`",
            )
        })?;
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config = dir.path().join("nats.conf");
        std::fs::write(
            &config,
            format!("listen: \"127.0.0.1:{port}\"\nmax_payload: {MAX_PAYLOAD}\n"),
        )?;
        let mut nats = Nats {
            binary,
            config,
            port,
            child: None,
            _dir: dir,
        };
        nats.spawn().await?;
        Ok(nats)
    }

    /// Like [`Nats::start`], but `None` (with the reason printed) when `nats-server` is not
    /// installed, so a test can skip; with `CI=true` a missing server panics instead.
    pub async fn start_or_skip() -> Option<Nats> {
        match Nats::start().await {
            Ok(nats) => Some(nats),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !in_ci() => {
                eprintln!("skipped: {e}");
                None
            }
            Err(e) => panic!("cannot start nats-server: {e}"),
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The config file it runs with.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Kills the server at once (SIGKILL), as a crash would; clients see the connection drop.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server (the same as [`Nats::kill`]: core NATS keeps no state to flush).
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts a watchdog process that, once this process has exited, stops the server (SIGTERM,
    /// then SIGKILL) and removes its directory: for a server kept in a `static`, which is never
    /// dropped. It watches the server process running now (call it again after a restart).
    pub fn kill_on_exit(&self) -> io::Result<()> {
        match &self.child {
            Some(child) => stop_at_exit(child.id(), "TERM", self._dir.path()),
            None => Ok(()),
        }
    }

    /// Starts it again on the same port (killing it first if it still runs).
    pub async fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.spawn().await
    }

    async fn spawn(&mut self) -> io::Result<()> {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&self.config)
            .arg("-a")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                self.child = None;
                return Err(io::Error::other(format!(
                    "nats-server exited at start: {status}"
                )));
            }
            if started.elapsed() > READY_TIMEOUT {
                self.kill();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nats-server did not accept connections within 10 s",
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}
