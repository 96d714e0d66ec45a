//! The one wasmtime [`Engine`] of a factory: its pooling allocator, its on-disk compilation
//! cache, the epoch ticker that enforces time limits, and the in-memory cache of compiled
//! modules (with WASI preview 1 already linked) per distinct code.

use super::activation::State;
use super::config::WasmConfig;
use parking_lot::{Condvar, Mutex};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wasmtime::{
    Cache, CacheConfig, Config, Engine, ExternType, InstanceAllocationStrategy, InstancePre,
    Linker, Module, PoolingAllocationConfig,
};

/// How often the epoch advances while activations run; a time limit is enforced to within
/// about one tick.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(2);

/// A module ready to instantiate: compiled, imports resolved against WASI preview 1.
pub(super) struct Ready(pub(super) InstancePre<State>);

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready").finish_non_exhaustive()
    }
}

/// A shared [`Ready`] module.
pub(super) type Prepared = Arc<Ready>;

/// How a module came to be ready, for the factory's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// Already in memory.
    Memory,
    /// Read from the on-disk compilation cache.
    Disk,
    /// Compiled now.
    Compiled,
}

/// Counters of how modules were obtained since the factory started.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) memory_hits: AtomicU64,
    pub(super) disk_hits: AtomicU64,
    pub(super) compiled: AtomicU64,
}

/// The engine and everything shared by a factory's instances.
#[derive(Debug)]
pub(super) struct Runtime {
    pub(super) engine: Engine,
    linker: Linker<State>,
    disk_cache: Cache,
    modules: Mutex<ModuleCache>,
    /// Serialises compilation, so two instances of one new action compile it once.
    compiling: tokio::sync::Mutex<()>,
    pub(super) counters: Counters,
    ticker: Ticker,
}

impl Runtime {
    /// Builds the engine with a pool sized by `config` (memories of at most `max_memory_mb`),
    /// a compilation cache in `cache_dir`, and starts the (idle) ticker.
    pub(super) fn new(
        config: &WasmConfig,
        max_memory_mb: u64,
        cache_dir: &Path,
    ) -> wasmtime::Result<Arc<Self>> {
        std::fs::create_dir_all(cache_dir)?;
        // wasmtime's cache takes absolute paths only; the data directory may be relative.
        let cache_dir = std::fs::canonicalize(cache_dir)?;
        let mut cache_config = CacheConfig::new();
        cache_config
            .with_directory(cache_dir)
            .with_files_total_size_soft_limit(config.cache_max_mb.saturating_mul(1 << 20));
        let disk_cache = Cache::new(cache_config)?;
        let mut pool = PoolingAllocationConfig::new();
        let max_memory = usize::try_from(max_memory_mb.saturating_mul(1 << 20))?;
        pool.total_core_instances(config.instances)
            .total_memories(config.instances)
            .total_tables(config.instances)
            .max_memory_size(max_memory)
            // Keeps no memory resident between activations: an idle device gets its RAM back.
            .linear_memory_keep_resident(0);
        let mut engine_config = Config::new();
        engine_config
            .epoch_interruption(true)
            .cache(Some(disk_cache.clone()));
        // A 32-bit address space cannot hold a pool of memories of the largest action size:
        // there every instance maps its own memory when it starts.
        if cfg!(target_pointer_width = "64") {
            engine_config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&engine_config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi)?;
        let ticker = Ticker::start(engine.clone());
        Ok(Arc::new(Self {
            engine,
            linker,
            disk_cache,
            modules: Mutex::new(ModuleCache::new(config.cached_modules)),
            compiling: tokio::sync::Mutex::new(()),
            counters: Counters::default(),
            ticker,
        }))
    }

    /// The module `bytes` (binary or text) compiled and linked, from memory, the disk cache or
    /// a compilation on a blocking thread, in that order of preference.
    pub(super) async fn prepare(
        self: &Arc<Self>,
        bytes: Vec<u8>,
    ) -> Result<(Prepared, Source), String> {
        let key: [u8; 32] = Sha256::digest(&bytes).into();
        if let Some(found) = self.modules.lock().get(&key) {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok((found, Source::Memory));
        }
        let _one_at_a_time = self.compiling.lock().await;
        if let Some(found) = self.modules.lock().get(&key) {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok((found, Source::Memory));
        }
        let this = self.clone();
        let (prepared, source) = tokio::task::spawn_blocking(move || this.compile(&bytes))
            .await
            .map_err(|e| format!("The module could not be compiled: {e}"))??;
        match source {
            Source::Disk => &self.counters.disk_hits,
            _ => &self.counters.compiled,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.modules.lock().insert(key, prepared.clone());
        Ok((prepared, source))
    }

    fn compile(&self, bytes: &[u8]) -> Result<(Prepared, Source), String> {
        let hits = self.disk_cache.cache_hits();
        let module = Module::new(&self.engine, bytes)
            .map_err(|e| format!("The module is not valid WebAssembly: {e:#}"))?;
        let source = if self.disk_cache.cache_hits() > hits {
            Source::Disk
        } else {
            Source::Compiled
        };
        if !matches!(module.get_export("_start"), Some(ExternType::Func(_))) {
            return Err(
                "The module is not a WASI command: it exports no `_start` function.".into(),
            );
        }
        let pre = self.linker.instantiate_pre(&module).map_err(|e| {
            format!("The module imports what WASI preview 1 does not provide: {e:#}")
        })?;
        Ok((Arc::new(Ready(pre)), source))
    }

    /// Marks an activation as running (the ticker runs while any does) until the guard drops.
    pub(super) fn running(&self) -> RunningGuard<'_> {
        self.ticker.add(1);
        RunningGuard(&self.ticker)
    }
}

/// Keeps the ticker going while an activation runs.
#[derive(Debug)]
pub(super) struct RunningGuard<'a>(&'a Ticker);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

/// Compiled modules by SHA-256 of their bytes, least recently used evicted past `capacity`.
#[derive(Debug)]
struct ModuleCache {
    capacity: usize,
    clock: u64,
    entries: HashMap<[u8; 32], (u64, Prepared)>,
}

impl ModuleCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            clock: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &[u8; 32]) -> Option<Prepared> {
        self.clock += 1;
        let (used, prepared) = self.entries.get_mut(key)?;
        *used = self.clock;
        Some(prepared.clone())
    }

    fn insert(&mut self, key: [u8; 32], prepared: Prepared) {
        self.clock += 1;
        self.entries.insert(key, (self.clock, prepared));
        while self.entries.len() > self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.entries.remove(&k);
            }
        }
    }
}

/// The thread that advances the engine's epoch every [`EPOCH_TICK`] while activations run;
/// it sleeps while none does, and stops when dropped.
#[derive(Debug)]
struct Ticker {
    state: Arc<(Mutex<TickerState>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct TickerState {
    running: i64,
    stop: bool,
}

impl Ticker {
    fn start(engine: Engine) -> Self {
        let state = Arc::new((Mutex::new(TickerState::default()), Condvar::new()));
        let shared = state.clone();
        let thread = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                let (lock, wake) = &*shared;
                let mut s = lock.lock();
                let mut last = Instant::now();
                while !s.stop {
                    if s.running > 0 {
                        wake.wait_for(&mut s, EPOCH_TICK);
                        // Ticks follow the clock, not this thread's wake-ups: a starved ticker
                        // must not stretch time limits.
                        let due = last.elapsed().as_micros() / EPOCH_TICK.as_micros();
                        for _ in 0..due {
                            engine.increment_epoch();
                        }
                        last += EPOCH_TICK * u32::try_from(due).unwrap_or(u32::MAX);
                    } else {
                        wake.wait(&mut s);
                        last = Instant::now();
                    }
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!("cannot start the wasm epoch thread: time limits are not enforced");
        }
        Self { state, thread }
    }

    fn add(&self, delta: i64) {
        let (lock, wake) = &*self.state;
        let mut s = lock.lock();
        s.running += delta;
        if s.running == 1 && delta > 0 {
            wake.notify_one();
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let (lock, wake) = &*self.state;
        lock.lock().stop = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_cache_evicts_the_least_recently_used() {
        let engine = Engine::default();
        let linker: Linker<State> = Linker::new(&engine);
        let module = Module::new(&engine, "(module)").expect("module");
        let pre = Arc::new(Ready(linker.instantiate_pre(&module).expect("pre")));
        let mut cache = ModuleCache::new(2);
        cache.insert([1; 32], pre.clone());
        cache.insert([2; 32], pre.clone());
        assert!(cache.get(&[1; 32]).is_some());
        cache.insert([3; 32], pre);
        assert!(cache.get(&[2; 32]).is_none());
        assert!(cache.get(&[1; 32]).is_some());
        assert!(cache.get(&[3; 32]).is_some());
    }
}
