//! The sandbox around an action, end to end (issue 9, item 7): the seccomp allow list of the
//! runc backend, the instances' own network, and the unprivileged user of the process backend.
//! The real binary is started and driven over the REST API only.
//!
//! Tests that need root and `runc` (or root alone) print `skipped: <why>` and return without
//! them. CI runs as root with runc installed, so there they run for real.
//!
//! Data directories live under Cargo's target temporary directory rather than `/tmp`, as in
//! `isolation_e2e.rs`: an instance's private `/tmp` would hide a data directory under `/tmp`.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use support::api::{create_action, create_hello, invoke_blocking};
use support::host::runc_unavailable;
use support::{ServerGuard, ServerOptions, TEST_DEFAULTS, spawn_server_with};

/// Starts a server with `--isolation runc`, [`TEST_DEFAULTS`] and `extra_toml`; `None` (after
/// printing why) when this machine cannot run runc instances.
fn runc_server(extra_toml: &str) -> Option<ServerGuard> {
    if let Some(why) = runc_unavailable() {
        eprintln!("skipped: {why}");
        return None;
    }
    let config = format!("{TEST_DEFAULTS}\n{extra_toml}");
    Some(spawn_server_with(ServerOptions {
        config_toml: Some(&config),
        extra_args: &["--isolation", "runc"],
        temp_parent: Some(Path::new(env!("CARGO_TARGET_TMPDIR"))),
        ..ServerOptions::default()
    }))
}

/// Makes raw syscalls through `ctypes` and reports, per name, `ok <return value>` or
/// `errno <name>`, plus the seccomp mode of the process and whether `fork`+`exec` still work.
/// Arguments are harmless: each call either is refused or fails on its arguments.
const SYSCALLS_PY: &str = r#"
import ctypes, errno, os, platform, subprocess

NUMBERS = {
    "x86_64": {"io_uring_setup": 425, "unshare": 272, "mount": 165, "keyctl": 250,
               "bpf": 321, "perf_event_open": 298, "pidfd_getfd": 438, "getpid": 39},
    "aarch64": {"io_uring_setup": 425, "unshare": 97, "mount": 40, "keyctl": 219,
                "bpf": 280, "perf_event_open": 241, "pidfd_getfd": 438, "getpid": 172},
}

def main(args):
    libc = ctypes.CDLL(None, use_errno=True)
    table = NUMBERS.get(platform.machine())
    if table is None:
        return {"unsupported": platform.machine()}
    params = ctypes.create_string_buffer(240)
    calls = {
        "io_uring_setup": (1, params),
        "unshare": (0x10000000,),
        "mount": (b"none", b"/tmp", b"tmpfs", 0, None),
        "keyctl": (0, -3, 0),
        "bpf": (0, params, 72),
        "perf_event_open": (params, 0, -1, -1, 0),
        "pidfd_getfd": (-1, 0, 0),
        "getpid": (),
    }
    out = {}
    for name, call_args in calls.items():
        ctypes.set_errno(0)
        r = libc.syscall(table[name], *call_args)
        out[name] = "ok %d" % r if r >= 0 else "errno " + errno.errorcode.get(ctypes.get_errno(), "?")
    with open("/proc/self/status") as f:
        out["seccomp"] = [l.split()[1] for l in f if l.startswith("Seccomp:")][0]
    out["fork"] = subprocess.run(["/bin/sh", "-c", "echo forked"], capture_output=True, text=True).stdout.strip()
    return out
"#;

/// Invokes `name` blocking with `args` and returns the result, panicking unless it succeeded.
async fn result_of(s: &ServerGuard, name: &str, args: Value) -> Value {
    let reply = invoke_blocking(s, name, args).await;
    reply.expect_status(200, name);
    reply.body["response"]["result"].clone()
}

#[cfg(test)]
mod seccomp {
    use super::*;

    #[tokio::test]
    async fn seccomp_refuses_syscalls_outside_the_allow_list_and_runtimes_still_run() {
        let Some(s) = runc_server("") else { return };
        create_action(&s, "syscalls", "python:3", SYSCALLS_PY).await;
        let out = result_of(&s, "syscalls", json!({})).await;
        if let Some(machine) = out.get("unsupported") {
            eprintln!("skipped: no syscall numbers for {machine}");
            return;
        }
        assert_eq!(out["seccomp"], "2", "a seccomp filter is in force: {out}");
        for name in [
            "io_uring_setup",
            "unshare",
            "mount",
            "keyctl",
            "bpf",
            "perf_event_open",
            // Allowed by a deny list, refused by an allow list: Docker grants it only with
            // CAP_SYS_PTRACE. With the argument -1 an allowed call fails with EBADF instead.
            "pidfd_getfd",
        ] {
            let got = out[name].as_str().unwrap_or_default();
            assert!(
                got == "errno EPERM" || got == "errno ENOSYS",
                "{name} must be refused by seccomp, got {got:?}: {out}"
            );
        }
        assert!(
            out["getpid"].as_str().is_some_and(|r| r.starts_with("ok ")),
            "ordinary syscalls still work: {out}"
        );
        assert_eq!(out["fork"], "forked", "fork and exec still work: {out}");

        // Both runtimes start and answer under the filter.
        create_hello(&s).await;
        let hello = result_of(&s, "hello", json!({"name": "seccomp"})).await;
        assert_eq!(hello, json!({"payload": "Hello, seccomp!"}));
        create_action(
            &s,
            "py-hello",
            "python:3",
            "def main(args):\n    return {'payload': 'hi ' + args.get('name', '')}\n",
        )
        .await;
        let py = result_of(&s, "py-hello", json!({"name": "py"})).await;
        assert_eq!(py, json!({"payload": "hi py"}));
    }
}

#[cfg(test)]
mod network {
    use super::*;
    use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Tries a TCP connection to each of `params.targets` (`host:port`) and fetches
    /// `$__OW_API_HOST/api/v1`; reports what happened to each.
    const PROBE_JS: &str = r"
const net = require('net');
const http = require('http');
function tryConnect(target) {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  return new Promise(resolve => {
    const s = net.connect({ host, port });
    const done = r => { s.destroy(); resolve(r); };
    s.setTimeout(3000, () => done('timeout'));
    s.on('connect', () => done('connected'));
    s.on('error', e => done('error ' + e.code));
  });
}
function fetchApi() {
  const base = process.env.__OW_API_HOST;
  if (!base) return Promise.resolve({ error: '__OW_API_HOST unset' });
  return new Promise(resolve => {
    const req = http.get(base + '/api/v1', { timeout: 5000 }, res => {
      let body = '';
      res.on('data', d => body += d);
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => { req.destroy(); resolve({ error: 'timeout' }); });
    req.on('error', e => resolve({ error: e.code || e.message }));
  });
}
async function main(params) {
  const out = { apiHost: process.env.__OW_API_HOST || null, targets: {} };
  for (const t of params.targets) out.targets[t] = await tryConnect(t);
  out.api = await fetchApi();
  return out;
}
";

    /// Why the isolated network cannot be tested here, or `None`.
    fn pasta_unavailable() -> Option<String> {
        let found = ["/usr/bin/pasta", "/usr/sbin/pasta", "/usr/local/bin/pasta"]
            .iter()
            .any(|p| Path::new(p).is_file());
        (!found).then(|| "pasta (Debian package passt) is not installed".to_owned())
    }

    /// The host's address on its default route, found without sending anything (a UDP
    /// `connect` only picks the route); `None` without a default route.
    fn host_address() -> Option<IpAddr> {
        let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
        socket.connect("203.0.113.1:9").ok()?;
        let ip = socket.local_addr().ok()?.ip();
        (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
    }

    /// A TCP listener on `ip` that counts the connections it accepts, for as long as the test
    /// runs (the thread ends with the test process).
    fn counting_listener(ip: IpAddr) -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind((ip, 0)).expect("bind a probe listener");
        let addr = listener.local_addr().expect("probe address");
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stream.is_ok() {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        (addr, count)
    }

    #[tokio::test]
    async fn an_isolated_instance_reaches_the_api_but_not_the_hosts_local_services() {
        if let Some(why) = pasta_unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
        let Some(s) = runc_server("") else { return };
        let mut listeners = vec![counting_listener(IpAddr::from([127, 0, 0, 1]))];
        match host_address() {
            Some(ip) => listeners.push(counting_listener(ip)),
            None => eprintln!("note: no default route, only loopback is probed"),
        }
        let targets: Vec<String> = listeners.iter().map(|(a, _)| a.to_string()).collect();
        create_action(&s, "probe", "nodejs:20", PROBE_JS).await;
        let out = result_of(&s, "probe", json!({ "targets": targets })).await;

        for (addr, count) in &listeners {
            let got = &out["targets"][addr.to_string()];
            assert_ne!(got, "connected", "{addr} must be unreachable: {out}");
            assert_eq!(count.load(Ordering::SeqCst), 0, "{addr} accepted: {out}");
        }
        assert_eq!(out["api"]["status"], 200, "the API answers: {out}");
        let body: Value =
            serde_json::from_str(out["api"]["body"].as_str().unwrap_or("")).unwrap_or(Value::Null);
        assert_eq!(body["description"], "OpenWhisk API", "{out}");

        // The instance's pasta goes with the server.
        let data_dir = s.data_dir();
        drop(s);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let left = pasta_processes_on(&data_dir);
            if left.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "pasta left running: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test]
    async fn a_restart_after_a_crash_stops_the_pasta_of_every_leftover_instance() {
        if let Some(why) = pasta_unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
        let Some(mut s) = runc_server("") else { return };
        create_hello(&s).await;
        let _ = result_of(&s, "hello", json!({})).await;
        let data_dir = s.data_dir();
        assert!(
            !pasta_processes_on(&data_dir).is_empty(),
            "a warm instance has its pasta"
        );
        s.sigkill();
        let orphans = pasta_processes_on(&data_dir);
        assert!(!orphans.is_empty(), "a crash leaves pasta behind");
        s.restart();
        // The restarted server may start prewarm instances of its own: only the orphans count.
        let left: Vec<i32> = pasta_processes_on(&data_dir)
            .into_iter()
            .filter(|pid| orphans.contains(pid))
            .collect();
        assert!(
            left.is_empty(),
            "pasta of the crashed run still running: {left:?}"
        );
        let hello = result_of(&s, "hello", json!({"name": "again"})).await;
        assert_eq!(hello, json!({"payload": "Hello, again!"}));
    }

    /// pids of pasta processes whose command line names `dir` (their pid file lives there).
    fn pasta_processes_on(dir: &Path) -> Vec<i32> {
        let needle = dir.to_string_lossy().into_owned();
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("pasta") && cmdline.contains(&needle) {
                out.push(pid);
            }
        }
        out
    }
}

#[cfg(test)]
mod process_backend {
    use super::*;

    /// Reports its uid and gid and what happens when it reads the store or lists the data
    /// directory (`params.data_dir`).
    const WHOAMI_PY: &str = r#"
import os

def attempt(f):
    try:
        return "read " + repr(f())[:80]
    except OSError as e:
        return "error " + (e.strerror or str(e))

def main(args):
    d = args["data_dir"]
    return {
        "uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups(),
        "store": attempt(lambda: open(os.path.join(d, "edgewhisk.db"), "rb").read(16)),
        "list": attempt(lambda: os.listdir(d)),
    }
"#;

    /// A server with `--isolation <isolation>` and `config_toml`, its data under Cargo's
    /// target temporary directory; `None` (after printing why) unless this test runs as root.
    fn root_server(config_toml: Option<&str>, isolation: &str) -> Option<ServerGuard> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: the unprivileged process user needs edgewhisk to run as root");
            return None;
        }
        Some(spawn_server_with(ServerOptions {
            config_toml,
            extra_args: &["--isolation", isolation],
            temp_parent: Some(Path::new(env!("CARGO_TARGET_TMPDIR"))),
            ..ServerOptions::default()
        }))
    }

    /// Runs [`WHOAMI_PY`] on `s` against its own data directory.
    async fn whoami(s: &ServerGuard) -> Value {
        create_action(s, "whoami", "python:3", WHOAMI_PY).await;
        let data_dir = s.data_dir();
        result_of(
            s,
            "whoami",
            json!({ "data_dir": data_dir.to_string_lossy() }),
        )
        .await
    }

    #[tokio::test]
    async fn as_root_the_process_backend_runs_actions_as_an_unprivileged_user() {
        let Some(s) = root_server(None, "process") else {
            return;
        };
        let out = whoami(&s).await;
        assert_eq!(out["uid"], 65534, "{out}");
        assert_eq!(out["euid"], 65534, "{out}");
        assert_eq!(out["gid"], 65534, "{out}");
        assert!(
            out["groups"]
                .as_array()
                .is_some_and(|g| !g.contains(&json!(0))),
            "no root group: {out}"
        );
        for what in ["store", "list"] {
            assert!(
                out[what]
                    .as_str()
                    .is_some_and(|r| r.starts_with("error Permission denied")),
                "{what} must be refused: {out}"
            );
        }
        // Node runs under that user too.
        create_hello(&s).await;
        let hello = result_of(&s, "hello", json!({"name": "nobody"})).await;
        assert_eq!(hello, json!({"payload": "Hello, nobody!"}));
    }

    #[tokio::test]
    async fn the_auto_fallback_to_processes_warns_and_still_drops_root() {
        // No runc where the config says: `auto` must fall back, loudly.
        let config = format!("{TEST_DEFAULTS}\n[runc]\nrunc = \"/nonexistent/runc\"\n");
        let Some(s) = root_server(Some(&config), "auto") else {
            return;
        };
        let log = s.log_tail();
        assert!(
            log.contains("FELL BACK to 'process' because no runc executable was found"),
            "{log}"
        );
        assert!(log.contains("NOT sandboxed"), "{log}");
        let out = whoami(&s).await;
        assert_eq!(out["uid"], 65534, "{out}");
        assert!(
            out["store"]
                .as_str()
                .is_some_and(|r| r.starts_with("error Permission denied")),
            "{out}"
        );
    }
}
