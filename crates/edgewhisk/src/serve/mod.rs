//! `edgewhisk serve`: controller and invoker in one process (lean mode).
//!
//! Wiring: SQLite store (entities behind a cache, activations through the batching writer) →
//! invoker with the configured isolation backend → lean balancer → controller router → HTTP.
//! Shutdown on SIGINT/SIGTERM: stop accepting, let in-flight activations finish (or fail them
//! with a record) within the grace period, kill every runner, flush the store.

mod lean;

use crate::config::{Config, Isolation};
use anyhow::Context;
use edgewhisk_controller::{AppState, BuildInfo};
use edgewhisk_entity::RuntimeManifest;
use edgewhisk_invoker::Invoker;
use edgewhisk_invoker::container::ContainerFactory;
use edgewhisk_invoker::container::process::{ProcessConfig, ProcessFactory};
use edgewhisk_invoker::container::runc::{RuncFactory, runc_available};
use edgewhisk_store::{ActivationStore, CachingEntityStore, EntityStore, SqliteStore};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `edgewhisk serve`; each overrides the config file.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:3233].
    #[arg(long, env = "EW_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory (SQLite store, unpacked action code) [default: user data dir].
    #[arg(long, env = "EW_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (keys: config/reference.toml).
    #[arg(long, env = "EW_CONFIG")]
    config: Option<PathBuf>,
    /// Isolation backend for action instances.
    #[arg(long, value_enum)]
    isolation: Option<Isolation>,
}

/// Runs the server until a shutdown signal.
pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = args.data_dir {
        config.server.data_dir = dir;
    }
    if let Some(iso) = args.isolation {
        config.server.isolation = iso;
    }
    config.validate()?;

    let data_dir = config.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let db_path = data_dir.join("edgewhisk.db");
    // The guest key is provisioned on the first start only, so an operator can delete it.
    let first_start = !db_path.exists();
    let store = Arc::new(
        SqliteStore::open(&db_path, &config.store)
            .with_context(|| format!("opening store {}", db_path.display()))?,
    );
    let entities: Arc<dyn EntityStore> = Arc::new(
        CachingEntityStore::new(store.clone()).with_max_bytes(config.store.entity_cache_bytes),
    );
    let activations: Arc<dyn ActivationStore> = store.clone();
    if first_start {
        provision_guest(entities.as_ref()).await?;
    }
    edgewhisk_controller::catalog::provision_system(entities.as_ref()).await?;

    let factory = container_factory(&config, &data_dir)?;
    factory.cleanup().await;
    let invoker = Invoker::start(config.pool.clone(), factory, activations.clone());

    let state = AppState::new(
        config.api.clone(),
        entities,
        activations.clone(),
        Arc::new(lean::LeanBalancer::new(invoker.clone())),
        RuntimeManifest::default(),
        BuildInfo {
            build: env!("CARGO_PKG_VERSION").to_owned(),
            buildno: env!("CARGO_PKG_VERSION").to_owned(),
        },
    );
    let feeds = edgewhisk_controller::feeds::FeedService::start(state.clone());
    let app = edgewhisk_controller::router(state);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %data_dir.display(), "edgewhisk serving");
    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("edgewhisk: listening on http://{addr}");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let server = {
        let mut stop_rx = stop_rx.clone();
        axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        })
    };
    let drain = {
        let invoker = invoker.clone();
        let mut stop_rx = stop_rx;
        async move {
            let _ = stop_rx.wait_for(|s| *s).await;
            feeds.shutdown().await;
            invoker.shutdown(grace).await;
        }
    };
    let signal = async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: finishing in-flight activations");
        let _ = stop_tx.send(true);
    };
    let (served, (), ()) = tokio::join!(server, drain, signal);
    served.context("http server failed")?;
    activations
        .flush()
        .await
        .context("flushing activation records")?;
    tracing::info!("edgewhisk stopped");
    Ok(())
}

/// Builds the configured isolation backend; `auto` picks runc where it can run.
fn container_factory(
    config: &Config,
    data_dir: &std::path::Path,
) -> anyhow::Result<Arc<dyn ContainerFactory>> {
    let process = ProcessConfig {
        work_dir: data_dir.join("instances"),
        node: config.node(),
        python: config.python(),
    };
    let log_timeout = Duration::from_millis(config.pool.log_sentinel_timeout_ms);
    let isolation = match config.server.isolation {
        Isolation::Auto if runc_available(&config.runc) => Isolation::Runc,
        Isolation::Auto => {
            tracing::warn!(
                "isolation 'auto': runc not found or not running as root, falling back to \
                 'process'"
            );
            Isolation::Process
        }
        other => other,
    };
    Ok(match isolation {
        Isolation::Runc => {
            tracing::info!("isolation backend 'runc': each instance is an OCI container");
            Arc::new(
                RuncFactory::new(config.runc.clone(), process, config.pool.user_memory_mb)
                    .context("starting the runc backend")?
                    .with_log_sentinel_timeout(log_timeout),
            )
        }
        Isolation::Process | Isolation::Auto => {
            tracing::warn!(
                "isolation backend 'process': actions run as plain child processes and are NOT \
                 isolated from each other or from this host"
            );
            Arc::new(
                ProcessFactory::new(process)
                    .context("starting the process backend")?
                    .with_log_sentinel_timeout(log_timeout),
            )
        }
    })
}

async fn provision_guest(entities: &dyn EntityStore) -> anyhow::Result<()> {
    let guest = edgewhisk_entity::identity::guest();
    if entities.identity(&guest.uuid).await?.is_none() {
        entities.put_identity(guest).await?;
        tracing::info!("provisioned the default guest key for namespace 'guest'");
    }
    Ok(())
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
