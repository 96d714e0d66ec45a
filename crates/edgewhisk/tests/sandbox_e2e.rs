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
