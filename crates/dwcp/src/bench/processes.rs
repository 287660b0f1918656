//! A cluster of `dwcp up` child processes (three, or one) on loopback addresses, for
//! the benchmarks that need real processes: the control benchmark's series
//! (a leader killed with SIGKILL loses its sockets, its memory and its
//! unsynced work at once, which no in-process stop imitates) and the
//! rollout benchmark, which sends HTTP load to every node's gateway.
//!
//! The processes themselves are `harness::NodeProcess`es (shared with the
//! process tests). The cluster owns them and its temp directory: dropping
//! it kills every child still running, also on an error or a panic, so
//! that a failed bench never leaves nodes behind. [`ProcessCluster::finish`]
//! removes the whole directory; a cluster dropped without it (a failed run)
//! removes the data directories but keeps the node logs its errors point at.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use cluster::{ClusterStatus, MemberStatus};
use harness::{NodeProcess, NodeSpec};

use crate::cli::client::{ApiArgs, Client};

/// How long the cluster may take to form, or a node to come back: debug
/// builds on a busy 2-core machine are slow, and a deadline only bounds a
/// failure.
const SETTLE: Duration = Duration::from_secs(60);
/// How often the cluster's status is polled while waiting for it to settle.
const POLL: Duration = Duration::from_millis(20);
/// The loopback address of node `i` is `127.0.0.(FIRST_IP + i)`: addresses
/// of their own keep the bench apart from a `dwcp up` on 127.0.0.1.
const FIRST_IP: u8 = 61;

/// One `dwcp up` child and where it lives.
struct BenchNode {
    /// 1-based, in start order; the founder is 1.
    number: usize,
    peer: SocketAddr,
    api: SocketAddr,
    /// Where its gateway serves the deployed apps.
    gateway: SocketAddr,
    process: NodeProcess,
    client: Client,
}

impl BenchNode {
    /// A member of `status` is this node when it lists this node's API.
    fn is(&self, member: &MemberStatus) -> bool {
        member.api.as_deref() == Some(self.api.to_string().as_str())
    }
}

/// `dwcp up` processes forming one cluster (three unless started with
/// [`ProcessCluster::start_with`]).
pub struct ProcessCluster {
    dir: PathBuf,
    nodes: Vec<BenchNode>,
    /// Set by [`ProcessCluster::finish`]: the logs are not needed.
    finished: bool,
    /// The founder's admin token.
    admin: String,
    /// Added to every node's `dwcp up`.
    up_args: Vec<String>,
    /// Each node reads its network drop rules from `<dir>/node-N.faults`
    /// (`DWCP_FAULTS_FILE`, a build with the `fault-injection` feature).
    drop_rules: bool,
}

impl ProcessCluster {
    /// Starts node 1, reads its tokens, joins nodes 2 and 3 one after the
    /// other (concurrent joins may be refused), and waits until the cluster
    /// has three voters and a leader. `bench` names the temp directory.
    pub async fn start(bench: &str) -> Result<ProcessCluster> {
        ProcessCluster::start_with(bench, 3).await
    }

    /// [`ProcessCluster::start`] with `nodes` nodes (1 to 3).
    pub async fn start_with(bench: &str, nodes: usize) -> Result<ProcessCluster> {
        ProcessCluster::start_with_founder_flags(bench, nodes, &[]).await
    }

    /// [`ProcessCluster::start_with`], the founder started with `flags`
    /// besides its addresses (e.g. `--backup-dir`).
    pub async fn start_with_founder_flags(
        bench: &str,
        nodes: usize,
        flags: &[String],
    ) -> Result<ProcessCluster> {
        ProcessCluster::start_inner(bench, nodes, &[], flags, false).await
    }

    /// [`ProcessCluster::start_with`], every node started with `up_args`
    /// added to its `dwcp up` (e.g. `--profile dense`).
    pub async fn start_configured(
        bench: &str,
        nodes: usize,
        up_args: &[&str],
    ) -> Result<ProcessCluster> {
        ProcessCluster::start_inner(bench, nodes, up_args, &[], false).await
    }

    /// [`ProcessCluster::start_configured`], each node also reading network
    /// drop rules from [`ProcessCluster::drop_rules_file`] (for `dwcp chaos`).
    pub async fn start_with_drop_rules(
        bench: &str,
        nodes: usize,
        up_args: &[&str],
    ) -> Result<ProcessCluster> {
        ProcessCluster::start_inner(bench, nodes, up_args, &[], true).await
    }

    async fn start_inner(
        bench: &str,
        nodes: usize,
        up_args: &[&str],
        founder_flags: &[String],
        drop_rules: bool,
    ) -> Result<ProcessCluster> {
        let dir = std::env::temp_dir().join(format!(
            "dwcp-bench-{bench}-processes-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut cluster = ProcessCluster {
            dir,
            nodes: Vec::new(),
            finished: false,
            admin: String::new(),
            up_args: up_args.iter().map(|a| a.to_string()).collect(),
            drop_rules,
        };
        let tokens = cluster.start_founder(founder_flags)?;
        cluster.admin = tokens.admin.clone();
        if nodes == 1 {
            cluster.wait_for_voters(1).await?;
        }
        for number in 2..=nodes {
            let founder = cluster.nodes[0].peer.to_string();
            let extra = ["--join", &founder, "--token", &tokens.join];
            cluster.add_node(number, &tokens.admin, &extra)?;
            cluster.wait_for_voters(number).await?;
        }
        Ok(cluster)
    }

    fn start_founder(&mut self, flags: &[String]) -> Result<harness::Tokens> {
        // The admin token is only known once the founder prints it; the
        // client made here is replaced below.
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        self.add_node(1, "pending", &flags)?;
        let tokens = self.nodes[0].process.tokens(SETTLE)?;
        self.nodes[0].client = client_for(self.nodes[0].api, &tokens.admin)?;
        Ok(tokens)
    }

    /// Starts node `number` on fresh ports.
    fn add_node(&mut self, number: usize, admin: &str, extra: &[&str]) -> Result<()> {
        let ip = Ipv4Addr::new(127, 0, 0, FIRST_IP + number as u8 - 1);
        let [peer, api, gateway] = harness::free_ports(ip)?;
        let spec = NodeSpec {
            exe: std::env::current_exe().context("finding the dwcp binary")?,
            data_dir: self.dir.join(format!("node-{number}")),
            peer: peer.to_string(),
            api: api.to_string(),
            // Kept across a restart, as the peer and API addresses are.
            gateway: gateway.to_string(),
            log: self.dir.join(format!("node-{number}.log")),
            env: if self.drop_rules {
                vec![(
                    "DWCP_FAULTS_FILE".into(),
                    self.drop_rules_file(number - 1).into(),
                )]
            } else {
                Vec::new()
            },
            env_remove: vec!["DWCP_DATA_DIR".into()],
        };
        let args: Vec<&str> = self
            .up_args
            .iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
            .collect();
        self.nodes.push(BenchNode {
            number,
            peer,
            api,
            gateway,
            process: NodeProcess::start(spec, &args)?,
            client: client_for(api, admin)?,
        });
        Ok(())
    }

    /// The status as the cluster reports it, from the first node that
    /// answers (a follower forwards to the leader, which knows every lag).
    pub async fn status(&self) -> Result<ClusterStatus> {
        let mut last = anyhow!("no node is running");
        for node in self.nodes.iter().filter(|n| n.process.running()) {
            match node.client.get::<ClusterStatus>("/cluster").await {
                Ok(status) => return Ok(status),
                Err(e) => last = anyhow::Error::new(e),
            }
        }
        Err(last)
    }

    /// Polls `ready` over the status until it holds, a child dies, or
    /// [`SETTLE`] passes; `what` names the wait in the error.
    async fn wait_until(
        &mut self,
        what: &str,
        ready: impl Fn(&ClusterStatus) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + SETTLE;
        let mut last = String::from("no status yet");
        while Instant::now() < deadline {
            self.check_alive()?;
            match self.status().await {
                Ok(s) if ready(&s) => return Ok(()),
                Ok(s) => last = summary(&s),
                Err(e) => last = format!("{e:#}"),
            }
            tokio::time::sleep(POLL).await;
        }
        bail!(
            "{what}: not within {} s (last status: {last}); node logs in {}",
            SETTLE.as_secs(),
            self.dir.display()
        )
    }

    /// Waits until the cluster counts `n` voters and has a leader.
    async fn wait_for_voters(&mut self, n: usize) -> Result<()> {
        self.wait_until(&format!("waiting for {n} voters and a leader"), |s| {
            s.leader.is_some() && s.members.iter().filter(|m| m.voter).count() == n
        })
        .await
    }

    /// Fails with the node's log path if a child that should run has exited.
    fn check_alive(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            if node.process.running()
                && let Some(status) = node.process.exited()?
            {
                bail!(
                    "node {} exited ({status}); see {}",
                    node.number,
                    node.process.spec().log.display()
                );
            }
        }
        Ok(())
    }

    /// The index (into the start order) of the current leader.
    pub async fn leader(&mut self) -> Result<usize> {
        self.wait_for_voters(self.nodes.len()).await?;
        let status = self.status().await?;
        let leader = status.leader.context("the leader went away")?;
        self.index_of(&status, leader)
            .with_context(|| format!("leader {leader} is none of the bench's nodes"))
    }

    fn index_of(&self, status: &ClusterStatus, id: replica::NodeId) -> Option<usize> {
        let member = status.members.iter().find(|m| m.id == id)?;
        self.nodes.iter().position(|n| n.is(member))
    }

    /// The API client of node `index`.
    pub fn client(&self, index: usize) -> &Client {
        &self.nodes[index].client
    }

    /// Where the gateway of node `index` serves the deployed apps.
    pub fn gateway(&self, index: usize) -> SocketAddr {
        self.nodes[index].gateway
    }

    /// Where the API of node `index` listens.
    pub fn api(&self, index: usize) -> SocketAddr {
        self.nodes[index].api
    }

    /// The process id of node `index`, while it runs.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.nodes[index].process.pid()
    }

    /// The cluster's admin token.
    pub fn admin_token(&self) -> &str {
        &self.admin
    }

    /// SIGKILLs node `index`. The child is reaped at its restart, so the
    /// caller's clock starts at the signal, not after the reaping.
    pub fn kill(&mut self, index: usize) -> Result<()> {
        let node = &mut self.nodes[index];
        node.process
            .kill()
            .with_context(|| format!("killing node {}", node.number))
    }

    /// Sends SIGTERM to node `index` (a planned stop: it hands leadership
    /// over, then exits) and waits, for [`SETTLE`] at most, until it has
    /// exited; it is restarted with [`ProcessCluster::restart`].
    pub async fn terminate(&mut self, index: usize) -> Result<()> {
        let node = &mut self.nodes[index];
        let pid = node.process.pid().context("the node is not running")?;
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .with_context(|| format!("sending SIGTERM to node {}", node.number))?;
        if !sent.success() {
            bail!("kill -TERM of node {} failed ({sent})", node.number);
        }
        let deadline = Instant::now() + SETTLE;
        while node.process.exited()?.is_none() {
            if Instant::now() >= deadline {
                bail!(
                    "node {} did not exit within {} s of SIGTERM; see {}",
                    node.number,
                    SETTLE.as_secs(),
                    node.process.spec().log.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Reaps node `index` and starts it again on its data directory and
    /// addresses (no --join: it is a member), then waits until the leader
    /// counts it as a voter that has every entry (lag 0).
    pub async fn restart(&mut self, index: usize) -> Result<()> {
        self.respawn(index)?;
        self.wait_caught_up(index).await
    }

    /// How many nodes it has (running or not).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Whether node `index`'s process runs.
    pub fn running(&self, index: usize) -> bool {
        self.nodes[index].process.running()
    }

    /// The peer address of node `index` (what its peers' drop rules name).
    pub fn peer(&self, index: usize) -> SocketAddr {
        self.nodes[index].peer
    }

    /// Where node `index` reads its network drop rules (with
    /// [`ProcessCluster::start_with_drop_rules`]).
    pub fn drop_rules_file(&self, index: usize) -> PathBuf {
        self.dir.join(format!("node-{}.faults", index + 1))
    }

    /// The index of the leader the cluster reports now, without waiting
    /// for every node to be a voter.
    pub async fn leader_now(&self) -> Result<usize> {
        let status = self.status().await?;
        let leader = status.leader.context("the cluster has no leader now")?;
        self.index_of(&status, leader)
            .with_context(|| format!("leader {leader} is none of the nodes"))
    }

    /// Reaps node `index` if it was killed and starts it again, without
    /// waiting for it (see [`ProcessCluster::wait_caught_up`]).
    pub fn respawn(&mut self, index: usize) -> Result<()> {
        let node = &mut self.nodes[index];
        let up_args: Vec<&str> = self.up_args.iter().map(String::as_str).collect();
        node.process
            .restart(&up_args)
            .with_context(|| format!("starting node {} again", node.number))
    }

    /// Waits until the leader counts node `index` as a voter with every
    /// entry (lag 0).
    pub async fn wait_caught_up(&mut self, index: usize) -> Result<()> {
        let node = &self.nodes[index];
        let api = node.api.to_string();
        let what = format!("waiting for node {} to catch up", node.number);
        self.wait_until(&what, |s| {
            s.leader.is_some()
                && s.members
                    .iter()
                    .any(|m| m.api.as_deref() == Some(api.as_str()) && m.voter && m.lag == Some(0))
        })
        .await
    }

    /// The cluster's temp directory (removed by [`ProcessCluster::finish`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data directory of node `index`.
    pub fn data_dir(&self, index: usize) -> PathBuf {
        self.nodes[index].process.spec().data_dir.clone()
    }

    /// Where node `index` logs, for error messages.
    pub fn log(&self, index: usize) -> &Path {
        &self.nodes[index].process.spec().log
    }
}

impl ProcessCluster {
    /// Stops the nodes and removes the temp directory, logs and all.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for ProcessCluster {
    fn drop(&mut self) {
        // Kills and reaps every child still running.
        let data_dirs: Vec<PathBuf> = self
            .nodes
            .drain(..)
            .map(|node| node.process.spec().data_dir.clone())
            .collect();
        if self.finished {
            let _ = std::fs::remove_dir_all(&self.dir);
            return;
        }
        for dir in &data_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
        eprintln!(
            "dwcp bench: the node logs are kept in {}",
            self.dir.display()
        );
    }
}

fn client_for(api: SocketAddr, token: &str) -> Result<Client> {
    Ok(Client::new(&ApiArgs {
        api: format!("http://{api}"),
        token: Some(token.to_string()),
        ca_file: None,
    })?)
}

/// One line about a status, for a timeout's error message.
fn summary(s: &ClusterStatus) -> String {
    let members: Vec<String> = s
        .members
        .iter()
        .map(|m| {
            let lag = m.lag.map_or("-".into(), |l| l.to_string());
            format!(
                "{}:{}{} lag {lag}",
                m.id,
                m.role,
                if m.voter { "" } else { "(not voter)" }
            )
        })
        .collect();
    format!(
        "leader {:?}, term {}, members [{}]",
        s.leader,
        s.term,
        members.join(", ")
    )
}
