//! The peer-port probes: a TLS 1.2 handshake, and Raft asked for over TLS
//! 1.3 with a stranger's certificate or none. The probe's own client
//! trusts any server (it tests the server's doors, not its identity).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts any server certificate: the probe looks at the server's doors.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn connect(
    peer: SocketAddr,
    config: ClientConfig,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(peer))
        .await
        .context("connecting: timed out")??;
    let name = ServerName::IpAddress(peer.ip().into());
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    Ok(tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
        .await
        .context("the handshake timed out")??)
}

/// Ok when `peer` answers a ClientHello that offers TLS 1.2 only (no
/// `supported_versions` extension) with a ServerHello; an error naming
/// what it answered otherwise (a TLS 1.3-only server sends an alert).
/// The hello is written out by hand: this build's TLS library speaks TLS
/// 1.3 only, which is the point.
pub async fn handshake_tls12(peer: SocketAddr) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut body = vec![0x03, 0x03];
    // The hello's random need not be secret: nothing is negotiated.
    let now = cluster::unix_now_ms().to_le_bytes();
    for _ in 0..4 {
        body.extend_from_slice(&now);
    }
    body.push(0); // no session id
    // ECDHE with AES-GCM, RSA and ECDSA.
    body.extend_from_slice(&[0x00, 0x08, 0xc0, 0x2f, 0xc0, 0x2b, 0xc0, 0x30, 0xc0, 0x2c]);
    body.extend_from_slice(&[0x01, 0x00]); // no compression
    let extensions: &[u8] = &[
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // groups
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // point formats
        0x00, 0x0d, 0x00, 0x0a, 0x00, 0x08, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05,
        0x01, // signatures
    ];
    body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    body.extend_from_slice(extensions);
    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    let mut tcp = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(peer))
        .await
        .context("connecting: timed out")??;
    tcp.write_all(&record).await?;
    let mut head = [0u8; 6];
    match tokio::time::timeout(TIMEOUT, tcp.read_exact(&mut head)).await {
        Ok(Ok(_)) if head[0] == 0x16 && head[5] == 0x02 => Ok(()),
        Ok(Ok(_)) if head[0] == 0x15 => Err(anyhow::anyhow!(
            "it answered with a TLS alert (level {}, description {})",
            head[5],
            {
                let mut d = [0u8; 1];
                let _ = tcp.read_exact(&mut d).await;
                d[0]
            }
        )),
        Ok(Ok(_)) => Err(anyhow::anyhow!("it answered record type {}", head[0])),
        Ok(Err(e)) => Err(anyhow::anyhow!("it closed the connection: {e}")),
        Err(_) => Err(anyhow::anyhow!("no answer within {} s", TIMEOUT.as_secs())),
    }
}

/// The status `POST /raft/call` gets over TLS 1.3 with a certificate a
/// stranger's CA issued (`stranger`) or with none; an error when the
/// connection is refused before HTTP.
pub async fn raft_status(peer: SocketAddr, stranger: bool) -> Result<u16> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider())));
    let mut config = if stranger {
        let ca = cluster::tls::ClusterCa::create("certify-stranger")?;
        let id = ca.issue("stranger", &[peer.ip().to_string()])?;
        let cert = CertificateDer::from_pem_slice(id.cert_pem.as_bytes())?;
        let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes())?;
        builder.with_client_auth_cert(vec![cert], key)?
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tls = connect(peer, config).await?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::post(format!("https://{peer}/raft/call"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(b"{}")))?;
    let response = tokio::time::timeout(TIMEOUT, sender.send_request(request))
        .await
        .context("no answer")??;
    Ok(response.status().as_u16())
}
