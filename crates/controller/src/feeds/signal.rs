//! The wake-up signal of the feed scheduler.

use std::sync::Arc;
use tokio::sync::Notify;

/// Wakes the [`FeedService`](super::FeedService) when a lifecycle event changed the stored
/// feeds. Part of the [`AppState`](crate::state::AppState); cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct FeedSignal(Arc<Notify>);

impl FeedSignal {
    /// Tells the scheduler to reload the stored feeds.
    pub(crate) fn changed(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next change (or at once when one is pending).
    pub(crate) async fn notified(&self) {
        self.0.notified().await;
    }
}
