//! `StoreConfig`: the `[store]` section of the server's config file.

use serde::{Deserialize, Serialize};

/// Tuning of the SQLite store. Defaults suit a Raspberry Pi class device with an SD card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Most activation records committed in one transaction.
    pub activation_batch_size: usize,
    /// How long the activation writer waits for more records after the first one of a batch
    /// before it commits, in ms. 0 commits whatever is queued at once.
    pub activation_flush_interval_ms: u64,
    /// How long a connection waits for a lock held by another connection, in ms.
    pub busy_timeout_ms: u64,
    /// Bytes of entity documents the server keeps in memory; a document larger than an
    /// eighth of this is read from the store each time instead. 0 caches no entity.
    pub entity_cache_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            activation_batch_size: 256,
            activation_flush_interval_ms: 10,
            busy_timeout_ms: 5000,
            entity_cache_bytes: crate::cache::DEFAULT_CACHE_BYTES,
        }
    }
}

/// Largest accepted `activation_batch_size`.
pub const MAX_ACTIVATION_BATCH_SIZE: usize = 65_536;
/// Largest accepted `activation_flush_interval_ms`: records wait at most this long for disk.
pub const MAX_ACTIVATION_FLUSH_INTERVAL_MS: u64 = 10_000;

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
    }

    #[test]
    fn unknown_keys_are_rejected_and_missing_keys_default() {
        let c: StoreConfig = serde_json::from_str(r#"{"busy_timeout_ms": 7}"#).unwrap();
        assert_eq!(c.busy_timeout_ms, 7);
        assert_eq!(c.activation_batch_size, 256);
        assert!(serde_json::from_str::<StoreConfig>(r#"{"batch": 1}"#).is_err());
    }
}
