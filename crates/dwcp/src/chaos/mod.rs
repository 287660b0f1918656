//! `dwcp chaos`: named experiments against a live cluster of real `dwcp
//! up` processes (a scratch cluster of three, or `--api`), each with a
//! hypothesis, a blast radius and a stop condition (docs/chaos.md).
//!
//! - `catalog.rs`: the experiments, pure data;
//! - `verdict.rs`: the steady state's objective, the way back to it and the
//!   stop condition, pure;
//! - `engine.rs`: steady state, fault, watch, restore, recovery — over a
//!   `Target`;
//! - `live.rs` and `load.rs`: the target on real processes and its load;
//! - `sim.rs`: the same experiments in the simulator where it models them.
//!
//! `dwcp bench autopilot` (`bench/autopilot/suite.rs`) runs the suite with
//! seeds and reports its figures.

pub(crate) mod acts;
pub(crate) mod catalog;
pub(crate) mod engine;
pub(crate) mod live;
mod load;
pub(crate) mod sim;
pub(crate) mod verdict;

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Subcommand;

use self::catalog::Experiment;
use self::engine::{Run, Timing};
use self::live::Live;
use self::verdict::Objective;

/// Run chaos experiments against a live cluster (or in the simulator).
#[derive(clap::Args)]
#[command(
    after_help = "Each experiment states a hypothesis, a blast radius (the nodes whose requests may fail)\nand a stop condition (requests outside the radius below 90 % over 5 s, or the whole\nload below it for 45 s): when it fires, the fault is taken back at once.\n\nExamples:\n  dwcp chaos list\n  dwcp chaos run kill-leader partition-follower --seed 7\n  dwcp chaos run all --json > chaos.json\n  dwcp chaos run bad-version --api http://127.0.0.1:7070 --token $DWCP_TOKEN\n  dwcp chaos run kill-leader region-lost --sim --nodes 9 --regions 3 --rtt-ms 40\n\nPartitions and packet loss need a build with the transport's drop rules:\n  cargo build -p dwcp --features fault-injection"
)]
pub struct ChaosArgs {
    #[command(subcommand)]
    command: ChaosCommand,
}

#[derive(Subcommand)]
enum ChaosCommand {
    /// List the experiments: fault, hypothesis, blast radius, whether it runs here.
    List {
        /// One JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Run experiments (names from `dwcp chaos list`, or `all`).
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The experiments, in order (`all`: every one that runs here).
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// Seeds which follower a fault picks (and the simulator's draws); run
    /// N of --runs uses seed + N.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many times each experiment runs.
    #[arg(long, default_value_t = 1)]
    runs: u32,
    /// How long each fault stays in force unless stopped.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = crate::units::parse_duration)]
    hold: Duration,
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Run in the simulator (virtual time) instead of on processes.
    #[arg(long)]
    sim: bool,
    /// --sim: replicas in the simulated group.
    #[arg(long, default_value_t = 5, requires = "sim")]
    nodes: usize,
    /// --sim: regions the replicas are spread over (round robin).
    #[arg(long, default_value_t = 1, requires = "sim")]
    regions: usize,
    /// --sim: round trip between regions, ms (0.5 within one).
    #[arg(long, default_value_t = 40.0, requires = "sim")]
    rtt_ms: f64,
    /// Run against this cluster's API instead of a scratch cluster (only
    /// the faults that need no process of ours).
    #[arg(long, value_name = "URL", env = "DWCP_API", conflicts_with = "sim")]
    api: Option<String>,
    /// An admin token for --api.
    #[arg(long, value_name = "TOKEN", env = "DWCP_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

pub fn run(args: ChaosArgs) -> Result<()> {
    match args.command {
        ChaosCommand::List { json } => {
            let all = catalog::all();
            if json {
                println!("{}", serde_json::json!({"experiments": all}));
            } else {
                print!("{}", list_table(&all));
            }
            Ok(())
        }
        ChaosCommand::Run(args) => run_named(args),
    }
}

fn list_table(all: &[Experiment]) -> String {
    let mut out = String::new();
    for e in all {
        let _ = writeln!(
            out,
            "{:<22} radius {:<11} {}{}",
            e.name,
            format!("{:?}", e.radius).to_lowercase(),
            if e.sim.is_some() { "sim " } else { "" },
            if e.critical { "critical" } else { "" }
        );
        let _ = writeln!(out, "  hypothesis: {}", e.hypothesis);
        if let Some(why) = e.unsupported {
            let _ = writeln!(out, "  not supported here: {why}");
        }
    }
    let here = all
        .iter()
        .filter(|e| e.supported() && e.fault != catalog::Fault::None)
        .count();
    let _ = writeln!(
        out,
        "\n{here} fault experiments run here (and the steady-state control)."
    );
    out
}

fn say(what: &str) {
    eprintln!("[chaos] {what}");
}

fn run_named(args: RunArgs) -> Result<()> {
    let experiments = catalog::select(&args.names).map_err(anyhow::Error::msg)?;
    if args.runs == 0 {
        bail!("--runs 0: run each experiment at least once");
    }
    if args.sim {
        let shape = sim::Shape {
            nodes: args.nodes,
            regions: args.regions,
            rtt_ms: args.rtt_ms,
        };
        let mut runs = Vec::new();
        for e in &experiments {
            for n in 0..args.runs {
                say(&format!(
                    "{} in the simulator (seed {})",
                    e.name,
                    args.seed + u64::from(n)
                ));
                runs.push(sim::run(e, args.seed + u64::from(n), shape, args.hold)?);
            }
        }
        if args.json {
            println!("{}", serde_json::json!({"sim": true, "runs": runs}));
        } else {
            for r in &runs {
                println!(
                    "{:<22} seed {:<4} down {:?}: writes stopped {} ({} of {} writes failed, virtual time)",
                    r.experiment,
                    r.seed,
                    r.down,
                    r.unavailable_ms
                        .map_or("until the fault ended".into(), |m| format!("{m} ms")),
                    r.failed,
                    r.writes
                );
            }
        }
        return Ok(());
    }
    for e in &experiments {
        if let Some(why) = e.unsupported {
            bail!("`{}` is not supported here: {why}", e.name);
        }
        if args.api.is_some() && e.needs_processes() {
            bail!(
                "`{}` needs the processes of a scratch cluster (signals, data directories, drop rules); run it without --api",
                e.name
            );
        }
    }
    let timing = Timing::new(args.hold);
    let runs = crate::bench::on_runtime(async {
        let mut live = match &args.api {
            Some(api) => {
                let Some(token) = args.token.as_deref() else {
                    bail!("--api needs --token (or DWCP_TOKEN): an admin token");
                };
                Live::attach(api, token, args.seed, &say).await?
            }
            None => Live::scratch(args.seed, &say).await?,
        };
        let mut runs: Vec<Run> = Vec::new();
        for e in &experiments {
            for n in 0..args.runs {
                let seed = args.seed + u64::from(n);
                live.reseed(seed);
                runs.push(
                    engine::run(&mut live, e, seed, &Objective::DEFAULT, &timing, &say).await?,
                );
            }
        }
        live.finish();
        Ok(runs)
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"objective": Objective::DEFAULT, "timing": timing, "runs": runs})
        );
    } else {
        print!("{}", runs_table(&runs));
    }
    Ok(())
}

/// The runs as a table.
pub fn runs_table(runs: &[Run]) -> String {
    let mut out = format!(
        "{:<22} {:>5} {:<14} {:>9} {:>15} {:>10} {:>11}  stopped / error\n",
        "experiment", "seed", "resolution", "mttr", "failed/requests", "detections", "predictions"
    );
    for r in runs {
        let _ = writeln!(
            out,
            "{:<22} {:>5} {:<14} {:>9} {:>15} {:>10} {:>11}  {}",
            r.experiment,
            r.seed,
            format!("{:?}", r.resolution),
            r.mttr_ms
                .map_or("-".into(), |m| format!("{:.1} s", m as f64 / 1000.0)),
            format!("{}/{}", r.failed, r.requests),
            r.autopilot.map_or("?".into(), |a| a.detections.to_string()),
            r.autopilot
                .map_or("?".into(), |a| a.predictions.to_string()),
            r.stopped.as_deref().or(r.error.as_deref()).unwrap_or("")
        );
    }
    out
}
