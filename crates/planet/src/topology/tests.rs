//! Tests across the module: the topology files, validation errors, the
//! model's properties, placement against brute force, routing.

use super::geo::{LatLon, floor_between_ms};
use super::placement::{Placement, Site, sites};
use super::routing::{RoutingError, failover_targets, nearest_healthy};
use super::*;
use rng::SplitMix64;

const PLANET: &str = include_str!("../../../../topologies/planet-120.toml");
const AWS10: &str = include_str!("../../../../topologies/aws-10.toml");

const SMALL: &str = r#"
country = [
  { name = "us", continent = "north-america" },
  { name = "ie", continent = "europe" },
]
metro = [
  { name = "ashburn", country = "us" },
  { name = "dublin", country = "ie" },
]
region = [
  { name = "us-east-1", metro = "ashburn", lat = 38.9, lon = -77.4, nodes = ["a1", "a2", "a3"] },
  { name = "eu-west-1", metro = "dublin", lat = 53.3, lon = -6.3, nodes = ["d1", "d2", "d3"] },
]
[global]
voters = 1
"#;

fn parse_err(text: &str) -> TopologyError {
    Topology::parse(text).unwrap_err()
}

#[test]
fn small_topology_with_defaults() {
    let t = Topology::parse(SMALL).unwrap();
    assert_eq!(t.regions.len(), 2);
    assert_eq!(t.voters, 1);
    assert_eq!(t.intra_region_ms, DEFAULT_INTRA_REGION_MS);
    assert_eq!(t.regions[1].continent.as_str(), "europe");
    assert_eq!(t.regions[1].country.as_str(), "ie");
    assert_eq!(t.region("eu-west-1"), Some(1));
    assert_eq!(t.node_count(), 6);
    // Without [global], five voters: more than two regions, refused.
    let err = parse_err(&SMALL.replace("[global]\nvoters = 1", ""));
    assert_eq!(
        err,
        TopologyError::Voters {
            voters: 5,
            regions: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "global.voters: 5 voters over 2 regions; allowed 1 to 2 (one voter per region)"
    );
}

#[test]
fn bad_topologies_name_the_entry() {
    let cases: Vec<(String, &str)> = vec![
        (
            SMALL.replace(
                "]\n[global]",
                "  { name = \"us-east-1\", metro = \"dublin\", lat = 1, lon = 1, nodes = [\"x\"] },\n]\n[global]",
            ),
            "region `us-east-1`.metro: it is under two parents, metro `ashburn` and metro `dublin`",
        ),
        (
            SMALL.replace(
                "]\n[global]",
                "  { name = \"us-east-1\", metro = \"ashburn\", lat = 1, lon = 1, nodes = [\"x\"] },\n]\n[global]",
            ),
            "region `us-east-1`: the name is used twice",
        ),
        (
            SMALL.replace(
                "  { name = \"dublin\", country = \"ie\" },",
                "  { name = \"dublin\", country = \"ie\" },\n  { name = \"ashburn\", country = \"ie\" },",
            ),
            "metro `ashburn`.country: it is under two parents, country `us` and country `ie`",
        ),
        (
            SMALL.replace(
                "  { name = \"ie\", continent = \"europe\" },",
                "  { name = \"ie\", continent = \"europe\" },\n  { name = \"us\", continent = \"europe\" },",
            ),
            "country `us`.continent: it is under two parents, continent `north-america` and continent `europe`",
        ),
        (
            SMALL.replace("\"d2\"", "\"a2\""),
            "node `a2`: the name is used twice (in region `us-east-1` and in region `eu-west-1`)",
        ),
        (
            SMALL.replace("lat = 53.3", "lat = 95.0"),
            "region `eu-west-1`.lat: 95 is out of range; allowed -90 to 90",
        ),
        (
            SMALL.replace("lon = -6.3", "lon = -181"),
            "region `eu-west-1`.lon: -181 is out of range; allowed -180 to 180",
        ),
        (
            SMALL.replace("lat = 53.3", "lat = nan"),
            "region `eu-west-1`.lat: NaN is out of range; allowed -90 to 90",
        ),
        (
            SMALL.replace("[\"d1\", \"d2\", \"d3\"]", "[]"),
            "region `eu-west-1`.nodes: a region needs at least one node",
        ),
        (
            SMALL.replace("voters = 1", "voters = 3"),
            "global.voters: 3 voters over 2 regions; allowed 1 to 2 (one voter per region)",
        ),
        (
            SMALL.replace("voters = 1", "voters = 0"),
            "global.voters: 0 voters over 2 regions; allowed 1 to 2 (one voter per region)",
        ),
        (
            SMALL.replace("metro = \"dublin\", lat", "metro = \"cork\", lat"),
            "region `eu-west-1`.metro: no metro `cork` is declared",
        ),
        (
            SMALL.replace("country = \"ie\" }", "country = \"fr\" }"),
            "metro `dublin`.country: no country `fr` is declared",
        ),
        (
            SMALL.replace("\"d3\"", "\"D3\""),
            "region `eu-west-1`.nodes[2]: node `D3` is not a valid name: it does not start with a lowercase letter; use 1-63 of a-z, 0-9 and '-', starting with a letter",
        ),
        (
            format!("{SMALL}[network]\nintra_region_ms = 0\n"),
            "network.intra_region_ms: 0 is not allowed; a positive number of milliseconds",
        ),
        (
            format!("{SMALL}[[rtt]]\na = \"us-east-1\"\nb = \"eu-west-1\"\nms = 50.0\n"),
            "rtt `us-east-1`-`eu-west-1`.ms: 50 ms is below the physical floor of 54.65 ms for 5465 km (light in fibre, both ways)",
        ),
        (
            format!("{SMALL}[[rtt]]\na = \"us-east-1\"\nb = \"us-east-1\"\nms = 50.0\n"),
            "rtt `us-east-1`-`us-east-1`: an override needs two different regions (use network.intra_region_ms)",
        ),
        (
            format!("{SMALL}[[rtt]]\na = \"us-east-1\"\nb = \"mars-1\"\nms = 500.0\n"),
            "rtt `mars-1-us-east-1`.region: no region `mars-1` is declared",
        ),
        (
            format!(
                "{SMALL}[[rtt]]\na = \"us-east-1\"\nb = \"eu-west-1\"\nms = 80.0\n\
                 [[rtt]]\na = \"eu-west-1\"\nb = \"us-east-1\"\nms = 81.0\n"
            ),
            "rtt `eu-west-1-us-east-1`: the name is used twice (one override per pair)",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(parse_err(&text).to_string(), message);
    }
    // Syntax and unknown keys.
    assert!(matches!(parse_err("region = 3"), TopologyError::Syntax(_)));
    let err = parse_err(&format!("{SMALL}colour = \"blue\"\n"));
    assert!(err.to_string().contains("colour"), "{err}");
    // A valid measured pair is accepted.
    let ok = format!("{SMALL}[[rtt]]\na = \"eu-west-1\"\nb = \"us-east-1\"\nms = 80.5\n");
    let t = Topology::parse(&ok).unwrap();
    assert_eq!(
        t.overrides,
        vec![RttOverride {
            a: 0,
            b: 1,
            ms: 80.5
        }]
    );
}

#[test]
fn planet_files_load_and_validate() {
    let planet = Topology::parse(PLANET).unwrap();
    assert_eq!(planet.regions.len(), 120);
    assert_eq!(planet.node_count(), 360);
    assert!(planet.regions.iter().all(|r| r.nodes.len() == 3));
    let continents = planet.distinct(|r| &r.continent);
    assert_eq!(continents.len(), 6, "{continents:?}");
    assert_eq!(planet.voters, 5);
    assert!(planet.overrides.is_empty());

    let aws = Topology::parse(AWS10).unwrap();
    assert_eq!(aws.regions.len(), 10);
    assert_eq!(aws.overrides.len(), 45);
    let model = RttModel::new(&aws, Calibration::aws_2017(), 1);
    let (a, b) = (
        aws.region("us-east-1").unwrap(),
        aws.region("eu-west-1").unwrap(),
    );
    assert!((model.base_ms(a, b) - (80.55 + 80.52) / 2.0).abs() < 1e-3);
}

/// Random topology text with `n` regions over a few metros and continents.
fn random_topology(rng: &mut SplitMix64, n: usize, voters: usize) -> Topology {
    let mut text = String::from("country = [\n");
    for c in 0..3 {
        text += &format!("  {{ name = \"c{c}\", continent = \"k{}\" }},\n", c % 2);
    }
    text += "]\nmetro = [\n";
    for m in 0..5 {
        text += &format!("  {{ name = \"m{m}\", country = \"c{}\" }},\n", m % 3);
    }
    text += "]\nregion = [\n";
    for r in 0..n {
        let lat = rng.next_f64() * 160.0 - 80.0;
        let lon = rng.next_f64() * 360.0 - 180.0;
        text += &format!(
            "  {{ name = \"r{r}\", metro = \"m{}\", lat = {lat}, lon = {lon}, nodes = [\"n{r}\"] }},\n",
            rng.below(5)
        );
    }
    text += &format!("]\n[global]\nvoters = {voters}\n");
    Topology::parse(&text).unwrap()
}

#[test]
fn model_is_symmetric_above_the_floor_and_deterministic() {
    let mut rng = SplitMix64::new(42);
    for case in 0..20 {
        let t = random_topology(&mut rng, 12, 3);
        let model = RttModel::new(&t, Calibration::aws_2017(), case);
        let again = RttModel::new(&t, Calibration::aws_2017(), case);
        let other = RttModel::new(&t, Calibration::aws_2017(), case + 1000);
        let mut differs = false;
        for a in 0..12 {
            assert_eq!(model.base_ms(a, a), DEFAULT_INTRA_REGION_MS);
            for b in 0..12 {
                let floor = floor_between_ms(t.regions[a].at, t.regions[b].at);
                assert_eq!(model.floor_ms(a, b), model.floor_ms(b, a));
                assert!((model.floor_ms(a, b) - floor).abs() < 1e-9);
                assert_eq!(model.base_ms(a, b), model.base_ms(b, a));
                assert!(model.base_ms(a, b) >= floor);
                for draw in 0..5 {
                    let s = model.sample_ms(a, b, draw);
                    assert_eq!(s, model.sample_ms(b, a, draw));
                    assert_eq!(s, again.sample_ms(a, b, draw));
                    assert!(s >= model.base_ms(a, b) && s >= floor);
                    differs |= s != other.sample_ms(a, b, draw);
                }
            }
        }
        assert!(differs, "another seed gives other jitter");
    }
    // The tail's mean is about 2 % of the base.
    let t = Topology::parse(AWS10).unwrap();
    let model = RttModel::new(&t, Calibration::aws_2017(), 9);
    let n = 20_000;
    let mean = (0..n).map(|d| model.sample_ms(0, 3, d)).sum::<f64>() / n as f64;
    let base = model.base_ms(0, 3);
    assert!((mean / base - 1.02).abs() < 0.002, "{mean} vs {base}");
    let flat = model.clone().with_tail(0.0);
    assert_eq!(flat.sample_ms(0, 3, 7), base);
}

/// Every leader and every voter set: the best placement by the objective.
fn brute_force(rtt: &RttMatrix, sites: &[Site], voters: usize) -> Placement {
    let n = rtt.len();
    let mut best: Option<Placement> = None;
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize != voters {
            continue;
        }
        let set: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
        for &leader in &set {
            let p = Placement::score(rtt, sites, leader, &set);
            if best.as_ref().is_none_or(|b| p.better_than(b)) {
                best = Some(p);
            }
        }
    }
    best.unwrap()
}

fn same_objective(a: &Placement, b: &Placement) -> bool {
    !a.better_than(b) && !b.better_than(a)
}

#[test]
fn placement_equals_brute_force_on_small_instances() {
    let mut rng = SplitMix64::new(7);
    for case in 0..300 {
        let n = 1 + rng.below(9);
        let voters = 1 + rng.below(n.min(5));
        let t = random_topology(&mut rng, n, voters);
        let model = RttModel::new(&t, Calibration::aws_2017(), case);
        let s = sites(&t);
        for rtt in [model.base_matrix(), model.floor_matrix()] {
            let got = place_voters(rtt, &s, voters).unwrap();
            let want = brute_force(rtt, &s, voters);
            assert!(
                same_objective(&got, &want),
                "case {case}: n={n} v={voters}\n got {got:?}\nwant {want:?}"
            );
            // Its reported figures are those of the set it returns.
            assert_eq!(got, Placement::score(rtt, &s, got.leader, &got.voters));
        }
    }
}

#[test]
fn placement_with_ties_equals_brute_force() {
    // Regions on a few shared points, so RTTs tie often.
    let mut rng = SplitMix64::new(11);
    for _ in 0..200 {
        let n = 2 + rng.below(8);
        let voters = 1 + rng.below(n.min(5));
        let points: [f64; 3] = [0.0, 10.0, 25.0];
        let rtt = RttMatrix::from_fn(n, |a, b| {
            if a == b {
                1.0
            } else {
                10.0 + (points[a % 3] - points[b % 3]).abs()
            }
        });
        let s: Vec<Site> = (0..n)
            .map(|_| Site {
                metro: rng.below(4),
                continent: rng.below(2),
            })
            .map(|x| Site {
                metro: x.metro * 2 + x.continent,
                continent: x.continent,
            })
            .collect();
        let got = place_voters(&rtt, &s, voters).unwrap();
        let want = brute_force(&rtt, &s, voters);
        assert!(same_objective(&got, &want), "got {got:?}\nwant {want:?}");
    }
}

#[test]
fn global_floor_of_the_planets() {
    for (name, text) in [("aws-10", AWS10), ("planet-120", PLANET)] {
        let t = Topology::parse(text).unwrap();
        let model = RttModel::new(&t, Calibration::aws_2017(), 1);
        let g = GlobalFloor::of(&t, &model).unwrap();
        let p = &g.placement;
        let names =
            |v: &[usize]| -> Vec<&str> { v.iter().map(|&i| t.regions[i].name.as_str()).collect() };
        println!(
            "{name}: leader {} voters {:?} quorum {:?}; quorum RTT {:.2} ms modelled, \
             {:.2} ms physical floor (best possible {:.2} ms); {} continents, {} metros",
            t.regions[p.leader].name,
            names(&p.voters),
            names(&p.quorum),
            g.model_ms,
            g.physical_ms,
            g.best_physical_ms,
            p.continents,
            p.metros
        );
        assert_eq!(p.voters.len(), 5);
        assert_eq!(p.quorum.len(), 2);
        assert!(p.voters.contains(&p.leader));
        assert!(g.physical_ms <= g.model_ms);
        assert!(g.best_physical_ms <= g.physical_ms);
        // The two voters outside the quorum spread to other continents.
        assert!(p.continents >= 3, "{p:?}");
    }
}

#[test]
fn the_global_tier_votes_on_each_voter_regions_first_node() {
    let t = Topology::parse(AWS10).unwrap();
    let model = RttModel::new(&t, Calibration::aws_2017(), 0);
    let tier = GlobalTier::of(&t, &model).unwrap();
    let regions = &tier.floor.placement.voters;
    assert_eq!(tier.voters.len(), regions.len());
    for (node, &r) in tier.voters.iter().zip(regions) {
        assert_eq!(node, &t.regions[r].nodes[0]);
    }
    let mut widest: f64 = 0.0;
    for &a in regions {
        for &b in regions {
            widest = widest.max(model.base_ms(a, b));
            assert!(model.base_ms(a, b) <= tier.widest_ms);
        }
    }
    assert_eq!(tier.widest_ms, widest);
    assert!(
        tier.widest_ms >= tier.floor.model_ms,
        "the quorum is within the widest pair"
    );
}

#[test]
fn placement_refuses_bad_sizes() {
    let rtt = RttMatrix::from_fn(3, |_, _| 1.0);
    let s = vec![
        Site {
            metro: 0,
            continent: 0
        };
        3
    ];
    assert_eq!(
        place_voters(&rtt, &s, 4).unwrap_err(),
        PlacementError::Voters {
            voters: 4,
            regions: 3
        }
    );
    assert_eq!(
        place_voters(&rtt, &s[..2], 1).unwrap_err(),
        PlacementError::Size {
            sites: 2,
            matrix: 3
        }
    );
}

#[test]
fn nearest_healthy_region() {
    let t = Topology::parse(PLANET).unwrap();
    let model = RttModel::new(&t, Calibration::aws_2017(), 1);
    let all: Vec<usize> = (0..t.regions.len()).collect();
    let r = |n: &str| t.region(n).unwrap();
    // A client in Reading, UK goes to London; without London, to the next
    // nearest, Manchester.
    let reading = LatLon::new(51.45, -0.97);
    assert_eq!(nearest_healthy(&model, reading, &all), Some(r("gb-london")));
    let without: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| i != r("gb-london"))
        .collect();
    assert_eq!(
        nearest_healthy(&model, reading, &without),
        Some(r("gb-manchester"))
    );
    assert_eq!(nearest_healthy(&model, reading, &[]), None);
    // Brute force on random clients and healthy sets.
    let mut rng = SplitMix64::new(3);
    for _ in 0..200 {
        let client = LatLon::new(
            rng.next_f64() * 180.0 - 90.0,
            rng.next_f64() * 360.0 - 180.0,
        );
        let healthy: Vec<usize> = all.iter().copied().filter(|_| rng.below(3) > 0).collect();
        let got = nearest_healthy(&model, client, &healthy);
        let best = healthy
            .iter()
            .map(|&h| model.client_ms(client, h))
            .fold(f64::INFINITY, f64::min);
        assert_eq!(
            got.map(|g| model.client_ms(client, g)),
            (!healthy.is_empty()).then_some(best)
        );
    }
}

#[test]
fn failover_targets_share_by_capacity() {
    let t = Topology::parse(PLANET).unwrap();
    let model = RttModel::new(&t, Calibration::aws_2017(), 1);
    let n = t.regions.len();
    let r = |name: &str| t.region(name).unwrap();
    let failed = r("de-frankfurt");
    let mut capacity = vec![10.0; n];
    capacity[r("nl-amsterdam")] = 30.0;
    let all: Vec<usize> = (0..n).collect();
    let shares = failover_targets(&model, failed, &all, &capacity, 3).unwrap();
    assert_eq!(shares.len(), 3);
    assert!(shares.iter().all(|s| s.region != failed));
    assert!((shares.iter().map(|s| s.share).sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(shares.windows(2).all(|w| w[0].rtt_ms <= w[1].rtt_ms));
    // The nearest three are the nearest by base RTT among all others.
    let mut others: Vec<usize> = all.iter().copied().filter(|&i| i != failed).collect();
    others.sort_by(|&a, &b| {
        model
            .base_ms(failed, a)
            .total_cmp(&model.base_ms(failed, b))
    });
    let got: Vec<usize> = shares.iter().map(|s| s.region).collect();
    assert_eq!(got, others[..3].to_vec());
    let total: f64 = got.iter().map(|&g| capacity[g]).sum();
    for s in &shares {
        assert!((s.share - capacity[s.region] / total).abs() < 1e-12);
    }
    // Regions without capacity are skipped; none at all is an error.
    capacity[others[0]] = 0.0;
    let shares = failover_targets(&model, failed, &all, &capacity, 3).unwrap();
    assert!(shares.iter().all(|s| s.region != others[0]));
    assert_eq!(
        failover_targets(&model, failed, &[failed], &capacity, 3).unwrap_err(),
        RoutingError::NoTarget { failed }
    );
    assert_eq!(
        failover_targets(&model, failed, &all, &capacity[..3], 3).unwrap_err(),
        RoutingError::Capacity {
            given: 3,
            regions: n
        }
    );
    assert_eq!(
        failover_targets(&model, failed, &[n + 1], &capacity, 3).unwrap_err(),
        RoutingError::Region {
            region: n + 1,
            regions: n
        }
    );
}
