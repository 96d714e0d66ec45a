//! The memory slots one controller holds on one invoker (OpenWhisk's `NestedSemaphore`).
//!
//! An activation of an action with concurrency 1 takes its memory limit in slots until it
//! completes. An action with intra-instance concurrency `c` > 1 is counted per instance: the
//! first activation takes the memory of a new instance and opens `c − 1` more places on it;
//! later activations take a free place before another instance's memory is taken. Places are
//! counted per action, not per instance: an instance's memory comes back as soon as the
//! activations in flight would fit in one instance fewer.

use std::collections::HashMap;

/// One invoker's slots as one controller holds them.
#[derive(Debug, Clone)]
pub struct Capacity {
    free_mb: u64,
    /// Per action (with concurrency > 1): free places on its open instances, and the count of
    /// activations in flight.
    shared: HashMap<String, Shared>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Shared {
    free_places: u64,
    in_flight: u64,
}

/// What an activation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need<'a> {
    /// The action's instance key (name and version).
    pub action: &'a str,
    /// Its memory limit, MB.
    pub memory_mb: u64,
    /// Its intra-instance concurrency (at least 1).
    pub concurrency: u64,
}

impl Capacity {
    /// `memory_mb` slots, all free.
    pub fn new(memory_mb: u64) -> Self {
        Self {
            free_mb: memory_mb,
            shared: HashMap::new(),
        }
    }

    /// Free memory slots, MB.
    pub fn free_mb(&self) -> u64 {
        self.free_mb
    }

    /// Whether `need` fits without overloading.
    pub fn fits(&self, need: Need<'_>) -> bool {
        let place = need.concurrency > 1
            && self
                .shared
                .get(need.action)
                .is_some_and(|s| s.free_places > 0);
        place || self.free_mb >= need.memory_mb
    }

    /// Takes the slots of one activation. With `force` (an overloaded placement) the memory is
    /// taken even when it is not free; otherwise `false` when it does not fit.
    pub fn acquire(&mut self, need: Need<'_>, force: bool) -> bool {
        if !force && !self.fits(need) {
            return false;
        }
        if need.concurrency <= 1 {
            self.free_mb = self.free_mb.saturating_sub(need.memory_mb);
            return true;
        }
        let shared = self.shared.entry(need.action.to_owned()).or_default();
        if shared.free_places > 0 {
            shared.free_places -= 1;
        } else {
            self.free_mb = self.free_mb.saturating_sub(need.memory_mb);
            shared.free_places = need.concurrency - 1;
        }
        shared.in_flight += 1;
        true
    }

    /// Changes the slots held from `from_mb` to `to_mb` (the invoker's memory or the number of
    /// controllers sharing it changed): the difference is added to or taken from the free
    /// slots, which never exceed `to_mb`.
    pub fn resize(&mut self, from_mb: u64, to_mb: u64) {
        if to_mb >= from_mb {
            self.free_mb += to_mb - from_mb;
        } else {
            self.free_mb = self.free_mb.saturating_sub(from_mb - to_mb);
        }
        self.free_mb = self.free_mb.min(to_mb);
    }

    /// Like [`Capacity::release`], but the free slots never exceed `total_mb` (an overloaded
    /// placement took memory that was not free, and gives it back).
    pub fn release_within(&mut self, need: Need<'_>, total_mb: u64) {
        self.release(need);
        self.free_mb = self.free_mb.min(total_mb);
    }

    /// Gives back the slots of one completed (or timed-out) activation.
    pub fn release(&mut self, need: Need<'_>) {
        if need.concurrency <= 1 {
            self.free_mb += need.memory_mb;
            return;
        }
        let Some(shared) = self.shared.get_mut(need.action) else {
            return;
        };
        shared.in_flight = shared.in_flight.saturating_sub(1);
        shared.free_places += 1;
        // An instance none of whose places is taken gives its memory back.
        if shared.free_places >= need.concurrency {
            shared.free_places -= need.concurrency;
            self.free_mb += need.memory_mb;
        }
        if shared.in_flight == 0 {
            self.shared.remove(need.action);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(concurrency: u64) -> Need<'static> {
        Need {
            action: "guest/a@0.0.1",
            memory_mb: 256,
            concurrency,
        }
    }

    #[test]
    fn an_activation_takes_its_memory_until_it_completes() {
        let mut c = Capacity::new(512);
        assert!(c.acquire(need(1), false));
        assert!(c.acquire(need(1), false));
        assert_eq!(c.free_mb(), 0);
        assert!(!c.fits(need(1)));
        assert!(!c.acquire(need(1), false));
        c.release(need(1));
        assert_eq!(c.free_mb(), 256);
    }

    #[test]
    fn an_overloaded_placement_takes_memory_that_is_not_free() {
        let mut c = Capacity::new(128);
        assert!(c.acquire(need(1), true));
        assert_eq!(c.free_mb(), 0);
        c.release(need(1));
        assert_eq!(c.free_mb(), 256);
    }

    #[test]
    fn resizing_keeps_the_slots_in_use_and_releases_stay_within_the_total() {
        let mut c = Capacity::new(1024);
        assert!(c.acquire(need(1), false));
        c.resize(1024, 512);
        assert_eq!(c.free_mb(), 256);
        c.resize(512, 1024);
        assert_eq!(c.free_mb(), 768);
        assert!(c.acquire(need(1), true));
        assert!(c.acquire(need(1), true));
        assert!(c.acquire(need(1), true));
        assert!(c.acquire(need(1), true));
        assert_eq!(c.free_mb(), 0);
        for _ in 0..5 {
            c.release_within(need(1), 1024);
        }
        assert_eq!(c.free_mb(), 1024);
    }

    #[test]
    fn concurrent_actions_are_counted_per_instance() {
        let mut c = Capacity::new(512);
        // Three activations of a concurrency-3 action share one instance's memory.
        for _ in 0..3 {
            assert!(c.acquire(need(3), false));
        }
        assert_eq!(c.free_mb(), 256);
        // The fourth opens a second instance.
        assert!(c.acquire(need(3), false));
        assert_eq!(c.free_mb(), 0);
        // Counted in aggregate, as upstream: once the activations in flight fit in one
        // instance fewer, that instance's memory comes back.
        c.release(need(3));
        assert_eq!(c.free_mb(), 256);
        // Two activations left: a third finds a place without taking memory.
        c.release(need(3));
        assert!(c.acquire(need(3), false));
        assert_eq!(c.free_mb(), 256);
        for _ in 0..3 {
            c.release(need(3));
        }
        assert_eq!(c.free_mb(), 512);
        assert!(c.shared.is_empty());
    }
}
