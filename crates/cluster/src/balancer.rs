//! The controller's cluster load balancer (OpenWhisk `ShardingContainerPoolBalancer` with
//! `InvokerSupervision`): places each activation on an invoker with the pure rules of
//! `edgewhisk_controller::loadbalancer::{sharding, capacity, health}`, sends it as a NATS
//! request, and ends it with the invoker's completion or, when that cannot come any more,
//! with a whisk-error record of its own (a forced completion). Failure handling is described
//! in `docs/design/015-cluster-messaging.md`.

use crate::connection::ClusterError;
use crate::wire::{
    self, Ack, ActivateEnvelope, CompletionEnvelope, ControllerPing, DEFAULT_PREFIX, InvokerPing,
    Subjects,
};
use async_nats::client::RequestErrorKind;
use async_nats::{Client, Request, Subscriber};
use async_trait::async_trait;
use edgewhisk_controller::loadbalancer::capacity::{Capacity, Need};
use edgewhisk_controller::loadbalancer::health::{Health, InvokerHealth, Outcome};
use edgewhisk_controller::loadbalancer::sharding::{self, Candidate};
use edgewhisk_controller::loadbalancer::{LoadBalancer, LoadBalancerError};
use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage, ExecutableAction};
use edgewhisk_entity::{
    ActionLimits, ActivationId, Exec, FullyQualifiedEntityName, LimitBounds, Parameters, Status,
};
use edgewhisk_store::ActivationStore;
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The margin past twice an action's time limit after which a controller stops waiting for
/// a completion and ends the activation itself: room for a cold start, a queue on the
/// invoker and log collection (the same slack the controller gives any completion, one
/// minute). Twice the limit because init and run may each take the whole limit.
pub const COMPLETION_MARGIN: Duration = ActionLimits::COMPLETION_SLACK;

/// The result of a forced completion when the invoker went offline or restarted.
pub const INVOKER_LOST: &str =
    "The invoker running this activation stopped before it completed; its result is lost.";

/// The result of a forced completion when no completion came in time.
pub const COMPLETION_TIMED_OUT: &str =
    "No completion arrived from the invoker within the action's time limit and margin.";

/// The code of the health test action: a no-op.
const HEALTH_TEST_CODE: &str = "function main(params) { return params; }";

/// How often the balancer looks for offline invokers and overdue activations, at most.
const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// How a controller balances over the cluster.
#[derive(Debug, Clone)]
pub struct BalancerSettings {
    /// The subject prefix ([`DEFAULT_PREFIX`] by default).
    pub prefix: String,
    /// An invoker without a ping for this long is offline (10 s, as upstream).
    pub offline_after: Duration,
    /// How often this controller sends its heartbeat and the health test actions (1 s).
    pub ping_interval: Duration,
    /// How long an invoker has to acknowledge an activation (2 s). Past it the activation may
    /// or may not have arrived: it is never sent again, only waited for.
    pub ack_timeout: Duration,
    /// Added to twice the time limit to bound the wait for a completion
    /// ([`COMPLETION_MARGIN`]).
    pub completion_margin: Duration,
    /// The smallest share of an invoker's memory one controller holds, MB: one action of the
    /// smallest memory limit (128).
    pub min_memory_mb: u64,
    /// The kind of the health test action (`nodejs:default`, as upstream); a deployment whose
    /// invokers resolve only concrete kinds sets one here.
    pub health_test_kind: String,
}

impl Default for BalancerSettings {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            offline_after: Duration::from_secs(10),
            ping_interval: Duration::from_secs(1),
            ack_timeout: Duration::from_secs(2),
            completion_margin: COMPLETION_MARGIN,
            min_memory_mb: LimitBounds::default().min_memory,
            health_test_kind: "nodejs:default".to_owned(),
        }
    }
}

/// The controller's balancer over the invokers that ping on NATS.
#[derive(Debug)]
pub struct ClusterBalancer {
    inner: Arc<Inner>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    subjects: Subjects,
    controller: String,
    completion_subject: String,
    activations: Arc<dyn ActivationStore>,
    settings: BalancerSettings,
    clock: Instant,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    invokers: BTreeMap<u32, InvokerEntry>,
    /// Other controllers by id, with the time of their last heartbeat.
    controllers: HashMap<String, u64>,
    in_flight: HashMap<ActivationId, InFlight>,
}

#[derive(Debug)]
struct InvokerEntry {
    instance: String,
    user_memory_mb: u64,
    shard_mb: u64,
    capacity: Capacity,
    health: InvokerHealth,
    draining: bool,
    /// A request found no responder since its last ping: its process is gone.
    gone: bool,
    last_test: u64,
    last_state: &'static str,
}

#[derive(Debug)]
struct InFlight {
    invoker: u32,
    instance: String,
    /// The slots it holds (none for a health test).
    slots: Option<Slots>,
    deadline: u64,
    /// The message without its arguments, to build a forced record.
    msg: ActivationMessage,
    /// The caller's receiver (none for a health test).
    reply: Option<oneshot::Sender<CompletionMessage>>,
}

#[derive(Debug, Clone)]
struct Slots {
    action: String,
    memory_mb: u64,
    concurrency: u64,
}

impl Slots {
    fn need(&self) -> Need<'_> {
        Need {
            action: &self.action,
            memory_mb: self.memory_mb,
            concurrency: self.concurrency,
        }
    }
}

/// An activation ended by the controller.
#[derive(Debug)]
struct Forced {
    msg: ActivationMessage,
    reply: Option<oneshot::Sender<CompletionMessage>>,
    reason: &'static str,
}

/// How a request to an invoker ended.
#[derive(Debug)]
enum Sent {
    Accepted,
    Refused(String),
    NoResponders,
    /// No answer within the ack timeout: it may have arrived.
    Ambiguous,
    Failed(String),
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn status_name(health: Health, usable: bool) -> &'static str {
    match health {
        Health::Healthy if usable => "up",
        Health::Unhealthy => "unhealthy",
        _ => "down",
    }
}

impl ClusterBalancer {
    /// Subscribes to the pings, the controller heartbeats and this controller's completions,
    /// and starts the task that sends heartbeats and health tests and ends overdue work.
    pub async fn start(
        client: Client,
        activations: Arc<dyn ActivationStore>,
        settings: BalancerSettings,
    ) -> Result<ClusterBalancer, ClusterError> {
        let subjects = Subjects::new(&settings.prefix);
        let controller = uuid::Uuid::new_v4().simple().to_string();
        let completion_subject = subjects.completed(&controller);
        let completions = client.subscribe(completion_subject.clone()).await?;
        let pings = client.subscribe(subjects.health()).await?;
        let heartbeats = client.subscribe(subjects.controllers()).await?;
        let inner = Arc::new(Inner {
            client,
            subjects,
            controller,
            completion_subject,
            activations,
            settings,
            clock: Instant::now(),
            state: Mutex::new(State::default()),
        });
        let tasks = vec![
            tokio::spawn(Arc::clone(&inner).take_completions(completions)),
            tokio::spawn(Arc::clone(&inner).take_pings(pings)),
            tokio::spawn(Arc::clone(&inner).take_heartbeats(heartbeats)),
            tokio::spawn(Arc::clone(&inner).supervise()),
        ];
        Ok(ClusterBalancer {
            inner,
            tasks: Mutex::new(tasks),
        })
    }

    /// This controller's id (a UUID), as its heartbeats carry it.
    pub fn controller_id(&self) -> &str {
        &self.inner.controller
    }

    /// Every invoker known, by id, as OpenWhisk's `GET /invokers` lists them:
    /// `("invoker0/0", "up" | "unhealthy" | "down")`.
    pub fn invokers(&self) -> Vec<(String, &'static str)> {
        let now = self.inner.now();
        let offline = millis(self.inner.settings.offline_after);
        let state = self.inner.state.lock();
        state
            .invokers
            .iter()
            .map(|(id, e)| {
                let health = e.health.at_with(now, offline);
                (
                    format!("invoker{id}/{id}"),
                    status_name(health, !e.draining && !e.gone),
                )
            })
            .collect()
    }

    /// How many controllers share the invokers, this one included.
    pub fn controllers(&self) -> u64 {
        let now = self.inner.now();
        self.inner.live_controllers(&self.inner.state.lock(), now)
    }

    /// Memory slots (MB) this controller holds free on invoker `id`, and its share in all.
    pub fn slots(&self, invoker_id: u32) -> Option<(u64, u64)> {
        let state = self.inner.state.lock();
        state
            .invokers
            .get(&invoker_id)
            .map(|e| (e.capacity.free_mb(), e.shard_mb))
    }

    /// Activations published and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.inner.state.lock().in_flight.len()
    }

    /// Stops the heartbeats, the supervision and the subscriptions. Activations still in
    /// flight are not answered: their callers find the records in the store.
    pub async fn shutdown(&self) {
        let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        self.inner.state.lock().in_flight.clear();
        let _ = self.inner.client.flush().await;
    }
}

impl Drop for ClusterBalancer {
    fn drop(&mut self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }
}

#[async_trait]
impl LoadBalancer for ClusterBalancer {
    async fn publish(
        &self,
        msg: ActivationMessage,
    ) -> Result<oneshot::Receiver<CompletionMessage>, LoadBalancerError> {
        self.inner.publish(msg).await
    }

    fn invoker_health(&self) -> Vec<(String, &'static str)> {
        self.invokers()
    }
}

impl Inner {
    fn now(&self) -> u64 {
        millis(self.clock.elapsed())
    }

    fn live_controllers(&self, state: &State, now: u64) -> u64 {
        let offline = millis(self.settings.offline_after);
        let others = state
            .controllers
            .iter()
            .filter(|(id, seen)| **id != self.controller && now.saturating_sub(**seen) < offline)
            .count();
        1 + others as u64
    }

    /// Whether the invoker takes user work now.
    fn usable(&self, entry: &InvokerEntry, now: u64) -> bool {
        !entry.draining
            && !entry.gone
            && entry
                .health
                .at_with(now, millis(self.settings.offline_after))
                == Health::Healthy
    }

    async fn publish(
        &self,
        mut msg: ActivationMessage,
    ) -> Result<oneshot::Receiver<CompletionMessage>, LoadBalancerError> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(LoadBalancerError::Unavailable);
        }
        let envelope = ActivateEnvelope {
            completion_subject: self.completion_subject.clone(),
            message: msg,
        };
        let bytes = wire::encode(&envelope).map_err(|e| {
            tracing::error!(error = %e, "could not encode an activation message");
            LoadBalancerError::Unavailable
        })?;
        msg = envelope.message;
        let limit = self.client.server_info().max_payload;
        if limit > 0 && bytes.len() > limit {
            return Err(LoadBalancerError::MessageTooLarge {
                size: bytes.len(),
                limit,
            });
        }
        // Kept for a forced record, which never shows the arguments.
        msg.content = empty_arguments();
        let hash = sharding::placement_hash(&msg.namespace, &msg.action.name.path_string());
        let slots = Slots {
            action: msg.action.instance_key(),
            memory_mb: msg.action.limits.memory,
            concurrency: u64::from(msg.action.limits.concurrency.max(1)),
        };
        let wait = msg.action.limits.time_limit() * 2 + self.settings.completion_margin;
        let mut excluded: HashSet<u32> = HashSet::new();
        loop {
            let (tx, rx) = oneshot::channel();
            let invoker = self.place(hash, &slots, &excluded, &msg, tx, wait)?;
            match self.send(invoker, bytes.clone()).await {
                Sent::Accepted => return Ok(rx),
                Sent::Ambiguous => {
                    tracing::warn!(invoker, activation_id = %msg.activation_id,
                        "no acknowledgement in time; waiting for the completion");
                    return Ok(rx);
                }
                Sent::Refused(why) => {
                    tracing::info!(invoker, %why, "the invoker refused an activation; placing it elsewhere");
                    if !self.unplace(&msg.activation_id) {
                        return Ok(rx);
                    }
                    excluded.insert(invoker);
                }
                Sent::NoResponders => {
                    tracing::warn!(
                        invoker,
                        "the invoker does not listen any more; placing the activation elsewhere"
                    );
                    let waiting = self.unplace(&msg.activation_id);
                    if let Some(e) = self.state.lock().invokers.get_mut(&invoker) {
                        e.gone = true;
                    }
                    if !waiting {
                        return Ok(rx);
                    }
                    excluded.insert(invoker);
                }
                Sent::Failed(why) => {
                    tracing::warn!(invoker, %why, "could not publish an activation");
                    if !self.unplace(&msg.activation_id) {
                        return Ok(rx);
                    }
                    return Err(LoadBalancerError::Unavailable);
                }
            }
        }
    }

    /// Chooses an invoker for `msg`, takes its slots and records it in flight.
    fn place(
        &self,
        hash: u32,
        slots: &Slots,
        excluded: &HashSet<u32>,
        msg: &ActivationMessage,
        reply: oneshot::Sender<CompletionMessage>,
        wait: Duration,
    ) -> Result<u32, LoadBalancerError> {
        let now = self.now();
        let mut state = self.state.lock();
        let count = state.invokers.keys().next_back().map_or(0, |max| max + 1);
        let candidates: Vec<Candidate> = (0..count)
            .map(|id| match state.invokers.get(&id) {
                Some(e) if !excluded.contains(&id) && self.usable(e, now) => Candidate {
                    healthy: true,
                    free_mb: if e.capacity.fits(slots.need()) {
                        slots.memory_mb.max(e.capacity.free_mb())
                    } else {
                        0
                    },
                },
                _ => Candidate {
                    healthy: false,
                    free_mb: 0,
                },
            })
            .collect();
        let placement = sharding::place(hash, slots.memory_mb, &candidates, rand::random())
            .ok_or(LoadBalancerError::NoInvokers)?;
        let entry = state
            .invokers
            .get_mut(&placement.invoker)
            .ok_or(LoadBalancerError::NoInvokers)?;
        entry.capacity.acquire(slots.need(), placement.overloaded);
        let instance = entry.instance.clone();
        state.in_flight.insert(
            msg.activation_id.clone(),
            InFlight {
                invoker: placement.invoker,
                instance,
                slots: Some(slots.clone()),
                deadline: now + millis(wait),
                msg: msg.clone(),
                reply: Some(reply),
            },
        );
        Ok(placement.invoker)
    }

    /// Takes back an activation that never reached its invoker.
    /// False when it had already ended meanwhile (forced: its caller has the answer).
    fn unplace(&self, id: &ActivationId) -> bool {
        let mut state = self.state.lock();
        match state.in_flight.remove(id) {
            Some(flight) => {
                release(&mut state, &flight);
                true
            }
            None => false,
        }
    }

    /// Sends an activate request to `invoker` and waits for its acknowledgement.
    async fn send(&self, invoker: u32, bytes: bytes::Bytes) -> Sent {
        let request = Request::new()
            .payload(bytes)
            .timeout(Some(self.settings.ack_timeout));
        match self
            .client
            .send_request(self.subjects.activate(invoker), request)
            .await
        {
            Ok(reply) => match wire::decode::<Ack>(&reply.payload) {
                Ok(ack) if ack.accepted => Sent::Accepted,
                Ok(ack) => Sent::Refused(ack.error.unwrap_or_default()),
                Err(e) => Sent::Refused(format!("malformed acknowledgement: {e}")),
            },
            Err(e) => match e.kind() {
                RequestErrorKind::NoResponders => Sent::NoResponders,
                RequestErrorKind::TimedOut => Sent::Ambiguous,
                RequestErrorKind::Other => Sent::Failed(e.to_string()),
            },
        }
    }

    async fn take_completions(self: Arc<Self>, mut completions: Subscriber) {
        while let Some(message) = completions.next().await {
            let envelope: CompletionEnvelope = match wire::decode(&message.payload) {
                Ok(envelope) => envelope,
                Err(e) => {
                    tracing::warn!(error = %e, "dropped a malformed completion");
                    continue;
                }
            };
            let activation = &envelope.message.activation;
            let flight = {
                let mut state = self.state.lock();
                let Some(flight) = state.in_flight.remove(&activation.activation_id) else {
                    tracing::debug!(activation_id = %activation.activation_id,
                        "a completion came after its activation had ended");
                    continue;
                };
                release(&mut state, &flight);
                let outcome = if activation.response.status == Status::WhiskError {
                    Outcome::SystemError
                } else {
                    Outcome::Ran
                };
                if let Some(e) = state.invokers.get_mut(&flight.invoker) {
                    e.health.record(outcome);
                }
                flight
            };
            if let Some(reply) = flight.reply {
                let _ = reply.send(envelope.message);
            }
        }
    }

    async fn take_pings(self: Arc<Self>, mut pings: Subscriber) {
        while let Some(message) = pings.next().await {
            let ping: InvokerPing = match wire::decode(&message.payload) {
                Ok(ping) => ping,
                Err(e) => {
                    tracing::warn!(error = %e, "dropped a malformed invoker ping");
                    continue;
                }
            };
            let now = self.now();
            let forced = {
                let mut state = self.state.lock();
                let controllers = self.live_controllers(&state, now);
                let shard = sharding::shard_memory(
                    ping.user_memory_mb,
                    controllers,
                    self.settings.min_memory_mb,
                );
                let entry = state
                    .invokers
                    .entry(ping.invoker_id)
                    .or_insert_with(|| InvokerEntry {
                        instance: ping.instance.clone(),
                        user_memory_mb: ping.user_memory_mb,
                        shard_mb: shard,
                        capacity: Capacity::new(shard),
                        health: InvokerHealth::default(),
                        draining: false,
                        gone: false,
                        last_test: 0,
                        last_state: "down",
                    });
                let restarted = entry.instance != ping.instance;
                if restarted {
                    tracing::info!(invoker = ping.invoker_id, "the invoker restarted");
                    entry.instance = ping.instance.clone();
                }
                if entry.shard_mb != shard {
                    entry.capacity.resize(entry.shard_mb, shard);
                    entry.shard_mb = shard;
                }
                entry.user_memory_mb = ping.user_memory_mb;
                entry.draining = ping.draining;
                entry.gone = false;
                entry.health.ping(now);
                if restarted {
                    take_forced(&mut state, INVOKER_LOST, |f| {
                        f.invoker == ping.invoker_id && f.instance != ping.instance
                    })
                } else {
                    Vec::new()
                }
            };
            self.finish_forced(forced);
        }
    }

    async fn take_heartbeats(self: Arc<Self>, mut heartbeats: Subscriber) {
        while let Some(message) = heartbeats.next().await {
            if let Ok(ping) = wire::decode::<ControllerPing>(&message.payload) {
                let now = self.now();
                self.state.lock().controllers.insert(ping.controller, now);
            }
        }
    }

    /// Every check interval: ends the activations of offline invokers and overdue ones,
    /// resizes the shares when controllers come or go; every ping interval: sends the
    /// heartbeat and a health test action to each unhealthy invoker.
    async fn supervise(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.settings.ping_interval.min(CHECK_INTERVAL));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heartbeat: Option<u64> = None;
        let ping_ms = millis(self.settings.ping_interval);
        loop {
            ticks.tick().await;
            let now = self.now();
            if last_heartbeat.is_none_or(|t| now.saturating_sub(t) >= ping_ms) {
                last_heartbeat = Some(now);
                self.heartbeat().await;
            }
            let (forced, tests) = self.check(now, ping_ms);
            self.finish_forced(forced);
            for invoker in tests {
                let inner = Arc::clone(&self);
                tokio::spawn(async move { inner.health_test(invoker).await });
            }
        }
    }

    async fn heartbeat(&self) {
        let ping = ControllerPing {
            controller: self.controller.clone(),
        };
        if let Ok(bytes) = wire::encode(&ping) {
            let _ = self
                .client
                .publish(self.subjects.controllers(), bytes)
                .await;
        }
    }

    /// The supervision's decisions at `now`: what to force, which invokers to test.
    fn check(&self, now: u64, ping_ms: u64) -> (Vec<Forced>, Vec<u32>) {
        let offline = millis(self.settings.offline_after);
        let mut state = self.state.lock();
        let controllers = self.live_controllers(&state, now);
        state
            .controllers
            .retain(|_, seen| now.saturating_sub(*seen) < offline);
        let mut lost = HashSet::new();
        let mut tests = Vec::new();
        for (id, entry) in &mut state.invokers {
            let shard = sharding::shard_memory(
                entry.user_memory_mb,
                controllers,
                self.settings.min_memory_mb,
            );
            if entry.shard_mb != shard {
                entry.capacity.resize(entry.shard_mb, shard);
                entry.shard_mb = shard;
            }
            let health = entry.health.at_with(now, offline);
            let usable = !entry.draining && !entry.gone;
            let name = status_name(health, usable);
            if name != entry.last_state {
                tracing::info!(
                    invoker = id,
                    from = entry.last_state,
                    to = name,
                    "invoker state"
                );
                entry.last_state = name;
            }
            match health {
                Health::Offline => {
                    lost.insert(*id);
                }
                Health::Unhealthy
                    if !entry.draining && now.saturating_sub(entry.last_test) >= ping_ms =>
                {
                    entry.last_test = now;
                    tests.push(*id);
                }
                _ => {}
            }
        }
        let mut forced = take_forced(&mut state, INVOKER_LOST, |f| lost.contains(&f.invoker));
        let overdue: Vec<u32> = state
            .in_flight
            .values()
            .filter(|f| f.deadline <= now)
            .map(|f| f.invoker)
            .collect();
        for invoker in overdue {
            if let Some(e) = state.invokers.get_mut(&invoker) {
                e.health.record(Outcome::SystemError);
            }
        }
        forced.extend(take_forced(&mut state, COMPLETION_TIMED_OUT, |f| {
            f.deadline <= now
        }));
        (forced, tests)
    }

    /// Stores the whisk-error record of each forced activation (the store keeps the first
    /// record of an activation, so a late one from the invoker cannot replace it), then
    /// answers its caller.
    fn finish_forced(&self, forced: Vec<Forced>) {
        for f in forced {
            let Some(reply) = f.reply else {
                continue;
            };
            let activations = Arc::clone(&self.activations);
            tokio::spawn(async move {
                let activation = edgewhisk_invoker::whisk_error_record(&f.msg, f.reason);
                tracing::warn!(activation_id = %activation.activation_id, reason = f.reason,
                    "ended an activation without its invoker");
                if let Err(e) = activations.store(activation.clone()).await {
                    tracing::error!(error = %e, "could not store a forced activation record");
                }
                let _ = reply.send(CompletionMessage { activation });
            });
        }
    }

    /// Sends the health test action to `invoker`; its completion counts like any other.
    async fn health_test(&self, invoker: u32) {
        let msg = health_test_message(invoker, &self.settings.health_test_kind);
        let envelope = ActivateEnvelope {
            completion_subject: self.completion_subject.clone(),
            message: msg,
        };
        let Ok(bytes) = wire::encode(&envelope) else {
            return;
        };
        let msg = envelope.message;
        let now = self.now();
        {
            let mut state = self.state.lock();
            let Some(instance) = state.invokers.get(&invoker).map(|e| e.instance.clone()) else {
                return;
            };
            let wait = msg.action.limits.time_limit() * 2 + self.settings.completion_margin;
            state.in_flight.insert(
                msg.activation_id.clone(),
                InFlight {
                    invoker,
                    instance,
                    slots: None,
                    deadline: now + millis(wait),
                    msg: msg.clone(),
                    reply: None,
                },
            );
        }
        match self.send(invoker, bytes).await {
            Sent::Accepted | Sent::Ambiguous => {}
            Sent::NoResponders => {
                let _ = self.unplace(&msg.activation_id);
                if let Some(e) = self.state.lock().invokers.get_mut(&invoker) {
                    e.gone = true;
                }
            }
            Sent::Refused(_) | Sent::Failed(_) => {
                let _ = self.unplace(&msg.activation_id);
            }
        }
    }
}

/// Gives back the slots of `flight`, within its invoker's share.
fn release(state: &mut State, flight: &InFlight) {
    if let (Some(slots), Some(e)) = (&flight.slots, state.invokers.get_mut(&flight.invoker)) {
        e.capacity.release_within(slots.need(), e.shard_mb);
    }
}

/// Removes every activation in flight that `pick` selects, giving back its slots.
fn take_forced(
    state: &mut State,
    reason: &'static str,
    pick: impl Fn(&InFlight) -> bool,
) -> Vec<Forced> {
    let ids: Vec<ActivationId> = state
        .in_flight
        .iter()
        .filter(|(_, f)| pick(f))
        .map(|(id, _)| id.clone())
        .collect();
    let mut forced = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(flight) = state.in_flight.remove(&id) {
            release(state, &flight);
            forced.push(Forced {
                msg: flight.msg,
                reply: flight.reply,
                reason,
            });
        }
    }
    forced
}

fn empty_arguments() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("valid JSON"))
}

/// OpenWhisk's `invokerHealthTestAction<id>` in `whisk.system`: a no-op action built in the
/// message itself (it is never stored as an entity).
fn health_test_message(invoker: u32, kind: &str) -> ActivationMessage {
    let action = ExecutableAction {
        name: FullyQualifiedEntityName::new(
            "whisk.system",
            None,
            &format!("invokerHealthTestAction{invoker}"),
        ),
        version: "0.0.1".to_owned(),
        exec: Exec {
            kind: kind.to_owned(),
            code: HEALTH_TEST_CODE.to_owned(),
            binary: false,
            main: None,
            image: None,
        },
        limits: LimitBounds::default().defaults(),
        init_parameters: Parameters::default(),
        annotations: Parameters::default(),
    };
    ActivationMessage {
        transaction_id: format!("health-test-{invoker}"),
        activation_id: ActivationId::generate(),
        namespace: "whisk.system".to_owned(),
        subject: "whisk.system".to_owned(),
        api_key: None,
        action: Arc::new(action),
        content: empty_arguments(),
        cause: None,
        received_at: edgewhisk_entity::time::now_millis(),
        annotations: Parameters::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_test_action_is_a_no_op_in_whisk_system() {
        let msg = health_test_message(3, "nodejs:default");
        assert_eq!(
            msg.action.name.path_string(),
            "whisk.system/invokerHealthTestAction3"
        );
        assert_eq!(msg.action.exec.kind, "nodejs:default");
        assert_eq!(msg.namespace, "whisk.system");
        assert_eq!(msg.content.get(), "{}");
    }

    #[test]
    fn invoker_states_read_as_upstream_lists_them() {
        assert_eq!(status_name(Health::Healthy, true), "up");
        assert_eq!(status_name(Health::Healthy, false), "down");
        assert_eq!(status_name(Health::Unhealthy, true), "unhealthy");
        assert_eq!(status_name(Health::Offline, true), "down");
    }
}
