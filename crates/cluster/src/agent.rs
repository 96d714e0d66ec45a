//! The invoker's side of the cluster (OpenWhisk `InvokerReactive`'s message consumer and its
//! health pinger): takes activations from `<p>.invoker.<id>.activate`, acknowledges each at
//! once, runs it on the [`Invoker`] and publishes its completion to the controller that sent
//! it. Pings `<p>.health` every ping interval.

use crate::connection::ClusterError;
use crate::wire::{
    self, Ack, ActivateEnvelope, CompletionEnvelope, DEFAULT_PREFIX, InvokerPing, Subjects,
};
use async_nats::{Client, Message, Subscriber};
use edgewhisk_invoker::Invoker;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a stopping agent keeps refusing the activations that arrived before it
/// unsubscribed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// How an invoker takes part in the cluster.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Its id: 0, 1, … (`invoker0`, `invoker1` upstream). Unique in the cluster.
    pub invoker_id: u32,
    /// The memory it gives to actions, MB (the pool's user memory).
    pub user_memory_mb: u64,
    /// How often it pings (1 s by default, as upstream).
    pub ping_interval: Duration,
    /// The subject prefix ([`DEFAULT_PREFIX`] by default).
    pub prefix: String,
}

impl AgentSettings {
    /// Settings for invoker `invoker_id` with `user_memory_mb`, pinging every second under the
    /// default prefix.
    pub fn new(invoker_id: u32, user_memory_mb: u64) -> Self {
        Self {
            invoker_id,
            user_memory_mb,
            ping_interval: Duration::from_secs(1),
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

/// A running agent. Stop it with [`InvokerAgent::shutdown`]; dropping it stops taking work
/// and pinging without waiting.
#[derive(Debug)]
pub struct InvokerAgent {
    stop: watch::Sender<bool>,
    /// Raised on drop: activations in flight end without publishing, as in a crash.
    kill: watch::Sender<bool>,
    consumer: Option<JoinHandle<()>>,
    pinger: Option<JoinHandle<()>>,
    in_flight: Arc<AtomicU64>,
    idle: watch::Receiver<u64>,
    client: Client,
}

/// What the consumer and the completion tasks share.
#[derive(Debug)]
struct Shared {
    client: Client,
    invoker: Invoker,
    invoker_id: u32,
    in_flight: Arc<AtomicU64>,
    pending: watch::Sender<u64>,
    killed: watch::Receiver<bool>,
}

impl InvokerAgent {
    /// Subscribes to the invoker's activate subject and starts pinging.
    pub async fn start(
        client: Client,
        settings: AgentSettings,
        invoker: Invoker,
    ) -> Result<InvokerAgent, ClusterError> {
        let subjects = Subjects::new(&settings.prefix);
        let subscriber = client
            .subscribe(subjects.activate(settings.invoker_id))
            .await?;
        let (stop, stopped) = watch::channel(false);
        let in_flight = Arc::new(AtomicU64::new(0));
        let (pending, idle) = watch::channel(0u64);
        let (kill, killed) = watch::channel(false);
        let shared = Arc::new(Shared {
            client: client.clone(),
            invoker,
            invoker_id: settings.invoker_id,
            in_flight: Arc::clone(&in_flight),
            pending,
            killed,
        });
        let consumer = tokio::spawn(consume(subscriber, shared, stopped.clone()));
        let ping = InvokerPing {
            invoker_id: settings.invoker_id,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            user_memory_mb: settings.user_memory_mb,
            in_flight: 0,
            draining: false,
        };
        let pinger = tokio::spawn(pings(
            client.clone(),
            subjects.health(),
            ping,
            settings.ping_interval,
            Arc::clone(&in_flight),
            stopped,
        ));
        Ok(InvokerAgent {
            stop,
            kill,
            consumer: Some(consumer),
            pinger: Some(pinger),
            in_flight,
            idle,
            client,
        })
    }

    /// Activations taken and not yet completed.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Stops taking work (unsubscribes first, then sends a last ping marked draining so the
    /// controllers place nothing more here), and returns once the completion of every
    /// activation already taken is published. The [`Invoker`] itself is not shut down: call
    /// its `shutdown` (at the same time, to bound the wait by its grace period).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(consumer) = self.consumer.take() {
            let _ = consumer.await;
        }
        if let Some(pinger) = self.pinger.take() {
            let _ = pinger.await;
        }
        let _ = self.idle.wait_for(|n| *n == 0).await;
        let _ = self.client.flush().await;
    }
}

impl Drop for InvokerAgent {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let _ = self.kill.send(true);
        for task in [self.consumer.take(), self.pinger.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

/// Takes activations until told to stop, then unsubscribes.
async fn consume(
    mut subscriber: Subscriber,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = raised(&mut stopped) => break,
            next = subscriber.next() => match next {
                Some(message) => take(&shared, message).await,
                None => break,
            },
        }
    }
    // Unsubscribe, then refuse what had already arrived, so its controllers place it
    // elsewhere at once instead of waiting out the ack timeout.
    if subscriber.drain().await.is_ok() {
        let refuse = async {
            while let Some(message) = subscriber.next().await {
                if let Some(reply) = message.reply {
                    shared
                        .ack(reply, &Ack::refused("the invoker is shutting down"))
                        .await;
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, refuse).await;
    }
}

/// Answers one activate request: refused when malformed or when the invoker does not take
/// it; otherwise accepted, and its completion is published when it ends.
async fn take(shared: &Arc<Shared>, message: Message) {
    let envelope: Result<ActivateEnvelope, _> = wire::decode(&message.payload);
    let ack = match envelope {
        Err(e) => {
            tracing::warn!(error = %e, bytes = message.payload.len(), "dropped a malformed activation message");
            Ack::refused(format!("malformed activation message: {e}"))
        }
        Ok(envelope) => {
            let activation_id = envelope.message.activation_id.clone();
            match shared.invoker.submit(envelope.message) {
                Err(e) => {
                    tracing::info!(%activation_id, error = %e, "refused an activation");
                    Ack::refused(e.to_string())
                }
                Ok(done) => {
                    shared.in_flight.fetch_add(1, Ordering::Relaxed);
                    shared.pending.send_modify(|n| *n += 1);
                    let task = Arc::clone(shared);
                    tokio::spawn(async move {
                        let mut killed = task.killed.clone();
                        tokio::select! {
                            () = raised(&mut killed) => {}
                            done = done => if let Ok(completion) = done {
                                task.complete(&envelope.completion_subject, completion).await;
                            },
                        }
                        task.in_flight.fetch_sub(1, Ordering::Relaxed);
                        task.pending.send_modify(|n| *n = n.saturating_sub(1));
                    });
                    Ack::accepted()
                }
            }
        }
    };
    if let Some(reply) = message.reply {
        shared.ack(reply, &ack).await;
    }
}

impl Shared {
    /// Answers an activate request.
    async fn ack(&self, reply: async_nats::Subject, ack: &Ack) {
        match wire::encode(ack) {
            Ok(bytes) => {
                if let Err(e) = self.client.publish(reply, bytes).await {
                    tracing::warn!(error = %e, "could not acknowledge an activation");
                }
            }
            Err(e) => tracing::error!(error = %e, "could not encode an acknowledgement"),
        }
    }

    /// Publishes a completion to the controller that asked for it.
    async fn complete(
        &self,
        subject: &str,
        completion: edgewhisk_entity::connector::CompletionMessage,
    ) {
        let activation_id = completion.activation.activation_id.clone();
        let envelope = CompletionEnvelope {
            invoker_id: self.invoker_id,
            message: completion,
        };
        let sent = match wire::encode(&envelope) {
            Ok(bytes) => self
                .client
                .publish(subject.to_owned(), bytes)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            // The record is stored; the controller ends the activation by its own timeout.
            tracing::warn!(%activation_id, error = %e, "could not publish a completion");
        }
    }
}

/// Pings every `interval` until told to stop, then once more marked draining.
async fn pings(
    client: Client,
    subject: String,
    mut ping: InvokerPing,
    interval: Duration,
    in_flight: Arc<AtomicU64>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = raised(&mut stopped) => break,
            _ = ticks.tick() => {}
        }
        ping.in_flight = in_flight.load(Ordering::Relaxed);
        publish_ping(&client, &subject, &ping).await;
    }
    ping.draining = true;
    ping.in_flight = in_flight.load(Ordering::Relaxed);
    publish_ping(&client, &subject, &ping).await;
}

/// Resolves once `flag` is true (or its sender is gone).
async fn raised(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|s| *s).await;
}

async fn publish_ping(client: &Client, subject: &str, ping: &InvokerPing) {
    if let Ok(bytes) = wire::encode(ping) {
        // While disconnected a ping is dropped or queued; the next one follows anyway.
        let _ = client.publish(subject.to_owned(), bytes).await;
    }
}
