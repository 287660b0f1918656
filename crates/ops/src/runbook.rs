//! Runbooks: Markdown files whose front matter — TOML between `+++` lines,
//! as Hugo and Zola write it — names the alerts they answer:
//!
//! ```text
//! +++
//! title = "An SLO burns its error budget fast"
//! alerts = ["SloBurnRateFast"]
//! severity = "page"
//! owner = "platform"
//! +++
//! # What it means
//! ...
//! ```
//!
//! [`parse`] checks the whole file before anything is stored; its errors
//! name the field (or `front matter`) and what is allowed.

use serde::Deserialize;

/// A runbook's front matter.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    pub title: String,
    /// The alerts it answers, by name (e.g. `SloBurnRateFast`).
    pub alerts: Vec<String>,
    /// `page` or `ticket`, for readers; alerts carry their own severity.
    #[serde(default)]
    pub severity: Option<String>,
    /// Who keeps it up to date.
    #[serde(default)]
    pub owner: Option<String>,
}

/// A runbook that cannot be stored, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RunbookError {
    pub field: String,
    pub message: String,
}

fn error(field: &str, message: impl Into<String>) -> RunbookError {
    RunbookError {
        field: field.into(),
        message: message.into(),
    }
}

const FENCE: &str = "+++";

/// Reads and checks a runbook's text: its front matter and its size.
pub fn parse(text: &str) -> Result<FrontMatter, RunbookError> {
    let allowed = "a runbook starts with a line `+++`, then TOML with `title` and `alerts`, then a line `+++`, then Markdown";
    let mut lines = text.split_inclusive('\n');
    if lines.next().map(str::trim_end) != Some(FENCE) {
        return Err(error("front matter", format!("missing; {allowed}")));
    }
    let mut front = String::new();
    let mut closed = false;
    for line in lines {
        if line.trim_end() == FENCE {
            closed = true;
            break;
        }
        front.push_str(line);
    }
    if !closed {
        return Err(error(
            "front matter",
            format!("never closed by a line `+++`; {allowed}"),
        ));
    }
    let matter: FrontMatter = toml::from_str(&front).map_err(|e| {
        let message = e.message().trim().to_string();
        error(
            &field_of(&e, &front),
            format!("{message} (the front matter is TOML: title = \"...\", alerts = [\"...\"])"),
        )
    })?;
    if let Some(s) = &matter.severity
        && s != "page"
        && s != "ticket"
    {
        return Err(error(
            "severity",
            format!("`{s}` is not allowed: page or ticket"),
        ));
    }
    state::check_runbook(&matter.title, &matter.alerts, text)
        .map_err(|r| error(r.field().unwrap_or("runbook"), r.to_string()))?;
    Ok(matter)
}

/// The key a TOML error is about: the one serde names ("unknown field
/// `x`", "missing field `x`"), else the key on the line the error points
/// at, else the front matter as a whole.
fn field_of(e: &toml::de::Error, front: &str) -> String {
    let message = e.message();
    for prefix in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((name, _)) = rest.split_once('`')
        {
            return name.chars().take(60).collect();
        }
    }
    e.span()
        .and_then(|span| {
            let line_start = front[..span.start.min(front.len())]
                .rfind('\n')
                .map_or(0, |i| i + 1);
            let line = front[line_start..].lines().next()?;
            let (key, _) = line.split_once('=')?;
            let key = key.trim();
            ["title", "alerts", "severity", "owner"]
                .contains(&key)
                .then(|| key.to_string())
        })
        .unwrap_or_else(|| "front matter".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_is_read_and_bad_ones_name_the_field() {
        let good = "+++\ntitle = \"Node down\"\nalerts = [\"NodeDown\", \"NodeFlapping\"]\nseverity = \"page\"\n+++\n# What it means\n";
        let m = parse(good).unwrap();
        assert_eq!(m.title, "Node down");
        assert_eq!(m.alerts, ["NodeDown", "NodeFlapping"]);
        for (text, field, says) in [
            ("# no front matter\n", "front matter", "missing"),
            (
                "+++\ntitle = \"x\"\nalerts = [\"A\"]\n# never closed\n",
                "front matter",
                "never closed",
            ),
            ("+++\ntitle = \"x\"\n+++\n", "alerts", "missing field"),
            ("+++\nalerts = [\"A\"]\n+++\n", "title", "missing field"),
            (
                "+++\ntitle = \"x\"\nalerts = [\"A\"]\ncolour = 1\n+++\n",
                "colour",
                "unknown field",
            ),
            (
                "+++\ntitle = \"x\"\nalerts = \"A\"\n+++\n",
                "alerts",
                "invalid type",
            ),
            (
                "+++\ntitle = \"x\nalerts = [\"A\"]\n+++\n",
                "title",
                "invalid basic string",
            ),
            (
                "+++\ntitle = \"x\"\nalerts = []\n+++\n",
                "alerts",
                "1 to 100",
            ),
            (
                "+++\ntitle = \"x\"\nalerts = [\"no spaces\"]\n+++\n",
                "alerts",
                "letters, digits",
            ),
            (
                "+++\ntitle = \"x\"\nalerts = [\"A\"]\nseverity = \"urgent\"\n+++\n",
                "severity",
                "page or ticket",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.field, field, "{text:?}: {e}");
            assert!(e.message.contains(says), "{text:?}: {e}");
        }
        let huge = format!(
            "+++\ntitle = \"x\"\nalerts = [\"A\"]\n+++\n{}",
            "x".repeat(70_000)
        );
        assert_eq!(parse(&huge).unwrap_err().field, "text");
    }

    #[test]
    fn the_runbooks_in_the_repo_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../runbooks");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                let text = std::fs::read_to_string(&path).unwrap();
                parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 5, "{n} runbooks");
    }
}
