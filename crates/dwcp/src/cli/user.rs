//! `dwcp user create|list|delete|totp|totp-confirm`: people who log in to
//! the API and the dashboard.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use state::{Name, Role};

use crate::cli::client::{self, ApiArgs, Client, ListArgs};
use crate::cli::table;

/// Make, list and delete users, and enroll them in TOTP.
///
/// A user has a password (12 characters or more; the cluster keeps only
/// its argon2id hash) and a role per tenant: `admin`, `operator` or
/// `viewer`, with `*` meaning every tenant. Cluster-wide changes
/// (tenants, tokens, users, prices, members) need `admin` on `*`. Users
/// log in with `POST /api/v1/session` (the dashboard does it for them);
/// once TOTP is confirmed, a login needs a code, and only a login that
/// passed TOTP may promote or abort rollouts, change members or manage
/// users. These commands use an API token (`--token`/`DWCP_TOKEN`); user
/// management needs an admin token.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  printf '%s' \"$PASSWORD\" | dwcp user create ann --role '*=admin' --password-stdin
  DWCP_PASSWORD=... dwcp user create bob --role acme=operator --role '*=viewer'
  dwcp user list
  dwcp user totp ann            # prints the secret and an otpauth:// URI
  dwcp user totp-confirm ann 123456
  dwcp user delete bob")]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(clap::Subcommand)]
enum UserCommand {
    Create(CreateArgs),
    /// List users: names, roles and TOTP state (never the password hashes).
    List(ListArgs),
    Delete(DeleteArgs),
    Totp(TotpArgs),
    TotpConfirm(ConfirmArgs),
}

/// Make a user with a password and roles per tenant.
#[derive(clap::Args)]
struct CreateArgs {
    /// The user's name: 1-63 of a-z, 0-9 and '-', starting with a letter.
    name: String,
    /// TENANT=ROLE, repeatable; TENANT is a tenant's name or `*` (every
    /// tenant), ROLE is admin, operator or viewer.
    #[arg(long = "role", value_name = "TENANT=ROLE", required = true)]
    roles: Vec<String>,
    /// Read the password from standard input (one line). Without it the
    /// password comes from DWCP_PASSWORD.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Delete a user; their sessions end.
#[derive(clap::Args)]
struct DeleteArgs {
    /// The user's name.
    name: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Enroll a user in TOTP: prints a new secret (once) and its otpauth://
/// URI for an authenticator app; confirm with `dwcp user totp-confirm`.
#[derive(clap::Args)]
struct TotpArgs {
    /// The user's name.
    name: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Confirm a user's TOTP with the code their authenticator shows now.
#[derive(clap::Args)]
struct ConfirmArgs {
    /// The user's name.
    name: String,
    /// The 6-digit code.
    code: String,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Serialize)]
struct NewUser<'a> {
    name: &'a Name,
    password: &'a str,
    roles: &'a BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Shown {
    name: String,
    roles: BTreeMap<String, Role>,
    totp: String,
}

#[derive(Deserialize)]
struct List {
    users: Vec<Shown>,
}

#[derive(Deserialize)]
struct Enrolled {
    secret: String,
    uri: String,
}

#[derive(Serialize)]
struct Code<'a> {
    code: &'a str,
}

/// `TENANT=ROLE` pairs as the API takes them.
fn parse_roles(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut roles = BTreeMap::new();
    for pair in pairs {
        let Some((tenant, role)) = pair.split_once('=') else {
            bail!("--role `{pair}` is not TENANT=ROLE (e.g. acme=operator or '*=viewer')");
        };
        if !matches!(role, "admin" | "operator" | "viewer") {
            bail!("--role `{pair}`: the role must be admin, operator or viewer");
        }
        roles.insert(tenant.to_string(), role.to_string());
    }
    Ok(roles)
}

fn roles_text(roles: &BTreeMap<String, Role>) -> String {
    roles
        .iter()
        .map(|(t, r)| format!("{t}={}", format!("{r:?}").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

fn password(from_stdin: bool) -> Result<String> {
    let password = if from_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the password from standard input")?;
        text.lines().next().unwrap_or("").to_string()
    } else {
        std::env::var("DWCP_PASSWORD").context(
            "give the password on standard input with --password-stdin, or in DWCP_PASSWORD",
        )?
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

pub fn run(args: UserArgs) -> Result<()> {
    match args.command {
        UserCommand::Create(args) => {
            let name = Name::new("NAME", &args.name)?;
            let roles = parse_roles(&args.roles)?;
            let password = password(args.password_stdin)?;
            let client = Client::new(&args.api)?;
            let body = NewUser {
                name: &name,
                password: &password,
                roles: &roles,
            };
            let made: Shown = client::block_on(client.post("/users", &body))?;
            println!("made user {} ({})", made.name, roles_text(&made.roles));
            Ok(())
        }
        UserCommand::List(args) => {
            let client = Client::new(&args.api)?;
            Ok(client::block_on(client.print(
                "/users",
                args.json,
                |l: &List| {
                    let rows: Vec<Vec<String>> = l
                        .users
                        .iter()
                        .map(|u| vec![u.name.clone(), roles_text(&u.roles), u.totp.clone()])
                        .collect();
                    table::render(&["NAME", "ROLES", "TOTP"], &rows)
                },
            ))?)
        }
        UserCommand::Delete(args) => {
            let name = Name::new("NAME", &args.name)?;
            let client = Client::new(&args.api)?;
            client::block_on(client.delete(&format!("/users/{name}")))?;
            println!("deleted user {name}; their sessions ended");
            Ok(())
        }
        UserCommand::Totp(args) => {
            let name = Name::new("NAME", &args.name)?;
            let client = Client::new(&args.api)?;
            let made: Enrolled = client::block_on(
                client.post(&format!("/users/{name}/totp"), &serde_json::json!({})),
            )?;
            eprintln!(
                "enrolled {name} in TOTP; the secret is shown this once. Add it to an authenticator, then run `dwcp user totp-confirm {name} CODE`:"
            );
            println!("secret: {}", made.secret);
            println!("uri:    {}", made.uri);
            Ok(())
        }
        UserCommand::TotpConfirm(args) => {
            let name = Name::new("NAME", &args.name)?;
            let client = Client::new(&args.api)?;
            let _: serde_json::Value = client::block_on(client.post(
                &format!("/users/{name}/totp/confirm"),
                &Code { code: &args.code },
            ))?;
            println!("confirmed TOTP for {name}; logging in now needs a code");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_tenant_equals_role() {
        let roles = parse_roles(&["*=viewer".into(), "acme=admin".into()]).unwrap();
        assert_eq!(roles["*"], "viewer");
        assert!(parse_roles(&["acme".into()]).is_err());
        assert!(parse_roles(&["acme=boss".into()]).is_err());
    }
}
