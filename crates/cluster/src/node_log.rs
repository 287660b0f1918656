//! The node's own log: one line per event on standard error, as text
//! (`dwcp agent: version 2 is ready`) or, after [`set_format`] with
//! [`LogFormat::Json`] (`dwcp up --log-format json`), as one JSON object a
//! line with the fields app log lines carry (`ts`, `level`, `node`, and
//! the component), so one collector reads both.
//!
//! Every part of a node logs through [`say!`](crate::say) (or [`emit`]);
//! the gateway's access log asks [`format`] to pick its shape.

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// How the node's log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// `dwcp COMPONENT: message`, for people.
    Text,
    /// One JSON object a line, for collectors (Loki, Elasticsearch, …).
    Json,
}

static FORMAT: AtomicU8 = AtomicU8::new(0);
static NODE: OnceLock<String> = OnceLock::new();

/// Sets the format of every line from now on (once, at start).
pub fn set_format(format: LogFormat) {
    FORMAT.store(
        match format {
            LogFormat::Text => 0,
            LogFormat::Json => 1,
        },
        Ordering::Relaxed,
    );
}

/// The format lines are written in.
pub fn format() -> LogFormat {
    match FORMAT.load(Ordering::Relaxed) {
        1 => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

/// Names the node in JSON lines (`node-<id>`), once it is known.
pub fn set_node(name: &str) {
    let _ = NODE.set(name.to_string());
}

/// The node's name, once set.
pub fn node() -> Option<&'static str> {
    NODE.get().map(String::as_str)
}

/// How serious a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
}

/// The line `component` says `message` at `level`, in `format`, at
/// `unix_ms`; pure, for [`emit`] and its tests.
pub fn render(
    format: LogFormat,
    level: Level,
    component: &str,
    message: &str,
    unix_ms: u64,
) -> String {
    match format {
        LogFormat::Text if component.is_empty() => format!("dwcp: {message}"),
        LogFormat::Text => format!("dwcp {component}: {message}"),
        LogFormat::Json => {
            let mut object = serde_json::json!({
                "ts": crate::rfc3339::format_ms(unix_ms),
                "level": match level { Level::Info => "info", Level::Warn => "warn" },
                "source": "node",
                "component": if component.is_empty() { "node" } else { component },
                "msg": message,
            });
            if let Some(node) = node() {
                object["node"] = serde_json::Value::from(node);
            }
            object.to_string()
        }
    }
}

/// Writes one line to standard error (a failing stderr loses the line).
pub fn emit(level: Level, component: &str, message: &str) {
    let line = render(format(), level, component, message, crate::unix_now_ms());
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Logs a line of the node's: `say!("agent", "version {n} is ready")`,
/// or `say!(warn, "agent", …)`; an empty component is the node itself.
#[macro_export]
macro_rules! say {
    (warn, $component:expr, $($arg:tt)*) => {
        $crate::node_log::emit($crate::node_log::Level::Warn, $component, &format!($($arg)*))
    };
    ($component:expr, $($arg:tt)*) => {
        $crate::node_log::emit($crate::node_log::Level::Info, $component, &format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_lines() {
        assert_eq!(
            render(LogFormat::Text, Level::Info, "agent", "ready", 0),
            "dwcp agent: ready"
        );
        assert_eq!(
            render(LogFormat::Text, Level::Info, "", "stopping", 0),
            "dwcp: stopping"
        );
        let json: serde_json::Value = serde_json::from_str(&render(
            LogFormat::Json,
            Level::Warn,
            "rollouts",
            "a \"quoted\" step",
            1_000,
        ))
        .unwrap();
        assert_eq!(json["ts"], "1970-01-01T00:00:01.000Z");
        assert_eq!(json["level"], "warn");
        assert_eq!(json["component"], "rollouts");
        assert_eq!(json["msg"], "a \"quoted\" step");
        assert_eq!(json["source"], "node");
    }
}
