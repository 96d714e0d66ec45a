//! A throwaway PostgreSQL cluster on loopback: `initdb` into a temporary directory (trust
//! authentication, superuser `edgewhisk`), `postgres` on 127.0.0.1 and a free port with its
//! unix socket inside that directory, and a database `edgewhisk`. Durability settings are the
//! server's defaults (`fsync` and `synchronous_commit` on), because durability is what the
//! store's tests check. It can be stopped, killed and restarted on the same port and data, and
//! is killed when dropped. As root, the server runs as the `postgres` user, which owns the
//! temporary directory (PostgreSQL refuses to run as root).

use super::process::{free_port, in_ci, stop_at_exit};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The superuser that `initdb` creates and the URLs name.
pub const USER: &str = "edgewhisk";

/// How long `start` and `restart` wait for the server to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a throwaway PostgreSQL could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No PostgreSQL server executables were found (searched: `/usr/lib/postgresql/*/bin`,
    /// then `PATH`). A test skips with this reason outside CI.
    #[error("PostgreSQL binaries not found (initdb, postgres): {0}")]
    NotInstalled(String),
    /// Running as root, but there is no `postgres` user to run the server as.
    #[error("running as root and there is no `postgres` user to run the server as")]
    NoServiceUser,
    /// A command failed; its output is included.
    #[error("{command} failed: {output}")]
    Command {
        /// What ran.
        command: String,
        /// Its stderr/stdout, or the server log.
        output: String,
    },
    /// The server did not accept connections in time; the server log is included.
    #[error("PostgreSQL did not become ready: {0}")]
    NotReady(String),
    /// Filesystem or process failure.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// A running (or stopped) throwaway PostgreSQL server.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    /// Holds the data directory, the socket and the log; removed when dropped.
    dir: tempfile::TempDir,
    port: u16,
    /// The uid/gid the server runs as when this process is root.
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
}

impl Postgres {
    /// Creates a cluster, starts it and creates the database `edgewhisk`.
    pub fn start() -> Result<Postgres, ServiceError> {
        let bin = find_bin()?;
        let run_as = if nix::unistd::geteuid().is_root() {
            let user = User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or(ServiceError::NoServiceUser)?;
            Some((user.uid.as_raw(), user.gid.as_raw()))
        } else {
            None
        };
        let dir = tempfile::Builder::new().prefix("edgewhisk-pg").tempdir()?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let mut pg = Postgres {
            bin,
            dir,
            port: free_port()?,
            run_as,
            child: None,
        };
        let data = pg.data_dir();
        let mut initdb = pg.server_command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C"])
            // Only initdb's own final sync is skipped, to start faster; the server keeps fsync.
            .arg("--no-sync");
        run(&mut initdb, "initdb")?;
        pg.spawn()?;
        pg.wait_ready()?;
        pg.create_database(USER)?;
        Ok(pg)
    }

    /// [`start`](Self::start), or `None` with the reason printed when PostgreSQL is not
    /// installed and this is not CI. Panics on any other failure, and in CI.
    pub fn start_or_skip() -> Option<Postgres> {
        match Postgres::start() {
            Ok(pg) => Some(pg),
            Err(e @ ServiceError::NotInstalled(_)) if !in_ci() => {
                eprintln!("skipped: {e}");
                None
            }
            Err(e) => panic!("cannot start PostgreSQL: {e}"),
        }
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://edgewhisk@127.0.0.1:PORT/edgewhisk`.
    pub fn url(&self) -> String {
        self.url_of(USER)
    }

    /// The URL of database `database` on this server.
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates database `name` (with `createdb`) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, ServiceError> {
        let mut createdb = Command::new(self.bin.join("createdb"));
        createdb
            .args(["-h", "127.0.0.1", "-U", USER, "-p"])
            .arg(self.port.to_string())
            .arg(name);
        run(&mut createdb, "createdb")?;
        Ok(self.url_of(name))
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the server process was started and has not been stopped.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Fast shutdown (SIGINT: open transactions are rolled back, clients disconnected) and
    /// waits for the server to exit.
    pub fn stop(&mut self) -> Result<(), ServiceError> {
        self.signal_and_wait(Signal::SIGINT)
    }

    /// Kills the server with SIGKILL and waits for it, as a crash would. Its backends notice
    /// and exit by themselves; `restart` waits for them.
    pub fn kill(&mut self) -> Result<(), ServiceError> {
        self.signal_and_wait(Signal::SIGKILL)
    }

    /// Starts the server again on the same port and data directory (stopping it first if it
    /// runs) and waits until it accepts connections.
    pub fn restart(&mut self) -> Result<(), ServiceError> {
        if self.is_running() {
            self.stop()?;
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.spawn()?;
            match self.wait_ready() {
                Ok(()) => return Ok(()),
                // After a SIGKILL the old backends may still hold the shared memory for a
                // moment: the new server exits at once, and a later attempt succeeds.
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {
                    let _ = self.signal_and_wait(Signal::SIGKILL);
                    pause(Duration::from_millis(200));
                }
            }
        }
    }

    /// Starts a watchdog process that, once this process has exited, shuts the server down
    /// (SIGQUIT, then SIGKILL) and removes its directory: for a server kept in a `static`,
    /// which is never dropped. It watches the server process running now (call it again after
    /// a restart).
    pub fn kill_on_exit(&self) -> Result<(), ServiceError> {
        let Some(pid) = self.pid() else {
            return Ok(());
        };
        stop_at_exit(pid, "QUIT", self.dir.path())?;
        Ok(())
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// `program` from the server's bin directory, run as the service user when root.
    fn server_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd.current_dir(self.dir.path());
        cmd
    }

    fn spawn(&mut self) -> Result<(), ServiceError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(self.log_path(), Some(uid), Some(gid))?;
        }
        let mut postgres = self.server_command("postgres");
        postgres
            .arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args(["-c", "max_connections=300"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        self.child = Some(postgres.spawn()?);
        Ok(())
    }

    /// Waits until the server answers a connection attempt (`pg_isready`).
    fn wait_ready(&mut self) -> Result<(), ServiceError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if !self.is_running() {
                return Err(ServiceError::NotReady(format!(
                    "the server exited: {}",
                    self.log()
                )));
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p"])
                .arg(self.port.to_string())
                .status()?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ServiceError::NotReady(self.log()));
            }
            pause(Duration::from_millis(50));
        }
    }

    fn signal_and_wait(&mut self, signal: Signal) -> Result<(), ServiceError> {
        if let Some(mut child) = self.child.take() {
            if let Ok(None) = child.try_wait() {
                let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
                kill(pid, signal).map_err(std::io::Error::from)?;
            }
            child.wait()?;
        }
        Ok(())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate shutdown: the server stops its backends too, which a SIGKILL would leave
        // running until they notice.
        if let Some(child) = self.child.as_mut() {
            if let Ok(None) = child.try_wait() {
                let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
                let _ = kill(pid, Signal::SIGQUIT);
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    pause(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The newest `/usr/lib/postgresql/*/bin` holding `initdb` and `postgres`, else the directory
/// of `initdb` on `PATH`.
fn find_bin() -> Result<PathBuf, ServiceError> {
    let complete = |dir: &Path| {
        ["initdb", "postgres", "pg_isready", "createdb"]
            .iter()
            .all(|p| dir.join(p).is_file())
    };
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| complete(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| complete(dir));
    on_path.ok_or_else(|| {
        ServiceError::NotInstalled(
            "no /usr/lib/postgresql/*/bin and no initdb on PATH (apt-get install postgresql)"
                .into(),
        )
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
/// Blocks this thread for `d`: the helper is synchronous (a test calls it before its runtime
/// starts, or from a `static` initialiser), and its waits are short.
#[allow(clippy::disallowed_methods)]
fn pause(d: Duration) {
    std::thread::sleep(d);
}

/// Whether this runs in CI (`CI=true`), where a missing service is a failure, not a skip.
#[allow(clippy::disallowed_methods)]
/// Runs `cmd` to completion; a failure carries its output.
fn run(cmd: &mut Command, name: &str) -> Result<(), ServiceError> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(ServiceError::Command {
        command: name.to_owned(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_restarts_and_stops_on_the_same_port() {
        let Some(mut pg) = Postgres::start_or_skip() else {
            return;
        };
        let port = pg.port();
        assert!(pg.url().ends_with(&format!(":{port}/edgewhisk")));
        pg.stop().unwrap();
        assert!(!pg.is_running());
        pg.restart().unwrap();
        assert!(pg.is_running());
        pg.kill().unwrap();
        pg.restart().unwrap();
        assert_eq!(pg.port(), port);
        let url = pg.create_database("second").unwrap();
        assert!(url.ends_with("/second"));
    }
}
