//! One module per noun; what several nouns share is in [`shared`].

pub(super) mod action;
pub(super) mod activation;
pub(super) mod api;
pub(super) mod list;
pub(super) mod namespace;
pub(super) mod package;
pub(super) mod property;
pub(super) mod rule;
mod shared;
pub(super) mod trigger;
