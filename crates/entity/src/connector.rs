//! Messages between the controller and the invoker (OpenWhisk `core/connector`). In lean mode
//! they travel over in-process channels; a cluster mode would carry the same types over NATS.

use crate::activation::{Activation, ActivationId};
use crate::exec::Exec;
use crate::limits::ActionLimits;
use crate::names::FullyQualifiedEntityName;
use crate::params::Parameters;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

/// An action resolved for the invoker: everything needed to start and run an instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutableAction {
    /// `namespace[/package]` and name of the action.
    pub name: FullyQualifiedEntityName,
    /// Version; instances are reused only for the same version.
    pub version: String,
    /// Code and kind.
    pub exec: Exec,
    /// Limits.
    pub limits: ActionLimits,
    /// Parameters marked `init: true` (passed at `/init` as environment).
    pub init_parameters: Parameters,
    /// The action's annotations (`provide-api-key`, …).
    pub annotations: Parameters,
}

impl ExecutableAction {
    /// The key under which warm instances of this action are shared: same action, same
    /// version.
    pub fn instance_key(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// A request to run one activation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivationMessage {
    /// Transaction id (the `X-Request-ID`).
    pub transaction_id: String,
    /// Id of the activation to produce.
    pub activation_id: ActivationId,
    /// The invoking namespace (instances are not shared across namespaces).
    pub namespace: String,
    /// The invoking subject.
    pub subject: String,
    /// The invoking key (`uuid:key`), passed to the action only when allowed.
    pub api_key: Option<String>,
    /// The action.
    pub action: Arc<ExecutableAction>,
    /// The run arguments: a JSON object, passed through unparsed.
    pub content: Box<RawValue>,
    /// The enclosing activation, if any.
    pub cause: Option<ActivationId>,
    /// When the controller received the request, epoch ms (for `waitTime`).
    pub received_at: u64,
    /// Annotations the controller adds to the record (`causedBy` for sequence components,
    /// `binding` for invocations through a package binding).
    #[serde(default)]
    pub annotations: Parameters,
}

/// The invoker's answer: the finished record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletionMessage {
    /// The activation record, logs included.
    pub activation: Activation,
}
