//! What every handler and the activation service share: configuration, stores, the load
//! balancer, throttles and the feed scheduler's wake-up signal.

use crate::config::ApiConfig;
use crate::feeds::signal::FeedSignal;
use crate::health::Health;
use crate::loadbalancer::LoadBalancer;
use crate::throttle::{self, Throttler};
use edgewhisk_entity::RuntimeManifest;
use edgewhisk_store::{ActivationStore, EntityStore};
use std::sync::{Arc, OnceLock};

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
    feeds: FeedSignal,
    health: OnceLock<Arc<Health>>,
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
                feeds: FeedSignal::default(),
                health: OnceLock::new(),
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

    /// Serves `health` on `/metrics` and `/ready` from now on; `false` when one was already
    /// set (it stays).
    pub fn set_health(&self, health: Arc<Health>) -> bool {
        self.inner.health.set(health).is_ok()
    }

    /// What `/metrics` and `/ready` serve: the health set by [`AppState::set_health`], else
    /// the throttle counters with the store and invoker checks.
    pub fn health(&self) -> &Arc<Health> {
        self.inner.health.get_or_init(|| {
            let mut registry = prometheus_client::registry::Registry::default();
            self.inner.throttler.metrics().register(&mut registry);
            Arc::new(
                Health::new(registry)
                    .store_check(Arc::clone(&self.inner.activations))
                    .invoker_check(Arc::clone(&self.inner.balancer)),
            )
        })
    }

    /// Wakes the feed scheduler after a feed lifecycle change.
    pub(crate) fn feeds(&self) -> &FeedSignal {
        &self.inner.feeds
    }

    /// Tells the feed scheduler that the stored feeds changed outside this process (another
    /// controller of a cluster ran a feed lifecycle event), so that it reloads them.
    pub fn feeds_changed_elsewhere(&self) {
        self.inner.feeds.changed();
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
