//! What the bench measures: an edgewhisk server (the one named by `.wskprops`/flags, or one it
//! spawns with `--spawn`) and the baseline, a bare Node.js `http` server running the same
//! function. Both are child processes the bench owns when it started them: they get a temp
//! directory, print their address on stdout, and are stopped with SIGTERM (then SIGKILL).

use anyhow::{Context, bail};
use base64::Engine as _;
use edgewhisk_client::{Client, Url};
use reqwest::header::HeaderValue;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// The baseline server script, written next to the action file at run time.
const BASELINE_JS: &str = include_str!("baseline.js");

/// How long a child may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a child may take to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A private scratch directory, removed on drop.
#[derive(Debug)]
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    /// A fresh directory under the system temp dir named after `label`.
    pub(crate) fn new(label: &str) -> anyhow::Result<Self> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "edgewhisk-bench-{label}-{}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating scratch directory {}", dir.display()))?;
        Ok(Self(dir))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server child process that announced `http://ADDR` on stdout.
#[derive(Debug)]
pub(crate) struct ChildServer {
    child: Child,
    /// `http://ADDR`.
    pub(crate) base: Url,
    name: &'static str,
}

impl ChildServer {
    /// Starts `cmd` and waits for a stdout line `<prefix>http://ADDR`.
    pub(crate) async fn start(
        name: &'static str,
        mut cmd: Command,
        prefix: &str,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("creating log file {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take().context("child stdout is piped")?;
        let mut lines = BufReader::new(stdout).lines();
        let wait = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix(prefix) {
                    return Ok::<_, anyhow::Error>(Some(url.trim().to_owned()));
                }
            }
            Ok(None)
        };
        let url = match tokio::time::timeout(START_TIMEOUT, wait).await {
            Ok(Ok(Some(url))) => url,
            Ok(Ok(None)) => bail!(
                "{name} exited before listening; its log: {}",
                read_tail(log)
            ),
            Ok(Err(e)) => return Err(e.context(format!("reading {name}'s stdout"))),
            Err(_) => bail!("{name} did not listen within {START_TIMEOUT:?}"),
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let base = Url::parse(&url).with_context(|| format!("{name} printed a bad URL {url}"))?;
        Ok(Self { child, base, name })
    }

    /// SIGTERM, wait, then SIGKILL if it is still there.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(STOP_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            eprintln!(
                "{} ignored SIGTERM for {STOP_TIMEOUT:?}; killing it",
                self.name
            );
            self.child.kill().await.context("killing a child server")?;
        }
        Ok(())
    }
}

fn read_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or_default().to_owned()
}

/// Settings of a spawned `edgewhisk serve`.
#[derive(Debug, Clone)]
pub(crate) struct ServeSettings {
    /// `[pool] user_memory_mb`.
    pub(crate) user_memory_mb: u64,
    /// Stem cells: (kind, count), 256 MB each.
    pub(crate) prewarm: Vec<(String, u32)>,
    /// `--isolation` value; `None` = the server's default.
    pub(crate) isolation: Option<String>,
}

impl ServeSettings {
    /// The config file: throttles raised so the bench measures the platform, not its limits.
    pub(crate) fn config_toml(&self) -> String {
        let mut s = String::from(
            "[server]\nshutdown_grace_ms = 2000\n\n[api]\ninvocations_per_minute = 1000000000\n\
             concurrent_invocations = 1000000\n\n[pool]\n",
        );
        let _ = writeln!(s, "user_memory_mb = {}", self.user_memory_mb);
        if self.prewarm.is_empty() {
            s.push_str("prewarm = []\n");
        }
        for (kind, count) in &self.prewarm {
            let _ = write!(
                s,
                "\n[[pool.prewarm]]\nkind = \"{kind}\"\ncount = {count}\nmemory_mb = 256\n"
            );
        }
        s
    }
}

/// An edgewhisk server to measure, and the means to talk to it.
#[derive(Debug)]
pub(crate) struct Platform {
    /// Typed client (create/delete actions, warm-up).
    pub(crate) client: Client,
    /// Base URL.
    pub(crate) base: Url,
    /// `Authorization` header for the load generator.
    pub(crate) auth: Option<HeaderValue>,
    /// The server process, when the bench spawned it.
    server: Option<(ChildServer, ScratchDir)>,
}

impl Platform {
    /// The server named by `.wskprops`/flags: `apihost` and `auth` (`uuid:key`).
    pub(crate) fn external(apihost: &str, auth: &str, insecure: bool) -> anyhow::Result<Self> {
        let client = Client::new(apihost, auth, insecure).context("bench API host")?;
        let base = client.base_url().clone();
        Ok(Self {
            client,
            base,
            auth: basic_auth(auth)?,
            server: None,
        })
    }

    /// Starts the current executable as `edgewhisk serve` on a loopback port with a temp data dir.
    pub(crate) async fn spawn(settings: &ServeSettings) -> anyhow::Result<Self> {
        let (server, dir) =
            spawn_serve("edgewhisk serve", &settings.config_toml(), settings, &[]).await?;
        Self::over(server, dir)
    }

    /// The API of a server the bench started, with the guest key every fresh store provisions.
    pub(crate) fn over(server: ChildServer, dir: ScratchDir) -> anyhow::Result<Self> {
        let auth = edgewhisk_entity::identity::GUEST_AUTH;
        let client = Client::new(server.base.as_str(), auth, false).context("spawned server")?;
        Ok(Self {
            client,
            base: server.base.clone(),
            auth: basic_auth(auth)?,
            server: Some((server, dir)),
        })
    }

    /// The spawned server's pid.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(|(s, _)| s.child.id())
    }

    /// URL of a blocking, result-only invoke of `action` in the default namespace.
    pub(crate) fn invoke_url(&self, action: &str) -> anyhow::Result<Url> {
        let mut url = self
            .base
            .join(&format!("api/v1/namespaces/_/actions/{action}"))?;
        url.set_query(Some("blocking=true&result=true"));
        Ok(url)
    }

    /// Stops the server if the bench started it.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        if let Some((server, _dir)) = self.server {
            server.stop().await?;
        }
        Ok(())
    }
}

/// Starts the current executable as `edgewhisk serve` on a loopback port, with a temp data
/// dir and `config` as its config file, `settings.isolation` and then `args` as extra flags
/// (`--role invoker …` for a cluster process). `name` labels it in errors.
pub(crate) async fn spawn_serve(
    name: &'static str,
    config: &str,
    settings: &ServeSettings,
    args: &[String],
) -> anyhow::Result<(ChildServer, ScratchDir)> {
    let dir = ScratchDir::new("serve")?;
    let config_path = dir.path().join("bench.toml");
    std::fs::write(&config_path, config)
        .with_context(|| format!("writing {}", config_path.display()))?;
    let exe = std::env::current_exe().context("locating the edgewhisk executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config_path)
        .env("EW_LOG", "warn");
    if let Some(iso) = &settings.isolation {
        cmd.arg("--isolation").arg(iso);
    }
    cmd.args(args);
    let server = ChildServer::start(
        name,
        cmd,
        "edgewhisk: listening on ",
        &dir.path().join("serve.log"),
    )
    .await?;
    Ok((server, dir))
}

fn basic_auth(auth: &str) -> anyhow::Result<Option<HeaderValue>> {
    if auth.is_empty() {
        return Ok(None);
    }
    let token = base64::engine::general_purpose::STANDARD.encode(auth);
    Ok(Some(
        HeaderValue::from_str(&format!("Basic {token}")).context("auth header")?,
    ))
}

/// The bare Node.js server running `action_code`.
#[derive(Debug)]
pub(crate) struct Baseline {
    server: ChildServer,
    _dir: ScratchDir,
}

impl Baseline {
    /// Starts `node baseline.js ACTION` with `node`.
    pub(crate) async fn start(node: &Path, action_code: &str) -> anyhow::Result<Self> {
        let dir = ScratchDir::new("baseline")?;
        let script = dir.path().join("baseline.js");
        let action = dir.path().join("action.js");
        std::fs::write(&script, BASELINE_JS).context("writing baseline.js")?;
        std::fs::write(&action, action_code).context("writing the baseline action")?;
        let mut cmd = Command::new(node);
        cmd.arg(&script).arg(&action);
        let server = ChildServer::start(
            "baseline node server",
            cmd,
            "baseline: listening on ",
            &dir.path().join("baseline.log"),
        )
        .await?;
        Ok(Self { server, _dir: dir })
    }

    /// The URL every request goes to.
    pub(crate) fn url(&self) -> Url {
        self.server.base.clone()
    }

    /// Stops the server.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_raises_throttles_and_lists_stem_cells() {
        let s = ServeSettings {
            user_memory_mb: 768,
            prewarm: vec![("nodejs:20".into(), 1), ("python:3".into(), 2)],
            isolation: None,
        };
        let text = s.config_toml();
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(v["pool"]["user_memory_mb"].as_integer(), Some(768));
        assert_eq!(v["pool"]["prewarm"][1]["kind"].as_str(), Some("python:3"));
        assert_eq!(v["pool"]["prewarm"][1]["count"].as_integer(), Some(2));
        assert!(v["api"]["invocations_per_minute"].as_integer().unwrap() >= 1_000_000);
    }

    #[test]
    fn config_without_stem_cells_disables_prewarm() {
        let s = ServeSettings {
            user_memory_mb: 256,
            prewarm: vec![],
            isolation: None,
        };
        let v: toml::Value = toml::from_str(&s.config_toml()).unwrap();
        assert_eq!(v["pool"]["prewarm"].as_array().map(Vec::len), Some(0));
    }

    #[test]
    fn basic_auth_encodes_the_key() {
        let h = basic_auth("user:pass").unwrap().unwrap();
        assert_eq!(h.to_str().unwrap(), "Basic dXNlcjpwYXNz");
        assert!(basic_auth("").unwrap().is_none());
    }
}
