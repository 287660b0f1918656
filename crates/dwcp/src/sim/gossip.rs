//! `dwcp sim gossip`: DWCP's gossip members (`planet::summary`) on the
//! planet topology's round trips, carried by turmoil's simulated UDP and by
//! the summary's in-memory driver on the same members and seed, reported
//! in the benchmarks' shape: how fast an update converges (virtual time)
//! and what each engine costs in wall time per simulated second. This is
//! the measurement behind docs/planet.md's "Why not turmoil".

use std::sync::Arc;
use std::time::Duration;

use ::sim::planet::global_timing;
use ::sim::turmoil_gossip::{
    Engine, GossipRun, GossipScenario, IdleSteps, TICK, UPDATE_GAP, idle_steps,
};
use ::sim::turmoil_raft::RaftScenario;
use anyhow::{Context, Result, bail};
use planet::topology::{Calibration, GlobalFloor, RttModel, Topology};

use crate::bench::report::{Report, Series, histogram, record};

/// The topology the members' regions and round trips come from.
const PLANET_120: &str = include_str!("../../../../topologies/planet-120.toml");

/// Members per region (the planet's three nodes each).
const PER_REGION: usize = 3;

/// Virtual time over which turmoil's step loop is timed with idle hosts...
const IDLE_SPAN: Duration = Duration::from_millis(200);
/// ...or less, once a pass has spent this much CPU time (at 360 hosts in
/// a debug build a step costs about a second)...
const IDLE_CPU: Duration = Duration::from_secs(15);
/// ...in this many passes, the cheapest kept (other load only adds time).
const IDLE_REPEATS: usize = 3;

/// `dwcp sim gossip`'s flags (flattened into `dwcp sim`'s; the others
/// used are `--seed` and `--json`).
#[derive(clap::Args)]
pub struct GossipArgs {
    /// gossip: members (3 per region of topologies/planet-120.toml, so
    /// N/3 regions, at most 120; 360 is the whole planet).
    #[arg(long, value_name = "N", default_value_t = 360)]
    members: usize,
    /// gossip: which simulator carries the packets: turmoil, driver (the
    /// summary's in-memory driver) or both (the driver is the baseline).
    #[arg(long, value_name = "ENGINE", default_value = "both")]
    engine: String,
    /// gossip: region reports written (2 s apart) whose spread is measured.
    #[arg(long, value_name = "K", default_value_t = 5)]
    updates: usize,
    /// gossip: stop turmoil after this many seconds of wall time and
    /// report what it reached (0: no limit).
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    wall_budget: u64,
    /// raft: writes through the global tier's leader (exponential gaps,
    /// mean 1 s).
    #[arg(long, value_name = "K", default_value_t = 50)]
    writes: usize,
}

/// `dwcp sim raft`: the global tier's five real replicas (placed on the
/// planet as `dwcp sim planet` places them) over turmoil TCP and over the
/// simulator's in-memory links (the baseline): commit latency (virtual)
/// and wall and CPU time per simulated second.
pub fn run_raft(args: &GossipArgs, seed: u64, json: bool) -> Result<()> {
    let topology = Topology::parse(PLANET_120).context("topologies/planet-120.toml")?;
    let model = RttModel::new(&topology, Calibration::aws_2017(), seed);
    let floor = GlobalFloor::of(&topology, &model).context("placing the global tier")?;
    let p = &floor.placement;
    let mut voters = vec![p.leader];
    voters.extend(p.voters.iter().copied().filter(|&v| v != p.leader));
    let names: Vec<String> = voters
        .iter()
        .map(|&v| topology.regions[v].name.to_string())
        .collect();
    let by_voter = voters.clone();
    let scenario = RaftScenario {
        voters: voters.len(),
        rtt_ms: Arc::new(move |a, b| model.base_ms(by_voter[a], by_voter[b])),
        timing: global_timing(),
        writes: args.writes,
        seed,
    };
    eprintln!("[sim raft] in-memory links: {} writes", args.writes);
    let links = scenario.run_links().context("the in-memory links")?;
    eprintln!("[sim raft] turmoil: {} writes", args.writes);
    let turmoil = scenario.run_turmoil().context("turmoil")?;
    let mut report = Report::new(
        "sim-raft",
        serde_json::json!({
            "voters": names,
            "seed": seed,
            "writes": args.writes,
            "replicas": "replica::Replica (openraft, redb, the state machine), the global tier's timing (heartbeat 500 ms, election 3-6 s); the first voter initialized, so it leads",
            "links": "one-way delay = half the planet model's round trip between the voters' regions, no jitter, both engines",
            "turmoil": format!("turmoil 0.7: a host per replica, RPCs as the transport's JSON bodies framed on one turmoil TCP connection per peer, a step every {} ms", TICK.as_millis()),
            "baseline": "sim::net::Links (the RaftNetworkFactory of dwcp sim planet) in a paused tokio runtime",
            "time": "commits are virtual; wall and cpu per sim-s are this machine's",
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        }),
    );
    for run in [&links, &turmoil] {
        let e = run.engine;
        let baseline = |series: &str| (e == "turmoil").then(|| format!("links-{series}"));
        let mut h = histogram();
        for d in &run.commits {
            record(&mut h, *d);
        }
        report.series.push(Series::latency(
            &format!("{e}-commit"),
            &h,
            baseline("commit").as_deref(),
        ));
        let v = run.virtual_time.as_secs_f64().max(f64::MIN_POSITIVE);
        push_costs(
            &mut report,
            e,
            run.wall_per_virtual_second(),
            run.cpu.map(|c| c.as_secs_f64() / v),
            &baseline,
        );
        report.notes.push(format!(
            "{e}: {} commits, {:.1} s of virtual time in {:.2} s of wall time{}",
            run.commits.len(),
            run.virtual_time.as_secs_f64(),
            run.wall.as_secs_f64(),
            run.cpu.map_or(String::new(), |c| format!(
                " ({:.2} s of CPU)",
                c.as_secs_f64()
            )),
        ));
    }
    let report = report.finish();
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Runs `dwcp sim gossip` with `seed` and `json` from `dwcp sim`'s flags.
pub fn run(args: &GossipArgs, seed: u64, json: bool) -> Result<()> {
    let engines: &[Engine] = match args.engine.as_str() {
        "both" => &[Engine::Driver, Engine::Turmoil],
        "driver" => &[Engine::Driver],
        "turmoil" => &[Engine::Turmoil],
        other => bail!("--engine {other}: expected turmoil, driver or both"),
    };
    if args.members < 2 {
        bail!("--members {}: at least 2", args.members);
    }
    let mut topology = Topology::parse(PLANET_120).context("topologies/planet-120.toml")?;
    let regions = args
        .members
        .div_ceil(PER_REGION)
        .min(topology.regions.len());
    topology.regions.truncate(regions);
    topology
        .overrides
        .retain(|o| o.a < regions && o.b < regions);
    let model = Arc::new(RttModel::new(&topology, Calibration::aws_2017(), seed));
    let rtt = model.clone();
    let scenario = GossipScenario {
        regions: topology
            .regions
            .iter()
            .map(|r| r.name.to_string())
            .collect(),
        rtt_ms: Arc::new(move |a, b| rtt.base_ms(a, b)),
        intra_ms: topology.intra_region_ms,
        members: args.members,
        updates: args.updates,
        seed,
        wall_budget: (args.wall_budget > 0).then(|| Duration::from_secs(args.wall_budget)),
    };
    let mut runs = Vec::new();
    for &engine in engines {
        eprintln!(
            "[sim gossip] {}: {} members in {regions} regions, {} updates",
            engine.name(),
            args.members,
            args.updates
        );
        let run = scenario
            .run(engine)
            .with_context(|| format!("the {} engine", engine.name()))?;
        eprintln!(
            "[sim gossip] {}: {:.1} s virtual in {:.1} s wall{}",
            engine.name(),
            run.virtual_time.as_secs_f64(),
            run.wall.as_secs_f64(),
            if run.completed {
                ""
            } else {
                " (wall budget spent)"
            }
        );
        runs.push(run);
    }
    let mut idle = Vec::new();
    if engines.contains(&Engine::Turmoil) {
        for (hosts, running) in [(args.members, true), (args.members, false), (1, true)] {
            eprintln!(
                "[sim gossip] turmoil step loop: {hosts} idle hosts, {}",
                if running { "running" } else { "finished" }
            );
            idle.push(
                idle_steps(hosts, running, IDLE_SPAN, IDLE_CPU, IDLE_REPEATS)
                    .context("timing turmoil's steps")?,
            );
        }
    }
    let report = report(&scenario, regions, &runs, &idle);
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

fn report(
    scenario: &GossipScenario,
    regions: usize,
    runs: &[GossipRun],
    idle: &[IdleSteps],
) -> Report {
    let has_driver = runs.iter().any(|r| r.engine == Engine::Driver);
    let mut report = Report::new(
        "sim-gossip",
        serde_json::json!({
            "members": scenario.members,
            "regions": regions,
            "members_per_region": PER_REGION,
            "seed": scenario.seed,
            "updates": scenario.updates,
            "update_gap_ms": UPDATE_GAP.as_millis() as u64,
            "engines": runs.iter().map(|r| r.engine.name()).collect::<Vec<_>>(),
            "links": "one-way delay = half the planet model's round trip between the members' regions (1 ms round trip within a region), no jitter, no loss, the same in both engines",
            "members_code": "planet::summary::Gossip (foca SWIM + CRDT anti-entropy every 200 ms, writes pushed to 3 peers), GossipConfig::wan(N), the driver's member seeds, all announcing to member 0",
            "turmoil": format!("turmoil 0.7: one host (its own paused current-thread tokio runtime and LocalSet) per member, turmoil::net::UdpSocket on port 7946, Sim::set_link_latency per pair, a step every {} ms", TICK.as_millis()),
            "time": "discovery and convergence are virtual; wall-per-sim-s, wall-per-packet and setup are wall time on this machine, cpu-per-sim-s and the idle step loop CPU time of the simulating thread (CLOCK_THREAD_CPUTIME_ID; not inflated by other load)",
            "build": if cfg!(debug_assertions) { "debug" } else { "release" },
            "wall_budget_s": scenario.wall_budget.map(|b| b.as_secs()),
        }),
    );
    for run in runs {
        let e = run.engine.name();
        let baseline = |series: &str| {
            (run.engine == Engine::Turmoil && has_driver).then(|| format!("driver-{series}"))
        };
        if let Some(d) = run.discovery {
            report.series.push(Series::value(
                &format!("{e}-discovery"),
                "ns",
                d.as_nanos() as f64,
                1,
                baseline("discovery").as_deref(),
            ));
        }
        // A run cut short before its first update has no spread to show.
        for (series, samples) in [("convergence", &run.convergence), ("update-all", &run.all)] {
            if samples.is_empty() {
                continue;
            }
            let mut h = histogram();
            for d in samples {
                record(&mut h, *d);
            }
            report.series.push(Series::latency(
                &format!("{e}-{series}"),
                &h,
                baseline(series).as_deref(),
            ));
        }
        push_costs(
            &mut report,
            e,
            run.wall_per_virtual_second(),
            run.cpu_per_virtual_second(),
            &baseline,
        );
        if run.packets > 0 {
            report.series.push(Series::value(
                &format!("{e}-wall-per-packet"),
                "ns",
                run.wall.as_nanos() as f64 / run.packets as f64,
                run.packets,
                baseline("wall-per-packet").as_deref(),
            ));
        }
        report.series.push(Series::value(
            &format!("{e}-setup"),
            "ns",
            run.setup_wall.as_nanos() as f64,
            1,
            baseline("setup").as_deref(),
        ));
    }
    for i in idle {
        let name = if i.hosts == 1 {
            "turmoil-idle-1-host-cpu".to_string()
        } else if i.running {
            "turmoil-idle-running-cpu".to_string()
        } else {
            "turmoil-idle-finished-cpu".to_string()
        };
        report.series.push(Series::value(
            &name,
            "ns",
            i.cpu_per_virtual_second() * 1e9,
            (i.span.as_nanos() / TICK.as_nanos()) as u64,
            None,
        ));
    }
    for run in runs {
        report.notes.push(format!(
            "{}: {} members, {:.1} s of virtual time in {:.1} s of wall time, {} of CPU ({}), {} packets ({} bytes), {} refused{}",
            run.engine.name(),
            run.members,
            run.virtual_time.as_secs_f64(),
            run.wall.as_secs_f64(),
            run.cpu.map_or("-".into(), |c| format!("{:.1} s", c.as_secs_f64())),
            run.wall_per_virtual_second()
                .map_or("-".into(), |w| format!("{w:.3} s wall per simulated s")),
            run.packets,
            run.bytes,
            run.refused,
            if run.completed {
                String::new()
            } else {
                format!(
                    "; WALL BUDGET SPENT: stopped after {} of {} updates{}",
                    run.all.len(),
                    scenario.updates,
                    if run.discovery.is_none() {
                        ", before the members had discovered each other"
                    } else {
                        ""
                    }
                )
            }
        ));
    }
    let running = idle.iter().find(|i| i.running && i.hosts > 1);
    let finished = idle.iter().find(|i| !i.running);
    let one = idle.iter().find(|i| i.hosts == 1);
    if let (Some(running), Some(finished), Some(one)) = (running, finished, one) {
        let steps_per_s = 1.0 / TICK.as_secs_f64();
        let per_step = |i: &IdleSteps| i.cpu_per_virtual_second() / steps_per_s * 1e6;
        let n = running.hosts as f64;
        report.notes.push(format!(
            "turmoil's step loop with {} idle hosts ({} links): {:.1} us a step running, {:.1} us with every host finished (the links alone), {:.1} us for one running host: per running host and step {:.1} us, of which {:.1} us its runtime's tick (one host) and {:.1} us scanning the links for its messages",
            running.hosts,
            running.hosts * (running.hosts - 1) / 2,
            per_step(running),
            per_step(finished),
            per_step(one),
            (per_step(running) - per_step(finished)) / n,
            per_step(one),
            ((per_step(running) - per_step(finished)) / n - per_step(one)).max(0.0),
        ));
        if let Some(t) = runs
            .iter()
            .find(|r| r.engine == Engine::Turmoil && r.packets > 0)
        {
            let idle_part = running.cpu_per_virtual_second() * t.virtual_time.as_secs_f64();
            let spent = t.cpu.unwrap_or(t.wall).as_secs_f64();
            report.notes.push(format!(
                "of turmoil's {spent:.1} s of CPU time, {idle_part:.1} s is the idle step loop for that virtual time ({:.0} %); the rest, {:.1} us per packet, is the members' work and turmoil carrying their packets",
                100.0 * idle_part / spent.max(f64::MIN_POSITIVE),
                ((spent - idle_part).max(0.0) / t.packets as f64) * 1e6,
            ));
        }
    }
    report.finish()
}

/// One engine's cost series: wall and CPU seconds per simulated second
/// (in ns), each beside `baseline` of its name when there is one.
fn push_costs(
    report: &mut Report,
    engine: &str,
    wall_per_sim_s: Option<f64>,
    cpu_per_sim_s: Option<f64>,
    baseline: &dyn Fn(&str) -> Option<String>,
) {
    for (series, seconds) in [
        ("wall-per-sim-s", wall_per_sim_s),
        ("cpu-per-sim-s", cpu_per_sim_s),
    ] {
        if let Some(seconds) = seconds {
            report.series.push(Series::value(
                &format!("{engine}-{series}"),
                "ns",
                seconds * 1e9,
                1,
                baseline(series).as_deref(),
            ));
        }
    }
}
