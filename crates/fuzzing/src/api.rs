//! The API target: one HTTP/1.1 request with a fuzzed method, route and
//! body, sent with an admin token to the real API (`ops::serve`) over
//! loopback, in front of a control plane kept in memory (`State::apply`
//! behind a mutex). The server and its connection are made once per
//! process; a panic in the server's task aborts the fuzzer (libFuzzer's
//! panic hook), so a crash anywhere in a handler is found.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use cluster::{ClusterStatus, MemberStatus};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use ops::{BlobReceipt, ControlPlane, PlaneError};
use replica::{NodeId, Response};
use state::{Command, Name, Role, State};

use crate::targets::runtime;

const ADMIN: &str = "dwcp-admin.fuzz";
const NODE: NodeId = 1;

/// The routes requests go to, with every `{param}` filled in with a name
/// the state holds (tenant `default`, app `shop`), so bodies reach their
/// handlers' checks rather than a 404.
const PATHS: &[&str] = &[
    "/api/v1/tenants",
    "/api/v1/tenants/default",
    "/api/v1/tenants/default/apps",
    "/api/v1/tenants/default/apps/shop",
    "/api/v1/tenants/default/apps/shop/versions",
    "/api/v1/tenants/default/apps/shop/deployment",
    "/api/v1/tenants/default/apps/shop/rollouts",
    "/api/v1/tenants/default/apps/shop/rollout/promote",
    "/api/v1/tenants/default/apps/shop/rollout/abort",
    "/api/v1/tenants/default/apps/shop/slos/avail",
    "/api/v1/tokens",
    "/api/v1/tokens/ops",
    "/api/v1/prices",
    "/api/v1/runbooks/node-down",
    "/api/v1/registers/fuzz",
    "/api/v1/registers/fuzz/cas",
    "/api/v1/users",
    "/api/v1/users/ana",
    "/api/v1/users/ana/totp",
    "/api/v1/users/ana/totp/confirm",
    "/api/v1/incidents/1/notes",
    "/api/v1/incidents/1/acknowledge",
    "/api/v1/failovers/here/approve",
    "/api/v1/cluster/join-tokens",
    "/api/v1/costs",
    "/api/v1/capacity",
    "/api/v1/audit",
    "/api/v1/apps",
    "/api/v1/nodes",
    "/api/v1/slos",
];

const METHODS: &[hyper::Method] = &[
    hyper::Method::POST,
    hyper::Method::PUT,
    hyper::Method::GET,
    hyper::Method::DELETE,
];

/// The control plane of one node, in memory.
struct Memory {
    state: Mutex<State>,
    blobs: Mutex<HashMap<String, Bytes>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Memory {
    fn new() -> Memory {
        let mut state = State::default();
        let name = |v: &str| Name::new("name", v).expect("a valid literal");
        let setup = [
            Command::PutCredential {
                name: name("admin"),
                role: Role::Admin,
                sha256: state::digest_of(ADMIN.as_bytes()),
            },
            Command::PutRegion {
                region: state::Region::named(name("here")),
            },
            Command::PutTenant {
                name: name("default"),
                quotas: state::Quotas::default(),
            },
        ];
        for command in setup {
            // The literals above are valid commands on an empty state.
            let _ = state.apply(&command);
        }
        Memory {
            state: Mutex::new(state),
            blobs: Mutex::new(HashMap::new()),
        }
    }
}

impl ControlPlane for Memory {
    async fn write(&self, command: Command) -> Result<Response, PlaneError> {
        let mut state = lock(&self.state);
        let result = state.apply(&command);
        Ok(Response {
            revision: state.revision(),
            result,
        })
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&State) -> R + Send + 'static,
    ) -> Result<R, PlaneError> {
        Ok(f(&lock(&self.state)))
    }

    fn read_local<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&lock(&self.state))
    }

    async fn watch(
        &self,
        since: state::Revision,
        _wait: Duration,
    ) -> Result<Vec<state::Event>, state::Compacted> {
        lock(&self.state).events_since(since)
    }

    async fn status(&self) -> Result<ClusterStatus, PlaneError> {
        Ok(ClusterStatus {
            reported_by: NODE,
            leader: Some(NODE),
            term: 1,
            commit_index: Some(1),
            last_log_index: Some(1),
            members: vec![MemberStatus {
                id: NODE,
                address: "127.0.0.1:7071".into(),
                api: Some("127.0.0.1:7070".into()),
                role: "leader".into(),
                voter: true,
                matched_index: Some(1),
                lag: Some(0),
                reachable: None,
                health: None,
                heartbeat_age_ms: None,
            }],
        })
    }

    async fn remove_node(&self, id: NodeId) -> Result<(), PlaneError> {
        Err(PlaneError::NotFound(format!("node {id} is not a member")))
    }

    async fn put_blob(&self, bytes: Bytes) -> Result<BlobReceipt, PlaneError> {
        let digest = state::digest_of(&bytes);
        let size = bytes.len() as u64;
        lock(&self.blobs).insert(digest.clone(), bytes);
        Ok(BlobReceipt {
            digest,
            size,
            copies: 1,
        })
    }

    async fn new_join_token(
        &self,
        _ttl: Duration,
        _uses: Option<u32>,
    ) -> Result<String, PlaneError> {
        Err(PlaneError::Unavailable(
            "no join tokens in the fuzzer".into(),
        ))
    }

    fn has_blob(&self, digest: &str) -> bool {
        lock(&self.blobs).contains_key(digest)
    }

    fn node_id(&self) -> NodeId {
        NODE
    }

    fn at_rest_key(&self) -> Option<[u8; 32]> {
        Some([42; 32])
    }
}

/// The API served once per process, and a client connection to it.
struct Served {
    sender: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
    addr: std::net::SocketAddr,
    plane: std::sync::Arc<Memory>,
    /// Requests sent; the state starts afresh every [`RESET_EVERY`].
    sent: std::sync::atomic::AtomicU64,
}

/// What the fuzzer creates (tenants, apps, tokens) would grow the state
/// without bound over millions of runs: it starts afresh this often.
const RESET_EVERY: u64 = 10_000;

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let plane = std::sync::Arc::new(Memory::new());
        let addr = runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("loopback can be bound");
            let addr = listener
                .local_addr()
                .expect("a bound socket has an address");
            // The task lives as long as the process.
            std::mem::forget(ops::serve(listener, plane.clone()));
            addr
        });
        Served {
            sender: tokio::sync::Mutex::new(None),
            addr,
            plane,
            sent: std::sync::atomic::AtomicU64::new(0),
        }
    })
}

async fn connect(addr: std::net::SocketAddr) -> Option<SendRequest<Full<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}

/// One request: byte 0 picks the route, byte 1 the method, the rest is
/// the body (sent as `application/json`).
pub fn api_request(data: &[u8]) {
    let [route, method, body @ ..] = data else {
        return;
    };
    let path = PATHS[usize::from(*route) % PATHS.len()];
    let method = METHODS[usize::from(*method) % METHODS.len()].clone();
    let served = served();
    if served
        .sent
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        % RESET_EVERY
        == RESET_EVERY - 1
    {
        *lock(&served.plane.state) = Memory::new()
            .state
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
    }
    let body = Bytes::copy_from_slice(body);
    runtime().block_on(async {
        let mut slot = served.sender.lock().await;
        if slot.as_ref().is_none_or(|s| s.is_closed()) {
            *slot = connect(served.addr).await;
        }
        let Some(sender) = slot.as_mut() else { return };
        let Ok(request) = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "127.0.0.1")
            .header(hyper::header::AUTHORIZATION, format!("Bearer {ADMIN}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
        else {
            return;
        };
        if sender.ready().await.is_err() {
            *slot = None;
            return;
        }
        match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                let _ = response.into_body().collect().await;
                // The API answers bad input with 4xx; a 5xx on this plane
                // (which is always available) is a fault of a handler.
                assert!(
                    !status.is_server_error() || status == hyper::StatusCode::SERVICE_UNAVAILABLE,
                    "{path}: the API answered {status}"
                );
            }
            Err(_) => *slot = None,
        }
    });
}
