//! What the activation service is asked and what it answers.

use super::arguments::Input;
use edgewhisk_entity::{Action, Activation, ActivationId, Identity};
use std::time::Duration;

/// One activation to run, from any entry path: REST invoke, web action, trigger rule.
#[derive(Debug)]
pub struct ActivationRequest {
    /// Who the activation runs as: it is stored under this namespace and counts against its
    /// throttles (the caller; a web action's owner; a trigger's or feed's owner).
    pub identity: Identity,
    /// The action, resolved through its package, package parameters merged under its own.
    pub action: Action,
    /// `ns/binding` when the action was addressed through a package binding (recorded as the
    /// `binding` annotation).
    pub binding: Option<String>,
    /// The arguments before the action's default parameters are merged in.
    pub input: Input,
    /// How long the caller waits for the result: `None` answers at once.
    pub wait: Option<Duration>,
    /// The transaction (`X-Request-ID`) the activation belongs to.
    pub transaction_id: String,
    /// When the request was received, epoch ms (the record's `waitTime` counts from here).
    pub received_at: u64,
}

/// How an activation stands when the service answers.
#[derive(Debug)]
pub enum Outcome {
    /// It finished (or could not run) and this is its record.
    Done(Box<Activation>),
    /// It was accepted and goes on (or its caller does not wait); its record will be stored
    /// under this id.
    Pending(ActivationId),
}

impl Outcome {
    /// The id of the activation, finished or not.
    pub fn activation_id(&self) -> &ActivationId {
        match self {
            Outcome::Done(record) => &record.activation_id,
            Outcome::Pending(id) => id,
        }
    }
}
