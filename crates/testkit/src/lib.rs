//! Test fakes and helpers for edgewhisk. A dev-dependency only: nothing here ships.
//!
//! It owns [`FakeContainerFactory`], a scriptable, counting stand-in for a container backend
//! used by the pool and proxy component tests (OpenWhisk `ContainerProxyTests` `TestContainer`);
//! [`FakeInvoker`], a scriptable stand-in for the invoker behind a load balancer; and
//! [`fixtures`], builders for actions, activation messages and records; and [`services`], real
//! PostgreSQL and NATS servers on loopback for the cluster tests; and [`wasm_modules`], the text of
//! small WebAssembly modules for the `wasm:wasi` tests. It does not own real
//! backends or their conformance suite, and it does not depend on the controller (whose unit
//! tests would otherwise see two copies of its `LoadBalancer` trait).

pub mod fake_container;
pub mod fake_invoker;
pub mod fixtures;
pub mod services;
pub mod wasm_modules;

pub use fake_container::{FakeContainerFactory, FakeCounts, FakeInstance, FakeReply, FakeRun};
pub use fake_invoker::{Answer, FakeInvoker, Refused};
