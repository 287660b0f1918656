//! A Raft group of DWCP's real replicas (`replica::Replica`:
//! openraft, redb, the state machine) as turmoil hosts, their RPCs over
//! turmoil's simulated TCP, beside the same group on [`crate::net`]'s
//! in-memory links: enough to say whether turmoil could carry the global
//! tier, and at what cost.
//!
//! The wire is not the production transport's: `cluster::transport` is
//! HTTP/2 over mutual TLS on `tokio::net` sockets, with no seam for
//! another socket type, so it cannot run over turmoil's without changing
//! it. Here each message is the transport's JSON (the same serde encoding
//! of the replica's [`Call`]s and appends and of their answers), framed by
//! a kind byte and a length on turmoil TCP connections: one per single
//! message, one per pipe of appends (which, as in production, carries many
//! appends in flight and their answers back in order).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant as WallInstant};

use futures_util::StreamExt;
use replica::{
    Append, AppendAnswer, AppendAnswers, Appends, Call, Inbox, LinkError, NodeId, Replica, Reply,
    Timing, Transport,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use state::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::group::{Group, GroupError};
use crate::net::Links;
use crate::rng::Rng;
use crate::turmoil_gossip::{TICK, thread_cpu};

/// The port every replica serves RPCs on.
pub const RAFT_PORT: u16 = 7000;
/// Largest frame accepted (a whole snapshot is far below).
const MAX_FRAME: usize = 64 << 20;
/// How long the group may take to elect its first leader.
const ELECTION_DEADLINE: Duration = Duration::from_secs(120);

/// A connection's frames: single messages, or a pipe of appends.
const CALL: u8 = 1;
const APPENDS: u8 = 2;

/// Why a group run failed.
#[derive(Debug, thiserror::Error)]
pub enum RaftSimError {
    /// The in-memory baseline failed.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// turmoil stopped: a host's software failed.
    #[error("turmoil: {0}")]
    Turmoil(String),
    /// The group did not commit every write in time.
    #[error("{done} of {wanted} writes committed within {deadline:?} of virtual time")]
    Stalled {
        done: usize,
        wanted: usize,
        deadline: Duration,
    },
    /// No voters.
    #[error("a group needs at least one voter")]
    NoVoters,
}

/// A group of `voters` replicas; `rtt_ms(a, b)` the round trip between
/// voters `a` and `b` (by index); voter 0 leads (only it is initialized).
#[derive(Clone)]
pub struct RaftScenario {
    pub voters: usize,
    pub rtt_ms: Arc<dyn Fn(usize, usize) -> f64 + Send + Sync>,
    pub timing: Timing,
    /// Writes through the leader, each after an exponential gap (mean
    /// 1 s, as in the planet scenario).
    pub writes: usize,
    pub seed: u64,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct RaftRun {
    /// "turmoil" or "links" (the in-memory network).
    pub engine: &'static str,
    /// Virtual time from each write to its commit.
    pub commits: Vec<Duration>,
    /// Virtual time simulated.
    pub virtual_time: Duration,
    /// Wall time spent (setup included: the replicas start inside it).
    pub wall: Duration,
    /// CPU time of the simulating thread, where the OS tells it.
    pub cpu: Option<Duration>,
}

impl RaftRun {
    /// Wall seconds per simulated second.
    pub fn wall_per_virtual_second(&self) -> Option<f64> {
        let v = self.virtual_time.as_secs_f64();
        (v > 0.0).then(|| self.wall.as_secs_f64() / v)
    }
}

impl RaftScenario {
    fn gaps(&self) -> Vec<Duration> {
        let mut rng = Rng::new(self.seed ^ 0x9e37);
        (0..self.writes)
            .map(|_| Duration::from_secs_f64(rng.exponential(1000.0) / 1000.0))
            .collect()
    }

    fn address(i: usize) -> SocketAddr {
        let i = u32::try_from(i).unwrap_or(0);
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a01_0001 + i)), RAFT_PORT)
    }

    /// The group on [`crate::net::Links`] in a paused tokio runtime: the
    /// simulator's own way, the baseline.
    pub fn run_links(&self) -> Result<RaftRun, RaftSimError> {
        if self.voters == 0 {
            return Err(RaftSimError::NoVoters);
        }
        let wall = WallInstant::now();
        let cpu = thread_cpu();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .map_err(GroupError::Io)?;
        let rtt = self.rtt_ms.clone();
        let (commits, virtual_time) = runtime.block_on(async {
            let start = Instant::now();
            let links = Links::new(
                Box::new(move |a, b| {
                    if a == b {
                        0.0
                    } else {
                        rtt(a as usize - 1, b as usize - 1)
                    }
                }),
                0.0,
                self.seed,
            );
            let ids: Vec<NodeId> = (1..=self.voters as NodeId).collect();
            let group = Group::start(&ids, &links, &self.timing).await?;
            let mut commits = Vec::with_capacity(self.writes);
            for (i, gap) in self.gaps().into_iter().enumerate() {
                tokio::time::sleep(gap).await;
                commits.push(group.commit(0, &format!("write-{i}")).await?);
            }
            group.shutdown().await;
            Ok::<_, RaftSimError>((commits, start.elapsed()))
        })?;
        Ok(RaftRun {
            engine: "links",
            commits,
            virtual_time,
            wall: wall.elapsed(),
            cpu: cpu.zip(thread_cpu()).map(|(a, b)| b.saturating_sub(a)),
        })
    }

    /// The group as turmoil hosts, RPCs over turmoil TCP, each pair's
    /// one-way latency half its round trip.
    pub fn run_turmoil(&self) -> Result<RaftRun, RaftSimError> {
        if self.voters == 0 {
            return Err(RaftSimError::NoVoters);
        }
        let wall = WallInstant::now();
        let cpu = thread_cpu();
        let dir = Rc::new(tempfile::tempdir().map_err(GroupError::Io)?);
        let mut b = turmoil::Builder::new();
        b.tick_duration(TICK)
            .simulation_duration(Duration::from_secs(10 * 365 * 24 * 3600))
            .epoch(std::time::SystemTime::UNIX_EPOCH)
            .rng_seed(self.seed);
        let mut sim = b.build();
        let members: Arc<BTreeMap<NodeId, String>> = Arc::new(
            (0..self.voters)
                .map(|i| (i as NodeId + 1, Self::address(i).to_string()))
                .collect(),
        );
        let outcome = Rc::new(Outcome::default());
        for i in 0..self.voters {
            let (dir, members, outcome) = (dir.clone(), members.clone(), outcome.clone());
            let timing = self.timing.clone();
            let gaps = if i == 0 { self.gaps() } else { Vec::new() };
            sim.host(Self::address(i).ip(), move || {
                replica_host(
                    i as NodeId + 1,
                    dir.path().join(format!("{}.redb", i + 1)),
                    timing.clone(),
                    members.clone(),
                    gaps.clone(),
                    outcome.clone(),
                )
            });
        }
        for a in 0..self.voters {
            for b in a + 1..self.voters {
                let one_way = Duration::from_secs_f64((self.rtt_ms)(a, b).max(0.0) / 2000.0);
                sim.set_link_latency(Self::address(a).ip(), Self::address(b).ip(), one_way);
            }
        }
        let deadline = ELECTION_DEADLINE + self.gaps().iter().sum::<Duration>() * 2;
        while !outcome.done.get() {
            if sim.elapsed() > deadline {
                return Err(RaftSimError::Stalled {
                    done: outcome.commits.borrow().len(),
                    wanted: self.writes,
                    deadline,
                });
            }
            sim.step()
                .map_err(|e| RaftSimError::Turmoil(e.to_string()))?;
        }
        let commits = outcome.commits.borrow().clone();
        Ok(RaftRun {
            engine: "turmoil",
            commits,
            virtual_time: sim.elapsed(),
            wall: wall.elapsed(),
            cpu: cpu.zip(thread_cpu()).map(|(a, b)| b.saturating_sub(a)),
        })
    }
}

/// What the leader's host reports to the scenario.
#[derive(Default)]
struct Outcome {
    commits: RefCell<Vec<Duration>>,
    done: Cell<bool>,
}

/// One replica's software: start the replica, serve its RPCs on
/// [`RAFT_PORT`]; the leader (the host given `gaps`) also initializes the
/// group and writes, one write after each gap.
async fn replica_host(
    id: NodeId,
    path: std::path::PathBuf,
    timing: Timing,
    members: Arc<BTreeMap<NodeId, String>>,
    gaps: Vec<Duration>,
    outcome: Rc<Outcome>,
) -> turmoil::Result {
    let replica = Replica::start_simulated(id, &path, TurmoilNetwork, &timing).await?;
    let listener = turmoil::net::TcpListener::bind(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        RAFT_PORT,
    ))
    .await?;
    let inbox = replica.inbox();
    tokio::task::spawn_local(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::task::spawn_local(serve_peer(stream, inbox.clone()));
        }
    });
    if !gaps.is_empty() {
        replica.initialize((*members).clone()).await?;
        match replica.wait_for_leader(ELECTION_DEADLINE).await {
            Some((leader, _)) if leader == id => {}
            _ => return Err("the initialized replica did not become leader".into()),
        }
        for (i, gap) in gaps.into_iter().enumerate() {
            tokio::time::sleep(gap).await;
            let started = Instant::now();
            replica
                .write(Command::Put {
                    key: format!("write-{i}"),
                    value: b"v".to_vec(),
                })
                .await?;
            outcome.commits.borrow_mut().push(started.elapsed());
        }
        outcome.done.set(true);
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// Serves one peer's connection: single messages answered one by one, or
/// (when its first frame is an append) a pipe of appends.
async fn serve_peer(mut stream: turmoil::net::TcpStream, inbox: Inbox) {
    let Ok((kind, body)) = read_frame(&mut stream).await else {
        return;
    };
    match kind {
        CALL => {
            let mut next = Some(body);
            while let Some(body) = next.take() {
                let Ok(answer) = answer(&body, &inbox).await else {
                    return;
                };
                if write_frame(&mut stream, CALL, &answer).await.is_err() {
                    return;
                }
                next = read_frame(&mut stream).await.ok().map(|(_, body)| body);
            }
        }
        APPENDS => serve_appends(stream, body, inbox).await,
        _ => {}
    }
}

/// Decodes a message, hands it to the inbox, encodes the answer (as the
/// production transport does).
async fn answer(body: &[u8], inbox: &Inbox) -> Result<Vec<u8>, String> {
    let call: Call = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let answer: Result<Reply, String> = inbox.call(call).await.map_err(|e| e.to_string());
    serde_json::to_vec(&answer).map_err(|e| e.to_string())
}

/// A pipe: appends read off the connection in order (the first already
/// read), answers written back in order.
async fn serve_appends(stream: turmoil::net::TcpStream, first: Vec<u8>, inbox: Inbox) {
    let (read, mut write) = stream.into_split();
    let appends =
        futures_util::stream::unfold((Some(first), read), |(first, mut read)| async move {
            let body = match first {
                Some(body) => body,
                None => read_frame(&mut read).await.ok()?.1,
            };
            let append: Append = serde_json::from_slice(&body).ok()?;
            Some((append, (None, read)))
        });
    let mut answers = Box::pin(inbox.appends(appends));
    while let Some(answer) = answers.next().await {
        let answer: Result<AppendAnswer, String> = answer.map_err(|e| e.to_string());
        let Ok(bytes) = serde_json::to_vec(&answer) else {
            return;
        };
        if write_frame(&mut write, APPENDS, &bytes).await.is_err() {
            return;
        }
    }
}

async fn read_frame(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> std::io::Result<(u8, Vec<u8>)> {
    let kind = stream.read_u8().await?;
    let len = stream.read_u32().await? as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("frame of {len} bytes")));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    Ok((kind, body))
}

async fn write_frame(
    stream: &mut (impl tokio::io::AsyncWrite + Unpin),
    kind: u8,
    body: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(body.len()).map_err(std::io::Error::other)?;
    let mut frame = Vec::with_capacity(body.len() + 5);
    frame.push(kind);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame).await?;
    stream.flush().await
}

/// The sending side: a fresh connection for each single message (votes,
/// snapshots and hand-offs are rare), one per pipe of appends.
struct TurmoilNetwork;

fn unreachable(to: NodeId, address: &str, reason: impl std::fmt::Display) -> LinkError {
    LinkError::Unreachable(format!("node {to} at {address}: {reason}"))
}

fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, LinkError> {
    serde_json::to_vec(message).map_err(|e| LinkError::Failed(e.to_string()))
}

fn decode<T: DeserializeOwned>(to: NodeId, address: &str, bytes: &[u8]) -> Result<T, LinkError> {
    serde_json::from_slice(bytes).map_err(|e| unreachable(to, address, format!("bad answer: {e}")))
}

impl Transport for TurmoilNetwork {
    async fn call(&self, to: NodeId, address: &str, call: Call) -> Result<Reply, LinkError> {
        let body = encode(&call)?;
        let mut stream = turmoil::net::TcpStream::connect(address)
            .await
            .map_err(|e| unreachable(to, address, e))?;
        write_frame(&mut stream, CALL, &body)
            .await
            .map_err(|e| unreachable(to, address, e))?;
        let (_, answer) = read_frame(&mut stream)
            .await
            .map_err(|e| unreachable(to, address, e))?;
        decode::<Result<Reply, String>>(to, address, &answer)?
            .map_err(|stopped| unreachable(to, address, stopped))
    }

    async fn appends(
        &self,
        to: NodeId,
        address: &str,
        mut appends: Appends,
    ) -> Result<AppendAnswers, LinkError> {
        let stream = turmoil::net::TcpStream::connect(address)
            .await
            .map_err(|e| unreachable(to, address, e))?;
        let (read, mut write) = stream.into_split();
        tokio::spawn(async move {
            while let Some(append) = appends.next().await {
                let Ok(bytes) = serde_json::to_vec(&append) else {
                    return;
                };
                if write_frame(&mut write, APPENDS, &bytes).await.is_err() {
                    return;
                }
            }
        });
        let address = address.to_string();
        let answers = futures_util::stream::unfold(Some(read), move |read| {
            let address = address.clone();
            async move {
                let mut read = read?;
                let answer = match read_frame(&mut read).await {
                    Ok((_, bytes)) => decode::<Result<AppendAnswer, String>>(to, &address, &bytes)
                        .and_then(|a| a.map_err(|stopped| unreachable(to, &address, stopped))),
                    Err(e) => Err(unreachable(to, &address, e)),
                };
                let go_on = answer.is_ok();
                Some((answer, go_on.then_some(read)))
            }
        });
        Ok(Box::pin(answers))
    }
}
