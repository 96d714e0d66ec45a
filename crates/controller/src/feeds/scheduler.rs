//! The task that fires alarms when they are due and runs the MQTT subscriptions.

use super::alarms::{self, AlarmSpec, DeleteAfterFire};
use super::firing::{Fired, fire};
use super::mqtt;
use super::stored::{FEEDS_PATH, FeedDoc, feed_docs, load_doc, migrate_legacy, put_doc};
use super::subscription;
use crate::entities;
use crate::state::AppState;
use edgewhisk_entity::time::now_millis;
use edgewhisk_store::PutMode;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The longest the scheduler sleeps without looking at the clock again.
pub(super) const MAX_SLEEP: Duration = Duration::from_secs(30);

/// An alarm the scheduler waits for.
#[derive(Debug)]
pub(super) struct Pending {
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
pub(super) async fn schedule(state: AppState, mut stop: watch::Receiver<bool>) {
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
            () = signal.notified() => reload = true,
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
pub(super) async fn reconcile(
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
            let task = tokio::spawn(subscription::run(state.clone(), key, feed, spec));
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
pub(super) async fn fire_due(state: &AppState, alarms: &mut HashMap<String, Pending>) -> bool {
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
pub(super) async fn finish(state: &AppState, key: &str, feed: &FeedDoc, delete: DeleteAfterFire) {
    if let Err(e) = state.entities().delete(FEEDS_PATH, key).await {
        tracing::error!(feed = key, error = %e, "removing a finished alarm failed");
    }
    if delete == DeleteAfterFire::No {
        return;
    }
    let Ok(Some((_, trigger))) =
        entities::load_trigger(state, &feed.namespace, &feed.trigger).await
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
