//! `StoreConfig`: the `[store]` section of the server's config file.

use serde::{Deserialize, Serialize};

/// Tuning of the SQLite store. Defaults suit a Raspberry Pi class device with an SD card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Most activation records committed in one transaction.
    pub activation_batch_size: usize,
    /// How long the activation writer waits for more records after the first one of a batch
    /// before it commits, in ms. 0 commits whatever is queued at once. Every answer that
    /// reports a finished activation waits for its record's commit, so this window adds to
    /// the latency of each such answer; under load, records that queue up while a commit is
    /// running share the next one anyway.
    pub activation_flush_interval_ms: u64,
    /// How long a connection waits for a lock held by another connection, in ms.
    pub busy_timeout_ms: u64,
    /// Free space, in bytes, that the data directory's file system must keep: below it new
    /// activation records and entity writes are refused (507) before the disk is really full,
    /// so that deletes, checkpoints and the other files of the data directory still have room.
    /// 0 refuses only when the disk is full.
    pub min_free_bytes: u64,
    /// How often the free space is measured (statvfs), in ms; writes in between use the last
    /// figure.
    pub free_space_check_interval_ms: u64,
    /// Activation records older than this (by start) are deleted, in seconds. 0 keeps them
    /// regardless of age.
    pub activation_max_age_secs: u64,
    /// Most activation records kept per namespace; the oldest beyond it are deleted. 0 keeps
    /// any number.
    pub activation_max_per_namespace: u64,
    /// How often the retention task looks for records to delete, in ms.
    pub retention_interval_ms: u64,
    /// Most records deleted in one transaction by the retention task, so that it never holds
    /// the write lock for long.
    pub retention_batch_size: usize,
    /// Bytes of entity documents the server keeps in memory; a document larger than an
    /// eighth of this is read from the store each time instead. 0 caches no entity.
    pub entity_cache_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            activation_batch_size: 256,
            activation_flush_interval_ms: 0,
            busy_timeout_ms: 5000,
            min_free_bytes: 64 * 1024 * 1024,
            free_space_check_interval_ms: 1000,
            activation_max_age_secs: 7 * 24 * 3600,
            activation_max_per_namespace: 10_000,
            retention_interval_ms: 60_000,
            retention_batch_size: 500,
            entity_cache_bytes: crate::cache::DEFAULT_CACHE_BYTES,
        }
    }
}

/// Largest accepted `activation_batch_size`.
pub const MAX_ACTIVATION_BATCH_SIZE: usize = 65_536;
/// Largest accepted `activation_flush_interval_ms`: records wait at most this long for disk.
pub const MAX_ACTIVATION_FLUSH_INTERVAL_MS: u64 = 10_000;

/// Largest accepted `free_space_check_interval_ms` and `retention_interval_ms` (one day).
pub const MAX_CHECK_INTERVAL_MS: u64 = 24 * 3600 * 1000;

/// A `StoreConfig` value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreConfigError {
    /// `activation_batch_size` is 0 or too large.
    #[error(
        "store.activation_batch_size must be between 1 and {MAX_ACTIVATION_BATCH_SIZE}, got {0}"
    )]
    BatchSize(usize),
    /// `activation_flush_interval_ms` is too large.
    #[error(
        "store.activation_flush_interval_ms must be at most {MAX_ACTIVATION_FLUSH_INTERVAL_MS}, got {0}"
    )]
    FlushInterval(u64),
    /// `busy_timeout_ms` is 0: concurrent readers and writers would fail instead of waiting.
    #[error("store.busy_timeout_ms must be greater than 0")]
    BusyTimeout,
    /// `free_space_check_interval_ms` is 0 or too large.
    #[error(
        "store.free_space_check_interval_ms must be between 1 and {MAX_CHECK_INTERVAL_MS}, got {0}"
    )]
    FreeSpaceCheckInterval(u64),
    /// `retention_interval_ms` is 0 or too large.
    #[error("store.retention_interval_ms must be between 1 and {MAX_CHECK_INTERVAL_MS}, got {0}")]
    RetentionInterval(u64),
    /// `retention_batch_size` is 0 or too large.
    #[error(
        "store.retention_batch_size must be between 1 and {MAX_ACTIVATION_BATCH_SIZE}, got {0}"
    )]
    RetentionBatchSize(usize),
}

impl StoreConfig {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), StoreConfigError> {
        if self.activation_batch_size == 0 || self.activation_batch_size > MAX_ACTIVATION_BATCH_SIZE
        {
            return Err(StoreConfigError::BatchSize(self.activation_batch_size));
        }
        if self.activation_flush_interval_ms > MAX_ACTIVATION_FLUSH_INTERVAL_MS {
            return Err(StoreConfigError::FlushInterval(
                self.activation_flush_interval_ms,
            ));
        }
        if self.busy_timeout_ms == 0 {
            return Err(StoreConfigError::BusyTimeout);
        }
        if !(1..=MAX_CHECK_INTERVAL_MS).contains(&self.free_space_check_interval_ms) {
            return Err(StoreConfigError::FreeSpaceCheckInterval(
                self.free_space_check_interval_ms,
            ));
        }
        if !(1..=MAX_CHECK_INTERVAL_MS).contains(&self.retention_interval_ms) {
            return Err(StoreConfigError::RetentionInterval(
                self.retention_interval_ms,
            ));
        }
        if self.retention_batch_size == 0 || self.retention_batch_size > MAX_ACTIVATION_BATCH_SIZE {
            return Err(StoreConfigError::RetentionBatchSize(
                self.retention_batch_size,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(StoreConfig::default().validate(), Ok(()));
    }

    #[test]
    fn zero_batch_size_and_zero_busy_timeout_are_rejected() {
        let c = StoreConfig {
            activation_batch_size: 0,
            ..StoreConfig::default()
        };
        assert_eq!(c.validate(), Err(StoreConfigError::BatchSize(0)));
        let c = StoreConfig {
            busy_timeout_ms: 0,
            ..StoreConfig::default()
        };
        assert_eq!(c.validate(), Err(StoreConfigError::BusyTimeout));
        let c = StoreConfig {
            activation_flush_interval_ms: MAX_ACTIVATION_FLUSH_INTERVAL_MS + 1,
            ..StoreConfig::default()
        };
        assert!(matches!(
            c.validate(),
            Err(StoreConfigError::FlushInterval(_))
        ));
        let c = StoreConfig {
            free_space_check_interval_ms: 0,
            ..StoreConfig::default()
        };
        assert_eq!(
            c.validate(),
            Err(StoreConfigError::FreeSpaceCheckInterval(0))
        );
        let c = StoreConfig {
            retention_interval_ms: 0,
            ..StoreConfig::default()
        };
        assert_eq!(c.validate(), Err(StoreConfigError::RetentionInterval(0)));
        let c = StoreConfig {
            retention_batch_size: 0,
            ..StoreConfig::default()
        };
        assert_eq!(c.validate(), Err(StoreConfigError::RetentionBatchSize(0)));
    }

    #[test]
    fn unknown_keys_are_rejected_and_missing_keys_default() {
        let c: StoreConfig = serde_json::from_str(r#"{"busy_timeout_ms": 7}"#).unwrap();
        assert_eq!(c.busy_timeout_ms, 7);
        assert_eq!(c.activation_batch_size, 256);
        assert!(serde_json::from_str::<StoreConfig>(r#"{"batch": 1}"#).is_err());
    }
}
