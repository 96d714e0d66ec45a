//! The invoker: runs activations in a pool of action instances.
//!
//! Calls run one way: the [`invoker`] front takes an `ActivationMessage` and hands it to the
//! [`container_pool`] (pure scheduling policy plus the task that applies it), which places it
//! on the [`container_proxy`] state machine of one instance, which drives a [`container`]
//! through the backend seam (`Container`/`ContainerFactory`, with the backends `process`,
//! plain child processes, and `runc`, OCI containers; both speak the runner pipe protocol and
//! collect logs up to the sentinels). The types the front, the pool and the proxies hand each
//! other (jobs and their answer guarantee, the pool's and proxies' messages) live in a module
//! of their own (`seam.rs`), the record built from a run in `record.rs`, the counts of runs and of the pool in
//! [`metrics`]. The invoker never
//! depends on the controller; the two meet through `edgewhisk_entity::connector` messages.

pub mod config;
pub mod container;
pub mod container_pool;
pub mod container_proxy;
pub mod invoker;
pub mod metrics;
mod record;
mod seam;

pub use config::PoolConfig;
pub use invoker::{Invoker, InvokerError};
pub use metrics::InvokerMetrics;
pub use record::whisk_error_record;
