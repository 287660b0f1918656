//! `dwcp nodes`: every node with its last report and what is placed on it.

use anyhow::Result;
use serde::Deserialize;
use state::{Node, NodeReport, Placement};

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::table;

/// List nodes with what their last report says and what they hold.
///
/// TEMPLATES and LIVE are the templates ready and the sandboxes alive when
/// the node last reported (once a second); CAPACITY is the most it holds
/// (`dwcp up --sandboxes`); REQUESTS and ERRORS count what
/// its gateway served since its process started; PLACED is the sandboxes
/// the scheduler placed on it. `-`: the node has not reported.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  dwcp nodes\n  dwcp nodes --json")]
pub struct NodesArgs {
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Deserialize)]
struct NodeList {
    nodes: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    node: Node,
    report: Option<NodeReport>,
    placements: Vec<Placement>,
}

pub fn run(args: NodesArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    Ok(client::block_on(client.print("/nodes", args.json, render))?)
}

fn render(list: &NodeList) -> String {
    let rows: Vec<Vec<String>> = list
        .nodes
        .iter()
        .map(|e| {
            let r = e.report.as_ref();
            let total = |f: fn(&state::VersionReport) -> u64| {
                r.map(|r| r.versions.iter().map(f).sum::<u64>())
            };
            vec![
                e.node.name.to_string(),
                e.node.region.to_string(),
                e.node.address.clone(),
                table::or_dash(e.node.gateway.as_ref()),
                table::or_dash(r.map(|r| r.templates_ready)),
                table::or_dash(r.map(|r| r.live_sandboxes)),
                e.node.capacity.to_string(),
                table::or_dash(total(|v| v.requests)),
                table::or_dash(total(|v| v.errors)),
                e.placements
                    .iter()
                    .map(|p| u64::from(p.count))
                    .sum::<u64>()
                    .to_string(),
            ]
        })
        .collect();
    table::render(
        &[
            "NODE",
            "REGION",
            "ADDRESS",
            "GATEWAY",
            "TEMPLATES",
            "LIVE",
            "CAPACITY",
            "REQUESTS",
            "ERRORS",
            "PLACED",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nodes_table() {
        let json = r#"{"nodes":[
            {"node":{"name":"node-1","region":"local","address":"127.0.0.1:7071","labels":{},
                     "capacity":1000,"api":"127.0.0.1:7070","gateway":"127.0.0.1:8080"},
             "report":{"node":"node-1","boot":7,"sequence":3,"templates_ready":2,"live_sandboxes":1,
                       "versions":[
                         {"tenant":"default","app":"hello","version":1,"requests":10,"errors":1,"timeouts":0,
                          "latency_us":{"count":10,"p50":1,"p90":1,"p99":1,"p999":1,"max":1}},
                         {"tenant":"default","app":"shop","version":2,"requests":5,"errors":0,"timeouts":0,
                          "latency_us":{"count":5,"p50":1,"p90":1,"p99":1,"p999":1,"max":1}}]},
             "placements":[{"tenant":"default","app":"hello","version":1,"node":"node-1","count":2}]},
            {"node":{"name":"node-2","region":"local","address":"127.0.0.2:7071","labels":{},
                     "capacity":1000000},
             "report":null,"placements":[]}
        ]}"#;
        let list: NodeList = serde_json::from_str(json).unwrap();
        assert_eq!(
            render(&list),
            "\
NODE    REGION  ADDRESS         GATEWAY         TEMPLATES  LIVE  CAPACITY  REQUESTS  ERRORS  PLACED
node-1  local   127.0.0.1:7071  127.0.0.1:8080  2          1     1000      15        1       2
node-2  local   127.0.0.2:7071  -               -          -     1000000   -         -       0
"
        );
    }
}
