//! `dwcp nodes`: every node with its last report and what is placed on it.

use anyhow::Result;
use serde::Deserialize;
use state::{Node, NodeReport, Placement};

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::table;

/// List nodes with their health, what their last report says and what
/// they hold.
///
/// HEALTH is the scheduler's own judgement: `healthy` while the node's
/// report (once a second) keeps changing, `down` once it stood still for
/// 3 s (the scheduler then moves its placements), `no-report` before the
/// first; HEARTBEAT is how long ago the report last changed, as the
/// answering node saw it. TEMPLATES and LIVE are the templates ready and
/// the sandboxes alive at the last report; CAPACITY is the most it holds
/// (`dwcp up --sandboxes`); REQUESTS and ERRORS count what
/// its gateway served since its process started; PLACED is the sandboxes
/// the scheduler placed on it. `-`: the node has not reported.
///
/// Exit status 3 when a node is down (0 otherwise), for scripts.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp nodes\n  dwcp nodes --json\n  dwcp nodes >/dev/null || echo 'a node is down'"
)]
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
    health: Health,
    placements: Vec<Placement>,
}

/// A node's health as the API judged it.
#[derive(Debug, Deserialize)]
pub struct Health {
    /// `healthy`, `down` or `no_report`.
    pub state: String,
    pub heartbeat_age_ms: Option<u64>,
}

pub fn run(args: NodesArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    let list: NodeList = client::block_on(async {
        let raw = client.get_raw("/nodes").await?;
        if client::json_output(args.json) {
            println!("{}", String::from_utf8_lossy(&raw).trim_end());
        }
        serde_json::from_slice::<NodeList>(&raw)
            .map_err(|e| anyhow::anyhow!("the API's answer: {e}"))
    })?;
    if !client::json_output(args.json) {
        print!("{}", render(&list));
    }
    let down: Vec<&str> = list
        .nodes
        .iter()
        .filter(|e| e.health.state == "down")
        .map(|e| e.node.name.as_str())
        .collect();
    if !down.is_empty() {
        return Err(client::Outcome {
            code: client::EXIT_UNHEALTHY,
            message: format!("down: {}", down.join(", ")),
        }
        .into());
    }
    Ok(())
}

/// A heartbeat's age as a cell: `0.4 s ago`, `-` when unknown.
pub fn age(ms: Option<u64>) -> String {
    ms.map_or_else(
        || "-".into(),
        |ms| format!("{:.1} s ago", ms as f64 / 1000.0),
    )
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
                e.health.state.replace('_', "-"),
                age(e.health.heartbeat_age_ms),
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
            "HEALTH",
            "HEARTBEAT",
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
             "health":{"state":"healthy","heartbeat_age_ms":420},
             "placements":[{"tenant":"default","app":"hello","version":1,"node":"node-1","count":2}]},
            {"node":{"name":"node-2","region":"local","address":"127.0.0.2:7071","labels":{},
                     "capacity":1000000},
             "report":null,"health":{"state":"no_report","heartbeat_age_ms":null},"placements":[]}
        ]}"#;
        let list: NodeList = serde_json::from_str(json).unwrap();
        assert_eq!(
            render(&list),
            "\
NODE    REGION  HEALTH     HEARTBEAT  ADDRESS         GATEWAY         TEMPLATES  LIVE  CAPACITY  REQUESTS  ERRORS  PLACED
node-1  local   healthy    0.4 s ago  127.0.0.1:7071  127.0.0.1:8080  2          1     1000      15        1       2
node-2  local   no-report  -          127.0.0.2:7071  -               -          -     1000000   -         -       0
"
        );
    }
}
