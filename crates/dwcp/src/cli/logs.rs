//! `dwcp logs APP [--follow] [--version N] [--since D]`: an app's log
//! lines from every node, through the API (`GET .../logs`, which merges
//! the nodes' rings); `--follow` asks again each second with the last
//! page's cursor.

use std::time::Duration;

use anyhow::Result;
use cluster::logs::{LogLine, LogPage, Stream};
use state::Name;

use crate::cli::client::{self, ApiArgs, Client, app_path};

/// Show an app's log lines: what its sandboxes wrote to stderr (and to
/// stdout, when that was not an HTTP response), and why requests failed.
///
/// Each line names when (UTC), the node, the version and the request id
/// (the `x-request-id` of the answer). Every node keeps its latest 10,000
/// lines; `dwcp up --app-log-file FILE` (or `--log-format json`, on
/// stdout) also ships them as JSON lines. Lines of a node that does not
/// answer are missing, and a warning on stderr says so.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  dwcp logs hello\n  dwcp logs hello --follow\n  dwcp logs hello --version 2 --since 10m\n  dwcp logs hello --json | jq -r .text"
)]
pub struct LogsArgs {
    /// The app.
    app: String,
    /// Keep printing new lines as they come (until interrupted).
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only this version's lines.
    #[arg(long, value_name = "N")]
    version: Option<u64>,
    /// Only lines of the last DURATION (e.g. 30s, 10m, 2h).
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    since: Option<Duration>,
    /// How many of the newest lines to show first (1 to 1000).
    #[arg(long, short = 'n', value_name = "N", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    lines: u64,
    /// The tenant that owns the app.
    #[arg(long, value_name = "T", default_value = "default")]
    tenant: String,
    /// One JSON object a line (node, boot, seq, unix_ms, tenant, app,
    /// version, request_id, stream, text) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// How often `--follow` asks for new lines.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

pub fn run(args: LogsArgs) -> Result<()> {
    let tenant = Name::new("--tenant", &args.tenant)?;
    let app = Name::new("APP", &args.app)?;
    let client = Client::new(&args.api)?;
    let base = format!("{}/logs", app_path(&tenant, &app));
    let mut filters = format!("limit={}", args.lines);
    if let Some(v) = args.version {
        filters.push_str(&format!("&version={v}"));
    }
    if let Some(since) = args.since {
        filters.push_str(&format!("&last_ms={}", since.as_millis().max(1)));
    }
    client::block_on(async {
        let mut page: LogPage = client.get(&format!("{base}?{filters}")).await?;
        let mut warned = Vec::new();
        loop {
            for line in &page.lines {
                println!("{}", render(line, args.json));
            }
            let down: Vec<String> = page
                .unreachable
                .iter()
                .map(|u| format!("{} ({})", u.node, u.reason))
                .collect();
            if !down.is_empty() && down != warned {
                eprintln!(
                    "warning: lines of these nodes are missing, they did not answer: {}",
                    down.join(", ")
                );
            }
            warned = down;
            if !args.follow {
                return Ok(());
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
            page = client
                .get(&format!("{base}?{filters}&after={}", page.cursor))
                .await?;
        }
    })
}

/// One line as printed: `TIME NODE vVERSION REQUEST-ID [STREAM] TEXT`
/// (the stream only when it is not stderr), or its JSON.
fn render(line: &LogLine, json: bool) -> String {
    if json {
        return serde_json::to_string(line).unwrap_or_default();
    }
    let stream = match line.stream {
        Stream::Stderr => String::new(),
        other => format!("[{other}] "),
    };
    format!(
        "{} {} v{} {} {stream}{}",
        cluster::rfc3339::format_ms(line.unix_ms),
        line.node,
        line.version,
        line.request_id,
        line.text
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_printed() {
        let mut line = LogLine {
            node: "node-2".into(),
            boot: 1,
            seq: 3,
            unix_ms: 1_000,
            tenant: "default".into(),
            app: "hello".into(),
            version: 2,
            request_id: "00000000000000ff".into(),
            stream: Stream::Stderr,
            text: "starting".into(),
        };
        assert_eq!(
            render(&line, false),
            "1970-01-01T00:00:01.000Z node-2 v2 00000000000000ff starting"
        );
        line.stream = Stream::Dwcp;
        assert!(render(&line, false).ends_with("00000000000000ff [dwcp] starting"));
        let json: serde_json::Value = serde_json::from_str(&render(&line, true)).unwrap();
        assert_eq!(json["stream"], "dwcp");
        assert_eq!(json["request_id"], "00000000000000ff");
    }
}
