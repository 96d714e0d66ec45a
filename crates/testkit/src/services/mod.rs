//! Real services started by tests on loopback: a throwaway PostgreSQL cluster ([`postgres`])
//! and a `nats-server` ([`nats`]). Each runs in its own temporary directory on a free port,
//! can be stopped and restarted on the same port and data (for failure tests), and is killed
//! when dropped. When the service's executables are missing, `start` says so in its error so
//! a test can skip with a clear reason outside CI.

pub mod nats;
pub mod postgres;
mod process;

pub use process::{free_port, in_ci};
