//! The container pool (OpenWhisk `ContainerPool.scala`): one tokio task that owns the
//! scheduling state of every instance and places jobs on them.
//!
//! Decisions are the pure functions of [`policy`]; this task only applies them. It never awaits
//! an instance: starting, initialising, running, suspending and destroying happen in the
//! instances' [`ContainerProxy`] tasks, which report back over the same channel the jobs come
//! in on, so a slow or stuck instance cannot stall the pool.

pub mod data;
pub mod policy;

use crate::config::PoolConfig;
use crate::container::response::{RESOURCE_PROVISION_ERROR, SHUTTING_DOWN};
use crate::container::{ContainerFactory, ContainerSpec, sanitize};
use crate::container_proxy::{ContainerProxy, ProxyStart};
pub use crate::metrics::PoolCounts;
use crate::seam::{InstanceId, Job, PoolMsg, ProxyCommand};
use data::{ContainerData, WarmData};
use edgewhisk_entity::{ActivationResponse, Status};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long to wait before starting stem cells again after one failed to start.
const PREWARM_BACKOFF: Duration = Duration::from_secs(10);

struct Instance {
    data: ContainerData,
    proxy: mpsc::UnboundedSender<ProxyCommand>,
}

/// The pool task's state.
struct ContainerPool {
    config: PoolConfig,
    factory: Arc<dyn ContainerFactory>,
    events: mpsc::UnboundedSender<PoolMsg>,
    instances: BTreeMap<InstanceId, Instance>,
    queue: VecDeque<Job>,
    proxies: JoinSet<()>,
    next_id: InstanceId,
    use_seq: u64,
    draining: bool,
    prewarm_paused_until: Option<Instant>,
}

/// Spawns the pool task and returns its channel.
pub(crate) fn spawn(
    config: PoolConfig,
    factory: Arc<dyn ContainerFactory>,
) -> mpsc::UnboundedSender<PoolMsg> {
    let (tx, rx) = mpsc::unbounded_channel();
    let pool = ContainerPool {
        config,
        factory,
        events: tx.clone(),
        instances: BTreeMap::new(),
        queue: VecDeque::new(),
        proxies: JoinSet::new(),
        next_id: 1,
        use_seq: 0,
        draining: false,
        prewarm_paused_until: None,
    };
    tokio::spawn(pool.run(rx));
    tx
}

fn fail(job: Job, message: &'static str) {
    tokio::spawn(job.fail(ActivationResponse::error(Status::WhiskError, message)));
}

impl ContainerPool {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<PoolMsg>) {
        self.factory.cleanup().await;
        self.fill_prewarms();
        let idle_timeout = Duration::from_millis(self.config.idle_timeout_ms);
        loop {
            let expiry = policy::next_expiry(self.data(), idle_timeout);
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(PoolMsg::Stop(done)) => {
                        self.stop().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(msg) => self.handle(msg),
                    None => return,
                },
                () = sleep_until(expiry), if expiry.is_some() => {
                    for id in policy::remove_expired(self.data(), Instant::now(), idle_timeout) {
                        tracing::debug!(instance = id, "removing idle instance");
                        self.remove(id);
                    }
                }
                Some(_) = self.proxies.join_next(), if !self.proxies.is_empty() => {}
            }
        }
    }

    fn data(&self) -> impl Iterator<Item = (&InstanceId, &ContainerData)> + Clone {
        self.instances.iter().map(|(id, i)| (id, &i.data))
    }

    fn handle(&mut self, msg: PoolMsg) {
        match msg {
            PoolMsg::Submit(job) => {
                if self.draining {
                    fail(job, SHUTTING_DOWN);
                } else {
                    self.queue.push_back(job);
                }
            }
            PoolMsg::Started(id) => {
                if let Some(Instance {
                    data: ContainerData::PreWarmed { ready, .. },
                    ..
                }) = self.instances.get_mut(&id)
                {
                    *ready = true;
                }
            }
            PoolMsg::Initialized(id) => {
                if let Some(inst) = self.instances.get_mut(&id) {
                    if let ContainerData::Warming(w) | ContainerData::WarmingCold(w) = &inst.data {
                        inst.data = ContainerData::Warmed(w.clone());
                    }
                }
            }
            PoolMsg::JobDone(id) => {
                self.use_seq += 1;
                let seq = self.use_seq;
                if let Some(w) = self.instances.get_mut(&id).and_then(|i| i.data.warm_mut()) {
                    w.active = w.active.saturating_sub(1);
                    w.last_used = Instant::now();
                    w.use_seq = seq;
                }
            }
            PoolMsg::Removed { id, returned } => {
                if let Some(inst) = self.instances.remove(&id) {
                    if matches!(inst.data, ContainerData::PreWarmed { ready: false, .. }) {
                        self.prewarm_paused_until = Some(Instant::now() + PREWARM_BACKOFF);
                    }
                }
                for job in returned.into_iter().rev() {
                    if self.draining {
                        fail(job, SHUTTING_DOWN);
                    } else {
                        self.queue.push_front(job);
                    }
                }
            }
            PoolMsg::Drain => {
                self.draining = true;
                for job in self.queue.drain(..) {
                    fail(job, SHUTTING_DOWN);
                }
                let idle: Vec<InstanceId> = self
                    .data()
                    .filter(|(_, d)| match d {
                        ContainerData::PreWarmed { .. } => true,
                        other => other.idle_warmed().is_some(),
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for id in idle {
                    self.remove(id);
                }
            }
            PoolMsg::Counts(reply) => {
                let _ = reply.send(self.counts());
                return;
            }
            PoolMsg::Stop(_) => {}
        }
        self.drain_queue();
    }

    /// Instances by state and the queue's length.
    fn counts(&self) -> PoolCounts {
        let mut counts = PoolCounts {
            queued: i64::try_from(self.queue.len()).unwrap_or(i64::MAX),
            ..PoolCounts::default()
        };
        for (_, data) in self.data() {
            let n = match data {
                ContainerData::PreWarmed { ready: false, .. } => &mut counts.prewarm_starting,
                ContainerData::PreWarmed { ready: true, .. } => &mut counts.prewarm,
                ContainerData::Warming(_) | ContainerData::WarmingCold(_) => &mut counts.warming,
                ContainerData::Warmed(w) if w.active > 0 => &mut counts.busy,
                ContainerData::Warmed(_) => &mut counts.idle,
            };
            *n += 1;
        }
        counts
    }

    async fn stop(&mut self) {
        self.draining = true;
        for job in self.queue.drain(..) {
            fail(job, SHUTTING_DOWN);
        }
        let ids: Vec<InstanceId> = self.instances.keys().copied().collect();
        for id in ids {
            self.remove(id);
        }
        while self.proxies.join_next().await.is_some() {}
    }

    /// Forgets an instance and tells its proxy to destroy it (in the proxy's task).
    fn remove(&mut self, id: InstanceId) {
        if let Some(inst) = self.instances.remove(&id) {
            let _ = inst.proxy.send(ProxyCommand::Remove);
        }
    }

    /// Places queued jobs in order until the head does not fit.
    fn drain_queue(&mut self) {
        while let Some(job) = self.queue.pop_front() {
            if let Err(job) = self.place(job) {
                self.queue.push_front(job);
                break;
            }
        }
        if self.queue.is_empty() {
            self.fill_prewarms();
        }
    }

    /// Places one job by the rules of [`policy`], or gives it back when it must wait.
    fn place(&mut self, mut job: Job) -> Result<(), Job> {
        let action = Arc::clone(&job.msg().action);
        let namespace = job.msg().namespace.clone();
        let key = action.instance_key();
        let memory = action.limits.memory;
        if memory > self.config.user_memory_mb {
            fail(job, RESOURCE_PROVISION_ERROR);
            return Ok(());
        }
        loop {
            let target = policy::schedule(&namespace, &key, self.data()).or_else(|| {
                if action.limits.concurrency > 1 {
                    return None;
                }
                let id = policy::prewarm_for(&action.exec.kind, memory, self.data())?;
                let w = self.warm_data(&namespace, &key, &action);
                if let Some(inst) = self.instances.get_mut(&id) {
                    inst.data = ContainerData::Warming(w);
                }
                Some(id)
            });
            let Some(id) = target else { break };
            match self.dispatch(id, job) {
                Ok(()) => return Ok(()),
                // The proxy went away meanwhile; forget it and try again.
                Err(back) => job = back,
            }
        }
        let used = policy::memory_used(self.data());
        if !policy::has_space(used, self.config.user_memory_mb, memory) {
            let needed = used + memory - self.config.user_memory_mb;
            let mut victims = policy::remove(self.data(), needed);
            if victims.is_empty() && self.nothing_will_free_memory() {
                victims = policy::remove_including_stem_cells(self.data(), needed);
            }
            if victims.is_empty() {
                return Err(job);
            }
            for id in victims {
                tracing::debug!(instance = id, "evicting idle instance");
                self.remove(id);
            }
        }
        self.cold_start(job, &namespace, &key);
        Ok(())
    }

    /// True when no instance is busy or starting, so no event will free memory by itself.
    fn nothing_will_free_memory(&self) -> bool {
        !self.data().any(|(_, d)| match d {
            ContainerData::PreWarmed { ready, .. } => !ready,
            other => other.warm().is_some_and(|w| w.active > 0),
        })
    }

    fn warm_data(
        &mut self,
        namespace: &str,
        key: &str,
        action: &edgewhisk_entity::connector::ExecutableAction,
    ) -> WarmData {
        self.use_seq += 1;
        WarmData {
            namespace: namespace.to_owned(),
            action_key: key.to_owned(),
            kind: action.exec.kind.clone(),
            memory_mb: action.limits.memory,
            max_concurrency: action.limits.concurrency.max(1),
            active: 0,
            last_used: Instant::now(),
            use_seq: self.use_seq,
        }
    }

    fn dispatch(&mut self, id: InstanceId, job: Job) -> Result<(), Job> {
        let Some(inst) = self.instances.get_mut(&id) else {
            return Err(job);
        };
        match inst.proxy.send(ProxyCommand::Run(job)) {
            Ok(()) => {
                if let Some(w) = inst.data.warm_mut() {
                    w.active += 1;
                }
                Ok(())
            }
            Err(mpsc::error::SendError(cmd)) => {
                self.instances.remove(&id);
                match cmd {
                    ProxyCommand::Run(job) => Err(job),
                    // Only a Run was sent; nothing to give back otherwise.
                    ProxyCommand::Remove => Ok(()),
                }
            }
        }
    }

    fn cold_start(&mut self, job: Job, namespace: &str, key: &str) {
        let action = Arc::clone(&job.msg().action);
        let mut w = self.warm_data(namespace, key, &action);
        w.active = 1;
        let id = self.next_id;
        self.next_id += 1;
        let spec = ContainerSpec {
            name: format!(
                "wsk0_{id}_{}_{}",
                sanitize(namespace),
                sanitize(&action.name.name)
            ),
            kind: action.exec.kind.clone(),
            memory_mb: action.limits.memory,
            allow_concurrent: action.limits.concurrency > 1,
        };
        job.span()
            .in_scope(|| tracing::debug!(instance = id, name = %spec.name, "cold start"));
        let proxy = self.start_proxy(id, spec, Some(job));
        self.instances.insert(
            id,
            Instance {
                data: ContainerData::WarmingCold(w),
                proxy,
            },
        );
    }

    fn start_proxy(
        &mut self,
        id: InstanceId,
        spec: ContainerSpec,
        first: Option<Job>,
    ) -> mpsc::UnboundedSender<ProxyCommand> {
        ContainerProxy::spawn(
            ProxyStart {
                id,
                spec,
                factory: Arc::clone(&self.factory),
                pool: self.events.clone(),
                pause_grace: Duration::from_millis(self.config.pause_grace_ms),
                first,
            },
            &mut self.proxies,
        )
    }

    /// Starts the missing stem cells that fit, while nothing waits.
    fn fill_prewarms(&mut self) {
        if self.draining || !self.queue.is_empty() {
            return;
        }
        if let Some(until) = self.prewarm_paused_until {
            if Instant::now() < until {
                return;
            }
            self.prewarm_paused_until = None;
        }
        for (kind, memory_mb) in policy::prewarms_missing(&self.config.prewarm, self.data()) {
            let used = policy::memory_used(self.data());
            if !policy::has_space(used, self.config.user_memory_mb, memory_mb) {
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            let spec = ContainerSpec {
                name: format!("wsk0_{id}_prewarm_{}", sanitize(&kind)),
                kind: kind.clone(),
                memory_mb,
                allow_concurrent: false,
            };
            let proxy = self.start_proxy(id, spec, None);
            self.instances.insert(
                id,
                Instance {
                    data: ContainerData::PreWarmed {
                        kind,
                        memory_mb,
                        ready: false,
                    },
                    proxy,
                },
            );
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
