//! `dwcp app create|show|delete`: an app's record alone, without deploying
//! anything (`dwcp deploy` creates the app itself when it is missing).

use anyhow::Result;
use serde::Serialize;
use state::{App, Name, Placement};

use crate::cli::client::{self, ApiArgs, Client, app_path, plural};
use crate::cli::deploy::AppDetail;
use crate::cli::table;

/// Create, show or delete an app.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp app create hello\n  dwcp app show hello\n  dwcp app delete hello --tenant billing"
)]
pub struct AppArgs {
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(clap::Subcommand)]
enum AppCommand {
    Create(CreateArgs),
    Show(ShowArgs),
    Delete(DeleteArgs),
}

/// Show an app: its route, its versions (module digest and limits), what is
/// deployed and where the scheduler placed it.
///
/// Versions a rollout copied as its baseline are left out (`--json` has
/// them, with `baseline_of` set).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp app show hello\n  dwcp app show hello --json | jq .deployment"
)]
struct ShowArgs {
    /// The app's name.
    name: String,
    /// The tenant that owns it.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Create an app that the gateway serves at ROUTE once a version is deployed.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp app create hello --route /hello\n  dwcp app create shop --route / --host shop.example.com"
)]
struct CreateArgs {
    /// The app's name: 1-63 of a-z, 0-9 and '-', starting with a letter.
    name: String,
    /// The HTTP path prefix it is served at, e.g. /hello [default: /NAME, as `dwcp deploy`].
    #[arg(long, value_name = "PATH")]
    route: Option<String>,
    /// Serve it only to requests for this host, e.g. shop.example.com [default: any host].
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// The tenant that owns it.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Delete an app, its versions and its deployment.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  dwcp app delete hello")]
struct DeleteArgs {
    /// The app's name.
    name: String,
    /// The tenant that owns it.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// The body of `POST /tenants/{tenant}/apps`.
#[derive(Debug, Serialize)]
pub struct NewApp<'a> {
    pub name: &'a Name,
    pub route: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<&'a str>,
}

pub fn run(args: AppArgs) -> Result<()> {
    match args.command {
        AppCommand::Create(args) => create(args),
        AppCommand::Show(args) => show(args),
        AppCommand::Delete(args) => delete(args),
    }
}

fn create(args: CreateArgs) -> Result<()> {
    let tenant = Name::new("--tenant", &args.tenant)?;
    let name = Name::new("NAME", &args.name)?;
    let client = Client::new(&args.api)?;
    let route = args.route.unwrap_or_else(|| format!("/{name}"));
    let body = NewApp {
        name: &name,
        route: &route,
        host: args.host.as_deref(),
    };
    let app: App = client::block_on(client.post(&format!("/tenants/{tenant}/apps"), &body))?;
    println!(
        "created app {}/{} at {}{}",
        app.tenant,
        app.name,
        app.host.as_deref().unwrap_or(""),
        app.route
    );
    Ok(())
}

fn show(args: ShowArgs) -> Result<()> {
    let tenant = Name::new("--tenant", &args.tenant)?;
    let name = Name::new("NAME", &args.name)?;
    let client = Client::new(&args.api)?;
    Ok(client::block_on(client.print(
        &app_path(&tenant, &name),
        args.json,
        render,
    ))?)
}

/// `dwcp app show`'s text: a few `key: value` lines, then the versions and
/// the placements as tables.
fn render(detail: &AppDetail) -> String {
    let app = &detail.app;
    let mut out = format!(
        "app {}/{} at {}{}\n",
        app.tenant,
        app.name,
        app.host.as_deref().unwrap_or(""),
        app.route
    );
    let versions: Vec<_> = detail
        .versions
        .iter()
        .filter(|v| v.baseline_of.is_none())
        .collect();
    match &detail.deployment {
        Some(d) => {
            let regions: Vec<String> = d
                .regions
                .iter()
                .map(|(region, &n)| format!("{} in {region}", plural(u64::from(n), "replica")))
                .collect();
            let placed: u64 = detail
                .placements
                .iter()
                .filter(|p| p.version == d.version)
                .map(|p| u64::from(p.count))
                .sum();
            out.push_str(&format!(
                "deployed: version {}, {} ({placed} placed)\n",
                d.version,
                regions.join(", ")
            ));
        }
        None => out.push_str("deployed: nothing (dwcp deploy FILE --name NAME)\n"),
    }
    out.push_str(&format!("versions: {}\n", versions.len()));
    if !versions.is_empty() {
        let rows: Vec<Vec<String>> = versions
            .iter()
            .map(|v| {
                let c = &v.config;
                vec![
                    v.number.to_string(),
                    v.digest.chars().take(12).collect(),
                    c.tier.to_string(),
                    format!("{} MiB", c.memory_bytes >> 20),
                    format!("{} ms", c.timeout_ms),
                    if c.warm { "yes" } else { "no" }.to_string(),
                    c.max_concurrency.to_string(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&table::render(
            &[
                "VERSION",
                "SHA256",
                "TIER",
                "MEMORY",
                "TIMEOUT",
                "WARM",
                "CONCURRENCY",
            ],
            &rows,
        ));
    }
    if !detail.placements.is_empty() {
        let rows: Vec<Vec<String>> = detail.placements.iter().map(placement_row).collect();
        out.push('\n');
        out.push_str(&table::render(&["VERSION", "NODE", "SANDBOXES"], &rows));
    }
    out
}

fn placement_row(p: &Placement) -> Vec<String> {
    vec![
        p.version.to_string(),
        p.node.to_string(),
        p.count.to_string(),
    ]
}

fn delete(args: DeleteArgs) -> Result<()> {
    let tenant = Name::new("--tenant", &args.tenant)?;
    let name = Name::new("NAME", &args.name)?;
    let client = Client::new(&args.api)?;
    client::block_on(client.delete(&app_path(&tenant, &name)))?;
    println!("deleted app {tenant}/{name}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_page_leaves_baseline_copies_out() {
        let config = serde_json::to_value(state::VersionConfig::default()).unwrap();
        let detail: AppDetail = serde_json::from_value(serde_json::json!({
            "app": {"tenant": "default", "name": "shop", "route": "/shop", "next_version": 4, "created": 1},
            "versions": [
                {"tenant": "default", "app": "shop", "number": 1, "digest": "a94b63e3c0ffee", "config": config, "created": 2},
                {"tenant": "default", "app": "shop", "number": 2, "digest": "b0b0b0b0b0b0b0", "config": config, "created": 3},
                {"tenant": "default", "app": "shop", "number": 3, "digest": "a94b63e3c0ffee", "config": config, "created": 4, "baseline_of": 1}
            ],
            "deployment": {"tenant": "default", "app": "shop", "version": 2, "regions": {"local": 2}, "updated": 5},
            "placements": [{"tenant": "default", "app": "shop", "version": 2, "node": "node-1", "count": 2}]
        }))
        .unwrap();
        assert_eq!(
            render(&detail),
            "\
app default/shop at /shop
deployed: version 2, 2 replicas in local (2 placed)
versions: 2

VERSION  SHA256        TIER  MEMORY  TIMEOUT   WARM  CONCURRENCY
1        a94b63e3c0ff  wasm  64 MiB  10000 ms  no    64
2        b0b0b0b0b0b0  wasm  64 MiB  10000 ms  no    64

VERSION  NODE    SANDBOXES
2        node-1  2
"
        );
    }
}
