//! The seam between the controller and the invoker (OpenWhisk `LoadBalancer.scala`).
//!
//! The controller hands every activation to a [`LoadBalancer`] and gets back a one-shot
//! receiver for its completion. In lean mode the server wires this to the in-process invoker
//! over a tokio channel (OpenWhisk `LeanBalancer.scala`); a cluster mode would publish the same
//! [`ActivationMessage`] on a NATS subject. The controller never depends on the invoker.
//!
//! The rules such a cluster balancer follows (OpenWhisk's `ShardingContainerPoolBalancer` and
//! `InvokerSupervision`) are pure functions here, each tested on its own: [`sharding`] (which
//! invoker), [`capacity`] (the memory slots a controller holds on an invoker) and [`health`]
//! (offline, unhealthy, healthy).

pub mod capacity;
pub mod health;
pub mod sharding;

use async_trait::async_trait;
use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage};
use tokio::sync::oneshot;

/// Why a balancer could not take an activation; the API answers 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadBalancerError {
    /// No invoker is running, or the channel to it is closed.
    #[error("no invoker is available")]
    Unavailable,
    /// The invoker's queue is full.
    #[error("the invoker queue is full")]
    Overloaded,
    /// A cluster balancer knows no healthy invoker (OpenWhisk's "No invokers available.").
    #[error("no healthy invoker is known")]
    NoInvokers,
    /// The activation message is larger than the messaging system carries.
    #[error(
        "The activation message is {size} bytes, more than the {limit} bytes the messaging \
         server accepts (raise nats-server's max_payload)."
    )]
    MessageTooLarge {
        /// The encoded message's size in bytes.
        size: usize,
        /// The largest message the server accepts, bytes.
        limit: usize,
    },
}

/// Sends activations to an invoker.
///
/// Concurrency contract: `publish` is called concurrently from every request task; an
/// implementation must not block. The returned receiver resolves once with the finished
/// activation; dropping the sender without answering tells the controller that the result
/// will only be found in the activation store (if at all).
#[async_trait]
pub trait LoadBalancer: Send + Sync + std::fmt::Debug + 'static {
    /// Schedules `msg` and returns where its completion will arrive.
    async fn publish(
        &self,
        msg: ActivationMessage,
    ) -> Result<oneshot::Receiver<CompletionMessage>, LoadBalancerError>;

    /// The invokers this balancer knows, by name, with their health as OpenWhisk's
    /// `GET /invokers` shows it: `("invoker0/0", "up")`; the states are `up`, `unhealthy`
    /// and `down` (offline).
    fn invoker_health(&self) -> Vec<(String, &'static str)> {
        Vec::new()
    }
}
