//! The built-in feeds and how an action is recognised as one.

use super::alarms::{self, AlarmKind};
use super::mqtt;
use crate::catalog::{FEED_PROVIDER, SYSTEM_NAMESPACE};
use edgewhisk_entity::Action;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

    pub(super) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub(super) fn alarm(self) -> Option<AlarmKind> {
        match self {
            Self::Alarm => Some(AlarmKind::Cron),
            Self::Once => Some(AlarmKind::Once),
            Self::Interval => Some(AlarmKind::Interval),
            Self::MqttSubscribe => None,
        }
    }

    /// Checks the parameters of a feed of this kind.
    pub(super) fn validate(
        self,
        params: &Map<String, Value>,
        now: u64,
        creating: bool,
    ) -> Result<(), String> {
        match self.alarm() {
            Some(kind) => alarms::parse(kind, params, now, creating).map(drop),
            None => mqtt::parse(params).map(drop),
        }
    }
}

/// The built-in feed `action` runs, if it is one: an action of `whisk.system` annotated
/// [`FEED_PROVIDER`].
pub fn provider(action: &Action) -> Option<FeedKind> {
    let system = action.namespace == SYSTEM_NAMESPACE
        || action
            .namespace
            .starts_with(&format!("{SYSTEM_NAMESPACE}/"));
    if !system {
        return None;
    }
    action
        .annotations
        .get(FEED_PROVIDER)
        .and_then(Value::as_str)
        .and_then(FeedKind::parse)
}
