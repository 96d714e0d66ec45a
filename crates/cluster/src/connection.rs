//! The NATS connection the cluster roles share, and why it could not be used.

use std::time::Duration;

/// Why the cluster messaging could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The NATS server could not be reached.
    #[error("cannot connect to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    /// A subscription was refused.
    #[error("cannot subscribe on NATS: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
}

/// The longest pause between two reconnection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Connects to the NATS server at `url` (comma-separated for several) the way the cluster
/// roles need: retry forever, also at the first connection, with a short delay (up to one
/// second) between attempts, so a restarted `nats-server` is back in use within a second.
pub async fn connect(url: &str) -> Result<async_nats::Client, ClusterError> {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            let steps = u32::try_from(attempts).unwrap_or(u32::MAX).min(10);
            (Duration::from_millis(100) * steps).min(MAX_RECONNECT_DELAY)
        })
        .connect(url)
        .await?;
    Ok(client)
}
