//! Joining: the new node's side ([`request`]) and the member's side
//! ([`admit`]).
//!
//! The new node has no certificate yet. It fetches the CA certificate from
//! the member without trusting it, checks it against the fingerprint in its
//! join token, and only then — over TLS that trusts just that CA — sends
//! the token's secret. The member checks the secret against the `Join`
//! credentials in the replicated state, hands out a node id, a certificate
//! and the CA's key (so any member can admit the next node), records the
//! node and adds it as a learner. The new node then starts and asks to be
//! promoted to voter.

use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::ClusterError;
use super::node::ClusterNode;
use super::peer::{JoinGrant, JoinRequest, LeaderOp};
use super::token::{JoinToken, token_hash};
use crate::tls;
use crate::transport::Channel;
use state::{Command, Name, Node, Region, Role};

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
    let hash = token_hash(&join.secret);
    let known = |state: &state::State| {
        state
            .credential_by_hash(&hash)
            .is_some_and(|c| c.role == Role::Join)
    };
    // The local state usually has the credential; a new one may not have
    // reached this node yet, so ask linearizably before refusing.
    let valid =
        known(&node.replica().read_local()) || node.read(known).await.map_err(unavailable)?;
    if !valid {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "the join token is not valid for this cluster",
        ));
    }
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
    let identity = node
        .issue(id, &peer.ip().to_string())
        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
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
                    tls::key_fingerprint(&identity.cert_pem)
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
        ca_pem: node.ca().cert_pem().to_string(),
        ca_key_pem: node.ca().key_pem(),
        cert_pem: identity.cert_pem,
        key_pem: identity.key_pem,
    })
}

async fn write_ok(node: &ClusterNode, command: Command) -> Result<(), Refusal> {
    // Membership is this group's own business, whatever tier it is.
    let response = node.write_in_cell(command).await.map_err(unavailable)?;
    response
        .result
        .map(drop)
        .map_err(|r| refuse(StatusCode::BAD_REQUEST, r.to_string()))
}
