//! Sending an SLO alert's notification: one HTTP POST of its JSON body
//! (to an `alertmanager_api` target, at its `/api/v2/alerts`),
//! retried on the schedule of `ops::slo::webhook` (1 s, 2 s, 4 s, ... up
//! to 5 min between attempts, 12 attempts) while the receiver is
//! unreachable or answers 429 or 5xx. Each outcome goes on the incident's
//! timeline (the first three failures, then only the end: delivered,
//! refused, or given up), so the timeline stays bounded. Retries wait on
//! tokio's timer — the wall clock — even under `--manual-clock`.
//!
//! `https://` targets are reached over TLS 1.3 (rustls), trusting the
//! system's root certificates: the PEM bundle at `$SSL_CERT_FILE`, else
//! the first of the usual distribution paths that exists
//! (`/etc/ssl/certs/ca-certificates.crt` on Debian). Without one, https
//! attempts fail and say why.
//!
//! A firing alert sent again to an Alertmanager ([`resend`]) is one attempt,
//! not noted on the timeline (it goes every minute); a failure is logged.
//!
//! Every attempt waits for its turn in the alert and target's lane
//! (`alert_lanes.rs`): a notification superseded by a later one of the
//! same alert (a "firing" still retrying when the alert resolved) is not
//! sent again, so a receiver never gets "firing" after "resolved".
//!
//! Guarded (`ops::notify_guard`): the target's URL and routing key are
//! opened from their seal only here, and never written anywhere — the
//! timeline names the target by its redacted URL. Unless the operator
//! allowed the host, every address the host resolves to must be public,
//! and the connection goes to those checked addresses only; redirects are
//! not followed; an answer's body is read up to [`MAX_ANSWER_BYTES`]
//! within the attempt's timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cluster::ClusterNode;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use ops::notify_guard;
use ops::slo::Clock;
use ops::slo::Notification;
use ops::slo::webhook::{MAX_ATTEMPTS, backoff, retryable};

use crate::alert_lanes::Ticket;
use state::{Command, NotifyKind};

/// Longest wait for one attempt (connect, send, answer).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an answer's body read (the rest is not waited for).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Failed attempts noted on the timeline before only the end is.
const NOTED_FAILURES: u32 = 3;

/// How one attempt ended.
enum Attempt {
    Delivered(u16),
    /// Worth another try.
    Failed(String),
    /// The receiver refused the body; another try would be refused too.
    Refused(u16),
    /// The target may not be reached (an internal address); not retried.
    Forbidden(String),
}

/// Delivers `n`, noting the outcomes on incident `incident` (when there is
/// one), with retries while `ticket` is its lane's latest; `what` says
/// which alert (for the notes).
pub async fn deliver(
    node: Arc<ClusterNode>,
    clock: Arc<dyn Clock>,
    incident: Option<u64>,
    what: String,
    n: Notification,
    ticket: Ticket,
) {
    let target = shown(&n);
    let note = |text: String| {
        let node = node.clone();
        let now = clock.now_ms();
        async move {
            let Some(id) = incident else {
                cluster::say!("alerts", "{text}");
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
                        cluster::say!("alerts", "incident {id}: note not stored: {e}");
                    }
                }
                Err(e) => cluster::say!("alerts", "incident {id}: writing a note: {e}"),
            }
        }
    };
    let (url, body) = match open(&node, n) {
        Ok(opened) => opened,
        Err(e) => {
            note(format!("notification ({what}) to {target} not sent: {e}")).await;
            return;
        }
    };
    let mut attempt = 0;
    while let Some(wait) = backoff(attempt) {
        tokio::time::sleep(wait).await;
        let number = attempt + 1;
        let Some(_turn) = ticket.turn().await else {
            note(format!(
                "notification ({what}) to {target} not sent{}: a later notification of the alert superseded it",
                if attempt > 0 { " again" } else { "" }
            ))
            .await;
            return;
        };
        match post(&url, body.clone()).await {
            Attempt::Delivered(status) => {
                note(format!(
                    "notification ({what}) to {target} delivered: {status} (attempt {number})"
                ))
                .await;
                return;
            }
            Attempt::Refused(status) => {
                let redirect = if (300..400).contains(&status) {
                    " (a redirect: redirects are not followed)"
                } else {
                    ""
                };
                note(format!(
                    "notification ({what}) to {target} refused: {status}{redirect} (attempt {number}); not retried"
                ))
                .await;
                return;
            }
            Attempt::Forbidden(why) => {
                note(format!(
                    "notification ({what}) to {target} not sent: {why}; not retried"
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

/// Sends `n` again (a firing alert to an Alertmanager, every minute): one
/// attempt, logged only when it fails — the next resend is the retry —
/// and none once a later notification of the alert was decided.
pub async fn resend(node: Arc<ClusterNode>, what: String, n: Notification, ticket: Ticket) {
    let target = shown(&n);
    let Some(_turn) = ticket.turn().await else {
        return;
    };
    let failed = match open(&node, n) {
        Ok((url, body)) => match post(&url, body).await {
            Attempt::Delivered(_) => None,
            Attempt::Refused(status) => Some(format!("refused: {status}")),
            Attempt::Failed(reason) | Attempt::Forbidden(reason) => Some(reason),
        },
        Err(e) => Some(e),
    };
    if let Some(why) = failed {
        cluster::say!(warn, "alerts", "resending ({what}) to {target}: {why}");
    }
}

/// A notification's target as it may be named (notes land in incidents):
/// its kind and redacted URL.
fn shown(n: &Notification) -> String {
    let kind = match n.target.kind {
        NotifyKind::Alertmanager => "alertmanager",
        NotifyKind::AlertmanagerApi => "alertmanager_api",
        NotifyKind::PagerDuty => "pagerduty",
        NotifyKind::Slack => "slack",
    };
    format!("{kind} {}", n.target.shown().url)
}

/// The URL to post `n` to and its body, with the target's secrets opened
/// from their seal (and PagerDuty's routing key put in the body).
fn open(node: &ClusterNode, n: Notification) -> Result<(String, Bytes), String> {
    let secret = match &n.target.sealed {
        Some(sealed) => notify_guard::open_target(&node.at_rest_key(), &n.context, sealed)
            .map_err(|e| e.to_string())?,
        // Stored before sealing: the record holds the plain values.
        None => notify_guard::TargetSecret {
            url: n.target.url.clone(),
            routing_key: n.target.routing_key.clone(),
        },
    };
    let mut body = n.body;
    if n.target.kind == NotifyKind::PagerDuty
        && let (Some(key), Some(map)) = (&secret.routing_key, body.as_object_mut())
    {
        map.insert("routing_key".into(), key.clone().into());
    }
    let url = match n.target.kind {
        NotifyKind::AlertmanagerApi => alerts_url(&secret.url),
        _ => secret.url,
    };
    Ok((url, Bytes::from(body.to_string())))
}

/// An Alertmanager's alerts endpoint from its URL: `/api/v2/alerts` under
/// the URL's path (an Alertmanager served under a prefix keeps it), unless
/// the URL already names the endpoint.
fn alerts_url(url: &str) -> String {
    const ENDPOINT: &str = "/api/v2/alerts";
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = base.split('#').next().unwrap_or(base).trim_end_matches('/');
    let path = if base.ends_with(ENDPOINT) {
        base.to_string()
    } else {
        format!("{base}{ENDPOINT}")
    };
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    }
}

/// One POST of `body` to `url` under [`ATTEMPT_TIMEOUT`].
async fn post(url: &str, body: Bytes) -> Attempt {
    match tokio::time::timeout(ATTEMPT_TIMEOUT, exchange(url, body)).await {
        Ok(outcome) => outcome,
        Err(_) => Attempt::Failed(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
    }
}

/// Where a notification goes, from its (already checked) URL.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    https: bool,
    /// The host as a TLS server name (IPv6 without brackets).
    host: String,
    port: u16,
    /// `host[:port]` for the Host header.
    authority: String,
    /// Path and query, starting with `/`.
    path: String,
}

fn target(url: &str) -> Result<Target, String> {
    let (scheme, rest) = url.split_once("://").ok_or("the URL has no scheme")?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(format!("scheme {scheme} is not http or https")),
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = path.split('#').next().unwrap_or("/");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("bad IPv6 host")?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port {p}"))?,
        None if https => 443,
        None => 80,
    };
    Ok(Target {
        https,
        host: host.to_string(),
        port,
        authority: authority.to_string(),
        path,
    })
}

async fn exchange(url: &str, body: Bytes) -> Attempt {
    let t = match target(url) {
        Ok(t) => t,
        Err(e) => return Attempt::Failed(e),
    };
    let addrs = match resolve_checked(&t).await {
        Ok(addrs) => addrs,
        Err(attempt) => return attempt,
    };
    let tls = if t.https {
        match tls_config() {
            Ok(config) => Some(config),
            Err(e) => return Attempt::Failed(e),
        }
    } else {
        None
    };
    exchange_with(&t, &addrs, body, tls).await
}

/// The addresses `t`'s host resolves to, each checked to be public unless
/// the operator allowed the host: one internal address refuses them all
/// (a name need not resolve the same way twice, so the connection goes to
/// these addresses, not to a second lookup).
async fn resolve_checked(t: &Target) -> Result<Vec<SocketAddr>, Attempt> {
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((t.host.as_str(), t.port)).await {
        Ok(addrs) => addrs.collect(),
        Err(e) => return Err(Attempt::Failed(format!("cannot resolve {}: {e}", t.host))),
    };
    if addrs.is_empty() {
        return Err(Attempt::Failed(format!("{} has no address", t.host)));
    }
    if !notify_guard::host_allowed(&t.host) {
        for addr in &addrs {
            if let Some(why) = notify_guard::internal_address(addr.ip()) {
                return Err(Attempt::Forbidden(format!(
                    "{} resolves to {}, {why}; webhooks go to public addresses unless the operator allows the host (dwcp up --allow-webhook-host)",
                    t.host,
                    addr.ip()
                )));
            }
        }
    }
    Ok(addrs)
}

async fn exchange_with(
    t: &Target,
    addrs: &[SocketAddr],
    body: Bytes,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Attempt {
    let stream = match tokio::net::TcpStream::connect(addrs).await {
        Ok(s) => s,
        Err(e) => return Attempt::Failed(format!("cannot connect to {}: {e}", t.authority)),
    };
    match tls {
        None => send_over(stream, t, body).await,
        Some(config) => {
            let name = match rustls::pki_types::ServerName::try_from(t.host.clone()) {
                Ok(n) => n,
                Err(e) => return Attempt::Failed(format!("TLS server name {}: {e}", t.host)),
            };
            match tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
            {
                Ok(stream) => send_over(stream, t, body).await,
                Err(e) => Attempt::Failed(format!("TLS with {}: {e}", t.authority)),
            }
        }
    }
}

async fn send_over<S>(stream: S, t: &Target, body: Bytes) -> Attempt
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => return Attempt::Failed(format!("HTTP: {e}")),
        };
    let driver = tokio::spawn(connection);
    let request = Request::post(t.path.as_str())
        .header(HOST, t.authority.as_str())
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
            // The answer's body is read (up to a cap, and dropped) so
            // the exchange ends.
            let _ = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await;
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

/// Where distributions keep the bundle of trusted root certificates.
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The TLS client for https targets, built once from the system's roots.
fn tls_config() -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    static CONFIG: std::sync::OnceLock<Result<std::sync::Arc<rustls::ClientConfig>, String>> =
        std::sync::OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let path = std::env::var("SSL_CERT_FILE")
                .ok()
                .or_else(|| {
                    CA_BUNDLES
                        .iter()
                        .find(|p| std::path::Path::new(p).exists())
                        .map(|p| p.to_string())
                })
                .ok_or("no root certificates for https (set SSL_CERT_FILE to a PEM bundle)")?;
            let pem = std::fs::read(&path).map_err(|e| format!("reading {path}: {e}"))?;
            client_config(&pem).map_err(|e| format!("{path}: {e}"))
        })
        .clone()
}

/// A TLS 1.3 client trusting the certificates of a PEM bundle.
fn client_config(pem: &[u8]) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("bad PEM: {e}"))?;
        // A certificate rustls cannot use is skipped, as other clients do.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("no usable root certificate".into());
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}

fn response_ok(status: u16) -> bool {
    (200..300).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alertmanager_urls_lead_to_the_alerts_endpoint() {
        for (url, endpoint) in [
            ("http://am:9093", "http://am:9093/api/v2/alerts"),
            ("http://am:9093/", "http://am:9093/api/v2/alerts"),
            (
                "https://ops.example/am/",
                "https://ops.example/am/api/v2/alerts",
            ),
            (
                "http://am:9093/api/v2/alerts",
                "http://am:9093/api/v2/alerts",
            ),
            ("http://am:9093/?t=1", "http://am:9093/api/v2/alerts?t=1"),
        ] {
            assert_eq!(alerts_url(url), endpoint, "{url}");
        }
    }

    #[test]
    fn urls_become_targets() {
        let t = target("https://hooks.example.com/services/T/B?x=1#frag").unwrap();
        assert_eq!(
            t,
            Target {
                https: true,
                host: "hooks.example.com".into(),
                port: 443,
                authority: "hooks.example.com".into(),
                path: "/services/T/B?x=1".into(),
            }
        );
        let t = target("http://user:pw@127.0.0.1:9093").unwrap();
        assert_eq!(
            (t.port, t.path.as_str(), t.authority.as_str()),
            (9093, "/", "127.0.0.1:9093")
        );
        let t = target("http://[::1]:8080/hook").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8080));
        assert!(target("ftp://x").is_err());
    }

    /// A name that resolves to a loopback address (`localhost`) is not
    /// reached unless allowed: nothing connects to the listener behind it.
    #[tokio::test]
    async fn a_name_resolving_to_an_internal_address_is_not_reached() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let outcome = exchange(
            &format!("http://localhost:{port}/hook"),
            Bytes::from_static(b"{}"),
        )
        .await;
        match outcome {
            Attempt::Forbidden(why) => {
                assert!(why.contains("localhost resolves to"), "{why}");
                assert!(why.contains("loopback"), "{why}");
            }
            _ => panic!("localhost was reached"),
        }
        assert_eq!(
            listener.accept().map(|_| ()).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock),
            "no connection was made"
        );
    }

    /// A receiver answering a redirect is not followed, and one sending an
    /// endless body is read only up to the cap.
    #[tokio::test]
    async fn redirects_are_not_followed_and_answers_are_read_up_to_a_cap() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serve = tokio::spawn(async move {
            for answer in [
                "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\n\r\n",
                "HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\n\r\n",
            ] {
                let (mut tcp, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                tcp.write_all(answer.as_bytes()).await.unwrap();
                if answer.contains("200") {
                    // 1 MiB of a body announced as 1 GiB, then nothing
                    // more until the client goes.
                    let _ = tcp.write_all(&vec![b'x'; 1 << 20]).await;
                    while tcp.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                }
            }
        });
        let t = target(&format!("http://{addr}/hook")).unwrap();
        let body = Bytes::from_static(b"{}");
        let outcome = exchange_with(&t, &[addr], body.clone(), None).await;
        assert!(matches!(outcome, Attempt::Refused(302)));
        // Without the cap this waits for the rest of the gigabyte; a
        // generous deadline turns that into a failure instead of a hang.
        let outcome = tokio::time::timeout(
            Duration::from_secs(120),
            exchange_with(&t, &[addr], body, None),
        )
        .await
        .expect("the answer is read only up to the cap");
        assert!(matches!(outcome, Attempt::Delivered(200)));
        serve.await.unwrap();
    }

    /// A TLS receiver with a certificate for `localhost` from its own CA:
    /// a notification to it over https is delivered when the CA is
    /// trusted, and fails naming TLS when it is not.
    #[tokio::test]
    async fn https_targets_are_reached_over_tls_13() {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(cert.pem().as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let serve = tokio::spawn(async move {
            let mut bodies = Vec::new();
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue;
                };
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while !String::from_utf8_lossy(&got).contains("\"firing\"") {
                    let n = tls.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
                tls.flush().await.unwrap();
                bodies.push(String::from_utf8_lossy(&got).into_owned());
            }
            bodies
        });
        let t = target(&format!("https://localhost:{port}/hook")).unwrap();
        let body = Bytes::from_static(br#"{"status":"firing"}"#);
        // Not trusted: another CA.
        let other = rcgen::KeyPair::generate().unwrap();
        let other = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&other)
            .unwrap();
        let untrusted = client_config(other.pem().as_bytes()).unwrap();
        let addrs = [std::net::SocketAddr::from(([127, 0, 0, 1], port))];
        let outcome = exchange_with(&t, &addrs, body.clone(), Some(untrusted)).await;
        assert!(
            matches!(&outcome, Attempt::Failed(e) if e.starts_with("TLS with localhost")),
            "untrusted"
        );
        let trusted = client_config(cert.pem().as_bytes()).unwrap();
        let outcome = exchange_with(&t, &addrs, body, Some(trusted)).await;
        assert!(matches!(outcome, Attempt::Delivered(200)));
        let bodies = serve.await.unwrap();
        let delivered = bodies.last().unwrap();
        assert!(delivered.starts_with("POST /hook HTTP/1.1"), "{delivered}");
        assert!(delivered.contains(r#"{"status":"firing"}"#), "{delivered}");
    }
}
