//! The invoker's configuration (`[pool]` in the config file).

use serde::{Deserialize, Serialize};

/// Stem cells to keep for one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrewarmConfig {
    /// Runtime kind, e.g. `nodejs:20`.
    pub kind: String,
    /// How many started, uninitialised instances to keep.
    pub count: u32,
    /// Their memory size in MB (only actions of this memory size can take them).
    pub memory_mb: u64,
}

/// Container pool settings (OpenWhisk `ContainerPoolConfig` and invoker `application.conf`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Memory, in MB, that all instances together may claim (the sum of their action memory
    /// limits). The "backend capacity" of `edgewhisk bench concurrency` (`docs/benchmarks.md`)
    /// is this divided by the action memory.
    pub user_memory_mb: u64,
    /// Stem cells started ahead of demand.
    pub prewarm: Vec<PrewarmConfig>,
    /// How long an idle warm instance stays ready before it is suspended, ms.
    pub pause_grace_ms: u64,
    /// How long an idle instance is kept before it is removed, ms.
    pub idle_timeout_ms: u64,
    /// How long to wait for a runner's log sentinels after a run, ms.
    pub log_sentinel_timeout_ms: u64,
    /// Most bytes one action's zip archive may unpack to (counted while unpacking).
    pub archive_max_bytes: u64,
    /// Most entries (files and directories) one action's zip archive may hold.
    pub archive_max_entries: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            user_memory_mb: 1024,
            prewarm: vec![PrewarmConfig {
                kind: "nodejs:20".into(),
                count: 2,
                memory_mb: 256,
            }],
            pause_grace_ms: 10_000,
            idle_timeout_ms: 600_000,
            log_sentinel_timeout_ms: 2_000,
            archive_max_bytes: crate::container::archive::DEFAULT_MAX_UNPACKED_BYTES,
            archive_max_entries: crate::container::archive::DEFAULT_MAX_ENTRIES,
        }
    }
}

/// A pool setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolConfigError {
    /// `user_memory_mb` is zero.
    #[error("pool.user_memory_mb must be greater than 0")]
    NoMemory,
    /// Stem cells alone exceed the pool.
    #[error("pool.prewarm needs {needed} MB but pool.user_memory_mb is {available}")]
    PrewarmTooLarge {
        /// MB the stem cells claim.
        needed: u64,
        /// MB the pool has.
        available: u64,
    },
    /// Idle timeout shorter than the pause grace.
    #[error("pool.idle_timeout_ms must not be smaller than pool.pause_grace_ms")]
    IdleBeforePause,
    /// An archive limit is zero: no archive action could run.
    #[error("pool.archive_max_bytes and pool.archive_max_entries must be greater than 0")]
    NoArchiveRoom,
}

impl PoolConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), PoolConfigError> {
        if self.user_memory_mb == 0 {
            return Err(PoolConfigError::NoMemory);
        }
        let needed: u64 = self
            .prewarm
            .iter()
            .map(|p| u64::from(p.count) * p.memory_mb)
            .sum();
        if needed > self.user_memory_mb {
            return Err(PoolConfigError::PrewarmTooLarge {
                needed,
                available: self.user_memory_mb,
            });
        }
        if self.idle_timeout_ms < self.pause_grace_ms {
            return Err(PoolConfigError::IdleBeforePause);
        }
        if self.archive_max_bytes == 0 || self.archive_max_entries == 0 {
            return Err(PoolConfigError::NoArchiveRoom);
        }
        Ok(())
    }

    /// The limits the container factories unpack archives with.
    pub fn archive_limits(&self) -> crate::container::archive::ArchiveLimits {
        crate::container::archive::ArchiveLimits {
            max_bytes: self.archive_max_bytes,
            max_entries: self.archive_max_entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_refused() {
        assert!(PoolConfig::default().validate().is_ok());
        let c = PoolConfig {
            user_memory_mb: 0,
            ..Default::default()
        };
        assert_eq!(c.validate(), Err(PoolConfigError::NoMemory));
        let c = PoolConfig {
            user_memory_mb: 256,
            ..Default::default()
        };
        assert!(matches!(
            c.validate(),
            Err(PoolConfigError::PrewarmTooLarge { .. })
        ));
    }
}
