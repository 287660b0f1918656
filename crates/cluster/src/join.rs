//! Joining: the new node's side ([`request`]) and the member's side
//! ([`admit`]).
//!
//! The new node has no certificate yet. It fetches the CA certificate from
//! the member without trusting it, checks it against the fingerprint in its
//! join token, and only then — over TLS that trusts just that CA — sends
//! the token's secret and a certificate signing request for a key it made
//! and keeps. The member spends one use of the token (the leader refuses
//! an unknown, revoked, expired or used-up one), hands out a node id, has
//! the request signed by a node that holds the CA key (itself, or the
//! first member that does), records the node with its key pinned and adds
//! it as a learner. The grant carries the node's certificate, the CA
//! certificate and the cluster secret — never the CA key, so a joined node
//! cannot make certificates. The new node then starts and asks to be
//! promoted to voter.

use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::ClusterError;
use super::node::ClusterNode;
use super::peer::{JoinGrant, JoinRequest, LeaderOp, SignRequest};
use super::token::{JoinToken, token_hash};
use crate::tls;
use crate::transport::Channel;
use state::{Command, Name, Node, Region};

/// Asks the member at `address` to admit this node.
pub(super) async fn request(
    address: &str,
    token: &JoinToken,
    join: &JoinRequest,
) -> Result<JoinGrant, ClusterError> {
    let fail = |reason: String| ClusterError::Join {
        address: address.to_string(),
        reason,
    };
    let anonymous = Channel::new(address.to_string(), tls::fingerprint_fetch_client_config()?);
    let (status, ca_pem) = anonymous
        .request(Method::GET, "/join/ca", Bytes::new())
        .await
        .map_err(|e| fail(e.to_string()))?;
    if status != StatusCode::OK {
        return Err(fail(format!("asking for the CA certificate: {status}")));
    }
    let ca_pem = String::from_utf8_lossy(&ca_pem).into_owned();
    let fingerprint = tls::fingerprint(&ca_pem).map_err(|e| fail(e.to_string()))?;
    if fingerprint != token.ca_fingerprint {
        return Err(fail(format!(
            "its CA has fingerprint {fingerprint}, but the token is for {}: this is not the token's cluster",
            token.ca_fingerprint
        )));
    }
    let trusted = Channel::new(address.to_string(), tls::joining_client_config(&ca_pem)?);
    let body = serde_json::to_vec(join).map_err(|e| fail(e.to_string()))?;
    let (status, answer) = trusted
        .request(Method::POST, "/join", Bytes::from(body))
        .await
        .map_err(|e| fail(e.to_string()))?;
    if status != StatusCode::OK {
        return Err(fail(format!(
            "{status}: {}",
            String::from_utf8_lossy(&answer)
        )));
    }
    serde_json::from_slice(&answer).map_err(|e| fail(format!("bad answer: {e}")))
}

type Refusal = (StatusCode, String);

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    (status, message.into())
}

fn unavailable(e: ClusterError) -> Refusal {
    refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// The largest join request read: a few addresses and a token.
pub const MAX_JOIN_REQUEST_BYTES: usize = 16 << 10;

/// A join request checked in itself (before its token is looked at): the
/// JSON, the peer address (a specific `ip:port`), the API address and
/// the region's name. The refusal names the field.
#[derive(Debug)]
pub struct CheckedJoin {
    pub request: JoinRequest,
    pub peer: std::net::SocketAddr,
    pub region: Name,
}

/// Reads and checks a joining node's request body; a refusal is the
/// status and message to answer with.
pub fn parse_join_request(body: &[u8]) -> Result<CheckedJoin, (StatusCode, String)> {
    if body.len() > MAX_JOIN_REQUEST_BYTES {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a join request is at most {MAX_JOIN_REQUEST_BYTES} bytes"),
        ));
    }
    let request: JoinRequest = serde_json::from_slice(body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("the join request is not valid JSON: {e}"),
        )
    })?;
    let peer: std::net::SocketAddr = request.peer_address.parse().map_err(|_| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "peer_address `{}` is not ip:port",
                request.peer_address.chars().take(64).collect::<String>()
            ),
        )
    })?;
    if peer.ip().is_unspecified() || peer.port() == 0 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("peer_address {peer} must be a specific IP and port"),
        ));
    }
    if request.api_address.len() > 256 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "api_address is longer than 256 bytes",
        ));
    }
    let region = Name::new("region", &request.region)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, e.to_string()))?;
    if request.csr_pem.len() > 8 << 10 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "csr_pem is longer than 8 KiB",
        ));
    }
    rcgen::CertificateSigningRequestParams::from_pem(&request.csr_pem).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("csr_pem is not a certificate signing request signed by its key: {e}"),
        )
    })?;
    Ok(CheckedJoin {
        request,
        peer,
        region,
    })
}

/// Admits a joining node (the member's side).
pub(super) async fn admit(node: &ClusterNode, join: CheckedJoin) -> Result<JoinGrant, Refusal> {
    let CheckedJoin {
        request: join,
        peer,
        region,
    } = join;
    let (taken, region_exists) = node
        .read(|s| {
            (
                s.nodes().any(|n| n.address == join.peer_address),
                s.regions().any(|r| r.name == region),
            )
        })
        .await
        .map_err(unavailable)?;
    if taken {
        return Err(refuse(
            StatusCode::CONFLICT,
            format!(
                "a node with peer address {} is already a member; remove it first (dwcp cluster remove)",
                join.peer_address
            ),
        ));
    }
    // Spend one use of the token (refused when it is unknown, revoked,
    // expired or used up): committed by the leader, so two joins racing
    // for a single-use token cannot both pass.
    let spent = node
        .write_in_cell(Command::UseJoinToken {
            sha256: token_hash(&join.secret),
            now_unix_ms: unix_ms(),
        })
        .await
        .map_err(unavailable)?;
    if let Err(rejection) = spent.result {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            format!("the join token is not valid for this cluster: {rejection}"),
        ));
    }
    if !region_exists {
        write_ok(
            node,
            Command::PutRegion {
                region: Region::named(region.clone()),
            },
        )
        .await?;
    }
    let id = node.next_node_id().await.map_err(unavailable)?;
    let hosts = super::node::cert_hosts(peer, &join.api_address);
    let cert_pem = sign_anywhere(node, id, &hosts, &join.csr_pem).await?;
    write_ok(
        node,
        Command::PutNode {
            node: Node {
                name: super::node::node_name(id),
                region,
                address: join.peer_address.clone(),
                labels: Default::default(),
                capacity: 1000,
                api: Some(join.api_address.clone()),
                gateway: None,
                peer_key: Some(
                    tls::key_fingerprint(&cert_pem)
                        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
                ),
            },
        },
    )
    .await?;
    node.on_leader(LeaderOp::AddLearner {
        id,
        address: join.peer_address.clone(),
    })
    .await
    .map_err(unavailable)?;
    Ok(JoinGrant {
        id,
        cluster: node.config().cluster.clone(),
        ca_pem: node.ca_pem().to_string(),
        cert_pem,
        secret: crate::data_dir::hex(node.secret()),
    })
}

/// Signs the joining node's certificate: here when this node holds the CA
/// key, else by the first member that does (the founder, unless others
/// were given the key), over the peer port's `/cluster/sign`.
async fn sign_anywhere(
    node: &ClusterNode,
    id: replica::NodeId,
    hosts: &[String],
    csr_pem: &str,
) -> Result<String, Refusal> {
    let bad = |e: ClusterError| refuse(StatusCode::BAD_REQUEST, e.to_string());
    if let Some(signed) = node.sign(id, hosts, csr_pem) {
        return signed.map_err(bad);
    }
    let request = SignRequest {
        id,
        hosts: hosts.to_vec(),
        csr_pem: csr_pem.to_string(),
    };
    ask_holders(node, "/cluster/sign", &request)
        .await
        .map_err(|problems| {
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("no member that holds the CA key signed the certificate ({problems})"),
            )
        })
}

/// Posts `request` to `path` on each other member in turn until one that
/// holds the CA key answers with a certificate; else what each said.
pub(super) async fn ask_holders<Q: serde::Serialize>(
    node: &ClusterNode,
    path: &str,
    request: &Q,
) -> Result<String, String> {
    let mut problems = Vec::new();
    for (member, address) in node.replica().status().members {
        if member == node.id() {
            continue;
        }
        match node
            .channel(&address)
            .call::<_, String>(path, request)
            .await
        {
            Ok(cert_pem) => return Ok(cert_pem),
            Err(e) => problems.push(format!("node {member}: {e}")),
        }
    }
    Err(problems.join("; "))
}

/// A holder of the CA key signs for a member that admits a join: only a
/// node id handed out already (below the next one) that is neither
/// recorded nor a member yet, so no certificate is made for an existing
/// member's id.
pub(super) async fn sign_for_member(node: &ClusterNode, body: &[u8]) -> Result<String, Refusal> {
    let request: SignRequest = serde_json::from_slice(body)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, format!("not a sign request: {e}")))?;
    // Linearizable: the id was handed out moments ago through the leader,
    // and this node may not have applied that yet.
    let id = request.id;
    let unrecorded = node
        .read(move |state| {
            let next = state
                .register(super::node::NEXT_NODE_ID)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse::<replica::NodeId>().ok())
                .unwrap_or(0);
            id < next && state.node(&super::node::node_name(id)).is_none()
        })
        .await
        .map_err(unavailable)?;
    let fresh = unrecorded && !node.replica().status().members.contains_key(&id);
    if !fresh {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("node {} is not a node being admitted", request.id),
        ));
    }
    let ips = request
        .hosts
        .iter()
        .all(|h| h.parse::<std::net::IpAddr>().is_ok());
    if request.hosts.is_empty() || request.hosts.len() > 2 || !ips {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "hosts: one or two IP addresses (the node's peer and API addresses)",
        ));
    }
    match node.sign(request.id, &request.hosts, &request.csr_pem) {
        None => Err(refuse(
            StatusCode::NOT_FOUND,
            "this node does not hold the CA key",
        )),
        Some(signed) => signed.map_err(|e| refuse(StatusCode::BAD_REQUEST, e.to_string())),
    }
}

/// The wall clock, ms since the Unix epoch (join tokens expire by it).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn write_ok(node: &ClusterNode, command: Command) -> Result<(), Refusal> {
    // Membership is this group's own business, whatever tier it is.
    let response = node.write_in_cell(command).await.map_err(unavailable)?;
    response
        .result
        .map(drop)
        .map_err(|r| refuse(StatusCode::BAD_REQUEST, r.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    fn body(csr_pem: &str) -> Vec<u8> {
        serde_json::to_vec(&JoinRequest {
            secret: "s".into(),
            peer_address: "127.0.0.1:7071".into(),
            api_address: "127.0.0.1:7070".into(),
            region: "local".into(),
            csr_pem: csr_pem.into(),
        })
        .unwrap()
    }

    #[test]
    fn a_signing_request_must_be_signed_by_its_own_key() {
        let (_key, csr_pem) = tls::new_node_key().unwrap();
        assert!(parse_join_request(&body(&csr_pem)).is_ok());
        // One bit of its signature changed: the sender no longer proves
        // it holds the key it asks a certificate for.
        let b64: String = csr_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let mut der = STANDARD.decode(b64).unwrap();
        *der.last_mut().unwrap() ^= 1;
        let encoded = STANDARD.encode(&der);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let forged = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
            lines.join("\n")
        );
        let (status, message) = parse_join_request(&body(&forged)).unwrap_err();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("csr_pem"), "{message}");
    }
}
