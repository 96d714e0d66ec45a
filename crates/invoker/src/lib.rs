//! The invoker: runs activations in a pool of action instances.
//!
//! It owns the [`container`] seam (the `Container`/`ContainerFactory` traits and the `process`
//! backend with its runner protocol client and sentinel-based log collection), the
//! [`container_pool`] (pure scheduling policy plus the task that applies it), the
//! [`container_proxy`] state machine of one instance, and the [`invoker`] front that takes an
//! `ActivationMessage`, runs it, stores the record and answers. It never depends on the
//! controller; the two meet through `edgewhisk_entity::connector` messages.

pub mod config;
pub mod container;
pub mod container_pool;
pub mod container_proxy;
pub mod invoker;
mod record;
mod seam;

pub use config::PoolConfig;
pub use invoker::{Invoker, InvokerError};
