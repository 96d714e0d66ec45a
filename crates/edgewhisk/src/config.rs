//! The server's configuration: one TOML file, one typed tree.
//!
//! Precedence is built-in defaults < the file named by `--config` < command-line flags. Every
//! key is listed with its default in `config/reference.toml`, which a test keeps equal to
//! [`Config::default`]. This is the only module that reads the process environment.

use anyhow::Context;
use edgewhisk_controller::config::ApiConfig;
use edgewhisk_invoker::PoolConfig;
use edgewhisk_invoker::container::process::ProcessUserConfig;
use edgewhisk_invoker::container::runc::RuncConfig;
use edgewhisk_store::StoreConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Which isolation backend runs action instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Isolation {
    /// `runc` when its binary is found and edgewhisk runs as root, else `process` (warned).
    Auto,
    /// Plain child processes: no isolation between actions (development).
    Process,
    /// OCI containers run by `runc`: namespaces, cgroup limits, read-only root.
    Runc,
}

/// `[server]`: process-level settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerConfig {
    /// Address to listen on.
    pub(crate) listen: SocketAddr,
    /// Data directory; empty means `<user data dir>/edgewhisk`.
    pub(crate) data_dir: PathBuf,
    /// Isolation backend.
    pub(crate) isolation: Isolation,
    /// On shutdown, how long in-flight activations may still finish, ms.
    pub(crate) shutdown_grace_ms: u64,
    /// Node.js executable for `nodejs:*` runners; empty means `node` found on `PATH`.
    pub(crate) node: PathBuf,
    /// Python 3 executable for `python:*` runners; empty means `/usr/bin/python3` when present,
    /// else `python3` on `PATH`.
    pub(crate) python: PathBuf,
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
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    /// Process-level settings.
    pub(crate) server: ServerConfig,
    /// REST API limits and throttles.
    pub(crate) api: ApiConfig,
    /// Container pool.
    pub(crate) pool: PoolConfig,
    /// Embedded store.
    pub(crate) store: StoreConfig,
    /// The runc isolation backend.
    pub(crate) runc: RuncConfig,
    /// The process backend's unprivileged user (when edgewhisk runs as root).
    pub(crate) process: ProcessUserConfig,
}

impl Config {
    /// Reads and validates `path`; a missing `path` gives the defaults.
    pub(crate) fn load(path: Option<&Path>) -> anyhow::Result<Self> {
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
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        self.api.validate().context("invalid [api] section")?;
        self.pool.validate().context("invalid [pool] section")?;
        self.store.validate().context("invalid [store] section")?;
        self.runc.validate().context("invalid [runc] section")?;
        self.process
            .validate()
            .context("invalid [process] section")?;
        Ok(())
    }

    /// The data directory, defaulted.
    pub(crate) fn data_dir(&self) -> PathBuf {
        if self.server.data_dir.as_os_str().is_empty() {
            dirs::data_dir()
                .unwrap_or_else(std::env::temp_dir)
                .join("edgewhisk")
        } else {
            self.server.data_dir.clone()
        }
    }

    /// The node executable, defaulted.
    pub(crate) fn node(&self) -> PathBuf {
        if self.server.node.as_os_str().is_empty() {
            find_on_path("node").unwrap_or_else(|| PathBuf::from("node"))
        } else {
            self.server.node.clone()
        }
    }

    /// The python executable, defaulted (Debian's starts ten times faster than a pyenv shim).
    pub(crate) fn python(&self) -> PathBuf {
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
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<Config>("[server]\nlisen = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
