//! `dwcp certify waive|unwaive|waivers|record|sign-off|status|policy`: the
//! certification records a cluster keeps (`/api/v1/certify…`): waivers
//! (an admin's, with who, why and an expiry), reports, the go-live
//! sign-offs (a person's, in a session that passed TOTP) and the status.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use certify::Report;
use hyper::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::table;

/// How long a waiver lasts unless `--for` says otherwise.
const DEFAULT_WAIVER: &str = "7d";

/// Waive a criterion in the cluster's store: it shows as `waived`, never
/// as passed, until the waiver lapses (at most 90 days). Admin only.
#[derive(clap::Args)]
pub struct WaiveArgs {
    /// The criterion's id (`dwcp certify list`).
    criterion: String,
    /// Why it is waived (recorded with who and when).
    #[arg(long, required = true)]
    reason: String,
    /// How long the waiver lasts, e.g. 12h, 7d (at most 90d).
    #[arg(long = "for", value_name = "DURATION", default_value = DEFAULT_WAIVER)]
    lasts: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// End a criterion's waiver. Admin only.
#[derive(clap::Args)]
pub struct UnwaiveArgs {
    /// The criterion's id.
    criterion: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Record a report in the cluster's store (its sha256 is checked), as
/// the latest. `dwcp certify --api` records its report itself.
#[derive(clap::Args)]
pub struct RecordArgs {
    /// The report (JSON, from `dwcp certify --out`).
    report: PathBuf,
    #[command(flatten)]
    api: ApiArgs,
}

/// Sign a report for go-live as one of the policy's roles: records the
/// report if it is not yet, logs the user in with their password and a
/// TOTP code, and signs its sha256. Refused when the report is not the
/// latest, left criteria out (`--quick`, `--only`), is older than the policy allows, or has a
/// criterion that did not pass and has no waiver in force.
#[derive(clap::Args)]
pub struct SignOffArgs {
    /// The report (JSON, from `dwcp certify --out`).
    report: PathBuf,
    /// The go-live policy's role signed as (default policy:
    /// engineering-manager, vp-engineering, cto, ceo).
    #[arg(long, required = true)]
    role: String,
    /// The user signing: an admin on every tenant with confirmed TOTP.
    #[arg(long, required = true)]
    user: String,
    /// The code the user's authenticator shows now.
    #[arg(long, required = true, value_name = "CODE")]
    totp: String,
    /// Read the password from standard input (one line); else
    /// DWCP_PASSWORD.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// The latest report, its score, the sign-offs and the roles missing,
/// and the waivers (lapsed ones marked).
#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
}

/// List the waivers (in force and lapsed).
#[derive(clap::Args)]
pub struct WaiversArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
}

/// Show or change the go-live policy: the roles that must sign, how old
/// a report they may sign, and what runs production — the whole cluster,
/// or apps one by one (then starting a rollout or setting a deployment
/// of what is production through the API is refused while the latest
/// report is not current and signed by every role; an admin may override
/// with a reason, audited). Changing it is an admin's; options not given
/// keep their value.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  dwcp certify policy
  dwcp certify policy --production on
  dwcp certify policy --add-production-app default/shop
  dwcp certify policy --remove-production-app default/shop
  dwcp certify policy --approvers cto,ceo --max-age 3d")]
pub struct PolicyArgs {
    /// `on`: gate every app's rollouts and deployments on a signed
    /// certification.
    #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
    production: Option<String>,
    /// Mark apps production (gate their rollouts and deployments on a
    /// signed certification); each must exist.
    #[arg(long, value_name = "TENANT/APP,...", value_delimiter = ',')]
    add_production_app: Vec<String>,
    /// Unmark apps marked production.
    #[arg(long, value_name = "TENANT/APP,...", value_delimiter = ',')]
    remove_production_app: Vec<String>,
    /// The roles that must each sign (comma-separated).
    #[arg(long, value_name = "ROLE,...", value_delimiter = ',')]
    approvers: Option<Vec<String>>,
    /// The oldest report they may sign, e.g. 7d (at most 90d).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    max_age: Option<std::time::Duration>,
    /// Print the policy as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

pub fn policy(args: PolicyArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    client::block_on(async {
        let status: Value = client.get("/certify").await?;
        let mut policy = status["policy"].clone();
        let changed = args.production.is_some()
            || args.approvers.is_some()
            || args.max_age.is_some()
            || !args.add_production_app.is_empty()
            || !args.remove_production_app.is_empty();
        if let Some(on) = &args.production {
            policy["production"] = Value::Bool(on == "on");
        }
        let mut apps = strings(&policy["production_apps"]);
        for app in &args.remove_production_app {
            if !apps.contains(app) {
                bail!(
                    "--remove-production-app {app}: not marked production (marked: {})",
                    if apps.is_empty() {
                        "none".to_string()
                    } else {
                        apps.join(", ")
                    }
                );
            }
            apps.retain(|a| a != app);
        }
        for app in &args.add_production_app {
            if !apps.contains(app) {
                apps.push(app.clone());
            }
        }
        policy["production_apps"] = serde_json::json!(apps);
        if let Some(approvers) = &args.approvers {
            policy["approvers"] = serde_json::json!(approvers);
        }
        if let Some(age) = args.max_age {
            let ms = u64::try_from(age.as_millis())
                .map_err(|_| anyhow::anyhow!("--max-age: at most 90d"))?;
            policy["max_report_age_ms"] = ms.into();
        }
        if changed {
            client.call(Method::PUT, "/certify/policy", &policy).await?;
        }
        client::print_outcome(args.json, &policy, || {
            format!(
                "{}approvers: {}\nmax report age: {} h\nproduction (go-live gate): {}\nproduction apps (go-live gate): {}",
                if changed { "go-live policy set\n" } else { "" },
                policy["approvers"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
                policy["max_report_age_ms"].as_u64().unwrap_or(0) / 3_600_000,
                if policy["production"].as_bool() == Some(true) {
                    "on"
                } else {
                    "off"
                },
                if apps.is_empty() {
                    "none".to_string()
                } else {
                    apps.join(", ")
                }
            )
        });
        Ok(())
    })
}

pub fn waive(args: WaiveArgs) -> Result<()> {
    super::check_criterion(&args.criterion)?;
    let lasts = crate::units::parse_duration(&args.lasts)
        .map_err(|e| anyhow::anyhow!("--for `{}`: {e}", args.lasts))?;
    let expires = cluster::unix_now_ms() + lasts.as_millis() as u64;
    let client = Client::new(&args.api)?;
    client::block_on(client.call(
        Method::PUT,
        &format!("/certify/waivers/{}", args.criterion),
        &serde_json::json!({ "reason": args.reason, "expires_unix_ms": expires }),
    ))?;
    println!(
        "waived {} until unix ms {expires} ({}); it shows as `waived`, never as passed",
        args.criterion, args.lasts
    );
    Ok(())
}

pub fn unwaive(args: UnwaiveArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    client::block_on(client.delete(&format!("/certify/waivers/{}", args.criterion)))?;
    println!("ended the waiver of {}", args.criterion);
    Ok(())
}

fn read_report(path: &Path) -> Result<(Report, Value)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let report = Report::parse(&bytes).with_context(|| format!("{}", path.display()))?;
    let value = serde_json::from_slice(&bytes)?;
    Ok((report, value))
}

/// Records `report` in the store; its sha256.
pub async fn record_report(client: &Client, report: &Value) -> Result<String> {
    #[derive(Deserialize)]
    struct Recorded {
        sha256: String,
    }
    let recorded: Recorded = client.post("/certify/reports", report).await?;
    Ok(recorded.sha256)
}

pub fn record(args: RecordArgs) -> Result<()> {
    let (_, value) = read_report(&args.report)?;
    let client = Client::new(&args.api)?;
    let sha = client::block_on(record_report(&client, &value))?;
    println!("recorded report {sha} as the latest");
    Ok(())
}

pub fn sign_off(args: SignOffArgs) -> Result<()> {
    let (report, value) = read_report(&args.report)?;
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_to_string(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    } else {
        std::env::var("DWCP_PASSWORD")
            .context("no password: pass --password-stdin or set DWCP_PASSWORD")?
    };
    client::block_on(async {
        let client = Client::login(&args.api, &args.user, &password, Some(&args.totp)).await?;
        if !client.session_mfa() {
            bail!(
                "user `{}` logged in without TOTP (none confirmed): a sign-off needs `dwcp user totp` and `dwcp user totp-confirm` first",
                args.user
            );
        }
        record_report(&client, &value).await?;
        client
            .call(
                Method::POST,
                "/certify/sign-offs",
                &serde_json::json!({ "sha256": report.sha256, "role": args.role }),
            )
            .await?;
        println!(
            "signed report {} as {} (user {}); `dwcp certify status` shows who is missing",
            report.sha256, args.role, args.user
        );
        Ok(())
    })
}

pub fn status(args: StatusArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    client::block_on(client.print("/certify", args.json, |s: &Value| status_text(s)))?;
    Ok(())
}

pub fn waivers(args: WaiversArgs) -> Result<()> {
    let client = Client::new(&args.api)?;
    client::block_on(client.print("/certify/waivers", args.json, |w: &Value| {
        waivers_text(w["waivers"].as_array().map_or(&[][..], Vec::as_slice))
    }))?;
    Ok(())
}

fn waivers_text(waivers: &[Value]) -> String {
    let mut rows = Vec::new();
    for w in waivers {
        rows.push(vec![
            w["criterion"].as_str().unwrap_or("").into(),
            if w["in_force"].as_bool() == Some(true) {
                "in force".into()
            } else {
                "lapsed".into()
            },
            w["expires_unix_ms"].to_string(),
            w["by"].as_str().unwrap_or("").into(),
            w["reason"].as_str().unwrap_or("").into(),
        ]);
    }
    table::render(
        &["CRITERION", "STATE", "EXPIRES_UNIX_MS", "BY", "REASON"],
        &rows,
    )
}

/// `dwcp certify status` as text.
fn status_text(s: &Value) -> String {
    let mut out = String::new();
    match s["latest"].as_object() {
        None => out.push_str("no report recorded: run `dwcp certify --api URL --token ADMIN`\n"),
        Some(l) => {
            out.push_str(&format!(
                "latest report {} ({}{}), score {} of 100 over {} criteria, started unix ms {}, recorded by {}\n",
                l["sha256"].as_str().unwrap_or(""),
                l["target"].as_str().unwrap_or(""),
                if l["partial"].as_bool() == Some(true) { ", partial" } else { "" },
                l["score"],
                l["criteria"],
                l["started_unix_ms"],
                l["by"].as_str().unwrap_or("")
            ));
            let not_passed: Vec<&str> = l["not_passed"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !not_passed.is_empty() {
                out.push_str(&format!("not passed: {}\n", not_passed.join(", ")));
            }
        }
    }
    for so in s["sign_offs"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "signed as {} by {} at unix ms {}\n",
            so["role"].as_str().unwrap_or(""),
            so["by"].as_str().unwrap_or(""),
            so["unix_ms"]
        ));
    }
    let missing: Vec<&str> = s["missing"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str(&if missing.is_empty() {
        "sign-offs: complete\n".to_string()
    } else {
        format!("sign-offs missing: {}\n", missing.join(", "))
    });
    if let Some(why) = s["refusal"].as_str() {
        out.push_str(&format!("cannot be signed now: {why}\n"));
    }
    let apps = strings(&s["policy"]["production_apps"]);
    let gated = if s["policy"]["production"].as_bool() == Some(true) {
        Some("production".to_string())
    } else if !apps.is_empty() {
        Some(format!("production apps: {}", apps.join(", ")))
    } else {
        None
    };
    if let Some(gated) = gated {
        out.push_str(&match s["gate"].as_str() {
            None => format!("go-live gate ({gated}): open\n"),
            Some(why) => format!("go-live gate ({gated}): closed: {why}\n"),
        });
    }
    let lapsed: Vec<&str> = s["lapsed"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !lapsed.is_empty() {
        out.push_str(&format!("lapsed waivers: {}\n", lapsed.join(", ")));
    }
    let waivers = s["waivers"].as_array().map_or(&[][..], Vec::as_slice);
    if !waivers.is_empty() {
        out.push_str(&waivers_text(waivers));
    }
    out
}

/// The strings of a JSON array (none if it is not one).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}
