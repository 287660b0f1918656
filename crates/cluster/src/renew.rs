//! Node certificates expire ([`tls::node_cert_lifetime`], 30 days by
//! default) and each node renews its own before that: when a third of its
//! certificate's life is left, it sends a signing request for the key it
//! already has (the state pins that key) to a node that holds the CA key —
//! itself, or the first member that answers `POST /cluster/renew` — saves
//! the new certificate and presents it from the next connection on. A
//! holder signs a renewal only for the caller's own node, a current member,
//! and only for the key its certificate already has.

use std::sync::Weak;
use std::time::{Duration, SystemTime};

use hyper::StatusCode;
use serde::{Deserialize, Serialize};

use super::ClusterError;
use super::node::{ClusterNode, cert_hosts, node_name};
use crate::tls;
use crate::transport::PeerCert;

/// Checks at most this far apart (and at least a second apart).
const CHECK_AT_MOST: Duration = Duration::from_secs(3600);

/// A member's renewal request to a holder of the CA key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenewRequest {
    pub csr_pem: String,
}

/// Whether a certificate valid until `not_after` should be renewed at
/// `now`, for certificates that live `lifetime`: when a third is left.
pub(crate) fn due(not_after: SystemTime, now: SystemTime, lifetime: Duration) -> bool {
    match not_after.duration_since(now) {
        Ok(left) => left < lifetime / 3,
        Err(_) => true,
    }
}

/// Renews this node's certificate whenever it is due, for as long as the
/// node lives.
pub(super) async fn keep_fresh(node: Weak<ClusterNode>) {
    let lifetime = tls::node_cert_lifetime();
    let check = (lifetime / 12).clamp(Duration::from_secs(1), CHECK_AT_MOST);
    let mut last_problem = String::new();
    loop {
        tokio::time::sleep(check).await;
        let Some(node) = node.upgrade() else { return };
        let Ok(not_after) = tls::not_after(&node.identity().cert_pem) else {
            continue;
        };
        if !due(not_after, SystemTime::now(), lifetime) {
            continue;
        }
        let problem = match renew(&node).await {
            Ok(()) => {
                eprintln!("dwcp: node {} renewed its certificate", node.id());
                String::new()
            }
            Err(e) => e.to_string(),
        };
        if !problem.is_empty() && problem != last_problem {
            eprintln!("dwcp: renewing node {}'s certificate: {problem}", node.id());
        }
        last_problem = problem;
    }
}

/// One renewal: a request for the node's key, signed here or by a holder.
async fn renew(node: &ClusterNode) -> Result<(), ClusterError> {
    let csr_pem = tls::request_for(&node.identity().key_pem)?;
    let peer = node
        .config()
        .peer_address
        .parse()
        .map_err(|_| ClusterError::Refused("this node's peer address is not ip:port".into()))?;
    let hosts = cert_hosts(peer, &node.config().api_address);
    let cert_pem = match node.sign(node.id(), &hosts, &csr_pem) {
        Some(signed) => signed?,
        None => ask_a_holder(node, &csr_pem).await?,
    };
    // A holder must not hand us a certificate for another key.
    if tls::key_fingerprint(&cert_pem)? != tls::key_fingerprint(&node.identity().cert_pem)? {
        return Err(ClusterError::Refused(
            "the renewed certificate is for another key".into(),
        ));
    }
    node.install_certificate(cert_pem)
}

async fn ask_a_holder(node: &ClusterNode, csr_pem: &str) -> Result<String, ClusterError> {
    let request = RenewRequest {
        csr_pem: csr_pem.to_string(),
    };
    crate::join::ask_holders(node, "/cluster/renew", &request)
        .await
        .map_err(|problems| {
            ClusterError::Unavailable(format!(
                "no member that holds the CA key renewed it ({problems})"
            ))
        })
}

/// The holder's side: sign the caller's own certificate anew, for the key
/// its current certificate has, naming the addresses its record has.
pub(super) fn renew_for_member(
    node: &ClusterNode,
    caller: &PeerCert,
    body: &[u8],
) -> Result<String, (StatusCode, String)> {
    let refuse = |status, message: String| (status, message);
    let request: RenewRequest = serde_json::from_slice(body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("not a renewal request: {e}"),
        )
    })?;
    let id = caller.node.ok_or_else(|| {
        refuse(
            StatusCode::FORBIDDEN,
            "the certificate names no node".into(),
        )
    })?;
    let key = tls::request_key_fingerprint(&request.csr_pem)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, e.to_string()))?;
    if key != caller.key_sha256 {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "a renewal is for the key of the caller's certificate only".into(),
        ));
    }
    let record = node
        .replica()
        .read_local()
        .node(&node_name(id))
        .cloned()
        .ok_or_else(|| refuse(StatusCode::FORBIDDEN, format!("node {id} has no record")))?;
    let peer = record.address.parse().map_err(|_| {
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("node {id}'s address is not ip:port"),
        )
    })?;
    let hosts = cert_hosts(peer, record.api.as_deref().unwrap_or(""));
    match node.sign(id, &hosts, &request.csr_pem) {
        None => Err(refuse(
            StatusCode::NOT_FOUND,
            "this node does not hold the CA key".into(),
        )),
        Some(signed) => signed.map_err(|e| refuse(StatusCode::BAD_REQUEST, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_renewed_when_a_third_of_its_life_is_left() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let life = Duration::from_secs(30 * 24 * 3600);
        assert!(!due(now + life, now, life));
        assert!(!due(now + life / 2, now, life));
        assert!(due(now + life / 3 - Duration::from_secs(1), now, life));
        assert!(due(now - Duration::from_secs(1), now, life), "expired");
    }
}
