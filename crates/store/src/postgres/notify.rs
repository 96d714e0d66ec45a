//! Cache invalidation between processes with PostgreSQL's LISTEN/NOTIFY. Every entity,
//! identity and namespace-limits write notifies [`CHANNEL`] in its own transaction, with its
//! [`Change`] as JSON; a listener on a dedicated connection passes them on to every
//! subscriber, and says [`Change::All`] whenever it (re)connects, since it may have missed
//! some meanwhile.

use crate::Change;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio_postgres::{AsyncMessage, NoTls};

/// The notification channel of entity, identity and limits writes.
pub const CHANNEL: &str = "edgewhisk_entities";

/// PostgreSQL refuses payloads of 8000 bytes or more; a longer change is announced as "all".
const MAX_PAYLOAD: usize = 7900;

/// Changes kept for a subscriber that is behind; one that falls further behind gets
/// `RecvError::Lagged`.
pub(super) const CHANGES_BUFFER: usize = 1024;

/// How often the listener checks that its connection still answers; a connection that does
/// not within the same time is dropped and a new one made.
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// How long the listener waits before connecting again, at most.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The notification payload announcing `change`.
pub(super) fn payload(change: &Change) -> String {
    let all = || String::from(r#"{"kind":"all"}"#);
    match serde_json::to_string(change) {
        Ok(text) if text.len() < MAX_PAYLOAD => text,
        _ => all(),
    }
}

/// The change a payload announces; one that does not decode means "all".
pub(super) fn parse(payload: &str) -> Change {
    serde_json::from_str(payload).unwrap_or(Change::All)
}

/// Listens on [`CHANNEL`] for as long as the task runs, reconnecting by itself.
pub(super) async fn listen(config: tokio_postgres::Config, tx: broadcast::Sender<Change>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (payloads, mut received) = mpsc::unbounded_channel();
                // Notifications arrive through the connection, which this task drives.
                let driver = tokio::spawn(async move {
                    while let Some(message) =
                        std::future::poll_fn(|cx| connection.poll_message(cx)).await
                    {
                        match message {
                            Ok(AsyncMessage::Notification(n)) => {
                                if payloads.send(n.payload().to_owned()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "change listener connection lost");
                                return;
                            }
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        // Whatever happened while nobody listened is unknown.
                        let _ = tx.send(Change::All);
                        forward(&client, &mut received, &tx).await;
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %e, "change listener cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Passes notifications on until the connection ends or stops answering.
async fn forward(
    client: &tokio_postgres::Client,
    received: &mut mpsc::UnboundedReceiver<String>,
    tx: &broadcast::Sender<Change>,
) {
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    loop {
        tokio::select! {
            payload = received.recv() => match payload {
                // No subscriber is not an error: the next one starts from what it reads.
                Some(payload) => { let _ = tx.send(parse(&payload)); }
                None => return,
            },
            _ = ping.tick() => {
                let answered = tokio::time::timeout(PING_INTERVAL, client.simple_query("")).await;
                if !matches!(answered, Ok(Ok(_))) {
                    tracing::warn!("change listener connection does not answer");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_long_keys_become_all() {
        let change = Change::Identity { uuid: "u1".into() };
        assert_eq!(parse(&payload(&change)), change);
        let long = Change::Entity {
            path: "guest".into(),
            name: "x".repeat(MAX_PAYLOAD),
        };
        assert_eq!(payload(&long), r#"{"kind":"all"}"#);
        assert_eq!(parse(&payload(&long)), Change::All);
        assert_eq!(parse("not json"), Change::All);
    }
}
