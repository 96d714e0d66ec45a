//! The runtime manifest of this server: which kinds it offers and what runs each.
//!
//! OpenWhisk reads its kinds from `runtimes.json`, one container image per kind. Here a kind is
//! an interpreter installed on the machine (Node.js, Python), edgewhisk's native runner
//! (`go:*`, `blackbox`) or the in-process WebAssembly engine (`wasm:wasi`). By default
//! ([`RuntimesConfig::discover`]) the interpreters are found on the machine and each is offered
//! under its OpenWhisk kind name: `nodejs:<major>` and `python:<major>.<minor>`, plus `python:3`
//! for the `python3` the server runs by default (actions created before kinds were discovered
//! are stored with it). `[[runtimes.kinds]]` adds kinds or replaces discovered ones.
//!
//! A kind is offered only when its interpreter answered `--version`: a kind whose interpreter is
//! missing is refused at create time with the list of those that are installed.

use crate::config::{Config, KindConfig, RuntimesConfig};
use edgewhisk_entity::{RunnerType, Runtime, RuntimeManifest};
use edgewhisk_invoker::PoolConfig;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long an interpreter may take to print its version before it is left out.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The native kinds (OpenWhisk's Go runtime versions, whose precompiled `exec` runs in the
/// action loop); the first is the family's default, as in OpenWhisk's `runtimes.json`.
const GO_KINDS: [&str; 4] = ["go:1.20", "go:1.21", "go:1.22", "go:1.23"];

/// The Wasm kind.
pub const WASM_KIND: &str = "wasm:wasi";

/// Whether this build runs WebAssembly actions.
pub const WASM_BUILT: bool = cfg!(feature = "wasm");

/// Where and as whom instances run, which decides which interpreters they can start.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstanceView {
    /// Instances see only the host's `/usr` (runc).
    pub only_usr: bool,
    /// The user and group instances run as, when not this process' own: interpreters are
    /// probed as them, so one they cannot read (under a private home directory) is left out.
    pub run_as: Option<(u32, u32)>,
}

impl InstanceView {
    /// Whether instances can see `path` at all.
    fn sees(&self, path: &Path) -> bool {
        !self.only_usr || visible_in_runc(path)
    }
}

/// The manifest `config` asks for on this machine, with interpreters looked for in
/// `search_dirs` (see [`crate::config::interpreter_search_dirs`]). An interpreter that
/// instances cannot see or run (`view`) is left out with a warning.
pub fn manifest(config: &Config, search_dirs: &[PathBuf], view: InstanceView) -> RuntimeManifest {
    let rc = &config.runtimes;
    let mut runtimes: Vec<Runtime> = Vec::new();
    if rc.discover {
        let mut node_first = vec![config.node()];
        node_first.extend(candidates(search_dirs, is_node_name));
        let mut python_first = vec![config.python()];
        python_first.extend(candidates(search_dirs, is_python_name));
        let probed = probe_all(&node_first, &python_first, view.run_as);
        runtimes.extend(interpreter_kinds(&probed, &|p: &Path| view.sees(p)));
    }
    for k in &rc.kinds {
        match configured(k, search_dirs) {
            Ok(rt)
                if rt.runner.needs_interpreter()
                    && version_text(&rt.executable, view.run_as).is_none() =>
            {
                tracing::warn!(kind = %rt.kind, executable = %rt.executable.display(),
                    "[[runtimes.kinds]]: the interpreter does not run (as the instances' user); \
                     kind not offered");
            }
            Ok(rt) if rt.runner.needs_interpreter() && !view.sees(&rt.executable) => {
                tracing::warn!(kind = %rt.kind, executable = %rt.executable.display(),
                    "[[runtimes.kinds]]: the interpreter is outside /usr, which isolated \
                     instances cannot see; kind not offered");
            }
            Ok(mut rt) => {
                if rt.runner.needs_interpreter() {
                    rt.version = version_text(&rt.executable, view.run_as)
                        .and_then(|t| parse_version(&t, &rt.family));
                }
                runtimes.retain(|r| r.kind != rt.kind);
                runtimes.push(rt);
            }
            Err(e) => tracing::warn!("[[runtimes.kinds]]: {e}; kind not offered"),
        }
    }
    runtimes.extend(fixed_kinds(rc));
    ensure_one_default_per_family(&mut runtimes);
    RuntimeManifest { runtimes }
}

/// The native and Wasm kinds `rc` asks for (they need no interpreter).
fn fixed_kinds(rc: &RuntimesConfig) -> Vec<Runtime> {
    let mut v = Vec::new();
    if rc.native {
        for (i, kind) in GO_KINDS.iter().enumerate() {
            v.push(Runtime::new(kind, RunnerType::Native, "", i == 0));
        }
        v.push(Runtime::new(
            edgewhisk_entity::exec::BLACKBOX_KIND,
            RunnerType::Native,
            "",
            false,
        ));
    }
    if rc.wasm && WASM_BUILT {
        v.push(Runtime::new(WASM_KIND, RunnerType::Wasm, "", true));
    }
    let configured: HashSet<String> = rc
        .kinds
        .iter()
        .map(|k| k.kind.to_ascii_lowercase())
        .collect();
    v.retain(|r| !configured.contains(&r.kind));
    v
}

/// A `[[runtimes.kinds]]` entry as a runtime.
fn configured(k: &KindConfig, search_dirs: &[PathBuf]) -> Result<Runtime, String> {
    let family = edgewhisk_entity::exec::family_of(&k.kind).to_ascii_lowercase();
    if !k.kind.contains(':') && k.kind != edgewhisk_entity::exec::BLACKBOX_KIND {
        return Err(format!("kind '{}' is not family:version", k.kind));
    }
    let runner = RunnerType::for_family(&family)
        .ok_or_else(|| format!("kind '{}': no runner for the family '{family}'", k.kind))?;
    if runner.needs_interpreter() && k.executable.as_os_str().is_empty() {
        return Err(format!("kind '{}' needs an executable", k.kind));
    }
    let executable = resolve(&k.executable, search_dirs);
    Ok(Runtime::new(&k.kind, runner, executable, k.default))
}

/// A bare name looked up in `search_dirs`; a path as given.
fn resolve(exe: &Path, search_dirs: &[PathBuf]) -> PathBuf {
    if exe.components().count() == 1 && !exe.as_os_str().is_empty() {
        for dir in search_dirs {
            let p = dir.join(exe);
            if p.is_file() {
                return p;
            }
        }
    }
    exe.to_path_buf()
}

/// `node`, `nodejs`, `node18`, `nodejs22`.
fn is_node_name(name: &str) -> bool {
    let rest = name
        .strip_prefix("nodejs")
        .or_else(|| name.strip_prefix("node"));
    rest.is_some_and(|r| r.bytes().all(|b| b.is_ascii_digit()))
}

/// `python3`, `python3.11`.
fn is_python_name(name: &str) -> bool {
    match name.strip_prefix("python3") {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('.')
            .is_some_and(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit())),
        None => false,
    }
}

/// Executables in `dirs` whose file name `wanted` accepts, in directory order.
fn candidates(dirs: &[PathBuf], wanted: fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| wanted(n))
            .collect();
        names.sort();
        found.extend(names.into_iter().map(|n| dir.join(n)));
    }
    found
}

/// What an interpreter said of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Probed {
    /// The path it was found at (what instances run).
    path: PathBuf,
    /// `nodejs` or `python`.
    family: &'static str,
    /// Its full version, e.g. `20.20.2` or `3.11.2`.
    version: String,
    /// Whether it is the server's configured `node`/`python3` (the first of its family).
    primary: bool,
}

/// Asks every distinct candidate (by canonical path) for its version, all at once.
fn probe_all(node: &[PathBuf], python: &[PathBuf], run_as: Option<(u32, u32)>) -> Vec<Probed> {
    let mut seen = HashSet::new();
    let mut jobs = Vec::new();
    for (family, list) in [("nodejs", node), ("python", python)] {
        for (i, path) in list.iter().enumerate() {
            let Ok(canonical) = std::fs::canonicalize(path) else {
                continue;
            };
            if !seen.insert(canonical) {
                // Still the primary when it is the same file as an earlier candidate.
                continue;
            }
            let path = path.clone();
            jobs.push(std::thread::spawn(move || {
                version_of(&path, family, run_as).map(|version| Probed {
                    path,
                    family,
                    version,
                    primary: i == 0,
                })
            }));
        }
    }
    jobs.into_iter()
        .filter_map(|j| j.join().ok().flatten())
        .collect()
}

/// `exe --version`, parsed: `v20.20.2` (Node.js) or `Python 3.11.2`.
fn version_of(exe: &Path, family: &str, run_as: Option<(u32, u32)>) -> Option<String> {
    let version = parse_version(&version_text(exe, run_as)?, family);
    if version.is_none() {
        tracing::debug!(interpreter = %exe.display(), "no version: left out");
    }
    version
}

/// What `exe --version` prints; `None` when it does not run, fails or takes longer than
/// [`PROBE_TIMEOUT`].
fn version_text(exe: &Path, run_as: Option<(u32, u32)>) -> Option<String> {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new(exe);
    if let Some((uid, gid)) = run_as {
        // As root, std drops the supplementary groups too when it sets the user.
        cmd.uid(uid).gid(gid);
    }
    let mut child = cmd
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < PROBE_TIMEOUT => {
                // A probe thread of its own (see `probe_all`), once at start: no async task
                // waits here.
                #[allow(clippy::disallowed_methods)]
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    // Python 2 and very old 3.x print the version on stderr.
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The version in a `--version` text.
fn parse_version(text: &str, family: &str) -> Option<String> {
    let line = text.lines().next()?.trim();
    let v = if family == "python" {
        line.strip_prefix("Python ")?
    } else {
        line.strip_prefix('v').unwrap_or(line)
    };
    let v = v.split_whitespace().next()?;
    let mut parts = v.split('.');
    let major = parts.next()?;
    if major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.to_owned())
}

/// The OpenWhisk kind of an interpreter version: `nodejs:20`, `python:3.11`.
fn kind_of(family: &str, version: &str) -> Option<String> {
    let mut parts = version.split('.');
    let major = parts.next()?;
    if family == "python" {
        let minor = parts.next()?;
        if major != "3" {
            return None;
        }
        let minor: String = minor.chars().take_while(char::is_ascii_digit).collect();
        Some(format!("python:3.{minor}"))
    } else {
        Some(format!("nodejs:{major}"))
    }
}

/// The kinds of the probed interpreters: the first interpreter of a kind wins; the server's own
/// `node`/`python3` is its family's default; `python:3` is the server's `python3`.
fn interpreter_kinds(probed: &[Probed], visible: &dyn Fn(&Path) -> bool) -> Vec<Runtime> {
    let mut out: Vec<Runtime> = Vec::new();
    let runner_of = |family: &str| {
        if family == "python" {
            RunnerType::Python
        } else {
            RunnerType::Nodejs
        }
    };
    // Primaries first, so they win their kind and become defaults.
    let mut ordered: Vec<&Probed> = probed.iter().filter(|p| p.primary).collect();
    ordered.extend(probed.iter().filter(|p| !p.primary));
    for p in ordered {
        if !visible(&p.path) {
            tracing::warn!(interpreter = %p.path.display(),
                "left out: instances cannot see it (isolated instances see only /usr)");
            continue;
        }
        let Some(kind) = kind_of(p.family, &p.version) else {
            continue;
        };
        if out.iter().any(|r| r.kind == kind) {
            continue;
        }
        let mut rt = Runtime::new(&kind, runner_of(p.family), &p.path, p.primary);
        rt.version = Some(p.version.clone());
        out.push(rt);
        if p.primary && p.family == "python" {
            let mut generic = Runtime::new("python:3", RunnerType::Python, &p.path, false);
            generic.version = Some(p.version.clone());
            out.push(generic);
        }
    }
    out.sort_by(|a, b| {
        (a.family.as_str(), version_key(&a.kind)).cmp(&(b.family.as_str(), version_key(&b.kind)))
    });
    out
}

/// Sorts `python:3` before `python:3.9` before `python:3.11`.
fn version_key(kind: &str) -> Vec<u32> {
    kind.split_once(':')
        .map(|(_, v)| v.split('.').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default()
}

/// Each family has exactly one default: the first marked one, else its newest kind.
fn ensure_one_default_per_family(runtimes: &mut [Runtime]) {
    let families: Vec<String> = runtimes.iter().map(|r| r.family.clone()).collect();
    for family in families {
        let marked: Vec<usize> = (0..runtimes.len())
            .filter(|&i| runtimes[i].family == family && runtimes[i].default)
            .collect();
        // Explicitly configured kinds come last in the list, so the last marked one wins.
        let keep = match marked.last() {
            Some(&i) => i,
            None => match (0..runtimes.len())
                .filter(|&i| runtimes[i].family == family)
                .max_by_key(|&i| version_key(&runtimes[i].kind))
            {
                Some(i) => i,
                None => continue,
            },
        };
        for (i, rt) in runtimes.iter_mut().enumerate() {
            if rt.family == family {
                rt.default = i == keep;
            }
        }
    }
}

/// `pool` with the stem cells of kinds not offered left out (warned): a stem cell of a kind
/// whose interpreter is missing would fail to start again and again.
pub fn offered_prewarm(pool: &PoolConfig, manifest: &RuntimeManifest) -> PoolConfig {
    let mut pool = pool.clone();
    pool.prewarm.retain(|p| {
        let offered = manifest
            .get(&p.kind)
            .is_some_and(|r| r.runner.needs_interpreter());
        if !offered {
            tracing::warn!(kind = %p.kind, "[[pool.prewarm]]: kind not offered by an interpreter here; no stem cells");
        }
        offered
    });
    pool
}

/// Whether runc instances can run `path`: they see the host's `/usr` (and `/bin`, `/lib`
/// through merged-/usr links) and nothing else of it.
pub fn visible_in_runc(path: &Path) -> bool {
    std::fs::canonicalize(path).is_ok_and(|p| p.starts_with("/usr"))
}

/// Logs the kinds offered, once at start.
pub fn log_offered(manifest: &RuntimeManifest) {
    let kinds: Vec<String> = manifest
        .runtimes
        .iter()
        .map(
            |r| match (&r.version, r.executable.as_os_str().is_empty()) {
                (Some(v), false) => format!("{} ({} {v})", r.kind, r.executable.display()),
                _ => r.kind.clone(),
            },
        )
        .collect();
    tracing::info!(kinds = %kinds.join(", "), "runtime kinds offered");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreter_names_are_recognised() {
        for yes in ["node", "nodejs", "node18", "nodejs22"] {
            assert!(is_node_name(yes), "{yes}");
        }
        for no in ["node-gyp", "nodemon", "node.js", "npm"] {
            assert!(!is_node_name(no), "{no}");
        }
        for yes in ["python3", "python3.11", "python3.9"] {
            assert!(is_python_name(yes), "{yes}");
        }
        for no in [
            "python3-config",
            "python3.11-config",
            "python",
            "python2.7",
            "python3.",
        ] {
            assert!(!is_python_name(no), "{no}");
        }
    }

    #[test]
    fn versions_become_openwhisk_kinds() {
        assert_eq!(
            parse_version("v20.20.2\n", "nodejs").as_deref(),
            Some("20.20.2")
        );
        assert_eq!(
            parse_version("Python 3.11.2\n", "python").as_deref(),
            Some("3.11.2")
        );
        assert_eq!(parse_version("garbage", "python"), None);
        assert_eq!(parse_version("", "nodejs"), None);
        assert_eq!(kind_of("nodejs", "20.20.2").as_deref(), Some("nodejs:20"));
        assert_eq!(kind_of("python", "3.11.2").as_deref(), Some("python:3.11"));
        assert_eq!(
            kind_of("python", "3.13.0rc1").as_deref(),
            Some("python:3.13")
        );
        assert_eq!(kind_of("python", "2.7.18"), None);
    }

    fn probed(path: &str, family: &'static str, version: &str, primary: bool) -> Probed {
        Probed {
            path: path.into(),
            family,
            version: version.into(),
            primary,
        }
    }

    #[test]
    fn the_first_interpreter_of_a_kind_wins_and_the_server_s_own_is_default() {
        let p = vec![
            probed("/usr/local/bin/python3.12", "python", "3.12.1", false),
            probed("/usr/bin/python3.11", "python", "3.11.2", false),
            probed("/usr/bin/python3", "python", "3.11.2", true),
            probed("/usr/bin/node", "nodejs", "20.1.0", true),
            probed("/opt/node22/bin/node", "nodejs", "22.3.0", false),
        ];
        let rts = interpreter_kinds(&p, &|_| true);
        let summary: Vec<(String, String, bool)> = rts
            .iter()
            .map(|r| {
                (
                    r.kind.clone(),
                    r.executable.display().to_string(),
                    r.default,
                )
            })
            .collect();
        let s = |k: &str, e: &str, d: bool| (k.to_owned(), e.to_owned(), d);
        assert_eq!(
            summary,
            vec![
                s("nodejs:20", "/usr/bin/node", true),
                s("nodejs:22", "/opt/node22/bin/node", false),
                s("python:3", "/usr/bin/python3", false),
                s("python:3.11", "/usr/bin/python3", true),
                s("python:3.12", "/usr/local/bin/python3.12", false),
            ]
        );
        let hidden = interpreter_kinds(&p, &|path| path.starts_with("/usr"));
        assert!(hidden.iter().all(|r| r.kind != "nodejs:22"));
    }

    #[test]
    fn every_family_gets_exactly_one_default() {
        let mut rts = vec![
            Runtime::new("python:3.11", RunnerType::Python, "/p", true),
            Runtime::new("python:3.12", RunnerType::Python, "/q", true),
            Runtime::new("nodejs:18", RunnerType::Nodejs, "/n", false),
            Runtime::new("nodejs:22", RunnerType::Nodejs, "/m", false),
        ];
        ensure_one_default_per_family(&mut rts);
        let defaults: Vec<&str> = rts
            .iter()
            .filter(|r| r.default)
            .map(|r| r.kind.as_str())
            .collect();
        assert_eq!(defaults, ["python:3.12", "nodejs:22"]);
    }

    fn configured_here(k: &KindConfig) -> Result<Runtime, String> {
        configured(k, &[])
    }

    #[test]
    fn configured_kinds_are_checked() {
        let k = |kind: &str, exe: &str| KindConfig {
            kind: kind.into(),
            executable: exe.into(),
            default: false,
        };
        assert!(configured_here(&k("python:3.12", "/opt/py/bin/python3")).is_ok());
        assert!(configured_here(&k("python:3.12", "")).is_err());
        assert!(configured_here(&k("cobol:1", "/x")).is_err());
        assert!(configured_here(&k("python", "/x")).is_err());
        assert_eq!(
            configured_here(&k("go:1.24", "")).map(|r| r.runner),
            Ok(RunnerType::Native)
        );
    }

    #[test]
    fn this_machine_offers_its_node_and_python() {
        let config = Config::default();
        let m = manifest(
            &config,
            &crate::config::interpreter_search_dirs(),
            InstanceView::default(),
        );
        let node = m.resolve("nodejs:default").expect("a node kind");
        assert!(node.version.is_some(), "{node:?}");
        assert!(m.get("python:3").is_some(), "{m:?}");
        let py = m.resolve("python:default").expect("a python kind");
        assert!(py.kind.starts_with("python:3."), "{py:?}");
        assert!(m.get("go:1.20").is_some_and(|g| g.default));
        assert!(m.get("blackbox").is_some());
    }
}
