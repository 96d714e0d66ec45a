//! Feeds for the edge: the alarms (`/whisk.system/alarms/{alarm,once,interval}`) and MQTT
//! (`/whisk.system/mqtt/subscribe`) feed actions, run by the controller itself, and the
//! [`FeedService`] task that fires their triggers (design note `docs/design/003-feeds.md`).
//!
//! A feed action is recognised by the annotation [`FEED_PROVIDER`] on an action of the
//! `whisk.system` namespace (only the system can write there). Invoking one runs a lifecycle
//! event in the controller, as OpenWhisk's feed protocol defines it: the client passes
//! `{lifecycleEvent, triggerName: "/ns/trigger", authKey, ...params}`; `CREATE` validates the
//! parameters and stores the schedule or subscription, `READ` answers it, `UPDATE` changes its
//! parameters, `PAUSE`/`UNPAUSE` stop and resume firing and `DELETE` removes it. Every
//! invocation leaves a normal activation record (success, or an application error
//! `{"error": …}`).
//!
//! Schedules and subscriptions are documents of the entity store under the path
//! [`FEEDS_PATH`] (a path no API name can reach), one per trigger, named `ns:trigger`; they
//! survive restarts. They hold no usable secret: the `authKey` the client passes is verified
//! at every lifecycle event, and the document keeps only its UUID (which is not a secret). A
//! fire resolves that UUID to the identity in the store, which must still belong to the
//! trigger's namespace, and fires as that identity through the same handler as
//! `POST triggers/{name}` (so the namespace's fires throttle, with its overrides, applies). A
//! fire answered 401 or 404 (key deleted or regenerated, trigger deleted) removes the feed.
//! Documents written by earlier versions held the whole `uuid:key`; the service migrates them
//! to the UUID when it starts (after verifying the key), and reads them until then.
//!
//! Because the feed holds no key, the actions its fires run get no `__OW_API_KEY`.

mod alarms;
mod mqtt;

pub use alarms::ONCE_GRACE_MS;

use crate::AppState;
use crate::api::triggers;
use crate::auth::Caller;
use crate::error::TransactionId;
use crate::messages;
use alarms::{AlarmKind, AlarmSpec, DeleteAfterFire, Progress};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use edgewhisk_entity::identity::verify_stored;
use edgewhisk_entity::{
    Action, Activation, ActivationId, ActivationResponse, Identity, Parameters,
};
use edgewhisk_entity::{Status, time::now_millis};
use edgewhisk_store::{Collection, EntityDoc, ListScope, PutMode, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// The annotation naming the built-in feed an action of `whisk.system` runs.
pub const FEED_PROVIDER: &str = "feed-provider";

/// Where feed documents are stored: one per trigger, named `ns:trigger`.
pub const FEEDS_PATH: &str = "whisk.system/.feeds";

/// The longest the scheduler sleeps without looking at the clock again.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// The built-in feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedKind {
    /// `alarms/alarm`: cron.
    #[serde(rename = "alarms/alarm")]
    Alarm,
    /// `alarms/once`: one date.
    #[serde(rename = "alarms/once")]
    Once,
    /// `alarms/interval`: every n minutes (or seconds).
    #[serde(rename = "alarms/interval")]
    Interval,
    /// `mqtt/subscribe`: every message on a topic.
    #[serde(rename = "mqtt/subscribe")]
    MqttSubscribe,
}

impl FeedKind {
    /// Every built-in feed.
    pub const ALL: [FeedKind; 4] = [Self::Alarm, Self::Once, Self::Interval, Self::MqttSubscribe];

    /// `package/action` under `whisk.system`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "alarms/alarm",
            Self::Once => "alarms/once",
            Self::Interval => "alarms/interval",
            Self::MqttSubscribe => "mqtt/subscribe",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    fn alarm(self) -> Option<AlarmKind> {
        match self {
            Self::Alarm => Some(AlarmKind::Cron),
            Self::Once => Some(AlarmKind::Once),
            Self::Interval => Some(AlarmKind::Interval),
            Self::MqttSubscribe => None,
        }
    }

    /// Checks the parameters of a feed of this kind.
    fn validate(self, params: &Map<String, Value>, now: u64, creating: bool) -> Result<(), String> {
        match self.alarm() {
            Some(kind) => alarms::parse(kind, params, now, creating).map(drop),
            None => mqtt::parse(params).map(drop),
        }
    }
}

/// The built-in feed `action` runs, if it is one: an action of `whisk.system` annotated
/// [`FEED_PROVIDER`].
pub fn provider(action: &Action) -> Option<FeedKind> {
    let system = action.namespace == crate::catalog::SYSTEM_NAMESPACE
        || action
            .namespace
            .starts_with(&format!("{}/", crate::catalog::SYSTEM_NAMESPACE));
    if !system {
        return None;
    }
    action
        .annotations
        .get(FEED_PROVIDER)
        .and_then(Value::as_str)
        .and_then(FeedKind::parse)
}

/// The stored state of one feed-backed trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FeedDoc {
    feed: FeedKind,
    namespace: String,
    trigger: String,
    /// The UUID of the trigger owner's key, by which a fire finds its identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uuid: Option<String>,
    /// The whole `uuid:key` of a document written by an earlier version: read and migrated
    /// to [`FeedDoc::uuid`], never written.
    #[serde(default, skip_serializing)]
    auth_key: Option<String>,
    params: Map<String, Value>,
    #[serde(default)]
    paused: bool,
    created: u64,
    #[serde(default)]
    last_fired: Option<u64>,
    #[serde(default)]
    fired: u64,
}

impl FeedDoc {
    fn key(&self) -> String {
        doc_name(&self.namespace, &self.trigger)
    }

    fn progress(&self) -> Progress {
        Progress {
            created: self.created,
            last_fired: self.last_fired,
            fired: self.fired,
        }
    }
}

fn doc_name(namespace: &str, trigger: &str) -> String {
    format!("{namespace}:{trigger}")
}

/// Wakes the [`FeedService`] when a lifecycle event changed the stored feeds. Part of the
/// [`AppState`]; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct FeedSignal(Arc<Notify>);

impl FeedSignal {
    fn changed(&self) {
        self.0.notify_one();
    }
}

/// Why a lifecycle event failed: the activation's error and the HTTP-like status OpenWhisk's
/// feed providers report with it.
#[derive(Debug)]
struct LifecycleError(String);

impl From<String> for LifecycleError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for LifecycleError {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<StoreError> for LifecycleError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "feed store failure");
        Self(messages::INTERNAL_SERVER_ERROR.to_owned())
    }
}

/// Runs the lifecycle event in `args` for feed `kind` (the action `action`) invoked by
/// `caller`, stores its activation record and answers it.
pub async fn run_lifecycle(
    state: &AppState,
    caller: &Identity,
    kind: FeedKind,
    action: &Action,
    args: &str,
    activation_id: ActivationId,
    received_at: u64,
) -> Activation {
    let args: Map<String, Value> = serde_json::from_str(args).unwrap_or_default();
    let response = match lifecycle(state, kind, args).await {
        Ok(result) => ActivationResponse::success(result),
        Err(LifecycleError(message)) => {
            ActivationResponse::error(Status::ApplicationError, message)
        }
    };
    let end = now_millis();
    let mut annotations = Parameters::default();
    annotations.set(
        "path",
        json!(format!("{}/{}", action.namespace, action.name)),
    );
    annotations.set("kind", json!("feed"));
    annotations.set("waitTime", json!(0));
    let activation = Activation {
        namespace: caller.namespace.clone(),
        name: action.name.clone(),
        version: action.version.clone(),
        subject: caller.subject.clone(),
        activation_id,
        cause: None,
        start: received_at,
        end,
        duration: Some(end.saturating_sub(received_at)),
        response,
        logs: Vec::new(),
        annotations,
        publish: false,
    };
    if let Err(e) = state.activations().store(activation.clone()).await {
        tracing::error!(error = %e, "storing a feed activation failed");
    }
    activation
}

/// The identity of `auth_key` (`uuid:secret`), verified against the store.
async fn verify_key(state: &AppState, auth_key: &str) -> Result<Option<Identity>, StoreError> {
    let Some((uuid, secret)) = auth_key.split_once(':') else {
        return Ok(None);
    };
    Ok(state
        .entities()
        .identity(uuid)
        .await?
        .and_then(|stored| verify_stored(&stored, secret)))
}

/// `/ns/trigger` (or `ns/trigger`, `_` = the key's namespace) as namespace and name.
fn trigger_name(name: &str, identity: &Identity) -> Result<(String, String), LifecycleError> {
    let parts: Vec<&str> = name.trim_start_matches('/').split('/').collect();
    let (ns, trigger) = match parts.as_slice() {
        [ns, t] if !ns.is_empty() && !t.is_empty() => (*ns, *t),
        [t] if !t.is_empty() => ("_", *t),
        _ => return Err(format!("triggerName '{name}' is not a valid trigger name").into()),
    };
    let ns = if ns == "_" {
        identity.namespace.as_str()
    } else {
        ns
    };
    if ns != identity.namespace {
        return Err(format!("the authKey is not authorized to access trigger '{name}'").into());
    }
    Ok((ns.to_owned(), trigger.to_owned()))
}

/// Parameters of the feed itself, without the protocol's.
fn feed_params(mut args: Map<String, Value>) -> Map<String, Value> {
    for k in ["lifecycleEvent", "triggerName", "authKey"] {
        args.remove(k);
    }
    args
}

async fn load_doc(state: &AppState, name: &str) -> Result<Option<(u64, FeedDoc)>, StoreError> {
    let Some(doc) = state.entities().get(FEEDS_PATH, name).await? else {
        return Ok(None);
    };
    match serde_json::from_value(doc.doc) {
        Ok(feed) => Ok(Some((doc.updated, feed))),
        Err(e) => {
            tracing::warn!(feed = name, error = %e, "unreadable feed document");
            Ok(None)
        }
    }
}

async fn put_doc(state: &AppState, feed: &FeedDoc, mode: PutMode) -> Result<(), StoreError> {
    let updated = match mode {
        PutMode::Replace { expected_updated } => now_millis().max(expected_updated + 1),
        _ => now_millis(),
    };
    let mut doc = serde_json::to_value(feed)?;
    // A document not migrated yet keeps its UUID (not a secret) when its progress is saved:
    // `auth_key` is never written, and without either the next fire would find no owner.
    if let (None, Some((uuid, _)), Some(m)) = (
        &feed.uuid,
        feed.auth_key.as_deref().and_then(|k| k.split_once(':')),
        doc.as_object_mut(),
    ) {
        m.insert("uuid".to_owned(), Value::String(uuid.to_owned()));
    }
    let doc = EntityDoc {
        collection: Collection::Triggers,
        path: FEEDS_PATH.to_owned(),
        name: feed.key(),
        updated,
        doc,
    };
    state.entities().put(doc, mode).await
}

async fn lifecycle(
    state: &AppState,
    kind: FeedKind,
    args: Map<String, Value>,
) -> Result<Value, LifecycleError> {
    let event = args
        .get("lifecycleEvent")
        .and_then(Value::as_str)
        .unwrap_or("CREATE")
        .to_ascii_uppercase();
    let auth_key = args
        .get("authKey")
        .and_then(Value::as_str)
        .ok_or("the authKey parameter is missing")?
        .to_owned();
    let name = args
        .get("triggerName")
        .and_then(Value::as_str)
        .ok_or("the triggerName parameter is missing")?
        .to_owned();
    let identity = verify_key(state, &auth_key)
        .await?
        .ok_or("the authKey is not valid")?;
    let (namespace, trigger) = trigger_name(&name, &identity)?;
    let key = doc_name(&namespace, &trigger);
    let now = now_millis();
    let params = feed_params(args);
    let found = load_doc(state, &key).await?;
    let not_found = || LifecycleError(format!("trigger '{name}' has no {} feed", kind.as_str()));
    match event.as_str() {
        "CREATE" => {
            if found.is_some() {
                return Err(format!("trigger '{name}' already has a feed").into());
            }
            match triggers::load_trigger(state, &namespace, &trigger).await {
                Ok(Some(_)) => {}
                _ => return Err(format!("trigger '{name}' does not exist").into()),
            }
            kind.validate(&params, now, true)?;
            let feed = FeedDoc {
                feed: kind,
                namespace,
                trigger,
                uuid: Some(identity.uuid.clone()),
                auth_key: None,
                params,
                paused: false,
                created: now,
                last_fired: None,
                fired: 0,
            };
            put_doc(state, &feed, PutMode::Create)
                .await
                .map_err(|e| match e {
                    StoreError::Conflict { .. } => {
                        LifecycleError(format!("trigger '{name}' already has a feed"))
                    }
                    e => e.into(),
                })?;
            state.feeds().changed();
            Ok(json!({"status": "success", "triggerName": name}))
        }
        "READ" => {
            let (_, feed) = found.ok_or_else(not_found)?;
            let mut config = feed.params.clone();
            config.insert("name".into(), json!(feed.trigger));
            config.insert("namespace".into(), json!(feed.namespace));
            config.insert("feed".into(), json!(feed.feed.as_str()));
            Ok(json!({
                "config": config,
                "status": {
                    "active": !feed.paused,
                    "dateChanged": feed.last_fired.unwrap_or(feed.created),
                    "fired": feed.fired,
                    "lastFired": feed.last_fired,
                },
            }))
        }
        "DELETE" => {
            found.ok_or_else(not_found)?;
            state.entities().delete(FEEDS_PATH, &key).await?;
            state.feeds().changed();
            Ok(json!({"status": "success", "triggerName": name}))
        }
        "UPDATE" | "PAUSE" | "UNPAUSE" => {
            let (stored, mut feed) = found.ok_or_else(not_found)?;
            match event.as_str() {
                "PAUSE" => feed.paused = true,
                "UNPAUSE" => feed.paused = false,
                _ => {
                    let mut merged = feed.params.clone();
                    merged.extend(params);
                    kind.validate(&merged, now, true)?;
                    feed.params = merged;
                    feed.uuid = Some(identity.uuid.clone());
                    feed.auth_key = None;
                }
            }
            put_doc(
                state,
                &feed,
                PutMode::Replace {
                    expected_updated: stored,
                },
            )
            .await?;
            state.feeds().changed();
            Ok(json!({"status": "success", "triggerName": name}))
        }
        other => Err(format!("unsupported lifecycleEvent '{other}'").into()),
    }
}

/// How a fire went, as far as the feed is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fired {
    /// Accepted (or no active rule).
    Done,
    /// Refused for now (throttled, server error).
    Refused,
    /// The trigger or the key is gone: the feed is removed.
    Gone,
}

/// Fires the trigger of `feed` with `body` as the feed's key, through the trigger fire
/// handler. Removes the feed when the trigger or key is gone.
async fn fire(state: &AppState, key: &str, feed: &FeedDoc, body: Map<String, Value>) -> Fired {
    let outcome = fire_once(state, feed, body).await;
    if outcome == Fired::Gone {
        tracing::warn!(feed = key, "trigger or key gone; removing its feed");
        if let Err(e) = state.entities().delete(FEEDS_PATH, key).await {
            tracing::error!(feed = key, error = %e, "removing a feed failed");
        }
    }
    outcome
}

/// The identity a feed fires as: the stored identity of its key's UUID (or, for a document
/// not migrated yet, of its verified `uuid:key`), when it still belongs to the trigger's
/// namespace. The identity carries the stored form of its key, never a secret.
async fn owner(state: &AppState, feed: &FeedDoc) -> Result<Option<Identity>, StoreError> {
    let identity = match (&feed.uuid, &feed.auth_key) {
        (Some(uuid), _) => state.entities().identity(uuid).await?,
        (None, Some(auth_key)) => verify_key(state, auth_key).await?,
        (None, None) => None,
    };
    // Never a secret, whichever way it was found: the fired actions get no key.
    Ok(identity
        .filter(|i| i.namespace == feed.namespace)
        .map(|i| Identity {
            key: edgewhisk_entity::identity::KeyHash::stored_form(&i.key),
            ..i
        }))
}

/// Every stored feed document.
async fn feed_docs(state: &AppState) -> Result<Vec<EntityDoc>, StoreError> {
    let scope = ListScope::Path(FEEDS_PATH.to_owned());
    state
        .entities()
        .list(Collection::Triggers, &scope, 0, 0)
        .await
}

/// Rewrites the feed documents of earlier versions, which held the whole `uuid:key`, to hold
/// the UUID alone. A key that no longer verifies is left for the next fire to find gone.
async fn migrate_legacy(state: &AppState) {
    let docs = match feed_docs(state).await {
        Ok(docs) => docs,
        Err(e) => {
            tracing::error!(error = %e, "loading feeds for migration failed");
            return;
        }
    };
    for doc in docs {
        let Ok(mut feed) = serde_json::from_value::<FeedDoc>(doc.doc) else {
            continue;
        };
        let Some(auth_key) = feed.auth_key.take() else {
            continue;
        };
        match verify_key(state, &auth_key).await {
            Ok(Some(identity)) => feed.uuid = Some(identity.uuid),
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(feed = %doc.name, error = %e, "feed key lookup failed");
                continue;
            }
        }
        let mode = PutMode::Replace {
            expected_updated: doc.updated,
        };
        match put_doc(state, &feed, mode).await {
            Ok(()) => tracing::info!(feed = %doc.name, "feed document no longer holds its key"),
            Err(e) => tracing::error!(feed = %doc.name, error = %e, "migrating a feed failed"),
        }
    }
}

async fn fire_once(state: &AppState, feed: &FeedDoc, body: Map<String, Value>) -> Fired {
    let identity = match owner(state, feed).await {
        Ok(Some(identity)) => identity,
        Ok(None) => return Fired::Gone,
        Err(e) => {
            tracing::error!(error = %e, "feed key lookup failed");
            return Fired::Refused;
        }
    };
    if let Err(e) = crate::auth::refresh_overrides(state, &identity.namespace).await {
        tracing::error!(error = ?e, "reading the namespace's limits failed");
        return Fired::Refused;
    }
    let res = triggers::fire(
        State(state.clone()),
        Caller(identity),
        TransactionId(uuid::Uuid::new_v4().simple().to_string()),
        Path((feed.namespace.clone(), feed.trigger.clone())),
        HeaderMap::new(),
        Body::from(Value::Object(body).to_string()),
    )
    .await;
    let status = match res {
        Ok(r) => r.status(),
        Err(e) => e.status(),
    };
    match status {
        s if s.is_success() => Fired::Done,
        StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Fired::Gone,
        s => {
            tracing::warn!(trigger = %feed.trigger, status = %s, "feed fire refused");
            Fired::Refused
        }
    }
}

/// An alarm the scheduler waits for.
#[derive(Debug)]
struct Pending {
    stored: u64,
    feed: FeedDoc,
    spec: AlarmSpec,
    next: Option<u64>,
}

/// The task that fires alarms and runs MQTT subscriptions. Start it once per server with
/// [`FeedService::start`] after the catalog is provisioned, and stop it with
/// [`FeedService::shutdown`] before the store is closed.
#[derive(Debug)]
pub struct FeedService {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FeedService {
    /// Loads the stored feeds and starts firing them.
    pub fn start(state: AppState) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(schedule(state, stop_rx));
        Self { stop, task }
    }

    /// Stops firing and closes every MQTT connection.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "feed scheduler ended abnormally");
        }
    }
}

/// The scheduler loop: reloads on every lifecycle change, sleeps until the next alarm.
async fn schedule(state: AppState, mut stop: watch::Receiver<bool>) {
    migrate_legacy(&state).await;
    let signal = state.feeds().clone();
    let mut alarms: HashMap<String, Pending> = HashMap::new();
    let mut subscriptions: HashMap<String, (u64, JoinHandle<()>)> = HashMap::new();
    let mut reload = true;
    loop {
        if reload {
            reconcile(&state, &mut alarms, &mut subscriptions).await;
            reload = false;
        }
        let now = now_millis();
        let next = alarms.values().filter_map(|p| p.next).min();
        let wait = next.map_or(MAX_SLEEP, |n| {
            Duration::from_millis(n.saturating_sub(now)).min(MAX_SLEEP)
        });
        tokio::select! {
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
            () = signal.0.notified() => reload = true,
            () = tokio::time::sleep(wait) => {
                if fire_due(&state, &mut alarms).await {
                    reload = true;
                }
            }
        }
    }
    for (_, (_, task)) in subscriptions.drain() {
        task.abort();
    }
}

/// Rebuilds the alarms from the store and starts or stops MQTT subscriptions to match it.
async fn reconcile(
    state: &AppState,
    alarms: &mut HashMap<String, Pending>,
    subscriptions: &mut HashMap<String, (u64, JoinHandle<()>)>,
) {
    let docs = match feed_docs(state).await {
        Ok(docs) => docs,
        Err(e) => {
            tracing::error!(error = %e, "loading feeds failed; keeping the current ones");
            return;
        }
    };
    let now = now_millis();
    alarms.clear();
    let mut wanted: HashMap<String, (u64, FeedDoc, mqtt::MqttSpec)> = HashMap::new();
    for doc in docs {
        let Ok(feed) = serde_json::from_value::<FeedDoc>(doc.doc) else {
            tracing::warn!(feed = %doc.name, "unreadable feed document skipped");
            continue;
        };
        if feed.paused {
            continue;
        }
        match feed.feed.alarm() {
            Some(kind) => match alarms::parse(kind, &feed.params, now, false) {
                Ok(spec) => {
                    let next = alarms::next_fire(&spec, feed.progress(), now);
                    alarms.insert(
                        feed.key(),
                        Pending {
                            stored: doc.updated,
                            feed,
                            spec,
                            next,
                        },
                    );
                }
                Err(e) => tracing::warn!(feed = %doc.name, error = %e, "invalid stored alarm"),
            },
            None => match mqtt::parse(&feed.params) {
                Ok(spec) => {
                    wanted.insert(feed.key(), (doc.updated, feed, spec));
                }
                Err(e) => {
                    tracing::warn!(feed = %doc.name, error = %e, "invalid stored subscription")
                }
            },
        }
    }
    subscriptions.retain(|key, (updated, task)| {
        let keep = wanted.get(key).is_some_and(|(u, _, _)| u == updated) && !task.is_finished();
        if !keep {
            task.abort();
        }
        keep
    });
    for (key, (updated, feed, spec)) in wanted {
        subscriptions.entry(key.clone()).or_insert_with(|| {
            let task = tokio::spawn(mqtt::run(state.clone(), key, feed, spec));
            (updated, task)
        });
    }
    // Alarms done for good (once fired, past stopDate, maxTriggers reached) are removed.
    let done: Vec<String> = alarms
        .iter()
        .filter(|(_, p)| p.next.is_none())
        .map(|(k, _)| k.clone())
        .collect();
    for key in done {
        alarms.remove(&key);
        if let Err(e) = state.entities().delete(FEEDS_PATH, &key).await {
            tracing::error!(feed = %key, error = %e, "removing a finished alarm failed");
        }
    }
}

/// Fires every alarm that is due and records its progress. `true` when the stored feeds
/// changed under it (a reload is needed).
async fn fire_due(state: &AppState, alarms: &mut HashMap<String, Pending>) -> bool {
    let now = now_millis();
    let due: Vec<String> = alarms
        .iter()
        .filter(|(_, p)| p.next.is_some_and(|n| n <= now))
        .map(|(k, _)| k.clone())
        .collect();
    let mut reload = false;
    for key in due {
        let Some(p) = alarms.get_mut(&key) else {
            continue;
        };
        let outcome = fire(state, &key, &p.feed, alarms::payload(&p.feed.params)).await;
        if outcome == Fired::Gone {
            alarms.remove(&key);
            continue;
        }
        p.feed.last_fired = Some(now);
        if outcome == Fired::Done {
            p.feed.fired += 1;
        }
        p.next = alarms::next_fire(&p.spec, p.feed.progress(), now_millis());
        if p.next.is_none() {
            let (feed, delete) = (p.feed.clone(), p.spec.delete_after_fire);
            alarms.remove(&key);
            finish(state, &key, &feed, delete).await;
            continue;
        }
        let mode = PutMode::Replace {
            expected_updated: p.stored,
        };
        match put_doc(state, &p.feed, mode).await {
            Ok(()) => {
                if let Ok(Some((stored, _))) = load_doc(state, &key).await {
                    p.stored = stored;
                }
            }
            Err(e) => {
                // Changed or deleted by a lifecycle event meanwhile: take the stored state.
                tracing::debug!(feed = %key, error = %e, "alarm progress not saved");
                reload = true;
            }
        }
    }
    reload
}

/// Removes a finished alarm and, for `deleteAfterFire`, the trigger's rules or the trigger.
async fn finish(state: &AppState, key: &str, feed: &FeedDoc, delete: DeleteAfterFire) {
    if let Err(e) = state.entities().delete(FEEDS_PATH, key).await {
        tracing::error!(feed = key, error = %e, "removing a finished alarm failed");
    }
    if delete == DeleteAfterFire::No {
        return;
    }
    let Ok(Some((_, trigger))) =
        triggers::load_trigger(state, &feed.namespace, &feed.trigger).await
    else {
        return;
    };
    for rule in trigger.rules.iter().flat_map(|r| r.keys()) {
        if let Some((ns, name)) = rule.split_once('/') {
            let _ = state.entities().delete(ns, name).await;
        }
    }
    if delete == DeleteAfterFire::All {
        let _ = state
            .entities()
            .delete(&feed.namespace, &feed.trigger)
            .await;
    }
}
