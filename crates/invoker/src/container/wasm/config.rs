//! The `[wasm]` section of the server configuration, and which kinds the backend runs.

/// Whether `kind` is run by this backend: the `wasm` family (`wasm:wasi`).
pub fn is_wasm_kind(kind: &str) -> bool {
    kind.split(':').next() == Some("wasm")
}

/// Sizes of the WebAssembly backend (`[wasm]` in the server configuration).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WasmConfig {
    /// Activations that may run at once (the pooling allocator's instance slots); more wait
    /// for a free slot. Each slot reserves address space, not memory.
    pub instances: u32,
    /// Compiled modules kept in memory, least recently used dropped first.
    pub cached_modules: usize,
    /// Soft bound of the on-disk compilation cache, in MB.
    pub cache_max_mb: u64,
}

impl Default for WasmConfig {
    fn default() -> Self {
        Self {
            instances: 64,
            cached_modules: 64,
            cache_max_mb: 256,
        }
    }
}

/// A `[wasm]` setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WasmConfigError {
    /// `instances` is 0 or above 1000.
    #[error("wasm.instances must be between 1 and 1000")]
    Instances,
    /// `cached_modules` is 0.
    #[error("wasm.cached_modules must be at least 1")]
    CachedModules,
}

impl WasmConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), WasmConfigError> {
        if !(1..=1000).contains(&self.instances) {
            return Err(WasmConfigError::Instances);
        }
        if self.cached_modules == 0 {
            return Err(WasmConfigError::CachedModules);
        }
        Ok(())
    }
}
