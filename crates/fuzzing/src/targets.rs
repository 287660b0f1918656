//! The parsers that take bytes, each behind a `fn(&[u8])`.

use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::time::Duration;

/// Text from bytes as a file reader would take it: invalid UTF-8 is
/// refused before the parser sees it, so only valid text is worth fuzzing.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// What a guest writes on stdout, read as a CGI response by the gateway.
pub fn wagi_output(data: &[u8]) {
    let _ = sandbox::wagi::parse_response(data);
}

/// A rollout plan (JSON or TOML), as `dwcp rollout start --plan` and the
/// API take it, then checked whole.
pub fn rollout_plan(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(plan) = state::rollout::Plan::parse(text) {
        let _ = plan.check();
        let _ = plan.waves();
        let _ = plan.preview_route();
    }
}

/// A topology file (`dwcp up --topology`), parsed and checked.
pub fn topology(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let _ = planet::topology::Topology::parse(text);
}

/// A runbook's front matter and size (`PUT /runbooks/{name}`).
pub fn runbook(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let _ = ops::runbook::parse(text);
}

/// A gossip packet once it is opened (the sealing is AES-GCM; what it
/// carries is what a member, or a removed one, could send): the frame
/// with its counter and timestamp, then SWIM or a summary exchange.
pub fn gossip_packet(data: &[u8]) {
    use planet::summary::{Gossip, GossipConfig, Peer};
    let me = Peer {
        node: 1,
        region: state::Name::new("region", "here").expect("a valid literal"),
        addr: "127.0.0.1:7072".parse().expect("a valid literal"),
        bump: 0,
    };
    let config = GossipConfig::wan(NonZeroU32::new(16).expect("not zero"));
    let mut gossip = Gossip::new(me, config, 7);
    let now = Duration::from_secs(1_700_000_000);
    let _ = cluster::gossip_frame::parse(data);
    let _ = gossip.handle_packet(data, now);
    let _ = gossip.drain();
}

/// The bodies of Raft messages on the peer port, decoded as the server
/// decodes them: a single message (`/raft/call`) and one frame of a pipe of
/// appends (`/raft/appends`).
pub fn raft_rpc(data: &[u8]) {
    let _ = serde_json::from_slice::<replica::Call>(data);
    let _ = serde_json::from_slice::<replica::Append>(data);
}

/// A joining node's request (`POST /join`), parsed and checked as the
/// member does before it looks at the token.
pub fn join_request(data: &[u8]) {
    let _ = cluster::parse_join_request(data);
}

/// Bearer tokens, session cookies and join tokens as they arrive in
/// headers and on the command line.
pub fn credentials(data: &[u8]) {
    ops::api::fuzzing::credentials(data);
    if let Some(text) = text(data) {
        let _ = cluster::JoinToken::parse(text);
    }
}

/// A runtime shared by the targets that need one (built once per process).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime can be built")
    })
}
