//! Region failover and recovery in the planet scenario, on a small planet
//! (six AWS regions, three global voters) with fixed seeds, in virtual
//! time: a lost region's deployments are served elsewhere at full strength
//! and routing avoids it; once it is back, its load returns step by step
//! and routing picks it again. What is checked is what the real scheduler
//! placed and what the real routing function answers — the scenario does
//! not judge itself. No wall-clock figure is asserted.

use std::sync::Arc;
use std::time::Duration;

use planet::topology::{Calibration, GlobalFloor, RttModel, Topology, routing};
use sim::planet::{FleetView, Moment, Planet, RECOVERY_STEP, RECOVERY_STEPS, REPLICAS, Recovery};

const AWS_10: &str = include_str!("../../../topologies/aws-10.toml");
const REGIONS: usize = 6;

/// What a test keeps of the fleet at one moment.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    moment: Moment,
    healthy: Vec<usize>,
    replicas: Vec<u32>,
    on_nodes: Vec<Vec<u64>>,
    home: Vec<u64>,
    unplaced: u64,
}

fn seen(moment: Moment, fleet: &FleetView<'_>) -> Seen {
    Seen {
        moment,
        healthy: fleet.healthy().to_vec(),
        replicas: fleet.replicas(),
        on_nodes: (0..REGIONS).map(|r| fleet.on_nodes(r)).collect(),
        home: (0..REGIONS).map(|r| fleet.home_replicas(r)).collect(),
        unplaced: fleet.unplaced(),
    }
}

/// The first six regions of aws-10 (us-east-1 to ap-northeast-1), three
/// of them global voters, so three can be lost.
fn topology() -> Topology {
    let mut t = Topology::parse(AWS_10).expect("aws-10.toml is valid");
    t.regions.truncate(REGIONS);
    t.overrides.retain(|o| o.a < REGIONS && o.b < REGIONS);
    t.voters = 3;
    t
}

fn planet(topology: &Topology, model: &Arc<RttModel>, seed: u64) -> Planet {
    let floor = GlobalFloor::of(topology, model).expect("three voters fit in six regions");
    let p = &floor.placement;
    let mut voters = vec![p.leader];
    voters.extend(p.voters.iter().copied().filter(|&v| v != p.leader));
    let rtt = model.clone();
    let targets = model.clone();
    Planet {
        regions: topology
            .regions
            .iter()
            .map(|r| r.name.to_string())
            .collect(),
        rtt_ms: Arc::new(move |a, b| rtt.base_ms(a, b)),
        intra_ms: topology.intra_region_ms,
        voters,
        nodes_per_region: 3,
        // 120 deployments of 100, 20 per region.
        sandboxes: 12_000,
        failover: Arc::new(move |failed, healthy: &[usize], spare: &[f64]| {
            routing::failover_targets(&targets, failed, healthy, spare, 5)
                .map(|shares| shares.iter().map(|s| (s.region, s.share)).collect())
                .unwrap_or_default()
        }),
        failovers_per_hour: 2,
        seed,
    }
}

async fn run(planet: &Planet) -> (sim::planet::Figures, Vec<Seen>) {
    let mut moments = Vec::new();
    let figures = planet
        .run_observed(&|_| {}, &mut |moment, fleet| {
            moments.push(seen(moment, fleet))
        })
        .await
        .expect("the scenario runs");
    (figures, moments)
}

/// The virtual part of a recovery (everything but the wall-time
/// re-placements).
fn virtual_part(r: &Recovery) -> (usize, Duration, Duration, Vec<(Duration, u64, u64)>) {
    (
        r.region,
        r.detect,
        r.decide,
        r.steps
            .iter()
            .map(|s| (s.at, s.home, (s.share * 1000.0) as u64))
            .collect(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_lost_region_is_served_elsewhere_and_its_load_comes_back_in_steps() {
    let topology = topology();
    for seed in [3, 11] {
        let model = Arc::new(RttModel::new(&topology, Calibration::aws_2017(), seed));
        let planet = planet(&topology, &model, seed);
        let (figures, moments) = run(&planet).await;
        let client_at = |r: usize| topology.regions[r].at;
        let route =
            |r: usize, healthy: &[usize]| routing::nearest_healthy(&model, client_at(r), healthy);

        // Three regions lost (every region without a voter), each brought
        // back, in the order they were lost.
        assert_eq!(planet.losses(), 3);
        let lost: Vec<usize> = figures.failovers.iter().map(|f| f.region).collect();
        let back: Vec<usize> = figures.recoveries.iter().map(|r| r.region).collect();
        assert_eq!(lost.len(), 3, "seed {seed}");
        assert_eq!(back, lost, "seed {seed}");
        assert!(lost.iter().all(|r| !planet.voters.contains(r)));

        let Seen {
            moment: Moment::Placed,
            on_nodes: before,
            home: home_before,
            replicas,
            ..
        } = &moments[0]
        else {
            panic!("the first moment is the placement: {:?}", moments[0].moment);
        };
        assert!(replicas.iter().all(|&n| n == REPLICAS), "seed {seed}");
        // 20 deployments of 100 per region, all at home.
        assert!(
            home_before.iter().all(|&h| h == 20 * u64::from(REPLICAS)),
            "{home_before:?}"
        );

        // After each loss: nothing on the lost regions' nodes, every
        // deployment at full strength elsewhere, nothing unplaced, and a
        // client at the lost region is sent to another region.
        let mut down = Vec::new();
        for (f, s) in figures.failovers.iter().zip(&moments[1..]) {
            assert_eq!(s.moment, Moment::FailedOver { region: f.region });
            down.push(f.region);
            for &r in &down {
                assert!(s.on_nodes[r].iter().all(|&n| n == 0), "seed {seed}: {s:?}");
                assert!(!s.healthy.contains(&r));
            }
            assert!(s.replicas.iter().all(|&n| n == REPLICAS), "seed {seed}");
            assert_eq!(s.unplaced, 0);
            assert_eq!(f.unplaced, 0);
            let to = route(f.region, &s.healthy).expect("a healthy region is left");
            assert_ne!(to, f.region);
            assert!(s.healthy.contains(&to));
            // The load went somewhere: the healthy regions hold all of it.
            let held: u64 = s
                .healthy
                .iter()
                .map(|&r| s.on_nodes[r].iter().sum::<u64>())
                .sum();
            assert_eq!(held, 120 * u64::from(REPLICAS), "seed {seed}");
        }

        // The recoveries: per region, RECOVERY_STEPS steps whose share and
        // home load rise strictly, the steps RECOVERY_STEP apart; every
        // deployment at full strength all along; at the end the region's
        // nodes hold what they held before, and routing picks it again.
        let steps = &moments[1 + lost.len()..];
        assert_eq!(steps.len(), lost.len() * RECOVERY_STEPS as usize);
        for (i, recovery) in figures.recoveries.iter().enumerate() {
            let region = recovery.region;
            println!(
                "seed {seed}: region {region} back: seen up in {:?}, committed in {:?}, steps at {:?}",
                recovery.detect,
                recovery.decide,
                recovery.steps.iter().map(|s| s.at).collect::<Vec<_>>()
            );
            let mine = &steps[i * RECOVERY_STEPS as usize..(i + 1) * RECOVERY_STEPS as usize];
            assert_eq!(recovery.steps.len(), RECOVERY_STEPS as usize);
            let shares: Vec<f64> = recovery.steps.iter().map(|s| s.share).collect();
            assert_eq!(shares, [0.25, 0.5, 0.75, 1.0], "seed {seed}");
            let homes: Vec<u64> = recovery.steps.iter().map(|s| s.home).collect();
            assert_eq!(homes, [500, 1000, 1500, 2000], "seed {seed}: {recovery:?}");
            // Step k waits k steps after the recovery's commit, then
            // commits (virtual time).
            for (k, s) in recovery.steps.iter().enumerate() {
                let due = RECOVERY_STEP * k as u32;
                assert_eq!(s.at, due + s.commit, "seed {seed}: {recovery:?}");
            }
            for (k, s) in mine.iter().enumerate() {
                assert_eq!(
                    s.moment,
                    Moment::RecoveryStep {
                        region,
                        step: k + 1,
                        share: shares[k]
                    }
                );
                assert_eq!(s.home[region], homes[k]);
                // Nothing else of its region's deployments, and nothing
                // of others', lands on it: its nodes hold exactly its home
                // share.
                assert_eq!(s.on_nodes[region].iter().sum::<u64>(), homes[k]);
                assert!(s.healthy.contains(&region));
                assert!(s.replicas.iter().all(|&n| n == REPLICAS), "seed {seed}");
                assert_eq!(s.unplaced, 0);
                assert_eq!(route(region, &s.healthy), Some(region));
            }
            let last = mine.last().expect("four steps");
            assert_eq!(last.on_nodes[region], before[region], "seed {seed}");
            // Detection of the return: SWIM's rejoin reaching the leader's
            // region, well under the loss's detection.
            assert!(
                recovery.detect > Duration::ZERO && recovery.detect < Duration::from_secs(10),
                "{recovery:?}"
            );
            assert!(recovery.decide > Duration::ZERO);
        }
        // Everything back where it started, region by region.
        let end = moments.last().expect("moments were seen");
        let sums = |s: &[Vec<u64>]| s.iter().map(|n| n.iter().sum()).collect::<Vec<u64>>();
        assert_eq!(sums(&end.on_nodes), sums(before), "seed {seed}");
        assert_eq!(end.healthy, (0..REGIONS).collect::<Vec<_>>());

        // Same seed, same virtual figures.
        let (again, moments_again) = run(&planet).await;
        let parts = |f: &sim::planet::Figures| -> Vec<_> {
            f.recoveries.iter().map(virtual_part).collect()
        };
        assert_eq!(parts(&figures), parts(&again), "seed {seed}");
        assert_eq!(moments, moments_again, "seed {seed}");
    }
}
