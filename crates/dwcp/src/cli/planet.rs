//! `dwcp planet` (the planet as a node's gossip sees it) and `dwcp
//! failover` (the regions the global tier failed over; approving one the
//! guardrail held).

use anyhow::Result;
use serde::Deserialize;
use serde_json::Value;
use state::RegionFailover;

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::table;

/// Show the planet as this node's gossip member sees it: per region its
/// members known and alive, its own report (health, sandbox slots,
/// requests per second) and the judgement drawn from them (healthy,
/// degraded, down). Only a node started with `dwcp up --topology` answers.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  dwcp planet\n  dwcp planet --json")]
pub struct PlanetArgs {
    /// Print the API's JSON (with each app's status per region).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

pub fn planet(args: PlanetArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    Ok(client::block_on(client.print(
        "/planet",
        args.json,
        |planet: &Value| {
            let empty = Vec::new();
            let rows: Vec<Vec<String>> = planet["regions"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .map(|r| {
                    let report = &r["report"];
                    let or_dash = |v: &Value| {
                        if v.is_null() {
                            "-".to_string()
                        } else {
                            v.to_string().trim_matches('"').to_lowercase()
                        }
                    };
                    vec![
                        or_dash(&r["region"]),
                        or_dash(&r["judged"]),
                        format!("{}/{}", r["alive"], r["known"]),
                        or_dash(&report["health"]),
                        or_dash(&report["capacity"]["sandbox_slots"]),
                        or_dash(&report["load"]["requests_per_sec"]),
                    ]
                })
                .collect();
            table::render(
                &["REGION", "JUDGED", "ALIVE", "SAYS", "SLOTS", "REQ/S"],
                &rows,
            )
        },
    ))?)
}

/// Region failovers: a region whose members gossip holds all down is
/// failed over by the global tier to its nearest healthy regions (by
/// spare capacity), which take on its apps' replicas; when it is back its
/// load returns in steps (`dwcp up --failback-steps/--failback-step`). At
/// most `--failovers-per-hour` happen by themselves; past that each waits
/// for `dwcp failover approve REGION` (admin; a user needs TOTP).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  dwcp failover list\n  dwcp failover approve eu-west-3")]
pub struct FailoverArgs {
    #[command(subcommand)]
    command: FailoverCommand,
}

#[derive(clap::Subcommand)]
enum FailoverCommand {
    /// Every region's latest failover.
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Approve a failover the hourly guardrail held.
    Approve {
        /// The failed region.
        region: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Deserialize)]
struct List {
    failovers: Vec<RegionFailover>,
}

pub fn failover(args: FailoverArgs) -> Result<()> {
    match args.command {
        FailoverCommand::List { json, api } => {
            let client = Client::new(&api)?;
            Ok(client::block_on(client.print(
                "/failovers",
                json,
                |l: &List| {
                    let rows: Vec<Vec<String>> = l
                        .failovers
                        .iter()
                        .map(|f| {
                            let state = match (f.recovered_ms, f.approved) {
                                (Some(_), _) => "recovered",
                                (None, true) => "failed over",
                                (None, false) => "awaiting approval",
                            };
                            let targets: Vec<String> = f
                                .targets
                                .iter()
                                .map(|(t, s)| format!("{t} {:.1} %", f64::from(*s) / 10.0))
                                .collect();
                            vec![
                                f.region.to_string(),
                                state.to_string(),
                                crate::cli::rollouts::clock(f.declared_ms),
                                f.recovered_ms
                                    .map_or("-".into(), crate::cli::rollouts::clock),
                                targets.join(", "),
                            ]
                        })
                        .collect();
                    table::render(
                        &["REGION", "STATE", "DECLARED (UTC)", "BACK (UTC)", "TARGETS"],
                        &rows,
                    )
                },
            ))?)
        }
        FailoverCommand::Approve { region, api } => {
            let client = Client::new(&api)?;
            let f: RegionFailover = client::block_on(client.post(
                &format!("/failovers/{region}/approve"),
                &serde_json::json!({}),
            ))?;
            println!("failover of region {} approved", f.region);
            Ok(())
        }
    }
}
