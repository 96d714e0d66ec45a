//! Activation retention, as in the SQLite store: every retention interval, records older than
//! the configured age and those beyond the configured count per namespace are deleted, a
//! batch per statement. Every process of a cluster may run it at once: each delete names the
//! records to delete by their age or by their rank among the newest, so concurrent passes
//! delete the same records rather than too many.

use super::error::{classify, pool_error};
use crate::StoreError;
use deadpool_postgres::Pool;
use std::time::Duration;
use tokio_postgres::types::ToSql;

/// The retention settings of a store.
#[derive(Debug, Clone)]
pub(super) struct Retention {
    pub(super) pool: Pool,
    /// 0 = no age limit.
    pub(super) max_age_ms: u64,
    /// 0 = no count limit.
    pub(super) max_per_namespace: u64,
    pub(super) interval: Duration,
    pub(super) batch_size: usize,
}

const BY_AGE: &str = "DELETE FROM activations WHERE id IN (SELECT id FROM activations \
     WHERE namespace = $1 AND start < $2 LIMIT $3)";

/// Beyond the newest `$2` in list order (newest `start` first, ties by id).
const BY_COUNT: &str = "DELETE FROM activations WHERE id IN (SELECT id FROM activations \
     WHERE namespace = $1 ORDER BY start DESC, id ASC OFFSET $2 LIMIT $3)";

impl Retention {
    /// Whether there is anything to enforce.
    pub(super) fn enabled(&self) -> bool {
        self.max_age_ms > 0 || self.max_per_namespace > 0
    }

    /// Runs a pass every interval, forever.
    pub(super) async fn run(self) {
        loop {
            tokio::time::sleep(self.interval).await;
            match self.pass().await {
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(deleted, "activation retention pass"),
                Err(e) => tracing::warn!(error = %e, "activation retention pass failed"),
            }
        }
    }

    /// One pass over every namespace; returns how many records it deleted.
    pub(super) async fn pass(&self) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let db = |e: tokio_postgres::Error| classify(&e);
        let namespaces: Vec<(String, i64)> = client
            .query(
                "SELECT namespace, COUNT(*) FROM activations GROUP BY namespace",
                &[],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let rows = u64::try_from(self.batch_size).unwrap_or(u64::MAX);
        let batch = i64::try_from(self.batch_size).unwrap_or(i64::MAX);
        let cutoff = edgewhisk_entity::time::now_millis().saturating_sub(self.max_age_ms);
        let cutoff = i64::try_from(cutoff).unwrap_or(i64::MAX);
        let keep = i64::try_from(self.max_per_namespace).unwrap_or(i64::MAX);
        let by_age = client.prepare_cached(BY_AGE).await.map_err(db)?;
        let by_count = client.prepare_cached(BY_COUNT).await.map_err(db)?;
        let mut deleted = 0;
        for (namespace, count) in namespaces {
            if self.max_age_ms > 0 {
                let params: [&(dyn ToSql + Sync); 3] = [&namespace, &cutoff, &batch];
                deleted += drain(&client, &by_age, &params, rows).await?;
            }
            if keep > 0 && count > keep {
                let params: [&(dyn ToSql + Sync); 3] = [&namespace, &keep, &batch];
                deleted += drain(&client, &by_count, &params, rows).await?;
            }
        }
        Ok(deleted)
    }
}

/// Runs a delete of at most `batch` rows until it deletes fewer; returns how many rows it
/// deleted.
async fn drain(
    client: &tokio_postgres::Client,
    stmt: &tokio_postgres::Statement,
    params: &[&(dyn ToSql + Sync)],
    batch: u64,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        let n = client
            .execute(stmt, params)
            .await
            .map_err(|e| classify(&e))?;
        deleted += n;
        if n < batch {
            return Ok(deleted);
        }
    }
}
