//! The edgewhisk controller: OpenWhisk's REST API (`/api/v1`) as an axum [`Router`](axum::Router).
//!
//! It owns authentication and entitlement, the actions, activations and namespaces
//! collections, invocation throttles, blocking and non-blocking invoke, OpenWhisk's error
//! bodies and messages, and the [`loadbalancer::LoadBalancer`] trait through which activations
//! leave for an invoker. It deliberately does not run actions, store activation records or
//! depend on the invoker: the server binary wires a balancer to an invoker and serves
//! [`router`].
//!
//! ```text
//! request ─► transaction middleware (X-Request-ID, CORS, error bodies)
//!         ─► handler: Caller (auth) ─► namespace entitlement ─► store / throttle ─► balancer
//! ```

pub mod activation;
pub mod api;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod entities;
pub mod entitlement;
pub mod error;
pub mod feeds;
pub mod loadbalancer;
pub mod messages;
pub mod sequences;
pub mod state;
pub mod throttle;

#[cfg(test)]
mod tests;

pub use crate::error::ApiError;
pub use crate::state::{AppState, BuildInfo};

/// The whole REST API, ready to serve.
pub fn router(state: AppState) -> axum::Router {
    api::router(state)
}
