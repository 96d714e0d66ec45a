//! The parts a server runs, by role: the controller (REST API, balancer, feeds) and the
//! invoker. In the lean mode the controller's balancer hands activations to the in-process
//! invoker.

use super::lean::LeanBalancer;
use super::stores::Stores;
use crate::config::Config;
use edgewhisk_controller::feeds::FeedService;
use edgewhisk_controller::loadbalancer::LoadBalancer;
use edgewhisk_controller::{AppState, BuildInfo};
use edgewhisk_entity::RuntimeManifest;
use edgewhisk_invoker::Invoker;
use std::sync::Arc;
use std::time::Duration;

/// What a running server is made of, to be served and then shut down in order.
#[derive(Debug)]
pub(super) struct Parts {
    controller: Option<Controller>,
    invoker: Option<Invoker>,
}

/// The controller's running pieces.
#[derive(Debug)]
struct Controller {
    state: AppState,
    feeds: FeedService,
}

/// Starts the controller (for roles that serve the API) over `invoker` (for roles that run
/// actions).
pub(super) async fn start(
    config: &Config,
    stores: &Stores,
    invoker: Option<Invoker>,
) -> anyhow::Result<Parts> {
    let controller = if config.cluster.role.controls() {
        let Some(invoker) = invoker.clone() else {
            anyhow::bail!("a controller without an invoker needs the cluster backends");
        };
        let balancer: Arc<dyn LoadBalancer> = Arc::new(LeanBalancer::new(invoker));
        let state = AppState::new(
            config.api.clone(),
            stores.entities.clone(),
            stores.activations.clone(),
            balancer,
            RuntimeManifest::default(),
            BuildInfo {
                build: env!("CARGO_PKG_VERSION").to_owned(),
                buildno: env!("CARGO_PKG_VERSION").to_owned(),
            },
        );
        let feeds = FeedService::start(state.clone());
        Some(Controller { state, feeds })
    } else {
        None
    };
    Ok(Parts {
        controller,
        invoker,
    })
}

impl Parts {
    /// The HTTP routes: the REST API for a controller; for an invoker only `GET /ping`, for
    /// health checks.
    pub(super) fn router(&self) -> axum::Router {
        match &self.controller {
            Some(c) => edgewhisk_controller::router(c.state.clone()),
            None => axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" })),
        }
    }

    /// Stops the feeds, then lets in-flight activations finish (or fails them with a record)
    /// within `grace` and kills every runner.
    pub(super) async fn shutdown(self, grace: Duration) {
        if let Some(c) = self.controller {
            c.feeds.shutdown().await;
        }
        if let Some(invoker) = self.invoker {
            invoker.shutdown(grace).await;
        }
    }
}
