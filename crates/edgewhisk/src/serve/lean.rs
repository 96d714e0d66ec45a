//! The lean load balancer: every activation goes to the one in-process invoker (OpenWhisk
//! `LeanBalancer.scala`), with no queue or network in between.

use async_trait::async_trait;
use edgewhisk_controller::loadbalancer::{LoadBalancer, LoadBalancerError};
use edgewhisk_entity::connector::{ActivationMessage, CompletionMessage};
use edgewhisk_invoker::Invoker;
use tokio::sync::oneshot;

/// Hands activations straight to the in-process invoker.
#[derive(Debug, Clone)]
pub(crate) struct LeanBalancer {
    invoker: Invoker,
}

impl LeanBalancer {
    /// Balances onto `invoker`.
    pub(crate) fn new(invoker: Invoker) -> Self {
        Self { invoker }
    }
}

#[async_trait]
impl LoadBalancer for LeanBalancer {
    async fn publish(
        &self,
        msg: ActivationMessage,
    ) -> Result<oneshot::Receiver<CompletionMessage>, LoadBalancerError> {
        self.invoker
            .submit(msg)
            .map_err(|_| LoadBalancerError::Unavailable)
    }

    fn invoker_health(&self) -> Vec<(String, &'static str)> {
        let state = if self.invoker.is_shutting_down() {
            "down"
        } else {
            "up"
        };
        vec![("invoker0/0".to_owned(), state)]
    }
}
