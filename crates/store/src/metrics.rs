//! The activation writer's metrics (`docs/design/016-metrics.md`): how many records each
//! group commit carried and how long it took.

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Batch sizes and commit times of one store's activation writer. Cheap to clone; clones
/// count into the same series.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    batch_records: Histogram,
    commit_seconds: Histogram,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self {
            // 1, 2, 4, … 512 records.
            batch_records: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            // 0.25 ms to about 4 s.
            commit_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 15)),
        }
    }
}

impl StoreMetrics {
    /// Registers both histograms in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "edgewhisk_store_batch_records",
            "Activation records per group commit",
            self.batch_records.clone(),
        );
        registry.register(
            "edgewhisk_store_commit_seconds",
            "Time of one group commit of activation records, waiting for the write lock included",
            self.commit_seconds.clone(),
        );
    }

    /// Counts one commit of `records` records that took `took`.
    pub(crate) fn commit(&self, records: usize, took: Duration) {
        // Batches are bounded by the configured batch size: far below 2^52.
        #[allow(clippy::cast_precision_loss)]
        self.batch_records.observe(records as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }
}
