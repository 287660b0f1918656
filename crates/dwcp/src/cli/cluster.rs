//! `dwcp cluster status|remove|token`: membership and leadership, through
//! the API.

use anyhow::{Result, anyhow};
use cluster::ClusterStatus;
use replica::NodeId;

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::table::{self, or_dash};

/// Show or change the cluster's membership.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp cluster status\n  dwcp cluster remove 3\n  dwcp cluster token\n  dwcp cluster token list"
)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(clap::Subcommand)]
enum ClusterCommand {
    Status(StatusArgs),
    Remove(RemoveArgs),
    Token(TokenArgs),
}

/// Make a new join token (printed once; only its hash is stored), or
/// list or revoke join tokens.
///
/// A new node joins with it: `dwcp up --join ADDR --token TOKEN`, where
/// ADDR is any member's peer address. A token admits one node within an
/// hour unless --uses and --ttl say otherwise.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp cluster token                      # one join within the hour\n  dwcp cluster token --ttl 15m --uses 3\n  dwcp cluster token list\n  dwcp cluster token revoke join-3f2a9c01b7de"
)]
struct TokenArgs {
    #[command(subcommand)]
    command: Option<TokenCommand>,
    /// How long the new token admits nodes (at most 30 days).
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = crate::units::parse_duration)]
    ttl: std::time::Duration,
    /// How many nodes it admits; 0: any number until it expires.
    #[arg(long, value_name = "N", default_value_t = 1)]
    uses: u32,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(clap::Subcommand)]
enum TokenCommand {
    /// List the join tokens: name, expiry, uses left (never the secret).
    List {
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Revoke a join token by name: it admits no more nodes.
    Revoke {
        /// The token's name, as `dwcp cluster token list` shows it.
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

/// A join token as `GET /cluster/join-tokens` lists it.
#[derive(serde::Deserialize)]
struct JoinTokenEntry {
    name: String,
    created: u64,
    expires_unix_ms: Option<u64>,
    uses_left: Option<u32>,
}

#[derive(serde::Deserialize)]
struct JoinTokens {
    tokens: Vec<JoinTokenEntry>,
}

/// Show the leader, the term, the commit index and every member.
///
/// REACHABLE says whether the member's peer port answered just now (an
/// unreachable member's ROLE is `unknown`: the role last known is not
/// shown as current); HEALTH and HEARTBEAT are the scheduler's judgement
/// of its reports (`down` once its report stood still for 3 s) and how
/// long ago its report last changed. MATCHED (the last log entry the
/// leader knows a member holds) and LAG (entries it is behind) are known
/// only when the leader answers; they show `-` otherwise.
///
/// Exit status 3 when a member is unreachable (0 otherwise), for scripts.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp cluster status\n  dwcp cluster status --json\n  dwcp cluster status --global"
)]
struct StatusArgs {
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The global tier instead of this node's cluster (a node started
    /// with `dwcp up --topology`).
    #[arg(long)]
    global: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Remove a node from the cluster (it stops being a member and a voter).
#[derive(clap::Args)]
#[command(after_help = "Example:\n  dwcp cluster remove 3")]
struct RemoveArgs {
    /// The node's numeric id, as `dwcp cluster status` shows it.
    node: String,
    #[command(flatten)]
    api: ApiArgs,
}

pub fn run(args: ClusterArgs) -> Result<()> {
    match args.command {
        ClusterCommand::Status(args) => status(args),
        ClusterCommand::Remove(args) => remove(args),
        ClusterCommand::Token(args) => token(args),
    }
}

fn token(args: TokenArgs) -> Result<()> {
    match args.command {
        Some(TokenCommand::List { json, api }) => {
            let client = Client::new(&api)?;
            return Ok(client::block_on(client.print(
                "/cluster/join-tokens",
                json,
                render_tokens,
            ))?);
        }
        Some(TokenCommand::Revoke { name, api }) => {
            let client = Client::new(&api)?;
            client::block_on(client.delete(&format!("/cluster/join-tokens/{}", name.trim())))?;
            println!("revoked join token {}", name.trim());
            return Ok(());
        }
        None => {}
    }
    let client = Client::new(&args.api)?;
    let body = serde_json::json!({ "ttl_s": args.ttl.as_secs().max(1), "uses": args.uses });
    let answer: serde_json::Value = client::block_on(client.post("/cluster/join-tokens", &body))?;
    let token = answer["token"]
        .as_str()
        .ok_or_else(|| anyhow!("the API's answer has no token: {answer}"))?;
    println!("{token}");
    Ok(())
}

fn render_tokens(list: &JoinTokens) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let rows: Vec<Vec<String>> = list
        .tokens
        .iter()
        .map(|t| {
            let expires = match t.expires_unix_ms {
                None => "never".to_string(),
                Some(at) if at <= now_ms => "expired".to_string(),
                Some(at) => format!("in {} s", (at - now_ms) / 1000),
            };
            let uses = t
                .uses_left
                .map_or_else(|| "any".to_string(), |n| n.to_string());
            vec![t.name.clone(), t.created.to_string(), expires, uses]
        })
        .collect();
    table::render(&["NAME", "CREATED", "EXPIRES", "USES LEFT"], &rows)
}

fn status(args: StatusArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    let path = if args.global {
        "/cluster/global"
    } else {
        "/cluster"
    };
    let status: ClusterStatus = client::block_on(async {
        let raw = client.get_raw(path).await?;
        if client::json_output(args.json) {
            println!("{}", String::from_utf8_lossy(&raw).trim_end());
        }
        serde_json::from_slice::<ClusterStatus>(&raw).map_err(|e| anyhow!("the API's answer: {e}"))
    })?;
    if !client::json_output(args.json) {
        print!("{}", render(&status));
    }
    let unreachable: Vec<String> = status
        .members
        .iter()
        .filter(|m| m.reachable == Some(false))
        .map(|m| format!("node {}", m.id))
        .collect();
    if !unreachable.is_empty() {
        return Err(client::Outcome {
            code: client::EXIT_UNHEALTHY,
            message: format!("unreachable: {}", unreachable.join(", ")),
        }
        .into());
    }
    Ok(())
}

fn remove(args: RemoveArgs) -> Result<()> {
    let id = parse_node(&args.node)?;
    let client = Client::new(&args.api)?;
    client::block_on(client.delete(&format!("/cluster/nodes/{id}")))?;
    println!("removed node {id} from the cluster");
    Ok(())
}

fn parse_node(value: &str) -> Result<NodeId> {
    value.trim().parse().map_err(|_| {
        anyhow!("NODE `{value}` is not a node id; use the number in the ID column of `dwcp cluster status`")
    })
}

fn render(status: &ClusterStatus) -> String {
    let leader = status
        .leader
        .map_or_else(|| "none".to_string(), |id| format!("node {id}"));
    let mut out = format!(
        "leader: {leader}   term: {}   commit index: {}",
        status.term,
        or_dash(status.commit_index)
    );
    if status.leader != Some(status.reported_by) {
        out.push_str(&format!("   (reported by node {})", status.reported_by));
    }
    out.push_str("\n\n");
    let rows: Vec<Vec<String>> = status
        .members
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.address.clone(),
                m.api.clone().unwrap_or_else(|| "-".into()),
                m.role.clone(),
                if m.voter { "yes" } else { "no" }.to_string(),
                match m.reachable {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                }
                .to_string(),
                m.health
                    .as_deref()
                    .map_or_else(|| "-".into(), |h| h.replace('_', "-")),
                crate::cli::nodes::age(m.heartbeat_age_ms),
                or_dash(m.matched_index),
                or_dash(m.lag),
            ]
        })
        .collect();
    out.push_str(&table::render(
        &[
            "ID",
            "ADDRESS",
            "API",
            "ROLE",
            "VOTER",
            "REACHABLE",
            "HEALTH",
            "HEARTBEAT",
            "MATCHED",
            "LAG",
        ],
        &rows,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_table_from_the_leader() {
        let json = r#"{"reported_by":1,"leader":1,"term":3,"commit_index":42,"last_log_index":42,
            "members":[
              {"id":1,"address":"127.0.0.1:7100","api":"127.0.0.1:7070","role":"leader","voter":true,"matched_index":42,"lag":0,
               "reachable":true,"health":"healthy","heartbeat_age_ms":300},
              {"id":2,"address":"127.0.0.2:7100","api":null,"role":"unknown","voter":true,"matched_index":40,"lag":2,
               "reachable":false,"health":"down","heartbeat_age_ms":7400},
              {"id":13,"address":"127.0.0.3:7100","api":"127.0.0.3:7070","role":"learner","voter":false,"matched_index":null,"lag":null}
            ]}"#;
        let status: ClusterStatus = serde_json::from_str(json).unwrap();
        assert_eq!(
            render(&status),
            "\
leader: node 1   term: 3   commit index: 42

ID  ADDRESS         API             ROLE     VOTER  REACHABLE  HEALTH   HEARTBEAT  MATCHED  LAG
1   127.0.0.1:7100  127.0.0.1:7070  leader   yes    yes        healthy  0.3 s ago  42       0
2   127.0.0.2:7100  -               unknown  yes    NO         down     7.4 s ago  40       2
13  127.0.0.3:7100  127.0.0.3:7070  learner  no     -          -        -          -        -
"
        );
    }

    #[test]
    fn the_status_header_without_a_leader() {
        let json = r#"{"reported_by":2,"leader":null,"term":5,"commit_index":null,
            "last_log_index":null,"members":[]}"#;
        let status: ClusterStatus = serde_json::from_str(json).unwrap();
        assert_eq!(
            render(&status),
            "leader: none   term: 5   commit index: -   (reported by node 2)\n\nID  ADDRESS  API  ROLE  VOTER  REACHABLE  HEALTH  HEARTBEAT  MATCHED  LAG\n"
        );
    }

    #[test]
    fn node_ids() {
        assert_eq!(parse_node("3").unwrap(), 3);
        let e = parse_node("node-3").unwrap_err().to_string();
        assert!(e.starts_with("NODE `node-3` is not a node id"), "{e}");
    }
}
