//! `dwcp`: the one binary. Each subcommand wires the library crates; no
//! decision logic lives here.

mod app;
mod apps;
mod audit;
mod bench;
mod capacity;
mod client;
mod cluster;
mod costs;
mod deploy;
mod incident;
mod nodes;
mod planet;
mod rollouts;
mod run;
mod runbook;
mod simulate;
mod simulate_gossip;
mod slo;
mod table;
mod token;
mod units;
mod up;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// DWCP runs workloads in isolated sandboxes that start in microseconds, and
/// proves every figure it claims with a command anyone can run.
#[derive(Parser)]
#[command(name = "dwcp", version)]
#[command(
    after_help = "Examples:\n  dwcp up\n  dwcp run examples/hello.wat\n  dwcp deploy hello.wasm --name hello\n  dwcp apps\n  dwcp rollout start hello --to 2\n  dwcp cluster status\n  dwcp bench startup --quick\n\nClient commands (apps, app, deploy, rollout, runbook, token, nodes, capacity, costs,
prices, audit, cluster, planet, failover) reach the API through --api / DWCP_API\nand authenticate with --token / DWCP_TOKEN.\n\nEach subcommand has its own --help."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Up(up::UpArgs),
    Run(run::RunArgs),
    Deploy(deploy::DeployArgs),
    Apps(apps::AppsArgs),
    App(app::AppArgs),
    Nodes(nodes::NodesArgs),
    Capacity(capacity::CapacityArgs),
    Audit(audit::AuditArgs),
    Costs(costs::CostsArgs),
    Prices(costs::PricesArgs),
    Rollout(rollouts::RolloutArgs),
    Runbook(runbook::RunbookArgs),
    Slo(slo::SloArgs),
    Incident(incident::IncidentArgs),
    Token(token::TokenArgs),
    User(user::UserArgs),
    Cluster(cluster::ClusterArgs),
    Planet(planet::PlanetArgs),
    Failover(planet::FailoverArgs),
    Bench(bench::BenchArgs),
    Sim(simulate::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => up::run(args),
        Command::Run(args) => run::run(args),
        Command::Deploy(args) => report(deploy::run(args)),
        Command::Apps(args) => report(apps::run(args)),
        Command::App(args) => report(app::run(args)),
        Command::Nodes(args) => report(nodes::run(args)),
        Command::Capacity(args) => report(capacity::run(args)),
        Command::Audit(args) => report(audit::run(args)),
        Command::Costs(args) => report(costs::costs(args)),
        Command::Prices(args) => report(costs::prices(args)),
        Command::Rollout(args) => report(rollouts::run(args)),
        Command::Runbook(args) => report(runbook::run(args)),
        Command::Slo(args) => report(slo::run(args)),
        Command::Incident(args) => report(incident::run(args)),
        Command::Token(args) => report(token::run(args)),
        Command::User(args) => report(user::run(args)),
        Command::Cluster(args) => report(cluster::run(args)),
        Command::Planet(args) => report(planet::planet(args)),
        Command::Failover(args) => report(planet::failover(args)),
        Command::Bench(args) => report(bench::run(args)),
        Command::Sim(args) => report(simulate::run(args)),
    }
}

/// Exit status 0, or 1 with `error: ...` on stderr.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
