//! Starting the server: every start goes through [`ServerGuard::start_net`], which also serves
//! the ways the connection and TLS tests need: under a lowered open-files limit (through
//! `prlimit`), on another listen address, with extra flags, and reading an `https://`
//! listening line.

use super::{
    LISTENING_PREFIX, START_TIMEOUT, ServerGuard, ServerOptions, binary, read_listening_line,
};
use std::fs::File;
use std::process::Stdio;

/// How [`ServerGuard::start_net`] starts the server.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetStart {
    /// `(soft, hard)` open-files limit the server starts with (set with `prlimit`).
    pub(crate) nofile: Option<(u64, u64)>,
    /// `--listen` value; `None` means `127.0.0.1:0`. Tests bind `0.0.0.0` at most, and then
    /// talk to `127.0.0.1` only.
    pub(crate) listen: Option<String>,
    /// Flags after `serve …`.
    pub(crate) args: Vec<String>,
}

/// Starts a server with a fresh data directory and `config_toml`, as `start` says.
pub(crate) fn spawn_server_net(config_toml: Option<&str>, start: &NetStart) -> ServerGuard {
    let mut guard = ServerGuard::prepare(ServerOptions {
        config_toml,
        ..ServerOptions::default()
    });
    guard.start_net(start);
    guard
}

impl ServerGuard {
    /// Starts the (stopped) server again on its data directory and config, as `start` says.
    /// [`ServerGuard::base`] is then `http(s)://127.0.0.1:PORT` even when it listens on
    /// `0.0.0.0`.
    pub(crate) fn start_net(&mut self, start: &NetStart) {
        assert!(self.child.is_none(), "stop the server before starting it");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the server log file");
        let mut command = match start.nofile {
            Some((soft, hard)) => binary::command_after(
                &["prlimit", &format!("--nofile={soft}:{hard}"), "--"],
                &binary::binary(),
            ),
            None => binary::command(),
        };
        let mut child = command
            .arg("serve")
            .arg("--listen")
            .arg(start.listen.as_deref().unwrap_or("127.0.0.1:0"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .args(&start.args)
            .env("EW_LOG", &self.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn the edgewhisk binary");
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        match read_listening_line(stdout) {
            Some(base) => self.base = base.replace("://0.0.0.0:", "://127.0.0.1:"),
            None => {
                let status = self.stop();
                panic!(
                    "edgewhisk did not print its {LISTENING_PREFIX:?} line within \
                     {START_TIMEOUT:?} (exit: {status}); server log:\n{}",
                    self.log_tail()
                );
            }
        }
    }

    /// The server's `(soft, hard)` open-files limit, from `/proc/PID/limits`.
    pub(crate) fn nofile_limits(&self) -> (String, String) {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.pid()))
            .expect("read /proc/PID/limits of the server");
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .expect("a Max open files line");
        let mut fields = line["Max open files".len()..].split_whitespace();
        let soft = fields.next().expect("soft limit").to_owned();
        let hard = fields.next().expect("hard limit").to_owned();
        (soft, hard)
    }
}
