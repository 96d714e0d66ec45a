//! The edgewhisk controller: OpenWhisk's REST API (`/api/v1`, web actions under
//! `/api/v1/web`) as an axum [`Router`](axum::Router), and the activation service behind it.
//!
//! It owns authentication and entitlement, every entity collection (actions, packages,
//! triggers, rules, activations, namespaces and limits), the invocation throttles, OpenWhisk's
//! error bodies and messages, the alarm and MQTT feeds, and the [`activation`] service that
//! runs every activation, whatever its entry path, through the
//! [`loadbalancer::LoadBalancer`] trait towards an invoker. It does not run action code,
//! store activation records itself or depend on the invoker: the server binary wires a
//! balancer to an invoker and serves [`router`].
//!
//! ```text
//! request ─► transaction middleware (X-Request-ID, CORS, error bodies)
//!         ─► handler: parse (Caller, entitlement, body) ─► activation::activate / fire
//!         ─► arguments ─► space check ─► throttle slot ─► dispatch ─► load balancer
//!         ─► wait / store fallback ─► Outcome ─► handler renders it
//! alarm / MQTT feed ─► activation::fire ─► rules ─► activation::activate ─► …
//! ```
//!
//! The module graph runs one way: `api` (routes) over `activation`, `feeds` (scheduler) over
//! `activation`, and both over `entitlement`, `entities`, `state` and the leaf modules.

pub mod activation;
pub mod api;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod dashboard;
pub mod entities;
pub mod entitlement;
pub mod error;
pub mod feeds;
pub mod health;
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
