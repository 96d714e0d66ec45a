//! Domain types of edgewhisk and their exact OpenWhisk wire JSON.
//!
//! This crate owns names and ids, limits, exec kinds and the runtime manifest; actions,
//! packages, triggers and rules, each as its PUT body and its stored document; activation
//! records; parameters and annotations; identities and the stored form of their keys; and the
//! messages the controller and the invoker exchange (`connector`). It does no I/O, reads no
//! configuration and depends on no async runtime: bounds (such as the allowed memory range) are
//! passed in by the caller.

pub mod action;
pub mod activation;
pub mod connector;
pub mod exec;
pub mod identity;
pub mod limits;
pub mod names;
pub mod package;
pub mod params;
pub mod rule;
pub mod time;
pub mod trigger;

pub use action::{Action, ActionPut};
pub use activation::{Activation, ActivationId, ActivationResponse, Status};
pub use exec::{Exec, ExecError, ExecPut, RunnerType, Runtime, RuntimeManifest};
pub use identity::Identity;
pub use limits::{ActionLimits, ActionLimitsPut, LimitBounds, LimitError};
pub use names::{EntityName, FullyQualifiedEntityName, NameError};
pub use package::{Binding, Package, PackagePut};
pub use params::{KeyValue, Parameters};
pub use rule::{Rule, RulePut};
pub use trigger::{ReducedRule, RuleStatus, Trigger, TriggerPut};
