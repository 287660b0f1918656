//! `dwcp token create|list|delete`: API tokens with a role.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use state::{Name, Role};

use crate::cli::client::{self, ApiArgs, Client, ListArgs};
use crate::cli::table;

/// Make, list and delete API tokens (admin tokens only).
///
/// Roles: `admin` (everything), `operator` (reads, and changes to apps:
/// deploys, rollouts, artifacts, runbooks — not tenants, tokens or cluster
/// membership) and `viewer` (reads only). A token is shown once, when it
/// is made; the cluster keeps only its sha256.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp token create ci-deployer --role operator\n  dwcp token create dashboard --role viewer\n  dwcp token list\n  dwcp token delete ci-deployer"
)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(clap::Subcommand)]
enum TokenCommand {
    Create(CreateArgs),
    /// List tokens: names and roles (never the tokens).
    List(ListArgs),
    Delete(DeleteArgs),
}

/// Make a token and print it (once).
#[derive(clap::Args)]
struct CreateArgs {
    /// The token's name: 1-63 of a-z, 0-9 and '-', starting with a letter.
    name: String,
    /// admin, operator or viewer.
    #[arg(long, value_parser = ["admin", "operator", "viewer"])]
    role: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Delete a token: it stops working (the last admin token is kept).
#[derive(clap::Args)]
struct DeleteArgs {
    /// The token's name.
    name: String,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Serialize)]
struct NewToken<'a> {
    name: &'a Name,
    role: &'a str,
}

#[derive(Deserialize)]
struct Made {
    name: String,
    role: Role,
    token: String,
}

#[derive(Deserialize)]
struct List {
    tokens: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    role: Role,
}

pub fn run(args: TokenArgs) -> Result<()> {
    match args.command {
        TokenCommand::Create(args) => {
            let name = Name::new("NAME", &args.name)?;
            let client = Client::new(&args.api)?;
            let body = NewToken {
                name: &name,
                role: &args.role,
            };
            let made: Made = client::block_on(client.post("/tokens", &body))?;
            eprintln!(
                "made {:?} token {}; it is shown this once, keep it secret:",
                made.role, made.name
            );
            println!("{}", made.token);
            Ok(())
        }
        TokenCommand::List(args) => {
            let client = Client::new(&args.api)?;
            Ok(client::block_on(client.print(
                "/tokens",
                args.json,
                |l: &List| {
                    let rows: Vec<Vec<String>> = l
                        .tokens
                        .iter()
                        .map(|t| vec![t.name.clone(), format!("{:?}", t.role).to_lowercase()])
                        .collect();
                    table::render(&["NAME", "ROLE"], &rows)
                },
            ))?)
        }
        TokenCommand::Delete(args) => {
            let name = Name::new("NAME", &args.name)?;
            let client = Client::new(&args.api)?;
            client::block_on(client.delete(&format!("/tokens/{name}")))?;
            println!("deleted token {name}; it no longer works");
            Ok(())
        }
    }
}
