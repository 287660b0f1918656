//! The WAGI convention: an HTTP request as CGI environment variables and
//! stdin, the response as CGI headers and a body on stdout. Pure functions;
//! the gateway brings the HTTP and the sandbox brings the execution.

use std::collections::BTreeMap;

/// An HTTP request as a WAGI module sees it.
#[derive(Clone, Debug, Default)]
pub struct WagiRequest {
    pub method: String,
    /// The path below the app's route, starting with `/`.
    pub path: String,
    /// The query string without `?`.
    pub query: String,
    /// The route prefix the app is mounted at (`SCRIPT_NAME`).
    pub route: String,
    pub host: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WagiRequest {
    /// The command line a WAGI app runs with: its route (`/` when it is
    /// mounted at the root), as `argv[0]`.
    pub fn args(&self) -> [String; 1] {
        [if self.route.is_empty() {
            "/".to_string()
        } else {
            self.route.clone()
        }]
    }

    /// The CGI environment for this request (RFC 3875 names plus WAGI's
    /// `X_FULL_URL` and `X_MATCHED_ROUTE`); headers become `HTTP_*`.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("REQUEST_METHOD".into(), self.method.clone()),
            ("PATH_INFO".into(), self.path.clone()),
            ("QUERY_STRING".into(), self.query.clone()),
            ("SCRIPT_NAME".into(), self.route.clone()),
            ("X_MATCHED_ROUTE".into(), self.route.clone()),
            ("SERVER_NAME".into(), self.host.clone()),
            ("SERVER_PROTOCOL".into(), "HTTP/1.1".into()),
            ("GATEWAY_INTERFACE".into(), "CGI/1.1".into()),
            ("CONTENT_LENGTH".into(), self.body.len().to_string()),
            (
                "X_FULL_URL".into(),
                format!(
                    "http://{}{}{}{}{}",
                    self.host,
                    self.route,
                    self.path,
                    if self.query.is_empty() { "" } else { "?" },
                    self.query
                ),
            ),
        ];
        for (name, value) in &self.headers {
            let key: String = name
                .chars()
                .map(|c| match c {
                    '-' => '_',
                    c => c.to_ascii_uppercase(),
                })
                .collect();
            match key.as_str() {
                "CONTENT_TYPE" => env.push(("CONTENT_TYPE".into(), value.clone())),
                // Never let a header smuggle a proxy setting into the app.
                "PROXY" => {}
                _ => env.push((format!("HTTP_{key}"), value.clone())),
            }
        }
        env
    }
}

/// A response parsed from a WAGI module's stdout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WagiResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// Why a module's stdout is not a WAGI response.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WagiError {
    #[error("no blank line ends the CGI headers")]
    NoHeaderEnd,
    #[error("header line {line} is not `name: value`")]
    BadHeader { line: usize },
    #[error("status `{value}` is not a number from 100 to 999")]
    BadStatus { value: String },
}

/// Parses CGI output: header lines, a blank line, the body. A `status`
/// header sets the status (only its leading number counts); a `location`
/// header without one means 302; otherwise 200.
///
/// ```
/// let r = sandbox::wagi::parse_response(b"content-type: text/plain\n\nhi").unwrap();
/// assert_eq!((r.status, r.body.as_slice()), (200, &b"hi"[..]));
/// ```
pub fn parse_response(stdout: &[u8]) -> Result<WagiResponse, WagiError> {
    let (head, body) = split_head(stdout).ok_or(WagiError::NoHeaderEnd)?;
    let mut headers = BTreeMap::new();
    let mut status = None;
    for (i, line) in String::from_utf8_lossy(head).lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(WagiError::BadHeader { line: i + 1 })?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_string();
        if name.is_empty() {
            return Err(WagiError::BadHeader { line: i + 1 });
        }
        if name == "status" {
            let code = value.split_whitespace().next().unwrap_or("");
            status = Some(
                code.parse::<u16>()
                    .ok()
                    .filter(|c| (100..1000).contains(c))
                    .ok_or(WagiError::BadStatus { value })?,
            );
        } else {
            headers.insert(name, value);
        }
    }
    let status = status.unwrap_or(if headers.contains_key("location") {
        302
    } else {
        200
    });
    Ok(WagiResponse {
        status,
        headers,
        body: body.to_vec(),
    })
}

fn split_head(out: &[u8]) -> Option<(&[u8], &[u8])> {
    let crlf = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let (at, len) = match (crlf, lf) {
        (Some(a), Some(b)) => {
            if a.0 < b.0 {
                a
            } else {
                b
            }
        }
        (a, b) => a.or(b)?,
    };
    Some((&out[..at], &out[at + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_headers_and_body() {
        let r = parse_response(
            b"Status: 418 I'm a teapot\r\nContent-Type: text/plain\r\n\r\nshort and stout",
        )
        .unwrap();
        assert_eq!(r.status, 418);
        assert_eq!(r.headers["content-type"], "text/plain");
        assert_eq!(r.body, b"short and stout");
    }

    #[test]
    fn location_without_status_redirects() {
        let r = parse_response(b"location: /elsewhere\n\n").unwrap();
        assert_eq!(r.status, 302);
    }

    #[test]
    fn rejects_output_without_blank_line_and_bad_lines() {
        assert_eq!(parse_response(b"hello"), Err(WagiError::NoHeaderEnd));
        assert_eq!(
            parse_response(b"content-type: a\nnonsense\n\n"),
            Err(WagiError::BadHeader { line: 2 })
        );
        assert!(matches!(
            parse_response(b"status: abc\n\n"),
            Err(WagiError::BadStatus { .. })
        ));
    }

    #[test]
    fn env_carries_request_and_headers() {
        let req = WagiRequest {
            method: "POST".into(),
            path: "/x".into(),
            query: "a=1".into(),
            route: "/app".into(),
            host: "example.test".into(),
            headers: vec![
                ("User-Agent".into(), "t".into()),
                ("Proxy".into(), "evil".into()),
            ],
            body: b"abc".to_vec(),
        };
        let env: BTreeMap<_, _> = req.env().into_iter().collect();
        assert_eq!(env["REQUEST_METHOD"], "POST");
        assert_eq!(env["CONTENT_LENGTH"], "3");
        assert_eq!(env["HTTP_USER_AGENT"], "t");
        assert_eq!(env["X_FULL_URL"], "http://example.test/app/x?a=1");
        assert!(!env.contains_key("HTTP_PROXY"));
    }
}
