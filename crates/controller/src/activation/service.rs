//! [`activate`]: one activation from request to outcome, whatever the entry path.

use super::arguments;
use super::primitive::{self, Completion, Origin};
use super::request::{ActivationRequest, Outcome};
use super::runner::Runner;
use crate::error::ApiError;
use crate::feeds::kind::provider;
use crate::feeds::lifecycle::run_lifecycle;
use crate::state::AppState;
use crate::throttle::InFlight;
use edgewhisk_entity::exec::ActionExec;
use edgewhisk_entity::{ActivationId, Parameters};
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::Instrument;

/// Runs one activation (OpenWhisk `Actions.scala` `activate` and `PrimitiveActions.scala`).
///
/// In order: the arguments (400: not an object, `final` parameters redefined), the room to
/// keep its record (507: refused before it runs), a slot of the identity's throttles (429),
/// then the dispatch:
/// - a feed action of the system catalog runs its lifecycle event in the controller;
/// - a sequence or conductor action runs as a task of its own, so that it goes on after a
///   waiting caller has been answered;
/// - any other action is published on the load balancer (503 when it does not take it).
///
/// With a `wait`, the outcome is the finished record when it arrives in time (for a
/// primitive whose answer path was dropped, the record the invoker stored; 507 when none was
/// stored for lack of space), else `Pending`. The throttle slot is held until the activation
/// completes, or for the action's release bound when nobody waits for it any more.
pub async fn activate(state: &AppState, req: ActivationRequest) -> Result<Outcome, ApiError> {
    let ActivationRequest {
        identity,
        action,
        binding,
        input,
        wait,
        transaction_id,
        received_at,
    } = req;
    let content = arguments::topmost(&action, input)?;
    // An activation whose record could not be kept is refused before it runs: accepting it
    // would promise a record that will never exist.
    state.activations().check_space()?;
    let slot = state
        .throttler()
        .acquire(&identity.namespace, received_at)
        .map_err(|e| ApiError::TooManyRequests(e.message()))?;
    let id = ActivationId::generate();

    if let Some(feed) = provider(&action) {
        let record = run_lifecycle(
            state,
            &identity,
            feed,
            &action,
            content.get(),
            id,
            received_at,
        )
        .await;
        drop(slot);
        return Ok(Outcome::Done(Box::new(record)));
    }
    if matches!(action.exec, ActionExec::Sequence(_)) || action.is_conductor() {
        let runner = Runner::new(state.clone(), identity, transaction_id, received_at);
        let run = Composed {
            runner,
            action,
            id,
            content,
            slot,
        };
        return run.start(wait).await;
    }

    let executable = Arc::new(primitive::executable(action).ok_or(ApiError::NotFound)?);
    // Past this bound nobody waits for the activation any more; its slot is freed.
    let release_after = executable.limits.release_bound();
    let mut annotations = Parameters::default();
    if let Some(binding) = binding {
        annotations.set("binding", Value::String(binding));
    }
    let origin = Origin {
        identity: &identity,
        transaction_id: &transaction_id,
        received_at,
        cause: None,
    };
    let published = primitive::publish(state, origin, executable, content, annotations).await?;
    let id = published.id.clone();
    let Some(wait) = wait else {
        primitive::release_later(published.completion, slot, release_after);
        return Ok(Outcome::Pending(id));
    };
    match primitive::wait_for(state, &identity.namespace, published, wait).await? {
        Completion::Done(record) => Ok(Outcome::Done(record)),
        Completion::TimedOut(completion) => {
            primitive::release_later(completion, slot, release_after);
            Ok(Outcome::Pending(id))
        }
        Completion::Lost => {
            drop(slot);
            // The invoker drops the answer of a record it could not store; a full disk is the
            // usual reason, and the caller must not take it for a pending activation.
            state.activations().check_space()?;
            Ok(Outcome::Pending(id))
        }
    }
}

/// A topmost sequence or conductor activation.
struct Composed {
    runner: Runner,
    action: edgewhisk_entity::Action,
    id: ActivationId,
    content: Box<RawValue>,
    slot: InFlight,
}

impl Composed {
    /// Starts the run as a task of its own; answers its record when it finishes within
    /// `wait`, else `Pending`.
    async fn start(self, wait: Option<Duration>) -> Result<Outcome, ApiError> {
        let id = self.id.clone();
        let (tx, rx) = oneshot::channel();
        tokio::spawn(
            async move {
                let record = self
                    .runner
                    .run_topmost(self.action, self.id, self.content)
                    .await;
                drop(self.slot);
                let _ = tx.send(record);
            }
            .in_current_span(),
        );
        let Some(wait) = wait else {
            return Ok(Outcome::Pending(id));
        };
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(Ok(record))) => Ok(Outcome::Done(Box::new(record))),
            // The record could not be stored: not the answer of a finished activation.
            Ok(Ok(Err(e))) => Err(ApiError::Store(e)),
            _ => Ok(Outcome::Pending(id)),
        }
    }
}
