//! `bench balancer`: a simulation of cluster placement, pure functions and no processes. It
//! compares the sharding balancer's rules (`edgewhisk_controller::loadbalancer::sharding`,
//! the same functions a cluster controller uses) with random placement, for a skewed (Zipf)
//! mix of actions, by the share of activations that find a warm instance and by how evenly
//! the invokers are loaded.
//!
//! The model, in ticks: every tick, `load` × the cluster's instance slots activations arrive,
//! each of an action drawn from a Zipf distribution over `actions` actions, and each runs for
//! one tick. An invoker holds `memory_mb / 256` instances of 256 MB; an activation runs warm
//! when the invoker has an idle instance of its action, else cold in free memory or in the
//! memory of the least recently used idle instance, which it evicts. A controller places with
//! the memory it sees free on each invoker this tick (one controller; all invokers healthy).

use edgewhisk_controller::loadbalancer::sharding::{Candidate, place, placement_hash};
use std::collections::VecDeque;

/// Memory of every simulated action, MB.
const ACTION_MB: u64 = 256;

/// What a simulation runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scenario {
    /// Invokers in the cluster.
    pub(crate) invokers: usize,
    /// User memory of each invoker, MB.
    pub(crate) memory_mb: u64,
    /// Distinct actions.
    pub(crate) actions: usize,
    /// Zipf exponent of the action mix (1.0 is the classic skew, 0 uniform).
    pub(crate) zipf_s: f64,
    /// Share of the cluster's instance slots asked for every tick.
    pub(crate) load: f64,
    /// Ticks simulated.
    pub(crate) ticks: usize,
    /// Seed of the pseudo-random numbers (the same seed gives the same run).
    pub(crate) seed: u64,
}

/// Placement policies compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Home invoker by hash, then the coprime step order, then overload (OpenWhisk's).
    Sharding,
    /// A random invoker with room, else any random invoker.
    Random,
}

/// What a simulation measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Outcome {
    /// Activations simulated.
    pub(crate) activations: u64,
    /// Share that found an idle warm instance.
    pub(crate) warm_hit_rate: f64,
    /// Busiest invoker's activations over the mean (1.0 is perfectly even).
    pub(crate) max_over_mean: f64,
    /// Share placed on an invoker without room (it would queue there).
    pub(crate) overloaded_rate: f64,
}

/// Runs `scenario` under `policy`.
pub(crate) fn simulate(scenario: &Scenario, policy: Policy) -> Outcome {
    let slots = usize::try_from(scenario.memory_mb / ACTION_MB)
        .unwrap_or(0)
        .max(1);
    let mut rng = SplitMix(scenario.seed);
    let zipf = Zipf::new(scenario.actions, scenario.zipf_s);
    let names: Vec<(u32, String)> = (0..scenario.actions)
        .map(|i| {
            let fqn = format!("ns{}/action{i}", i % 7);
            (placement_hash(&format!("ns{}", i % 7), &fqn), fqn)
        })
        .collect();
    let mut invokers: Vec<Invoker> = (0..scenario.invokers)
        .map(|_| Invoker::new(slots))
        .collect();
    // The load is a share of at most a few thousand slots: the product fits.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let per_tick = ((scenario.invokers * slots) as f64 * scenario.load.max(0.0)).round() as usize;
    let (mut warm, mut overloaded, mut total) = (0u64, 0u64, 0u64);
    for _ in 0..scenario.ticks {
        for inv in &mut invokers {
            inv.start_tick();
        }
        for _ in 0..per_tick {
            let action = zipf.sample(rng.unit());
            let candidates: Vec<Candidate> = invokers
                .iter()
                .map(|inv| Candidate {
                    healthy: true,
                    free_mb: inv.free_slots() as u64 * ACTION_MB,
                })
                .collect();
            let chosen = match policy {
                Policy::Sharding => place(names[action].0, ACTION_MB, &candidates, rng.next()),
                Policy::Random => random_place(&candidates, &mut rng),
            };
            let Some(p) = chosen else { continue };
            total += 1;
            overloaded += u64::from(p.overloaded);
            if invokers[p.invoker as usize].run(action) {
                warm += 1;
            }
        }
    }
    let counts: Vec<u64> = invokers.iter().map(|i| i.activations).collect();
    let mean = counts.iter().sum::<u64>() as f64 / counts.len().max(1) as f64;
    let max = counts.iter().copied().max().unwrap_or(0) as f64;
    let rate = |n: u64| {
        if total == 0 {
            0.0
        } else {
            n as f64 / total as f64
        }
    };
    Outcome {
        activations: total,
        warm_hit_rate: rate(warm),
        max_over_mean: if mean > 0.0 { max / mean } else { 0.0 },
        overloaded_rate: rate(overloaded),
    }
}

/// A random invoker with room, else any random invoker.
fn random_place(
    candidates: &[Candidate],
    rng: &mut SplitMix,
) -> Option<edgewhisk_controller::loadbalancer::sharding::Placement> {
    use edgewhisk_controller::loadbalancer::sharding::Placement;
    let count = candidates.len() as u64;
    if count == 0 {
        return None;
    }
    let with_room: Vec<u32> = (0..candidates.len())
        .filter(|&i| candidates[i].free_mb >= ACTION_MB)
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    if with_room.is_empty() {
        let invoker = u32::try_from(rng.next() % count).unwrap_or(0);
        return Some(Placement {
            invoker,
            overloaded: true,
        });
    }
    let pick = usize::try_from(rng.next() % with_room.len() as u64).unwrap_or(0);
    Some(Placement {
        invoker: with_room[pick],
        overloaded: false,
    })
}

/// One simulated invoker: its instances, most recently used last.
#[derive(Debug)]
struct Invoker {
    slots: usize,
    /// Idle warm instances by action, least recently used first.
    idle: VecDeque<usize>,
    /// Instances busy this tick, by action.
    busy: Vec<usize>,
    activations: u64,
}

impl Invoker {
    fn new(slots: usize) -> Self {
        Self {
            slots,
            idle: VecDeque::new(),
            busy: Vec::new(),
            activations: 0,
        }
    }

    /// Every activation of the last tick has finished: its instance is idle and warm.
    fn start_tick(&mut self) {
        for action in self.busy.drain(..) {
            self.idle.push_back(action);
        }
    }

    /// Slots neither busy nor needed: free memory plus the idle instances it may evict.
    fn free_slots(&self) -> usize {
        self.slots.saturating_sub(self.busy.len())
    }

    /// Runs an activation of `action`; true when it found an idle warm instance.
    fn run(&mut self, action: usize) -> bool {
        self.activations += 1;
        if let Some(pos) = self.idle.iter().position(|&a| a == action) {
            self.idle.remove(pos);
            self.busy.push(action);
            return true;
        }
        // Cold: in free memory, else in the memory of the least recently used idle instance.
        if self.busy.len() + self.idle.len() >= self.slots {
            self.idle.pop_front();
        }
        self.busy.push(action);
        false
    }
}

/// Zipf-distributed ranks 0..n by inverse transform over the cumulative weights.
#[derive(Debug)]
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=n.max(1))
            .map(|k| {
                total += 1.0 / (k as f64).powf(s);
                total
            })
            .collect::<Vec<_>>();
        let cumulative = cumulative.into_iter().map(|c| c / total).collect();
        Self { cumulative }
    }

    /// The rank for a uniform number in [0, 1).
    fn sample(&self, u: f64) -> usize {
        self.cumulative
            .partition_point(|&c| c <= u)
            .min(self.cumulative.len() - 1)
    }
}

/// SplitMix64: a small, seedable generator; the simulation needs reproducible numbers, not
/// cryptographic ones.
#[derive(Debug)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(invokers: usize) -> Scenario {
        Scenario {
            invokers,
            memory_mb: 2048,
            actions: 200,
            zipf_s: 1.0,
            load: 0.6,
            ticks: 150,
            seed: 7,
        }
    }

    #[test]
    fn sharding_finds_more_warm_instances_than_random_placement() {
        for invokers in [10, 20] {
            let s = scenario(invokers);
            let sharded = simulate(&s, Policy::Sharding);
            let random = simulate(&s, Policy::Random);
            assert_eq!(sharded.activations, random.activations);
            assert!(
                sharded.warm_hit_rate > random.warm_hit_rate + 0.1,
                "{invokers} invokers: sharding {sharded:?}, random {random:?}"
            );
            // Below full load nothing has to overload.
            assert_eq!(sharded.overloaded_rate, 0.0);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let s = scenario(10);
        assert_eq!(
            simulate(&s, Policy::Sharding),
            simulate(&s, Policy::Sharding)
        );
    }

    #[test]
    fn zipf_ranks_follow_their_weights() {
        let z = Zipf::new(3, 1.0);
        // Weights 1, 1/2, 1/3 of 11/6: cumulative 6/11, 9/11, 1.
        assert_eq!(z.sample(0.0), 0);
        assert_eq!(z.sample(0.54), 0);
        assert_eq!(z.sample(0.55), 1);
        assert_eq!(z.sample(0.82), 2);
        assert_eq!(z.sample(0.999_999), 2);
        let uniform = Zipf::new(4, 0.0);
        assert_eq!(uniform.sample(0.26), 1);
    }
}
