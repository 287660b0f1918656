//! `dwcp app create|delete`: an app's record alone, without deploying
//! anything (`dwcp deploy` creates the app itself when it is missing).

use anyhow::Result;
use serde::Serialize;
use state::{App, Name};

use crate::cli::client::{self, ApiArgs, Client, app_path};

/// Create or delete an app.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp app create hello --route /hello\n  dwcp app delete hello --tenant billing"
)]
pub struct AppArgs {
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(clap::Subcommand)]
enum AppCommand {
    Create(CreateArgs),
    Delete(DeleteArgs),
}

/// Create an app that the gateway serves at ROUTE once a version is deployed.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp app create hello --route /hello\n  dwcp app create shop --route / --host shop.example.com"
)]
struct CreateArgs {
    /// The app's name: 1-63 of a-z, 0-9 and '-', starting with a letter.
    name: String,
    /// The HTTP path prefix it is served at, e.g. /hello.
    #[arg(long, value_name = "PATH")]
    route: String,
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
        AppCommand::Delete(args) => delete(args),
    }
}

fn create(args: CreateArgs) -> Result<()> {
    let tenant = Name::new("--tenant", &args.tenant)?;
    let name = Name::new("NAME", &args.name)?;
    let client = Client::new(&args.api)?;
    let body = NewApp {
        name: &name,
        route: &args.route,
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

fn delete(args: DeleteArgs) -> Result<()> {
    let tenant = Name::new("--tenant", &args.tenant)?;
    let name = Name::new("NAME", &args.name)?;
    let client = Client::new(&args.api)?;
    client::block_on(client.delete(&app_path(&tenant, &name)))?;
    println!("deleted app {tenant}/{name}");
    Ok(())
}
