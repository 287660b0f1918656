//! `dwcp sim planet`: the deterministic planet-scale simulation (crate
//! `sim`), on the 120-region topology in `topologies/planet-120.toml` or a
//! file of the user's, reported in the benchmarks' shape.

mod gossip;

use std::sync::Arc;

use ::sim::planet::{Planet, RECOVERY_STEP, RECOVERY_STEPS, SANDBOXES};
use anyhow::{Context, Result, bail};
use planet::topology::{Calibration, GlobalFloor, RttModel, Topology, routing};

use crate::bench::report::{Report, Series, histogram, record};

/// Regions a lost region's load is spread over.
const FAILOVER_TARGETS: usize = 5;

/// The topology `dwcp sim planet` uses unless given one.
const PLANET_120: &str = include_str!("../../../../topologies/planet-120.toml");

/// Run a deterministic simulation: DWCP's real Raft replicas on a modelled
/// network, in virtual time.
#[derive(clap::Args)]
#[command(
    after_help = "Scenarios:\n  planet  a global tier of real replicas placed by `planet::topology` to minimise\n          its quorum round trip, a 3-replica group per region, round trips\n          from a model fitted on measured AWS RTTs (great-circle distance at\n          2/3 c times a route inflation, plus jitter), writes at random\n          times; and scheduler::place of 12,000,000 sandboxes over the\n          regions' nodes. Same seed, same figures.\n  gossip  the planet's gossip members over turmoil's simulated UDP beside the\n          summary's own driver: convergence and CPU per simulated second\n          (why the simulator does not use turmoil; docs/planet.md)\n  raft    the global tier's five replicas over turmoil TCP beside the\n          simulator's in-memory links\n\nExamples:\n  dwcp sim planet\n  dwcp sim planet --regions 30 --seed 7 --json\n  dwcp sim planet --topology topologies/aws-10.toml\n  dwcp sim gossip --members 30\n  dwcp sim raft --writes 20"
)]
pub struct SimArgs {
    /// The scenario: planet, gossip or raft (see below).
    scenario: String,
    /// Use the first N regions of the topology [default: all].
    #[arg(long, value_name = "N")]
    regions: Option<usize>,
    /// The seed of every random draw (jitter, write times).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A topology file (TOML) instead of topologies/planet-120.toml.
    #[arg(long, value_name = "FILE")]
    topology: Option<std::path::PathBuf>,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Place a tenth of the sandboxes (1,200,000), for a short run.
    #[arg(long)]
    quick: bool,
    /// Automatic region failovers allowed in any hour; past that, each
    /// waits for an operator's approval (the simulation approves at once).
    #[arg(long, value_name = "N", default_value_t = 2)]
    failovers_per_hour: u32,
    #[command(flatten)]
    gossip: gossip::GossipArgs,
}

pub fn run(args: SimArgs) -> Result<()> {
    match args.scenario.as_str() {
        "gossip" => return gossip::run(&args.gossip, args.seed, args.json),
        "raft" => return gossip::run_raft(&args.gossip, args.seed, args.json),
        "planet" => {}
        other => bail!("unknown scenario `{other}`; available: planet, gossip, raft"),
    }
    let text = match &args.topology {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--topology {}", path.display()))?,
        None => PLANET_120.to_string(),
    };
    let mut topology = Topology::parse(&text).context("the topology")?;
    if let Some(n) = args.regions {
        first_regions(&mut topology, n)?;
    }
    let report = planet(&topology, args.seed, args.quick, args.failovers_per_hour)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Keeps the topology's first `n` regions (`--regions`).
fn first_regions(topology: &mut Topology, n: usize) -> Result<()> {
    let available = topology.regions.len();
    if n < topology.voters || n > available {
        bail!(
            "--regions {n}: must be between the global tier's {} voters and the topology's {available} regions",
            topology.voters
        );
    }
    topology.regions.truncate(n);
    topology.overrides.retain(|o| o.b < n);
    Ok(())
}

/// `dwcp sim planet --quick --regions N --seed S` on the built-in
/// topology, as a report (what `dwcp certify` judges).
pub(crate) fn planet_quick(regions: usize, seed: u64) -> Result<Report> {
    let mut topology = Topology::parse(PLANET_120).context("the topology")?;
    first_regions(&mut topology, regions)?;
    planet(&topology, seed, true, 2)
}

fn planet(topology: &Topology, seed: u64, quick: bool, failovers_per_hour: u32) -> Result<Report> {
    let model = RttModel::new(topology, Calibration::aws_2017(), seed);
    let floor = GlobalFloor::of(topology, &model).context("placing the global tier")?;
    let p = &floor.placement;
    let mut voters = vec![p.leader];
    voters.extend(p.voters.iter().copied().filter(|&v| v != p.leader));
    let nodes_per_region = topology
        .regions
        .iter()
        .map(|r| r.nodes.len())
        .min()
        .unwrap_or(3);
    let sandboxes = if quick { SANDBOXES / 10 } else { SANDBOXES };
    let names: Vec<String> = topology
        .regions
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    let base = Arc::new(model);
    let rtt = base.clone();
    let targets = base.clone();
    let scenario = Planet {
        regions: names.clone(),
        rtt_ms: Arc::new(move |a, b| rtt.base_ms(a, b)),
        intra_ms: topology.intra_region_ms,
        voters: voters.clone(),
        nodes_per_region,
        sandboxes,
        // The three nearest healthy regions, by capacity (equal here).
        // The five nearest healthy regions, by their spare capacity.
        failover: Arc::new(move |failed, healthy: &[usize], spare: &[f64]| {
            routing::failover_targets(&targets, failed, healthy, spare, FAILOVER_TARGETS)
                .map(|shares| shares.iter().map(|s| (s.region, s.share)).collect())
                .unwrap_or_default()
        }),
        failovers_per_hour,
        seed,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .context("starting the simulation's runtime")?;
    let figures = runtime
        .block_on(scenario.run(&|what| eprintln!("[sim planet] {what}")))
        .context("the simulation")?;

    let mut report = Report::new(
        "sim-planet",
        serde_json::json!({
            "regions": names.len(),
            "nodes_per_region": nodes_per_region,
            "seed": seed,
            "global_voters": voters.iter().map(|&v| names[v].clone()).collect::<Vec<_>>(),
            "global_leader": names[p.leader],
            "quorum": p.quorum.iter().map(|&v| names[v].clone()).collect::<Vec<_>>(),
            "rtt_model": format!("great-circle distance at 200,000 km/s both ways, times {:.3}, plus {:.1} ms (fitted on aws-10-regions-2017.csv); 5 % exponential jitter per message", base.calibration().inflation, base.calibration().constant_ms),
            "intra_region_rtt_ms": topology.intra_region_ms,
            "time": "virtual (tokio's paused clock): network delays only; redb work takes no virtual time",
            "global_writes": figures.global_commits.len(),
            "region_writes": figures.region_commits.len(),
            "write_gaps": "exponential, mean 1 s",
            "gossip": "planet::summary: one foca SWIM member per node with CRDT anti-entropy every 200 ms and writes pushed to 3 peers, links with the modelled one-way delays plus up to 5 % jitter, driven in the driver's own virtual time; 20 updates 2 s apart",
            "sandboxes": sandboxes,
            "placement_nodes": figures.nodes,
            "failover": format!("{} regions without a voter lost one after another (seeded); each: its gossip members killed, until a member in the global leader's region holds all of them down (SWIM, virtual), then one global-tier commit (virtual), then scheduler::place over every placement with its nodes unhealthy and its deployments moved to the {FAILOVER_TARGETS} nearest healthy regions by spare capacity (planet::topology::routing::failover_targets; wall time); nodes hold 1.5x the sandboxes (more in a small planet, so that its losses fit on the rest)", figures.failovers.len()),
            "recovery": format!("the lost regions brought back in the order lost; each: its gossip members restarted under renewed identities (announcing to a member of the nearest healthy region), until the member in the global leader's region holds all of them up (virtual), one global-tier commit (virtual), then its deployments' replicas moved back in {RECOVERY_STEPS} steps {} s apart (planet::topology::guard::share_back; virtual), each a global-tier commit (virtual) and scheduler::place over every placement (wall); region-recovery is return to load fully back: detection + decision + the schedule (virtual) + the last re-placement (wall)", RECOVERY_STEP.as_secs()),
        }),
    );
    let mut global = histogram();
    for d in &figures.global_commits {
        record(&mut global, *d);
    }
    let mut region = histogram();
    for d in &figures.region_commits {
        record(&mut region, *d);
    }
    report.series.push(Series::value(
        "global-floor",
        "ns",
        floor.physical_ms * 1e6,
        1,
        None,
    ));
    report.series.push(Series::value(
        "global-model-rtt",
        "ns",
        floor.model_ms * 1e6,
        1,
        None,
    ));
    report.series.push(Series::latency(
        "global-commit",
        &global,
        Some("global-floor"),
    ));
    report
        .series
        .push(Series::latency("region-commit", &region, None));
    let mut crdt = histogram();
    for d in &figures.crdt_convergence {
        record(&mut crdt, *d);
    }
    report
        .series
        .push(Series::latency("crdt-convergence", &crdt, None));
    let mut failover = histogram();
    for f in &figures.failovers {
        record(&mut failover, f.total());
    }
    report
        .series
        .push(Series::latency("region-failover", &failover, None));
    let mut recovery = histogram();
    for r in &figures.recoveries {
        record(&mut recovery, r.total());
    }
    report
        .series
        .push(Series::latency("region-recovery", &recovery, None));
    report.series.push(Series::value(
        if quick {
            "placements-1.2m"
        } else {
            "placements-12m"
        },
        "ns",
        figures.placements.as_nanos() as f64,
        figures.placed,
        None,
    ));
    let p99_ms = global.value_at_quantile(0.99) as f64 / 1e9;
    report.notes.push(format!(
        "global commit p99 {p99_ms:.1} ms = {:.2}x the physical floor of the chosen quorum ({:.1} ms) and {:.2}x its modelled round trip ({:.1} ms); goal 1.2x the physical floor",
        p99_ms / floor.physical_ms,
        floor.physical_ms,
        p99_ms / floor.model_ms,
        floor.model_ms
    ));
    report.notes.push(format!(
        "region commit p99 {:.2} ms with a {} ms intra-region round trip; goal <= 10 ms (tokio's timer counts whole milliseconds, so each 0.5 ms leg waits 1 ms: an upper bound)",
        region.value_at_quantile(0.99) as f64 / 1e9,
        topology.intra_region_ms
    ));
    let slowest = figures.crdt_all.iter().max().copied().unwrap_or_default();
    report.notes.push(format!(
        "crdt convergence: {} updates, each reached all {} gossip members within {:.0} ms at worst (p99 over members {:.0} ms); goal p99 <= 1 s",
        figures.crdt_all.len(),
        names.len() * nodes_per_region,
        slowest.as_secs_f64() * 1000.0,
        crdt.value_at_quantile(0.99) as f64 / 1e9,
    ));
    for f in &figures.failovers {
        report.notes.push(format!(
            "region {} lost: declared down by gossip in {:.2} s, {}failover committed by the global tier in {:.0} ms, deployments re-placed in {:.2} s (wall){}: {:.2} s in all; goal <= 5 s",
            names[f.region],
            f.detect.as_secs_f64(),
            if f.awaited_approval {
                "held for an operator by the guardrail (approved at once here), "
            } else {
                ""
            },
            f.decide.as_secs_f64() * 1000.0,
            f.replace.as_secs_f64(),
            if f.unplaced > 0 {
                format!(", {} replicas left unplaced (no room)", f.unplaced)
            } else {
                String::new()
            },
            f.total().as_secs_f64()
        ));
    }
    for r in &figures.recoveries {
        let steps: Vec<String> = r
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{:.0} % at {:.1} s ({} replicas home, re-placed in {:.2} s wall{})",
                    s.share * 100.0,
                    s.at.as_secs_f64(),
                    s.home,
                    s.replace.as_secs_f64(),
                    if s.unplaced > 0 {
                        format!(", {} unplaced", s.unplaced)
                    } else {
                        String::new()
                    }
                )
            })
            .collect();
        report.notes.push(format!(
            "region {} back: seen up by gossip in {:.2} s, recovery committed by the global tier in {:.0} ms, load moved back in steps: {}; {:.1} s from return to load fully back",
            names[r.region],
            r.detect.as_secs_f64(),
            r.decide.as_secs_f64() * 1000.0,
            steps.join(", "),
            r.total().as_secs_f64()
        ));
    }
    report.notes.push(format!(
        "{} sandboxes placed on {} nodes in {:.2} s of wall time (scheduler::place on this machine); goal <= 120 s",
        figures.placed,
        figures.nodes,
        figures.placements.as_secs_f64()
    ));
    report.notes.push(
        "not simulated yet: partitions, a lost voter's region (and the global leader moving)"
            .into(),
    );
    Ok(report.finish())
}
