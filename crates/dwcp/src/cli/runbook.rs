//! `dwcp runbook list|show|put|delete`: the runbooks operators read when
//! an alert fires, stored in the cluster (see `runbooks/` for examples).

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Deserialize;
use state::{Name, Runbook};

use crate::cli::client::{self, ApiArgs, Client, ListArgs};
use crate::cli::table;

/// Store, list and read runbooks: Markdown files whose front matter (TOML
/// between `+++` lines) names the alerts they answer.
///
/// A runbook is shown on the incidents its alerts open. Its front matter
/// has `title` and `alerts` (names of alerts), and optionally `severity`
/// (page or ticket) and `owner`; the rest is Markdown. The repository's
/// `runbooks/` holds DWCP's own.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp runbook put runbooks/*.md\n  dwcp runbook list\n  dwcp runbook show node-down\n  dwcp runbook delete node-down\n\nA runbook file:\n  +++\n  title = \"A node stopped reporting\"\n  alerts = [\"NodeDown\"]\n  severity = \"page\"\n  +++\n  # What it means\n  ..."
)]
pub struct RunbookArgs {
    #[command(subcommand)]
    command: RunbookCommand,
}

#[derive(clap::Subcommand)]
enum RunbookCommand {
    /// List the runbooks with the alerts each answers.
    List(ListArgs),
    Show(ShowArgs),
    Put(PutArgs),
    Delete(ShowArgs),
}

/// Print a runbook (or delete it, as `delete`).
#[derive(clap::Args)]
struct ShowArgs {
    /// The runbook's name (its file name without `.md` when it was put).
    name: String,
    #[command(flatten)]
    api: ApiArgs,
}

/// Store runbook files, each under its file name without `.md` (checked
/// first: a file whose front matter is broken is refused, and nothing of
/// it is stored).
#[derive(clap::Args)]
struct PutArgs {
    /// Markdown files with front matter.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Deserialize)]
struct List {
    runbooks: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    name: String,
    title: String,
    alerts: Vec<String>,
}

pub fn run(args: RunbookArgs) -> Result<()> {
    match args.command {
        RunbookCommand::List(args) => {
            let client = Client::new(&args.api)?;
            Ok(client::block_on(client.print(
                "/runbooks",
                args.json,
                render,
            ))?)
        }
        RunbookCommand::Show(args) => {
            let name = Name::new("NAME", &args.name)?;
            let client = Client::new(&args.api)?;
            let runbook: Runbook = client::block_on(client.get(&format!("/runbooks/{name}")))?;
            print!("{}", runbook.text);
            Ok(())
        }
        RunbookCommand::Delete(args) => {
            let name = Name::new("NAME", &args.name)?;
            let client = Client::new(&args.api)?;
            client::block_on(client.delete(&format!("/runbooks/{name}")))?;
            println!("deleted runbook {name}");
            Ok(())
        }
        RunbookCommand::Put(args) => put(args),
    }
}

fn put(args: PutArgs) -> Result<()> {
    // Every file is read and checked before the first is sent.
    let mut checked = Vec::new();
    for file in &args.files {
        let shown = file.display();
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .with_context(|| format!("{shown}: no file name"))?;
        let name = Name::new("runbook file name", stem)
            .with_context(|| format!("{shown}: the file name is the runbook's name"))?;
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {shown}"))?;
        ops::runbook::parse(&text).with_context(|| format!("{shown}"))?;
        checked.push((name, text));
    }
    let client = Client::new(&args.api)?;
    client::block_on(async {
        for (name, text) in checked {
            let stored: Runbook = client
                .put_text(&format!("/runbooks/{name}"), "text/markdown", text)
                .await?;
            println!(
                "stored runbook {} ({}), for {}",
                stored.name,
                stored.title,
                stored.alerts.join(", ")
            );
        }
        Ok(())
    })
}

fn render(list: &List) -> String {
    if list.runbooks.is_empty() {
        return "no runbooks; store some with `dwcp runbook put FILE.md`\n".into();
    }
    let rows: Vec<Vec<String>> = list
        .runbooks
        .iter()
        .map(|r| vec![r.name.clone(), r.alerts.join(","), r.title.clone()])
        .collect();
    table::render(&["NAME", "ALERTS", "TITLE"], &rows)
}
