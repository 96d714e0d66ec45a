//! [`ByKind`]: one factory in front of two, so WebAssembly kinds run in-process (the `wasm`
//! backend) while every other kind goes to the configured isolation backend.

use super::backend::{Container, ContainerError, ContainerFactory, ContainerSpec};
use super::wasm::is_wasm_kind;
use async_trait::async_trait;
use std::sync::Arc;

/// Sends kinds of the `wasm` family to `wasm` and the rest to `other`.
#[derive(Debug)]
pub struct ByKind {
    wasm: Arc<dyn ContainerFactory>,
    other: Arc<dyn ContainerFactory>,
}

impl ByKind {
    /// The router over both factories.
    pub fn new(wasm: Arc<dyn ContainerFactory>, other: Arc<dyn ContainerFactory>) -> Self {
        Self { wasm, other }
    }
}

#[async_trait]
impl ContainerFactory for ByKind {
    async fn create(&self, spec: &ContainerSpec) -> Result<Box<dyn Container>, ContainerError> {
        if is_wasm_kind(&spec.kind) {
            self.wasm.create(spec).await
        } else {
            self.other.create(spec).await
        }
    }

    async fn cleanup(&self) {
        self.wasm.cleanup().await;
        self.other.cleanup().await;
    }

    /// Whether the other kinds are isolated: the Wasm sandbox always is.
    fn is_isolated(&self) -> bool {
        self.other.is_isolated()
    }
}
