//! `dwcp costs` and `dwcp prices`: what running apps costs.

use anyhow::Result;
use serde::Deserialize;
use state::Prices;

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::table;

/// Show usage and cost per app and tenant.
///
/// REQUESTS, SANDBOX-S (seconds sandboxes were busy with the app's
/// requests) and GB-S (those seconds times the version's memory limit in
/// GiB) add up every node's last report: what each node served since its
/// process started. COST multiplies them by the prices (`dwcp prices`);
/// `-` until prices are set.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  dwcp costs\n  dwcp costs --json")]
pub struct CostsArgs {
    /// Print the API's JSON instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Show or set what running apps costs (setting needs an admin token).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp prices\n  dwcp prices --set --currency EUR --sandbox-second 0.000002 --gb-second 0.0000166 --million-requests 0.2"
)]
pub struct PricesArgs {
    /// Set the prices (all four values are needed).
    #[arg(long, requires_all = ["currency", "sandbox_second", "gb_second", "million_requests"])]
    set: bool,
    /// ISO 4217 code, e.g. EUR or USD.
    #[arg(long)]
    currency: Option<String>,
    /// Per second a sandbox is busy with a request.
    #[arg(long, value_name = "AMOUNT")]
    sandbox_second: Option<f64>,
    /// Per second a sandbox is busy, per GiB of its memory limit.
    #[arg(long, value_name = "AMOUNT")]
    gb_second: Option<f64>,
    /// Per million requests.
    #[arg(long, value_name = "AMOUNT")]
    million_requests: Option<f64>,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Deserialize)]
struct Costs {
    prices: Option<Prices>,
    apps: Vec<Row>,
    tenants: Vec<Row>,
}

#[derive(Debug, Deserialize)]
struct Row {
    tenant: String,
    #[serde(default)]
    app: Option<String>,
    requests: u64,
    sandbox_seconds: f64,
    gb_seconds: f64,
    cost: Option<f64>,
}

/// What `dwcp prices` and `dwcp costs` say while no prices are set.
const NO_PRICES: &str = "no prices set: an admin sets them with `dwcp prices --set --currency EUR --sandbox-second 0.00001 --gb-second 0.0000166 --million-requests 0.2`";

pub fn costs(args: CostsArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    Ok(client::block_on(client.print("/costs", args.json, render))?)
}

pub fn prices(args: PricesArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    let shown: Prices = if args.set {
        let wanted = Prices {
            currency: args.currency.unwrap_or_default(),
            per_sandbox_second: args.sandbox_second.unwrap_or_default(),
            per_gb_second: args.gb_second.unwrap_or_default(),
            per_million_requests: args.million_requests.unwrap_or_default(),
        };
        // The same rules the API applies, before anything is sent.
        state::check_prices(&wanted)?;
        client::block_on(client.put("/prices", &wanted))?
    } else {
        match client::block_on(client.get("/prices")) {
            Ok(prices) => prices,
            // The same words as `dwcp costs`, with the command to run.
            Err(e) if e.is_not_found() => {
                println!("{NO_PRICES}");
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    };
    println!(
        "{} per sandbox-second, {} per GB-second, {} per million requests ({})",
        shown.per_sandbox_second, shown.per_gb_second, shown.per_million_requests, shown.currency
    );
    Ok(())
}

fn render(c: &Costs) -> String {
    let cost = |r: &Row| r.cost.map_or("-".to_string(), |c| format!("{c:.4}"));
    let numbers = |r: &Row| {
        [
            r.requests.to_string(),
            format!("{:.3}", r.sandbox_seconds),
            format!("{:.3}", r.gb_seconds),
            cost(r),
        ]
    };
    let currency = c
        .prices
        .as_ref()
        .map_or("COST".to_string(), |p| format!("COST ({})", p.currency));
    let apps: Vec<Vec<String>> = c
        .apps
        .iter()
        .map(|r| {
            let mut row = vec![r.tenant.clone(), r.app.clone().unwrap_or_default()];
            row.extend(numbers(r));
            row
        })
        .collect();
    let tenants: Vec<Vec<String>> = c
        .tenants
        .iter()
        .map(|r| {
            let mut row = vec![r.tenant.clone()];
            row.extend(numbers(r));
            row
        })
        .collect();
    let mut out = table::render(
        &["TENANT", "APP", "REQUESTS", "SANDBOX-S", "GB-S", &currency],
        &apps,
    );
    out.push('\n');
    out.push_str(&table::render(
        &["TENANT", "REQUESTS", "SANDBOX-S", "GB-S", &currency],
        &tenants,
    ));
    if c.prices.is_none() {
        out.push('\n');
        out.push_str(NO_PRICES);
        out.push('\n');
    }
    out
}
