//! `dwcp autopilot pause|resume|status|enable|disable|log|explain|
//! approvals|approve|reject|undo|policy`: the autopilot's acting (issue
//! 20) — the kill switch, destructive actions applied or only proposed,
//! the decisions with their evidence, the approvals critical actions wait
//! for, taking an action back, and the policy.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::incident::time;
use crate::cli::table;

/// The autopilot's acting.
#[derive(clap::Subcommand)]
pub enum ActCommand {
    /// The kill switch: nothing more is applied, at once (decisions are
    /// still made and logged, refused by `kill_switch`), until `resume`.
    Pause(Plain),
    /// Lift the kill switch.
    Resume(Plain),
    /// The switches, and the nodes the autopilot cordoned or drained.
    Status(Plain),
    /// Apply a class of actions: `destructive` (drain, roll back, scale in,
    /// fail over, ...). Until then they are only proposed (a dry run).
    Enable(ClassArgs),
    /// Back to proposing a class of actions only.
    Disable(ClassArgs),
    /// The decisions, newest first: acted, proposed, refused, declined.
    Log(LogArgs),
    /// One decision: its evidence, the guardrails' checks with their
    /// values, the alternatives, the counterfactual and what it applied.
    Explain(IdArgs),
    /// Actions waiting for a person, then the answered ones.
    Approvals(Plain),
    /// Approve an action waiting for a person (admin; TOTP for a session).
    Approve(IdArgs),
    /// Reject an action waiting for a person.
    Reject(IdArgs),
    /// Take back the action a decision applied (its undo, checked against
    /// the guardrails).
    Undo(IdArgs),
    /// The policy: which actions answer which trouble.
    Policy(PolicyArgs),
}

#[derive(clap::Args)]
pub struct Plain {
    /// Print the API's JSON instead.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(clap::Args)]
pub struct ClassArgs {
    /// The class of actions: `destructive` (notify and prepare actions are
    /// always applied).
    class: String,
    /// Print the API's JSON instead.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(clap::Args)]
pub struct LogArgs {
    /// At most this many, newest first (1 to 500).
    #[arg(long, default_value_t = 30)]
    limit: u32,
    /// Only the decisions about this tenant's apps and versions.
    #[arg(long)]
    tenant: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(clap::Args)]
pub struct IdArgs {
    /// The decision's number (an approval has its decision's).
    id: u64,
    /// Print the API's JSON instead.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(clap::Subcommand)]
enum PolicyCommand {
    /// The policy in force (the defaults, or the one set).
    Show(Plain),
    /// Replace the policy with a TOML file, checked whole: an error names
    /// the rule and the field, and nothing of a bad file is used.
    Set(SetArgs),
    /// Back to the defaults.
    Reset(Plain),
}

#[derive(clap::Args)]
struct SetArgs {
    /// The policy file (TOML: `[[rule]]` tables).
    file: std::path::PathBuf,
    /// Print the API's JSON instead.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

pub fn run(command: ActCommand) -> Result<()> {
    match command {
        ActCommand::Pause(a) => controls(&a, json!({"paused": true})),
        ActCommand::Resume(a) => controls(&a, json!({"paused": false})),
        ActCommand::Status(a) => {
            let client = Client::new(&a.api)?;
            Ok(client::block_on(client.print(
                "/autopilot/controls",
                a.json,
                |v: &Value| render_controls(v) + "\n",
            ))?)
        }
        ActCommand::Enable(a) => class(a, true),
        ActCommand::Disable(a) => class(a, false),
        ActCommand::Log(a) => {
            if !(1..=500).contains(&a.limit) {
                bail!("--limit: 1 to 500 decisions");
            }
            let client = Client::new(&a.api)?;
            let path = match &a.tenant {
                Some(t) => format!("/tenants/{t}/autopilot/decisions?limit={}", a.limit),
                None => format!("/autopilot/decisions?limit={}", a.limit),
            };
            Ok(client::block_on(client.print(&path, a.json, render_log))?)
        }
        ActCommand::Explain(a) => {
            let client = Client::new(&a.api)?;
            let path = format!("/autopilot/decisions/{}", a.id);
            Ok(client::block_on(client.print(&path, a.json, render_one))?)
        }
        ActCommand::Approvals(a) => {
            let client = Client::new(&a.api)?;
            Ok(client::block_on(client.print(
                "/autopilot/approvals",
                a.json,
                render_approvals,
            ))?)
        }
        ActCommand::Approve(a) => answer(&a, &format!("approvals/{}/approve", a.id)),
        ActCommand::Reject(a) => answer(&a, &format!("approvals/{}/reject", a.id)),
        ActCommand::Undo(a) => answer(&a, &format!("decisions/{}/undo", a.id)),
        ActCommand::Policy(p) => policy(p.command),
    }
}

fn controls(a: &Plain, body: Value) -> Result<()> {
    let client = Client::new(&a.api)?;
    let after: Value = client::block_on(client.put("/autopilot/controls", &body))?;
    client::print_outcome(a.json, &after, || render_controls(&after));
    Ok(())
}

fn class(a: ClassArgs, on: bool) -> Result<()> {
    if a.class != "destructive" {
        bail!(
            "class `{}`: only `destructive` can be enabled or disabled (notify and prepare actions are always applied; `dwcp autopilot pause` stops everything)",
            a.class
        );
    }
    controls(
        &Plain {
            json: a.json,
            api: a.api,
        },
        json!({"destructive_enabled": on}),
    )
}

fn render_controls(v: &Value) -> String {
    let mut out = format!(
        "autopilot: {}; destructive actions {}",
        if v["paused"].as_bool() == Some(true) {
            "paused (nothing is applied)"
        } else {
            "running"
        },
        if v["destructive_enabled"].as_bool() == Some(true) {
            "applied"
        } else {
            "only proposed (dry run)"
        }
    );
    if let Some(s) = v["schedules"].as_object().filter(|s| !s.is_empty()) {
        let nodes: Vec<String> = s
            .iter()
            .map(|(n, how)| format!("{n} {}", how.as_str().unwrap_or("?")))
            .collect();
        out += &format!("; nodes: {}", nodes.join(", "));
    }
    out
}

fn answer(a: &IdArgs, path: &str) -> Result<()> {
    let client = Client::new(&a.api)?;
    let after: Value = client::block_on(client.post(&format!("/autopilot/{path}"), &json!({})))?;
    client::print_outcome(a.json, &after, || render_one(&after));
    Ok(())
}

fn policy(command: PolicyCommand) -> Result<()> {
    match command {
        PolicyCommand::Show(a) => {
            let client = Client::new(&a.api)?;
            Ok(client::block_on(client.print(
                "/autopilot/policy",
                a.json,
                render_policy,
            ))?)
        }
        PolicyCommand::Set(a) => {
            let text = std::fs::read_to_string(&a.file)
                .with_context(|| format!("reading {}", a.file.display()))?;
            // Checked here first, so the error names the file's rule and
            // field without a round trip; the API checks it again.
            autopilot::act::Policy::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))?;
            let client = Client::new(&a.api)?;
            let after: Value =
                client::block_on(client.put_text("/autopilot/policy", "text/plain", text))?;
            client::print_outcome(a.json, &after, || {
                format!(
                    "stored the policy: {} rules",
                    after["policy"]["rules"].as_array().map_or(0, Vec::len)
                )
            });
            Ok(())
        }
        PolicyCommand::Reset(a) => {
            let client = Client::new(&a.api)?;
            let after: Value = client::block_on(client.put_text(
                "/autopilot/policy",
                "text/plain",
                String::new(),
            ))?;
            client::print_outcome(a.json, &after, || {
                "the policy is the defaults again".to_string()
            });
            Ok(())
        }
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn render_log(v: &Value) -> String {
    let decisions = v["decisions"].as_array().cloned().unwrap_or_default();
    if decisions.is_empty() {
        return "no decisions yet\n".into();
    }
    let rows: Vec<Vec<String>> = decisions
        .iter()
        .map(|d| {
            vec![
                d["id"].to_string(),
                time(&d["at_ms"]),
                str_of(&d["outcome"]),
                str_of(&d["class"]),
                str_of(&d["place"]),
                d["action"].as_str().unwrap_or("-").to_string(),
                str_of(&d["why"]),
            ]
        })
        .collect();
    table::render(
        &["ID", "AT", "OUTCOME", "TROUBLE", "WHERE", "ACTION", "WHY"],
        &rows,
    )
}

/// The state of an approval (`asked`, `approved by ann`, ...).
fn approval_state(state: &Value) -> String {
    match state {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .iter()
            .next()
            .map(|(k, v)| match v["by"].as_str() {
                Some(by) => format!("{k} by {by}"),
                None => k.clone(),
            })
            .unwrap_or_else(|| "?".into()),
        _ => "?".into(),
    }
}

fn render_approvals(v: &Value) -> String {
    let all = v["approvals"].as_array().cloned().unwrap_or_default();
    if all.is_empty() {
        return "no approvals\n".into();
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|r| {
            let a = &r["approval"];
            vec![
                a["decision"].to_string(),
                approval_state(&a["state"]),
                time(&a["asked_ms"]),
                describe(&a["action"]),
                a["reasons"]
                    .as_array()
                    .map(|rs| rs.iter().map(str_of).collect::<Vec<_>>().join("; "))
                    .unwrap_or_default(),
                r["applied"].as_str().unwrap_or("-").to_string(),
            ]
        })
        .collect();
    table::render(
        &["ID", "STATE", "ASKED", "ACTION", "WHY A PERSON", "APPLIED"],
        &rows,
    )
}

/// An action as stored (`{"drain": {"node": …}}`), in one line.
fn describe(action: &Value) -> String {
    match action {
        Value::Object(o) => o
            .iter()
            .next()
            .map(|(k, v)| {
                let fields: Vec<String> = v
                    .as_object()
                    .map(|f| {
                        f.iter()
                            .map(|(n, x)| format!("{n}={}", str_of(x)))
                            .collect()
                    })
                    .unwrap_or_default();
                format!("{k} {}", fields.join(" "))
            })
            .unwrap_or_default(),
        Value::Null => "-".into(),
        other => str_of(other),
    }
}

fn render_one(v: &Value) -> String {
    let s = &v["summary"];
    let d = &v["decision"];
    let e = &d["evidence"];
    let t = &e["trouble"];
    let mut out = format!(
        "decision {} at {}: {}{}\n",
        s["id"],
        time(&s["at_ms"]),
        str_of(&s["outcome"]),
        s["action"]
            .as_str()
            .map_or(String::new(), |a| format!(" — {a}")),
    );
    out += &format!("why: {}\n", str_of(&s["why"]));
    out += &format!(
        "trouble: {} on {} ({}, score {}), from {}\n",
        str_of(&s["class"]),
        str_of(&s["place"]),
        str_of(&t["basis"]),
        t["score"],
        str_of(&t["source"]),
    );
    let sig = &t["signal"];
    out += &format!(
        "signal: {} = {}{}{}\n",
        str_of(&sig["series"]),
        sig["observed"],
        match (sig["band_low"].as_f64(), sig["band_high"].as_f64()) {
            (Some(l), Some(h)) => format!(", band [{l}, {h}]"),
            _ => String::new(),
        },
        sig["limit"]
            .as_f64()
            .map_or(String::new(), |l| format!(", limit {l}")),
    );
    out += &format!(
        "rule: {}\n",
        e["rule"]["name"]
            .as_str()
            .unwrap_or("none (no rule answers it)")
    );
    out += &format!(
        "switches: {}; destructive actions {}\n",
        if e["controls"]["paused"].as_bool() == Some(true) {
            "paused"
        } else {
            "running"
        },
        if e["controls"]["destructive_enabled"].as_bool() == Some(true) {
            "enabled"
        } else {
            "not enabled"
        },
    );
    let considered = d["considered"].as_array().cloned().unwrap_or_default();
    if !considered.is_empty() {
        out += "considered:\n";
    }
    for c in considered {
        out += &format!(
            "  {} ({}) — {}\n",
            str_of(&c["kind"]),
            describe(&c["action"]),
            str_of(&c["note"])
        );
        for check in c["checks"].as_array().into_iter().flatten() {
            out += &format!(
                "    {:<16} {:>12}  soft {:<10} limit {:<10} {}\n",
                str_of(&check["guardrail"]),
                check["value"].to_string(),
                check["soft"].to_string(),
                check["limit"].to_string(),
                str_of(&check["verdict"])
            );
        }
    }
    out += &format!("counterfactual: {}\n", str_of(&d["counterfactual"]));
    if let Some(g) = d["refused_at_commit"].as_str() {
        out += &format!("refused when stored: the store checked again and {g} said no\n");
    }
    if let Some(r) = v.get("approval").filter(|a| !a.is_null()) {
        let a = &r["approval"];
        out += &format!(
            "approval: {} (asked {}){}{}\n",
            approval_state(&a["state"]),
            time(&a["asked_ms"]),
            if a["safe_default"].is_null() {
                "; safe default: nothing".to_string()
            } else {
                format!("; safe default: {}", describe(&a["safe_default"]))
            },
            r["applied"]
                .as_str()
                .map_or(String::new(), |x| format!("; applied: {x}")),
        );
    }
    for entry in v["applied"].as_array().into_iter().flatten() {
        out += &format!(
            "applied at {}: {} — {}\n",
            time(&entry["at_ms"]),
            describe(&entry["action"]),
            str_of(&entry["state"])
        );
    }
    out
}

fn render_policy(v: &Value) -> String {
    let rules = v["policy"]["rules"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = rules
        .iter()
        .map(|r| {
            vec![
                str_of(&r["name"]),
                str_of(&r["on"]),
                str_of(&r["basis"]),
                r["actions"]
                    .as_array()
                    .map(|a| a.iter().map(str_of).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default(),
                r["min_score"].to_string(),
                r["cooldown_s"].to_string(),
                if r["dry_run"].as_bool() == Some(true) {
                    "yes".into()
                } else {
                    "no".into()
                },
            ]
        })
        .collect();
    format!(
        "policy: {}\n{}",
        str_of(&v["source"]),
        table::render(
            &[
                "RULE",
                "ON",
                "BASIS",
                "ACTIONS",
                "MIN SCORE",
                "COOLDOWN S",
                "DRY RUN"
            ],
            &rows
        )
    )
}
