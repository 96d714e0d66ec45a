//! Per-namespace invocation throttles (OpenWhisk `RateThrottler.scala`,
//! `ActivationThrottler.scala`).
//!
//! Two limits, checked in this order on every invoke:
//! 1. invocations per minute, counted in fixed one-minute windows of the wall clock. Like
//!    OpenWhisk, a refused request still counts, so a client that keeps hammering stays refused
//!    until the window rolls over;
//! 2. activations in flight: a slot is taken when the activation is published and freed when
//!    its [`InFlight`] guard is dropped (on completion, or when the controller stops waiting).

use crate::messages;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

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
    in_flight: u64,
}

/// The throttle state of all namespaces. Shared by all request tasks; the lock is held only
/// for a few arithmetic operations.
#[derive(Debug)]
pub struct Throttler {
    per_minute: u64,
    concurrent: u64,
    namespaces: Mutex<HashMap<String, Counters>>,
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
    /// A throttler allowing `per_minute` invocations per minute and `concurrent` in flight.
    pub fn new(per_minute: u64, concurrent: u64) -> Arc<Self> {
        Arc::new(Self {
            per_minute,
            concurrent,
            namespaces: Mutex::new(HashMap::new()),
        })
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
        if c.minute != minute {
            c.minute = minute;
            c.count = 0;
        }
        c.count += 1;
        if c.count > self.per_minute {
            return Err(ThrottleError::Rate {
                count: c.count,
                allowed: self.per_minute,
            });
        }
        if c.in_flight >= self.concurrent {
            return Err(ThrottleError::Concurrent {
                count: c.in_flight,
                allowed: self.concurrent,
            });
        }
        c.in_flight += 1;
        Ok(InFlight {
            throttler: Arc::clone(self),
            namespace: namespace.to_owned(),
        })
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
}
