//! `dwcp tenant list|show|quota get|quota set`: tenants and the quotas an
//! admin sets on them (the state machine enforces them).

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use state::{Name, Quotas, Tenant};

use crate::cli::client::{self, ApiArgs, Client, ListArgs};
use crate::cli::table;
use crate::units;

/// List tenants, show one, and read or change its quotas.
///
/// A tenant's quotas bound what its apps may ask for: how many apps and
/// replicas, and each version's sandbox memory, request deadline,
/// concurrency and body sizes. The state machine refuses a version or a
/// deployment over them, naming the field. Listing needs a token that can
/// read the tenant (a user limited to some tenants sees theirs); `quota
/// set` needs an admin token.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  dwcp tenant list
  dwcp tenant show default
  dwcp tenant quota get default -o json
  dwcp tenant quota set default --max-apps 20 --max-memory 256MiB --max-timeout 30s")]
pub struct TenantArgs {
    #[command(subcommand)]
    command: TenantCommand,
}

#[derive(clap::Subcommand)]
enum TenantCommand {
    /// List tenants with their quotas.
    List(ListArgs),
    Show(ShowArgs),
    /// Read or change a tenant's quotas.
    #[command(subcommand)]
    Quota(QuotaCommand),
}

/// Show one tenant: its quotas and its apps.
#[derive(clap::Args)]
struct ShowArgs {
    /// The tenant's name.
    name: String,
    /// Print JSON (`{"tenant": …, "apps": […]}`) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(clap::Subcommand)]
enum QuotaCommand {
    Get(QuotaGetArgs),
    Set(QuotaSetArgs),
}

/// Print a tenant's quotas.
#[derive(clap::Args)]
struct QuotaGetArgs {
    /// The tenant's name.
    name: String,
    /// Print the quotas as JSON (the API's field names).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Change some of a tenant's quotas; the others keep their value. The
/// tenant must exist (`POST /api/v1/tenants` creates one).
#[derive(clap::Args)]
struct QuotaSetArgs {
    /// The tenant's name.
    name: String,
    /// Most apps the tenant may have.
    #[arg(long, value_name = "N")]
    max_apps: Option<u32>,
    /// Most sandbox replicas over all of the tenant's deployments.
    #[arg(long, value_name = "N")]
    max_replicas: Option<u32>,
    /// Most memory of one sandbox (64KiB to 4GiB), e.g. 256MiB.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    max_memory: Option<u64>,
    /// Longest deadline of one request (1ms to 10m), e.g. 30s.
    #[arg(long, value_name = "DURATION", value_parser = units::parse_duration)]
    max_timeout: Option<std::time::Duration>,
    /// Most requests of one app a gateway serves at once (1 to 100000).
    #[arg(long, value_name = "N")]
    max_concurrency: Option<u32>,
    /// Largest request or response body (1B to 64MiB), e.g. 1MiB.
    #[arg(long, value_name = "SIZE", value_parser = units::parse_size)]
    max_body: Option<u64>,
    /// Print the stored tenant as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Deserialize)]
struct List {
    tenants: Vec<Tenant>,
}

/// One app of a tenant, as `GET /apps?tenant=T` lists it.
#[derive(Debug, Deserialize, Serialize)]
struct AppLine {
    name: String,
    route: String,
    host: Option<String>,
    latest_version: Option<u64>,
    placed: u64,
}

#[derive(Deserialize)]
struct Apps {
    apps: Vec<AppLine>,
}

#[derive(Serialize)]
struct Shown<'a> {
    tenant: &'a Tenant,
    apps: &'a [AppLine],
}

/// `POST /tenants` with quotas: creates the tenant or replaces its quotas.
#[derive(Serialize)]
struct Put<'a> {
    name: &'a Name,
    quotas: &'a Quotas,
}

impl QuotaSetArgs {
    /// `current` with the quotas given on the command line changed; an
    /// error naming the flag when none is given or one is out of range.
    fn apply(&self, current: &Quotas) -> Result<Quotas> {
        let timeout_ms = match self.max_timeout {
            None => None,
            Some(d) => Some(u64::try_from(d.as_millis()).map_err(|_| {
                anyhow!(
                    "--max-timeout: at most 10m (600000 ms), got {}s",
                    d.as_secs()
                )
            })?),
        };
        let given = [
            self.max_apps.is_some(),
            self.max_replicas.is_some(),
            self.max_memory.is_some(),
            timeout_ms.is_some(),
            self.max_concurrency.is_some(),
            self.max_body.is_some(),
        ];
        if !given.contains(&true) {
            bail!(
                "give at least one quota to change: --max-apps, --max-replicas, --max-memory, --max-timeout, --max-concurrency or --max-body"
            );
        }
        let q = Quotas {
            max_apps: self.max_apps.unwrap_or(current.max_apps),
            max_replicas: self.max_replicas.unwrap_or(current.max_replicas),
            max_memory_bytes: self.max_memory.unwrap_or(current.max_memory_bytes),
            max_timeout_ms: timeout_ms.unwrap_or(current.max_timeout_ms),
            max_concurrency: self.max_concurrency.unwrap_or(current.max_concurrency),
            max_body_bytes: self.max_body.unwrap_or(current.max_body_bytes),
        };
        // The state machine checks the same; refusing here names the flag
        // rather than the API's field.
        if let Err(state::Rejection::Invalid {
            field,
            value,
            allowed,
        }) = state::check_quotas(&q)
        {
            let flag = match field.as_str() {
                "quotas.max_memory_bytes" => "--max-memory",
                "quotas.max_timeout_ms" => "--max-timeout",
                "quotas.max_concurrency" => "--max-concurrency",
                "quotas.max_body_bytes" => "--max-body",
                other => other,
            };
            bail!("{flag}: {value} ({field}) is not allowed: {allowed}");
        }
        Ok(q)
    }
}

/// The tenant named `name`, from `GET /tenants`; an error saying it does
/// not exist (or is not the caller's) otherwise.
async fn tenant(client: &Client, name: &Name) -> Result<Tenant> {
    let list: List = client.get("/tenants").await?;
    list.tenants
        .into_iter()
        .find(|t| &t.name == name)
        .ok_or_else(|| {
            anyhow!("tenant `{name}` does not exist (or this token may not read it); `dwcp tenant list` shows the tenants")
        })
}

/// A size in the largest binary unit that divides it exactly.
fn size(bytes: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

/// A deadline in ms, as seconds when whole.
fn millis(ms: u64) -> String {
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn quota_lines(q: &Quotas) -> String {
    let rows = [
        ("max-apps", q.max_apps.to_string()),
        ("max-replicas", q.max_replicas.to_string()),
        ("max-memory", size(q.max_memory_bytes)),
        ("max-timeout", millis(q.max_timeout_ms)),
        ("max-concurrency", q.max_concurrency.to_string()),
        ("max-body", size(q.max_body_bytes)),
    ];
    rows.iter().map(|(k, v)| format!("{k:<16} {v}\n")).collect()
}

fn list_table(list: &List) -> String {
    let rows: Vec<Vec<String>> = list
        .tenants
        .iter()
        .map(|t| {
            let q = &t.quotas;
            vec![
                t.name.to_string(),
                q.max_apps.to_string(),
                q.max_replicas.to_string(),
                size(q.max_memory_bytes),
                millis(q.max_timeout_ms),
                q.max_concurrency.to_string(),
                size(q.max_body_bytes),
                t.created.0.to_string(),
            ]
        })
        .collect();
    table::render(
        &[
            "TENANT",
            "APPS",
            "REPLICAS",
            "MEMORY",
            "TIMEOUT",
            "CONCURRENCY",
            "BODY",
            "CREATED",
        ],
        &rows,
    )
}

fn show_text(t: &Tenant, apps: &[AppLine]) -> String {
    let mut text = format!(
        "tenant {} (created at revision {})\nquotas:\n",
        t.name, t.created.0
    );
    for line in quota_lines(&t.quotas).lines() {
        text.push_str(&format!("  {line}\n"));
    }
    text.push_str(&format!(
        "apps: {} of at most {}\n",
        apps.len(),
        t.quotas.max_apps
    ));
    if !apps.is_empty() {
        let rows: Vec<Vec<String>> = apps
            .iter()
            .map(|a| {
                vec![
                    a.name.clone(),
                    a.route.clone(),
                    table::or_dash(a.host.as_ref()),
                    table::or_dash(a.latest_version),
                    a.placed.to_string(),
                ]
            })
            .collect();
        text.push_str(&table::render(
            &["APP", "ROUTE", "HOST", "LATEST", "PLACED"],
            &rows,
        ));
    }
    text
}

pub fn run(args: TenantArgs) -> Result<()> {
    match args.command {
        TenantCommand::List(args) => {
            let client = Client::new(&args.api)?;
            Ok(client::block_on(
                client.print("/tenants", args.json, list_table),
            )?)
        }
        TenantCommand::Show(args) => {
            let name = Name::new("NAME", &args.name)?;
            let client = Client::new(&args.api)?;
            client::block_on(async {
                let t = tenant(&client, &name).await?;
                let apps: Apps = client.get(&format!("/apps?tenant={name}")).await?;
                client::print_outcome(
                    args.json,
                    &Shown {
                        tenant: &t,
                        apps: &apps.apps,
                    },
                    || show_text(&t, &apps.apps).trim_end().to_string(),
                );
                Ok(())
            })
        }
        TenantCommand::Quota(QuotaCommand::Get(args)) => {
            let name = Name::new("NAME", &args.name)?;
            let client = Client::new(&args.api)?;
            let t = client::block_on(tenant(&client, &name))?;
            client::print_outcome(args.json, &t.quotas, || {
                quota_lines(&t.quotas).trim_end().to_string()
            });
            Ok(())
        }
        TenantCommand::Quota(QuotaCommand::Set(args)) => {
            let name = Name::new("NAME", &args.name)?;
            let client = Client::new(&args.api)?;
            client::block_on(async {
                // Read, change, write: `POST /tenants` replaces all the
                // quotas, so the ones not given keep their stored value.
                let current = tenant(&client, &name).await?;
                let quotas = args.apply(&current.quotas)?;
                let stored: Tenant = client
                    .post(
                        "/tenants",
                        &Put {
                            name: &name,
                            quotas: &quotas,
                        },
                    )
                    .await?;
                client::print_outcome(args.json, &stored, || {
                    format!(
                        "set the quotas of tenant {name}:\n{}",
                        quota_lines(&stored.quotas).trim_end()
                    )
                });
                Ok(())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: TenantCommand,
    }

    fn set(args: &[&str]) -> QuotaSetArgs {
        let mut argv = vec!["tenant", "quota", "set", "acme"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            TenantCommand::Quota(QuotaCommand::Set(a)) => a,
            _ => unreachable!("parsed `quota set`"),
        }
    }

    #[test]
    fn quota_set_changes_only_what_is_given() {
        let current = Quotas::default();
        let q = set(&[
            "--max-apps",
            "3",
            "--max-memory",
            "256MiB",
            "--max-timeout",
            "30s",
        ])
        .apply(&current)
        .unwrap();
        assert_eq!(q.max_apps, 3);
        assert_eq!(q.max_memory_bytes, 256 << 20);
        assert_eq!(q.max_timeout_ms, 30_000);
        assert_eq!(q.max_replicas, current.max_replicas);
        assert_eq!(q.max_concurrency, current.max_concurrency);
        assert_eq!(q.max_body_bytes, current.max_body_bytes);
    }

    #[test]
    fn quota_set_refuses_nothing_and_names_the_flag_out_of_range() {
        let current = Quotas::default();
        let none = set(&[]).apply(&current).unwrap_err().to_string();
        assert!(none.contains("at least one quota"), "{none}");
        let memory = set(&["--max-memory", "8GiB"]).apply(&current).unwrap_err();
        assert!(memory.to_string().starts_with("--max-memory: "), "{memory}");
        let timeout = set(&["--max-timeout", "11m"]).apply(&current).unwrap_err();
        assert!(
            timeout.to_string().starts_with("--max-timeout: "),
            "{timeout}"
        );
        let body = set(&["--max-body", "0"]).apply(&current).unwrap_err();
        assert!(body.to_string().starts_with("--max-body: "), "{body}");
        assert!(
            Cli::try_parse_from(["tenant", "quota", "set", "a", "--max-memory", "9XB"]).is_err()
        );
    }

    #[test]
    fn sizes_and_deadlines_read_back_as_flags_take_them() {
        assert_eq!(size(4 << 30), "4GiB");
        assert_eq!(size(256 << 20), "256MiB");
        assert_eq!(size(1000), "1000B");
        assert_eq!(millis(600_000), "600s");
        assert_eq!(millis(1500), "1500ms");
    }
}
