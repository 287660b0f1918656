//! Mutual TLS 1.3 between nodes: certificates from the cluster's CA get in,
//! anything else is refused, on both sides, over real loopback sockets.

use std::sync::Arc;

use cluster::tls::{self, ClusterCa, NodeIdentity};
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Serves one connection: answers `pong` to `ping`. Returns the address.
async fn server(ca_pem: &str, identity: &NodeIdentity) -> std::net::SocketAddr {
    let acceptor = TlsAcceptor::from(tls::server_config(ca_pem, identity).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 4];
                    if tls.read_exact(&mut buf).await.is_ok() && &buf == b"ping" {
                        let _ = tls.write_all(b"pong").await;
                        let _ = tls.shutdown().await;
                    }
                }
            });
        }
    });
    addr
}

/// Connects with `config` and plays ping-pong; `Ok` only if all of it works.
async fn ping(addr: std::net::SocketAddr, config: Arc<rustls::ClientConfig>) -> Result<(), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("node-1").unwrap();
    let mut tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 4];
    tls.read_exact(&mut buf)
        .await
        .map_err(|e| format!("read: {e}"))?;
    (&buf == b"pong")
        .then_some(())
        .ok_or_else(|| "wrong answer".into())
}

#[tokio::test]
async fn only_peers_with_the_clusters_certificates_get_in() {
    let ca = ClusterCa::create("test").unwrap();
    let node1 = ca.issue("node-1", &["127.0.0.1".into()]).unwrap();
    let node2 = ca.issue("node-2", &["127.0.0.1".into()]).unwrap();
    let addr = server(ca.cert_pem(), &node1).await;

    // A node of the same cluster.
    ping(addr, tls::client_config(ca.cert_pem(), &node2).unwrap())
        .await
        .expect("a cluster node gets in");

    // A node of another cluster, trusting our CA but with its own cert.
    let other = ClusterCa::create("other").unwrap();
    let stranger = other.issue("node-9", &[]).unwrap();
    assert!(
        ping(addr, tls::client_config(ca.cert_pem(), &stranger).unwrap())
            .await
            .is_err(),
        "a certificate from another CA must be refused"
    );

    // A client with no certificate at all.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let anonymous = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    assert!(
        ping(addr, Arc::new(anonymous)).await.is_err(),
        "a client without a certificate must be refused"
    );

    // A server of another cluster is refused by our client.
    let impostor = other.issue("node-1", &["127.0.0.1".into()]).unwrap();
    let fake = server(other.cert_pem(), &impostor).await;
    assert!(
        ping(fake, tls::client_config(ca.cert_pem(), &node2).unwrap())
            .await
            .is_err(),
        "a server with another CA's certificate must be refused"
    );
}

#[tokio::test]
async fn a_saved_ca_issues_certificates_that_chain_to_it() {
    let ca = ClusterCa::create("prod").unwrap();
    let loaded = ClusterCa::load("prod", ca.cert_pem(), &ca.key_pem()).unwrap();
    let node1 = ca.issue("node-1", &["127.0.0.1".into()]).unwrap();
    let late = loaded.issue("node-3", &[]).unwrap();
    let addr = server(ca.cert_pem(), &node1).await;
    ping(addr, tls::client_config(ca.cert_pem(), &late).unwrap())
        .await
        .expect("a certificate from the reloaded CA is trusted");
    assert!(ClusterCa::load("prod", "not pem", &ca.key_pem()).is_err());
}
