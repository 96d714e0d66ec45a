//! What the services share: a free loopback port, whether this is CI, and a watchdog that
//! stops a server kept in a `static` (never dropped) once the test binary has exited.

use std::path::Path;
use std::process::{Command, Stdio};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Whether the tests run in CI (`CI=true`), where a missing service is a failure, not a skip.
#[allow(clippy::disallowed_methods)]
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| v == "true")
}

/// Starts a watchdog process that, once this process has exited, sends `pid` the signal
/// `first` (a name such as `QUIT` or `TERM`), then SIGKILL after 5 s, and removes `dir`.
pub(crate) fn stop_at_exit(pid: u32, first: &str, dir: &Path) -> std::io::Result<()> {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 1; done; kill -{first} {pid} 2>/dev/null; \
         for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 {pid} 2>/dev/null || break; sleep 0.5; done; \
         kill -KILL {pid} 2>/dev/null; sleep 0.5; rm -rf '{dir}'",
        me = std::process::id(),
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(())
}
