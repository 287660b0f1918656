//! `dwcp apps`: the apps the API knows, with what is deployed of each.

use anyhow::Result;
use serde::Deserialize;
use state::{Deployment, Name};

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::table;

/// List apps with their route, versions and what is deployed.
///
/// ROUTE is the app's path prefix, after its host when it has one.
/// DEPLOYED is the deployed version (`-` when none), REPLICAS the
/// replicas wanted over all regions and PLACED those the scheduler has
/// placed on nodes (fewer while it works, or when the nodes are full).
/// ROLLOUT is the running rollout: its versions and the canary's share
/// (`dwcp rollout status APP` for the rest). TIER is the deployed
/// version's isolation tier (wasm or microvm).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp apps\n  dwcp apps --tenant billing --json\n  DWCP_API=http://10.0.0.5:7070 dwcp apps"
)]
pub struct AppsArgs {
    /// Only this tenant's apps.
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// One row of `GET /apps`.
#[derive(Debug, Deserialize)]
struct AppSummary {
    tenant: String,
    name: String,
    route: String,
    #[serde(default)]
    host: Option<String>,
    /// How many versions the app has.
    versions: u64,
    deployment: Option<Deployment>,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    placed: u64,
    #[serde(default)]
    rollout: Option<Rolling>,
}

#[derive(Debug, Deserialize)]
struct Rolling {
    from: u64,
    to: u64,
    weight: u32,
    paused: bool,
}

#[derive(Debug, Deserialize)]
struct AppList {
    apps: Vec<AppSummary>,
}

pub fn run(args: AppsArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    let path = match &args.tenant {
        Some(t) => format!("/apps?tenant={}", Name::new("--tenant", t)?),
        None => "/apps".to_string(),
    };
    Ok(client::block_on(client.print(&path, args.json, render))?)
}

fn render(list: &AppList) -> String {
    if list.apps.is_empty() {
        return "no apps; deploy one with `dwcp deploy FILE --name NAME`\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .apps
        .iter()
        .map(|a| {
            vec![
                a.tenant.clone(),
                a.name.clone(),
                format!("{}{}", a.host.as_deref().unwrap_or(""), a.route),
                a.versions.to_string(),
                table::or_dash(a.deployment.as_ref().map(|d| d.version)),
                table::or_dash(a.tier.as_ref()),
                table::or_dash(a.deployment.as_ref().map(Deployment::replicas)),
                table::or_dash(a.deployment.as_ref().map(|_| a.placed)),
                table::or_dash(a.rollout.as_ref().map(|r| {
                    format!(
                        "{} -> {} at {} %{}",
                        r.from,
                        r.to,
                        r.weight,
                        if r.paused { ", paused" } else { "" }
                    )
                })),
            ]
        })
        .collect();
    table::render(
        &[
            "TENANT", "APP", "ROUTE", "VERSIONS", "DEPLOYED", "TIER", "REPLICAS", "PLACED",
            "ROLLOUT",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apps_table() {
        let json = r#"{"apps":[
            {"tenant":"default","name":"hello","route":"/hello","versions":3,"latest_version":3,
             "deployment":{"tenant":"default","app":"hello","version":2,
                           "regions":{"eu-west":2,"local":1},"updated":17},"tier":"microvm","placed":2,
             "rollout":{"id":1,"from":2,"to":3,"weight":10,"paused":false}},
            {"tenant":"billing","name":"invoice-renderer","route":"/invoices","versions":0,
             "latest_version":null,"deployment":null}
        ]}"#;
        let list: AppList = serde_json::from_str(json).unwrap();
        assert_eq!(
            render(&list),
            "\
TENANT   APP               ROUTE      VERSIONS  DEPLOYED  TIER     REPLICAS  PLACED  ROLLOUT
default  hello             /hello     3         2         microvm  3         2       2 -> 3 at 10 %
billing  invoice-renderer  /invoices  0         -         -        -         -       -
"
        );
    }

    #[test]
    fn no_apps() {
        let list: AppList = serde_json::from_str(r#"{"apps":[]}"#).unwrap();
        assert!(render(&list).starts_with("no apps;"));
    }
}
