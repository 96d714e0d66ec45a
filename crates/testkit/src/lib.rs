//! Test fakes and helpers for edgewhisk. A dev-dependency only: nothing here ships.
//!
//! It owns [`FakeContainerFactory`], a scriptable, counting stand-in for a container backend
//! used by the pool and proxy component tests (OpenWhisk `ContainerProxyTests` `TestContainer`).
//! It does not own real backends or their conformance suite.

pub mod fake_container;

pub use fake_container::{FakeContainerFactory, FakeCounts, FakeInstance, FakeReply, FakeRun};
