//! A bare HTTP/1.1 client for the probes: any method, any or no token,
//! and the status as it came (the API client turns statuses into errors).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

/// Bounds every probe request.
const TIMEOUT: Duration = Duration::from_secs(30);

/// One keep-alive connection to `addr`.
pub struct Conn {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

/// What came back.
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
    pub date: Option<String>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn> {
        let stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr))
            .await
            .with_context(|| format!("connecting to {addr}: timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Conn { addr, sender })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: &Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Answer> {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| (AUTHORIZATION.as_str(), b))
            .into_iter()
            .collect();
        self.send_headers(method, path, &headers, body).await
    }

    /// Sends one request with these headers and reads the whole answer.
    pub async fn send_headers(
        &mut self,
        method: &Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Answer> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, self.addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                request = request.header(CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(body))?;
        let answer = async {
            self.sender.ready().await?;
            let response = self.sender.send_request(request).await?;
            let status = response.status().as_u16();
            let date = response
                .headers()
                .get(hyper::header::DATE)
                .and_then(|d| d.to_str().ok())
                .map(str::to_string);
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok(Answer { status, body, date })
        };
        tokio::time::timeout(TIMEOUT, answer)
            .await
            .with_context(|| format!("{method} {path}: no answer within {} s", TIMEOUT.as_secs()))?
    }

    /// [`Conn::send`] timed, in ms.
    pub async fn timed(
        &mut self,
        method: &Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<(Answer, f64)> {
        let started = Instant::now();
        let answer = self.send(method, path, token, body).await?;
        Ok((answer, started.elapsed().as_secs_f64() * 1e3))
    }
}

/// One request on a new connection.
pub async fn once(
    addr: SocketAddr,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: Option<(&'static str, Bytes)>,
) -> Result<Answer> {
    Conn::open(addr)
        .await?
        .send(method, path, token, body)
        .await
}

/// `{"k": v}` as a JSON body.
pub fn json(value: &serde_json::Value) -> Option<(&'static str, Bytes)> {
    Some((
        "application/json",
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    ))
}

/// A streaming GET held open (its answer's head read, its body not): the
/// connection lives as long as the returned value.
pub struct Held(#[allow(dead_code)] hyper::Response<hyper::body::Incoming>);

/// Opens `GET path` as a stream; refused unless it answers 200.
pub async fn open_stream(addr: SocketAddr, path: &str, token: &str) -> Result<Held> {
    let mut conn = Conn::open(addr).await?;
    let request = Request::get(path)
        .header(HOST, addr.to_string())
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))?;
    let response = tokio::time::timeout(TIMEOUT, conn.sender.send_request(request))
        .await
        .context("no answer")??;
    anyhow::ensure!(
        response.status() == 200,
        "{path} answered {}",
        response.status()
    );
    Ok(Held(response))
}
