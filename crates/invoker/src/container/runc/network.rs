//! The `isolated` network of a runc instance: outbound access without the host's loopback or
//! link-local ranges, through `pasta` (package `passt`), a user-mode network stack made for
//! this.
//!
//! runc gives the instance a network namespace of its own. Once `runc run` has written the
//! instance's pid, the backend
//! 1. adds `prohibit` routes inside that namespace for the IPv4 link-local range and for every
//!    IPv4 address of the host (`ip -batch`, run by `nsenter`), so that neither a cloud
//!    metadata service nor a service bound to one of the host's addresses is reachable;
//! 2. starts `pasta` on the namespace (`--netns` given as an inherited fd, which also works
//!    when pasta has dropped its capabilities): it configures a tap interface with the host's
//!    address and gateway (`--config-net`), forwards no host port into the instance (`-t none
//!    -u none`), forwards only the platform's API port from the instance's loopback to the
//!    host's (`-T <port>`), and does not map the gateway address to the host (`--no-map-gw`).
//!    pasta forks into the background once the namespace is ready and writes its pid, which the
//!    backend kills when the instance goes.
//!
//! The instance's own loopback is its own: the host's `127.0.0.1` (an MQTT broker, a database)
//! is not reachable, except the API port, and actions reach the platform at
//! `http://127.0.0.1:<port>` (`__OW_API_HOST`). IPv4 only (`-4`): pasta would otherwise hand
//! the instance the host's IPv6 addresses without a way to refuse their link-local range.

use super::executable::find_executable;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where `pasta`, `ip` and `nsenter` are looked for.
pub(super) const TOOL_SEARCH_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long the instance may take to appear (runc writes its pid) and pasta to be ready.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the pid file is looked for while runc creates the instance.
const PID_POLL: Duration = Duration::from_millis(2);

/// File in the bundle that `runc run --pid-file` writes.
pub(super) const INIT_PID_FILE: &str = "init.pid";

/// File in the bundle where pasta writes its own pid.
pub(super) const PASTA_PID_FILE: &str = "pasta.pid";

/// Why the isolated network of an instance could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetworkSetupError {
    /// runc did not write the instance's pid in time.
    #[error("the instance did not start within {0:?}")]
    NoInstance(Duration),
    /// A tool could not be started or waited for.
    #[error("cannot run {tool}: {source}")]
    Spawn {
        /// `pasta`, `nsenter` or `ip`.
        tool: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// A tool ran and failed.
    #[error("{tool} failed: {message}")]
    Failed {
        /// `pasta`, `nsenter` or `ip`.
        tool: &'static str,
        /// What it printed.
        message: String,
    },
}

/// The executables the isolated network needs, found once per factory.
#[derive(Debug, Clone)]
pub(crate) struct NetworkTools {
    pasta: PathBuf,
    nsenter: PathBuf,
    ip: PathBuf,
}

impl NetworkTools {
    /// Finds `pasta` (`configured`, or by name when empty), `nsenter` and `ip`; `Err` names
    /// the first one missing.
    pub(crate) fn find(configured: &Path) -> Result<Self, &'static str> {
        let pasta = if configured.as_os_str().is_empty() {
            Path::new("pasta")
        } else {
            configured
        };
        Ok(Self {
            pasta: find_executable(pasta, TOOL_SEARCH_PATH).ok_or("pasta")?,
            nsenter: find_executable(Path::new("nsenter"), TOOL_SEARCH_PATH).ok_or("nsenter")?,
            ip: find_executable(Path::new("ip"), TOOL_SEARCH_PATH).ok_or("ip")?,
        })
    }
}

/// Waits until runc has written the instance's pid into `bundle`.
async fn instance_pid(bundle: &Path) -> Result<i32, NetworkSetupError> {
    let path = bundle.join(INIT_PID_FILE);
    let started = Instant::now();
    loop {
        if let Ok(text) = tokio::fs::read_to_string(&path).await {
            if let Ok(pid) = text.trim().parse::<i32>() {
                return Ok(pid);
            }
        }
        if started.elapsed() > SETUP_TIMEOUT {
            return Err(NetworkSetupError::NoInstance(SETUP_TIMEOUT));
        }
        tokio::time::sleep(PID_POLL).await;
    }
}

/// The host's IPv4 addresses outside loopback: each gets a `prohibit` route in the instance.
fn host_ipv4_addresses() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) else {
                continue;
            };
            let ip = sin.ip();
            if !ip.is_loopback() && !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

/// The `ip -batch` input refusing the link-local range and `host` addresses.
fn prohibit_routes(host: &[Ipv4Addr]) -> String {
    let mut batch = String::from("route add prohibit 169.254.0.0/16\n");
    for ip in host {
        if !IpAddr::V4(*ip).is_loopback() && !ip.is_link_local() {
            batch.push_str(&format!("route add prohibit {ip}/32\n"));
        }
    }
    batch
}

/// The pasta command line (after the executable) for an instance whose namespace is fd 3.
fn pasta_args(api_port: Option<u16>, pid_file: &Path) -> Vec<std::ffi::OsString> {
    let forward = api_port.map_or_else(|| "none".to_owned(), |p| p.to_string());
    let mut args: Vec<std::ffi::OsString> = [
        // Stay root (capabilities are dropped by pasta itself): as `nobody` it could no longer
        // open the namespace fd it was given.
        "--runas",
        "0:0",
        "--config-net",
        "--ipv4-only",
        "--no-map-gw",
        "--tcp-ports",
        "none",
        "--udp-ports",
        "none",
        "--udp-ns",
        "none",
        "--quiet",
        "--netns",
        "/proc/self/fd/3",
        "--tcp-ns",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(forward.into());
    args.push("--pid".into());
    args.push(pid_file.into());
    args
}

async fn run_tool(
    tool: &'static str,
    mut cmd: tokio::process::Command,
) -> Result<(), NetworkSetupError> {
    cmd.env_clear()
        .env("PATH", TOOL_SEARCH_PATH)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|source| NetworkSetupError::Spawn { tool, source })?;
    let out = tokio::time::timeout(SETUP_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| NetworkSetupError::Failed {
            tool,
            message: format!("no answer within {SETUP_TIMEOUT:?}"),
        })?
        .map_err(|source| NetworkSetupError::Spawn { tool, source })?;
    if out.status.success() {
        return Ok(());
    }
    // pasta also reports that it cannot reach syslog; keep only its own lines.
    let message = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("Failed to send"))
        .collect::<Vec<_>>()
        .join("; ");
    Err(NetworkSetupError::Failed { tool, message })
}

/// Sets up the isolated network of the instance runc is starting from `bundle`, and returns
/// pasta's pid (to kill when the instance goes).
pub(crate) async fn attach(
    tools: &NetworkTools,
    bundle: &Path,
    api_port: Option<u16>,
) -> Result<i32, NetworkSetupError> {
    let pid = instance_pid(bundle).await?;
    let netns = format!("/proc/{pid}/ns/net");

    let routes = bundle.join("routes");
    std::fs::File::create(&routes)
        .and_then(|mut f| f.write_all(prohibit_routes(&host_ipv4_addresses()).as_bytes()))
        .map_err(|source| NetworkSetupError::Spawn { tool: "ip", source })?;
    let mut ip = tokio::process::Command::new(&tools.nsenter);
    ip.arg(format!("--net={netns}"))
        .arg(&tools.ip)
        .arg("-batch")
        .arg(&routes);
    run_tool("ip", ip).await?;

    let ns = std::fs::File::open(&netns).map_err(|source| NetworkSetupError::Spawn {
        tool: "pasta",
        source,
    })?;
    let pid_file = bundle.join(PASTA_PID_FILE);
    let mut pasta = tokio::process::Command::new(&tools.pasta);
    pasta.args(pasta_args(api_port, &pid_file));
    {
        use command_fds::{CommandFdExt as _, FdMapping};
        pasta
            .as_std_mut()
            .fd_mappings(vec![FdMapping {
                parent_fd: ns.into(),
                child_fd: 3,
            }])
            .map_err(|e| NetworkSetupError::Spawn {
                tool: "pasta",
                source: std::io::Error::other(e),
            })?;
    }
    run_tool("pasta", pasta).await?;
    let text = std::fs::read_to_string(&pid_file).map_err(|source| NetworkSetupError::Spawn {
        tool: "pasta",
        source,
    })?;
    text.trim()
        .parse::<i32>()
        .map_err(|e| NetworkSetupError::Failed {
            tool: "pasta",
            message: format!("bad pid file: {e}"),
        })
}

/// Stops the pasta process whose pid `bundle` records, if it still runs (after a crash the
/// pid may belong to another process by now).
pub(crate) fn stop_pasta_of(bundle: &Path) {
    if let Ok(text) = std::fs::read_to_string(bundle.join(PASTA_PID_FILE)) {
        if let Ok(pid) = text.trim().parse::<i32>() {
            stop_pasta(pid, bundle);
        }
    }
}

/// Stops pasta `pid` if that process still is the pasta of `bundle`: its command line names
/// the bundle's pid file (pasta re-executes itself, so its name is not a reliable check).
pub(crate) fn stop_pasta(pid: i32, bundle: &Path) {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let pid_file = bundle.join(PASTA_PID_FILE);
    let ours = cmdline
        .split(|b| *b == 0)
        .any(|arg| arg == pid_file.as_os_str().as_encoded_bytes());
    if ours {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_refuse_link_local_and_every_host_address_but_loopback() {
        let batch = prohibit_routes(&[
            Ipv4Addr::new(192, 0, 2, 2),
            Ipv4Addr::new(10, 1, 2, 3),
            Ipv4Addr::new(169, 254, 1, 1),
        ]);
        assert_eq!(
            batch,
            "route add prohibit 169.254.0.0/16\nroute add prohibit 192.0.2.2/32\n\
             route add prohibit 10.1.2.3/32\n"
        );
    }

    #[test]
    fn pasta_forwards_only_the_api_port_and_never_into_the_instance() {
        let args: Vec<String> = pasta_args(Some(3233), Path::new("/b/pasta.pid"))
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let after = |flag: &str| {
            let i = args.iter().position(|a| a == flag).expect(flag);
            args[i + 1].clone()
        };
        assert_eq!(after("--tcp-ns"), "3233");
        assert_eq!(after("--udp-ns"), "none");
        assert_eq!(after("--tcp-ports"), "none");
        assert_eq!(after("--udp-ports"), "none");
        assert!(args.contains(&"--no-map-gw".to_owned()));
        let none: Vec<String> = pasta_args(None, Path::new("/p"))
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let i = none.iter().position(|a| a == "--tcp-ns").expect("flag");
        assert_eq!(none[i + 1], "none");
    }

    #[test]
    fn host_addresses_never_include_loopback() {
        assert!(host_ipv4_addresses().iter().all(|ip| !ip.is_loopback()));
    }
}
