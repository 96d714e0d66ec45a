//! Per-namespace invocation throttles (OpenWhisk `RateThrottler.scala`,
//! `ActivationThrottler.scala`).
//!
//! Two limits, checked in this order on every invoke:
//! 1. invocations per minute, counted in fixed one-minute windows of the wall clock. Like
//!    OpenWhisk, a refused request still counts, so a client that keeps hammering stays refused
//!    until the window rolls over;
//! 2. activations in flight: a slot is taken when the activation is published and freed when
//!    its [`InFlight`] guard is dropped (on completion, or when the controller stops waiting).
//!
//! Trigger fires have their own per-minute window ([`Throttler::fire`]), with the same 429
//! message as OpenWhisk's `RateThrottler`.
//!
//! Per-namespace overrides ([`NamespaceLimits`], set by `edgewhisk admin limits set`) replace
//! the system values, capped at them: an override can lower a namespace's limits, never raise
//! them above the configured maxima. The throttler holds the overrides it was last told about;
//! authentication refreshes them from the (cached) store on every request
//! ([`Throttler::set_overrides`]), so `acquire` stays synchronous and lock-cheap.

use crate::messages;
use edgewhisk_entity::identity::NamespaceLimits;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A throttle refused an invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ThrottleError {
    /// Over the per-minute rate.
    #[error("rate: {count} > {allowed} per minute")]
    Rate {
        /// Invocations in this minute, including the refused one.
        count: u64,
        /// The limit.
        allowed: u64,
    },
    /// Over the concurrent limit.
    #[error("concurrency: {count} of {allowed} in flight")]
    Concurrent {
        /// Activations in flight.
        count: u64,
        /// The limit.
        allowed: u64,
    },
}

impl ThrottleError {
    /// OpenWhisk's 429 text.
    pub fn message(&self) -> String {
        match *self {
            ThrottleError::Rate { count, allowed } => messages::too_many_requests(count, allowed),
            ThrottleError::Concurrent { count, allowed } => {
                messages::too_many_concurrent_requests(count, allowed)
            }
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    minute: u64,
    count: u64,
    fire_minute: u64,
    fires: u64,
    in_flight: u64,
    overrides: Option<NamespaceLimits>,
}

/// The limits that apply to one namespace: its overrides capped at the system values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveLimits {
    /// Invocations per (fixed) minute.
    pub invocations_per_minute: u64,
    /// Activations in flight at once.
    pub concurrent_invocations: u64,
    /// Trigger fires per (fixed) minute.
    pub fires_per_minute: u64,
}

/// The throttle state of all namespaces. Shared by all request tasks; the lock is held only
/// for a few arithmetic operations.
#[derive(Debug)]
pub struct Throttler {
    system: EffectiveLimits,
    namespaces: Mutex<HashMap<String, Counters>>,
    metrics: ThrottleMetrics,
}

/// Labels of a refusal: none, or the `namespace` with per-namespace labels.
type RefusalLabels = Vec<(&'static str, String)>;

/// Refusals (429) by reason, under OpenWhisk's user-event names
/// (`openwhisk_action_limit_timed_total`, `openwhisk_action_limit_concurrent_total`).
#[derive(Debug, Default)]
pub struct ThrottleMetrics {
    per_namespace: AtomicBool,
    timed: Family<RefusalLabels, Counter>,
    concurrent: Family<RefusalLabels, Counter>,
    fires: Family<RefusalLabels, Counter>,
}

impl ThrottleMetrics {
    /// With `on`, refusals carry the `namespace` label (OpenWhisk's user events do); off by
    /// default, so that unauthenticated scrapes name no namespace.
    pub fn set_namespace_labels(&self, on: bool) {
        self.per_namespace.store(on, Ordering::Relaxed);
    }

    /// Registers the three counters in `registry`, each with its unlabelled series at 0.
    pub fn register(&self, registry: &mut Registry) {
        for (name, help, family) in [
            (
                "openwhisk_action_limit_timed",
                "Invocations refused over the invocations-per-minute limit",
                &self.timed,
            ),
            (
                "openwhisk_action_limit_concurrent",
                "Invocations refused over the concurrent-activations limit",
                &self.concurrent,
            ),
            (
                "edgewhisk_trigger_limit_timed",
                "Trigger fires refused over the fires-per-minute limit",
                &self.fires,
            ),
        ] {
            if !self.per_namespace.load(Ordering::Relaxed) {
                drop(family.get_or_create(&Vec::new()));
            }
            registry.register(name, help, family.clone());
        }
    }

    fn refused(&self, family: &Family<RefusalLabels, Counter>, namespace: &str) {
        let labels = if self.per_namespace.load(Ordering::Relaxed) {
            vec![("namespace", namespace.to_owned())]
        } else {
            Vec::new()
        };
        family.get_or_create(&labels).inc();
    }
}

/// One activation slot of a namespace; dropping it frees the slot.
#[derive(Debug)]
pub struct InFlight {
    throttler: Arc<Throttler>,
    namespace: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(c) = self.throttler.namespaces.lock().get_mut(&self.namespace) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
    }
}

impl Throttler {
    /// A throttler allowing `per_minute` invocations (and trigger fires) per minute and
    /// `concurrent` in flight, per namespace.
    pub fn new(per_minute: u64, concurrent: u64) -> Arc<Self> {
        Self::with_limits(EffectiveLimits {
            invocations_per_minute: per_minute,
            concurrent_invocations: concurrent,
            fires_per_minute: per_minute,
        })
    }

    /// A throttler with these system limits.
    pub fn with_limits(system: EffectiveLimits) -> Arc<Self> {
        Arc::new(Self {
            system,
            namespaces: Mutex::new(HashMap::new()),
            metrics: ThrottleMetrics::default(),
        })
    }

    /// The refusal counters.
    pub fn metrics(&self) -> &ThrottleMetrics {
        &self.metrics
    }

    /// The system limits (the caps of every override).
    pub fn system(&self) -> EffectiveLimits {
        self.system
    }

    /// The limits `overrides` yield: each value present replaces the system's, capped at it.
    pub fn effective(&self, overrides: Option<&NamespaceLimits>) -> EffectiveLimits {
        let s = self.system;
        let pick = |o: Option<u64>, max: u64| o.map_or(max, |v| v.min(max));
        match overrides {
            None => s,
            Some(o) => EffectiveLimits {
                invocations_per_minute: pick(o.invocations_per_minute, s.invocations_per_minute),
                concurrent_invocations: pick(o.concurrent_invocations, s.concurrent_invocations),
                fires_per_minute: pick(o.fires_per_minute, s.fires_per_minute),
            },
        }
    }

    /// Records the current overrides of `namespace` (`None`: the system limits apply).
    pub fn set_overrides(&self, namespace: &str, overrides: Option<NamespaceLimits>) {
        let mut map = self.namespaces.lock();
        match map.get_mut(namespace) {
            Some(c) => c.overrides = overrides,
            None if overrides.is_some() => {
                map.insert(
                    namespace.to_owned(),
                    Counters {
                        overrides,
                        ..Counters::default()
                    },
                );
            }
            None => {}
        }
    }

    /// The limits that apply to `namespace` now.
    pub fn limits_of(&self, namespace: &str) -> EffectiveLimits {
        let map = self.namespaces.lock();
        self.effective(map.get(namespace).and_then(|c| c.overrides.as_ref()))
    }

    /// Counts one invocation of `namespace` at `now_ms` and takes an in-flight slot.
    pub fn acquire(
        self: &Arc<Self>,
        namespace: &str,
        now_ms: u64,
    ) -> Result<InFlight, ThrottleError> {
        let minute = now_ms / 60_000;
        let mut map = self.namespaces.lock();
        let c = map.entry(namespace.to_owned()).or_default();
        let limits = self.effective(c.overrides.as_ref());
        if c.minute != minute {
            c.minute = minute;
            c.count = 0;
        }
        c.count += 1;
        if c.count > limits.invocations_per_minute {
            self.metrics.refused(&self.metrics.timed, namespace);
            return Err(ThrottleError::Rate {
                count: c.count,
                allowed: limits.invocations_per_minute,
            });
        }
        if c.in_flight >= limits.concurrent_invocations {
            self.metrics.refused(&self.metrics.concurrent, namespace);
            return Err(ThrottleError::Concurrent {
                count: c.in_flight,
                allowed: limits.concurrent_invocations,
            });
        }
        c.in_flight += 1;
        Ok(InFlight {
            throttler: Arc::clone(self),
            namespace: namespace.to_owned(),
        })
    }

    /// Counts one trigger fire of `namespace` at `now_ms` against its fires per minute.
    pub fn fire(&self, namespace: &str, now_ms: u64) -> Result<(), ThrottleError> {
        let minute = now_ms / 60_000;
        let mut map = self.namespaces.lock();
        let c = map.entry(namespace.to_owned()).or_default();
        let allowed = self.effective(c.overrides.as_ref()).fires_per_minute;
        if c.fire_minute != minute {
            c.fire_minute = minute;
            c.fires = 0;
        }
        c.fires += 1;
        if c.fires > allowed {
            self.metrics.refused(&self.metrics.fires, namespace);
            return Err(ThrottleError::Rate {
                count: c.fires,
                allowed,
            });
        }
        Ok(())
    }

    /// Activations of `namespace` in flight now.
    pub fn in_flight(&self, namespace: &str) -> u64 {
        self.namespaces
            .lock()
            .get(namespace)
            .map_or(0, |c| c.in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_over_the_per_minute_rate_until_the_next_window() {
        let t = Throttler::new(2, 100);
        let _a = t.acquire("guest", 60_000).unwrap();
        let _b = t.acquire("guest", 60_001).unwrap();
        let err = t.acquire("guest", 119_999).unwrap_err();
        assert_eq!(
            err,
            ThrottleError::Rate {
                count: 3,
                allowed: 2
            }
        );
        assert_eq!(
            err.message(),
            "Too many requests in the last minute (count: 3, allowed: 2)."
        );
        assert!(t.acquire("other", 119_999).is_ok());
        assert!(t.acquire("guest", 120_000).is_ok());
    }

    #[test]
    fn refuses_over_the_concurrent_limit_and_frees_slots_on_drop() {
        let t = Throttler::new(100, 1);
        let slot = t.acquire("guest", 0).unwrap();
        assert_eq!(t.in_flight("guest"), 1);
        let err = t.acquire("guest", 0).unwrap_err();
        assert_eq!(
            err.message(),
            "Too many concurrent requests in flight (count: 1, allowed: 1)."
        );
        drop(slot);
        assert_eq!(t.in_flight("guest"), 0);
        assert!(t.acquire("guest", 0).is_ok());
    }

    fn limits(
        per_minute: Option<u64>,
        concurrent: Option<u64>,
        fires: Option<u64>,
    ) -> NamespaceLimits {
        NamespaceLimits {
            invocations_per_minute: per_minute,
            concurrent_invocations: concurrent,
            fires_per_minute: fires,
        }
    }

    #[test]
    fn overrides_replace_the_system_limits_but_are_capped_at_them() {
        let t = Throttler::new(60, 30);
        let o = limits(Some(2), Some(500), None);
        assert_eq!(
            t.effective(Some(&o)),
            EffectiveLimits {
                invocations_per_minute: 2,
                concurrent_invocations: 30,
                fires_per_minute: 60,
            }
        );
        assert_eq!(t.effective(None), t.system());
        t.set_overrides("alice", Some(o));
        assert_eq!(t.limits_of("alice").invocations_per_minute, 2);
        assert_eq!(t.limits_of("bob"), t.system());
    }

    #[test]
    fn a_namespace_override_throttles_only_that_namespace_and_can_be_lifted() {
        let t = Throttler::new(100, 100);
        t.set_overrides("alice", Some(limits(Some(1), None, None)));
        let _a = t.acquire("alice", 0).unwrap();
        assert_eq!(
            t.acquire("alice", 1).unwrap_err(),
            ThrottleError::Rate {
                count: 2,
                allowed: 1
            }
        );
        assert!(t.acquire("bob", 1).is_ok());
        t.set_overrides("alice", None);
        assert!(t.acquire("alice", 2).is_ok());
    }

    #[test]
    fn a_concurrent_override_recovers_when_the_activation_finishes() {
        let t = Throttler::new(100, 100);
        t.set_overrides("alice", Some(limits(None, Some(1), None)));
        let slot = t.acquire("alice", 0).unwrap();
        assert_eq!(
            t.acquire("alice", 0).unwrap_err().message(),
            "Too many concurrent requests in flight (count: 1, allowed: 1)."
        );
        drop(slot);
        assert!(t.acquire("alice", 0).is_ok());
    }

    #[test]
    fn fires_have_their_own_window_and_limit() {
        let t = Throttler::new(100, 100);
        t.set_overrides("alice", Some(limits(None, None, Some(2))));
        assert!(t.fire("alice", 60_000).is_ok());
        assert!(t.fire("alice", 60_500).is_ok());
        let err = t.fire("alice", 119_999).unwrap_err();
        assert_eq!(
            err.message(),
            "Too many requests in the last minute (count: 3, allowed: 2)."
        );
        // Fires do not use up invocations, and the next minute starts over.
        assert!(t.acquire("alice", 119_999).is_ok());
        assert!(t.fire("alice", 120_000).is_ok());
    }
}
