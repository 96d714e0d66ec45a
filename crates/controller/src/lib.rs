//! The edgewhisk controller: OpenWhisk's REST API (`/api/v1`) as an axum [`Router`](axum::Router).
//!
//! It owns authentication and entitlement, the actions, activations and namespaces
//! collections, invocation throttles, blocking and non-blocking invoke, OpenWhisk's error
//! bodies and messages, and the [`loadbalancer::LoadBalancer`] trait through which activations
//! leave for an invoker. It deliberately does not run actions, store activation records or
//! depend on the invoker: the server binary wires a balancer to an invoker and serves
//! [`router`].
//!
//! ```text
//! request ─► transaction middleware (X-Request-ID, CORS, error bodies)
//!         ─► handler: Caller (auth) ─► namespace entitlement ─► store / throttle ─► balancer
//! ```

pub mod api;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod entitlement;
pub mod error;
pub mod feeds;
pub mod loadbalancer;
pub mod messages;
pub mod sequences;
pub mod throttle;

#[cfg(test)]
mod tests;

use crate::config::ApiConfig;
use crate::loadbalancer::LoadBalancer;
use crate::throttle::Throttler;
use edgewhisk_entity::RuntimeManifest;
use edgewhisk_store::{ActivationStore, EntityStore};
use std::sync::Arc;

pub use crate::error::ApiError;

/// Version information reported by `GET /api/v1` (read by `wsk property get`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// Build date or tag.
    pub build: String,
    /// Build number.
    pub buildno: String,
}

/// Everything the handlers share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    config: ApiConfig,
    entities: Arc<dyn EntityStore>,
    activations: Arc<dyn ActivationStore>,
    balancer: Arc<dyn LoadBalancer>,
    manifest: RuntimeManifest,
    build: BuildInfo,
    throttler: Arc<Throttler>,
    feeds: feeds::FeedSignal,
}

impl AppState {
    /// Builds the state the router serves from.
    pub fn new(
        config: ApiConfig,
        entities: Arc<dyn EntityStore>,
        activations: Arc<dyn ActivationStore>,
        balancer: Arc<dyn LoadBalancer>,
        manifest: RuntimeManifest,
        build: BuildInfo,
    ) -> Self {
        let throttler = Throttler::with_limits(throttle::EffectiveLimits {
            invocations_per_minute: config.invocations_per_minute,
            concurrent_invocations: config.concurrent_invocations,
            fires_per_minute: config.fires_per_minute,
        });
        Self {
            inner: Arc::new(StateInner {
                config,
                entities,
                activations,
                balancer,
                manifest,
                build,
                throttler,
                feeds: feeds::FeedSignal::default(),
            }),
        }
    }

    /// The API configuration.
    pub fn config(&self) -> &ApiConfig {
        &self.inner.config
    }

    /// The entity store.
    pub fn entities(&self) -> &dyn EntityStore {
        self.inner.entities.as_ref()
    }

    /// The activation store.
    pub fn activations(&self) -> &dyn ActivationStore {
        self.inner.activations.as_ref()
    }

    /// The load balancer.
    pub fn balancer(&self) -> &dyn LoadBalancer {
        self.inner.balancer.as_ref()
    }

    /// The runtime manifest.
    pub fn manifest(&self) -> &RuntimeManifest {
        &self.inner.manifest
    }

    /// The build information.
    pub fn build(&self) -> &BuildInfo {
        &self.inner.build
    }

    /// The invocation throttles.
    pub fn throttler(&self) -> &Arc<Throttler> {
        &self.inner.throttler
    }

    /// Wakes the feed scheduler after a feed lifecycle change.
    pub(crate) fn feeds(&self) -> &feeds::FeedSignal {
        &self.inner.feeds
    }

    /// Largest entity (PUT) body: code plus parameters plus annotations plus some room for
    /// the JSON around them. Fields are checked one by one after parsing.
    pub(crate) fn entity_body_limit(&self) -> u64 {
        let c = &self.inner.config;
        c.max_code_bytes
            .saturating_add(c.max_parameter_bytes.saturating_mul(2))
            .saturating_add(64 * 1024)
    }
}

/// The whole REST API, ready to serve.
pub fn router(state: AppState) -> axum::Router {
    api::router(state)
}
