//! The `wasm` backend: `wasm:wasi` actions are WebAssembly modules (WASI preview 1 commands)
//! run in-process by wasmtime, whatever the isolation backend of the other kinds: the Wasm
//! sandbox is their isolation (no file system, no network, no inherited environment).
//!
//! Contract: the arguments (JSON) on stdin, the result (a JSON object or array) on stdout,
//! stderr is the log. A module is compiled once per distinct code (kept in memory, and in
//! wasmtime's compilation cache under `<work_dir>/wasm-cache`, so a restart does not
//! recompile); every activation gets a fresh instance from a pooling allocator, with
//! `limits.memory` as its linear-memory cap and `limits.timeout` enforced by epoch
//! interruption. Design, limits and alternatives: `docs/design/020-wasm-actions.md`.

mod config;

pub use config::{WasmConfig, WasmConfigError, is_wasm_kind};

#[cfg(feature = "wasm")]
mod activation;
#[cfg(feature = "wasm")]
mod code;
#[cfg(feature = "wasm")]
mod engine;
#[cfg(feature = "wasm")]
mod factory;

#[cfg(feature = "wasm")]
pub use factory::{WasmContainer, WasmFactory, WasmStats};
