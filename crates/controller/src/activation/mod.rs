//! The activation service: the one path from "run this action" to a record, for every entry
//! path — REST invoke, web actions, trigger fires and their rules, alarm and MQTT feeds, and
//! the components of sequences and compositions.
//!
//! The input is a typed [`ActivationRequest`] (or a [`FireRequest`]); the output a typed
//! [`Outcome`]: done with a record, or pending with an id. HTTP handlers parse a request into
//! one, call [`activate`] (or [`fire`]) and render the outcome; nothing internal goes through
//! a handler or an HTTP response. The service owns, in one place each:
//!
//! - the arguments: the input merged over the action's default parameters (`arguments`);
//! - the check that the record can be kept, and the throttle slot and its release;
//! - the dispatch: feed lifecycle, sequence and conductor (`runner`, `sequence`,
//!   `conductor`), or a primitive action (`primitive`);
//! - the [`ActivationMessage`](edgewhisk_entity::connector::ActivationMessage), its
//!   publication on the load balancer, the wait, and the fallback to the activation store;
//! - entitlement of sequence and conductor components each time they run.
//!
//! `ARCHITECTURE.md` draws the life of an invocation for each entry path.

mod arguments;
mod conductor;
mod fire;
mod primitive;
mod request;
mod runner;
mod sequence;
mod service;

pub use arguments::Input;
pub use fire::{FireOutcome, FireRequest, fire};
pub use request::{ActivationRequest, Outcome};
pub use service::activate;
