//! The parts a server runs, by role: the controller (REST API, balancer, feeds) and the
//! invoker. In the lean mode the controller's balancer hands activations to the in-process
//! invoker; in a cluster, activations travel over NATS to the invokers' agents, and the feeds
//! run on the one controller that leads them.

use super::cluster::{self, FeedLeader};
use super::lean::LeanBalancer;
use super::stores::Stores;
use crate::config::Config;
use anyhow::Context;
use edgewhisk_cluster::{AgentSettings, BalancerSettings, ClusterBalancer, InvokerAgent};
use edgewhisk_controller::feeds::FeedService;
use edgewhisk_controller::health::{Health, Refresh};
use edgewhisk_controller::loadbalancer::LoadBalancer;
use edgewhisk_controller::{AppState, BuildInfo};
use edgewhisk_entity::RuntimeManifest;
use edgewhisk_invoker::Invoker;
use std::sync::Arc;
use std::time::Duration;

/// The kind of the health test action a controller sends an unhealthy invoker: a runtime
/// every invoker has.
const HEALTH_TEST_KIND: &str = "nodejs:20";

/// What a running server is made of, to be served and then shut down in order.
#[derive(Debug)]
pub(super) struct Parts {
    controller: Option<Controller>,
    invoker: Option<Invoker>,
    agent: Option<InvokerAgent>,
    /// `/metrics` and `/ready` of an invoker without a controller (a controller serves its
    /// own).
    health: Option<Arc<Health>>,
}

/// Reads the pool's instances and the runners' memory before a scrape.
#[derive(Debug)]
struct PoolGauges(Invoker);

#[async_trait::async_trait]
impl Refresh for PoolGauges {
    async fn refresh(&self) {
        self.0.refresh_metrics().await;
    }
}

/// The registry of every part this process runs, and the hook that reads the pool's gauges.
fn metrics_of(
    config: &Config,
    stores: &Stores,
    invoker: Option<&Invoker>,
    state: Option<&AppState>,
) -> Health {
    let mut registry = prometheus_client::registry::Registry::default();
    if let Some(state) = state {
        let throttle = state.throttler().metrics();
        throttle.set_namespace_labels(config.metrics.namespace_labels);
        throttle.register(&mut registry);
    }
    if let Some(store) = &stores.metrics {
        store.register(&mut registry);
    }
    if let Some(invoker) = invoker {
        invoker.metrics().register(&mut registry);
    }
    let health = Health::new(registry).store_check(stores.activations.clone());
    match invoker {
        Some(invoker) => health.refresh(Arc::new(PoolGauges(invoker.clone()))),
        None => health,
    }
}

/// The controller's running pieces.
#[derive(Debug)]
struct Controller {
    state: AppState,
    feeds: Feeds,
    balancer: Option<Arc<ClusterBalancer>>,
}

/// Who runs the feeds: this controller alone (lean), or the cluster's leader.
#[derive(Debug)]
enum Feeds {
    Alone(FeedService),
    Leader(FeedLeader),
}

/// Starts the controller (for roles that serve the API) over `invoker` (for roles that run
/// actions).
pub(super) async fn start(
    config: &Config,
    stores: &Stores,
    invoker: Option<Invoker>,
    manifest: RuntimeManifest,
) -> anyhow::Result<Parts> {
    let nats = match &stores.postgres {
        Some(_) => Some(cluster::connect_nats(config).await?),
        None => None,
    };
    let agent = match (&nats, &invoker) {
        (Some(nats), Some(invoker)) => {
            let mut settings =
                AgentSettings::new(config.cluster.invoker_id, config.pool.user_memory_mb);
            settings.prefix.clone_from(&config.cluster.subject_prefix);
            let agent = InvokerAgent::start(nats.clone(), settings, invoker.clone())
                .await
                .context("starting the invoker agent")?;
            tracing::info!(
                invoker_id = config.cluster.invoker_id,
                "invoker taking activations over NATS"
            );
            Some(agent)
        }
        _ => None,
    };
    let controller = if config.cluster.role.controls() {
        let (balancer, cluster_balancer): (Arc<dyn LoadBalancer>, _) = match (&nats, &invoker) {
            (Some(nats), _) => {
                let settings = BalancerSettings {
                    prefix: config.cluster.subject_prefix.clone(),
                    health_test_kind: manifest
                        .resolve("nodejs:default")
                        .map_or(HEALTH_TEST_KIND, |r| r.kind.as_str())
                        .to_owned(),
                    ..BalancerSettings::default()
                };
                let balancer = Arc::new(
                    ClusterBalancer::start(nats.clone(), stores.activations.clone(), settings)
                        .await
                        .context("starting the cluster balancer")?,
                );
                (balancer.clone(), Some(balancer))
            }
            (None, Some(invoker)) => (Arc::new(LeanBalancer::new(invoker.clone())), None),
            (None, None) => {
                anyhow::bail!("a controller without an invoker needs the cluster backends")
            }
        };
        let state = AppState::new(
            config.api.clone(),
            stores.entities.clone(),
            stores.activations.clone(),
            balancer.clone(),
            manifest,
            BuildInfo {
                build: env!("CARGO_PKG_VERSION").to_owned(),
                buildno: crate::GIT_REVISION.to_owned(),
            },
        );
        let health =
            metrics_of(config, stores, invoker.as_ref(), Some(&state)).invoker_check(balancer);
        state.set_health(Arc::new(health));
        let feeds = match &stores.postgres {
            Some(pg) => Feeds::Leader(FeedLeader::start(pg.clone(), state.clone())),
            None => Feeds::Alone(FeedService::start(state.clone())),
        };
        Some(Controller {
            state,
            feeds,
            balancer: cluster_balancer,
        })
    } else {
        None
    };
    let health = match (&controller, &invoker) {
        (None, Some(inv)) => {
            let up = inv.clone();
            let health = metrics_of(config, stores, Some(inv), None).check(
                "invoker",
                Box::new(move || {
                    if up.is_shutting_down() {
                        Err("the invoker is shutting down".to_owned())
                    } else {
                        Ok(())
                    }
                }),
            );
            Some(Arc::new(health))
        }
        _ => None,
    };
    Ok(Parts {
        controller,
        invoker,
        agent,
        health,
    })
}

impl Parts {
    /// The HTTP routes: the REST API for a controller (with `/metrics`, `/health` and
    /// `/ready`); for an invoker `GET /ping` and those three.
    pub(super) fn router(&self) -> axum::Router {
        match (&self.controller, &self.health) {
            (Some(c), _) => edgewhisk_controller::router(c.state.clone()),
            (None, Some(health)) => Arc::clone(health).router(),
            (None, None) => {
                axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }))
            }
        }
    }

    /// Stops the feeds; stops taking activations from NATS; lets in-flight activations
    /// finish (or fails them with a record) within `grace` and kills every runner; then stops
    /// the cluster balancer.
    pub(super) async fn shutdown(self, grace: Duration) {
        let mut balancer = None;
        if let Some(c) = self.controller {
            match c.feeds {
                Feeds::Alone(feeds) => feeds.shutdown().await,
                Feeds::Leader(leader) => leader.shutdown().await,
            }
            balancer = c.balancer;
        }
        // The agent waits for the completions of what it took, which the invoker finishes.
        let agent = async {
            if let Some(agent) = self.agent {
                agent.shutdown().await;
            }
        };
        let invoker = async {
            if let Some(invoker) = self.invoker {
                invoker.shutdown(grace).await;
            }
        };
        tokio::join!(agent, invoker);
        if let Some(balancer) = balancer {
            balancer.shutdown().await;
        }
    }
}
