//! Cluster mode's messaging: many controllers and invokers as one OpenWhisk, over core NATS.
//!
//! - [`ClusterBalancer`] is the controller's `LoadBalancer`: OpenWhisk's
//!   `ShardingContainerPoolBalancer` and `InvokerSupervision`, with the pure rules of
//!   `edgewhisk_controller::loadbalancer::{sharding, capacity, health}` fed by pings and
//!   completions that arrive over NATS.
//! - [`InvokerAgent`] is the invoker's side (OpenWhisk `InvokerReactive`'s consumer and
//!   pinger): it takes activations from its subject, runs them on an `edgewhisk_invoker::Invoker`
//!   and sends each completion to the controller that asked.
//! - [`wire`] holds the subjects and envelopes.
//!
//! Subjects, envelopes, acknowledgements, failure handling and why core NATS (not JetStream)
//! carries activations: `docs/design/015-cluster-messaging.md`.

mod agent;
mod balancer;
mod connection;
pub mod wire;

pub use agent::{AgentSettings, InvokerAgent};
pub use balancer::{
    BalancerSettings, COMPLETION_MARGIN, COMPLETION_TIMED_OUT, ClusterBalancer, INVOKER_LOST,
};
pub use connection::{ClusterError, connect};
