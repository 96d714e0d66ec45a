//! Action limits and their validation (OpenWhisk `TimeLimit`, `MemoryLimit`, `LogLimit`,
//! `IntraConcurrencyLimit`). Bounds are a value passed in, never global configuration.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The limits of an action, as stored and returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLimits {
    /// Time limit in milliseconds.
    pub timeout: u64,
    /// Memory limit in MB.
    pub memory: u64,
    /// Log limit in MB (0 disables log collection).
    pub logs: u64,
    /// Activations one instance may run at once.
    pub concurrency: u32,
}

impl ActionLimits {
    /// How long past the time limit the invoker waits for a backend that did not end the
    /// call itself (backends enforce the limit; this only guards against one that does not).
    pub const BACKEND_SLACK: Duration = Duration::from_secs(5);

    /// How long past the time limit a waiter gives a running activation before it takes the
    /// answer for lost (a sequence waiting for a component, a throttle slot waiting for
    /// release): room for a cold start, log collection and a busy invoker.
    pub const COMPLETION_SLACK: Duration = Duration::from_secs(60);

    /// The time limit as a duration.
    pub fn time_limit(&self) -> Duration {
        Duration::from_millis(self.timeout)
    }

    /// How long to wait for the completion of an activation that has been published.
    pub fn completion_wait(&self) -> Duration {
        self.time_limit() + Self::COMPLETION_SLACK
    }

    /// When nobody waits for an activation any more, the bound after which its throttle slot
    /// is freed even without a completion: init and run may each take the whole limit.
    pub fn release_bound(&self) -> Duration {
        Duration::from_millis(self.timeout.saturating_mul(2)) + Self::COMPLETION_SLACK
    }
}

/// Limits as they arrive in a PUT body: each may be omitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLimitsPut {
    /// Time limit in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Memory limit in MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Log limit in MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<u64>,
    /// Intra-instance concurrency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Accepted for compatibility with OpenWhisk's new scheduler, ignored.
    #[serde(default, skip_serializing)]
    pub instances: Option<u64>,
}

/// The system's allowed ranges and defaults for action limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitBounds {
    /// Smallest time limit, ms.
    pub min_timeout: u64,
    /// Largest time limit, ms.
    pub max_timeout: u64,
    /// Default time limit, ms.
    pub default_timeout: u64,
    /// Smallest memory limit, MB.
    pub min_memory: u64,
    /// Largest memory limit, MB.
    pub max_memory: u64,
    /// Default memory limit, MB.
    pub default_memory: u64,
    /// Smallest log limit, MB.
    pub min_logs: u64,
    /// Largest log limit, MB.
    pub max_logs: u64,
    /// Default log limit, MB.
    pub default_logs: u64,
    /// Smallest intra-instance concurrency.
    pub min_concurrency: u32,
    /// Largest intra-instance concurrency.
    pub max_concurrency: u32,
    /// Default intra-instance concurrency.
    pub default_concurrency: u32,
}

impl Default for LimitBounds {
    fn default() -> Self {
        Self {
            min_timeout: 100,
            max_timeout: 300_000,
            default_timeout: 60_000,
            min_memory: 128,
            max_memory: 512,
            default_memory: 256,
            min_logs: 0,
            max_logs: 10,
            default_logs: 10,
            min_concurrency: 1,
            max_concurrency: 200,
            default_concurrency: 1,
        }
    }
}

/// A limit outside its allowed range; the display text is OpenWhisk's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// Time limit below the minimum.
    #[error(
        "requirement failed: duration {0} milliseconds below allowed threshold of {1} milliseconds"
    )]
    TimeoutTooSmall(u64, u64),
    /// Time limit above the maximum.
    #[error(
        "requirement failed: duration {0} milliseconds exceeds allowed threshold of {1} milliseconds"
    )]
    TimeoutTooLarge(u64, u64),
    /// Memory limit below the minimum.
    #[error("requirement failed: memory size {0} MB below allowed threshold of {1} MB")]
    MemoryTooSmall(u64, u64),
    /// Memory limit above the maximum.
    #[error("requirement failed: memory size {0} MB exceeds allowed threshold of {1} MB")]
    MemoryTooLarge(u64, u64),
    /// Log limit below the minimum.
    #[error("requirement failed: log size {0} MB below allowed threshold of {1} MB")]
    LogsTooSmall(u64, u64),
    /// Log limit above the maximum.
    #[error("requirement failed: log size {0} MB exceeds allowed threshold of {1} MB")]
    LogsTooLarge(u64, u64),
    /// Concurrency below the minimum.
    #[error("requirement failed: concurrency {0} below allowed threshold of {1}")]
    ConcurrencyTooSmall(u32, u32),
    /// Concurrency above the maximum.
    #[error("requirement failed: concurrency {0} exceeds allowed threshold of {1}")]
    ConcurrencyTooLarge(u32, u32),
}

impl LimitBounds {
    /// The limits a new action gets when it names none.
    pub fn defaults(&self) -> ActionLimits {
        ActionLimits {
            timeout: self.default_timeout,
            memory: self.default_memory,
            logs: self.default_logs,
            concurrency: self.default_concurrency,
        }
    }

    /// Applies `put` over `base` and checks every field against the bounds.
    pub fn apply(
        &self,
        base: ActionLimits,
        put: &ActionLimitsPut,
    ) -> Result<ActionLimits, LimitError> {
        let l = ActionLimits {
            timeout: put.timeout.unwrap_or(base.timeout),
            memory: put.memory.unwrap_or(base.memory),
            logs: put.logs.unwrap_or(base.logs),
            concurrency: put.concurrency.unwrap_or(base.concurrency),
        };
        if l.timeout < self.min_timeout {
            return Err(LimitError::TimeoutTooSmall(l.timeout, self.min_timeout));
        }
        if l.timeout > self.max_timeout {
            return Err(LimitError::TimeoutTooLarge(l.timeout, self.max_timeout));
        }
        if l.memory < self.min_memory {
            return Err(LimitError::MemoryTooSmall(l.memory, self.min_memory));
        }
        if l.memory > self.max_memory {
            return Err(LimitError::MemoryTooLarge(l.memory, self.max_memory));
        }
        if l.logs < self.min_logs {
            return Err(LimitError::LogsTooSmall(l.logs, self.min_logs));
        }
        if l.logs > self.max_logs {
            return Err(LimitError::LogsTooLarge(l.logs, self.max_logs));
        }
        if l.concurrency < self.min_concurrency {
            return Err(LimitError::ConcurrencyTooSmall(
                l.concurrency,
                self.min_concurrency,
            ));
        }
        if l.concurrency > self.max_concurrency {
            return Err(LimitError::ConcurrencyTooLarge(
                l.concurrency,
                self.max_concurrency,
            ));
        }
        Ok(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_fills_defaults_and_overrides() {
        let b = LimitBounds::default();
        let put = ActionLimitsPut {
            memory: Some(128),
            ..Default::default()
        };
        let l = b.apply(b.defaults(), &put).unwrap();
        assert_eq!(
            l,
            ActionLimits {
                timeout: 60_000,
                memory: 128,
                logs: 10,
                concurrency: 1
            }
        );
    }

    #[test]
    fn apply_refuses_each_out_of_range_field_with_openwhisk_text() {
        let b = LimitBounds::default();
        let cases = [
            (
                ActionLimitsPut {
                    timeout: Some(99),
                    ..Default::default()
                },
                "requirement failed: duration 99 milliseconds below allowed threshold of 100 milliseconds",
            ),
            (
                ActionLimitsPut {
                    timeout: Some(300_001),
                    ..Default::default()
                },
                "requirement failed: duration 300001 milliseconds exceeds allowed threshold of 300000 milliseconds",
            ),
            (
                ActionLimitsPut {
                    memory: Some(1024),
                    ..Default::default()
                },
                "requirement failed: memory size 1024 MB exceeds allowed threshold of 512 MB",
            ),
            (
                ActionLimitsPut {
                    memory: Some(64),
                    ..Default::default()
                },
                "requirement failed: memory size 64 MB below allowed threshold of 128 MB",
            ),
            (
                ActionLimitsPut {
                    logs: Some(11),
                    ..Default::default()
                },
                "requirement failed: log size 11 MB exceeds allowed threshold of 10 MB",
            ),
            (
                ActionLimitsPut {
                    concurrency: Some(0),
                    ..Default::default()
                },
                "requirement failed: concurrency 0 below allowed threshold of 1",
            ),
            (
                ActionLimitsPut {
                    concurrency: Some(201),
                    ..Default::default()
                },
                "requirement failed: concurrency 201 exceeds allowed threshold of 200",
            ),
        ];
        for (put, msg) in cases {
            assert_eq!(b.apply(b.defaults(), &put).unwrap_err().to_string(), msg);
        }
    }
}
