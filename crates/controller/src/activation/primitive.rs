//! One activation of a code action: the [`ActivationMessage`] built in one place, published
//! on the load balancer, and the wait for its completion with the fallback to the store.

use crate::entitlement;
use crate::error::ApiError;
use crate::loadbalancer::LoadBalancerError;
use crate::state::AppState;
use crate::throttle::InFlight;
use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage, ExecutableAction};
use edgewhisk_entity::exec::ActionExec;
use edgewhisk_entity::{
    Action, Activation, ActivationId, FullyQualifiedEntityName, Identity, Parameters,
};
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::Instrument;

/// A code action as the invoker needs it; `None` for a sequence.
pub(crate) fn executable(action: Action) -> Option<ExecutableAction> {
    let ActionExec::Code(exec) = action.exec else {
        return None;
    };
    let init = action
        .parameters
        .0
        .into_iter()
        .filter(|kv| kv.init)
        .collect();
    Some(ExecutableAction {
        name: FullyQualifiedEntityName {
            path: action.namespace,
            name: action.name,
        },
        version: action.version,
        exec,
        limits: action.limits,
        init_parameters: Parameters(init),
        annotations: action.annotations,
    })
}

/// Where an activation comes from, besides the action and its arguments.
#[derive(Debug, Clone)]
pub(super) struct Origin<'a> {
    /// Who runs it.
    pub(super) identity: &'a Identity,
    /// The request's transaction id.
    pub(super) transaction_id: &'a str,
    /// When the request (or, for a component, the component) was received, epoch ms.
    pub(super) received_at: u64,
    /// The enclosing sequence or composition, if any.
    pub(super) cause: Option<ActivationId>,
}

/// An activation handed to the load balancer.
#[derive(Debug)]
pub(super) struct Published {
    /// Its id.
    pub(super) id: ActivationId,
    /// Where its completion arrives.
    pub(super) completion: oneshot::Receiver<CompletionMessage>,
}

/// Builds the activation message of `executable` with `content` and publishes it. The key
/// passed to the action is decided by [`entitlement::api_key_for`].
pub(super) async fn publish(
    state: &AppState,
    origin: Origin<'_>,
    executable: Arc<ExecutableAction>,
    content: Box<RawValue>,
    annotations: Parameters,
) -> Result<Published, LoadBalancerError> {
    let id = ActivationId::generate();
    let msg = ActivationMessage {
        transaction_id: origin.transaction_id.to_owned(),
        activation_id: id.clone(),
        namespace: origin.identity.namespace.clone(),
        subject: origin.identity.subject.clone(),
        api_key: entitlement::api_key_for(origin.identity, &executable.name.path),
        action: executable,
        content,
        cause: origin.cause,
        received_at: origin.received_at,
        annotations,
    };
    let completion = state.balancer().publish(msg).await?;
    Ok(Published { id, completion })
}

/// How the wait for a published activation ended.
#[derive(Debug)]
pub(super) enum Completion {
    /// Its record: from the invoker, or from the store when the answer path was dropped.
    Done(Box<Activation>),
    /// Not finished within the wait; the receiver still gets the completion.
    TimedOut(oneshot::Receiver<CompletionMessage>),
    /// The answer path was dropped and no record was stored.
    Lost,
}

/// Waits up to `wait` for `published` of `namespace`. When the invoker drops the answer path,
/// the record may still have been stored, and is looked up there.
pub(super) async fn wait_for(
    state: &AppState,
    namespace: &str,
    published: Published,
    wait: Duration,
) -> Result<Completion, ApiError> {
    let Published { id, mut completion } = published;
    match tokio::time::timeout(wait, &mut completion).await {
        Ok(Ok(CompletionMessage { activation })) => Ok(Completion::Done(Box::new(activation))),
        Ok(Err(_)) => Ok(match state.activations().get(namespace, &id).await? {
            Some(activation) => Completion::Done(Box::new(activation)),
            None => Completion::Lost,
        }),
        Err(_) => Ok(Completion::TimedOut(completion)),
    }
}

/// Frees the throttle slot when the activation completes, or after `bound` at the latest.
pub(super) fn release_later(
    completion: oneshot::Receiver<CompletionMessage>,
    slot: InFlight,
    bound: Duration,
) {
    tokio::spawn(
        async move {
            let _ = tokio::time::timeout(bound, completion).await;
            drop(slot);
        }
        .in_current_span(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn executable_action_splits_out_init_parameters() {
        let a: Action = serde_json::from_value(json!({
            "namespace": "guest", "name": "a", "version": "0.0.1", "publish": false,
            "exec": {"kind": "nodejs:20", "code": "x", "binary": false},
            "parameters": [{"key": "x", "value": 1}, {"key": "e", "value": 3, "init": true}],
            "limits": {"timeout": 1000, "memory": 256, "logs": 10, "concurrency": 1},
            "annotations": [{"key": "provide-api-key", "value": false}], "updated": 1
        }))
        .unwrap();
        let e = executable(a).unwrap();
        assert_eq!(e.name.to_string(), "/guest/a");
        assert_eq!(e.init_parameters.0.len(), 1);
        assert_eq!(e.init_parameters.0[0].key, "e");
        assert!(e.annotations.get("provide-api-key").is_some());
    }
}
