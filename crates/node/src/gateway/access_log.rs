//! One line per request, `key=value` pairs (logfmt):
//!
//! ```text
//! request_id=5f3a9c0e1b2d4a60 method=GET path=/hello/x app=acme/hello version=2 status=200 duration_us=143 error=-
//! ```
//!
//! `app` and `version` are `-` when the request matched none; `error` is
//! the gateway's code for an error answer (`trap`, `timeout`, ...) or `-`.
//! The path is the request's, without the query string, and at most 256
//! bytes of it. With `dwcp up --log-format json` each line is a JSON
//! object with the same fields ([`AccessEntry::json`]).

use std::fmt;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use super::routes::AppKey;

/// Where access log lines go.
pub struct AccessLog {
    sink: Option<Mutex<Box<dyn Write + Send>>>,
}

impl AccessLog {
    /// Lines to the process's standard error.
    pub fn stderr() -> AccessLog {
        AccessLog::to_writer(std::io::stderr())
    }

    /// Lines to `writer`, one `write_all` per line.
    pub fn to_writer(writer: impl Write + Send + 'static) -> AccessLog {
        AccessLog {
            sink: Some(Mutex::new(Box::new(writer))),
        }
    }

    /// No access log.
    pub fn off() -> AccessLog {
        AccessLog { sink: None }
    }

    /// Writes one entry. A failing writer loses the line, never the request.
    pub fn write(&self, entry: &AccessEntry<'_>) {
        if let Some(sink) = &self.sink {
            let line = match cluster::node_log::format() {
                cluster::node_log::LogFormat::Text => format!("{entry}\n"),
                cluster::node_log::LogFormat::Json => {
                    format!("{}\n", entry.json(cluster::unix_now_ms()))
                }
            };
            let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
            let _ = sink.write_all(line.as_bytes());
        }
    }
}

/// What the access log says about one request.
#[derive(Clone, Copy, Debug)]
pub struct AccessEntry<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub app: Option<&'a AppKey>,
    pub version: Option<u64>,
    pub status: u16,
    pub duration: Duration,
    pub error: Option<&'a str>,
}

impl AccessEntry<'_> {
    /// The entry as one JSON object (`dwcp up --log-format json`), with
    /// the fields app log lines carry (`ts`, `node`, `tenant`, `app`,
    /// `version`, `request_id`).
    pub fn json(&self, unix_ms: u64) -> String {
        let mut object = serde_json::json!({
            "ts": cluster::rfc3339::format_ms(unix_ms),
            "level": "info",
            "source": "access",
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "tenant": self.app.map(|a| a.tenant.as_str()),
            "app": self.app.map(|a| a.app.as_str()),
            "version": self.version,
            "status": self.status,
            "duration_us": self.duration.as_micros() as u64,
            "error": self.error,
        });
        if let Some(node) = cluster::node_log::node() {
            object["node"] = serde_json::Value::from(node);
        }
        object.to_string()
    }
}

impl fmt::Display for AccessEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut path_end = self.path.len().min(256);
        while !self.path.is_char_boundary(path_end) {
            path_end -= 1;
        }
        // Paths from hyper are URI text (no spaces or controls); the method
        // may be an extension, so keep only its token characters.
        let method: String = self
            .method
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(32)
            .collect();
        write!(
            f,
            "request_id={} method={} path={} app=",
            self.request_id,
            method,
            &self.path[..path_end]
        )?;
        match self.app {
            Some(app) => write!(f, "{app}")?,
            None => f.write_str("-")?,
        }
        f.write_str(" version=")?;
        match self.version {
            Some(v) => write!(f, "{v}")?,
            None => f.write_str("-")?,
        }
        write!(
            f,
            " status={} duration_us={} error={}",
            self.status,
            self.duration.as_micros(),
            self.error.unwrap_or("-")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::Name;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_line_per_entry() {
        let buf = Buf::default();
        let log = AccessLog::to_writer(buf.clone());
        let app = AppKey::new(
            Name::new("tenant", "acme").unwrap(),
            Name::new("app", "hello").unwrap(),
        );
        log.write(&AccessEntry {
            request_id: "00000000000000ff",
            method: "GET",
            path: "/hello/x",
            app: Some(&app),
            version: Some(2),
            status: 200,
            duration: Duration::from_micros(143),
            error: None,
        });
        log.write(&AccessEntry {
            request_id: "0000000000000100",
            method: "POST",
            path: "/nope",
            app: None,
            version: None,
            status: 404,
            duration: Duration::from_micros(9),
            error: Some("no_route"),
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "request_id=00000000000000ff method=GET path=/hello/x app=acme/hello version=2 status=200 duration_us=143 error=-\n\
             request_id=0000000000000100 method=POST path=/nope app=- version=- status=404 duration_us=9 error=no_route\n"
        );
        let json: serde_json::Value = serde_json::from_str(
            &AccessEntry {
                request_id: "ab",
                method: "GET",
                path: "/hello",
                app: Some(&app),
                version: Some(2),
                status: 200,
                duration: Duration::from_micros(143),
                error: None,
            }
            .json(0),
        )
        .unwrap();
        assert_eq!(json["app"], "hello");
        assert_eq!(json["tenant"], "acme");
        assert_eq!(json["version"], 2);
        assert_eq!(json["error"], serde_json::Value::Null);
        assert_eq!(json["ts"], "1970-01-01T00:00:00.000Z");
        AccessLog::off().write(&AccessEntry {
            request_id: "x",
            method: "GET",
            path: "/",
            app: None,
            version: None,
            status: 200,
            duration: Duration::ZERO,
            error: None,
        });
    }
}
