//! Entity fixtures: a resolved action, the controller→invoker message that runs it, and the
//! record an invoker would answer with. Each is a small builder with the defaults most tests
//! want, so a test spells out only what it checks.

use edgewhisk_entity::connector::{ActivationMessage, ExecutableAction};
use edgewhisk_entity::limits::ActionLimits;
use edgewhisk_entity::{
    Activation, ActivationId, ActivationResponse, Exec, FullyQualifiedEntityName, Parameters,
    Status,
};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::sync::Arc;

/// The log line every [`activation_record`] carries.
pub const RECORD_LOG: &str = "2024-01-01T00:00:00.000000000Z stdout: hi";

/// A resolved action `/<namespace>/<name>`: version `0.0.1`, kind `nodejs:20`, code that
/// returns its argument, 256 MB, 60 s, 10 MB of logs, concurrency 1, no parameters.
pub fn action(namespace: &str, name: &str) -> ActionBuilder {
    ActionBuilder {
        namespace: namespace.to_owned(),
        package: None,
        name: name.to_owned(),
        version: "0.0.1".into(),
        exec: Exec {
            kind: "nodejs:20".into(),
            code: "function main(a) { return a; }".into(),
            binary: false,
            main: None,
            image: None,
        },
        limits: ActionLimits {
            timeout: 60_000,
            memory: 256,
            logs: 10,
            concurrency: 1,
        },
        init_parameters: Parameters::default(),
        annotations: Parameters::default(),
    }
}

/// Builds an [`ExecutableAction`]; start with [`action`].
#[derive(Debug, Clone)]
pub struct ActionBuilder {
    namespace: String,
    package: Option<String>,
    name: String,
    version: String,
    exec: Exec,
    limits: ActionLimits,
    init_parameters: Parameters,
    annotations: Parameters,
}

impl ActionBuilder {
    /// Puts the action in package `package`.
    pub fn package(mut self, package: &str) -> Self {
        self.package = Some(package.to_owned());
        self
    }

    /// The action's version.
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// The runtime kind.
    pub fn kind(mut self, kind: &str) -> Self {
        self.exec.kind = kind.to_owned();
        self
    }

    /// The action's code.
    pub fn code(mut self, code: &str) -> Self {
        self.exec.code = code.to_owned();
        self
    }

    /// The entry point (`exec.main`).
    pub fn main(mut self, main: &str) -> Self {
        self.exec.main = Some(main.to_owned());
        self
    }

    /// The memory limit in MB.
    pub fn memory(mut self, mb: u64) -> Self {
        self.limits.memory = mb;
        self
    }

    /// The time limit in ms.
    pub fn timeout(mut self, ms: u64) -> Self {
        self.limits.timeout = ms;
        self
    }

    /// How many activations one container may run at once.
    pub fn concurrency(mut self, n: u32) -> Self {
        self.limits.concurrency = n;
        self
    }

    /// The parameters the action is initialised with, as a JSON array of `{key, value}` or
    /// an object.
    pub fn init_parameters(mut self, params: Value) -> Self {
        self.init_parameters = parameters(params);
        self
    }

    /// The action's annotations, as a JSON array of `{key, value}` or an object.
    pub fn annotations(mut self, annotations: Value) -> Self {
        self.annotations = parameters(annotations);
        self
    }

    /// The action.
    pub fn build(self) -> Arc<ExecutableAction> {
        Arc::new(ExecutableAction {
            name: FullyQualifiedEntityName::new(
                &self.namespace,
                self.package.as_deref(),
                &self.name,
            ),
            version: self.version,
            exec: self.exec,
            limits: self.limits,
            init_parameters: self.init_parameters,
            annotations: self.annotations,
        })
    }
}

/// Parameters from a `[{key, value}]` array or from an object's entries, in order.
fn parameters(value: Value) -> Parameters {
    match value {
        Value::Object(map) => {
            let mut params = Parameters::default();
            for (k, v) in map {
                params.set(&k, v);
            }
            params
        }
        other => serde_json::from_value(other).expect("a [{key, value}] array"),
    }
}

/// A message that runs `action` for its own namespace: transaction id `tid`, a fresh
/// activation id, subject = namespace, no key, content `{}`, no cause, received now.
pub fn activation_message(action: &Arc<ExecutableAction>) -> MessageBuilder {
    let namespace = action.name.namespace().to_owned();
    MessageBuilder(ActivationMessage {
        transaction_id: "tid".into(),
        activation_id: ActivationId::generate(),
        subject: namespace.clone(),
        namespace,
        api_key: None,
        action: Arc::clone(action),
        content: raw(&json!({})),
        cause: None,
        received_at: edgewhisk_entity::time::now_millis(),
        annotations: Parameters::default(),
    })
}

/// Builds an [`ActivationMessage`]; start with [`activation_message`].
#[derive(Debug, Clone)]
pub struct MessageBuilder(ActivationMessage);

impl MessageBuilder {
    /// The transaction id.
    pub fn transaction_id(mut self, tid: &str) -> Self {
        self.0.transaction_id = tid.to_owned();
        self
    }

    /// The activation id (32 hex digits).
    pub fn activation_id(mut self, id: &str) -> Self {
        self.0.activation_id = ActivationId::parse(id).expect("32 hex digits");
        self
    }

    /// The invoking namespace; the subject follows it unless set after.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.0.namespace = namespace.to_owned();
        self.0.subject = namespace.to_owned();
        self
    }

    /// The invoking subject.
    pub fn subject(mut self, subject: &str) -> Self {
        self.0.subject = subject.to_owned();
        self
    }

    /// The invoking key passed to the action.
    pub fn api_key(mut self, key: &str) -> Self {
        self.0.api_key = Some(key.to_owned());
        self
    }

    /// The run arguments.
    pub fn content(mut self, content: Value) -> Self {
        self.0.content = raw(&content);
        self
    }

    /// When the controller received the request, epoch ms.
    pub fn received_at(mut self, ms: u64) -> Self {
        self.0.received_at = ms;
        self
    }

    /// The message.
    pub fn build(self) -> ActivationMessage {
        self.0
    }
}

fn raw(value: &Value) -> Box<RawValue> {
    RawValue::from_string(value.to_string()).expect("JSON text")
}

/// The record an invoker answers `msg` with: `status` and `result`, started when the message
/// was received and 5 ms long, the message's cause, one log line ([`RECORD_LOG`]), and the
/// `path`, `kind` and `limits` annotations.
pub fn activation_record(msg: &ActivationMessage, status: Status, result: Value) -> Activation {
    let mut annotations = Parameters::default();
    annotations.set("path", json!(msg.action.name.path_string()));
    annotations.set("kind", json!(msg.action.exec.kind));
    annotations.set("limits", json!(msg.action.limits));
    Activation {
        namespace: msg.namespace.clone(),
        name: msg.action.name.name.clone(),
        version: msg.action.version.clone(),
        subject: msg.subject.clone(),
        activation_id: msg.activation_id.clone(),
        cause: msg.cause.clone(),
        start: msg.received_at,
        end: msg.received_at + 5,
        duration: None,
        response: ActivationResponse {
            status,
            result: Some(result),
            size: None,
        },
        logs: vec![RECORD_LOG.into()],
        annotations,
        publish: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_runs_its_action_for_the_action_namespace_by_default() {
        let a = action("guest", "hello").package("pkg").memory(128).build();
        assert_eq!(a.name.path_string(), "guest/pkg/hello");
        assert_eq!(a.limits.memory, 128);
        let msg = activation_message(&a).content(json!({"n": 1})).build();
        assert_eq!(msg.namespace, "guest");
        assert_eq!(msg.subject, "guest");
        assert_eq!(msg.content.get(), r#"{"n":1}"#);
        let rec = activation_record(&msg, Status::Success, json!({"ok": true}));
        assert_eq!(rec.activation_id, msg.activation_id);
        assert_eq!(rec.end - rec.start, 5);
        assert_eq!(rec.annotations.get("kind"), Some(&json!("nodejs:20")));
    }

    #[test]
    fn parameters_come_from_an_array_or_an_object() {
        let a = action("guest", "p")
            .init_parameters(json!([{"key": "a", "value": 1}]))
            .annotations(json!({"b": true}))
            .build();
        assert_eq!(a.init_parameters.get("a"), Some(&json!(1)));
        assert_eq!(a.annotations.get("b"), Some(&json!(true)));
    }
}
