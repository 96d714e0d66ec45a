//! The placement rules of OpenWhisk's `ShardingContainerPoolBalancer`, as pure functions: which
//! invoker an activation goes to, given the invokers' health and the capacity this controller
//! holds on each. No I/O, no clock, no randomness of its own (the caller passes a random
//! number for the overload case), so every rule is a unit test.
//!
//! - **Home invoker**: a hash of the namespace and the action's fully qualified name, modulo
//!   the number of invokers. Every controller computes the same home, so the warm instances
//!   of an action gather on one invoker. The hash is Java's `String.hashCode` as upstream
//!   uses it, so an action has the same home as on OpenWhisk.
//! - **Step order**: when the home is not usable, the invokers are visited by a step size
//!   chosen by the same hash among the pairwise coprime numbers up to the invoker count, so
//!   each invoker is visited once, in an order that differs between actions.
//! - **Capacity**: each controller holds a share of every invoker's user memory (the memory
//!   divided by the number of controllers, at least one action's worth) as slots of one MB;
//!   an activation takes its memory limit in slots until its completion (or its timeout)
//!   gives them back.
//! - **Overload**: when no healthy invoker has room, a random healthy invoker takes the
//!   activation anyway (it queues there); with no healthy invoker at all, nothing is placed
//!   and the API answers 503 "No invokers available.".

/// Java's `String.hashCode` over UTF-16 code units, as OpenWhisk hashes names.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The placement hash of an action: OpenWhisk's
/// `(namespace.hashCode() ^ fullyQualifiedName.hashCode()).abs`, where `fqn` is
/// `namespace[/package]/name` without a leading slash.
pub fn placement_hash(namespace: &str, fqn: &str) -> u32 {
    (java_hash(namespace) ^ java_hash(fqn)).unsigned_abs()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The step sizes for `invokers` invokers: every number up to it that is coprime to it and
/// to every step size already chosen (OpenWhisk `pairwiseCoprimeNumbersUntil`).
pub fn step_sizes(invokers: u32) -> Vec<u32> {
    let mut steps: Vec<u32> = Vec::new();
    for n in 1..=invokers {
        if gcd(n, invokers) == 1 && steps.iter().all(|&s| gcd(s, n) == 1) {
            steps.push(n);
        }
    }
    steps
}

/// The order in which the invokers are tried for an action with `hash`: its home first, then
/// by its step size, each invoker once.
pub fn probe_order(hash: u32, invokers: u32) -> Vec<u32> {
    if invokers == 0 {
        return Vec::new();
    }
    let steps = step_sizes(invokers);
    let step = steps[hash as usize % steps.len()];
    let home = hash % invokers;
    (0..invokers)
        .map(|i| (home + i * step) % invokers)
        .collect()
}

/// The memory slots one controller holds on an invoker with `user_memory_mb`, when
/// `controllers` controllers share it: an even share, but at least `min_memory_mb` so every
/// controller can place one action of the smallest size.
pub fn shard_memory(user_memory_mb: u64, controllers: u64, min_memory_mb: u64) -> u64 {
    (user_memory_mb / controllers.max(1)).max(min_memory_mb)
}

/// How an invoker looks to the balancer right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// It takes user work (pinged in time, few system errors).
    pub healthy: bool,
    /// Memory slots (MB) this controller still holds free on it.
    pub free_mb: u64,
}

/// Where an activation goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The invoker's index.
    pub invoker: u32,
    /// True when no healthy invoker had room and this one takes it beyond its share.
    pub overloaded: bool,
}

/// Places an activation needing `memory_mb` with placement `hash` on one of `invokers`:
/// the first healthy invoker in [`probe_order`] with room, else the healthy invoker that
/// `random` picks (overload), else none. The caller takes the slots of the invoker chosen.
pub fn place(hash: u32, memory_mb: u64, invokers: &[Candidate], random: u64) -> Option<Placement> {
    let count = u32::try_from(invokers.len()).ok()?;
    let usable = |i: u32| invokers.get(i as usize).copied();
    let fits = probe_order(hash, count)
        .into_iter()
        .find(|&i| usable(i).is_some_and(|c| c.healthy && c.free_mb >= memory_mb));
    if let Some(invoker) = fits {
        return Some(Placement {
            invoker,
            overloaded: false,
        });
    }
    let healthy: Vec<u32> = (0..count)
        .filter(|&i| usable(i).is_some_and(|c| c.healthy))
        .collect();
    if healthy.is_empty() {
        return None;
    }
    let pick = usize::try_from(random % healthy.len() as u64).unwrap_or(0);
    Some(Placement {
        invoker: healthy[pick],
        overloaded: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy(free_mb: u64) -> Candidate {
        Candidate {
            healthy: true,
            free_mb,
        }
    }

    fn down() -> Candidate {
        Candidate {
            healthy: false,
            free_mb: 1024,
        }
    }

    #[test]
    fn names_hash_as_java_strings_do() {
        // Values of `String.hashCode` in Java.
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("guest"), 98_708_952);
        // A well-known Java string whose hash is Integer.MIN_VALUE: `abs` must not overflow.
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(placement_hash("polygenelubricants", ""), 1 << 31);
        assert_eq!(
            placement_hash("guest", "guest/hello"),
            (java_hash("guest") ^ java_hash("guest/hello")).unsigned_abs()
        );
    }

    #[test]
    fn step_sizes_are_pairwise_coprime_with_the_invoker_count() {
        assert_eq!(step_sizes(10), vec![1, 3, 7]);
        assert_eq!(step_sizes(1), vec![1]);
        assert_eq!(step_sizes(2), vec![1]);
        assert_eq!(step_sizes(7), vec![1, 2, 3, 5]);
        for n in 1..=64 {
            for s in step_sizes(n) {
                assert_eq!(gcd(s, n), 1, "{s} and {n}");
            }
        }
    }

    #[test]
    fn the_probe_order_starts_at_home_and_visits_every_invoker_once() {
        // 10 invokers, hash 13: home 3, step sizes {1, 3, 7}, step 13 % 3 = 1 → 3.
        assert_eq!(probe_order(13, 10), vec![3, 6, 9, 2, 5, 8, 1, 4, 7, 0]);
        for invokers in 1..=40 {
            for hash in [0, 1, 13, 977, u32::MAX] {
                let mut order = probe_order(hash, invokers);
                assert_eq!(order[0], hash % invokers);
                order.sort_unstable();
                assert_eq!(order, (0..invokers).collect::<Vec<_>>());
            }
        }
        assert!(probe_order(5, 0).is_empty());
    }

    #[test]
    fn the_home_invoker_takes_the_action_while_it_is_healthy_and_has_room() {
        let invokers = vec![healthy(512); 10];
        let p = place(13, 256, &invokers, 0).unwrap();
        assert_eq!((p.invoker, p.overloaded), (3, false));
        // Every controller computes the same home for the same action.
        let hash = placement_hash("guest", "guest/hello");
        assert_eq!(
            place(hash, 256, &invokers, 7),
            place(hash, 256, &invokers, 99)
        );
    }

    #[test]
    fn a_full_or_unhealthy_home_passes_the_action_along_the_step_order() {
        let mut invokers = vec![healthy(512); 10];
        invokers[3] = healthy(128);
        invokers[6] = down();
        let p = place(13, 256, &invokers, 0).unwrap();
        assert_eq!((p.invoker, p.overloaded), (9, false));
    }

    #[test]
    fn without_room_anywhere_a_random_healthy_invoker_is_overloaded() {
        let invokers = vec![healthy(0), down(), healthy(100), down()];
        let picks: Vec<Placement> = (0..4)
            .map(|r| place(1, 256, &invokers, r).unwrap())
            .collect();
        assert!(picks.iter().all(|p| p.overloaded));
        let chosen: Vec<u32> = picks.iter().map(|p| p.invoker).collect();
        assert_eq!(chosen, vec![0, 2, 0, 2]);
    }

    #[test]
    fn no_healthy_invoker_places_nothing() {
        assert_eq!(place(1, 256, &[down(), down()], 3), None);
        assert_eq!(place(1, 256, &[], 3), None);
    }

    #[test]
    fn controllers_share_an_invokers_memory_but_each_can_place_one_action() {
        assert_eq!(shard_memory(4096, 2, 128), 2048);
        assert_eq!(shard_memory(4096, 1, 128), 4096);
        assert_eq!(shard_memory(256, 4, 128), 128);
        assert_eq!(shard_memory(4096, 0, 128), 4096);
    }
}
