//! [`ClusterNode`]: a node's replica, peer port and blob store, and the
//! operations the API needs, each run on the leader wherever it is asked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::data_dir::{DataDir, NodeConfig, NodeFiles};
use super::peer::{JoinGrant, JoinRequest, LeaderOp, LeaderReply, PeerRoutes};
use super::status::{ClusterStatus, MemberStatus};
use super::token::{JoinToken, new_admin_token, token_hash};
use super::{ClusterError, join};
use crate::blobs::BlobStore;
use crate::tls::{self, ClusterCa, NodeIdentity};
use crate::transport::{CallError, Channel, PeerNetwork, RaftService};
use replica::{NodeId, Replica, ReplicaError, Response, StateGuard, Timing};
use state::{Command, Name, Node, Quotas, Region, Role, State};

/// How long an operation looks for a leader before answering "unavailable".
const LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long a member's peer port has to answer a status's probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a joined node tries to become a voter.
const PROMOTE_WAIT: Duration = Duration::from_secs(60);
/// How long the join token the founder prints admits nodes (any number
/// of them: it brings up the first members). Later tokens come from
/// `dwcp cluster token`, single-use by default.
pub const FOUNDER_JOIN_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// The register that hands out node ids.
pub(super) const NEXT_NODE_ID: &str = "cluster/next-node-id";

/// Checks an artifact before it is stored (e.g. that it is a module the
/// node can run); `Err` says what is wrong with it.
pub type ArtifactCheck = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// How to start a node.
#[derive(Clone)]
pub struct StartOptions {
    /// The region of a new node (ignored on restart).
    pub region: String,
    /// The peer address of a new node; on restart it must match the saved
    /// one when given.
    pub peer_address: Option<SocketAddr>,
    /// Where this node's HTTP API listens (recorded for `cluster status`).
    pub api_address: String,
    /// Join an existing cluster through this member with this token
    /// (ignored on restart).
    pub join: Option<(String, JoinToken)>,
    pub timing: Timing,
    /// Run on every uploaded artifact before anything is stored.
    pub artifact_check: Option<ArtifactCheck>,
    /// Whether a joining node becomes a voter (it asks the leader to
    /// promote it) or stays a learner that only receives the log: the
    /// global tier's members outside its placed voters.
    pub voter: bool,
}

/// The name of the node with Raft id `id` in the state: `node-<id>`.
pub fn node_name(id: NodeId) -> Name {
    Name::new("node", &format!("node-{id}")).expect("node-<number> is a valid name")
}

/// How the node came up.
#[derive(Debug)]
pub enum Started {
    /// It created a new cluster: the tokens are shown once, now.
    Founded {
        admin_token: String,
        join_token: JoinToken,
    },
    /// It joined an existing cluster as node `id`.
    Joined { id: NodeId },
    /// It resumed from its data directory.
    Resumed { id: NodeId },
}

/// The default peer port of a new node.
pub const DEFAULT_PEER_ADDRESS: &str = "127.0.0.1:7071";

/// One running node.
pub struct ClusterNode {
    config: NodeConfig,
    /// The cluster CA's certificate.
    ca_pem: String,
    /// The CA with its key, when this node holds it (the founder): it
    /// signs the certificates of joining nodes.
    ca: Option<ClusterCa>,
    /// The cluster secret the at-rest and gossip keys derive from.
    secret: [u8; 32],
    /// This node's certificate and key (PEM); the state pins the key. A
    /// renewal replaces the certificate (the key stays).
    identity: Mutex<NodeIdentity>,
    /// What its TLS settings present: replaced in place by a renewal.
    live: Arc<tls::LiveIdentity>,
    /// Its data directory (a renewal saves the new certificate there).
    dir: DataDir,
    client_tls: Arc<rustls::ClientConfig>,
    replica: Replica,
    blobs: BlobStore,
    channels: Mutex<HashMap<String, Arc<Channel>>>,
    artifact_check: Option<ArtifactCheck>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// What serves app requests other nodes forward here, once set.
    ingress: std::sync::RwLock<Option<Arc<dyn crate::transport::Ingress>>>,
    /// Its place in a planet, when it runs in one: global changes are
    /// committed in the global tier first (see [`planet::tier`]).
    planet: std::sync::OnceLock<super::Planet>,
    /// The apps' log lines this node's gateway kept.
    app_log: Arc<crate::logs::LogRing>,
}

fn listen(addr: SocketAddr) -> Result<tokio::net::TcpListener, ClusterError> {
    crate::serving::listen(addr).map_err(|source| ClusterError::Listen {
        address: addr.to_string(),
        source,
    })
}

/// The founder's first records are all there: the admin credential is
/// written last of them.
fn bootstrapped(state: &State) -> bool {
    state.credentials().any(|c| c.role == Role::Admin)
}

/// The IP addresses a node's certificate names: its peer address's, and
/// its API's when that is another specific IP (so `--api-tls` can serve
/// the same certificate).
pub(crate) fn cert_hosts(peer: SocketAddr, api_address: &str) -> Vec<String> {
    let mut hosts = vec![peer.ip().to_string()];
    if let Ok(api) = api_address.parse::<SocketAddr>()
        && !api.ip().is_unspecified()
        && api.ip() != peer.ip()
    {
        hosts.push(api.ip().to_string());
    }
    hosts
}

fn check_peer_address(addr: SocketAddr) -> Result<(), ClusterError> {
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err(ClusterError::Refused(format!(
            "the peer address {addr} must be a specific IP and port that other nodes can reach (e.g. 10.0.0.5:7071)"
        )));
    }
    Ok(())
}

impl ClusterNode {
    /// Starts the node in `dir`: resumes it, or creates a new cluster, or
    /// joins one — see [`Started`].
    pub async fn start(
        dir: &DataDir,
        options: StartOptions,
    ) -> Result<(Arc<ClusterNode>, Started), ClusterError> {
        match dir.load()? {
            Some(files) => {
                if let Some(wanted) = options.peer_address
                    && wanted.to_string() != files.config.peer_address
                {
                    return Err(ClusterError::Refused(format!(
                        "this node was created with peer address {}; it cannot change (start it with that address, or remove it from the cluster and join afresh)",
                        files.config.peer_address
                    )));
                }
                let id = files.config.id;
                let node = Self::run(dir, files, &options).await?;
                let bootstrapped = bootstrapped(&node.replica.read_local());
                let started = if node.config.founder && !bootstrapped {
                    // Only a founder whose first start was cut short lacks
                    // the records, and it is then a one-node cluster that
                    // can finish them alone. Not being able to reach a
                    // quorum means others joined: the records exist.
                    match node.bootstrap_if_needed().await {
                        Err(ClusterError::Unavailable(_)) => None,
                        other => other?,
                    }
                } else if node.config.founder || !options.voter {
                    None
                } else {
                    // A node stopped before it became a voter finishes that
                    // in the background (once the leader's log reaches it);
                    // one removed meanwhile gives up and stays idle.
                    let promoting = node.clone();
                    let task = tokio::spawn(async move {
                        let _ = promoting.promote_self(PROMOTE_WAIT).await;
                    });
                    node.tasks_mut().push(task);
                    None
                };
                Ok((node, started.unwrap_or(Started::Resumed { id })))
            }
            None => {
                let peer: SocketAddr = options
                    .peer_address
                    .unwrap_or_else(|| DEFAULT_PEER_ADDRESS.parse().expect("a valid literal"));
                check_peer_address(peer)?;
                Name::new("region", &options.region)
                    .map_err(|e| ClusterError::Refused(format!("--region: {e}")))?;
                match &options.join {
                    Some((address, token)) => {
                        // The key is made here and never leaves this node:
                        // the member signs a request for it.
                        let (key_pem, csr_pem) = tls::new_node_key()?;
                        let grant = join::request(
                            address,
                            token,
                            &JoinRequest {
                                secret: token.secret.clone(),
                                peer_address: peer.to_string(),
                                api_address: options.api_address.clone(),
                                region: options.region.clone(),
                                csr_pem,
                            },
                        )
                        .await?;
                        let secret = super::data_dir::unhex32(&grant.secret).ok_or_else(|| {
                            ClusterError::Join {
                                address: address.clone(),
                                reason: "the grant's cluster secret is not 64 hex digits".into(),
                            }
                        })?;
                        let id = grant.id;
                        let files = NodeFiles {
                            config: NodeConfig {
                                id,
                                cluster: grant.cluster.clone(),
                                region: options.region.clone(),
                                peer_address: peer.to_string(),
                                api_address: options.api_address.clone(),
                                founder: false,
                            },
                            ca_pem: grant.ca_pem.clone(),
                            ca: None,
                            identity: NodeIdentity {
                                cert_pem: grant.cert_pem.clone(),
                                key_pem,
                            },
                            secret,
                        };
                        dir.create(&files)?;
                        let node = Self::run(dir, files, &options).await?;
                        if options.voter {
                            node.promote_self(PROMOTE_WAIT).await?;
                        }
                        Ok((node, Started::Joined { id }))
                    }
                    None => {
                        let cluster = format!("dwcp-{}", &super::token::random_hex()?[..8]);
                        let ca = ClusterCa::create(&cluster)?;
                        let identity =
                            ca.issue("node-1", &cert_hosts(peer, &options.api_address))?;
                        let files = NodeFiles {
                            config: NodeConfig {
                                id: 1,
                                cluster,
                                region: options.region.clone(),
                                peer_address: peer.to_string(),
                                api_address: options.api_address.clone(),
                                founder: true,
                            },
                            ca_pem: ca.cert_pem().to_string(),
                            ca: Some(ca),
                            identity,
                            secret: super::token::random_bytes()?,
                        };
                        dir.create(&files)?;
                        let node = Self::run(dir, files, &options).await?;
                        match node.bootstrap_if_needed().await? {
                            Some(started) => Ok((node, started)),
                            None => Err(ClusterError::Refused(
                                "a new cluster's state already had credentials".into(),
                            )),
                        }
                    }
                }
            }
        }
    }

    /// Opens the store, starts Raft and serves the peer port.
    async fn run(
        dir: &DataDir,
        files: NodeFiles,
        options: &StartOptions,
    ) -> Result<Arc<ClusterNode>, ClusterError> {
        let peer: SocketAddr =
            files
                .config
                .peer_address
                .parse()
                .map_err(|_| ClusterError::DataDir {
                    path: dir.root().display().to_string(),
                    reason: format!(
                        "node.json has peer address `{}`, which is not ip:port",
                        files.config.peer_address
                    ),
                })?;
        let listener = listen(peer)?;
        let ca_pem = files.ca_pem.clone();
        let live = tls::LiveIdentity::new(&files.identity)?;
        let client_tls = tls::live_client_config(&ca_pem, live.clone())?;
        let server_tls = tls::join_server_config(&ca_pem, live.clone())?;
        let blobs = BlobStore::open(&dir.blobs())?;
        let replica = Replica::start(
            files.config.id,
            &dir.store(),
            PeerNetwork::new(client_tls.clone()),
            &options.timing,
        )
        .await?;
        let app_log = Arc::new(crate::logs::LogRing::new(
            node_name(files.config.id).as_str(),
        ));
        let node = Arc::new(ClusterNode {
            app_log,
            config: files.config,
            ca_pem: files.ca_pem,
            ca: files.ca,
            secret: files.secret,
            identity: Mutex::new(files.identity.clone()),
            live,
            dir: dir.clone(),
            client_tls,
            replica,
            blobs,
            channels: Mutex::new(HashMap::new()),
            artifact_check: options.artifact_check.clone(),
            tasks: Mutex::new(Vec::new()),
            ingress: std::sync::RwLock::new(None),
            planet: std::sync::OnceLock::new(),
        });
        let routes = PeerRoutes {
            node: node.clone(),
            raft: RaftService {
                inbox: node.replica.inbox(),
            },
        };
        let server = crate::transport::serve_service(listener, server_tls, Arc::new(routes));
        let copier = tokio::spawn(super::blob_copy::keep_copies(Arc::downgrade(&node)));
        let renewer = tokio::spawn(super::renew::keep_fresh(Arc::downgrade(&node)));
        node.tasks_mut().extend([server, copier, renewer]);
        Ok(node)
    }

    fn tasks_mut(&self) -> std::sync::MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The founder makes the cluster and its first records. Run at every
    /// start of the founder, so a bootstrap cut short is finished later;
    /// returns the tokens when it made them.
    async fn bootstrap_if_needed(&self) -> Result<Option<Started>, ClusterError> {
        if !self.replica.is_initialized().await? {
            let me = BTreeMap::from([(self.config.id, self.config.peer_address.clone())]);
            self.replica.initialize(me).await?;
        }
        // Only the founder's own first term can be missing these records:
        // any other node joined with a credential from them.
        if self.replica.wait_for_leader(LEADER_WAIT).await.is_none() {
            return Ok(None);
        }
        if self.read(bootstrapped).await? {
            return Ok(None);
        }
        let region = Name::new("region", &self.config.region)
            .map_err(|e| ClusterError::Refused(e.to_string()))?;
        let admin_token = new_admin_token()?;
        let join_token = JoinToken::generate(&tls::fingerprint(&self.ca_pem)?)?;
        let name = |n: &str| Name::new("name", n).expect("a valid literal");
        let commands = [
            Command::PutRegion {
                region: Region::named(region.clone()),
            },
            Command::PutNode {
                node: self.node_record(region),
            },
            Command::PutTenant {
                name: name("default"),
                quotas: Quotas::default(),
            },
            Command::Put {
                key: NEXT_NODE_ID.into(),
                value: b"2".to_vec(),
            },
            Command::PutJoinToken {
                name: name("join"),
                sha256: join_token.secret_hash(),
                now_unix_ms: join::unix_ms(),
                ttl_ms: FOUNDER_JOIN_TOKEN_TTL.as_millis() as u64,
                uses: None,
            },
            // Last: its presence marks the bootstrap as done.
            Command::PutCredential {
                name: name("admin"),
                role: Role::Admin,
                sha256: token_hash(&admin_token),
            },
        ];
        for command in commands {
            let response = self.write_in_cell(command).await?;
            if let Err(rejection) = response.result {
                return Err(ClusterError::Refused(format!(
                    "bootstrapping the cluster: {rejection}"
                )));
            }
        }
        Ok(Some(Started::Founded {
            admin_token,
            join_token,
        }))
    }

    fn node_record(&self, region: Name) -> Node {
        Node {
            peer_key: tls::key_fingerprint(&self.identity().cert_pem).ok(),
            name: node_name(self.config.id),
            region,
            address: self.config.peer_address.clone(),
            labels: BTreeMap::new(),
            capacity: 1000,
            api: Some(self.config.api_address.clone()),
            gateway: None,
        }
    }

    /// A node that joined asks the leader to make it a voter, once the
    /// leader's log has reached it (it sees itself as a learner).
    async fn promote_self(&self, wait: Duration) -> Result<(), ClusterError> {
        let id = self.config.id;
        let deadline = Instant::now() + wait;
        let mut last = String::from("this node has not heard from the leader");
        loop {
            let status = self.replica.status();
            if status.voters.contains(&id) {
                return Ok(());
            }
            if status.members.contains_key(&id) {
                match self.on_leader(LeaderOp::Promote { id }).await {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e.to_string(),
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClusterError::Unavailable(format!(
                    "node {id} could not become a voter within {} s: {last}",
                    wait.as_secs()
                )));
            }
            self.replica
                .wait_for_change(remaining.min(Duration::from_millis(500)))
                .await;
        }
    }

    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// Serves app requests that other nodes' gateways forward to this
    /// node's peer port (mutual TLS) with `ingress`.
    pub fn set_ingress(&self, ingress: Arc<dyn crate::transport::Ingress>) {
        *self.ingress.write().unwrap_or_else(|p| p.into_inner()) = Some(ingress);
    }

    pub(super) fn ingress(&self) -> Option<Arc<dyn crate::transport::Ingress>> {
        self.ingress
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forwards an app request to the ingress of the node whose peer
    /// address is `address`, over the cluster's mutual TLS.
    pub async fn forward_to(
        &self,
        address: &str,
        request: hyper::Request<http_body_util::Full<bytes::Bytes>>,
    ) -> Result<hyper::Response<bytes::Bytes>, crate::transport::CallError> {
        self.channel(address).forward(request).await
    }

    /// The ring of the apps' log lines this node keeps (its gateway adds
    /// to it; [`ClusterNode::app_logs`] reads every member's).
    pub fn app_log(&self) -> &Arc<crate::logs::LogRing> {
        &self.app_log
    }

    /// This node's name in the state (`node-<id>`).
    pub fn name(&self) -> Name {
        node_name(self.config.id)
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The replica, for status and local reads.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// A connection to the peer at `address`, shared by all callers.
    pub(super) fn channel(&self, address: &str) -> Arc<Channel> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        channels
            .entry(address.to_string())
            .or_insert_with(|| Arc::new(Channel::new(address.to_string(), self.client_tls.clone())))
            .clone()
    }

    /// Places this node, a region cell's member, in a planet: from now on
    /// it commits global changes ([`planet::tier::is_global`]) in the global
    /// tier first, and the API shows the planet. Set once, at start.
    pub fn set_planet(&self, planet: super::Planet) -> Result<(), ClusterError> {
        self.planet
            .set(planet)
            .map_err(|_| ClusterError::Refused("the planet is set already".into()))
    }

    /// This node's place in a planet, if it runs in one.
    pub fn planet(&self) -> Option<&super::Planet> {
        self.planet.get()
    }

    /// The global tier's member on this node, in a planet.
    pub fn global(&self) -> Option<&Arc<ClusterNode>> {
        self.planet.get().map(|p| &p.global)
    }

    /// This node's gossip member, in a planet.
    pub fn gossip(&self) -> Option<&super::GossipMember> {
        self.planet.get().map(|p| &p.gossip)
    }

    /// Commits `command` through the leader, wherever it is. In a planet,
    /// a global change is committed by the global tier first and then
    /// written through to this region cell, whose answer is returned (the
    /// global tier's, when the cell refuses its copy: the change stands,
    /// and the cell's mirror brings the copy within a second). When the
    /// global tier has no quorum, a global change is refused as
    /// unavailable while the cell keeps taking its own changes.
    pub async fn write(&self, command: Command) -> Result<Response, ClusterError> {
        let Some(global) = self.global().filter(|_| planet::tier::is_global(&command)) else {
            return self.write_in_cell(command).await;
        };
        let decided = global
            .write_in_cell(command.clone())
            .await
            .map_err(|e| match e {
                ClusterError::Unavailable(why) => {
                    ClusterError::Unavailable(format!("the global tier: {why}"))
                }
                ClusterError::Indeterminate(why) => {
                    ClusterError::Indeterminate(format!("the global tier: {why}"))
                }
                other => other,
            })?;
        if decided.result.is_err() {
            return Ok(decided);
        }
        match self.write_in_cell(command).await {
            Ok(copied) if copied.result.is_ok() => Ok(copied),
            _ => Ok(decided),
        }
    }

    /// Commits `command` in this node's own group, whatever tier owns it:
    /// for the mirror copying global records, and for membership.
    pub async fn write_in_cell(&self, command: Command) -> Result<Response, ClusterError> {
        match self.on_leader(LeaderOp::Write { command }).await? {
            LeaderReply::Written(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Runs `f` over the state as of now, linearizably, on any node: the
    /// leader confirms its leadership and gives the index to have applied
    /// (ReadIndex), and this node waits until it has applied it.
    pub async fn read<R>(&self, f: impl FnOnce(&State) -> R) -> Result<R, ClusterError> {
        self.read_indexed(f).await.map(|(_, r)| r)
    }

    /// [`ClusterNode::read`], with the log index the read was made at: the
    /// state `f` sees holds every entry committed up to it.
    pub async fn read_indexed<R>(
        &self,
        f: impl FnOnce(&State) -> R,
    ) -> Result<(u64, R), ClusterError> {
        let index = match self.on_leader(LeaderOp::ReadIndex).await? {
            LeaderReply::ReadIndex(i) => i,
            other => return Err(unexpected(other)),
        };
        self.replica
            .wait_applied(index, LEADER_WAIT)
            .await
            .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        let state: StateGuard<'_> = self.replica.read_local();
        Ok((index, f(&state)))
    }

    /// Members, roles, leader, term, commit index and lag, as the leader
    /// sees them (or this node alone when no leader answers).
    pub async fn status(&self) -> Result<ClusterStatus, ClusterError> {
        match self.on_leader(LeaderOp::Status).await {
            Ok(LeaderReply::Status(s)) => Ok(s),
            Ok(other) => Err(unexpected(other)),
            Err(ClusterError::Unavailable(_)) => Ok(self.local_status()),
            Err(e) => Err(e),
        }
    }

    /// Asks each member of `status` whether its peer port answers this
    /// node now (each within [`PROBE_TIMEOUT`], all at once) and marks it
    /// `reachable`; an unreachable member's role becomes `unknown`, so that
    /// the role a leader last knew is not shown as current. Apart from
    /// [`ClusterNode::status`], which the dashboard and `/metrics` read
    /// each second and must not wait for a dead member.
    pub async fn probe_members(&self, status: &mut ClusterStatus) {
        let mut probes = tokio::task::JoinSet::new();
        for (i, member) in status.members.iter().enumerate() {
            if member.id == self.id() {
                continue;
            }
            let channel = self.channel(&member.address);
            probes.spawn(async move {
                let call = channel.request(hyper::Method::GET, "/join/ca", Bytes::new());
                let answered = matches!(
                    tokio::time::timeout(PROBE_TIMEOUT, call).await,
                    Ok(Ok((hyper::StatusCode::OK, _)))
                );
                (i, answered)
            });
        }
        for member in &mut status.members {
            if member.id == self.id() {
                member.reachable = Some(true);
            }
        }
        while let Some(Ok((i, answered))) = probes.join_next().await {
            let member = &mut status.members[i];
            member.reachable = Some(answered);
            if !answered {
                member.role = "unknown".into();
            }
        }
    }

    /// Makes a new join token that admits `uses` nodes (`None`: any
    /// number) for `ttl`, and stores its hash as a join credential named
    /// `join-<first 12 hex digits of the hash>`.
    pub async fn new_join_token(
        &self,
        ttl: Duration,
        uses: Option<u32>,
    ) -> Result<JoinToken, ClusterError> {
        let token = JoinToken::generate(&tls::fingerprint(&self.ca_pem)?)?;
        let name = Name::new(
            "credential",
            &format!("join-{}", &token.secret_hash()[..12]),
        )
        .map_err(|e| ClusterError::Refused(e.to_string()))?;
        let response = self
            .write_in_cell(Command::PutJoinToken {
                name,
                sha256: token.secret_hash(),
                now_unix_ms: join::unix_ms(),
                ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
                uses,
            })
            .await?;
        response
            .result
            .map_err(|r| ClusterError::Refused(r.to_string()))?;
        Ok(token)
    }

    /// Removes node `id` from the cluster (and its node record).
    pub async fn remove(&self, id: NodeId) -> Result<(), ClusterError> {
        self.on_leader(LeaderOp::Remove { id }).await.map(drop)
    }

    /// This node's own view, without asking the leader.
    pub fn local_status(&self) -> ClusterStatus {
        let s = self.replica.status();
        let state = self.replica.read_local();
        let api_of = |id: NodeId| state.node(&node_name(id)).and_then(|n| n.api.clone());
        let leader_last = s.last_log_index;
        let members = s
            .members
            .iter()
            .map(|(&id, address)| {
                let matched = s
                    .matched
                    .as_ref()
                    .and_then(|m| m.get(&id).copied().flatten());
                let role = if Some(id) == s.leader {
                    "leader"
                } else if s.voters.contains(&id) {
                    "follower"
                } else {
                    "learner"
                };
                MemberStatus {
                    id,
                    address: address.clone(),
                    api: api_of(id),
                    role: role.into(),
                    voter: s.voters.contains(&id),
                    matched_index: matched,
                    lag: s.matched.as_ref().map(|_| {
                        leader_last
                            .unwrap_or(0)
                            .saturating_sub(matched.unwrap_or(0))
                    }),
                    reachable: None,
                    health: None,
                    heartbeat_age_ms: None,
                }
            })
            .collect();
        ClusterStatus {
            reported_by: s.id,
            leader: s.leader,
            term: s.term,
            commit_index: s.applied_index,
            last_log_index: s.last_log_index,
            members,
        }
    }

    /// Runs `op` on the leader: here when this node leads, else sent to the
    /// leader. Retried elsewhere only when it surely was not done.
    pub(super) async fn on_leader(&self, op: LeaderOp) -> Result<LeaderReply, ClusterError> {
        let deadline = Instant::now() + LEADER_WAIT;
        let mut last_problem = String::from("no leader is known yet");
        loop {
            let hint = match self.run_on_this_leader(op.clone()).await {
                // A leader that could not confirm itself (a quorum slow to
                // answer on a busy machine): a read may simply ask again.
                LeaderReply::Failed { message }
                    if op.is_read_only() && Instant::now() < deadline =>
                {
                    last_problem = message;
                    self.replica
                        .wait_for_change(Duration::from_millis(100))
                        .await;
                    continue;
                }
                reply => match reply.settled() {
                    Ok(outcome) => return outcome,
                    Err(hint) => hint,
                },
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClusterError::Unavailable(format!(
                    "no leader answered within {} s ({last_problem})",
                    LEADER_WAIT.as_secs()
                )));
            }
            let address = match hint {
                Some(a) => Some(a),
                None => self
                    .replica
                    .wait_for_leader(remaining)
                    .await
                    .map(|(_, a)| a),
            };
            let Some(address) = address.filter(|a| *a != self.config.peer_address) else {
                // No leader, or this node's view is stale: wait for news.
                self.replica
                    .wait_for_change(remaining.min(Duration::from_millis(500)))
                    .await;
                continue;
            };
            let call = tokio::time::timeout(
                remaining,
                self.channel(&address)
                    .call::<_, LeaderReply>("/cluster/leader", &op),
            )
            .await;
            match call {
                Ok(Ok(LeaderReply::Failed { message })) if op.is_read_only() => {
                    last_problem = message;
                    self.replica
                        .wait_for_change(Duration::from_millis(100))
                        .await;
                }
                Ok(Ok(reply)) => match reply.settled() {
                    Ok(outcome) => return outcome,
                    Err(_) => {
                        last_problem = format!("{address} is no longer the leader");
                        self.replica
                            .wait_for_change(Duration::from_millis(200))
                            .await;
                    }
                },
                Ok(Err(CallError::Down { reason, .. })) => {
                    last_problem = format!("leader at {address}: {reason}");
                    self.replica
                        .wait_for_change(Duration::from_millis(200))
                        .await;
                }
                Ok(Err(e)) if op.is_read_only() => {
                    last_problem = e.to_string();
                }
                Ok(Err(e)) => return Err(ClusterError::Indeterminate(e.to_string())),
                Err(_) if op.is_read_only() => {
                    last_problem = format!("leader at {address} did not answer");
                }
                Err(_) => {
                    return Err(ClusterError::Indeterminate(format!(
                        "the leader at {address} did not answer within {} s",
                        LEADER_WAIT.as_secs()
                    )));
                }
            }
        }
    }

    /// Runs `op` if this node is the leader; otherwise says where the
    /// leader is, having done nothing.
    pub(super) async fn run_on_this_leader(&self, op: LeaderOp) -> LeaderReply {
        let result = match op {
            LeaderOp::Write { command } => {
                let write = self.replica.write(command);
                match tokio::time::timeout(LEADER_WAIT, write).await {
                    Ok(r) => r.map(LeaderReply::Written),
                    Err(_) => {
                        return LeaderReply::Failed {
                            message: "the write was not committed in time (no quorum?); its outcome is unknown".into(),
                        };
                    }
                }
            }
            LeaderOp::ReadIndex => self.replica.read_index().await.map(LeaderReply::ReadIndex),
            LeaderOp::Status => {
                if self.replica.status().leader == Some(self.config.id) {
                    Ok(LeaderReply::Status(self.local_status()))
                } else {
                    Err(self.not_leader())
                }
            }
            LeaderOp::AddLearner { id, address } => self
                .replica
                .add_learner(id, address, false)
                .await
                .map(|()| LeaderReply::Done),
            LeaderOp::Promote { id } => self
                .replica
                .promote(BTreeSet::from([id]))
                .await
                .map(|()| LeaderReply::Done),
            LeaderOp::Remove { id } => {
                if !self.replica.status().members.contains_key(&id) {
                    return LeaderReply::Refused {
                        message: format!("node {id} is not a member of the cluster"),
                    };
                }
                match self.replica.remove(BTreeSet::from([id])).await {
                    Ok(()) => {
                        // Through whichever node leads: when the leader
                        // removed itself, it is handing leadership over.
                        let name = node_name(id);
                        let _ = Box::pin(self.write(Command::RemoveNode { name })).await;
                        Ok(LeaderReply::Done)
                    }
                    Err(ReplicaError::Config(message)) => {
                        return LeaderReply::Refused { message };
                    }
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(reply) => reply,
            Err(ReplicaError::NotLeader { address, .. }) => LeaderReply::NotLeader { address },
            Err(e) => LeaderReply::Failed {
                message: e.to_string(),
            },
        }
    }

    fn not_leader(&self) -> ReplicaError {
        let s = self.replica.status();
        ReplicaError::NotLeader {
            leader: s.leader,
            address: s.leader.and_then(|l| s.members.get(&l).cloned()),
        }
    }

    /// Serves a join: checks the token, gives the node an id and a
    /// certificate, records it and adds it as a learner.
    pub(super) async fn admit(
        &self,
        request: join::CheckedJoin,
    ) -> Result<JoinGrant, (hyper::StatusCode, String)> {
        join::admit(self, request).await
    }

    /// Hands out the next node id (a compare-and-swap on a register, so
    /// two joins at once get different ids).
    pub(super) async fn next_node_id(&self) -> Result<NodeId, ClusterError> {
        let mut current = self
            .read(|s| s.register(NEXT_NODE_ID).map(<[u8]>::to_vec))
            .await?;
        for _ in 0..100 {
            let id: NodeId = current
                .as_deref()
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(2);
            let response = self
                .write(Command::CompareAndSwap {
                    key: NEXT_NODE_ID.into(),
                    expected: current.clone(),
                    new: Some((id + 1).to_string().into_bytes()),
                })
                .await?;
            match response.result {
                Ok(state::Outcome::Swapped { swapped: true, .. }) => return Ok(id),
                Ok(state::Outcome::Swapped { previous, .. }) => current = previous,
                other => {
                    return Err(ClusterError::Refused(format!(
                        "allocating a node id: {other:?}"
                    )));
                }
            }
        }
        Err(ClusterError::Unavailable("too many joins at once".into()))
    }

    /// Signs the certificate of node `id` at `host` for the key of
    /// `csr_pem`; `None` when this node does not hold the CA key.
    pub(super) fn sign(
        &self,
        id: NodeId,
        hosts: &[String],
        csr_pem: &str,
    ) -> Option<Result<String, ClusterError>> {
        let ca = self.ca.as_ref()?;
        Some(
            ca.sign(&format!("node-{id}"), hosts, csr_pem)
                .map_err(ClusterError::from),
        )
    }

    /// TLS for this node's HTTP API (`dwcp up --api-tls`) with its own
    /// certificate from the cluster CA, whose names include its peer and
    /// API addresses' IPs.
    pub fn api_tls(&self) -> Result<crate::serving::ServerTls, ClusterError> {
        Ok(tls::live_api_server_config(self.live.clone())?)
    }

    /// This node's certificate and key now.
    pub fn identity(&self) -> NodeIdentity {
        self.identity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Saves and presents a renewed certificate for this node's key.
    pub(super) fn install_certificate(&self, cert_pem: String) -> Result<(), ClusterError> {
        let identity = NodeIdentity {
            cert_pem,
            key_pem: self.identity().key_pem,
        };
        self.dir.replace_certificate(&identity.cert_pem)?;
        self.live.replace(&identity)?;
        *self.identity.lock().unwrap_or_else(|p| p.into_inner()) = identity;
        Ok(())
    }

    /// The cluster secret (handed to a joining node in its grant).
    pub(super) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// Whether the holder of `cert` (verified against the CA already) is
    /// a member now, by this node's state: its certificate names node N,
    /// and either the state records node N with this very key (or no key:
    /// a record from before pins) and N is in the Raft membership, or the
    /// state does not know node N because N is newer than anything it has
    /// heard of (this node lags, or joined moments ago and has not the
    /// log yet). A removed node's record is gone and its id is below the
    /// next one handed out: refused from the moment this node applied the
    /// removal.
    pub fn admits_peer(&self, cert: &crate::transport::PeerCert) -> bool {
        let Some(id) = cert.node else {
            return false;
        };
        let state = self.replica.read_local();
        match state.node(&node_name(id)) {
            Some(record) => {
                record
                    .peer_key
                    .as_ref()
                    .is_none_or(|k| *k == cert.key_sha256)
                    && self.replica.status().members.contains_key(&id)
            }
            None => {
                let next = state
                    .register(NEXT_NODE_ID)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse::<NodeId>().ok());
                next.is_none_or(|next| id >= next)
            }
        }
    }

    /// A 256-bit key for secrets the API keeps sealed in the replicated
    /// state (users' TOTP secrets): the sha256 of a fixed label and the
    /// cluster secret, which every member holds in its data directory (it
    /// came with the join grant) and which never enters the Raft log or
    /// snapshots. Someone who reads the log, a snapshot or an API answer
    /// cannot unseal; someone who holds a member's data directory can.
    /// The CA key is not involved: a member that does not hold it derives
    /// the same keys, and the secret signs no certificate.
    pub fn at_rest_key(&self) -> [u8; 32] {
        self.derived_key("dwcp at-rest key v1")
    }

    /// The cluster's identity: the sha256 of its CA certificate (what join
    /// tokens name). Certification reports carry it, so a report is
    /// recorded only by the cluster it measured.
    pub fn cluster_id(&self) -> Option<String> {
        tls::fingerprint(&self.ca_pem).ok()
    }

    /// A 256-bit key for `purpose`, which every member of this cluster
    /// derives alike and no one else can: the sha256 of the label and the
    /// cluster secret (see [`ClusterNode::at_rest_key`]). Distinct labels
    /// give independent keys.
    pub fn derived_key(&self, purpose: &str) -> [u8; 32] {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(purpose.as_bytes());
        hasher.update(b"\0");
        hasher.update(self.secret);
        hasher.finalize().into()
    }

    /// Stores a blob sent by a peer, checking its digest.
    pub(super) fn store_blob_copy(&self, digest: &str, bytes: &[u8]) -> Result<(), ClusterError> {
        let stored = self.blobs.put(bytes)?;
        if stored != digest {
            return Err(ClusterError::Refused(format!(
                "the bytes hash to {stored}, not {digest}"
            )));
        }
        Ok(())
    }

    /// Stores an artifact here and on the other members; returns its digest
    /// and how many nodes hold it, once a majority of the voters do.
    /// An artifact that fails the node's [`ArtifactCheck`] is refused and
    /// nothing is stored.
    pub async fn put_blob(&self, bytes: Bytes) -> Result<(String, usize), ClusterError> {
        if let Some(check) = &self.artifact_check {
            let (check, copy) = (check.clone(), bytes.clone());
            tokio::task::spawn_blocking(move || check(&copy))
                .await
                .map_err(|e| ClusterError::InvalidArtifact(e.to_string()))?
                .map_err(ClusterError::InvalidArtifact)?;
        }
        super::blob_copy::put_everywhere(self, bytes).await
    }

    /// Before a planned stop: if this node leads, hands leadership to the
    /// most up-to-date voter and waits (for [`LEADER_WAIT`] at most) until
    /// another node leads; returns the new leader. Writes that reach this
    /// node meanwhile are sent on to the new leader as usual. A node that
    /// does not lead does nothing.
    pub async fn hand_off(&self) -> Result<Option<NodeId>, ClusterError> {
        Ok(self.replica.hand_off(LEADER_WAIT).await?)
    }

    /// Stops serving and stops Raft; the data directory stays for a restart.
    pub async fn shutdown(&self) {
        for task in self.tasks_mut().drain(..) {
            task.abort();
        }
        self.replica.shutdown().await;
    }
}

impl LeaderReply {
    /// What a reply settles: the outcome of the op, or — when the receiver
    /// was not the leader and did nothing — where the leader may be.
    fn settled(self) -> Result<Result<LeaderReply, ClusterError>, Option<String>> {
        match self {
            LeaderReply::NotLeader { address } => Err(address),
            LeaderReply::Failed { message } => Ok(Err(ClusterError::Unavailable(message))),
            LeaderReply::Refused { message } => Ok(Err(ClusterError::Refused(message))),
            done => Ok(Ok(done)),
        }
    }
}

impl LeaderOp {
    /// Ops that change nothing may be retried after any failure.
    fn is_read_only(&self) -> bool {
        matches!(self, LeaderOp::ReadIndex | LeaderOp::Status)
    }
}

fn unexpected(reply: LeaderReply) -> ClusterError {
    ClusterError::Unavailable(format!("unexpected answer from the leader: {reply:?}"))
}
