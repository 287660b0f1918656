//! Hand-rolled property tests: random summaries from random operations,
//! seeded, a few hundred cases per law. A failure prints the seed.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::summary::{
    AppStatus, Capacity, Delta, Digest, Health, Hlc, Load, RegionStatus, Summary,
};
use state::Name;

const CASES: u64 = 300;

fn name(prefix: &str, i: u64) -> Name {
    Name::new("test", &format!("{prefix}{i}")).unwrap()
}

fn region_status(rng: &mut Xoshiro256PlusPlus) -> RegionStatus {
    let health = match rng.random_range(0..3) {
        0 => Health::Healthy,
        1 => Health::Degraded,
        _ => Health::Down,
    };
    RegionStatus {
        capacity: Capacity {
            cpu_millis: rng.random_range(0..100_000),
            memory_mib: rng.random_range(0..1_000_000),
            sandbox_slots: rng.random_range(0..10_000),
        },
        health,
        load: Load {
            cpu_millis: rng.random_range(0..100_000),
            memory_mib: rng.random_range(0..1_000_000),
            requests_per_sec: rng.random_range(0..1_000_000),
        },
    }
}

fn app_status(rng: &mut Xoshiro256PlusPlus) -> AppStatus {
    AppStatus {
        wanted: rng.random_range(0..50),
        ready: rng.random_range(0..50),
        serving: rng.random_bool(0.5),
    }
}

/// A replica that is also a writer: node `node` with its own clock.
struct Replica {
    node: u64,
    clock: Hlc,
    summary: Summary,
}

/// `count` replicas after a random history: each step one replica writes
/// (any region or app key, so writes conflict) or merges another's state.
fn history(rng: &mut Xoshiro256PlusPlus, count: usize, steps: usize) -> Vec<Summary> {
    let mut replicas: Vec<Replica> = (0..count as u64)
        .map(|node| Replica {
            node,
            clock: Hlc::new(node),
            summary: Summary::new(),
        })
        .collect();
    let mut now = 0u64;
    for _ in 0..steps {
        // Time sometimes stands still and sometimes jumps, and the
        // replicas' clocks disagree by up to 50 ms.
        now += rng.random_range(0..3);
        let k = rng.random_range(0..count);
        let skewed = now + rng.random_range(0..50);
        let region = name("r", rng.random_range(0..4));
        let r = &mut replicas[k];
        match rng.random_range(0..10) {
            0..=2 => {
                let stamp = r.clock.stamp(skewed);
                r.summary.set_region(region, region_status(rng), stamp);
            }
            3..=4 => {
                let stamp = r.clock.stamp(skewed);
                let app = crate::summary::AppKey {
                    tenant: name("t", rng.random_range(0..2)),
                    app: name("app", rng.random_range(0..3)),
                };
                r.summary.set_app(app, region, app_status(rng), stamp);
            }
            5 => r
                .summary
                .add_requests(region, r.node, rng.random_range(1..1000)),
            6 => r
                .summary
                .add_sandboxes(region, r.node, rng.random_range(-20..20)),
            _ => {
                let from = rng.random_range(0..count);
                let other = replicas[from].summary.clone();
                let r = &mut replicas[k];
                if let Some(stamp) = other.max_stamp() {
                    r.clock.observe(stamp);
                }
                r.summary.merge(&other);
            }
        }
    }
    replicas.into_iter().map(|r| r.summary).collect()
}

fn joined(a: &Summary, b: &Summary) -> Summary {
    let mut out = a.clone();
    out.merge(b);
    out
}

fn for_cases(mut check: impl FnMut(u64, &mut Xoshiro256PlusPlus)) {
    for seed in 0..CASES {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        check(seed, &mut rng);
    }
}

#[test]
fn merge_is_commutative() {
    for_cases(|seed, rng| {
        let s = history(rng, 3, 60);
        assert_eq!(joined(&s[0], &s[1]), joined(&s[1], &s[0]), "seed {seed}");
    });
}

#[test]
fn merge_is_associative() {
    for_cases(|seed, rng| {
        let s = history(rng, 3, 60);
        let left = joined(&joined(&s[0], &s[1]), &s[2]);
        let right = joined(&s[0], &joined(&s[1], &s[2]));
        assert_eq!(left, right, "seed {seed}");
    });
}

#[test]
fn merge_is_idempotent() {
    for_cases(|seed, rng| {
        let s = history(rng, 2, 60);
        assert_eq!(joined(&s[0], &s[0]), s[0], "seed {seed}");
        let ab = joined(&s[0], &s[1]);
        assert_eq!(joined(&ab, &s[1]), ab, "seed {seed}");
        assert_eq!(joined(&ab, &s[0]), ab, "seed {seed}");
    });
}

#[test]
fn merge_order_does_not_matter_over_many_replicas() {
    for_cases(|seed, rng| {
        let s = history(rng, 5, 80);
        let forward = s.iter().fold(Summary::new(), |acc, x| joined(&acc, x));
        let backward = s
            .iter()
            .rev()
            .fold(Summary::new(), |acc, x| joined(&acc, x));
        let mut shuffled = s.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, rng.random_range(0..=i));
        }
        let mixed = shuffled
            .iter()
            .fold(Summary::new(), |acc, x| joined(&acc, x));
        assert_eq!(forward, backward, "seed {seed}");
        assert_eq!(forward, mixed, "seed {seed}");
        assert_eq!(forward.fingerprint(), mixed.fingerprint(), "seed {seed}");
    });
}

#[test]
fn a_delta_brings_the_receiver_to_the_join() {
    for_cases(|seed, rng| {
        let s = history(rng, 2, 60);
        let (a, b) = (&s[0], &s[1]);
        let mut a2 = a.clone();
        a2.apply(&b.delta_since(&a.digest()));
        assert_eq!(a2, joined(a, b), "seed {seed}");
    });
}

#[test]
fn push_pull_anti_entropy_reaches_the_same_state_as_full_merge() {
    for_cases(|seed, rng| {
        let s = history(rng, 2, 60);
        let (mut a, mut b) = (s[0].clone(), s[1].clone());
        let full = joined(&a, &b);
        // A → B: digest; B → A: delta + digest; A → B: delta.
        let to_a = b.delta_since(&a.digest());
        let b_digest = b.digest();
        a.apply(&to_a);
        let to_b = a.delta_since(&b_digest);
        b.apply(&to_b);
        assert_eq!(a, full, "seed {seed}");
        assert_eq!(b, full, "seed {seed}");
        // Agreeing replicas exchange nothing.
        assert!(a.delta_since(&b.digest()).is_empty(), "seed {seed}");
        // A delta is no bigger than the state it comes from.
        assert!(
            to_a.len() <= s[1].len() && to_b.len() <= a.len(),
            "seed {seed}"
        );
    });
}

#[test]
fn deltas_can_arrive_twice_and_out_of_order() {
    for_cases(|seed, rng| {
        let s = history(rng, 3, 60);
        let target = s[0].clone();
        let d1 = s[1].delta_since(&target.digest());
        let d2 = s[2].delta_since(&target.digest());
        let mut x = target.clone();
        x.apply(&d2);
        x.apply(&d1);
        x.apply(&d2);
        let mut y = target.clone();
        y.apply(&d1);
        y.apply(&d2);
        assert_eq!(x, y, "seed {seed}");
        assert_eq!(x, joined(&joined(&target, &s[1]), &s[2]), "seed {seed}");
    });
}

#[test]
fn the_highest_stamp_wins_and_counters_add_up() {
    let r = name("r", 0);
    let mut a_clock = Hlc::new(1);
    let mut b_clock = Hlc::new(2);
    let mut a = Summary::new();
    let mut b = Summary::new();
    let older = RegionStatus::default();
    let newer = RegionStatus {
        health: Health::Down,
        ..RegionStatus::default()
    };
    // Same millisecond on both nodes: node 2's stamp is higher.
    a.set_region(r.clone(), older, a_clock.stamp(10));
    b.set_region(r.clone(), newer, b_clock.stamp(10));
    a.add_requests(r.clone(), 1, 5);
    b.add_requests(r.clone(), 2, 7);
    a.add_sandboxes(r.clone(), 1, 4);
    b.add_sandboxes(r.clone(), 2, -1);
    let ab = joined(&a, &b);
    assert_eq!(ab.region(&r).unwrap().0.health, Health::Down);
    assert_eq!(ab.requests(&r), 12);
    assert_eq!(ab.sandboxes(&r), 3);
    assert_eq!(
        joined(&ab, &a).requests(&r),
        12,
        "merging again counts nothing twice"
    );
}

#[test]
fn summaries_digests_and_deltas_round_trip_through_postcard_and_json() {
    for_cases(|seed, rng| {
        let s = history(rng, 2, 40);
        let summary = &s[0];
        let digest = summary.digest();
        let delta = summary.delta_since(&s[1].digest());

        let bytes = postcard::to_allocvec(summary).unwrap();
        assert_eq!(
            &postcard::from_bytes::<Summary>(&bytes).unwrap(),
            summary,
            "seed {seed}"
        );
        let bytes = postcard::to_allocvec(&digest).unwrap();
        assert_eq!(
            postcard::from_bytes::<Digest>(&bytes).unwrap(),
            digest,
            "seed {seed}"
        );
        let bytes = postcard::to_allocvec(&delta).unwrap();
        assert_eq!(
            postcard::from_bytes::<Delta>(&bytes).unwrap(),
            delta,
            "seed {seed}"
        );

        let json = serde_json::to_string(summary).unwrap();
        assert_eq!(
            &serde_json::from_str::<Summary>(&json).unwrap(),
            summary,
            "seed {seed}"
        );
        let json = serde_json::to_string(&digest).unwrap();
        assert_eq!(
            serde_json::from_str::<Digest>(&json).unwrap(),
            digest,
            "seed {seed}"
        );
    });
}
