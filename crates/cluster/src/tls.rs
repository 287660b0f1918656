//! The cluster's PKI and its TLS settings: a CA created by the cluster's
//! first node, certificates it issues to nodes, and TLS 1.3 configurations
//! under which each side must present a certificate from that CA.
//!
//! Invariants: TLS 1.3 only; a peer without a certificate signed by the
//! cluster's CA is refused by both the server and the client side.

use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why a certificate or TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("PEM data for {what} is not valid: {reason}")]
    Pem { what: &'static str, reason: String },
}

fn ca_params(cluster: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("dwcp cluster {cluster} CA"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// The certificate authority of one cluster.
pub struct ClusterCa {
    cluster: String,
    cert_pem: String,
    key: KeyPair,
}

/// A node's certificate and private key, in PEM.
#[derive(Clone)]
pub struct NodeIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl ClusterCa {
    /// Creates a new CA for `cluster` with a fresh key.
    pub fn create(cluster: &str) -> Result<ClusterCa, TlsError> {
        let key = KeyPair::generate()?;
        let cert = ca_params(cluster).self_signed(&key)?;
        Ok(ClusterCa {
            cluster: cluster.to_string(),
            cert_pem: cert.pem(),
            key,
        })
    }

    /// Loads a CA saved with [`ClusterCa::cert_pem`] and [`ClusterCa::key_pem`].
    pub fn load(cluster: &str, cert_pem: &str, key_pem: &str) -> Result<ClusterCa, TlsError> {
        let key = KeyPair::from_pem(key_pem)?;
        CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| TlsError::Pem {
            what: "the CA certificate",
            reason: e.to_string(),
        })?;
        Ok(ClusterCa {
            cluster: cluster.to_string(),
            cert_pem: cert_pem.to_string(),
            key,
        })
    }

    /// The CA certificate, which every node trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key: a secret, to be stored encrypted.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a certificate for node `name`, valid for `hosts` (DNS names or
    /// IP addresses), usable as both TLS server and client, with a fresh
    /// key made here (the founder's own certificate).
    pub fn issue(&self, name: &str, hosts: &[String]) -> Result<NodeIdentity, TlsError> {
        let key = KeyPair::generate()?;
        let issuer = Issuer::new(ca_params(&self.cluster), &self.key);
        let cert = node_params(name, hosts)?.signed_by(&key, &issuer)?;
        Ok(NodeIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Signs a certificate for node `name`, valid for `hosts`, for the key
    /// of a certificate signing request (whose own signature, the proof
    /// that its sender holds the key, is checked). Only the key is taken
    /// from the request: the name, hosts and uses are this CA's choice.
    pub fn sign(&self, name: &str, hosts: &[String], csr_pem: &str) -> Result<String, TlsError> {
        let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)?;
        let issuer = Issuer::new(ca_params(&self.cluster), &self.key);
        Ok(node_params(name, hosts)?
            .signed_by(&csr.public_key, &issuer)?
            .pem())
    }
}

/// How long node certificates are valid by default: 30 days. A node
/// renews its certificate when a third of that is left.
pub const NODE_CERT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

static LIFETIME: OnceLock<Duration> = OnceLock::new();

/// Sets how long the certificates this process signs are valid (tests
/// shorten it: `dwcp up --cert-lifetime`, hidden); once, before any node
/// starts. Returns false if it was set already.
pub fn set_node_cert_lifetime(lifetime: Duration) -> bool {
    LIFETIME.set(lifetime).is_ok()
}

/// How long the certificates this process signs are valid.
pub fn node_cert_lifetime() -> Duration {
    LIFETIME.get().copied().unwrap_or(NODE_CERT_LIFETIME)
}

/// A node's certificate: common name `name`, the name and `hosts` as
/// subject alternative names, for TLS server and client use, valid from a
/// few minutes ago (clocks differ) for [`node_cert_lifetime`].
fn node_params(name: &str, hosts: &[String]) -> Result<CertificateParams, TlsError> {
    let mut names = vec![name.to_string()];
    names.extend(hosts.iter().cloned());
    let mut params = CertificateParams::new(names)?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after =
        now + time::Duration::try_from(node_cert_lifetime()).unwrap_or(time::Duration::days(30));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(params)
}

/// A new node key and a certificate signing request for it, both PEM:
/// what a joining node makes, so its key never leaves it.
pub fn new_node_key() -> Result<(String, String), TlsError> {
    let key = KeyPair::generate()?;
    let csr = CertificateParams::new(Vec::<String>::new())?.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

/// A certificate signing request for the key `key_pem` (a renewal keeps
/// the node's key, which the state pins).
pub fn request_for(key_pem: &str) -> Result<String, TlsError> {
    let key = KeyPair::from_pem(key_pem)?;
    let csr = CertificateParams::new(Vec::<String>::new())?.serialize_request(&key)?;
    Ok(csr.pem()?)
}

/// Lowercase hex sha256 of the public key (SubjectPublicKeyInfo) of a
/// certificate signing request whose signature checks.
pub fn request_key_fingerprint(csr_pem: &str) -> Result<String, TlsError> {
    use rcgen::PublicKeyData;
    let csr = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)?;
    Ok(state::digest_of(&csr.public_key.subject_public_key_info()))
}

/// When a PEM certificate stops being valid.
pub fn not_after(cert_pem: &str) -> Result<SystemTime, TlsError> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| TlsError::Pem {
        what: "a certificate",
        reason: e.to_string(),
    })?;
    let (_, cert) = X509Certificate::from_der(&der).map_err(|e| TlsError::Pem {
        what: "a certificate",
        reason: e.to_string(),
    })?;
    let secs = cert.validity().not_after.timestamp();
    Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// A node's certificate and key as its TLS settings present them, which a
/// renewal replaces in place: connections made after it present the new
/// certificate, on the peer port (both sides) and on the API.
#[derive(Debug)]
pub struct LiveIdentity {
    current: RwLock<Arc<rustls::sign::CertifiedKey>>,
}

fn certified(identity: &NodeIdentity) -> Result<Arc<rustls::sign::CertifiedKey>, TlsError> {
    let (certs, key) = chain(identity)?;
    let signing = provider().key_provider.load_private_key(key)?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(certs, signing)))
}

impl LiveIdentity {
    pub fn new(identity: &NodeIdentity) -> Result<Arc<LiveIdentity>, TlsError> {
        Ok(Arc::new(LiveIdentity {
            current: RwLock::new(certified(identity)?),
        }))
    }

    /// Presents `identity` from now on.
    pub fn replace(&self, identity: &NodeIdentity) -> Result<(), TlsError> {
        let fresh = certified(identity)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }

    fn current(&self) -> Arc<rustls::sign::CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl rustls::server::ResolvesServerCert for LiveIdentity {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current())
    }
}

impl rustls::client::ResolvesClientCert for LiveIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca_pem: &str) -> Result<RootCertStore, TlsError> {
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| TlsError::Pem {
        what: "the CA certificate",
        reason: e.to_string(),
    })?;
    let mut roots = RootCertStore::empty();
    roots.add(ca)?;
    Ok(roots)
}

fn chain(
    identity: &NodeIdentity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let cert = CertificateDer::from_pem_slice(identity.cert_pem.as_bytes()).map_err(|e| {
        TlsError::Pem {
            what: "the node certificate",
            reason: e.to_string(),
        }
    })?;
    let key =
        PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).map_err(|e| TlsError::Pem {
            what: "the node key",
            reason: e.to_string(),
        })?;
    Ok((vec![cert], key))
}

/// The server side: TLS 1.3, and the client must present a certificate
/// from the cluster's CA.
pub fn server_config(ca_pem: &str, identity: &NodeIdentity) -> Result<Arc<ServerConfig>, TlsError> {
    build_server_config(ca_pem, LiveIdentity::new(identity)?, false)
}

/// The server side of a node that admits joins: a client with a
/// certificate must have one from the cluster's CA, but a client without
/// any (a node that is joining) is let through, and the service decides
/// what it may reach (only the join routes).
pub fn join_server_config(
    ca_pem: &str,
    identity: Arc<LiveIdentity>,
) -> Result<Arc<ServerConfig>, TlsError> {
    build_server_config(ca_pem, identity, true)
}

fn build_server_config(
    ca_pem: &str,
    identity: Arc<LiveIdentity>,
    allow_anonymous: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_pem)?), provider());
    let builder = if allow_anonymous {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    let verifier = builder
        .build()
        .map_err(|e| TlsError::Config(rustls::Error::General(e.to_string())))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(identity);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The client side: TLS 1.3, trusting only the cluster's CA, presenting
/// this node's certificate.
pub fn client_config(ca_pem: &str, identity: &NodeIdentity) -> Result<Arc<ClientConfig>, TlsError> {
    live_client_config(ca_pem, LiveIdentity::new(identity)?)
}

/// [`client_config`] presenting whatever `identity` holds now.
pub fn live_client_config(
    ca_pem: &str,
    identity: Arc<LiveIdentity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca_pem)?)
        .with_client_cert_resolver(identity);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The client side of a node that is joining: it has no certificate yet
/// and trusts only the cluster's CA (whose fingerprint its join token
/// carries).
pub fn joining_client_config(ca_pem: &str) -> Result<Arc<ClientConfig>, TlsError> {
    trusting_only(ca_pem, b"h2")
}

/// A client without a certificate that trusts only the CA in `ca_pem`
/// and offers one ALPN protocol.
fn trusting_only(ca_pem: &str, alpn: &[u8]) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca_pem)?)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// A client that accepts any server certificate, for one job only: fetching
/// the cluster's CA certificate, which the caller then checks against the
/// fingerprint in its join token before trusting anything it says.
pub fn fingerprint_fetch_client_config() -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider())))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The server side of the HTTP API over TLS 1.3 (`dwcp up --api-tls`):
/// no client certificate (callers bring bearer tokens or sessions), ALPN
/// `h2` and `http/1.1`, the certificate and key given (PEM; the node's
/// own from the cluster CA unless the operator gives one).
pub fn api_server_config(cert_pem: &str, key_pem: &str) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            what: "the API certificate",
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: "the API certificate",
            reason: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Pem {
        what: "the API key",
        reason: e.to_string(),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// [`api_server_config`] presenting the node's own certificate, renewals
/// included.
pub fn live_api_server_config(identity: Arc<LiveIdentity>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(identity);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client of the HTTP API over TLS 1.3 that trusts only the CA in
/// `ca_pem` (the `dwcp` client commands' `--ca-file`).
pub fn api_client_config(ca_pem: &str) -> Result<Arc<ClientConfig>, TlsError> {
    trusting_only(ca_pem, b"http/1.1")
}

/// Lowercase hex sha256 of a PEM certificate's DER bytes.
pub fn fingerprint(cert_pem: &str) -> Result<String, TlsError> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| TlsError::Pem {
        what: "a certificate",
        reason: e.to_string(),
    })?;
    Ok(state::digest_of(&der))
}

/// Lowercase hex sha256 of a PEM certificate's public key
/// (SubjectPublicKeyInfo): what the state pins for a node.
pub fn key_fingerprint(cert_pem: &str) -> Result<String, TlsError> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| TlsError::Pem {
        what: "a certificate",
        reason: e.to_string(),
    })?;
    crate::transport::PeerCert::of(&der)
        .map(|c| c.key_sha256)
        .ok_or(TlsError::Pem {
            what: "a certificate",
            reason: "it is not an X.509 certificate".into(),
        })
}

/// Checks the handshake's signatures but not who signed the certificate.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not allowed".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
