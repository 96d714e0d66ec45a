//! Pure decisions of the container pool (OpenWhisk `object ContainerPool`).
//!
//! Within a memory budget (`user_memory_mb`) a job of action *a* invoked from namespace *n*
//! goes to the first that applies: a warmed instance of *n* and *a* with spare concurrency
//! ([`schedule`]), one still warming for them, a ready stem cell of the action's kind and
//! memory ([`prewarm_for`]), a cold start when memory allows ([`has_space`]), a cold start
//! after evicting idle warmed instances, least recently used first ([`remove`], as a last
//! resort also stem cells: [`remove_including_stem_cells`]); otherwise it waits in a FIFO
//! queue whose head alone is retried. Idle instances expire ([`remove_expired`],
//! [`next_expiry`]) and stem cells are kept at the configured count ([`prewarms_missing`]).
//!
//! The rules, a worked example and the known caveats are in
//! `docs/design/011-container-pool-policy.md`.

use super::data::{ContainerData, WarmData};
use crate::config::PrewarmConfig;
use std::time::Duration;
use tokio::time::Instant;

/// Picks a warm or warming instance of `action_key` for `namespace` with spare concurrency
/// (rules 1 and 2).
pub fn schedule<'a, K: Clone + 'a>(
    namespace: &str,
    action_key: &str,
    pool: impl IntoIterator<Item = (&'a K, &'a ContainerData)>,
) -> Option<K> {
    let matches =
        |w: &WarmData| w.namespace == namespace && w.action_key == action_key && w.has_capacity();
    // rank: 0 warmed, 1 warming from a stem cell, 2 cold start in progress.
    let mut best: Option<(u8, u32, u64, &'a K)> = None;
    for (key, data) in pool {
        let (rank, w) = match data {
            ContainerData::Warmed(w) => (0, w),
            ContainerData::Warming(w) => (1, w),
            ContainerData::WarmingCold(w) => (2, w),
            ContainerData::PreWarmed { .. } => continue,
        };
        if !matches(w) {
            continue;
        }
        let better = match best {
            None => true,
            Some((r, active, seq, _)) => {
                rank < r || (rank == r && (w.active, w.use_seq) > (active, seq))
            }
        };
        if better {
            best = Some((rank, w.active, w.use_seq, key));
        }
    }
    best.map(|(_, _, _, k)| k.clone())
}

/// Picks a ready stem cell of `kind` and exactly `memory_mb` (rule 3).
pub fn prewarm_for<'a, K: Clone + 'a>(
    kind: &str,
    memory_mb: u64,
    pool: impl IntoIterator<Item = (&'a K, &'a ContainerData)>,
) -> Option<K> {
    pool.into_iter().find_map(|(key, data)| match data {
        ContainerData::PreWarmed {
            kind: k,
            memory_mb: m,
            ready: true,
        } if k == kind && *m == memory_mb => Some(key.clone()),
        _ => None,
    })
}

/// Whether `needed_mb` more fits in the budget (rule 4).
pub fn has_space(used_mb: u64, user_memory_mb: u64, needed_mb: u64) -> bool {
    used_mb.saturating_add(needed_mb) <= user_memory_mb
}

/// Memory claimed by all instances, MB.
pub fn memory_used<'a, K: 'a>(pool: impl IntoIterator<Item = (&'a K, &'a ContainerData)>) -> u64 {
    pool.into_iter().map(|(_, d)| d.memory_mb()).sum()
}

/// Idle warmed instances to evict, least recently used first, freeing at least `needed_mb`;
/// empty when that is impossible or nothing is needed (rule 5).
pub fn remove<'a, K: Clone + 'a>(
    pool: impl IntoIterator<Item = (&'a K, &'a ContainerData)>,
    needed_mb: u64,
) -> Vec<K> {
    if needed_mb == 0 {
        return Vec::new();
    }
    let mut idle: Vec<(&'a K, &'a WarmData)> = pool
        .into_iter()
        .filter_map(|(k, d)| d.idle_warmed().map(|w| (k, w)))
        .collect();
    idle.sort_by_key(|(_, w)| (w.last_used, w.use_seq));
    let mut freed = 0;
    let mut out = Vec::new();
    for (key, w) in idle {
        if freed >= needed_mb {
            break;
        }
        freed += w.memory_mb;
        out.push(key.clone());
    }
    if freed >= needed_mb { out } else { Vec::new() }
}

/// The last resort of rule 5, for when nothing busy or starting could ever free memory: idle
/// warmed instances least recently used first, then ready stem cells, until `needed_mb` is
/// free; empty when even that is not enough.
pub fn remove_including_stem_cells<'a, K: Clone + 'a>(
    pool: impl IntoIterator<Item = (&'a K, &'a ContainerData)> + Clone,
    needed_mb: u64,
) -> Vec<K> {
    if needed_mb == 0 {
        return Vec::new();
    }
    let mut idle: Vec<(&'a K, &'a WarmData)> = pool
        .clone()
        .into_iter()
        .filter_map(|(k, d)| d.idle_warmed().map(|w| (k, w)))
        .collect();
    idle.sort_by_key(|(_, w)| (w.last_used, w.use_seq));
    let stem_cells = pool.into_iter().filter_map(|(k, d)| match d {
        ContainerData::PreWarmed {
            memory_mb,
            ready: true,
            ..
        } => Some((k, *memory_mb)),
        _ => None,
    });
    let mut freed = 0;
    let mut out = Vec::new();
    for (key, memory_mb) in idle
        .into_iter()
        .map(|(k, w)| (k, w.memory_mb))
        .chain(stem_cells)
    {
        if freed >= needed_mb {
            break;
        }
        freed += memory_mb;
        out.push(key.clone());
    }
    if freed >= needed_mb { out } else { Vec::new() }
}

/// Idle warmed instances unused for at least `idle_timeout` at `now`.
pub fn remove_expired<'a, K: Clone + 'a>(
    pool: impl IntoIterator<Item = (&'a K, &'a ContainerData)>,
    now: Instant,
    idle_timeout: Duration,
) -> Vec<K> {
    pool.into_iter()
        .filter_map(|(k, d)| d.idle_warmed().map(|w| (k, w)))
        .filter(|(_, w)| now.saturating_duration_since(w.last_used) >= idle_timeout)
        .map(|(k, _)| k.clone())
        .collect()
}

/// When the next idle warmed instance expires, if any.
pub fn next_expiry<'a, K: 'a>(
    pool: impl IntoIterator<Item = (&'a K, &'a ContainerData)>,
    idle_timeout: Duration,
) -> Option<Instant> {
    pool.into_iter()
        .filter_map(|(_, d)| d.idle_warmed())
        .map(|w| w.last_used + idle_timeout)
        .min()
}

/// Stem cells to start so that each configured kind and memory size has its count, one
/// `(kind, memory_mb)` per missing instance. Stem cells still starting count as present.
pub fn prewarms_missing<'a, K: 'a>(
    config: &[PrewarmConfig],
    pool: impl IntoIterator<Item = (&'a K, &'a ContainerData)> + Clone,
) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for p in config {
        let have = pool
            .clone()
            .into_iter()
            .filter(|(_, d)| {
                matches!(d, ContainerData::PreWarmed { kind, memory_mb, .. }
                    if *kind == p.kind && *memory_mb == p.memory_mb)
            })
            .count();
        let want = usize::try_from(p.count).unwrap_or(usize::MAX);
        for _ in have..want {
            out.push((p.kind.clone(), p.memory_mb));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn t0() -> Instant {
        Instant::now()
    }

    fn warm(
        ns: &str,
        key: &str,
        mem: u64,
        active: u32,
        conc: u32,
        at: Instant,
        seq: u64,
    ) -> WarmData {
        WarmData {
            namespace: ns.into(),
            action_key: key.into(),
            kind: "nodejs:20".into(),
            memory_mb: mem,
            max_concurrency: conc,
            active,
            last_used: at,
            use_seq: seq,
        }
    }

    fn warmed(ns: &str, key: &str, active: u32, seq: u64) -> ContainerData {
        ContainerData::Warmed(warm(ns, key, 256, active, 1, t0(), seq))
    }

    fn stem(kind: &str, mem: u64, ready: bool) -> ContainerData {
        ContainerData::PreWarmed {
            kind: kind.into(),
            memory_mb: mem,
            ready,
        }
    }

    type Entries = Vec<(u32, ContainerData)>;

    fn pool(entries: Entries) -> BTreeMap<u32, ContainerData> {
        entries.into_iter().collect()
    }

    #[test]
    fn schedule_picks_by_namespace_action_version_and_spare_concurrency() {
        let a = "guest/a@0.0.1";
        let cases: Vec<(&str, Entries, Option<u32>)> = vec![
            ("empty pool", vec![], None),
            (
                "idle warm match",
                vec![(1, warmed("guest", a, 0, 1))],
                Some(1),
            ),
            ("other namespace", vec![(1, warmed("alice", a, 0, 1))], None),
            (
                "other version",
                vec![(1, warmed("guest", "guest/a@0.0.2", 0, 1))],
                None,
            ),
            (
                "busy at concurrency 1",
                vec![(1, warmed("guest", a, 1, 1))],
                None,
            ),
            (
                "spare concurrency",
                vec![(
                    1,
                    ContainerData::Warmed(warm("guest", a, 256, 2, 3, t0(), 1)),
                )],
                Some(1),
            ),
            (
                "stem cells are not scheduled",
                vec![(1, stem("nodejs:20", 256, true))],
                None,
            ),
            (
                "warmed before warming",
                vec![
                    (
                        1,
                        ContainerData::Warming(warm("guest", a, 256, 0, 2, t0(), 9)),
                    ),
                    (2, warmed("guest", a, 0, 1)),
                ],
                Some(2),
            ),
            (
                "warming before cold",
                vec![
                    (
                        1,
                        ContainerData::WarmingCold(warm("guest", a, 256, 1, 2, t0(), 9)),
                    ),
                    (
                        2,
                        ContainerData::Warming(warm("guest", a, 256, 1, 2, t0(), 1)),
                    ),
                ],
                Some(2),
            ),
            (
                "most recently used among idle",
                vec![(1, warmed("guest", a, 0, 1)), (2, warmed("guest", a, 0, 5))],
                Some(2),
            ),
            (
                "busiest with capacity packs jobs",
                vec![
                    (
                        1,
                        ContainerData::Warmed(warm("guest", a, 256, 0, 4, t0(), 9)),
                    ),
                    (
                        2,
                        ContainerData::Warmed(warm("guest", a, 256, 2, 4, t0(), 1)),
                    ),
                ],
                Some(2),
            ),
        ];
        for (name, entries, want) in cases {
            let p = pool(entries);
            assert_eq!(schedule("guest", a, &p), want, "{name}");
        }
    }

    #[test]
    fn prewarm_for_needs_same_kind_exact_memory_and_ready() {
        let cases: Vec<(ContainerData, Option<u32>)> = vec![
            (stem("nodejs:20", 256, true), Some(1)),
            (stem("nodejs:20", 256, false), None),
            (stem("nodejs:20", 512, true), None),
            (stem("python:3", 256, true), None),
            (warmed("guest", "k", 0, 1), None),
        ];
        for (data, want) in cases {
            let p = pool(vec![(1, data.clone())]);
            assert_eq!(prewarm_for("nodejs:20", 256, &p), want, "{data:?}");
        }
    }

    #[test]
    fn remove_frees_enough_memory_least_recently_used_first() {
        let now = t0();
        let at = |s: u64| now + Duration::from_secs(s);
        let idle = |mem: u64, s: u64| ContainerData::Warmed(warm("g", "k", mem, 0, 1, at(s), 0));
        let busy = |mem: u64, s: u64| ContainerData::Warmed(warm("g", "k", mem, 1, 1, at(s), 0));
        let cases: Vec<(&str, Entries, u64, Vec<u32>)> = vec![
            ("nothing needed", vec![(1, idle(256, 1))], 0, vec![]),
            (
                "oldest first",
                vec![(1, idle(256, 5)), (2, idle(256, 1))],
                256,
                vec![2],
            ),
            (
                "several to free enough",
                vec![(1, idle(128, 3)), (2, idle(128, 1)), (3, idle(256, 2))],
                300,
                vec![2, 3],
            ),
            (
                "busy never evicted",
                vec![(1, busy(256, 0)), (2, idle(128, 5))],
                256,
                vec![],
            ),
            (
                "stem cells never evicted",
                vec![(1, stem("nodejs:20", 256, true)), (2, idle(256, 9))],
                512,
                vec![],
            ),
            (
                "warming never evicted",
                vec![(
                    1,
                    ContainerData::WarmingCold(warm("g", "k", 256, 0, 1, at(0), 0)),
                )],
                256,
                vec![],
            ),
        ];
        for (name, entries, needed, want) in cases {
            let p = pool(entries);
            assert_eq!(remove(&p, needed), want, "{name}");
        }
    }

    #[test]
    fn remove_breaks_clock_ties_by_use_order() {
        let now = t0();
        let p = pool(vec![
            (1, ContainerData::Warmed(warm("g", "k", 256, 0, 1, now, 7))),
            (2, ContainerData::Warmed(warm("g", "k", 256, 0, 1, now, 3))),
        ]);
        assert_eq!(remove(&p, 1), vec![2]);
    }

    #[test]
    fn last_resort_takes_idle_warmed_first_then_ready_stem_cells() {
        let now = t0();
        let idle = |mem: u64| ContainerData::Warmed(warm("g", "k", mem, 0, 1, now, 0));
        let cases: Vec<(&str, Entries, u64, Vec<u32>)> = vec![
            (
                "warmed suffices",
                vec![(1, stem("nodejs:20", 256, true)), (2, idle(256))],
                256,
                vec![2],
            ),
            (
                "then stem cells",
                vec![(1, stem("nodejs:20", 256, true)), (2, idle(128))],
                256,
                vec![2, 1],
            ),
            (
                "starting stem cells are kept",
                vec![(1, stem("nodejs:20", 256, false))],
                256,
                vec![],
            ),
            (
                "impossible frees nothing",
                vec![(1, stem("nodejs:20", 128, true)), (2, idle(64))],
                256,
                vec![],
            ),
        ];
        for (name, entries, needed, want) in cases {
            let p = pool(entries);
            assert_eq!(remove_including_stem_cells(&p, needed), want, "{name}");
        }
    }

    #[test]
    fn remove_expired_takes_idle_warmed_past_the_timeout() {
        let now = t0();
        let idle_timeout = Duration::from_secs(600);
        let at = |s: u64| now + Duration::from_secs(s);
        let p = pool(vec![
            (
                1,
                ContainerData::Warmed(warm("g", "k", 256, 0, 1, at(0), 0)),
            ),
            (
                2,
                ContainerData::Warmed(warm("g", "k", 256, 0, 1, at(100), 0)),
            ),
            (
                3,
                ContainerData::Warmed(warm("g", "k", 256, 1, 1, at(0), 0)),
            ),
            (4, stem("nodejs:20", 256, true)),
        ]);
        assert_eq!(remove_expired(&p, at(599), idle_timeout), Vec::<u32>::new());
        assert_eq!(remove_expired(&p, at(600), idle_timeout), vec![1]);
        assert_eq!(remove_expired(&p, at(700), idle_timeout), vec![1, 2]);
        assert_eq!(next_expiry(&p, idle_timeout), Some(at(600)));
    }

    #[test]
    fn has_space_and_memory_used_count_every_instance() {
        let p = pool(vec![
            (1, stem("nodejs:20", 256, false)),
            (2, warmed("g", "k", 1, 1)),
            (
                3,
                ContainerData::WarmingCold(warm("g", "k", 128, 1, 1, t0(), 0)),
            ),
        ]);
        assert_eq!(memory_used(&p), 640);
        for (used, budget, needed, want) in [
            (640, 1024, 384, true),
            (640, 1024, 385, false),
            (0, 128, 128, true),
        ] {
            assert_eq!(
                has_space(used, budget, needed),
                want,
                "{used}+{needed}<={budget}"
            );
        }
    }

    #[test]
    fn prewarms_missing_counts_starting_and_ready_stem_cells() {
        let config = vec![
            PrewarmConfig {
                kind: "nodejs:20".into(),
                count: 2,
                memory_mb: 256,
            },
            PrewarmConfig {
                kind: "python:3".into(),
                count: 1,
                memory_mb: 128,
            },
        ];
        let p = pool(vec![
            (1, stem("nodejs:20", 256, false)),
            (2, stem("nodejs:20", 512, true)),
            (3, warmed("g", "k", 0, 1)),
        ]);
        assert_eq!(
            prewarms_missing(&config, &p),
            vec![("nodejs:20".to_owned(), 256), ("python:3".to_owned(), 128)]
        );
    }
}
