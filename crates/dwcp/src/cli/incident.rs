//! `dwcp incident list|show|ack|resolve|note`: the incidents SLO alerts
//! opened, their timelines and runbooks, and the steps operators take.

use anyhow::Result;
use serde_json::{Value, json};

use crate::cli::client::{self, ApiArgs, Client};
use crate::cli::table;

/// Follow and steer incidents: opened by SLO alerts (one per alert while
/// it is unresolved; firing again adds to its timeline), acknowledged by
/// whoever takes it, resolved when it is over. Times to acknowledge (TTA)
/// and to resolve (TTR) are computed from the timeline; `show` prints the
/// runbooks whose front matter names the incident's alert.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
  dwcp incident list                 # unresolved ones (open or acknowledged)\n  \
  dwcp incident list --status all\n  \
  dwcp incident show 3               # timeline, TTA/TTR and runbooks\n  \
  dwcp incident ack 3\n  \
  dwcp incident note 3 \"rolled back to version 4\"\n  \
  dwcp incident resolve 3 --text \"bad canary; fixed in v6\"")]
pub struct IncidentArgs {
    #[command(subcommand)]
    command: IncidentCommand,
}

#[derive(clap::Subcommand)]
enum IncidentCommand {
    List(ListArgs),
    Show(ShowArgs),
    /// Acknowledge an open incident: you are on it (stops the TTA clock).
    Ack(ShowArgs),
    Resolve(ResolveArgs),
    Note(NoteArgs),
}

/// List incidents, newest first.
#[derive(clap::Args)]
struct ListArgs {
    /// open, acknowledged, resolved, unresolved (open or acknowledged) or all.
    #[arg(long, default_value = "unresolved")]
    status: String,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Show an incident: its timeline, TTA/TTR and runbooks.
#[derive(clap::Args)]
struct ShowArgs {
    /// The incident's number.
    id: u64,
    /// Print the API's JSON instead.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Resolve an open or acknowledged incident (stops the TTR clock).
#[derive(clap::Args)]
struct ResolveArgs {
    id: u64,
    /// What ended it, for the timeline.
    #[arg(long)]
    text: Option<String>,
    #[command(flatten)]
    api: ApiArgs,
}

/// Add a note to an incident's timeline.
#[derive(clap::Args)]
struct NoteArgs {
    id: u64,
    /// The note.
    text: String,
    #[command(flatten)]
    api: ApiArgs,
}

pub fn run(args: IncidentArgs) -> Result<()> {
    match args.command {
        IncidentCommand::List(args) => {
            let client = Client::new(&args.api)?;
            let path = format!("/incidents?status={}", args.status);
            Ok(client::block_on(client.print(
                &path,
                args.json,
                render_list,
            ))?)
        }
        IncidentCommand::Show(args) => {
            let client = Client::new(&args.api)?;
            let path = format!("/incidents/{}", args.id);
            Ok(client::block_on(
                client.print(&path, args.json, render_one),
            )?)
        }
        IncidentCommand::Ack(args) => step(&args.api, args.id, "acknowledge", json!({})),
        IncidentCommand::Resolve(args) => {
            let body = match args.text {
                Some(text) => json!({ "text": text }),
                None => json!({}),
            };
            step(&args.api, args.id, "resolve", body)
        }
        IncidentCommand::Note(args) => {
            let client = Client::new(&args.api)?;
            let after: Value = client::block_on(client.post(
                &format!("/incidents/{}/notes", args.id),
                &json!({"text": args.text}),
            ))?;
            println!("{}", noted(args.id, &args.text, &after));
            Ok(())
        }
    }
}

fn step(api: &ApiArgs, id: u64, what: &str, body: Value) -> Result<()> {
    let client = Client::new(api)?;
    let after: Value = client::block_on(client.post(&format!("/incidents/{id}/{what}"), &body))?;
    println!(
        "incident {id} is {}{}{}",
        after["status"].as_str().unwrap_or("?"),
        after["time_to_acknowledge_ms"]
            .as_u64()
            .map_or(String::new(), |ms| format!("; TTA {}", duration(ms))),
        after["time_to_resolve_ms"]
            .as_u64()
            .map_or(String::new(), |ms| format!("; TTR {}", duration(ms))),
    );
    Ok(())
}

/// What `dwcp incident note` prints: the note as stored, and where the
/// incident stands.
fn noted(id: u64, text: &str, after: &Value) -> String {
    let entries = after["timeline"].as_array().map_or(0, Vec::len);
    format!(
        "added a note to incident {id} ({}, {} in its timeline): {text}",
        after["status"].as_str().unwrap_or("?"),
        client::plural(entries as u64, "entry").replace("entrys", "entries"),
    )
}

/// `1h 2m 3s`, `4m 0s`, `5s`.
fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m {sec}s"),
        (h, m, sec) => format!("{h}h {m}m {sec}s"),
    }
}

/// A Unix-ms field as RFC 3339, `-` when absent.
pub(crate) fn time(v: &Value) -> String {
    v.as_u64().map_or("-".into(), ops::slo::rfc3339::format_ms)
}

fn render_list(list: &Value) -> String {
    let incidents = list["incidents"].as_array().cloned().unwrap_or_default();
    if incidents.is_empty() {
        return "no incidents\n".into();
    }
    let rows: Vec<Vec<String>> = incidents
        .iter()
        .map(|i| {
            vec![
                i["id"].to_string(),
                i["status"].as_str().unwrap_or("?").into(),
                i["severity"].as_str().unwrap_or("?").into(),
                i["alert"].as_str().unwrap_or("?").into(),
                format!(
                    "{}/{}/{}",
                    i["tenant"].as_str().unwrap_or("?"),
                    i["app"].as_str().unwrap_or("?"),
                    i["slo"].as_str().unwrap_or("?")
                ),
                time(&i["opened_unix_ms"]),
                i["time_to_acknowledge_ms"]
                    .as_u64()
                    .map_or("-".into(), duration),
                i["time_to_resolve_ms"]
                    .as_u64()
                    .map_or("-".into(), duration),
            ]
        })
        .collect();
    table::render(
        &[
            "ID", "STATUS", "SEVERITY", "ALERT", "SLO", "OPENED", "TTA", "TTR",
        ],
        &rows,
    )
}

fn render_one(i: &Value) -> String {
    let mut out = format!(
        "incident {}: {} ({}), {}\nalert: {}  slo: {}/{}/{}\nfingerprint: {}\nopened: {}\n",
        i["id"],
        i["status"].as_str().unwrap_or("?"),
        i["severity"].as_str().unwrap_or("?"),
        i["alert"].as_str().unwrap_or("?"),
        i["alert"].as_str().unwrap_or("?"),
        i["tenant"].as_str().unwrap_or("?"),
        i["app"].as_str().unwrap_or("?"),
        i["slo"].as_str().unwrap_or("?"),
        i["fingerprint"].as_str().unwrap_or("?"),
        time(&i["opened_unix_ms"]),
    );
    if let Some(ms) = i["time_to_acknowledge_ms"].as_u64() {
        out.push_str(&format!(
            "acknowledged: {} by {} (TTA {})\n",
            time(&i["acknowledged_unix_ms"]),
            i["acknowledged_by"].as_str().unwrap_or("-"),
            duration(ms)
        ));
    }
    if let Some(ms) = i["time_to_resolve_ms"].as_u64() {
        out.push_str(&format!(
            "resolved: {} by {} (TTR {})\n",
            time(&i["resolved_unix_ms"]),
            i["resolved_by"].as_str().unwrap_or("-"),
            duration(ms)
        ));
    }
    out.push_str("\ntimeline:\n");
    if let Some(n) = i["timeline_dropped"].as_u64().filter(|&n| n > 0) {
        out.push_str(&format!("  ({n} older entries dropped)\n"));
    }
    for e in i["timeline"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {}  {}  {}\n",
            time(&e["unix_ms"]),
            e["who"].as_str().unwrap_or("?"),
            e["text"].as_str().unwrap_or("")
        ));
    }
    let runbooks = i["runbooks"].as_array().cloned().unwrap_or_default();
    if runbooks.is_empty() {
        out.push_str(&format!(
            "\nno runbook answers {}; add one with `dwcp runbook put FILE.md` (alerts = [\"{}\"] in its front matter)\n",
            i["alert"].as_str().unwrap_or("?"),
            i["alert"].as_str().unwrap_or("?")
        ));
    }
    for r in runbooks {
        out.push_str(&format!(
            "\n── runbook {}: {} ──\n{}\n",
            r["name"].as_str().unwrap_or("?"),
            r["title"].as_str().unwrap_or("?"),
            r["text"].as_str().unwrap_or("").trim_end()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_note_says_what_was_added() {
        let after = serde_json::json!({"status": "acknowledged", "timeline": [{}, {}, {}]});
        assert_eq!(
            super::noted(3, "rolled back to version 4", &after),
            "added a note to incident 3 (acknowledged, 3 entries in its timeline): rolled back to version 4"
        );
    }
}
