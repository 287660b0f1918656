//! `dwcp`: the one binary. Each subcommand wires the library crates; no
//! decision logic lives here.

mod bench;
mod run;
mod units;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// DWCP runs workloads in isolated sandboxes that start in microseconds, and
/// proves every figure it claims with a command anyone can run.
#[derive(Parser)]
#[command(name = "dwcp", version)]
#[command(
    after_help = "Examples:\n  dwcp run examples/hello.wat\n  dwcp bench startup --quick\n\nEach subcommand has its own --help."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Run(run::RunArgs),
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Bench(args) => match bench::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
