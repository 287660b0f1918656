//! A small client for DWCP's HTTP API (`/api/v1`, JSON, bearer token), used
//! by the client subcommands (`apps`, `app`, `deploy`, `cluster`).
//!
//! It speaks HTTP/1.1 — plain, or over TLS 1.3 for an `https://` API
//! (`dwcp up --api-tls`), trusting only the CA in `--ca-file` — over one
//! fresh TCP connection per request: the
//! commands make a handful of calls, so pooling would buy nothing and a
//! fresh connection never trips over one the server has half-closed. Every
//! request has a deadline so that a hung server gives an error, not a hang.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

/// Where `dwcp up` serves its API unless told otherwise.
pub const DEFAULT_API: &str = "http://127.0.0.1:7070";
/// Every path the client asks for starts with this.
const PREFIX: &str = "/api/v1";
/// Deadline for an ordinary API call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline for an upload: the server answers once a majority of the nodes
/// hold a copy, which takes longer than a metadata write.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);
/// Deadline for the TCP connection alone, so that an unreachable address is
/// reported as such rather than as a slow server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read; the API's answers are small JSON documents.
const MAX_RESPONSE: usize = 64 << 20;

/// How to reach the API; flattened into every client command.
#[derive(clap::Args, Clone, Debug)]
pub struct ApiArgs {
    /// The DWCP API, as http://HOST:PORT or https://HOST:PORT.
    #[arg(long, value_name = "URL", env = "DWCP_API", default_value = DEFAULT_API)]
    pub api: String,
    /// For an https:// API: the CA certificate (PEM) to trust — the
    /// cluster's, DATA-DIR/tls/ca.pem, unless the API was given its own
    /// certificate (dwcp up --api-cert).
    #[arg(long, value_name = "FILE", env = "DWCP_CA")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Bearer token for the API (the admin token is printed by the first `dwcp up`).
    #[arg(long, value_name = "TOKEN", env = "DWCP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--api `{value}`: {reason}; use http://HOST:PORT, e.g. {DEFAULT_API}")]
    BadUrl { value: String, reason: &'static str },
    #[error("--ca-file: {0}")]
    CaFile(String),
    #[error(
        "no API token: pass --token or set DWCP_TOKEN (the admin token was printed by the first `dwcp up`)"
    )]
    NoToken,
    #[error("cannot reach the DWCP API at {url}: {reason} (is `dwcp up` running?)")]
    Connect { url: String, reason: String },
    #[error(
        "the DWCP API at {url} did not answer {method} {path} within {}s",
        after.as_secs()
    )]
    Timeout {
        url: String,
        method: Method,
        path: String,
        after: Duration,
    },
    #[error("talking to the DWCP API at {url} failed during {method} {path}: {source}")]
    Http {
        url: String,
        method: Method,
        path: String,
        source: hyper::Error,
    },
    #[error(
        "the DWCP API at {url} gave an answer to {method} {path} that dwcp cannot read: {reason}"
    )]
    Decode {
        url: String,
        method: Method,
        path: String,
        reason: String,
    },
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl ClientError {
    /// Whether the API said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api(e) if e.status == StatusCode::NOT_FOUND)
    }
}

/// An error the API answered with: `{"error":{"code","message","field"}}`
/// and a 4xx/5xx status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl std::error::Error for ApiError {}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field: {field})")?;
        }
        write!(f, " [HTTP {}", self.status.as_u16())?;
        if let Some(reason) = self.status.canonical_reason() {
            write!(f, " {reason}")?;
        }
        if !self.code.is_empty() {
            write!(f, ", {}", self.code)?;
        }
        f.write_str("]")?;
        if self.status == StatusCode::UNAUTHORIZED {
            f.write_str("; check --token / DWCP_TOKEN")?;
        }
        Ok(())
    }
}

impl ApiError {
    /// Reads an error answer. A body that is not the API's error document
    /// (a proxy's page, an empty body) still gives a useful message.
    pub fn from_response(status: StatusCode, body: &[u8]) -> ApiError {
        #[derive(serde::Deserialize)]
        struct Envelope {
            error: Inner,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            #[serde(default)]
            code: String,
            message: String,
            #[serde(default)]
            field: Option<String>,
        }
        if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(body) {
            return ApiError {
                status,
                code: error.code,
                message: error.message,
                field: error.field,
            };
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() {
            "the API refused the request".to_string()
        } else {
            text.chars().take(200).collect()
        };
        ApiError {
            status,
            code: String::new(),
            message,
            field: None,
        }
    }
}

/// Host and port of an `http://HOST:PORT` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// As written, with brackets kept around an IPv6 address.
    host: String,
    port: u16,
    /// `https://`: TLS 1.3.
    secure: bool,
}

impl Endpoint {
    /// Parses `--api`: only plain `http://HOST:PORT` (a trailing `/` is
    /// allowed), since the client speaks neither TLS nor path prefixes.
    pub fn parse(value: &str) -> Result<Endpoint, ClientError> {
        let bad = |reason| ClientError::BadUrl {
            value: value.to_string(),
            reason,
        };
        let rest = match value.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
            Some(_) => return Err(bad("only the http and https schemes are supported")),
            None => return Err(bad("the URL must start with http:// or https://")),
        };
        let (secure, rest) = rest;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(bad(
                "a path is not allowed (the client adds /api/v1 itself)",
            ));
        }
        if authority.contains('@') {
            return Err(bad("user information is not allowed; use --token"));
        }
        let (host, port) = if authority.starts_with('[') {
            let end = authority
                .find(']')
                .ok_or_else(|| bad("an IPv6 address must be in brackets"))?;
            let (host, rest) = authority.split_at(end + 1);
            match rest.strip_prefix(':') {
                Some(port) => (host, port),
                None if rest.is_empty() => return Err(bad("the port is missing")),
                None => return Err(bad("an IPv6 address must be in brackets")),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(bad("an IPv6 address must be in brackets"));
                }
                Some(split) => split,
                None => return Err(bad("the port is missing")),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(bad("the host is missing"));
        }
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
        Ok(Endpoint {
            host: host.to_string(),
            port,
            secure,
        })
    }

    /// `host:port`, for the Host header.
    fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The host as a name or address to connect to (no brackets).
    fn connect_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// A request body: bytes and their content type.
struct Body {
    content_type: &'static str,
    bytes: Bytes,
    /// Told each chunk's size as it is handed to the connection (an
    /// upload's progress).
    sent: Option<Sent>,
}

/// What an upload calls with each chunk's size in bytes as it goes out.
pub type Sent = Arc<dyn Fn(u64) + Send + Sync>;

/// Bytes handed out per body frame: small enough for a smooth progress
/// bar, large enough to cost nothing.
const CHUNK_BYTES: usize = 64 * 1024;

/// A request body in [`CHUNK_BYTES`] frames, telling `sent` of each; its
/// exact size is known, so it goes with a `content-length` as a whole
/// body would.
struct Chunks {
    bytes: Bytes,
    sent: Option<Sent>,
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.bytes.is_empty() {
            return std::task::Poll::Ready(None);
        }
        let n = self.bytes.len().min(CHUNK_BYTES);
        let chunk = self.bytes.split_to(n);
        if let Some(sent) = &self.sent {
            sent(n as u64);
        }
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_empty()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.bytes.len() as u64)
    }
}

/// The arguments of a command that lists things: `--json` and where the
/// API is (`dwcp token list`, `dwcp user list`, `dwcp slo list`, …).
#[derive(clap::Args)]
pub struct ListArgs {
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// A user's session: the cookie (`name=value`) and its CSRF token.
#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
    mfa: bool,
}

/// The API client: where it is and who we are.
#[derive(Clone)]
pub struct Client {
    endpoint: Endpoint,
    /// The bearer token; empty for a user's session or no credential.
    token: String,
    /// A user's session (`dwcp certify sign-off`): sent instead of a token.
    session: Option<Session>,
    /// For an https:// API: TLS 1.3 trusting the CA of `--ca-file`.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Client {
    /// Checks `--api` and `--token` without touching the network.
    pub fn new(args: &ApiArgs) -> Result<Client, ClientError> {
        let endpoint = Endpoint::parse(args.api.trim())?;
        let token = args
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ClientError::NoToken)?
            .to_string();
        let tls = match (&args.ca_file, endpoint.secure) {
            (_, false) => None,
            (None, true) => {
                return Err(ClientError::CaFile(
                    "an https:// API needs the CA that signed its certificate: pass --ca-file or set DWCP_CA (the cluster's CA is DATA-DIR/tls/ca.pem)".into(),
                ));
            }
            (Some(path), true) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| ClientError::CaFile(format!("{}: {e}", path.display())))?;
                Some(
                    cluster::tls::api_client_config(&pem)
                        .map_err(|e| ClientError::CaFile(format!("{}: {e}", path.display())))?,
                )
            }
        };
        Ok(Client {
            endpoint,
            token,
            session: None,
            tls,
        })
    }

    /// Logs user `user` in (`POST /session`, with a TOTP code when they
    /// have one) and returns a client that acts in that session: the
    /// session cookie and its CSRF token instead of a bearer token.
    pub async fn login(
        args: &ApiArgs,
        user: &str,
        password: &str,
        totp: Option<&str>,
    ) -> Result<Client, ClientError> {
        let mut client = Client::new(&ApiArgs {
            token: Some("-".into()),
            ..args.clone()
        })?;
        client.token = String::new();
        let body = serde_json::json!({ "user": user, "password": password, "totp": totp });
        let body = Body {
            sent: None,
            content_type: "application/json",
            bytes: serde_json::to_vec(&body)
                .expect("a JSON value serializes")
                .into(),
        };
        let (answer, cookie) = client
            .send_full(Method::POST, "/session", Some(body), REQUEST_TIMEOUT)
            .await?;
        #[derive(serde::Deserialize)]
        struct LoggedIn {
            csrf: Option<String>,
            mfa: bool,
        }
        let logged: LoggedIn = client.decode(Method::POST, "/session", &answer)?;
        let (Some(cookie), Some(csrf)) = (cookie, logged.csrf) else {
            return Err(ClientError::Decode {
                url: client.endpoint.to_string(),
                method: Method::POST,
                path: format!("{PREFIX}/session"),
                reason: "the login answered no session cookie or CSRF token".into(),
            });
        };
        client.session = Some(Session {
            cookie,
            csrf,
            mfa: logged.mfa,
        });
        Ok(client)
    }

    /// Whether this client's session passed TOTP (`false` for tokens).
    pub fn session_mfa(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.mfa)
    }

    /// GETs `path` (under `/api/v1`) and decodes its JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let bytes = self.get_raw(path).await?;
        self.decode(Method::GET, path, &bytes)
    }

    /// GETs `path` and prints it: the API's JSON as sent when `json` (or
    /// `-o json`), else `render` of it decoded (a table).
    pub async fn print<T: DeserializeOwned>(
        &self,
        path: &str,
        json: bool,
        render: impl FnOnce(&T) -> String,
    ) -> Result<(), ClientError> {
        if json_output(json) {
            let body = self.get_raw(path).await?;
            println!("{}", String::from_utf8_lossy(&body).trim_end());
        } else {
            print!("{}", render(&self.get(path).await?));
        }
        Ok(())
    }

    /// GETs `path` and returns the body as sent, for `--json`.
    pub async fn get_raw(&self, path: &str) -> Result<Bytes, ClientError> {
        self.send(Method::GET, path, None, REQUEST_TIMEOUT).await
    }

    /// GETs `path` with the longer upload deadline (large answers: a
    /// backup's state, an artifact) and returns the body as sent.
    pub async fn download(&self, path: &str) -> Result<Bytes, ClientError> {
        self.send(Method::GET, path, None, UPLOAD_TIMEOUT).await
    }

    /// [`Client::download`], decoded from JSON.
    pub async fn download_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let bytes = self.download(path).await?;
        self.decode(Method::GET, path, &bytes)
    }

    /// POSTs `body` as JSON and decodes the JSON answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.json_call(Method::POST, path, body).await
    }

    /// PUTs `body` as JSON and decodes the JSON answer.
    pub async fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.json_call(Method::PUT, path, body).await
    }

    /// Sends `body` as JSON with `method`; the answer's body (a 204 has
    /// none) is ignored.
    pub async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<(), ClientError> {
        let bytes = serde_json::to_vec(body).expect("request bodies serialize");
        let body = Body {
            sent: None,
            content_type: "application/json",
            bytes: bytes.into(),
        };
        self.send(method, path, Some(body), REQUEST_TIMEOUT)
            .await
            .map(drop)
    }

    /// DELETEs `path`; the answer's body, if any, is ignored.
    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.send(Method::DELETE, path, None, REQUEST_TIMEOUT)
            .await
            .map(drop)
    }

    /// POSTs raw bytes with `content_type`, with the longer upload deadline.
    pub async fn upload<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &'static str,
        bytes: Bytes,
    ) -> Result<T, ClientError> {
        self.upload_telling(path, content_type, bytes, None).await
    }

    /// [`Client::upload`], telling `sent` of each chunk as it goes out.
    pub async fn upload_telling<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &'static str,
        bytes: Bytes,
        sent: Option<Sent>,
    ) -> Result<T, ClientError> {
        let body = Body {
            sent,
            content_type,
            bytes,
        };
        let answer = self
            .send(Method::POST, path, Some(body), UPLOAD_TIMEOUT)
            .await?;
        self.decode(Method::POST, path, &answer)
    }

    /// PUTs a text document (e.g. a runbook) as `content_type`.
    pub async fn put_text<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &'static str,
        text: String,
    ) -> Result<T, ClientError> {
        let body = Body {
            sent: None,
            content_type,
            bytes: text.into(),
        };
        let answer = self
            .send(Method::PUT, path, Some(body), REQUEST_TIMEOUT)
            .await?;
        self.decode(Method::PUT, path, &answer)
    }

    async fn json_call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body).expect("request bodies serialize");
        let body = Body {
            sent: None,
            content_type: "application/json",
            bytes: bytes.into(),
        };
        let answer = self
            .send(method.clone(), path, Some(body), REQUEST_TIMEOUT)
            .await?;
        self.decode(method, path, &answer)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bytes: &[u8],
    ) -> Result<T, ClientError> {
        serde_json::from_slice(bytes).map_err(|e| ClientError::Decode {
            url: self.endpoint.to_string(),
            method,
            path: format!("{PREFIX}{path}"),
            reason: e.to_string(),
        })
    }

    /// One request on a fresh connection, under `deadline`. Returns the body
    /// of a 2xx answer; any other status becomes [`ClientError::Api`].
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
        deadline: Duration,
    ) -> Result<Bytes, ClientError> {
        self.send_full(method, path, body, deadline)
            .await
            .map(|(bytes, _)| bytes)
    }

    /// [`Client::send`], with the session cookie the answer set, if any.
    async fn send_full(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
        deadline: Duration,
    ) -> Result<(Bytes, Option<String>), ClientError> {
        let full_path = format!("{PREFIX}{path}");
        let call = self.exchange(method.clone(), &full_path, body);
        match tokio::time::timeout(deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                url: self.endpoint.to_string(),
                method,
                path: full_path,
                after: deadline,
            }),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<(Bytes, Option<String>), ClientError> {
        let url = self.endpoint.to_string();
        let connect = TcpStream::connect((self.endpoint.connect_host(), self.endpoint.port));
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    url,
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                return Err(ClientError::Connect {
                    url,
                    reason: format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()),
                });
            }
        };
        let Some(tls) = &self.tls else {
            return self.exchange_over(stream, method, path, body).await;
        };
        let name =
            rustls::pki_types::ServerName::try_from(self.endpoint.connect_host().to_string())
                .map_err(|e| ClientError::Connect {
                    url: url.clone(),
                    reason: format!("the host is not a name TLS can check: {e}"),
                })?;
        let handshake = tokio_rustls::TlsConnector::from(tls.clone()).connect(name, stream);
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                return Err(ClientError::Connect {
                    url,
                    reason: format!(
                        "TLS: {e} (is --ca-file the CA that signed the API's certificate?)"
                    ),
                });
            }
            Err(_) => {
                return Err(ClientError::Connect {
                    url,
                    reason: "no TLS handshake within the deadline".into(),
                });
            }
        };
        self.exchange_over(stream, method, path, body).await
    }

    /// One request over an open connection (plain or TLS).
    async fn exchange_over<I>(
        &self,
        stream: I,
        method: Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<(Bytes, Option<String>), ClientError>
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let url = self.endpoint.to_string();
        let http_err = |source| ClientError::Http {
            url: url.clone(),
            method: method.clone(),
            path: path.to_string(),
            source,
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http_err)?;
        // The connection future drives the socket; it ends when the request
        // is done and `sender` is dropped.
        let driver = tokio::spawn(connection);

        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, self.endpoint.authority())
            .header("accept", "application/json");
        if let Some(session) = &self.session {
            request = request
                .header(COOKIE, &session.cookie)
                .header("x-csrf-token", &session.csrf);
        } else if !self.token.is_empty() {
            request = request.header(AUTHORIZATION, format!("Bearer {}", self.token));
        }
        let payload = match body {
            Some(body) => {
                request = request.header(CONTENT_TYPE, body.content_type);
                Chunks {
                    bytes: body.bytes,
                    sent: body.sent,
                }
            }
            None => Chunks {
                bytes: Bytes::new(),
                sent: None,
            },
        };
        let request = request.body(payload).map_err(|e| ClientError::Decode {
            url: url.clone(),
            method: method.clone(),
            path: path.to_string(),
            reason: format!("cannot build the request: {e}"),
        })?;
        let response = sender.send_request(request).await.map_err(http_err)?;
        let status = response.status();
        // `name=value` of the session cookie a login sets.
        let cookie = response
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::to_string);
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| ClientError::Decode {
                url: url.clone(),
                method: method.clone(),
                path: path.to_string(),
                reason: format!("cannot read the answer: {e}"),
            })?
            .to_bytes();
        drop(sender);
        driver.abort();
        if status.is_success() {
            Ok((bytes, cookie))
        } else {
            Err(ApiError::from_response(status, &bytes).into())
        }
    }
}

/// Whether `-o json` was given (for every command), set once by `main`.
static JSON_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes every command print JSON (`dwcp -o json …`).
pub fn set_json_output(on: bool) {
    JSON_OUTPUT.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Whether to print JSON: the command's own `--json` flag, or `-o json`.
pub fn json_output(flag: bool) -> bool {
    flag || JSON_OUTPUT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Prints what a change answered: its JSON (one line) under `--json` /
/// `-o json`, else `text`. Commands that change something print with it,
/// so scripts read the stored record in a stable shape.
pub fn print_outcome<T: Serialize>(json: bool, answer: &T, text: impl FnOnce() -> String) {
    if json_output(json) {
        println!(
            "{}",
            serde_json::to_string(answer).unwrap_or_else(|_| "null".into())
        );
    } else {
        println!("{}", text());
    }
}

/// A command that ran but whose outcome a script must see as a failure:
/// its exit status and what to say on stderr (`main` prints `dwcp:
/// MESSAGE` and exits with `code`).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Outcome {
    pub code: u8,
    pub message: String,
}

/// Exit status: something watched is unhealthy (a node down or
/// unreachable).
pub const EXIT_UNHEALTHY: u8 = 3;
/// Exit status: the rollout was aborted.
pub const EXIT_ABORTED: u8 = 4;
/// Exit status: a wait ran out of time.
pub const EXIT_TIMED_OUT: u8 = 5;

/// Runs a client command's future on a small runtime of its own: the
/// client commands are one short conversation each.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread tokio runtime starts")
        .block_on(future)
}

/// The path of one app under `/api/v1`.
pub fn app_path(tenant: &state::Name, app: &state::Name) -> String {
    format!("/tenants/{tenant}/apps/{app}")
}

/// `n thing` or `n things`.
pub fn plural(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("{n} {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(s: &str) -> Endpoint {
        Endpoint::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn reason(s: &str) -> String {
        let e = Endpoint::parse(s).expect_err(s);
        let text = e.to_string();
        assert!(text.starts_with(&format!("--api `{s}`: ")), "{text}");
        text
    }

    #[test]
    fn api_urls_that_parse() {
        let e = endpoint("http://127.0.0.1:7070");
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 7070));
        assert_eq!(e.to_string(), "http://127.0.0.1:7070");
        assert_eq!(e.authority(), "127.0.0.1:7070");
        assert_eq!(endpoint("http://localhost:80/").port, 80);
        assert_eq!(
            endpoint("HTTP://node-1.example:9000").host,
            "node-1.example"
        );
        let v6 = endpoint("http://[::1]:7070");
        assert_eq!(v6.host, "[::1]");
        assert_eq!(v6.connect_host(), "::1");
        assert_eq!(v6.to_string(), "http://[::1]:7070");
    }

    #[test]
    fn api_urls_that_do_not() {
        assert!(Endpoint::parse("https://127.0.0.1:7070").unwrap().secure);
        assert!(reason("127.0.0.1:7070").contains("must start with http://"));
        assert!(reason("ftp://host:21").contains("only the http and https schemes"));
        assert!(reason("http://127.0.0.1").contains("port is missing"));
        assert!(reason("http://127.0.0.1:").contains("port must be a number"));
        assert!(reason("http://127.0.0.1:99999").contains("port must be a number"));
        assert!(reason("http://127.0.0.1:0").contains("port must be a number"));
        assert!(reason("http://:7070").contains("host is missing"));
        assert!(reason("http://127.0.0.1:7070/api/v1").contains("path is not allowed"));
        assert!(reason("http://u:p@127.0.0.1:7070").contains("user information"));
        assert!(reason("http://::1:7070").contains("brackets"));
        assert!(reason("http://[::1:7070").contains("brackets"));
        assert!(reason("http://[::1]").contains("port is missing"));
        assert!(reason("http://[::1]x:7070").contains("brackets"));
        assert!(reason("host:7070").contains("use http://HOST:PORT, e.g. http://127.0.0.1:7070"));
    }

    #[test]
    fn a_token_is_required() {
        let args = |token: Option<&str>| ApiArgs {
            api: DEFAULT_API.into(),
            token: token.map(str::to_string),
            ca_file: None,
        };
        for missing in [None, Some(""), Some("  ")] {
            let e = Client::new(&args(missing)).err().expect("no token");
            assert!(matches!(e, ClientError::NoToken));
            let text = e.to_string();
            assert!(
                text.contains("DWCP_TOKEN") && text.contains("dwcp up"),
                "{text}"
            );
        }
        assert_eq!(Client::new(&args(Some(" t0k "))).unwrap().token, "t0k");
        // https needs the CA to trust.
        let https = ApiArgs {
            api: "https://127.0.0.1:7070".into(),
            ..args(Some("t"))
        };
        let e = Client::new(&https).err().expect("no CA file").to_string();
        assert!(e.contains("--ca-file") && e.contains("DWCP_CA"), "{e}");
    }

    #[test]
    fn api_errors_render_message_field_and_status() {
        let body = br#"{"error":{"code":"invalid","message":"route `x` must start with '/'","field":"route"}}"#;
        let e = ApiError::from_response(StatusCode::BAD_REQUEST, body);
        assert_eq!(e.field.as_deref(), Some("route"));
        assert_eq!(
            e.to_string(),
            "route `x` must start with '/' (field: route) [HTTP 400 Bad Request, invalid]"
        );

        let body =
            br#"{"error":{"code":"not_found","message":"no app default/hello","field":null}}"#;
        let e = ClientError::from(ApiError::from_response(StatusCode::NOT_FOUND, body));
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "no app default/hello [HTTP 404 Not Found, not_found]"
        );

        let body = br#"{"error":{"code":"unauthorized","message":"bad token","field":null}}"#;
        let e = ApiError::from_response(StatusCode::UNAUTHORIZED, body);
        assert!(e.to_string().ends_with("; check --token / DWCP_TOKEN"));
    }

    #[test]
    fn api_errors_without_the_error_document() {
        let e = ApiError::from_response(StatusCode::BAD_GATEWAY, b"upstream down\n");
        assert_eq!(e.to_string(), "upstream down [HTTP 502 Bad Gateway]");
        let e = ApiError::from_response(StatusCode::INTERNAL_SERVER_ERROR, b"");
        assert_eq!(
            e.to_string(),
            "the API refused the request [HTTP 500 Internal Server Error]"
        );
    }

    #[test]
    fn connection_and_timeout_errors() {
        let e = ClientError::Connect {
            url: DEFAULT_API.into(),
            reason: "Connection refused (os error 111)".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach the DWCP API at http://127.0.0.1:7070: Connection refused (os error 111) (is `dwcp up` running?)"
        );
        let e = ClientError::Timeout {
            url: DEFAULT_API.into(),
            method: Method::GET,
            path: "/api/v1/apps".into(),
            after: REQUEST_TIMEOUT,
        };
        assert_eq!(
            e.to_string(),
            "the DWCP API at http://127.0.0.1:7070 did not answer GET /api/v1/apps within 30s"
        );
    }
}
