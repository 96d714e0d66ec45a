//! Leadership by a session-level advisory lock: one process of the cluster does what must be
//! done once (fire an alarm), and another takes over when it is gone.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

/// How often a waiting process tries the lock, and how often the leader checks that its
/// connection (and with it the lock) is still there.
const POLL: Duration = Duration::from_secs(1);

/// Asks the server to end the session (and so free the lock) once it has not heard from this
/// process for 10 s, so that a leader cut off by the network is replaced, and
/// only after it noticed (within `POLL` + 3 × `POLL`) and stopped. `idle_session_timeout`
/// needs PostgreSQL 14; older servers fall back on the TCP keepalive settings.
const SESSION_SETTINGS: [&str; 2] = [
    "SET idle_session_timeout = '10s'",
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3",
];

/// The advisory lock key of `name`, computed by the server.
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtextextended('edgewhisk:' || $1, 0))";

/// Proof that this process holds the lock `name` (see [`PostgresStore::lead`]): on its own
/// connection, outside the pool. Dropping it closes that connection, which releases the lock.
///
/// [`PostgresStore::lead`]: super::PostgresStore::lead
#[derive(Debug)]
pub struct Leadership {
    name: String,
    lost: watch::Receiver<bool>,
    /// Drives the connection; ends when it closes.
    driver: JoinHandle<()>,
    /// Checks every [`POLL`] that the connection answers; holds the client.
    watchdog: JoinHandle<()>,
}

impl Leadership {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Resolves when the lock's connection closed or stopped answering: the lock is (or is
    /// about to be) free for another process, and this one must stop acting as the leader.
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        // A dropped sender means both tasks ended: lost as well.
        let _ = lost.wait_for(|lost| *lost).await;
    }

    /// Whether [`lost`](Self::lost) has resolved.
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // Closing the connection ends the session, which releases the lock.
        self.watchdog.abort();
        self.driver.abort();
    }
}

/// Waits until this process holds the lock `name`, trying every [`POLL`] on a fresh
/// connection from `config` (reconnecting after failures).
pub(super) async fn lead(config: &tokio_postgres::Config, name: &str) -> Leadership {
    loop {
        match config.connect(NoTls).await {
            Ok((client, connection)) => {
                let (lost_tx, lost) = watch::channel(false);
                let lost_tx = Arc::new(lost_tx);
                let on_close = Arc::clone(&lost_tx);
                let driver = tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!(error = %e, "leadership connection failed");
                    }
                    on_close.send_replace(true);
                });
                for setting in SESSION_SETTINGS {
                    if let Err(e) = client.batch_execute(setting).await {
                        tracing::debug!(error = %e, setting, "leadership session setting refused");
                    }
                }
                if wait_for_lock(&client, name).await {
                    let watchdog = tokio::spawn(watch_connection(client, lost_tx));
                    return Leadership {
                        name: name.to_owned(),
                        lost,
                        driver,
                        watchdog,
                    };
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %e, lock = name, "cannot connect to try the lock"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Tries the lock every [`POLL`]; `true` once held, `false` when the connection failed.
async fn wait_for_lock(client: &Client, name: &str) -> bool {
    loop {
        match client.query_one(TRY_LOCK, &[&name]).await {
            Ok(row) if row.get::<_, bool>(0) => return true,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, lock = name, "trying the lock failed");
                return false;
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Pings the leader's connection every [`POLL`]; marks the lock lost when it does not answer
/// within a few polls.
async fn watch_connection(client: Client, lost: Arc<watch::Sender<bool>>) {
    loop {
        tokio::time::sleep(POLL).await;
        let answered = tokio::time::timeout(POLL * 3, client.simple_query("")).await;
        if !matches!(answered, Ok(Ok(_))) {
            lost.send_replace(true);
            return;
        }
    }
}
