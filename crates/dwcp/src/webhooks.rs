//! Sending an SLO alert's notification: one HTTP POST of its JSON body,
//! retried on the schedule of `ops::slo::webhook` (1 s, 2 s, 4 s, ... up
//! to 5 min between attempts, 12 attempts) while the receiver is
//! unreachable or answers 429 or 5xx. Each outcome goes on the incident's
//! timeline (the first three failures, then only the end: delivered,
//! refused, or given up), so the timeline stays bounded. Retries wait on
//! tokio's timer — the wall clock — even under `--manual-clock`.
//!
//! Plain `http://` only for now: `https://` targets are recorded as
//! failed (no TLS client roots are configured yet).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use control::cluster::ClusterNode;
use control::{Command, NotifyKind};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use ops::slo::Clock;
use ops::slo::Notification;
use ops::slo::webhook::{MAX_ATTEMPTS, backoff, retryable};

/// Longest wait for one attempt (connect, send, answer).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Failed attempts noted on the timeline before only the end is.
const NOTED_FAILURES: u32 = 3;

/// How one attempt ended.
enum Attempt {
    Delivered(u16),
    /// Worth another try.
    Failed(String),
    /// The receiver refused the body; another try would be refused too.
    Refused(u16),
}

/// Delivers `n`, noting the outcomes on incident `incident` (when there is
/// one), with retries; `what` says which alert (for the notes).
pub async fn deliver(
    node: Arc<ClusterNode>,
    clock: Arc<dyn Clock>,
    incident: Option<u64>,
    what: String,
    n: Notification,
) {
    let kind = match n.target.kind {
        NotifyKind::Alertmanager => "alertmanager",
        NotifyKind::PagerDuty => "pagerduty",
        NotifyKind::Slack => "slack",
    };
    let target = format!("{kind} {}", n.target.url);
    let body = Bytes::from(n.body.to_string());
    let note = |text: String| {
        let node = node.clone();
        let now = clock.now_ms();
        async move {
            let Some(id) = incident else {
                eprintln!("dwcp alerts: {text}");
                return;
            };
            let command = Command::NoteIncident {
                id,
                by: ops::slo::eval::EVALUATOR.into(),
                text,
                now_unix_ms: now,
            };
            match node.write(command).await {
                Ok(r) => {
                    if let Err(e) = r.result {
                        eprintln!("dwcp alerts: incident {id}: note not stored: {e}");
                    }
                }
                Err(e) => eprintln!("dwcp alerts: incident {id}: writing a note: {e}"),
            }
        }
    };
    let mut attempt = 0;
    while let Some(wait) = backoff(attempt) {
        tokio::time::sleep(wait).await;
        let number = attempt + 1;
        match post(&n.target.url, body.clone()).await {
            Attempt::Delivered(status) => {
                note(format!(
                    "notification ({what}) to {target} delivered: {status} (attempt {number})"
                ))
                .await;
                return;
            }
            Attempt::Refused(status) => {
                note(format!(
                    "notification ({what}) to {target} refused: {status} (attempt {number}); not retried"
                ))
                .await;
                return;
            }
            Attempt::Failed(reason) => {
                if number <= NOTED_FAILURES {
                    let next = backoff(number).map_or("giving up".to_string(), |d| {
                        format!("retrying in {} s", d.as_secs())
                    });
                    note(format!(
                        "notification ({what}) to {target} failed: {reason} (attempt {number} of {MAX_ATTEMPTS}); {next}"
                    ))
                    .await;
                } else if number == MAX_ATTEMPTS {
                    note(format!(
                        "notification ({what}) to {target} given up after {MAX_ATTEMPTS} attempts: {reason}"
                    ))
                    .await;
                }
            }
        }
        attempt += 1;
    }
}

/// One POST of `body` to `url` under [`ATTEMPT_TIMEOUT`].
async fn post(url: &str, body: Bytes) -> Attempt {
    match tokio::time::timeout(ATTEMPT_TIMEOUT, exchange(url, body)).await {
        Ok(outcome) => outcome,
        Err(_) => Attempt::Failed(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
    }
}

async fn exchange(url: &str, body: Bytes) -> Attempt {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("HTTP://"))
    else {
        return Attempt::Failed("only http:// targets can be sent to yet (no TLS roots)".into());
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let address = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let stream = match tokio::net::TcpStream::connect(&address).await {
        Ok(s) => s,
        Err(e) => return Attempt::Failed(format!("cannot connect to {address}: {e}")),
    };
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => return Attempt::Failed(format!("HTTP: {e}")),
        };
    let driver = tokio::spawn(connection);
    let request = Request::post(path)
        .header(HOST, authority)
        .header(CONTENT_TYPE, "application/json")
        .header("user-agent", "dwcp-alerts")
        .body(Full::new(body));
    let request = match request {
        Ok(r) => r,
        Err(e) => return Attempt::Failed(format!("cannot build the request: {e}")),
    };
    let outcome = match sender.send_request(request).await {
        Ok(response) => {
            let status = response.status().as_u16();
            // The answer's body is read (and dropped) so the exchange ends.
            let _ = response.into_body().collect().await;
            if response_ok(status) {
                Attempt::Delivered(status)
            } else if retryable(status) {
                Attempt::Failed(format!("answered {status}"))
            } else {
                Attempt::Refused(status)
            }
        }
        Err(e) => Attempt::Failed(format!("HTTP: {e}")),
    };
    drop(sender);
    driver.abort();
    outcome
}

fn response_ok(status: u16) -> bool {
    (200..300).contains(&status)
}
