//! `dwcp audit`: who changed what, when and from where.

use anyhow::Result;
use serde::Deserialize;
use state::AuditEntry;

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::table;

/// Show the audit log: one line per change made through the API, with the
/// token's name, the client's address and the request, oldest first.
///
/// The cluster keeps the latest 10,000 entries; each is written in the
/// same log entry as its change, so there is no change without its record.
/// Changes the cluster makes itself (placements, rollout steps, reports)
/// are not in it; a rollout's own steps are in `dwcp rollout history`.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  dwcp audit\n  dwcp audit --since 1200 --json")]
pub struct AuditArgs {
    /// Only entries after this revision.
    #[arg(long, value_name = "REVISION")]
    since: Option<u64>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Deserialize)]
struct List {
    entries: Vec<AuditEntry>,
}

pub fn run(args: AuditArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    let path = match args.since {
        Some(n) => format!("/audit?since={n}"),
        None => "/audit".to_string(),
    };
    Ok(client::block_on(client.print(
        &path,
        args.json,
        |l: &List| {
            let rows: Vec<Vec<String>> = l
                .entries
                .iter()
                .map(|e| {
                    vec![
                        e.revision.0.to_string(),
                        crate::cli::rollouts::clock(e.unix_ms),
                        e.who.clone(),
                        e.from.clone(),
                        e.what.clone(),
                    ]
                })
                .collect();
            table::render(&["REVISION", "TIME (UTC)", "WHO", "FROM", "WHAT"], &rows)
        },
    ))?)
}
