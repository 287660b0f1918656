//! `dwcp`: the one binary, a composition root. Its folders are its jobs:
//! `cli/` the client commands (and `dwcp run`, one local sandbox), `up/`
//! the one place a node is wired together, `bench/` the benchmarks, `sim/`
//! the simulators' drivers. No decision logic lives here: the library
//! crates decide, the binary parses flags, wires and prints.

mod bench;
mod certify;
mod chaos;
mod cli;
mod fd_limit;
mod procfs;
mod sim;
mod units;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// DWCP runs workloads in isolated sandboxes that start in microseconds, and
/// proves every figure it claims with a command anyone can run.
#[derive(Parser)]
#[command(name = "dwcp", version)]
#[command(
    after_help = "Examples:\n  dwcp up\n  dwcp run examples/hello.wat\n  dwcp deploy hello.wasm --name hello\n  dwcp apps\n  dwcp logs hello --follow\n  dwcp rollout start hello --to 2\n  dwcp cluster status\n  dwcp bench startup --quick\n  dwcp chaos run kill-leader\n  dwcp certify --quick\n\nClient commands (apps, app, deploy, scale, logs, rollout, runbook, token, tenant, nodes, capacity, costs,
prices, audit, autopilot, cluster, planet, failover, backup) reach the API through --api / DWCP_API\nand authenticate with --token / DWCP_TOKEN.\n\nEach subcommand has its own --help."
)]
struct Cli {
    /// `json`: every client command prints JSON (the API's answer, stable
    /// field names) instead of text, as its `--json` does.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FORMAT",
        value_enum,
        global = true
    )]
    output: Option<Output>,
    #[command(subcommand)]
    command: Command,
}

/// `-o`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    // Boxed: its many flags make it far larger than the other variants.
    Up(Box<up::UpArgs>),
    Run(cli::run::RunArgs),
    Deploy(cli::deploy::DeployArgs),
    Apps(cli::apps::AppsArgs),
    Logs(cli::logs::LogsArgs),
    App(cli::app::AppArgs),
    Scale(cli::scale::ScaleArgs),
    Nodes(cli::nodes::NodesArgs),
    Capacity(cli::capacity::CapacityArgs),
    Audit(cli::audit::AuditArgs),
    Costs(cli::costs::CostsArgs),
    Prices(cli::costs::PricesArgs),
    Rollout(cli::rollouts::RolloutArgs),
    Runbook(cli::runbook::RunbookArgs),
    Slo(cli::slo::SloArgs),
    Incident(cli::incident::IncidentArgs),
    Autopilot(cli::autopilot::AutopilotArgs),
    Token(cli::token::TokenArgs),
    User(cli::user::UserArgs),
    Tenant(cli::tenant::TenantArgs),
    Cluster(cli::cluster::ClusterArgs),
    Planet(cli::planet::PlanetArgs),
    Failover(cli::planet::FailoverArgs),
    Backup(cli::backup::BackupArgs),
    Restore(cli::backup::RestoreArgs),
    Certify(certify::CertifyArgs),
    Bench(bench::BenchArgs),
    Chaos(chaos::ChaosArgs),
    Sim(sim::SimArgs),
    Completions(CompletionsArgs),
}

/// Print a completion script for a shell: every command, flag and value.
///
/// Load it for this shell (`source <(dwcp completions bash)`), or install
/// it where the shell reads completions.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  source <(dwcp completions bash)\n  dwcp completions zsh > \"${fpath[1]}/_dwcp\"\n  dwcp completions fish > ~/.config/fish/completions/dwcp.fish"
)]
struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::client::set_json_output(cli.output == Some(Output::Json));
    match cli.command {
        Command::Up(args) => up::run(*args),
        Command::Run(args) => cli::run::run(args),
        Command::Deploy(args) => report(cli::deploy::run(args)),
        Command::Apps(args) => report(cli::apps::run(args)),
        Command::Logs(args) => report(cli::logs::run(args)),
        Command::App(args) => report(cli::app::run(args)),
        Command::Scale(args) => report(cli::scale::run(args)),
        Command::Nodes(args) => report(cli::nodes::run(args)),
        Command::Capacity(args) => report(cli::capacity::run(args)),
        Command::Audit(args) => report(cli::audit::run(args)),
        Command::Costs(args) => report(cli::costs::costs(args)),
        Command::Prices(args) => report(cli::costs::prices(args)),
        Command::Rollout(args) => report(cli::rollouts::run(args)),
        Command::Runbook(args) => report(cli::runbook::run(args)),
        Command::Slo(args) => report(cli::slo::run(args)),
        Command::Incident(args) => report(cli::incident::run(args)),
        Command::Autopilot(args) => report(cli::autopilot::run(args)),
        Command::Token(args) => report(cli::token::run(args)),
        Command::User(args) => report(cli::user::run(args)),
        Command::Tenant(args) => report(cli::tenant::run(args)),
        Command::Cluster(args) => report(cli::cluster::run(args)),
        Command::Planet(args) => report(cli::planet::planet(args)),
        Command::Failover(args) => report(cli::planet::failover(args)),
        Command::Backup(args) => report(cli::backup::run(args)),
        Command::Restore(args) => report(cli::backup::restore(args)),
        Command::Certify(args) => report(certify::run(args)),
        Command::Bench(args) => report(bench::run(args)),
        Command::Chaos(args) => report(chaos::run(args)),
        Command::Sim(args) => report(sim::run(args)),
        Command::Completions(args) => {
            use clap::CommandFactory;
            use std::io::Write;
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "dwcp", &mut script);
            // Written whole here, so that a closed pipe (`| head`) ends
            // the command quietly instead of panicking in the generator.
            match std::io::stdout().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("error: writing the completion script: {e}");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
    }
}

/// Exit status 0; a command's [`cli::client::Outcome`] (an aborted
/// rollout, a node down: `dwcp: …` and its code); or 1 with `error: ...`
/// on stderr.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<cli::client::Outcome>() {
            Some(outcome) => {
                eprintln!("dwcp: {}", outcome.message);
                ExitCode::from(outcome.code)
            }
            None => {
                eprintln!("error: {}", error_text(&e));
                ExitCode::FAILURE
            }
        },
    }
}

/// An error and its causes, `: `-joined, each cause left out when the
/// text so far already says it (many errors print their source in their
/// own message, and `{:#}` would repeat it).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn causes_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        #[derive(Debug, thiserror::Error)]
        #[error("cannot listen on 127.0.0.1:7071: {source}")]
        struct Listen {
            #[source]
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Listen { source: io }).context("starting the node in n2");
        assert_eq!(
            super::error_text(&e),
            "starting the node in n2: cannot listen on 127.0.0.1:7071: Address already in use"
        );
    }
}
