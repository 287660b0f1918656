//! `dwcp capacity`: use and headroom per region and per node.

use anyhow::Result;
use serde::Deserialize;

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::table;

/// Show how full each region and node is.
///
/// CAPACITY is the sandboxes a node can hold, PLACED those the scheduler
/// placed on it, HEADROOM what is left to place, and LIVE the sandboxes
/// alive at the node's last report (`-` before its first).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  dwcp capacity\n  dwcp capacity --json")]
pub struct CapacityArgs {
    /// Print the API's JSON instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Deserialize)]
struct Capacity {
    nodes: Vec<Row>,
    regions: Vec<Row>,
}

/// A node's or a region's numbers (`node` for nodes, `nodes` for regions).
#[derive(Debug, Deserialize)]
struct Row {
    #[serde(default)]
    node: Option<String>,
    region: String,
    #[serde(default)]
    nodes: Option<usize>,
    capacity: u64,
    placed: u64,
    headroom: u64,
    live: Option<u64>,
}

pub fn run(args: CapacityArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    Ok(client::block_on(client.print(
        "/capacity",
        args.json,
        render,
    ))?)
}

fn numbers(r: &Row) -> [String; 4] {
    [
        r.capacity.to_string(),
        r.placed.to_string(),
        r.headroom.to_string(),
        table::or_dash(r.live),
    ]
}

fn render(c: &Capacity) -> String {
    let regions: Vec<Vec<String>> = c
        .regions
        .iter()
        .map(|r| {
            let mut row = vec![r.region.clone(), table::or_dash(r.nodes)];
            row.extend(numbers(r));
            row
        })
        .collect();
    let nodes: Vec<Vec<String>> = c
        .nodes
        .iter()
        .map(|r| {
            let mut row = vec![r.node.clone().unwrap_or_default(), r.region.clone()];
            row.extend(numbers(r));
            row
        })
        .collect();
    format!(
        "{}\n{}",
        table::render(
            &["REGION", "NODES", "CAPACITY", "PLACED", "HEADROOM", "LIVE"],
            &regions
        ),
        table::render(
            &["NODE", "REGION", "CAPACITY", "PLACED", "HEADROOM", "LIVE"],
            &nodes
        )
    )
}
