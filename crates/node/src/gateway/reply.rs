//! Responses: the app's CGI output (or a wasi:http app's answer) turned
//! into HTTP, and the gateway's own error answers,
//! `{"error": {"code", "message", "request_id"}}`.
//!
//! | status | code | when |
//! | --- | --- | --- |
//! | 404 | `no_route` | no route matches the host and path |
//! | 400 | `bad_request_body` | the request body could not be read |
//! | 400 | `bad_request` | the host or path cannot be passed on to a wasi:http app as a URI |
//! | 413 | `request_too_large` | the body is larger than the route allows |
//! | 503 | `no_version` | the route has no version with a weight above 0 |
//! | 503 | `concurrency_limit` | the app serves its limit of requests at once (`retry-after: 1`) |
//! | 503 | `live_limit` | the node runs its limit of sandboxes (`retry-after: 1`) |
//! | 503 | `no_peer` | the app is held by other nodes, and none of them could be reached |
//! | 503 | `not_served_here` | a forwarded request reached a node that no longer holds the app |
//! | 502 | `upstream_failed` | a forwarded request failed after it was sent |
//! | 504 | `timeout` | no answer within the route's timeout |
//! | 500 | a [`SandboxError::code`] | the app trapped, hit a limit or could not start |
//! | 500 | `bad_cgi` | the app's stdout is not a CGI response |
//! | 500 | `bad_response` | a wasi:http app's response has a status or header the gateway cannot send |
//! | 500 | `response_too_large` | the app's response is larger than the route allows |
//! | 500 | `refused_header` | the app set one of DWCP's cookies, or `clear-site-data` |
//! | 500 | `internal` | the thread that ran the sandbox panicked |
//! | (499) | `client_gone` | the client left before the answer: logged and counted, never sent |
//!
//! Every fault of the app itself is 500, so that a client can tell it from
//! the gateway's limits (503, 504); the code tells the faults apart.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use sandbox::{Output, SandboxError};
use serde::Serialize;

/// An error answer of the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    request_id: &'a str,
}

impl Failure {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            code,
            message: message.into(),
        }
    }

    /// What to answer when the sandbox ended with `error`; `what` names the
    /// app and version.
    pub fn from_sandbox(error: &SandboxError, what: &str) -> Failure {
        match error {
            SandboxError::Timeout { deadline } => Failure::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "{what} did not answer within its timeout of {} ms and was stopped",
                    deadline.as_millis()
                ),
            ),
            SandboxError::LiveLimit { .. } => Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "live_limit",
                format!(
                    "this node cannot start another sandbox for {what} now ({error}); retry later"
                ),
            ),
            // A trap's message names wasm functions and offsets: the
            // app's log has it (`dwcp logs`), its client does not.
            SandboxError::Trap { .. } => Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                error.code(),
                format!("{what} trapped; the app's log has the details (dwcp logs)"),
            ),
            other => Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                other.code(),
                format!("{what} failed: {other}"),
            ),
        }
    }

    /// The response, carrying `request_id` in its body.
    pub fn into_response(self, request_id: &str) -> Response<Full<Bytes>> {
        let body = serde_json::to_vec(&Envelope {
            error: ErrorBody {
                code: self.code,
                message: &self.message,
                request_id,
            },
        })
        .unwrap_or_default();
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(super::ERROR_HEADER, HeaderValue::from_static(self.code));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Every code the gateway answers with (its own and the sandbox's).
const CODES: &[&str] = &[
    "no_route",
    "bad_request_body",
    "bad_request",
    "request_too_large",
    "no_version",
    "concurrency_limit",
    "live_limit",
    "no_peer",
    "not_served_here",
    "upstream_failed",
    "timeout",
    "bad_cgi",
    "bad_response",
    "response_too_large",
    "internal",
    "client_gone",
    "invalid_module",
    "import_not_granted",
    "missing_export",
    "export_type",
    "grant",
    "invalid_limit",
    "memory_limit",
    "table_limit",
    "resource_limit",
    "out_of_fuel",
    "stack_overflow",
    "trap",
    "bad_output",
    "stopped",
    "cache",
    "not_supported",
    "engine",
];

/// `code` as the gateway's own static code, when it is one (a forwarded
/// answer's `x-dwcp-error`; anything else is not logged as a code).
pub(crate) fn known_code(code: &str) -> Option<&'static str> {
    CODES.iter().copied().find(|c| *c == code)
}

/// Headers an app may not set: hop-by-hop ones (the connection is the
/// gateway's), the length (the gateway frames the body) and the request id.
const REFUSED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "x-request-id",
    "x-dwcp-version",
    "x-dwcp-error",
];

/// Turns a WAGI app's output into the response, or says why it cannot be
/// one. `output_cap` is the sandbox's cap on stdout, `max_body` the route's
/// limit on the response body. The app's exit status does not matter when
/// its output is a CGI response.
pub(crate) fn from_cgi(
    output: &Output,
    output_cap: usize,
    max_body: usize,
    what: &str,
) -> Result<Response<Full<Bytes>>, Failure> {
    let too_large = |size: String| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "response_too_large",
            format!("{what} sent a response of {size} bytes; this route allows at most {max_body}"),
        )
    };
    if output.truncated && output.stdout.len() >= output_cap {
        return Err(too_large(format!("more than {output_cap}")));
    }
    let bad_cgi = |reason: String| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_cgi",
            format!(
                "{what} wrote output that is not a CGI response ({reason}); it exited with status {}",
                output.exit_code
            ),
        )
    };
    let parsed =
        sandbox::wagi::parse_response(&output.stdout).map_err(|e| bad_cgi(e.to_string()))?;
    if parsed.body.len() > max_body {
        return Err(too_large(parsed.body.len().to_string()));
    }
    let status = StatusCode::from_u16(parsed.status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| bad_cgi(format!("status {} is not a final status", parsed.status)))?;
    let mut response = Response::new(Full::new(Bytes::from(parsed.body)));
    *response.status_mut() = status;
    let headers = parsed
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()));
    put_headers(response.headers_mut(), headers, what, bad_cgi)?;
    Ok(response)
}

/// Turns a wasi:http component's answer into the response, or says why it
/// cannot be one, under the same rules as a CGI answer: the route's
/// `max_body`, a final status, and the headers a guest may send.
pub(crate) fn from_http(
    answer: sandbox::HttpAnswer,
    max_body: usize,
    what: &str,
) -> Result<Response<Full<Bytes>>, Failure> {
    if answer.truncated {
        return Err(Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "response_too_large",
            format!(
                "{what} sent a response of more than {max_body} bytes; this route allows at most {max_body}"
            ),
        ));
    }
    let bad_response = |reason: String| {
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "bad_response",
            format!("{what} answered with a response the gateway cannot send ({reason})"),
        )
    };
    let status = StatusCode::from_u16(answer.status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| bad_response(format!("status {} is not a final status", answer.status)))?;
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = status;
    let headers = answer
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()));
    put_headers(response.headers_mut(), headers, what, bad_response)?;
    Ok(response)
}

/// Appends a guest's response headers to `headers`, leaving out the ones
/// the gateway sets itself ([`REFUSED_HEADERS`]) and refusing the ones no
/// guest may send (`guard.rs`); `bad` says why a name or value is invalid.
fn put_headers<'h>(
    headers: &mut hyper::HeaderMap,
    from_guest: impl Iterator<Item = (&'h str, &'h [u8])>,
    what: &str,
    bad: impl Fn(String) -> Failure,
) -> Result<(), Failure> {
    for (name, value) in from_guest {
        let name = name.to_ascii_lowercase();
        if REFUSED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if let Some(why) = super::guard::refused_header(&name, &String::from_utf8_lossy(value)) {
            return Err(Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "refused_header",
                format!("{what} sent a header a guest may not send: {why}"),
            ));
        }
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("`{name}` is not a valid header name")))?;
        let value = HeaderValue::from_bytes(value)
            .map_err(|_| bad(format!("the value of `{name}` is not a valid header value")))?;
        headers.append(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(stdout: &[u8]) -> Output {
        Output {
            stdout: stdout.to_vec(),
            ..Output::default()
        }
    }

    #[test]
    fn cgi_output_becomes_a_response() {
        let r = from_cgi(
            &out(b"status: 201\ncontent-type: text/plain\nx-a: 1\nconnection: close\nx-request-id: forged\n\nmade"),
            1024,
            1024,
            "app",
        )
        .unwrap();
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["content-type"], "text/plain");
        assert_eq!(r.headers()["x-a"], "1");
        assert!(r.headers().get("connection").is_none());
        assert!(r.headers().get("x-request-id").is_none());
    }

    #[test]
    fn bad_output_is_refused_with_a_reason() {
        let e = from_cgi(&out(b"no headers"), 1024, 1024, "app a/b version 1").unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (500, "bad_cgi"));
        assert!(e.message.contains("app a/b version 1"), "{}", e.message);
        let e = from_cgi(&out(b"status: 101\n\n"), 1024, 1024, "app").unwrap_err();
        assert_eq!(e.code, "bad_cgi");
        let e = from_cgi(&out(b"x\x01y: 1\n\n"), 1024, 1024, "app").unwrap_err();
        assert_eq!(e.code, "bad_cgi");
        for refused in [
            &b"set-cookie: __Host-dwcp_session=stolen; Path=/; Secure\n\n"[..],
            b"clear-site-data: \"cookies\"\n\n",
        ] {
            let e = from_cgi(&out(refused), 1024, 1024, "app").unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (500, "refused_header"));
        }
        let e = from_cgi(&out(b"\n\n12345"), 1024, 4, "app").unwrap_err();
        assert_eq!(e.code, "response_too_large");
        let mut cut = out(b"\n\n1234");
        cut.truncated = true;
        let e = from_cgi(&cut, 6, 1024, "app").unwrap_err();
        assert_eq!(e.code, "response_too_large");
    }

    #[test]
    fn error_answers_name_their_code_in_a_header() {
        let r = Failure::new(StatusCode::NOT_FOUND, "no_route", "none").into_response("id");
        assert_eq!(r.headers()["x-dwcp-error"], "no_route");
        assert_eq!(known_code("trap"), Some("trap"));
        assert_eq!(known_code("no_route"), Some("no_route"));
        assert_eq!(known_code("made-up"), None);
    }

    #[test]
    fn sandbox_errors_map_to_statuses() {
        let t = Failure::from_sandbox(
            &SandboxError::Timeout {
                deadline: std::time::Duration::from_millis(200),
            },
            "app",
        );
        assert_eq!((t.status.as_u16(), t.code), (504, "timeout"));
        let trap = Failure::from_sandbox(
            &SandboxError::Trap {
                message: "wasm trap: unreachable at 0x2a in func[3]".into(),
            },
            "app",
        );
        assert_eq!((trap.status.as_u16(), trap.code), (500, "trap"));
        assert!(
            !trap.message.contains("0x2a") && trap.message.contains("dwcp logs"),
            "the details go to the app's log only: {}",
            trap.message
        );
        let r = trap.into_response("abc");
        assert_eq!(r.headers()["content-type"], "application/json");
    }
}
