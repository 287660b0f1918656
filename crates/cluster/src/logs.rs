//! Apps' log lines: what a guest wrote to stderr while it answered a
//! request (and to stdout, when that was not an HTTP response), cut into
//! bounded lines that carry the request id, the app, the version and the
//! node; kept in a bounded ring per node ([`LogRing`]) and, optionally,
//! shipped as JSON lines (to a file or stdout) with the same fields.
//!
//! Reading them back is a [`LogQuery`] over one app: each node answers
//! from its own ring ([`LogRing::page`]) and the node that asked merges
//! the answers ([`merge`]) into one page, oldest first, with a [`Cursor`]
//! (per node: its ring's boot and the last line read) to ask for what
//! came after. `ClusterNode::app_logs` asks every member over the peer
//! port; this module is the data and the pure decisions.
//!
//! Invariants: a request adds at most [`MAX_REQUEST_BYTES`] per stream
//! and a line is at most [`MAX_LINE_BYTES`]; a ring holds at most
//! [`RING_LINES`] lines and [`RING_BYTES`] bytes of text, dropping the
//! oldest; a page holds at most [`MAX_PAGE_LINES`]. A failing shipping
//! sink loses its line, never the request.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io::Write;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Bytes of one stream kept per request; the rest is counted in a last
/// line saying how much was left out.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Bytes of one line kept; a longer line is cut and marked with `…`.
pub const MAX_LINE_BYTES: usize = 2 * 1024;
/// Lines a node keeps, across all apps.
pub const RING_LINES: usize = 10_000;
/// Bytes of text a node keeps, across all apps.
pub const RING_BYTES: usize = 8 << 20;
/// Lines one page holds at most.
pub const MAX_PAGE_LINES: usize = 1_000;
/// Lines a page holds when the query does not say.
pub const DEFAULT_PAGE_LINES: usize = 200;

/// Where a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The guest's standard error.
    Stderr,
    /// The guest's standard output, when it was not an HTTP response.
    Stdout,
    /// DWCP's own line about the request: why it failed (a trap and its
    /// details, a limit), which the client's 500 answer does not carry.
    Dwcp,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Stderr => "stderr",
            Stream::Stdout => "stdout",
            Stream::Dwcp => "dwcp",
        })
    }
}

/// The request a line belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    pub tenant: &'a str,
    pub app: &'a str,
    pub version: u64,
    pub request_id: &'a str,
}

/// One line of an app's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// The node that ran the request (`node-<id>`).
    pub node: String,
    /// Its ring's boot (random per process) and the line's number in it,
    /// from 1: together, where a cursor stands.
    pub boot: u64,
    pub seq: u64,
    /// When the request's output was read, by the node's clock.
    pub unix_ms: u64,
    pub tenant: String,
    pub app: String,
    pub version: u64,
    pub request_id: String,
    pub stream: Stream,
    pub text: String,
}

/// The guest's `bytes` as log lines: lossy UTF-8, split at newlines (a
/// final newline ends the last line, it does not start an empty one),
/// each line at most [`MAX_LINE_BYTES`] and all of them at most
/// [`MAX_REQUEST_BYTES`]; what is left out is said in a last line.
///
/// ```
/// let lines = cluster::logs::lines_of(b"one\ntwo\n");
/// assert_eq!(lines, ["one", "two"]);
/// ```
pub fn lines_of(bytes: &[u8]) -> Vec<String> {
    let kept = &bytes[..bytes.len().min(MAX_REQUEST_BYTES)];
    let text = String::from_utf8_lossy(kept);
    let mut lines: Vec<String> = text
        .strip_suffix('\n')
        .unwrap_or(&text)
        .split('\n')
        .map(|line| clip(line.strip_suffix('\r').unwrap_or(line), MAX_LINE_BYTES))
        .collect();
    if bytes.is_empty() {
        lines.clear();
    }
    if bytes.len() > MAX_REQUEST_BYTES {
        lines.push(format!(
            "… {} more bytes of this request's output not kept (at most {MAX_REQUEST_BYTES} per request)",
            bytes.len() - MAX_REQUEST_BYTES
        ));
    }
    lines
}

/// `text` cut to at most `max` bytes at a character boundary, with `…`
/// when cut.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Where a reader stands in one node's ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub boot: u64,
    /// The last line read (0: none).
    pub seq: u64,
}

/// Where a reader stands in every node's ring: `node:boot:seq` entries
/// joined by `,` in text (the API's `after` parameter), boot in hex.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor(pub BTreeMap<String, Position>);

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (node, p)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{node}:{:x}:{}", p.boot, p.seq)?;
        }
        Ok(())
    }
}

/// A cursor that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "cursor entry `{entry}` is not allowed: entries are NODE:BOOT:SEQ joined by `,` (the `cursor` of the previous page)"
)]
pub struct CursorError {
    pub entry: String,
}

impl std::str::FromStr for Cursor {
    type Err = CursorError;

    fn from_str(s: &str) -> Result<Cursor, CursorError> {
        let mut cursor = BTreeMap::new();
        for entry in s.split(',').filter(|e| !e.is_empty()) {
            let bad = || CursorError {
                entry: entry.chars().take(80).collect(),
            };
            let mut parts = entry.split(':');
            let (Some(node), Some(boot), Some(seq), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let boot = u64::from_str_radix(boot, 16).map_err(|_| bad())?;
            let seq = seq.parse().map_err(|_| bad())?;
            if node.is_empty() || node.len() > 63 {
                return Err(bad());
            }
            cursor.insert(node.to_string(), Position { boot, seq });
        }
        Ok(Cursor(cursor))
    }
}

/// What a reader asks of one app's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    pub tenant: String,
    pub app: String,
    /// Only this version's lines.
    #[serde(default)]
    pub version: Option<u64>,
    /// Only lines at or after this time (Unix ms).
    #[serde(default)]
    pub since_ms: Option<u64>,
    /// Only lines after these positions, oldest first ("follow"); without
    /// it, the newest lines ("tail").
    #[serde(default)]
    pub after: Option<Cursor>,
    /// Lines wanted, at most [`MAX_PAGE_LINES`].
    pub limit: usize,
}

impl LogQuery {
    fn matches(&self, line: &LogLine) -> bool {
        line.tenant == self.tenant
            && line.app == self.app
            && self.version.is_none_or(|v| v == line.version)
            && self.since_ms.is_none_or(|t| line.unix_ms >= t)
    }

    fn limit(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE_LINES)
    }
}

/// One node's answer to a [`LogQuery`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePage {
    pub node: String,
    pub lines: Vec<LogLine>,
    /// How far the node looked: a reader that takes every line of this
    /// page stands here next.
    pub head: Position,
}

/// The merged answer: lines of every node that answered, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    /// Pass it as `after` for the lines that came after this page.
    pub cursor: Cursor,
    /// Nodes that did not answer, with why: their lines are missing.
    pub unreachable: Vec<Unreachable>,
}

/// A node whose lines could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    pub node: String,
    pub reason: String,
}

/// Merges the nodes' pages: in tail mode (no `after`) the newest
/// `limit` lines, in follow mode the oldest `limit` after the cursor;
/// oldest first either way. The cursor moves, per node, past the lines
/// taken (to its `head` when all of its lines were taken); nodes that did
/// not answer keep their place.
pub fn merge(query: &LogQuery, pages: Vec<NodePage>, unreachable: Vec<Unreachable>) -> LogPage {
    let limit = query.limit();
    let mut cursor = query.after.clone().unwrap_or_default();
    let mut all: Vec<LogLine> = Vec::new();
    let mut heads = BTreeMap::new();
    for page in pages {
        heads.insert(page.node.clone(), (page.head, page.lines.len()));
        all.extend(page.lines);
    }
    all.sort_by(|a, b| (a.unix_ms, &a.node, a.seq).cmp(&(b.unix_ms, &b.node, b.seq)));
    if all.len() > limit {
        if query.after.is_some() {
            all.truncate(limit);
        } else {
            all.drain(..all.len() - limit);
        }
    }
    let mut taken: BTreeMap<&str, (Position, usize)> = BTreeMap::new();
    for line in &all {
        let entry = taken.entry(&line.node).or_default();
        entry.0 = Position {
            boot: line.boot,
            seq: entry.0.seq.max(line.seq),
        };
        entry.1 += 1;
    }
    for (node, (head, answered)) in heads {
        let position = match taken.get(node.as_str()) {
            // Some of its lines were left for the next page.
            Some((last, n)) if *n < answered && query.after.is_some() => *last,
            _ => head,
        };
        cursor.0.insert(node, position);
    }
    LogPage {
        lines: all,
        cursor,
        unreachable,
    }
}

/// One node's lines, newest last, bounded in count and bytes.
pub struct LogRing {
    node: String,
    boot: u64,
    inner: Mutex<Ring>,
    /// JSON-lines sinks every new line is written to.
    sinks: Mutex<Vec<Box<dyn Write + Send>>>,
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<LogLine>,
    bytes: usize,
    last_seq: u64,
}

impl LogRing {
    /// An empty ring of node `node` (its name, `node-<id>`), with a fresh
    /// random boot.
    pub fn new(node: &str) -> LogRing {
        let mut bytes = [0u8; 8];
        // A boot only tells one process's ring from the next; should the
        // system's randomness fail, the clock still does.
        let boot = match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => crate::unix_now_ms(),
        };
        LogRing {
            node: node.to_string(),
            boot,
            inner: Mutex::new(Ring::default()),
            sinks: Mutex::new(Vec::new()),
        }
    }

    /// The node these lines are from.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Also writes every new line to `sink`, as one JSON object a line
    /// (see [`shipped`]).
    pub fn ship_to(&self, sink: Box<dyn Write + Send>) {
        self.sinks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sink);
    }

    /// Adds what `origin`'s guest wrote on `stream` (nothing when `bytes`
    /// is empty), at `unix_ms`.
    pub fn record(&self, origin: &Origin<'_>, stream: Stream, bytes: &[u8], unix_ms: u64) {
        let texts = lines_of(bytes);
        if texts.is_empty() {
            return;
        }
        let mut added = Vec::with_capacity(texts.len());
        {
            let mut ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            for text in texts {
                ring.last_seq += 1;
                let line = LogLine {
                    node: self.node.clone(),
                    boot: self.boot,
                    seq: ring.last_seq,
                    unix_ms,
                    tenant: origin.tenant.to_string(),
                    app: origin.app.to_string(),
                    version: origin.version,
                    request_id: origin.request_id.to_string(),
                    stream,
                    text,
                };
                ring.bytes += line.text.len();
                ring.lines.push_back(line.clone());
                added.push(line);
            }
            while ring.lines.len() > RING_LINES || ring.bytes > RING_BYTES {
                let Some(old) = ring.lines.pop_front() else {
                    break;
                };
                ring.bytes -= old.text.len();
            }
        }
        let mut sinks = self.sinks.lock().unwrap_or_else(|p| p.into_inner());
        if sinks.is_empty() {
            return;
        }
        let mut text = String::new();
        for line in &added {
            text.push_str(&shipped(line));
            text.push('\n');
        }
        for sink in sinks.iter_mut() {
            let _ = sink.write_all(text.as_bytes());
            let _ = sink.flush();
        }
    }

    /// This node's answer to `query`: in tail mode its newest `limit`
    /// matching lines, in follow mode its oldest `limit` after the
    /// query's position for this node (from the start of the ring when
    /// that position is of another boot).
    pub fn page(&self, query: &LogQuery) -> NodePage {
        let limit = query.limit();
        let ring = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let head = Position {
            boot: self.boot,
            seq: ring.last_seq,
        };
        let lines: Vec<LogLine> = match &query.after {
            None => {
                let mut newest: Vec<LogLine> = ring
                    .lines
                    .iter()
                    .rev()
                    .filter(|l| query.matches(l))
                    .take(limit)
                    .cloned()
                    .collect();
                newest.reverse();
                newest
            }
            Some(cursor) => {
                let after = cursor
                    .0
                    .get(&self.node)
                    .filter(|p| p.boot == self.boot)
                    .map_or(0, |p| p.seq);
                let lines: Vec<LogLine> = ring
                    .lines
                    .iter()
                    .filter(|l| l.seq > after && query.matches(l))
                    .take(limit)
                    .cloned()
                    .collect();
                if lines.len() == limit {
                    // There may be more: the reader stands at the last
                    // line it was given.
                    let last = lines.last().map_or(after, |l| l.seq);
                    return NodePage {
                        node: self.node.clone(),
                        lines,
                        head: Position {
                            boot: self.boot,
                            seq: last,
                        },
                    };
                }
                lines
            }
        };
        NodePage {
            node: self.node.clone(),
            lines,
            head,
        }
    }
}

/// A line as shipped: one JSON object with Loki-friendly labels (`node`,
/// `tenant`, `app`, `version`, `stream`), an RFC 3339 `ts` and `msg`.
pub fn shipped(line: &LogLine) -> String {
    serde_json::json!({
        "ts": crate::rfc3339::format_ms(line.unix_ms),
        "level": if line.stream == Stream::Dwcp { "error" } else { "info" },
        "source": "app",
        "node": line.node,
        "tenant": line.tenant,
        "app": line.app,
        "version": line.version,
        "request_id": line.request_id,
        "stream": line.stream,
        "msg": line.text,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(version: u64, id: &str) -> Origin<'_> {
        Origin {
            tenant: "default",
            app: "hello",
            version,
            request_id: id,
        }
    }

    fn query(after: Option<Cursor>, limit: usize) -> LogQuery {
        LogQuery {
            tenant: "default".into(),
            app: "hello".into(),
            version: None,
            since_ms: None,
            after,
            limit,
        }
    }

    #[test]
    fn output_becomes_bounded_lines() {
        assert_eq!(lines_of(b""), Vec::<String>::new());
        assert_eq!(lines_of(b"\n"), [""]);
        assert_eq!(lines_of(b"a\r\nb"), ["a", "b"]);
        assert_eq!(lines_of(b"bad \xff byte"), ["bad \u{fffd} byte"]);
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let cut = &lines_of(long.as_bytes())[0];
        assert!(cut.len() <= MAX_LINE_BYTES && cut.ends_with('…'), "{cut}");
        let flood = "y\n".repeat(MAX_REQUEST_BYTES);
        let lines = lines_of(flood.as_bytes());
        assert_eq!(lines.len(), MAX_REQUEST_BYTES / 2 + 1);
        assert_eq!(
            lines.last().unwrap(),
            &format!(
                "… {MAX_REQUEST_BYTES} more bytes of this request's output not kept (at most {MAX_REQUEST_BYTES} per request)"
            )
        );
    }

    #[test]
    fn the_ring_drops_its_oldest_lines() {
        let ring = LogRing::new("node-1");
        for i in 0..RING_LINES + 5 {
            ring.record(
                &origin(1, "r"),
                Stream::Stderr,
                format!("{i}").as_bytes(),
                7,
            );
        }
        let page = ring.page(&query(Some(Cursor::default()), MAX_PAGE_LINES));
        assert_eq!(page.lines[0].text, "5", "the five oldest are gone");
        assert_eq!(page.lines[0].seq, 6);
        let big = vec![b'z'; MAX_LINE_BYTES - 1];
        for _ in 0..RING_BYTES / MAX_LINE_BYTES + 10 {
            ring.record(&origin(1, "r"), Stream::Stderr, &big, 8);
        }
        let inner = ring.inner.lock().unwrap();
        assert!(inner.bytes <= RING_BYTES);
        assert_eq!(
            inner.bytes,
            inner.lines.iter().map(|l| l.text.len()).sum::<usize>()
        );
    }

    #[test]
    fn pages_filter_by_app_version_and_time() {
        let ring = LogRing::new("node-1");
        ring.record(&origin(1, "a"), Stream::Stderr, b"v1 early", 100);
        ring.record(&origin(2, "b"), Stream::Stderr, b"v2 late\nsecond", 200);
        let other = Origin {
            app: "shop",
            ..origin(1, "c")
        };
        ring.record(&other, Stream::Stderr, b"not hello's", 150);
        let texts = |q: &LogQuery| -> Vec<String> {
            ring.page(q).lines.into_iter().map(|l| l.text).collect()
        };
        assert_eq!(texts(&query(None, 10)), ["v1 early", "v2 late", "second"]);
        assert_eq!(texts(&query(None, 2)), ["v2 late", "second"], "the newest");
        let v1 = LogQuery {
            version: Some(1),
            ..query(None, 10)
        };
        assert_eq!(texts(&v1), ["v1 early"]);
        let late = LogQuery {
            since_ms: Some(150),
            ..query(None, 10)
        };
        assert_eq!(texts(&late), ["v2 late", "second"]);
    }

    fn line(node: &str, seq: u64, unix_ms: u64) -> LogLine {
        LogLine {
            node: node.into(),
            boot: 9,
            seq,
            unix_ms,
            tenant: "default".into(),
            app: "hello".into(),
            version: 1,
            request_id: "r".into(),
            stream: Stream::Stderr,
            text: format!("{node} {seq}"),
        }
    }

    fn page(node: &str, lines: Vec<LogLine>, head: u64) -> NodePage {
        NodePage {
            node: node.into(),
            lines,
            head: Position { boot: 9, seq: head },
        }
    }

    #[test]
    fn merging_takes_the_newest_in_tail_mode_and_moves_every_cursor() {
        let pages = vec![
            page(
                "node-1",
                vec![line("node-1", 1, 10), line("node-1", 2, 30)],
                5,
            ),
            page("node-2", vec![line("node-2", 7, 20)], 7),
        ];
        let merged = merge(&query(None, 2), pages, vec![]);
        let texts: Vec<&str> = merged.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["node-2 7", "node-1 2"]);
        // Both heads: what was older than the page is not wanted later.
        assert_eq!(merged.cursor.to_string(), "node-1:9:5,node-2:9:7");
    }

    #[test]
    fn merging_in_follow_mode_leaves_the_rest_for_the_next_page() {
        let after: Cursor = "node-1:9:0,node-3:4:12".parse().unwrap();
        let pages = vec![
            page(
                "node-1",
                vec![line("node-1", 1, 10), line("node-1", 2, 30)],
                2,
            ),
            page("node-2", vec![line("node-2", 7, 20)], 7),
        ];
        let down = vec![Unreachable {
            node: "node-3".into(),
            reason: "connection refused".into(),
        }];
        let merged = merge(&query(Some(after), 2), pages, down.clone());
        let texts: Vec<&str> = merged.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["node-1 1", "node-2 7"]);
        assert_eq!(
            merged.cursor.to_string(),
            "node-1:9:1,node-2:9:7,node-3:4:12",
            "node-1 stands at the line it was given; node-3 keeps its place"
        );
        assert_eq!(merged.unreachable, down);
    }

    #[test]
    fn following_a_ring_across_a_restart_starts_over() {
        let ring = LogRing::new("node-1");
        ring.record(&origin(1, "a"), Stream::Stderr, b"one\ntwo\nthree", 1);
        let first = ring.page(&query(Some(Cursor::default()), 2));
        assert_eq!(first.lines.len(), 2);
        assert_eq!(first.head.seq, 2, "stops at the last line given");
        let mut cursor = Cursor::default();
        cursor.0.insert("node-1".into(), first.head);
        let next = ring.page(&query(Some(cursor.clone()), 2));
        assert_eq!(next.lines[0].text, "three");
        cursor.0.get_mut("node-1").unwrap().boot ^= 1;
        let restarted = ring.page(&query(Some(cursor), 10));
        assert_eq!(restarted.lines.len(), 3, "another boot: from the start");
    }

    #[test]
    fn cursors_in_text() {
        let c: Cursor = "node-1:ff:3,node-2:0:0".parse().unwrap();
        assert_eq!(c.0["node-1"], Position { boot: 255, seq: 3 });
        assert_eq!(c.to_string(), "node-1:ff:3,node-2:0:0");
        assert_eq!("".parse::<Cursor>().unwrap(), Cursor::default());
        for bad in ["node-1", "node-1:zz:1", "node-1:1:x", ":1:1", "a:1:1:1"] {
            let e = bad.parse::<Cursor>().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("cursor entry `{bad}` is not allowed")),
                "{e}"
            );
        }
    }

    #[test]
    fn shipped_lines_are_json_with_labels() {
        let shipped: serde_json::Value =
            serde_json::from_str(&shipped(&line("node-2", 3, 0))).unwrap();
        assert_eq!(shipped["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(shipped["node"], "node-2");
        assert_eq!(shipped["app"], "hello");
        assert_eq!(shipped["stream"], "stderr");
        assert_eq!(shipped["msg"], "node-2 3");
        assert_eq!(shipped["source"], "app");
    }
}
