//! The server's configuration: one TOML file, one typed tree; and the process environment.
//!
//! Precedence is built-in defaults < the file named by `--config` < command-line flags. Every
//! key is listed with its default in `config/reference.toml`, which a test keeps equal to
//! [`Config::default`].
//!
//! Every environment variable the crate reads is named in [`env`](mod@env), and this is the only module
//! that reads the environment itself. Variables that stand in for a flag are read by clap
//! (`#[arg(env = env::…)]` on the flag), which gives them their precedence (flag > variable >
//! file) and lists them in `--help`:
//!
//! | Variable          | Stands for                                   | Read by               |
//! |-------------------|----------------------------------------------|-----------------------|
//! | `EW_LISTEN`       | `serve --listen`                             | clap                  |
//! | `EW_DATA_DIR`     | `serve --data-dir`, `admin … --data-dir`     | clap                  |
//! | `EW_CONFIG`       | `serve --config`, `admin … --config`         | clap                  |
//! | `EW_TLS_CERT`     | `serve --tls-cert`                           | clap                  |
//! | `EW_TLS_KEY`      | `serve --tls-key`                            | clap                  |
//! | `EW_NATS`         | `serve --nats`                               | clap                  |
//! | `EW_POSTGRES`     | `serve --postgres`                           | clap                  |
//! | `WSK_CONFIG_FILE` | the CLI's properties file                    | clap                  |
//! | `WHISK_APIHOST`   | the CLI's API host (over `APIHOST`)          | clap                  |
//! | `WHISK_AUTH`      | the CLI's key (over `AUTH`)                  | clap                  |
//! | `EW_LOG`          | the server's log filter (default `info`)     | [`log_filter`]        |
//! | `PATH`            | where `node` and `python3` are found, and the interpreters offered as kinds | [`Config::node`], [`Config::python`], [`interpreter_search_dirs`] |
//! | `HOME`, `XDG_DATA_HOME`, `TMPDIR` | the default data directory and `~/.wskprops` | [`Config::data_dir`], [`wskprops_path`] |

use anyhow::Context;
use edgewhisk_controller::config::ApiConfig;
use edgewhisk_invoker::PoolConfig;
use edgewhisk_invoker::container::process::ProcessUserConfig;
use edgewhisk_invoker::container::runc::RuncConfig;
use edgewhisk_invoker::container::wasm::WasmConfig;
use edgewhisk_store::StoreConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Which isolation backend runs action instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// `runc` when its binary is found and edgewhisk runs as root, else `process` (warned).
    Auto,
    /// Plain child processes: no isolation between actions (development).
    Process,
    /// OCI containers run by `runc`: namespaces, cgroup limits, read-only root.
    Runc,
}

/// How the server writes its log lines (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (timestamp, level, target, fields, spans), for journald,
    /// Loki and other collectors.
    Json,
}

/// `[server]`: process-level settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory; empty means `<user data dir>/edgewhisk`.
    pub data_dir: PathBuf,
    /// Isolation backend.
    pub isolation: Isolation,
    /// On shutdown, how long in-flight activations may still finish, ms.
    pub shutdown_grace_ms: u64,
    /// Node.js executable for `nodejs:*` runners; empty means `node` found on `PATH`.
    pub node: PathBuf,
    /// Python 3 executable for `python:*` runners; empty means `/usr/bin/python3` when present,
    /// else `python3` on `PATH`.
    pub python: PathBuf,
    /// A client must send a complete request head within this long of the server waiting for
    /// one (slowloris), ms; also bounds the TLS handshake, and (as the wait starts when the
    /// previous response is sent) the idle time between requests.
    pub header_read_timeout_ms: u64,
    /// A connection waiting on its client (no request in flight, or a request body still
    /// arriving) is closed after this long without a byte, ms.
    pub idle_timeout_ms: u64,
    /// Most client connections open at once; 0 = the open-files limit minus `reserved_fds`,
    /// at most [`AUTO_MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// File descriptors kept out of the connection cap for runners, the store and logs.
    pub reserved_fds: usize,
    /// PEM certificate chain (leaf first) to serve HTTPS with; empty means plain HTTP. Set
    /// together with `tls_key`.
    pub tls_cert: PathBuf,
    /// PEM private key of `tls_cert`; empty means plain HTTP.
    pub tls_key: PathBuf,
    /// Log line format.
    pub log_format: LogFormat,
}

/// The ceiling of the automatic connection cap: each open connection holds roughly 16 KiB of
/// buffers, so this bounds their memory to about 64 MiB on a device with a large fd limit.
pub const AUTO_MAX_CONNECTIONS: usize = 4096;

/// An invalid `[server]` value.
#[derive(Debug, thiserror::Error)]
pub enum ServerConfigError {
    /// A timeout of 0 would close every connection at once.
    #[error("{0} must be greater than 0")]
    ZeroTimeout(&'static str),
    /// Fewer reserved descriptors than the store and one runner need.
    #[error("reserved_fds must be at least {MIN_RESERVED_FDS}, got {0}")]
    TooFewReservedFds(usize),
    /// Only one of the certificate and the key is set.
    #[error("tls_cert and tls_key must be set together")]
    TlsIncomplete,
}

/// The fewest descriptors `reserved_fds` may keep: the store, the log and a few runners.
const MIN_RESERVED_FDS: usize = 32;

impl ServerConfig {
    /// Checks the connection settings' ranges.
    pub fn validate(&self) -> Result<(), ServerConfigError> {
        if self.header_read_timeout_ms == 0 {
            return Err(ServerConfigError::ZeroTimeout("header_read_timeout_ms"));
        }
        if self.idle_timeout_ms == 0 {
            return Err(ServerConfigError::ZeroTimeout("idle_timeout_ms"));
        }
        if self.reserved_fds < MIN_RESERVED_FDS {
            return Err(ServerConfigError::TooFewReservedFds(self.reserved_fds));
        }
        if self.tls_cert.as_os_str().is_empty() != self.tls_key.as_os_str().is_empty() {
            return Err(ServerConfigError::TlsIncomplete);
        }
        Ok(())
    }

    /// Whether HTTPS is configured.
    pub fn tls(&self) -> bool {
        !self.tls_cert.as_os_str().is_empty()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3233)),
            data_dir: PathBuf::new(),
            isolation: Isolation::Auto,
            shutdown_grace_ms: 10_000,
            node: PathBuf::new(),
            python: PathBuf::new(),
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 5_000,
            max_connections: 0,
            reserved_fds: 256,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            log_format: LogFormat::Text,
        }
    }
}

/// Which parts of edgewhisk this process runs (`serve --role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Controller and invoker in one process: the lean mode (with SQLite when no `nats` and
    /// `postgres` are set), or one machine of a cluster that serves the API and runs actions.
    All,
    /// The REST API, authentication, throttles, sequences, feeds and load balancing; any
    /// number of them behind an HTTP load balancer. Needs `nats` and `postgres`.
    Controller,
    /// Runs action instances for the controllers; one per machine. Needs `nats` and
    /// `postgres`, serves no API.
    Invoker,
}

impl Role {
    /// Whether this role serves the REST API.
    pub fn controls(self) -> bool {
        matches!(self, Role::All | Role::Controller)
    }

    /// Whether this role runs action instances.
    pub fn invokes(self) -> bool {
        matches!(self, Role::All | Role::Invoker)
    }
}

/// `[cluster]`: the role of this process and the cluster's backends. With neither `nats` nor
/// `postgres` set (the default), edgewhisk runs in the lean mode: one process, SQLite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// What this process runs.
    pub role: Role,
    /// NATS server URL(s) (`nats://host:4222`, comma separated); empty in the lean mode.
    pub nats: String,
    /// PostgreSQL connection URL (`postgres://user:password@host/db`); empty in the lean mode.
    pub postgres: String,
    /// This invoker's number, unique in the cluster: `invoker0`, `invoker1`, … in
    /// `GET /invokers`. The home invoker of an action is computed over these numbers.
    pub invoker_id: u32,
    /// Prefix of every NATS subject, so that clusters can share one NATS server.
    pub subject_prefix: String,
}

/// Why `[cluster]` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClusterConfigError {
    /// A controller or invoker role without the cluster backends.
    #[error("role '{0}' needs both nats and postgres (--nats, --postgres)")]
    BackendsMissing(&'static str),
    /// Only one of the two backends is set.
    #[error("nats and postgres must be set together (the cluster needs both)")]
    HalfCluster,
    /// The subject prefix is empty or not a NATS token.
    #[error("subject_prefix must be letters, digits, '-' or '_', got '{0}'")]
    BadPrefix(String),
}

impl ClusterConfig {
    /// Whether the cluster backends (NATS and PostgreSQL) are configured.
    pub fn clustered(&self) -> bool {
        !self.nats.is_empty() && !self.postgres.is_empty()
    }

    /// Checks that the role has what it needs.
    pub fn validate(&self) -> Result<(), ClusterConfigError> {
        if self.nats.is_empty() != self.postgres.is_empty() {
            return Err(ClusterConfigError::HalfCluster);
        }
        let role = match self.role {
            Role::All => None,
            Role::Controller => Some("controller"),
            Role::Invoker => Some("invoker"),
        };
        if let (Some(role), false) = (role, self.clustered()) {
            return Err(ClusterConfigError::BackendsMissing(role));
        }
        let token = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if self.subject_prefix.is_empty() || !self.subject_prefix.chars().all(token) {
            return Err(ClusterConfigError::BadPrefix(self.subject_prefix.clone()));
        }
        Ok(())
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            role: Role::All,
            nats: String::new(),
            postgres: String::new(),
            invoker_id: 0,
            subject_prefix: "edgewhisk".to_owned(),
        }
    }
}

/// `[metrics]`: what the unauthenticated `GET /metrics` may show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Per-action series with `namespace` and `action` labels (as OpenWhisk's user events
    /// have), and refusals by namespace. Off: series carry only the runtime kind and status,
    /// so that a scrape, which needs no key, names no namespace or action.
    pub namespace_labels: bool,
}

/// One kind of `[[runtimes.kinds]]`: offered beside (or instead of) a discovered one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindConfig {
    /// The kind, `family:version` (`python:3.12`, `nodejs:22`); the family chooses the runner
    /// (`nodejs`, `python`, `go`, `blackbox`, `wasm`).
    pub kind: String,
    /// The interpreter of a `nodejs` or `python` kind (an absolute path, or a name looked up on
    /// `PATH`).
    #[serde(default)]
    pub executable: PathBuf,
    /// Whether it is its family's default (what `family:default` resolves to).
    #[serde(default)]
    pub default: bool,
}

/// `[runtimes]`: which kinds the server offers (OpenWhisk's runtime manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimesConfig {
    /// Find the Node.js and Python interpreters installed on this machine and offer each under
    /// its OpenWhisk kind (`nodejs:20`, `python:3.11`, and `python:3` for `python3`).
    pub discover: bool,
    /// Offer the native kinds: `go:1.20` … `go:1.23` (OpenWhisk's action loop) and `blackbox`
    /// with the `openwhisk/dockerskeleton` image.
    pub native: bool,
    /// Offer `wasm:wasi` (WebAssembly in-process), when this build has it.
    pub wasm: bool,
    /// Kinds added to the discovered ones; one with a discovered kind's name replaces it.
    pub kinds: Vec<KindConfig>,
}

impl Default for RuntimesConfig {
    fn default() -> Self {
        Self {
            discover: true,
            native: true,
            wasm: true,
            kinds: Vec::new(),
        }
    }
}

/// The name of the store's database file in the data directory.
const DB_FILE: &str = "edgewhisk.db";

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Process-level settings.
    pub server: ServerConfig,
    /// REST API limits and throttles.
    pub api: ApiConfig,
    /// Container pool.
    pub pool: PoolConfig,
    /// Embedded store.
    pub store: StoreConfig,
    /// The runc isolation backend.
    pub runc: RuncConfig,
    /// The process backend's unprivileged user (when edgewhisk runs as root).
    pub process: ProcessUserConfig,
    /// The in-process WebAssembly backend (`wasm:*` kinds).
    pub wasm: WasmConfig,
    /// Role and cluster backends.
    pub cluster: ClusterConfig,
    /// What `GET /metrics` shows.
    pub metrics: MetricsConfig,
    /// The runtime kinds offered.
    pub runtimes: RuntimesConfig,
}

impl Config {
    /// Reads and validates `path`; a missing `path` gives the defaults.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let config: Config = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading config file {}", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing config file {}", p.display()))?
            }
            None => Config::default(),
        };
        Ok(config)
    }

    /// Checks every section's ranges.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.server.validate().context("invalid [server] section")?;
        self.api.validate().context("invalid [api] section")?;
        self.pool.validate().context("invalid [pool] section")?;
        self.store.validate().context("invalid [store] section")?;
        self.runc.validate().context("invalid [runc] section")?;
        self.process
            .validate()
            .context("invalid [process] section")?;
        self.wasm.validate().context("invalid [wasm] section")?;
        self.cluster
            .validate()
            .context("invalid [cluster] section")?;
        Ok(())
    }

    /// The data directory, defaulted.
    pub fn data_dir(&self) -> PathBuf {
        if self.server.data_dir.as_os_str().is_empty() {
            dirs::data_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("edgewhisk")
        } else {
            self.server.data_dir.clone()
        }
    }

    /// The store's database file in the data directory.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join(DB_FILE)
    }

    /// The store's files: the database and SQLite's write-ahead log and shared-memory files
    /// beside it (which exist only while the store is open, or after a crash).
    pub fn db_files(&self) -> [PathBuf; 3] {
        let db = self.db_path();
        let beside = |suffix: &str| {
            let mut name = db.clone().into_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };
        [db.clone(), beside("-wal"), beside("-shm")]
    }

    /// The node executable, defaulted.
    pub fn node(&self) -> PathBuf {
        if self.server.node.as_os_str().is_empty() {
            find_on_path("node").unwrap_or_else(|| PathBuf::from("node"))
        } else {
            self.server.node.clone()
        }
    }

    /// The python executable, defaulted (Debian's starts ten times faster than a pyenv shim).
    pub fn python(&self) -> PathBuf {
        if !self.server.python.as_os_str().is_empty() {
            return self.server.python.clone();
        }
        let debian = PathBuf::from("/usr/bin/python3");
        if debian.exists() {
            return debian;
        }
        find_on_path("python3").unwrap_or_else(|| PathBuf::from("python3"))
    }
}

/// The names of the environment variables the crate reads (see the table above).
pub mod env {
    /// `edgewhisk serve --listen`.
    pub const LISTEN: &str = "EW_LISTEN";
    /// `--data-dir` of `edgewhisk serve` and `edgewhisk admin`.
    pub const DATA_DIR: &str = "EW_DATA_DIR";
    /// `--config` of `edgewhisk serve` and `edgewhisk admin`.
    pub const CONFIG: &str = "EW_CONFIG";
    /// `edgewhisk serve --tls-cert`.
    pub const TLS_CERT: &str = "EW_TLS_CERT";
    /// `edgewhisk serve --tls-key`.
    pub const TLS_KEY: &str = "EW_TLS_KEY";
    /// `edgewhisk serve --nats`.
    pub const NATS: &str = "EW_NATS";
    /// `edgewhisk serve --postgres` (and `edgewhisk admin --postgres`).
    pub const POSTGRES: &str = "EW_POSTGRES";
    /// The server's log filter (`tracing` directives, e.g. `warn` or `edgewhisk_invoker=debug`).
    pub const LOG: &str = "EW_LOG";
    /// The CLI's properties file, as `wsk` reads it.
    pub const WSK_CONFIG_FILE: &str = "WSK_CONFIG_FILE";
    /// The CLI's API host, over the properties file's `APIHOST`.
    pub const WHISK_APIHOST: &str = "WHISK_APIHOST";
    /// The CLI's `uuid:key`, over the properties file's `AUTH`.
    pub const WHISK_AUTH: &str = "WHISK_AUTH";
}

/// The server's log filter: [`env::LOG`] when it parses, else `info`.
pub fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env(env::LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// The CLI's default properties file, `~/.wskprops`; `None` without a home directory.
pub fn wskprops_path() -> Option<PathBuf> {
    dirs::home_dir().map(|h| h.join(".wskprops"))
}

/// Where installed interpreters are looked for: the absolute directories of `PATH` (without
/// version-manager shim directories, whose shims are slow scripts that resolve a version per
/// call), then `/usr/local/bin`, `/usr/bin` and `/bin`, each once.
pub fn interpreter_search_dirs() -> Vec<PathBuf> {
    let from_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in from_path
        .into_iter()
        .chain(["/usr/local/bin", "/usr/bin", "/bin"].map(PathBuf::from))
    {
        if dir.is_absolute() && !dir.ends_with("shims") && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_toml_equals_the_defaults() {
        let text = include_str!("../../../config/reference.toml");
        let parsed: Config = toml::from_str(text).expect("reference.toml parses");
        assert_eq!(parsed, Config::default());
        parsed.validate().expect("defaults are valid");
    }

    #[test]
    fn the_store_files_are_the_database_and_its_wal_and_shm_in_the_data_dir() {
        let mut config = Config::default();
        config.server.data_dir = PathBuf::from("/srv/ew");
        assert_eq!(config.db_path(), Path::new("/srv/ew/edgewhisk.db"));
        assert_eq!(
            config.db_files(),
            ["edgewhisk.db", "edgewhisk.db-wal", "edgewhisk.db-shm"]
                .map(|f| Path::new("/srv/ew").join(f))
        );
    }

    #[test]
    fn a_cluster_role_needs_both_backends_and_the_lean_mode_neither() {
        let mut cluster = ClusterConfig::default();
        assert_eq!(cluster.validate(), Ok(()));
        assert!(!cluster.clustered());
        cluster.role = Role::Invoker;
        assert_eq!(
            cluster.validate(),
            Err(ClusterConfigError::BackendsMissing("invoker"))
        );
        cluster.nats = "nats://127.0.0.1:4222".into();
        assert_eq!(cluster.validate(), Err(ClusterConfigError::HalfCluster));
        cluster.postgres = "postgres://edgewhisk@127.0.0.1/edgewhisk".into();
        assert_eq!(cluster.validate(), Ok(()));
        cluster.role = Role::All;
        assert_eq!(
            cluster.validate(),
            Ok(()),
            "one machine of a cluster runs both"
        );
        cluster.subject_prefix = "a.b".into();
        assert_eq!(
            cluster.validate(),
            Err(ClusterConfigError::BadPrefix("a.b".into()))
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Config>("[server]\nlisen = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
