//! Action instances ("containers") and the factories that start them.
//!
//! A [`Container`] is one long-lived runner process (optionally inside an isolation backend)
//! speaking the pipe protocol of `docs/design/001-runner-protocol.md`: one JSON request line
//! on stdin, one JSON reply line on fd 3, the action's stdout/stderr captured as logs with the
//! activation-end sentinel after every request. The meaning of requests and replies is
//! OpenWhisk's `/init` and `/run` action interface (upstream `docs/actions-new.md`), so replies
//! carry an HTTP-like status; the runner protocol document tables them per runtime.
//!
//! Backends implement [`ContainerFactory`]: [`process`] (plain child processes, no isolation)
//! and [`runc`] (the same runners inside OCI containers), and [`wasm`] (WebAssembly modules run
//! in-process by wasmtime, with the `wasm` feature), which [`by_kind`] puts in front of either.
//! The pool only sees these traits, so another backend slots in without touching the pool. This module only declares the backends
//! and re-exports the seam they share (`backend.rs`).

pub mod archive;
mod backend;
pub mod by_kind;
pub mod native;
pub mod process;
pub mod response;
pub mod runc;
mod runners;
pub mod wasm;

pub(crate) use runners::sanitize;

pub use backend::{
    ACTIVATION_LOG_SENTINEL, CollectedLogs, Container, ContainerError, ContainerFactory,
    ContainerSpec, InitRequest, Interval, RunRequest, RunnerOutcome, RunnerReply,
};
