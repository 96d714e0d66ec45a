//! What the pool knows about each instance (OpenWhisk `ContainerData`).
//!
//! The pool keeps one [`ContainerData`] per instance and decides only from it; the instance
//! itself lives in the task of its container proxy. The data is updated from the proxy's
//! events (`Started`, `Initialized`, `JobDone`, `Removed`), so it can lag the proxy by one
//! message; the proxy tolerates that (see its contract).

use tokio::time::Instant;

pub use crate::seam::InstanceId;

/// Bookkeeping of an instance bound to one action in one invoking namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmData {
    /// The invoking namespace it serves (instances are never shared across namespaces).
    pub namespace: String,
    /// `ExecutableAction::instance_key` of the action it runs (name and version).
    pub action_key: String,
    /// Runtime kind.
    pub kind: String,
    /// Memory it claims, MB.
    pub memory_mb: u64,
    /// `limits.concurrency` of the action: how many jobs it may hold at once.
    pub max_concurrency: u32,
    /// Jobs sent to it and not yet finished.
    pub active: u32,
    /// When it last finished a job (or was created).
    pub last_used: Instant,
    /// A pool-wide counter stamped with `last_used`, so that recency is total even when the
    /// clock did not move between two uses.
    pub use_seq: u64,
}

impl WarmData {
    /// Whether it can take one more job now.
    pub fn has_capacity(&self) -> bool {
        self.active < self.max_concurrency.max(1)
    }
}

/// The pool's view of one instance (OpenWhisk's `PreWarmedData`, `WarmingData`,
/// `WarmingColdData`, `WarmedData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerData {
    /// A stem cell: started for a kind and memory size, not initialised with any action.
    PreWarmed {
        /// Runtime kind.
        kind: String,
        /// Memory it claims, MB.
        memory_mb: u64,
        /// False while the runner is still being started.
        ready: bool,
    },
    /// A stem cell taken by an action and being initialised with it.
    Warming(WarmData),
    /// A cold start: the instance is being created and initialised for an action.
    WarmingCold(WarmData),
    /// Initialised with an action; runs its jobs.
    Warmed(WarmData),
}

impl ContainerData {
    /// Memory the instance claims, MB.
    pub fn memory_mb(&self) -> u64 {
        match self {
            ContainerData::PreWarmed { memory_mb, .. } => *memory_mb,
            ContainerData::Warming(w)
            | ContainerData::WarmingCold(w)
            | ContainerData::Warmed(w) => w.memory_mb,
        }
    }

    /// The action binding, unless it is a stem cell.
    pub fn warm(&self) -> Option<&WarmData> {
        match self {
            ContainerData::PreWarmed { .. } => None,
            ContainerData::Warming(w)
            | ContainerData::WarmingCold(w)
            | ContainerData::Warmed(w) => Some(w),
        }
    }

    /// Mutable access to the action binding.
    pub fn warm_mut(&mut self) -> Option<&mut WarmData> {
        match self {
            ContainerData::PreWarmed { .. } => None,
            ContainerData::Warming(w)
            | ContainerData::WarmingCold(w)
            | ContainerData::Warmed(w) => Some(w),
        }
    }

    /// A warmed instance with no job: the only kind that may be evicted or expire.
    pub fn idle_warmed(&self) -> Option<&WarmData> {
        match self {
            ContainerData::Warmed(w) if w.active == 0 => Some(w),
            _ => None,
        }
    }
}
