//! `edgewhisk serve`: controller and invoker in one process (lean mode), started by
//! [`Server::start`] (which tests also call in-process).
//!
//! Wiring: SQLite store (entities behind a cache, activations through the group-committing
//! writer) → invoker with the configured isolation backend (`runc` or `process`) → lean
//! balancer → controller state, with the alarm and MQTT feed service → controller router →
//! the accept loop (`connections`, optionally behind TLS). Shutdown ([`Server::shutdown`],
//! on SIGINT/SIGTERM for `edgewhisk serve`): stop accepting, stop the feeds, let in-flight
//! activations finish (or fail them with a record) within the grace period, kill every
//! runner, flush the store.

mod cluster;
mod connections;
mod exposure;
mod fd_limit;
mod lean;
pub mod lock;
mod parts;
mod stores;
mod tls;

use crate::config::{Config, Isolation, LogFormat, Role, env};
use crate::runtimes;
use anyhow::Context;
use edgewhisk_entity::RuntimeManifest;
use edgewhisk_invoker::Invoker;
use edgewhisk_invoker::container::ContainerFactory;
use edgewhisk_invoker::container::process::{ProcessConfig, ProcessFactory};
use edgewhisk_invoker::container::runc::{RuncFactory, runc_available};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `edgewhisk serve`; each overrides the config file.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:3233].
    #[arg(long, env = env::LISTEN)]
    listen: Option<SocketAddr>,
    /// Data directory (SQLite store, unpacked action code) [default: user data dir].
    #[arg(long, env = env::DATA_DIR)]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (keys: config/reference.toml).
    #[arg(long, env = env::CONFIG)]
    config: Option<PathBuf>,
    /// Isolation backend for action instances.
    #[arg(long, value_enum)]
    isolation: Option<Isolation>,
    /// PEM certificate chain to serve HTTPS with (with --tls-key).
    #[arg(long, env = env::TLS_CERT)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = env::TLS_KEY)]
    tls_key: Option<PathBuf>,
    /// What this process runs: the API and the action instances (`all`, the default), or
    /// one part of a cluster.
    #[arg(long, value_enum)]
    role: Option<Role>,
    /// NATS server URL of the cluster (with --postgres).
    #[arg(long, env = env::NATS)]
    nats: Option<String>,
    /// PostgreSQL URL of the cluster's store (with --nats).
    #[arg(long, env = env::POSTGRES)]
    postgres: Option<String>,
    /// This invoker's number, unique in the cluster.
    #[arg(long)]
    invoker_id: Option<u32>,
    /// Log line format on stderr.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

impl ServeArgs {
    /// The configuration: the `--config` file (or the defaults) with the flags applied.
    pub fn config(self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(listen) = self.listen {
            config.server.listen = listen;
        }
        if let Some(dir) = self.data_dir {
            config.server.data_dir = dir;
        }
        if let Some(iso) = self.isolation {
            config.server.isolation = iso;
        }
        if let Some(cert) = self.tls_cert {
            config.server.tls_cert = cert;
        }
        if let Some(key) = self.tls_key {
            config.server.tls_key = key;
        }
        if let Some(role) = self.role {
            config.cluster.role = role;
        }
        if let Some(nats) = self.nats {
            config.cluster.nats = nats;
        }
        if let Some(postgres) = self.postgres {
            config.cluster.postgres = postgres;
        }
        if let Some(id) = self.invoker_id {
            config.cluster.invoker_id = id;
        }
        if let Some(format) = self.log_format {
            config.server.log_format = format;
        }
        Ok(config)
    }
}

/// `edgewhisk serve` with `config` (from [`ServeArgs::config`]): starts the server, prints the
/// line scripts wait for, and runs until SIGINT or SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let server = Server::start(config).await?;
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("edgewhisk: listening on {}", server.url());
    shutdown_signal().await;
    tracing::info!("shutdown requested: finishing in-flight activations");
    server.shutdown().await?;
    tracing::info!("edgewhisk stopped");
    Ok(())
}

/// A running server: accepting connections on [`Server::addr`] until [`Server::shutdown`].
///
/// Dropping it without `shutdown` also stops the server, in the background.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    tls: bool,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Validates `config`, opens (and on the first start provisions) the store in the data
    /// directory, binds the listener, starts the invoker with the configured isolation backend,
    /// the feeds and the REST API, and returns once connections are accepted. Must be called
    /// inside a Tokio runtime, which then runs the server.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        // Before anything opens files, so runners and the store share the raised limit.
        let nofile = fd_limit::raise_nofile_limit();
        let max_connections = fd_limit::connection_cap(
            config.server.max_connections,
            nofile,
            config.server.reserved_fds,
        );

        // Before anything else starts, so a bad certificate stops the server at once.
        let tls = if config.server.tls() {
            let acceptor = tls::acceptor(&config.server.tls_cert, &config.server.tls_key)?;
            Some(acceptor)
        } else {
            None
        };

        let stores = stores::open(&config).await?;
        let stores::Stores {
            entities,
            activations,
            ..
        } = stores.clone();

        // Bound before the invoker starts: instances learn the API's real port
        // (`__OW_API_HOST`, and the one port the isolated network forwards), also when
        // listening on port 0.
        let listener = connections::bind(config.server.listen)
            .with_context(|| format!("binding {}", config.server.listen))?;
        let addr = listener.local_addr()?;

        let role = config.cluster.role;
        let invoker = if role.invokes() {
            let (factory, manifest) = container_factory(&config, &stores.data_dir, addr)?;
            #[cfg(feature = "wasm")]
            let factory = with_wasm(factory, &manifest, &config, &stores.data_dir, addr)?;
            factory.cleanup().await;
            let metrics =
                edgewhisk_invoker::InvokerMetrics::new(&manifest, config.metrics.namespace_labels);
            let pool = runtimes::offered_prewarm(&config.pool, &manifest);
            Some((
                Invoker::start_with_metrics(pool, factory, activations.clone(), metrics),
                manifest,
            ))
        } else {
            None
        };
        let (invoker, manifest) = match invoker {
            Some((invoker, manifest)) => (Some(invoker), manifest),
            None => (
                None,
                runtimes::manifest(
                    &config,
                    &crate::config::interpreter_search_dirs(),
                    runtimes::InstanceView::default(),
                ),
            ),
        };
        runtimes::log_offered(&manifest);
        let parts = parts::start(&config, &stores, invoker, manifest).await?;
        tracing::info!(
            %addr,
            role = ?role,
            data_dir = %stores.data_dir.display(),
            max_connections,
            open_files_limit = nofile,
            "edgewhisk serving"
        );
        exposure::warn_if_exposed(addr, tls.is_some(), entities.as_ref())
            .await
            .context("checking for well-known keys")?;
        let app = parts.router();

        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let grace = Duration::from_millis(config.server.shutdown_grace_ms);
        let settings = connections::ConnectionSettings {
            header_read_timeout: Duration::from_millis(config.server.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(config.server.idle_timeout_ms),
            max_connections,
            // In-flight blocking invokes end within the invoker's grace, then answer.
            drain_timeout: grace + Duration::from_millis(config.server.header_read_timeout_ms),
        };
        let has_tls = tls.is_some();
        // A dropped `Server` closes the channel, which stops the server as `true` does.
        let server = {
            let mut stop_rx = stop_rx.clone();
            connections::serve(listener, tls, app, settings, async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
        };
        let drain = {
            let mut stop_rx = stop_rx;
            async move {
                let _ = stop_rx.wait_for(|s| *s).await;
                parts.shutdown(grace).await;
            }
        };
        let data_dir_lock = stores.lock.clone();
        let task = tokio::spawn(async move {
            let ((), ()) = tokio::join!(server, drain);
            let flushed = activations
                .flush()
                .await
                .context("flushing activation records");
            drop(data_dir_lock);
            flushed
        });
        Ok(Self {
            addr,
            tls: has_tls,
            stop,
            task,
        })
    }

    /// The address the server listens on (the real port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API's base URL, `http://` or `https://` and [`Server::addr`].
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops accepting, lets in-flight activations finish (or fails them with a record)
    /// within the configured grace, kills every runner and flushes the store; returns when
    /// all of that is done.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.task.await.context("the server task panicked")?
    }
}

/// Builds the configured isolation backend; `auto` picks runc where it can run.
/// Also returns the runtime manifest: the kinds whose runners this backend can start.
fn container_factory(
    config: &Config,
    data_dir: &std::path::Path,
    api_address: SocketAddr,
) -> anyhow::Result<(Arc<dyn ContainerFactory>, RuntimeManifest)> {
    let log_timeout = Duration::from_millis(config.pool.log_sentinel_timeout_ms);
    let root = nix::unistd::geteuid().is_root();
    let isolation = match config.server.isolation {
        Isolation::Auto if runc_available(&config.runc) => Isolation::Runc,
        Isolation::Auto => {
            let why = if root {
                "no runc executable was found"
            } else {
                "edgewhisk is not running as root"
            };
            tracing::warn!(
                "!!! isolation 'auto' FELL BACK to 'process' because {why}: actions are NOT \
                 sandboxed: they share this host's file system, network and kernel limits{} \
                 !!! Install runc and run as root, or pass --isolation process to accept this.",
                if root {
                    ", though they run as the unprivileged [process] user"
                } else {
                    " and run as edgewhisk's own user, so they can open its store"
                }
            );
            Isolation::Process
        }
        other => other,
    };
    let search = crate::config::interpreter_search_dirs();
    let view = match isolation {
        Isolation::Runc => runtimes::InstanceView {
            only_usr: true,
            run_as: Some((config.runc.uid, config.runc.gid)),
        },
        _ if root => runtimes::InstanceView {
            only_usr: false,
            run_as: Some((config.process.uid, config.process.gid)),
        },
        _ => runtimes::InstanceView::default(),
    };
    let manifest = runtimes::manifest(config, &search, view);
    let process =
        ProcessConfig::new(data_dir.join("instances")).with_runtimes(Arc::new(manifest.clone()));
    // Native instances run this very executable's hidden `native-runner` subcommand.
    let process = match std::env::current_exe() {
        Ok(exe) => process.with_native_runner(exe),
        Err(e) => {
            tracing::warn!(error = %e, "cannot locate the edgewhisk executable: native kinds (go:*, blackbox) will not start");
            process
        }
    };
    if root {
        // As root, actions run as another user ([runc] or [process] uid), who must read the
        // runners, the instances' root skeleton and the unpacked code that this process writes
        // under the data directory. A restrictive umask (systemd's UMask=0077, a root shell's
        // 077) would make every instance fail to start; the data directory itself and the store
        // files have explicit private modes (0700 or 0711, 0600), whatever the umask.
        relax_umask();
    }
    let factory: Arc<dyn ContainerFactory> = match isolation {
        Isolation::Runc => {
            tracing::info!("isolation backend 'runc': each instance is an OCI container");
            Arc::new(
                RuncFactory::new(config.runc.clone(), process, config.pool.user_memory_mb)
                    .context("starting the runc backend")?
                    .with_log_sentinel_timeout(log_timeout)
                    .with_archive_limits(config.pool.archive_limits())
                    .with_api_address(api_address),
            )
        }
        Isolation::Process | Isolation::Auto => {
            tracing::warn!(
                "isolation backend 'process': actions run as plain child processes and are NOT \
                 isolated from each other or from this host"
            );
            let mut factory = ProcessFactory::new(process)
                .context("starting the process backend")?
                .with_log_sentinel_timeout(log_timeout)
                .with_archive_limits(config.pool.archive_limits())
                .with_api_address(api_address);
            if root {
                // Runners must reach their instance directories under the data directory, so
                // it becomes traversable but still not listable; the store stays 0600.
                let mode = std::fs::metadata(data_dir)
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
                    .unwrap_or(0o700);
                if mode == 0o700 {
                    stores::set_mode(data_dir, 0o711)?;
                }
                factory = factory
                    .with_user(config.process.clone())
                    .context("running actions as the [process] user")?;
                tracing::info!(
                    uid = config.process.uid,
                    gid = config.process.gid,
                    "actions run as an unprivileged user"
                );
            }
            Arc::new(factory)
        }
    };
    Ok((factory, manifest))
}

/// Puts the in-process WebAssembly backend in front of `other` when the manifest offers a
/// Wasm kind: `wasm:*` kinds run in wasmtime whatever the isolation backend of the others.
#[cfg(feature = "wasm")]
fn with_wasm(
    other: Arc<dyn ContainerFactory>,
    manifest: &edgewhisk_entity::RuntimeManifest,
    config: &Config,
    data_dir: &std::path::Path,
    api_address: SocketAddr,
) -> anyhow::Result<Arc<dyn ContainerFactory>> {
    use edgewhisk_entity::RunnerType;
    use edgewhisk_invoker::container::{by_kind::ByKind, wasm::WasmFactory};
    if !manifest
        .runtimes
        .iter()
        .any(|r| r.runner == RunnerType::Wasm)
    {
        return Ok(other);
    }
    let wasm = WasmFactory::new(
        &config.wasm,
        &data_dir.join("instances"),
        config.api.limits.max_memory,
    )
    .context("starting the wasm backend")?
    .with_archive_limits(config.pool.archive_limits())
    .with_api_address(api_address);
    Ok(Arc::new(ByKind::new(Arc::new(wasm), other)))
}

/// Lets files this process creates be read by the actions' user: clears the group and other
/// read and execute bits from the umask, keeping its write bits.
fn relax_umask() {
    use nix::sys::stat::{Mode, umask};
    let old = umask(Mode::from_bits_truncate(0o022));
    let relaxed = old & !(Mode::S_IRGRP | Mode::S_IXGRP | Mode::S_IROTH | Mode::S_IXOTH);
    umask(relaxed);
    if relaxed != old {
        tracing::info!(
            from = format!("{:04o}", old.bits()),
            to = format!("{:04o}", relaxed.bits()),
            "umask relaxed so that actions can read their runners and code"
        );
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
