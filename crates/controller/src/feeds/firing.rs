//! Firing a feed's trigger as the feed's owner, through the activation service.

use super::stored::{FEEDS_PATH, FeedDoc, owner};
use crate::activation::{self, FireRequest};
use crate::error::payload_too_large;
use crate::state::AppState;
use axum::http::StatusCode;
use edgewhisk_entity::time::now_millis;
use serde_json::{Map, Value};

/// How a fire went, as far as the feed is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fired {
    /// Accepted (or no active rule).
    Done,
    /// Refused for now (throttled, server error).
    Refused,
    /// The trigger or the key is gone: the feed is removed.
    Gone,
}

/// Fires the trigger of `feed` with `body` as the feed's owner, through the activation
/// service. Removes the feed when the trigger or key is gone.
pub(super) async fn fire(
    state: &AppState,
    key: &str,
    feed: &FeedDoc,
    body: Map<String, Value>,
) -> Fired {
    let outcome = fire_once(state, feed, body).await;
    if outcome == Fired::Gone {
        tracing::warn!(feed = key, "trigger or key gone; removing its feed");
        if let Err(e) = state.entities().delete(FEEDS_PATH, key).await {
            tracing::error!(feed = key, error = %e, "removing a feed failed");
        }
    }
    outcome
}

pub(super) async fn fire_once(state: &AppState, feed: &FeedDoc, body: Map<String, Value>) -> Fired {
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
    let limit = state.config().max_payload_bytes;
    let size = u64::try_from(Value::Object(body.clone()).to_string().len()).unwrap_or(u64::MAX);
    let request = FireRequest {
        identity,
        namespace: feed.namespace.clone(),
        trigger: feed.trigger.clone(),
        payload: body,
        transaction_id: uuid::Uuid::new_v4().simple().to_string(),
        received_at: now_millis(),
    };
    let status = if size > limit {
        payload_too_large(size, limit).status()
    } else {
        match activation::fire(state, request).await {
            Ok(_) => StatusCode::OK,
            Err(e) => e.status(),
        }
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
