//! What the host can see of a server's action instances, from outside the server: processes
//! (from `/proc`), their cgroup freezer state, runc's own container list, and files under the
//! data directory. Nothing here asks the server; a backend that hides its instances in an
//! unexpected way makes these helpers find less, never guess.

use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Most directory entries a bounded walk of a data directory visits.
const WALK_LIMIT: usize = 50_000;

/// Why the runc tests cannot run here, or `None` when they can (root, `runc` on `PATH`).
pub(crate) fn runc_unavailable() -> Option<String> {
    match effective_uid() {
        Some(0) => {}
        Some(euid) => {
            return Some(format!(
                "the runc backend needs root, running as euid {euid}"
            ));
        }
        None => return Some("cannot read the effective uid from /proc/self/status".to_owned()),
    }
    if runc_binary().is_none() {
        return Some("no runc executable on PATH".to_owned());
    }
    None
}

/// The effective uid of this process (second field of `Uid:` in `/proc/self/status`).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}

/// The `runc` executable found on `PATH`.
pub(crate) fn runc_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("runc"))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// One process, identified so that a recycled pid is never mistaken for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HostProcess {
    /// Host pid.
    pub(crate) pid: i32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub(crate) start: u64,
    /// Command line, NULs shown as spaces (for failure messages).
    pub(crate) cmdline: String,
    /// Target of `/proc/PID/ns/pid`, e.g. `pid:[4026531836]`.
    pub(crate) pid_ns: String,
}

impl HostProcess {
    /// Whether it runs in another pid namespace than this test (inside a container).
    pub(crate) fn is_contained(&self) -> bool {
        !self.pid_ns.is_empty() && self.pid_ns != pid_namespace("self")
    }
}

fn pid_namespace(pid: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `(state, ppid, start time)` of `pid` from `/proc/PID/stat`.
fn stat(pid: i32) -> Option<(char, i32, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; the fields follow the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let ppid = fields.get(1)?.parse().ok()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, ppid, start))
}

fn describe(pid: i32) -> Option<HostProcess> {
    let (_, _, start) = stat(pid)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default();
    Some(HostProcess {
        pid,
        start,
        cmdline,
        pid_ns: pid_namespace(&pid.to_string()),
    })
}

fn all_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Every process below `ancestor` (not `ancestor` itself).
pub(crate) fn descendants(ancestor: i32) -> Vec<HostProcess> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for pid in all_pids() {
        if let Some((_, ppid, _)) = stat(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut queue = VecDeque::from([ancestor]);
    let mut seen = HashSet::from([ancestor]);
    while let Some(pid) = queue.pop_front() {
        for &child in children.get(&pid).into_iter().flatten() {
            if seen.insert(child) {
                out.extend(describe(child));
                queue.push_back(child);
            }
        }
    }
    out
}

/// The server's own process tree plus every container runc lists with its bundle under the
/// data directory, with their process trees: everything a run of the server owns on the host
/// (`/proc/PID/root` cannot tell, it reads `/` for a pivoted container).
pub(crate) fn server_processes(server_pid: i32, data_dir: &Path) -> Vec<HostProcess> {
    let mut all = descendants(server_pid);
    for c in runc_containers(data_dir) {
        if c.pid == 0 {
            continue;
        }
        for p in describe(c.pid).into_iter().chain(descendants(c.pid)) {
            if !all.contains(&p) {
                all.push(p);
            }
        }
    }
    all
}

/// Whether `p` still runs (same pid and start time, not a zombie).
pub(crate) fn is_alive(p: &HostProcess) -> bool {
    stat(p.pid).is_some_and(|(state, _, start)| start == p.start && state != 'Z')
}

/// Whether the cgroup of `pid` is frozen (cgroup v1 freezer or v2 `cgroup.freeze`); `None`
/// when that cannot be read.
pub(crate) fn is_frozen(pid: i32) -> Option<bool> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "freezer") {
            let state =
                std::fs::read_to_string(format!("/sys/fs/cgroup/freezer{path}/freezer.state"));
            if let Ok(state) = state {
                return Some(state.trim() == "FROZEN");
            }
        }
    }
    for line in cgroups.lines() {
        if let Some(path) = line.strip_prefix("0::") {
            for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                if let Ok(events) = std::fs::read_to_string(format!("{base}{path}/cgroup.events")) {
                    return Some(events.lines().any(|l| l.trim() == "frozen 1"));
                }
            }
        }
    }
    None
}

/// One line of `runc list --format json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuncContainer {
    /// The `--root` it was listed from.
    pub(crate) root: PathBuf,
    /// Container id.
    pub(crate) id: String,
    /// Host pid of its init process (0 when stopped).
    pub(crate) pid: i32,
    /// `created`, `running`, `paused` or `stopped`.
    pub(crate) status: String,
    /// Bundle directory.
    pub(crate) bundle: String,
}

/// Containers runc knows of whose bundle lies under `dir`, from runc's default root and from
/// every runc state directory found under `dir` (a directory holding `<id>/state.json`).
pub(crate) fn runc_containers(dir: &Path) -> Vec<RuncContainer> {
    let Some(runc) = runc_binary() else {
        return Vec::new();
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let mut roots = vec![PathBuf::from("/run/runc")];
    for state in find_files(&dir, 6, |p| {
        p.file_name().is_some_and(|n| n == "state.json")
    }) {
        if let Some(root) = state.parent().and_then(Path::parent)
            && !roots.iter().any(|r| r == root)
        {
            roots.push(root.to_owned());
        }
    }
    let mut out = Vec::new();
    for root in roots {
        let Ok(output) = Command::new(&runc)
            .arg("--root")
            .arg(&root)
            .args(["list", "--format", "json"])
            .output()
        else {
            continue;
        };
        let listed: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        for c in listed.as_array().into_iter().flatten() {
            let bundle = c["bundle"].as_str().unwrap_or_default().to_owned();
            if !Path::new(&bundle).starts_with(&dir) {
                continue;
            }
            out.push(RuncContainer {
                root: root.clone(),
                id: c["id"].as_str().unwrap_or_default().to_owned(),
                pid: c["pid"]
                    .as_i64()
                    .and_then(|p| i32::try_from(p).ok())
                    .unwrap_or(0),
                status: c["status"].as_str().unwrap_or_default().to_owned(),
                bundle,
            });
        }
    }
    out
}

/// Regular files under `dir` (at most `depth` levels down, never crossing into another file
/// system, never following links, visiting at most [`WALK_LIMIT`] entries) that `keep` accepts.
pub(crate) fn find_files(dir: &Path, depth: usize, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut visited = 0;
    let mut queue = VecDeque::from([(dir.to_owned(), 0)]);
    while let Some((d, level)) = queue.pop_front() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            visited += 1;
            if visited > WALK_LIMIT {
                return found;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() && level < depth && meta.dev() == top.dev() {
                queue.push_back((path, level + 1));
            } else if meta.is_file() && keep(&path) {
                found.push(path);
            }
        }
    }
    found
}

/// Regular files under `dir` smaller than 1 MiB whose content contains `needle`.
pub(crate) fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    find_files(dir, 10, |p| {
        std::fs::metadata(p).is_ok_and(|m| m.len() < 1024 * 1024)
            && std::fs::read(p)
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}
