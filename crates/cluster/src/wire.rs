//! What travels over NATS between controllers and invokers: the subjects and the JSON
//! envelopes around the `edgewhisk_entity::connector` messages. The layout and the reasons
//! for it are in `docs/design/015-cluster-messaging.md`.
//!
//! | subject | from → to | payload |
//! | --- | --- | --- |
//! | `<p>.invoker.<id>.activate` | controller → invoker (request) | [`ActivateEnvelope`]; the reply is an [`Ack`] |
//! | `<p>.controller.<uuid>.completed` | invoker → the controller that published | [`CompletionEnvelope`] |
//! | `<p>.health` | invoker → every controller | [`InvokerPing`] |
//! | `<p>.controllers` | controller → every controller | [`ControllerPing`] |

use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage};
use serde::{Deserialize, Serialize};

/// The subject prefix used unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "edgewhisk";

/// The subjects of one cluster, under a prefix (so several clusters can share a server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Default for Subjects {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

impl Subjects {
    /// Subjects under `prefix` (a NATS subject without wildcards, e.g. `edgewhisk`).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// Where controllers send activations for invoker `id`.
    pub fn activate(&self, invoker_id: u32) -> String {
        format!("{}.invoker.{invoker_id}.activate", self.prefix)
    }

    /// Where invokers send the completions of the activations controller `controller`
    /// published.
    pub fn completed(&self, controller: &str) -> String {
        format!("{}.controller.{controller}.completed", self.prefix)
    }

    /// Invoker pings.
    pub fn health(&self) -> String {
        format!("{}.health", self.prefix)
    }

    /// Controller heartbeats.
    pub fn controllers(&self) -> String {
        format!("{}.controllers", self.prefix)
    }
}

/// An activation for an invoker, with the subject its completion goes to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivateEnvelope {
    /// The completed subject of the controller that published it.
    pub completion_subject: String,
    /// The activation.
    pub message: ActivationMessage,
}

/// An invoker's immediate answer to an [`ActivateEnvelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    /// Whether the invoker took the activation (it will send a completion).
    pub accepted: bool,
    /// Why not, when refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Ack {
    /// The activation was taken.
    pub fn accepted() -> Self {
        Self {
            accepted: true,
            error: None,
        }
    }

    /// The activation was refused (it will never run there).
    pub fn refused(error: impl Into<String>) -> Self {
        Self {
            accepted: false,
            error: Some(error.into()),
        }
    }
}

/// A finished activation, from the invoker that ran it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompletionEnvelope {
    /// The invoker's id.
    pub invoker_id: u32,
    /// The record, as stored by the invoker.
    pub message: CompletionMessage,
}

/// An invoker's ping, every ping interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvokerPing {
    /// Its id (`invoker0`, `invoker1`, … upstream).
    pub invoker_id: u32,
    /// A fresh id per process: a new one means the invoker restarted and lost its work.
    pub instance: String,
    /// The memory it gives to actions, MB.
    pub user_memory_mb: u64,
    /// Activations it has taken and not yet completed.
    pub in_flight: u64,
    /// It is shutting down: no new work, but its activations in flight still complete.
    #[serde(default)]
    pub draining: bool,
}

/// A controller's heartbeat, so every controller knows how many share the invokers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControllerPing {
    /// The controller's process id (a UUID).
    pub controller: String,
}

/// JSON bytes of `value`.
pub fn encode<T: Serialize>(value: &T) -> Result<bytes::Bytes, serde_json::Error> {
    serde_json::to_vec(value).map(bytes::Bytes::from)
}

/// `T` from JSON bytes.
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewhisk_entity::Status;
    use edgewhisk_testkit::fixtures;
    use serde_json::json;

    #[test]
    fn subjects_sit_under_the_prefix() {
        let s = Subjects::default();
        assert_eq!(s.activate(3), "edgewhisk.invoker.3.activate");
        assert_eq!(s.completed("c1"), "edgewhisk.controller.c1.completed");
        assert_eq!(s.health(), "edgewhisk.health");
        assert_eq!(Subjects::new("x").controllers(), "x.controllers");
    }

    #[test]
    fn an_activation_envelope_round_trips_with_its_arguments_unparsed() {
        let action = fixtures::action("guest", "hello").build();
        let msg = fixtures::activation_message(&action)
            .content(json!({"n": 1, "s": "x"}))
            .build();
        let env = ActivateEnvelope {
            completion_subject: "edgewhisk.controller.c.completed".into(),
            message: msg.clone(),
        };
        let bytes = encode(&env).unwrap();
        let back: ActivateEnvelope = decode(&bytes).unwrap();
        assert_eq!(back.completion_subject, env.completion_subject);
        assert_eq!(back.message.activation_id, msg.activation_id);
        assert_eq!(back.message.content.get(), r#"{"n":1,"s":"x"}"#);
        assert_eq!(back.message.action, msg.action);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v.get("completionSubject").is_some());
    }

    #[test]
    fn completions_pings_and_acks_round_trip() {
        let action = fixtures::action("guest", "hello").build();
        let msg = fixtures::activation_message(&action).build();
        let record = fixtures::activation_record(&msg, Status::WhiskError, json!({"error": "x"}));
        let env = CompletionEnvelope {
            invoker_id: 2,
            message: CompletionMessage { activation: record },
        };
        let back: CompletionEnvelope = decode(&encode(&env).unwrap()).unwrap();
        assert_eq!(back.invoker_id, 2);
        assert_eq!(back.message.activation.response.status, Status::WhiskError);
        assert_eq!(back.message.activation.activation_id, msg.activation_id);

        let ping = InvokerPing {
            invoker_id: 1,
            instance: "u".into(),
            user_memory_mb: 2048,
            in_flight: 3,
            draining: false,
        };
        assert_eq!(
            decode::<InvokerPing>(&encode(&ping).unwrap()).unwrap(),
            ping
        );
        // A ping without `draining` (an older invoker) is not draining.
        let old: InvokerPing =
            decode(br#"{"invokerId":1,"instance":"u","userMemoryMb":1,"inFlight":0}"#).unwrap();
        assert!(!old.draining);
        let c = ControllerPing {
            controller: "c".into(),
        };
        assert_eq!(decode::<ControllerPing>(&encode(&c).unwrap()).unwrap(), c);
        for ack in [Ack::accepted(), Ack::refused("shutting down")] {
            assert_eq!(decode::<Ack>(&encode(&ack).unwrap()).unwrap(), ack);
        }
        assert_eq!(
            encode(&Ack::accepted()).unwrap().as_ref(),
            br#"{"accepted":true}"#
        );
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(decode::<ActivateEnvelope>(b"{").is_err());
        assert!(decode::<InvokerPing>(br#"{"invokerId":"x"}"#).is_err());
    }
}
